"""Check descriptions of trained models' accuracy (assignments 3-5).

The kernel hands over the trained model as data: a Keras model's JSON config and weights
(adapter ``keras_weights``), a PyTorch module's ``state_dict`` arrays (adapter
``torch_state``). The checks rebuild the network from that data with their own code
(:mod:`cnncourse.checks.model_eval`, float64 numpy) and measure its accuracy on held-out
digits (:func:`cnncourse.data.grading_digits`) that are never sent to the kernel and, while
grading, are not in the sandbox at all. A trained network passes; a table of answers cannot.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .. import grading_models as gm
from ..testing import CheckError
from .engine import Anchor, Spec
from .matchers import TYPE, VALUES, Mismatch, too_few_right, type_name
from .model_eval import WeightsError, described_differently, keras_outputs, probe_images

# Accuracy thresholds on the 2,000 held-out grading digits after fast-mode training
# (how they were chosen: the notebooks' markdown and benchmarks/fast_mode_thresholds.py).
KERAS_CNN_THRESHOLD = 0.92
TORCH_CNN_THRESHOLD = 0.90
CROPPED_THRESHOLD = 0.85
CLASSIC_THRESHOLD = 0.90
N_GRADING_DIGITS = 2_000


# ================================================================ trained accuracy


def grading_images(layout: str, n: int = N_GRADING_DIGITS) -> np.ndarray:
    """The held-out grading digits as a model takes them: float32 in [0, 1], channels last
    (``"nhwc"``) or first (``"nchw"``)."""
    from ..data import grading_digits

    x, _ = grading_digits(n)
    x = x.astype(np.float32) / 255.0
    return x[..., np.newaxis] if layout == "nhwc" else x[:, np.newaxis]


def grading_labels(n: int = N_GRADING_DIGITS) -> np.ndarray:
    from ..data import grading_digits

    return np.asarray(grading_digits(n)[1], dtype=np.int64)


class AccuracyAtLeast:
    """A trained model, described as data, whose outputs on the held-out digits (computed
    here by ``outputs(got)``) take the right label often enough."""

    def __init__(self, labels: np.ndarray, threshold: float, hint: str, outputs):
        self.labels, self.threshold, self.hint, self.outputs = labels, threshold, hint, outputs

    def accuracy(self, got) -> float | None:
        try:
            scores = self.outputs(got)
        except (CheckError, WeightsError, KeyError, TypeError, ValueError):
            return None
        if scores.ndim != 2 or scores.shape[0] != len(self.labels) or scores.shape[1] < 2:
            return None
        return float(np.mean(np.argmax(scores, axis=1) == self.labels))

    def mismatch(self, got, what: str) -> Mismatch | None:
        n = len(self.labels)
        try:
            scores = self.outputs(got)
        except (CheckError, WeightsError) as exc:
            return Mismatch(what, TYPE, str(exc), got)
        if scores.ndim != 2 or scores.shape != (n, scores.shape[1]) or scores.shape[1] < 2:
            return Mismatch(
                what,
                TYPE,
                f"the model maps the {n:,} digits to shape {scores.shape}, not ({n}, 10)",
                got,
            )
        if not np.isfinite(scores).all():
            return Mismatch(what, VALUES, "the model's outputs are not finite (nan or inf)", got)
        predicted = np.argmax(scores, axis=1)
        return too_few_right(
            what, predicted, self.labels, self.threshold, "held-out digits", self.hint
        )


def keras_model_outputs(got, images: np.ndarray) -> np.ndarray:
    """The outputs of the Keras model ``keras_weights`` described, run by the checks."""
    if type(got) is not dict:
        raise CheckError(f"no description of a model, got {type_name(got)}")
    if type(got.get("json")) is not np.ndarray:
        raise CheckError(
            got.get("error")
            or f"the model should be a keras.Model (keras.Sequential), got {got.get('type')}"
        )
    table = gm.layer_table_from_config(got["json"])
    shape = gm.config_input_shape(got["json"])
    if shape != images.shape[1:]:
        raise CheckError(f"the model's input shape is {shape}, expected {images.shape[1:]}")
    weights = got.get("weights")
    if type(weights) is not list:
        raise CheckError("the model's weights are missing")
    why = described_differently(got, table, shape, probe_images(shape))
    if why is not None:
        raise CheckError(why)
    return keras_outputs(table, shape, weights, images)


def torch_model_outputs(got, images: np.ndarray) -> np.ndarray:
    """The logits of the lecture CNN whose ``state_dict`` ``torch_state`` described."""
    from .torch_models import TORCH_SHAPES, lecture_cnn_logits

    if type(got) is not dict or type(got.get("state")) is not dict:
        raise CheckError(f"the model should be a torch.nn.Module, got {type_name(got)}")
    state = got["state"]
    for name, shape in TORCH_SHAPES.items():
        value = state.get(name)
        if type(value) is not np.ndarray or value.shape != shape:
            found = "missing" if value is None else f"of shape {getattr(value, 'shape', '?')}"
            raise CheckError(f"the model's parameter {name} is {found}, expected {shape}")
    extra = sorted(set(state) - set(TORCH_SHAPES))
    if extra:
        raise CheckError(f"the model has parameters the lecture network does not: {extra[:5]}")
    return lecture_cnn_logits(state, images)


class TrainedAccuracy(Spec):
    """The accuracy of a trained model (a notebook variable) on the held-out grading digits,
    computed by the checks from the model's weights: no image goes to the kernel."""

    adapter = "keras_value"
    outputs = "the trained model"
    n_random = 0
    layout = "nhwc"
    threshold = KERAS_CNN_THRESHOLD
    hint = (
        "is it trained (fit called with epochs > 0, after every cell above) and are the "
        "images scaled to [0, 1]?"
    )

    def model_outputs(self, got, images: np.ndarray) -> np.ndarray:
        return keras_model_outputs(got, images)

    def matcher(self) -> AccuracyAtLeast:
        images = grading_images(self.layout)
        return AccuracyAtLeast(
            grading_labels(),
            self.threshold,
            self.hint,
            lambda got: self.model_outputs(got, images),
        )

    def anchors(self):
        def show(value):
            accuracy = self.matcher().accuracy(value)
            if accuracy is None:
                return []
            return [
                f"{self.target}: {accuracy:.2%} of the {N_GRADING_DIGITS:,} held-out grading "
                f"digits (at least {self.threshold:.0%} needed), computed from its weights"
            ]

        def build():
            return (), ({"probe": probe_images((28, 28, 1))} if self.layout == "nhwc" else {})

        return [Anchor(f"the trained {self.target}", build, show)]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return self.matcher()

    def describe(self, c):
        return f"{self.target}'s weights on the {N_GRADING_DIGITS:,} held-out grading digits"


class KerasAccuracy(TrainedAccuracy):
    name = "keras_accuracy"
    target = family = "model"


class CroppedAccuracy(TrainedAccuracy):
    name = "cropped_accuracy"
    target = family = "cropped_model"
    threshold = CROPPED_THRESHOLD


class ClassicAccuracy(TrainedAccuracy):
    name = "classic_accuracy"
    target = family = "classic_model"
    threshold = CLASSIC_THRESHOLD


class TorchAccuracy(TrainedAccuracy):
    name = "torch_accuracy"
    target = family = "model"
    adapter = "torch_state"
    layout = "nchw"
    threshold = TORCH_CNN_THRESHOLD
    hint = (
        "is it trained (train runs its epochs and calls optimizer.step() for every batch) "
        "and are the images scaled to [0, 1]?"
    )

    def model_outputs(self, got, images: np.ndarray) -> np.ndarray:
        return torch_model_outputs(got, images)


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        KerasAccuracy(),
        CroppedAccuracy(),
        ClassicAccuracy(),
        TorchAccuracy(),
    )
}
