"""Check descriptions of assignment 4's PyTorch code: the module, evaluate, the weight copy.

* the module (adapter ``torch_module``) is loaded with weights drawn here and its logits are
  compared with a float64 numpy forward pass of the lecture network: the forward pass is
  checked, flatten order included, not only the shapes;
* the Keras-to-PyTorch copy (``keras_to_torch``): a Keras model holding weights drawn here
  (random biases too) is copied into the student's module; the expected logits come from
  the same weights;
* ``evaluate`` (``torch_evaluate``): a linear model of weights drawn here; the expected
  accuracy, the batch sizes and gradients off are checked.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .. import grading_models as gm
from ..testing import CheckError
from . import lectures
from .engine import Anchor, Spec, one_smaller
from .matchers import (
    TYPE,
    VALUES,
    Array,
    Mismatch,
    Number,
    mismatch_from_check,
    type_name,
)
from .misconception_entry import Misconception

# ================================================================= A4: PyTorch

# The parameters of the lecture CNN in PyTorch, by the names the exercise asks for.
TORCH_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1.weight": (32, 1, 3, 3),
    "conv1.bias": (32,),
    "conv2.weight": (64, 32, 3, 3),
    "conv2.bias": (64,),
    "conv3.weight": (64, 64, 3, 3),
    "conv3.bias": (64,),
    "fc1.weight": (64, 576),
    "fc1.bias": (64,),
    "fc2.weight": (10, 64),
    "fc2.bias": (10,),
}
TORCH_KINDS = ["Conv2d", "Conv2d", "Conv2d", "Linear", "Linear"]
TORCH_PARAMS = sum(int(np.prod(s)) for s in TORCH_SHAPES.values())  # 93,322
# The Keras lecture CNN's weights, in get_weights() order.
KERAS_SHAPES: list[tuple[int, ...]] = [
    (3, 3, 1, 32),
    (32,),
    (3, 3, 32, 64),
    (64,),
    (3, 3, 64, 64),
    (64,),
    (576, 64),
    (64,),
    (64, 10),
    (10,),
]


def _conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross-correlation of x (m, C, H, W) with w (F, C, k, k), stride 1, no padding."""
    k = w.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return np.einsum("mchwij,fcij->mfhw", windows, w, optimize=True) + b[None, :, None, None]


def _max_pool2(x: np.ndarray) -> np.ndarray:
    m, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :, : 2 * h2, : 2 * w2].reshape(m, c, h2, 2, w2, 2).max(axis=(3, 5))


def lecture_cnn_logits(state: dict, x: np.ndarray, flatten: str = "chw") -> np.ndarray:
    """The lecture CNN's logits in float64 numpy, for PyTorch-layout weights ``state``
    (names of :data:`TORCH_SHAPES`) and channels-first images ``x`` (m, 1, 28, 28).

    ``flatten="hwc"`` flattens the last feature maps in Keras' (row, column, channel) order
    instead of PyTorch's (channel, row, column): what a forward pass with that mistake gives.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    a = _max_pool2(
        relu(_conv2d(np.asarray(x, dtype=np.float64), p["conv1.weight"], p["conv1.bias"]))
    )
    a = _max_pool2(relu(_conv2d(a, p["conv2.weight"], p["conv2.bias"])))
    a = relu(_conv2d(a, p["conv3.weight"], p["conv3.bias"]))
    flat = (
        a.reshape(len(a), -1) if flatten == "chw" else a.transpose(0, 2, 3, 1).reshape(len(a), -1)
    )
    hidden = relu(flat @ p["fc1.weight"].T + p["fc1.bias"])
    return hidden @ p["fc2.weight"].T + p["fc2.bias"]


def keras_to_torch_state(weights: list, permute_fc1: bool = True, conv_axes=(3, 2, 0, 1)) -> dict:
    """The PyTorch state of the lecture CNN that computes what a Keras lecture CNN with
    ``weights`` (get_weights() order) computes.

    ``permute_fc1=False`` and ``conv_axes=(3, 2, 1, 0)`` give the states of two mistakes:
    forgetting the flatten order, and swapping the kernels' height and width.
    """
    names = ["conv1", "conv2", "conv3", "fc1", "fc2"]
    state = {}
    for i, name in enumerate(names):
        kernel, bias = np.asarray(weights[2 * i]), np.asarray(weights[2 * i + 1])
        if name.startswith("conv"):
            kernel = kernel.transpose(conv_axes)
        else:
            if name == "fc1" and permute_fc1:
                # rows in Keras' (row, column, channel) order -> PyTorch's (channel, row, column)
                kernel = kernel.reshape(3, 3, 64, -1).transpose(2, 0, 1, 3).reshape(576, -1)
            kernel = kernel.T
        state[f"{name}.weight"], state[f"{name}.bias"] = kernel, bias
    return state


def _list(got: dict, key: str) -> list:
    """``got[key]`` if it is a list, else an empty one (a kernel's data may be anything)."""
    value = got.get(key)
    return value if type(value) is list else []


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _params_difference(shapes: dict) -> str | None:
    """How a module's named parameter shapes differ from TORCH_SHAPES, in words."""
    got = {k: tuple(v) for k, v in shapes.items()}
    detail = None
    for name, shape in TORCH_SHAPES.items():
        if name not in got:
            detail = (
                f"it has no parameter {name} (name the layers conv1, conv2, conv3, fc1 and "
                "fc2, as the exercise asks)"
            )
        elif got[name] != shape:
            detail = f"{name} has shape {got[name]}, expected {shape}"
        if detail:
            break
    if detail is None:
        extra = [k for k in got if k not in TORCH_SHAPES]
        if not extra:
            return None
        detail = f"it has parameters the lecture network does not: {', '.join(extra[:5])}"
    total = sum(int(np.prod(s)) for s in got.values())
    count = f"{total:,} parameters, expected {TORCH_PARAMS:,}: " if total != TORCH_PARAMS else ""
    return f"LectureCNN has {count}{detail}"


class TorchParameters:
    """``torch_module``'s description: the exercise's named parameters and layer kinds."""

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict or type(got.get("shapes")) is not dict:
            return Mismatch(what, TYPE, f"no description of a module, got {type_name(got)}", got)
        difference = _params_difference(got["shapes"])
        if difference is not None:
            return Mismatch(what, VALUES, difference, got)
        try:
            kinds = _list(got, "kinds")
            gm.check_layer_kinds(kinds, TORCH_KINDS, what="module")
        except CheckError as exc:
            return mismatch_from_check(exc, what, got)
        return None


class TorchForward:
    """``torch_module``'s run: the grader's weights loaded, logits as expected."""

    def __init__(self, expected: np.ndarray, atol: float = 1e-4):
        self.expected, self.atol = expected, atol

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict or type(got.get("shapes")) is not dict:
            return Mismatch(what, TYPE, f"no description of a module, got {type_name(got)}", got)
        if not got.get("loaded"):
            difference = _params_difference(got["shapes"]) or "the parameters do not match"
            return Mismatch(
                what, VALUES, f"the checks cannot load their weights into it: {difference}", got
            )
        out = got.get("output")
        m = len(self.expected)
        if type(out) is not np.ndarray:
            return Mismatch(
                what, TYPE, f"forward should return a torch.Tensor, got {type_name(out)}", got
            )
        if out.shape != self.expected.shape:
            return Mismatch(
                what,
                VALUES,
                f"for input of shape ({m}, 1, 28, 28) forward returns shape {out.shape}, "
                f"expected {self.expected.shape}",
                got,
            )
        if not got.get("requires_grad"):
            return Mismatch(
                what,
                VALUES,
                "the output does not depend on the weights: keep the whole computation in "
                "torch (no .detach(), .numpy() or torch.no_grad() inside forward)",
                got,
            )
        found = Array(self.expected, rtol=1e-4, atol=self.atol).mismatch(out, "the output")
        if found is not None:
            found.message = f"with the checks' weights, {found.message}"
        return found


def random_torch_state(rng: np.random.Generator) -> dict:
    """Weights for the lecture CNN in PyTorch layout (He-scaled; random biases), float32."""
    state = {}
    for name, shape in TORCH_SHAPES.items():
        if name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            values = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            values = rng.standard_normal(shape) * 0.2
        state[name] = values.astype(np.float32)
    return state


def random_keras_weights(rng: np.random.Generator) -> list[np.ndarray]:
    """Weights for the Keras lecture CNN (get_weights() order): He-scaled kernels and random
    biases (Keras starts biases at zero, which would hide a bias that is not copied)."""
    weights = []
    for shape in KERAS_SHAPES:
        if len(shape) > 1:
            values = rng.standard_normal(shape) * np.sqrt(2.0 / int(np.prod(shape[:-1])))
        else:
            values = rng.standard_normal(shape) * 0.2
        weights.append(values.astype(np.float32))
    return weights


def _images(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.random((m, 1, 28, 28), dtype=np.float32)


class LectureCnnParams(Spec):
    name = "lecture_cnn_params"
    target = family = "LectureCNN"
    adapter = "torch_module"
    outputs = "LectureCNN()"
    n_random = 0

    def anchors(self):
        def show(value):
            if type(value) is not dict or type(value.get("shapes")) is not dict:
                return []
            total = sum(int(np.prod(s)) for s in value["shapes"].values())
            return [f"LectureCNN has {total:,} parameters, as the Keras model"]

        return [Anchor("LectureCNN()", lambda: ((None, None), {}), show)]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return TorchParameters()

    def describe(self, c):
        return "LectureCNN()"


class LectureCnnForward(Spec):
    name = "lecture_cnn_forward"
    target = family = "LectureCNN"
    adapter = "torch_module"
    arg_names = ("state", "x")
    outputs = "LectureCNN()(x)"
    n_random = 1

    def required(self):
        return [dict(m=5), dict(m=1)]

    def hidden_required(self):
        return [dict(m=7), dict(m=16)]

    def draw(self, rng):
        return dict(m=int(rng.integers(1, 13)))

    def inputs(self, c, rng):
        return (random_torch_state(rng), _images(rng, c["m"])), {}

    def expect(self, c, args, kwargs):
        state, x = args
        return TorchForward(lecture_cnn_logits(state, x))

    def describe(self, c):
        return f"LectureCNN with the checks' random weights on x of shape ({c['m']}, 1, 28, 28)"

    def smaller(self, c):
        return one_smaller(c, (("m", 1),))


class EvaluateResult:
    """What ``torch_evaluate`` recorded: batches of at most ``batch_size`` covering every
    example once, no gradients, and the right accuracy."""

    def __init__(self, n: int, batch_size: int, accuracy: float):
        self.n, self.batch_size, self.accuracy = n, batch_size, accuracy

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict:
            return Mismatch(what, TYPE, f"no record of the evaluation, got {type_name(got)}", got)
        batches = _list(got, "batches")
        grads = _list(got, "grad_enabled")
        if any(grads):
            return Mismatch(
                what,
                VALUES,
                "evaluate records gradients: run the forward passes under torch.no_grad()",
                got,
            )
        if not batches or max(batches) > self.batch_size or sum(batches) != self.n:
            shown = batches if len(batches) <= 12 else batches[:12] + ["..."]
            return Mismatch(
                what,
                VALUES,
                f"evaluate should see each of the {self.n} examples once, in batches of at "
                f"most {self.batch_size}; it used batches {shown}",
                got,
            )
        return Number(self.accuracy, rtol=0, atol=1e-9).mismatch(got.get("accuracy"), "accuracy")


class Evaluate(Spec):
    name = target = family = "evaluate"
    adapter = "torch_evaluate"
    arg_names = ("weight", "bias", "x", "y", "batch_size")
    outputs = "evaluate's result"
    n_random = 3

    def required(self):
        return [dict(n=437, batch_size=100), dict(n=300, batch_size=64), dict(n=5, batch_size=500)]

    def hidden_required(self):
        return [dict(n=1000, batch_size=256), dict(n=64, batch_size=64), dict(n=7, batch_size=1)]

    def draw(self, rng):
        return dict(n=int(rng.integers(1, 301)), batch_size=int(rng.integers(1, 129)))

    def inputs(self, c, rng):
        n = c["n"]
        weight = (rng.standard_normal((10, 784)) * 0.05).astype(np.float32)
        bias = (rng.standard_normal(10) * 0.1).astype(np.float32)
        x = rng.random((n, 1, 28, 28), dtype=np.float32)
        # No near ties between the two largest logits: float32 and float64 agree on argmax.
        for _ in range(20):
            scores = self._scores(weight, bias, x)
            top2 = np.sort(scores, axis=1)[:, -2:]
            close = (top2[:, 1] - top2[:, 0]) < 1e-3
            if not close.any():
                break
            x[close] = rng.random((int(close.sum()), 1, 28, 28), dtype=np.float32)
        predicted = self._scores(weight, bias, x).argmax(axis=1)
        # About 60% of the labels are what the model predicts, the rest random.
        y = np.where(rng.random(n) < 0.6, predicted, rng.integers(0, 10, n)).astype(np.int64)
        return (weight, bias, x, y, c["batch_size"]), {}

    @staticmethod
    def _scores(weight, bias, x) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float64) @ weight.T.astype(np.float64) + bias

    def expect(self, c, args, kwargs):
        weight, bias, x, y, batch_size = args
        accuracy = float(np.mean(self._scores(weight, bias, x).argmax(axis=1) == y))
        return EvaluateResult(len(x), batch_size, accuracy)

    def describe(self, c):
        return (
            f"evaluate on a linear model of the checks' weights, {c['n']} examples, "
            f"batch_size={c['batch_size']}"
        )

    def smaller(self, c):
        out = []
        if c["n"] > 1:
            out.append(dict(c, n=max(1, c["n"] // 2)))
        if c["batch_size"] > 1:
            out.append(dict(c, batch_size=max(1, c["batch_size"] // 2)))
        return out


class CopiedLogits:
    """``keras_to_torch``'s result: the Keras model untouched, the expected logits."""

    def __init__(self, expected: np.ndarray):
        self.expected = expected

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict:
            return Mismatch(what, TYPE, f"no result of the copy, got {type_name(got)}", got)
        if got.get("keras_unchanged") is not True:
            return Mismatch(
                what,
                VALUES,
                "copy_keras_weights_to_torch changed the Keras model's weights: read them "
                "with get_weights() and leave the Keras model as it is",
                got,
            )
        return Array(self.expected, rtol=1e-4, atol=1e-4).mismatch(
            got.get("logits"), "the PyTorch copy's output"
        )


class CopyKerasWeights(Spec):
    name = "copy_keras_weights"
    target = family = "copy_keras_weights_to_torch"
    adapter = "keras_to_torch"
    arg_names = ("keras weights", "x")
    outputs = "the PyTorch copy's logits"
    # Every case draws new random weights and images (from the check's seed): one case per
    # visible check, two when grading, each building a Keras model in the kernel.
    n_random = 0

    def required(self):
        return [dict(m=4)]

    def hidden_required(self):
        return [dict(m=9)]

    def draw(self, rng):
        return dict(m=int(rng.integers(1, 13)))

    def inputs(self, c, rng):
        return (random_keras_weights(rng), _images(rng, c["m"])), {}

    def expect(self, c, args, kwargs):
        weights, x = args
        return CopiedLogits(lecture_cnn_logits(keras_to_torch_state(weights), x))

    def describe(self, c):
        return (
            "a Keras lecture CNN with the checks' random weights (biases too), copied into "
            f"LectureCNN(), on x of shape ({c['m']}, 1, 28, 28)"
        )

    def smaller(self, c):
        return one_smaller(c, (("m", 1),))


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        LectureCnnParams(),
        LectureCnnForward(),
        Evaluate(),
        CopyKerasWeights(),
    )
}


# ==================================================================== known mistakes


def _forward_softmax(spec, config, args, kwargs):
    if spec.name != "lecture_cnn_forward":  # not lecture_cnn_params, the same class
        return None
    state, x = args
    return TorchForward(_softmax(lecture_cnn_logits(state, x)), atol=1e-5)


def _forward_flatten_hwc(spec, config, args, kwargs):
    if spec.name != "lecture_cnn_forward":  # not lecture_cnn_params, the same class
        return None
    state, x = args
    return TorchForward(lecture_cnn_logits(state, x, flatten="hwc"))


def _copy_fc1_unpermuted(spec, config, args, kwargs):
    weights, x = args
    return CopiedLogits(lecture_cnn_logits(keras_to_torch_state(weights, permute_fc1=False), x))


def _copy_kernels_swapped(spec, config, args, kwargs):
    weights, x = args
    state = keras_to_torch_state(weights, conv_axes=(3, 2, 1, 0))
    return CopiedLogits(lecture_cnn_logits(state, x))


def _evaluate_error_rate(spec, config, args, kwargs):
    right = spec.expect(config, args, kwargs)
    if right.accuracy == 0.5:
        return None
    return EvaluateResult(right.n, right.batch_size, 1 - right.accuracy)


MISCONCEPTIONS = [
    Misconception(
        "evaluate_error_rate",
        "it returns the share of wrong answers (1 - accuracy): count the examples whose "
        "largest logit is their label",
        lecture=lectures.TORCH_LOOP,
        mutant=_evaluate_error_rate,
        applies_to=("evaluate",),
    ),
    Misconception(
        "forward_softmax",
        "forward returns probabilities (a softmax): return the logits, nn.CrossEntropyLoss "
        "applies the softmax itself",
        lecture=lectures.TORCH_LOSS,
        mutant=_forward_softmax,
        applies_to=("LectureCNN",),
    ),
    Misconception(
        "forward_flatten_hwc",
        "the feature maps are flattened in (row, column, channel) order: flatten the "
        "(m, 64, 3, 3) block as it is, torch.flatten(x, 1)",
        lecture=lectures.CHANNELS_FIRST,
        mutant=_forward_flatten_hwc,
        applies_to=("LectureCNN",),
    ),
    Misconception(
        "copy_fc1_unpermuted",
        "the weights of fc1 are not in PyTorch's (channel, row, column) flatten order: the "
        "576 rows of Keras' first dense kernel follow its (row, column, channel) order; "
        "reshape them to (3, 3, 64), move the channel axis first and flatten again before "
        "transposing",
        lecture=lectures.CHANNELS_FIRST,
        mutant=_copy_fc1_unpermuted,
        applies_to=("copy_keras_weights_to_torch",),
    ),
    Misconception(
        "copy_kernels_swapped",
        "the convolution kernels have their height and width swapped: Keras' "
        "(f_H, f_W, n_C_prev, n_C) becomes PyTorch's (n_C, n_C_prev, f_H, f_W) with "
        "transpose(3, 2, 0, 1)",
        lecture=lectures.CHANNELS_FIRST,
        mutant=_copy_kernels_swapped,
        applies_to=("copy_keras_weights_to_torch",),
    ),
]
