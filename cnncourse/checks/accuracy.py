"""Check descriptions of trained models' accuracy (assignments 3-5).

The model in the notebook labels the held-out grading digits
(:func:`cnncourse.data.grading_digits`) in the kernel (adapter ``predict``); only the images
go there, and the accuracy is computed here from labels the kernel never gets.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .engine import Anchor, Spec
from .matchers import (
    TYPE,
    VALUES,
    Mismatch,
    type_name,
)

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
    """Model outputs ``(n, n_classes)`` whose arg-max matches ``labels`` often enough."""

    def __init__(self, labels: np.ndarray, threshold: float, hint: str):
        self.labels, self.threshold, self.hint = labels, threshold, hint

    def accuracy(self, got) -> float | None:
        n = len(self.labels)
        if type(got) is not np.ndarray or got.ndim != 2 or got.shape[0] != n:
            return None
        if got.shape[1] < 2 or got.dtype.kind not in "fiu" or not np.isfinite(got).all():
            return None
        return float(np.mean(got.argmax(axis=1) == self.labels))

    def mismatch(self, got, what: str) -> Mismatch | None:
        n = len(self.labels)
        accuracy = self.accuracy(got)
        if accuracy is None:
            shape = getattr(got, "shape", None)
            return Mismatch(
                what,
                TYPE,
                f"the model should map the {n:,} digits to finite scores of shape ({n}, 10), "
                f"got {type_name(got)}{'' if shape is None else f' of shape {shape}'}",
                got,
            )
        if accuracy < self.threshold:
            return Mismatch(
                what,
                VALUES,
                f"the trained model labels {accuracy:.2%} of the {n:,} held-out digits "
                f"correctly; it must reach {self.threshold:.0%}: {self.hint}",
                got,
            )
        return None


class TrainedAccuracy(Spec):
    """The accuracy of a trained model (a notebook variable) on the held-out grading digits:
    the images go to the kernel, the labels stay here."""

    adapter = "predict"
    outputs = "the model's scores"
    n_random = 0
    layout = "nhwc"
    threshold = KERAS_CNN_THRESHOLD
    hint = (
        "is it trained (fit called with epochs > 0, after every cell above) and are the "
        "images scaled to [0, 1]?"
    )

    def anchors(self):
        def build():
            return (grading_images(self.layout),), {}

        def show(value):
            accuracy = AccuracyAtLeast(grading_labels(), self.threshold, "").accuracy(value)
            if accuracy is None:
                return []
            return [
                f"{self.target}: {accuracy:.2%} of the {N_GRADING_DIGITS:,} held-out grading "
                f"digits (at least {self.threshold:.0%} needed)"
            ]

        return [Anchor(f"the {N_GRADING_DIGITS:,} held-out grading digits", build, show)]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return AccuracyAtLeast(grading_labels(), self.threshold, self.hint)

    def describe(self, c):
        return f"{self.target} on the {N_GRADING_DIGITS:,} held-out grading digits"


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
    layout = "nchw"
    threshold = TORCH_CNN_THRESHOLD
    hint = (
        "is it trained (train runs its epochs and calls optimizer.step() for every batch) "
        "and are the images scaled to [0, 1]?"
    )


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        KerasAccuracy(),
        CroppedAccuracy(),
        ClassicAccuracy(),
        TorchAccuracy(),
    )
}
