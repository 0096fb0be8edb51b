"""Check descriptions of the capstone notebook ``02_numpy_cnn``: your own layers learn MNIST.

The network is fixed: a convolution (stride 1, no padding) -> ReLU -> 2x2 max pooling with
stride 2 -> flatten (``P.reshape(m, -1)``, channels last) -> dense layer -> softmax with the
mean cross-entropy over the batch. Its parameters are a dict of float64 arrays::

    W1 (f, f, n_C, n_F)   b1 (1, 1, 1, n_F)   W2 (n_flat, n_classes)   b2 (1, n_classes)

where ``n_flat = n_Hp * n_Wp * n_F`` and ``n_Hp = (n_H - f + 1) // 2`` (the same for the
width). Every size follows from the shapes of ``params`` and ``X``, so the checks use small
networks as well as the real one (28x28 digits, 8 filters 3x3, 10 classes).

The specs:

* ``pool_backward_fast``: the vectorised pooling backward pass, against PyTorch's autograd
  (the cases of ``pool_backward``), and fast enough for training;
* ``network_gradients``: ``(loss, grads)`` of the whole network, against PyTorch's autograd of
  the same network in float64;
* ``network_gradient_check``: the same function against centred differences of a numpy
  forward pass of the network, on tiny networks (a gradient check that trusts no framework);
* ``sgd_step``: one step of gradient descent, ``(new_params, loss)``, to 1e-8 of the oracle's;
* ``trained_accuracy``: the notebook's trained parameters (``params``), run by the checks'
  own forward pass (:func:`cnncourse.checks.model_eval.capstone_logits`), label the held-out
  digits (:func:`cnncourse.data.grading_digits`, never sent to the kernel) with at least
  :data:`ACCURACY_THRESHOLD` accuracy.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from ..testing import relative_error
from . import lectures
from .engine import Anchor, Spec, one_smaller
from .matchers import TYPE, VALUES, Array, Mismatch, Number, too_few_right, type_name
from .misconception_entry import Misconception
from .numpy_backward import PoolBackward, _conv_numpy, centred_differences
from .numpy_forward import IM2COL_POLICY

# The network's fixed hyperparameters (the notebook's given cell defines the same).
CONV_HPARAMETERS = {"stride": 1, "pad": 0}
POOL_HPARAMETERS = {"f": 2, "stride": 2}
PARAM_NAMES = ("W1", "b1", "W2", "b2")
ACCURACY_THRESHOLD = 0.90  # on the grading digits, after the notebook's fast-mode training
LEARNING_RATES = {1: 0.01, 2: 0.1, 3: 0.3, 4: 1.0}  # config "lr" -> learning rate


# ---------------------------------------------------------------------- the network


def pooled_size(n: int, f: int) -> int:
    """Height (or width) after the convolution (``f x f``, stride 1, no padding) and the
    2x2 max pooling with stride 2."""
    pool_f, pool_stride = POOL_HPARAMETERS["f"], POOL_HPARAMETERS["stride"]
    return (n - f + 1 - pool_f) // pool_stride + 1


def numpy_loss(params: dict, X: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of the network on ``X`` (m, n_H, n_W, n_C) with labels ``y`` (m,),
    computed directly in numpy (float64): the forward pass of the gradient check."""
    from numpy.lib.stride_tricks import sliding_window_view

    W1, b1, W2, b2 = (params[k] for k in PARAM_NAMES)
    A = np.maximum(_conv_numpy(X, W1, b1, stride=1, pad=0), 0.0)
    pool_f, stride = POOL_HPARAMETERS["f"], POOL_HPARAMETERS["stride"]
    pooled = sliding_window_view(A, (pool_f, pool_f), axis=(1, 2))[:, ::stride, ::stride]
    P = pooled.max(axis=(-2, -1))
    logits = P.reshape(len(X), -1) @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(X)), np.asarray(y, dtype=np.int64)].mean())


def oracle_network(params: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """``(loss, grads)`` of the network by PyTorch's autograd in float64.

    ``grads`` has the keys and shapes of ``params``. The flatten follows the course's
    channels-last layout: PyTorch's ``(m, n_F, h, w)`` is permuted to ``(m, h, w, n_F)``
    before it is reshaped, as ``P.reshape(m, -1)`` does in numpy.
    """
    import torch  # imported late: the grader's process only

    F = torch.nn.functional

    def leaf(array: np.ndarray):
        return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)

    x = torch.from_numpy(np.ascontiguousarray(np.transpose(X, (0, 3, 1, 2)), dtype=np.float64))
    W1 = leaf(np.transpose(params["W1"], (3, 2, 0, 1)))  # (n_F, n_C, f, f)
    b1 = leaf(np.reshape(params["b1"], -1))
    W2, b2 = leaf(params["W2"]), leaf(params["b2"])
    z = F.conv2d(x, W1, b1, stride=CONV_HPARAMETERS["stride"], padding=CONV_HPARAMETERS["pad"])
    p = F.max_pool2d(
        F.relu(z), kernel_size=POOL_HPARAMETERS["f"], stride=POOL_HPARAMETERS["stride"]
    )
    flat = p.permute(0, 2, 3, 1).reshape(len(X), -1)
    logits = flat @ W2 + b2
    loss = F.cross_entropy(logits, torch.from_numpy(np.asarray(y, dtype=np.int64)))
    loss.backward()
    grads = {
        "W1": np.ascontiguousarray(W1.grad.numpy().transpose(2, 3, 1, 0)),
        "b1": b1.grad.numpy().reshape(1, 1, 1, -1).copy(),
        "W2": W2.grad.numpy().copy(),
        "b2": b2.grad.numpy().copy(),
    }
    return float(loss.item()), grads


def numerical_network_gradients(params: dict, X, y, eps: float = 1e-6) -> dict:
    """Centred differences of :func:`numpy_loss` with respect to every parameter entry."""
    work = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}
    arrays = [work[name] for name in PARAM_NAMES]
    grads = centred_differences(lambda: numpy_loss(work, X, y), arrays, eps)
    return dict(zip(PARAM_NAMES, grads, strict=True))


# ------------------------------------------------------------------ configurations


def _net_valid(c: dict) -> bool:
    return (
        c["m"] >= 1
        and c["n_C"] >= 1
        and c["n_F"] >= 1
        and c["n_classes"] >= 2
        and c["f"] >= 1
        and pooled_size(c["n_H"], c["f"]) >= 1
        and pooled_size(c["n_W"], c["f"]) >= 1
    )


def _draw_net(rng, small: bool = False) -> dict:
    f = int(rng.integers(2, 4))
    side = 4 if small else 7
    return dict(
        m=int(rng.integers(1, 4 if small else 5)),
        n_H=int(rng.integers(f + 1, f + side)),
        n_W=int(rng.integers(f + 1, f + side)),
        n_C=int(rng.integers(1, 3)),
        f=f,
        n_F=int(rng.integers(1, 3 if small else 5)),
        n_classes=int(rng.integers(2, 4 if small else 11)),
    )


def _smaller_net(c: dict) -> list[dict]:
    floors = (("m", 1), ("n_classes", 2), ("n_F", 1), ("n_C", 1), ("n_H", 1), ("n_W", 1))
    return one_smaller(c, (*floors, ("f", 1)), _net_valid)


def _describe_net(c: dict) -> str:
    n_flat = pooled_size(c["n_H"], c["f"]) * pooled_size(c["n_W"], c["f"]) * c["n_F"]
    text = (
        f"X of shape ({c['m']}, {c['n_H']}, {c['n_W']}, {c['n_C']}), "
        f"{c['n_F']} filter(s) {c['f']}x{c['f']}, W2 of shape ({n_flat}, {c['n_classes']})"
    )
    if "lr" in c:
        text += f", learning_rate {LEARNING_RATES[c['lr']]}"
    return text


def random_params(c: dict, rng: np.random.Generator) -> dict:
    """Parameters of the network of configuration ``c`` (random, non-zero biases). With
    ``dead=1`` the first filter's bias is -4, so its ReLU is 0 everywhere: a gradient that
    skips the ReLU's mask then shows in every case, not only when a whole pooling window
    happens to be negative."""
    f, n_C, n_F = c["f"], c["n_C"], c["n_F"]
    n_flat = pooled_size(c["n_H"], f) * pooled_size(c["n_W"], f) * n_F
    b1 = rng.standard_normal((1, 1, 1, n_F)) * 0.1
    if c.get("dead"):
        b1[..., 0] = -4.0
    return {
        "W1": rng.standard_normal((f, f, n_C, n_F)) * np.sqrt(2.0 / (f * f * n_C)),
        "b1": b1,
        "W2": rng.standard_normal((n_flat, c["n_classes"])) * np.sqrt(1.0 / n_flat),
        "b2": rng.standard_normal((1, c["n_classes"])) * 0.1,
    }


def _net_inputs(c: dict, rng: np.random.Generator) -> tuple:
    params = random_params(c, rng)
    X = rng.standard_normal((c["m"], c["n_H"], c["n_W"], c["n_C"]))
    y = rng.integers(0, c["n_classes"], size=c["m"]).astype(np.int64)
    return params, X, y


REAL_SIZE = dict(m=4, n_H=28, n_W=28, n_C=1, f=3, n_F=8, n_classes=10)


# ------------------------------------------------------------------------- matchers


class ParamDict:
    """A dict with exactly the keys W1, b1, W2, b2, each an array close to ``expected``.

    ``role`` is "gradients" or "parameters" (for messages). The known mistakes (a gradient
    with the wrong sign, ...) are catalogue entries at the end of this module.
    """

    def __init__(
        self,
        expected: dict,
        role: str = "gradients",
        rtol: float = 1e-7,
        atol: float = 1e-10,
    ):
        self.expected, self.role, self.rtol, self.atol = expected, role, rtol, atol

    def mismatch(self, got, what: str) -> Mismatch | None:
        names = ", ".join(PARAM_NAMES)
        if type(got) is not dict:
            return Mismatch(
                what, TYPE, f"{what} should be a dict ({names}), got {type_name(got)}", got
            )
        missing = [k for k in PARAM_NAMES if k not in got]
        extra = sorted(k for k in got if k not in PARAM_NAMES)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(map(repr, extra))}")
            return Mismatch(
                what,
                TYPE,
                f"{what} should have exactly the keys {names} (the keys of params); "
                + "; ".join(parts),
                got,
            )
        wrong, found = [], None
        for key in PARAM_NAMES:
            matcher = Array(self.expected[key], rtol=self.rtol, atol=self.atol)
            problem = matcher.mismatch(got[key], f"{what}[{key!r}]")
            if problem is not None:
                wrong.append(key)
                found = found or problem
        if found is None:
            return None
        # an all-zero gradient (a dead ReLU in a tiny case) that matches says nothing
        right = [k for k in PARAM_NAMES if k not in wrong and np.any(self.expected[k] != 0)]
        if self.role == "gradients" and right:
            found.details = [
                f"wrong: {', '.join(wrong)}; right: {', '.join(right)}. " + _where_to_look(wrong)
            ] + found.details
        return found


def _where_to_look(wrong: list[str]) -> str:
    if set(wrong) <= {"W1", "b1"}:
        return (
            "The loss and the dense layer are right: look at what goes back through the "
            "flatten (reshape dflat to the pooled shape), the max pooling, the ReLU (its mask "
            "comes from Z1 > 0) and the convolution."
        )
    if set(wrong) <= {"W2", "b2"}:
        return (
            "The first layer's gradients are right: look at dW2 = flat.T @ dlogits and "
            "db2 = the sum of dlogits over the batch (keep the shape (1, n_classes))."
        )
    return ""


class RelativeErrors:
    """A dict of gradients whose relative errors ``|g - e| / (|g| + |e|)`` (norms, per
    parameter) against numerical gradients are below ``limit``."""

    def __init__(self, expected: dict, limit: float = 1e-7):
        self.expected, self.limit = expected, limit

    def mismatch(self, got, what: str) -> Mismatch | None:
        found = ParamDict(self.expected, rtol=1e-5, atol=1e-8).mismatch(got, what)
        if found is not None and found.kind != VALUES:
            return found  # not a dict of the right keys, types and shapes
        for key in PARAM_NAMES:
            g, e = got[key], self.expected[key]
            shape_only = Array(e, values=False).mismatch(g, f"{what}[{key!r}]")
            if shape_only is not None:
                return shape_only
            if not np.all(np.isfinite(g)):
                return Mismatch(what, VALUES, f"{what}[{key!r}] contains NaN or infinity", g)
            error = relative_error(g, e)
            if not error < self.limit:
                return Mismatch(
                    f"{what}[{key!r}]",
                    VALUES,
                    f"{what}[{key!r}] does not match the numerical gradient of the loss: "
                    f"relative error {error:.2e} (must be below {self.limit:.0e})",
                    g,
                    e,
                )
        return None


class LossAndGrads:
    """``(loss, grads)``: a number and a :class:`ParamDict` (or another grads matcher)."""

    def __init__(self, loss: float, grads, loss_rtol: float = 1e-7):
        self.loss, self.grads, self.loss_rtol = loss, grads, loss_rtol

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not tuple or len(got) != 2:
            shown = f"{len(got)} items" if type(got) in (tuple, list) else type_name(got)
            return Mismatch(what, TYPE, f"{what} should be a tuple (loss, grads), got {shown}", got)
        found = Number(self.loss, rtol=self.loss_rtol).mismatch(got[0], "loss")
        if found is not None:
            return found
        return self.grads.mismatch(got[1], "grads")


class StepResult:
    """``(new_params, loss)`` of one gradient-descent step."""

    def __init__(self, params: ParamDict, loss: float):
        self.params, self.loss = params, loss

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not tuple or len(got) != 2:
            shown = f"{len(got)} items" if type(got) in (tuple, list) else type_name(got)
            return Mismatch(
                what, TYPE, f"{what} should be a tuple (new_params, loss), got {shown}", got
            )
        found = self.params.mismatch(got[0], "new_params")
        if found is not None:
            return found
        return Number(self.loss).mismatch(got[1], "loss")


class AccuracyAtLeast:
    """Trained parameters (the network's dict of arrays) whose predictions for ``images``,
    computed here, match ``labels`` often enough."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, threshold: float = ACCURACY_THRESHOLD
    ):
        self.images, self.labels, self.threshold = images, np.asarray(labels), threshold

    def predictions(self, got) -> np.ndarray | str:
        """Labels predicted with the parameters ``got``, or why they cannot be run."""
        if type(got) is not dict or set(got) != set(PARAM_NAMES):
            keys = sorted(got) if type(got) is dict else type_name(got)
            return f"params should be the dict {PARAM_NAMES} of trained arrays, got {keys}"
        W1, b1, W2, b2 = (got[k] for k in PARAM_NAMES)
        if not all(type(a) is np.ndarray and a.dtype.kind == "f" for a in (W1, b1, W2, b2)):
            return "every parameter should be a float numpy array"
        side = self.images.shape[1]
        if W1.ndim != 4 or W1.shape[0] != W1.shape[1] or W1.shape[2] != 1:
            return f"W1 has shape {W1.shape}, expected (f, f, 1, n_F)"
        n_F, flat = W1.shape[3], pooled_size(side, W1.shape[0]) ** 2 * W1.shape[3]
        if b1.size != n_F or W2.shape != (flat, W2.shape[-1]) or b2.size != W2.shape[-1]:
            return (
                f"the parameters do not fit together: W1 {W1.shape}, b1 {b1.shape}, W2 "
                f"{W2.shape}, b2 {b2.shape} (W2 needs {flat} rows for 28x28 digits)"
            )
        from .model_eval import capstone_logits

        return capstone_logits(got, self.images).argmax(axis=1)

    def mismatch(self, got, what: str) -> Mismatch | None:
        predicted = self.predictions(got)
        if isinstance(predicted, str):
            return Mismatch(what, TYPE, predicted, got)
        advice = (
            "run the training cell after every cell above it; if the loss did not fall, check "
            "network_gradients and sgd_step first."
        )
        return too_few_right(
            what, predicted, self.labels, self.threshold, "held-out digits", advice
        )


# ---------------------------------------------------------------------------- specs


class PoolBackwardFast(PoolBackward):
    """The pooling backward pass without a Python loop over positions (the cases of
    ``pool_backward``, both modes), fast enough to train with."""

    name = target = "pool_backward_fast"
    forbidden = IM2COL_POLICY
    outputs = "pool_backward_fast(...)"
    # Four training batches of 64 digits after the first layer: a loop over every output takes
    # about 2.5 s of CPU (too slow to train with: about 0.6 s per batch), the vectorised
    # version about 0.08 s; the limit leaves room for the grader's round trip on a busy machine.
    speed = (dict(m=256, n_H_prev=26, n_W_prev=26, n_C=8, f=2, stride=2, mode="max", ties=0), 1.0)


class NetworkGradients(Spec):
    name = target = "network_gradients"
    family = "network_gradients"
    forbidden = IM2COL_POLICY
    arg_names = ("params", "X", "y")
    outputs = "network_gradients(...)"
    # 64 digits of 28x28 through the real network: a vectorised pass takes milliseconds
    speed: tuple[dict, float] | None = (dict(REAL_SIZE, m=64), 1.0)

    def required(self):
        return [
            REAL_SIZE,
            dict(m=2, n_H=7, n_W=8, n_C=2, f=3, n_F=3, n_classes=4),  # odd sizes: pooling floors
            dict(m=1, n_H=5, n_W=5, n_C=1, f=2, n_F=2, n_classes=3),
            dict(m=3, n_H=6, n_W=9, n_C=1, f=3, n_F=2, n_classes=10),
            dict(m=2, n_H=6, n_W=6, n_C=1, f=2, n_F=2, n_classes=3, dead=1),  # the ReLU's mask
        ]

    def hidden_required(self):
        return [
            dict(m=5, n_H=9, n_W=6, n_C=3, f=2, n_F=4, n_classes=2),
            dict(m=2, n_H=4, n_W=4, n_C=1, f=1, n_F=1, n_classes=5),
        ]

    def draw(self, rng):
        return _draw_net(rng)

    def inputs(self, c, rng):
        return _net_inputs(c, rng), {}

    def expect(self, c, args, kwargs):
        params, X, y = args
        loss, grads = oracle_network(params, X, y)
        return LossAndGrads(loss, ParamDict(grads))

    def describe(self, c):
        return _describe_net(c)

    def smaller(self, c):
        return _smaller_net(c)


class NetworkGradientCheck(NetworkGradients):
    """``network_gradients`` against centred differences of a numpy forward pass."""

    name = "network_gradient_check"
    n_random = 3
    speed = None

    def required(self):
        return [
            dict(m=2, n_H=6, n_W=6, n_C=1, f=3, n_F=2, n_classes=3),
            dict(m=1, n_H=5, n_W=6, n_C=2, f=2, n_F=2, n_classes=2, dead=1),  # the ReLU's mask
        ]

    def hidden_required(self):
        return [dict(m=3, n_H=7, n_W=5, n_C=1, f=3, n_F=2, n_classes=4)]

    def draw(self, rng):
        return _draw_net(rng, small=True)

    def expect(self, c, args, kwargs):
        params, X, y = args
        grads = numerical_network_gradients(params, X, y)
        return LossAndGrads(numpy_loss(params, X, y), RelativeErrors(grads))


class SgdStep(Spec):
    name = target = family = "sgd_step"
    forbidden = IM2COL_POLICY
    arg_names = ("params", "X", "y", "learning_rate")
    outputs = "sgd_step(...)"
    # sgd_step calls network_gradients: wrong gradients cost network_gradients' points, and
    # sgd_step is checked again with the checks' gradients in their place
    helpers: tuple[str, ...] = ("network_gradients",)

    def helper_table(self, helper, args, kwargs):
        """The loss and gradients of the one batch this step is given (one entry)."""
        from .calls import digest

        params, X, y, _ = args
        loss, grads = oracle_network(params, X, y)
        key = digest(*(params[name] for name in sorted(params)), X, y)
        return {
            "kind": "network_gradients",
            "keys": np.frombuffer(key, dtype=np.uint8).reshape(1, 16).copy(),
            "values": [{"loss": float(loss), "grads": dict(grads)}],
        }

    def required(self):
        return [
            dict(REAL_SIZE, lr=3),
            dict(m=2, n_H=7, n_W=6, n_C=1, f=3, n_F=3, n_classes=4, lr=2),
            dict(m=1, n_H=5, n_W=5, n_C=2, f=2, n_F=2, n_classes=3, lr=4),
        ]

    def hidden_required(self):
        return [dict(m=3, n_H=8, n_W=9, n_C=1, f=3, n_F=4, n_classes=10, lr=1)]

    def draw(self, rng):
        return dict(_draw_net(rng), lr=int(rng.integers(1, 5)))

    def inputs(self, c, rng):
        params, X, y = _net_inputs(c, rng)
        return (params, X, y, LEARNING_RATES[c["lr"]]), {}

    def expect(self, c, args, kwargs):
        params, X, y, learning_rate = args
        loss, grads = oracle_network(params, X, y)
        new = {k: params[k] - learning_rate * grads[k] for k in PARAM_NAMES}
        return StepResult(ParamDict(new, "parameters", rtol=1e-8, atol=1e-12), loss)

    def describe(self, c):
        return _describe_net(c)

    def smaller(self, c):
        return [
            dict(s, lr=c["lr"]) for s in _smaller_net({k: v for k, v in c.items() if k != "lr"})
        ]


def _held_out(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The grader's held-out digits as the network takes them: (m, 28, 28, 1) in [0, 1]."""
    from ..data import grading_digits

    x, y = grading_digits(n)
    return (np.asarray(x, dtype=np.float64) / 255.0)[..., np.newaxis], np.asarray(y)


class TrainedAccuracy(Spec):
    """The trained parameters, run by the checks on held-out digits the kernel never gets."""

    name = "trained_accuracy"
    target = "params"
    family = "trained_accuracy"
    adapter = "value"
    outputs = "params"
    n_random = 0
    n_digits = 2_000

    def matcher(self) -> AccuracyAtLeast:
        images, labels = _held_out(self.n_digits)
        return AccuracyAtLeast(images, labels)

    def anchors(self):
        n = self.n_digits

        def show(value):
            matcher = self.matcher()
            predicted = matcher.predictions(value)
            if isinstance(predicted, str):
                return []
            accuracy = float(np.mean(predicted == matcher.labels))
            return [f"accuracy of params on the {n:,} held-out grading digits: {accuracy:.2%}"]

        return [Anchor("the trained params", lambda: ((), {}), show)]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return self.matcher()

    def describe(self, c):
        return f"params on the {self.n_digits:,} held-out grading digits"


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        PoolBackwardFast(),
        NetworkGradients(),
        NetworkGradientCheck(),
        SgdStep(),
        TrainedAccuracy(),
    )
}


# ==================================================================== known mistakes


def _gradients_like(scale: float):
    """A mutant of network_gradients: the oracle's gradients times ``scale``."""

    def mutant(spec, config, args, kwargs):
        params, X, y = args
        loss, grads = oracle_network(params, X, y)
        factor = len(X) if scale == 0 else scale  # 0: the batch size
        if factor == 1:
            return None
        scaled = {k: g * factor for k, g in grads.items()}
        return LossAndGrads(loss, ParamDict(scaled, rtol=1e-5, atol=1e-8))

    return mutant


def _step_like(direction: float, use_rate: bool = True):
    """A mutant of sgd_step: params + direction * (learning rate or 1) * gradient."""

    def mutant(spec, config, args, kwargs):
        params, X, y, learning_rate = args
        if not use_rate and learning_rate == 1.0:
            return None
        loss, grads = oracle_network(params, X, y)
        rate = learning_rate if use_rate else 1.0
        new = {k: params[k] + direction * rate * grads[k] for k in PARAM_NAMES}
        return StepResult(ParamDict(new, "parameters", rtol=1e-8, atol=1e-12), loss)

    return mutant


MISCONCEPTIONS = [
    Misconception(
        "gradients_wrong_sign",
        "every gradient has the wrong sign: return the gradient of the loss (uphill); "
        "sgd_step subtracts learning_rate * gradient itself",
        lecture=lectures.LOSS_GRADIENT,
        mutant=_gradients_like(-1.0),
        applies_to=("network_gradients",),
    ),
    Misconception(
        "gradients_summed",
        "every gradient is m times too large (m, the batch size): the loss is the mean over "
        "the batch, so the gradients are means too",
        lecture=lectures.LOSS_GRADIENT,
        mutant=_gradients_like(0),
        applies_to=("network_gradients",),
    ),
    Misconception(
        "step_unchanged",
        "the parameters did not change: subtract learning_rate * gradient",
        lecture=lectures.SGD,
        mutant=_step_like(0.0),
        applies_to=("sgd_step",),
    ),
    Misconception(
        "step_uphill",
        "the step goes uphill: subtract learning_rate * gradient, do not add it",
        lecture=lectures.SGD,
        mutant=_step_like(+1.0),
        applies_to=("sgd_step",),
    ),
    Misconception(
        "step_without_rate",
        "the learning rate is not used: the step is learning_rate * gradient",
        lecture=lectures.SGD,
        mutant=_step_like(-1.0, use_rate=False),
        applies_to=("sgd_step",),
    ),
]
