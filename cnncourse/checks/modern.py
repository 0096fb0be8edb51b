"""Check descriptions of assignment 6's numpy functions: batch normalization and residual
blocks, forward and backward (the framework blocks and the trained network:
:mod:`cnncourse.checks.modern_models`).

The conventions (shapes, the block's layers, ``params`` keys) are those of
:mod:`cnncourse.checks.modern_oracles`. The specs:

* ``batchnorm_forward``: ``(out, new_running, cache)`` in training and inference mode against
  the formula (numpy, float64), running averages included;
* ``batchnorm_backward``: ``(dX, dgamma, dbeta)`` against PyTorch's autograd (float64);
  ``batchnorm_gradient_check``: the same against centred differences;
* ``residual_block_forward`` (the notebook's given wrapper ``residual_block_output``: your
  forward pass's output): the block's output against PyTorch (float64);
  ``residual_block_gradients`` (the notebook's given wrapper: your forward, then your
  backward): every gradient against PyTorch's autograd; ``residual_block_gradient_check``:
  against centred differences of a numpy forward pass.

:data:`cnncourse.checks.modern_mistakes.MISCONCEPTIONS` lists the known mistakes these checks
recognise.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from ..testing import relative_error
from . import modern_oracles as mo
from .engine import Anchor, Spec, one_smaller
from .matchers import TYPE, VALUES, Array, Mismatch, Number, Sequence, type_name
from .numpy_backward import RelativeError

# numpy only (stride tricks allowed: the given convolution uses them)
NUMPY_POLICY = ("torch", "tensorflow", "keras", "jax", "cnncourse")
# Relative error against centred differences: batch normalization is not linear, so they are
# exact only up to about 1e-8 (and less where a gradient is nearly zero); a wrong gradient is
# off by 1e-2 or more.
GRADIENT_CHECK_LIMIT = 1e-5


# ------------------------------------------------------------------------- matchers


class Running:
    """The running averages: a dict with exactly the keys "mean" and "var" (arrays)."""

    def __init__(self, expected: dict, **tolerance):
        self.expected, self.tolerance = expected, tolerance

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict or set(got) != {"mean", "var"}:
            keys = sorted(got) if type(got) is dict else type_name(got)
            return Mismatch(
                what, TYPE, f"{what} should be a dict with keys 'mean' and 'var', got {keys}", got
            )
        for key in ("mean", "var"):
            found = Array(self.expected[key], **self.tolerance).mismatch(
                got[key], f"{what}[{key!r}]"
            )
            if found is not None:
                return found
        return None


class GradDict:
    """A dict of gradients with exactly the keys of ``expected`` (``"X"`` and the block's
    parameters), each an array close to its expected value (or, with ``limit``, within that
    relative error of it: a gradient check)."""

    def __init__(self, expected: dict, limit: float | None = None):
        self.expected, self.limit = expected, limit

    def mismatch(self, got, what: str) -> Mismatch | None:
        names = ", ".join(self.expected)
        if type(got) is not dict:
            return Mismatch(what, TYPE, f"{what} should be a dict ({names}), got {type_name(got)}")
        missing = [k for k in self.expected if k not in got]
        extra = sorted(k for k in got if k not in self.expected)
        if missing or extra:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unexpected {', '.join(map(repr, extra))}"] if extra else []
            return Mismatch(
                what, TYPE, f"{what} should have exactly the keys {names}; " + "; ".join(parts)
            )
        wrong, first = [], None
        for key, expected in self.expected.items():
            found = self._compare(got[key], expected, f"{what}[{key!r}]")
            if found is not None:
                wrong.append(key)
                first = first or found
        if first is None:
            return None
        right = [k for k in self.expected if k not in wrong]
        if right:
            summary = f"wrong: {', '.join(wrong)}; right: {', '.join(right)}"
            first.details = [summary, *first.details]
        return first

    def _compare(self, got, expected: np.ndarray, name: str) -> Mismatch | None:
        if self.limit is None:
            return Array(expected).mismatch(got, name)
        found = Array(expected, values=False).mismatch(got, name)
        if found is not None:
            return found
        if not np.all(np.isfinite(got)):
            return Mismatch(name, VALUES, f"{name} contains NaN or infinity", got)
        error = relative_error(got, expected)
        if not error < self.limit:
            return Mismatch(
                name,
                VALUES,
                f"{name} does not match the numerical gradient: relative error {error:.2e} "
                f"(must be below {self.limit:.0e})",
                got,
                expected,
            )
        return None


# ------------------------------------------------------------------- batch normalization

BN_OPTIONS = {0: {}, 1: {"momentum": 0.8, "eps": 1e-3}}  # config "opts" -> keyword arguments


def _bn_valid(c: dict) -> bool:
    return min(c["m"], c["n_H"], c["n_W"], c["n_C"]) >= 1 and c["m"] * c["n_H"] * c["n_W"] >= 2


def _bn_arrays(c: dict, rng) -> tuple:
    n_C = c["n_C"]
    shift = rng.normal(0.0, 2.0, n_C)
    scale = rng.uniform(0.5, 3.0, n_C)
    X = rng.standard_normal((c["m"], c["n_H"], c["n_W"], n_C)) * scale + shift
    gamma = rng.normal(1.0, 0.5, n_C)
    beta = rng.normal(0.0, 0.5, n_C)
    return X, gamma, beta


def _describe_bn(c: dict) -> str:
    text = f"X of shape ({c['m']}, {c['n_H']}, {c['n_W']}, {c['n_C']})"
    if "training" in c:
        text += ", training=True" if c["training"] else ", training=False (inference)"
    if c.get("opts"):
        text += ", " + ", ".join(f"{k}={v}" for k, v in BN_OPTIONS[c["opts"]].items())
    if "eps" in c:
        text += f", eps {(1e-5, 1e-3)[c['eps']]} in the cache"
    return text


class BNCases(Spec):
    """Configurations of a batch: ``m, n_H, n_W, n_C`` (and the spec's own keys)."""

    forbidden = NUMPY_POLICY
    height_width = ("n_H", "n_W")

    def describe(self, c):
        return _describe_bn(c)

    def smaller(self, c):
        floors = (("m", 1), ("n_C", 1), ("n_H", 1), ("n_W", 1))
        return one_smaller(c, floors, _bn_valid)


class BatchNormForward(BNCases):
    name = target = family = "batchnorm_forward"
    arg_names = ("X", "gamma", "beta", "running", "training")
    outputs = "batchnorm_forward(...)"

    def anchors(self):
        def build():
            rng = np.random.default_rng(0)
            X = 5.0 + 3.0 * rng.standard_normal((8, 4, 4, 3))
            running = {"mean": np.zeros(3), "var": np.ones(3)}
            return (X, np.ones(3), np.zeros(3), running, True), {}

        def show(value):
            if not (type(value) is tuple and len(value) == 3 and type(value[0]) is np.ndarray):
                return []
            out, new = value[0], value[1]
            lines = []
            if out.ndim == 4:
                lines.append(
                    "out's mean and std per channel (0 and 1 after normalizing): "
                    + np.array2string(out.mean(axis=(0, 1, 2)), precision=3, suppress_small=True)
                    + ", "
                    + np.array2string(out.std(axis=(0, 1, 2)), precision=3)
                )
            if type(new) is dict and type(new.get("mean")) is np.ndarray:
                lines.append(
                    "running mean after one step (0.1 of the batch mean, about 0.5): "
                    + np.array2string(new["mean"], precision=3)
                )
            return lines

        label = "a batch of shape (8, 4, 4, 3) with mean 5 and std 3, gamma 1, beta 0"
        return [Anchor(label, build, show)]

    def required(self):
        return [
            dict(m=4, n_H=3, n_W=5, n_C=3, training=1, opts=0),
            dict(m=2, n_H=4, n_W=4, n_C=2, training=0, opts=0),
            dict(m=3, n_H=2, n_W=3, n_C=4, training=1, opts=1),
            dict(m=1, n_H=3, n_W=2, n_C=2, training=1, opts=0),  # one example: positions pool
            dict(m=5, n_H=1, n_W=1, n_C=3, training=1, opts=1),  # 1x1 maps
            dict(m=2, n_H=2, n_W=5, n_C=1, training=0, opts=1),
        ]

    def hidden_required(self):
        return [
            dict(m=6, n_H=2, n_W=2, n_C=5, training=1, opts=0),
            dict(m=1, n_H=1, n_W=4, n_C=2, training=0, opts=0),
        ]

    def draw(self, rng):
        while True:
            c = dict(
                m=int(rng.integers(1, 6)),
                n_H=int(rng.integers(1, 6)),
                n_W=int(rng.integers(1, 6)),
                n_C=int(rng.integers(1, 5)),
                training=int(rng.integers(0, 2)),
                opts=int(rng.integers(0, 2)),
            )
            if _bn_valid(c):
                return c

    def inputs(self, c, rng):
        X, gamma, beta = _bn_arrays(c, rng)
        running = {"mean": rng.normal(0.0, 1.0, c["n_C"]), "var": rng.uniform(0.5, 2.0, c["n_C"])}
        return (X, gamma, beta, running, bool(c["training"])), dict(BN_OPTIONS[c["opts"]])

    def expect(self, c, args, kwargs):
        out, new, cache = mo.bn_forward(*args, **kwargs)
        if cache is None:
            cache_matcher = None
        else:
            X, X_hat, mean, var, gamma, eps = cache
            cache_matcher = Sequence(
                [Array(X), Array(X_hat), Array(mean), Array(var), Array(gamma), Number(eps)],
                ["cache[0] (X)", "cache[1] (X_hat)", "cache[2] (mean)", "cache[3] (var)"]
                + ["cache[4] (gamma)", "cache[5] (eps)"],
            )
        return Sequence([Array(out), Running(new), cache_matcher], ["out", "new_running", "cache"])


def _bn_backward_inputs(c: dict, rng) -> tuple:
    X, gamma, beta = _bn_arrays(c, rng)
    eps = (1e-5, 1e-3)[c["eps"]]
    _, _, cache = mo.bn_forward(X, gamma, beta, {"mean": 0.0, "var": 1.0}, True, eps=eps)
    dout = rng.standard_normal(X.shape)
    return dout, cache


class BatchNormBackward(BNCases):
    name = target = family = "batchnorm_backward"
    arg_names = ("dout", "cache")
    outputs = "batchnorm_backward(...)"

    def required(self):
        return [
            dict(m=4, n_H=3, n_W=5, n_C=3, eps=0),
            dict(m=1, n_H=3, n_W=2, n_C=2, eps=1),
            dict(m=5, n_H=1, n_W=1, n_C=3, eps=0),
            dict(m=2, n_H=4, n_W=3, n_C=1, eps=1),
        ]

    def hidden_required(self):
        return [dict(m=6, n_H=2, n_W=2, n_C=5, eps=0), dict(m=2, n_H=1, n_W=1, n_C=2, eps=1)]

    def draw(self, rng):
        while True:
            c = dict(
                m=int(rng.integers(1, 6)),
                n_H=int(rng.integers(1, 6)),
                n_W=int(rng.integers(1, 6)),
                n_C=int(rng.integers(1, 5)),
                eps=int(rng.integers(0, 2)),
            )
            if _bn_valid(c):
                return c

    def inputs(self, c, rng):
        return _bn_backward_inputs(c, rng), {}

    def expect(self, c, args, kwargs):
        dout, (X, _, _, _, gamma, eps) = args
        beta = np.zeros_like(gamma)
        dX, dgamma, dbeta = mo.bn_backward_torch(dout, X, gamma, beta, eps)
        return Sequence([Array(dX), Array(dgamma), Array(dbeta)], ["dX", "dgamma", "dbeta"])


class BatchNormGradientCheck(BatchNormBackward):
    """batchnorm_backward against centred differences of the forward formula."""

    name = "batchnorm_gradient_check"
    n_random = 3
    # A normalization over two or three values is ill-conditioned: centred differences of it
    # are noise at the 1e-5 level. Four values per channel at least.
    min_pooled = 4

    def required(self):
        return [dict(m=2, n_H=3, n_W=2, n_C=2, eps=0), dict(m=3, n_H=1, n_W=2, n_C=1, eps=1)]

    def hidden_required(self):
        return [dict(m=1, n_H=2, n_W=4, n_C=3, eps=0)]

    def draw(self, rng):
        while True:
            c = super().draw(rng)
            c = dict(c, m=min(c["m"], 3), n_H=min(c["n_H"], 3), n_W=min(c["n_W"], 3))
            if self.valid(c):
                return c

    def valid(self, c: dict) -> bool:
        return _bn_valid(c) and c["m"] * c["n_H"] * c["n_W"] >= self.min_pooled

    def smaller(self, c):
        floors = (("m", 1), ("n_C", 1), ("n_H", 1), ("n_W", 1))
        return one_smaller(c, floors, self.valid)

    def expect(self, c, args, kwargs):
        from .numpy_backward import centred_differences

        dout, (X, _, _, _, gamma, eps) = args
        x, g, b = X.copy(), np.array(gamma, dtype=np.float64), np.zeros_like(gamma)

        def cost():
            out = mo.bn_forward(x, g, b, {"mean": 0.0, "var": 1.0}, True, eps=eps)[0]
            return float(np.sum(out * dout))

        grads = centred_differences(cost, (x, g, b))
        return RelativeError(grads, ["dX", "dgamma", "dbeta"], GRADIENT_CHECK_LIMIT)


# ------------------------------------------------------------------------- residual block


def _out(n: int, stride: int) -> int:
    return (n + 2 - 3) // stride + 1


def _block_valid(c: dict, min_pooled: int = 2) -> bool:
    """A block configuration; ``min_pooled``: values each batch normalization pools per
    channel (the examples times the output positions)."""
    needs_projection = c["stride"] != 1 or c["n_C_prev"] != c["n_C"]
    return (
        min(c["m"], c["n_H"], c["n_W"], c["n_C_prev"], c["n_C"]) >= 1
        and c["stride"] in (1, 2)
        and (c["proj"] == 1 or not needs_projection)
        and c["m"] * _out(c["n_H"], c["stride"]) * _out(c["n_W"], c["stride"]) >= min_pooled
    )


def block_params(c: dict, rng, weight_scale: float = 1.0) -> dict:
    """Random parameters of the block of configuration ``c`` (He-like scales times
    ``weight_scale``; ``gamma`` near 1 and ``beta`` near 0, never exactly)."""
    n_in, n_out = c["n_C_prev"], c["n_C"]
    params = {
        "W1": rng.standard_normal((3, 3, n_in, n_out)) * np.sqrt(2 / (9 * n_in)) * weight_scale,
        "gamma1": rng.normal(1.0, 0.3, n_out),
        "beta1": rng.normal(0.0, 0.3, n_out),
        "W2": rng.standard_normal((3, 3, n_out, n_out)) * np.sqrt(2 / (9 * n_out)) * weight_scale,
        "gamma2": rng.normal(1.0, 0.3, n_out),
        "beta2": rng.normal(0.0, 0.3, n_out),
    }
    if c["proj"]:
        params["W_proj"] = rng.standard_normal((1, 1, n_in, n_out)) * np.sqrt(1 / n_in)
        params["gamma_proj"] = rng.normal(1.0, 0.3, n_out)
        params["beta_proj"] = rng.normal(0.0, 0.3, n_out)
    return params


def _draw_block(rng, small: bool = False, min_pooled: int = 2) -> dict:
    while True:
        stride = int(rng.integers(1, 3))
        n_C_prev = int(rng.integers(1, 3 if small else 4))
        n_C = n_C_prev if rng.random() < 0.4 else int(rng.integers(1, 3 if small else 5))
        proj = int(stride != 1 or n_C != n_C_prev or rng.random() < 0.2)
        side = 4 if small else 7
        c = dict(
            m=int(rng.integers(1, 3 if small else 4)),
            n_H=int(rng.integers(2, side)),
            n_W=int(rng.integers(2, side)),
            n_C_prev=n_C_prev,
            n_C=n_C,
            stride=stride,
            proj=proj,
        )
        if _block_valid(c, min_pooled):
            return c


def _describe_block(c: dict) -> str:
    shortcut = "projection" if c["proj"] else "identity"
    return (
        f"X of shape ({c['m']}, {c['n_H']}, {c['n_W']}, {c['n_C_prev']}), {c['n_C']} "
        f"channel(s) out, stride {c['stride']}, {shortcut} shortcut"
    )


BLOCK_REQUIRED = [
    dict(m=2, n_H=4, n_W=4, n_C_prev=3, n_C=3, stride=1, proj=0),  # identity shortcut
    dict(m=2, n_H=6, n_W=5, n_C_prev=2, n_C=4, stride=2, proj=1),  # projection, stride 2
    dict(m=1, n_H=5, n_W=3, n_C_prev=2, n_C=3, stride=1, proj=1),  # projection, stride 1
    dict(m=3, n_H=4, n_W=6, n_C_prev=1, n_C=2, stride=2, proj=1),  # even sizes, stride 2
]
BLOCK_HIDDEN = [
    dict(m=1, n_H=7, n_W=7, n_C_prev=4, n_C=4, stride=1, proj=0),
    dict(m=2, n_H=3, n_W=3, n_C_prev=3, n_C=2, stride=2, proj=1),  # odd sizes, stride 2
]


class BlockCases(Spec):
    """Configurations of a residual block: ``m, n_H, n_W, n_C_prev, n_C, stride, proj``."""

    height_width = ("n_H", "n_W")
    weight_scale = 1.0
    min_pooled = 2
    min_channels_in = 1
    min_channels_out = 1

    def required(self):
        return BLOCK_REQUIRED

    def hidden_required(self):
        return BLOCK_HIDDEN

    def draw(self, rng):
        return _draw_block(rng, min_pooled=self.min_pooled)

    def describe(self, c):
        return _describe_block(c)

    def smaller(self, c):
        floors = (
            ("m", 1),
            ("n_C", self.min_channels_out),
            ("n_C_prev", self.min_channels_in),
            ("n_H", 2),
            ("n_W", 2),
        )
        out = one_smaller(c, floors)
        if c["stride"] == 2:  # stride 1 with the same projection
            out.append(dict(c, stride=1))
        return [o for o in out if _block_valid(o, self.min_pooled)]

    def inputs(self, c, rng):
        X = rng.standard_normal((c["m"], c["n_H"], c["n_W"], c["n_C_prev"]))
        return (X, block_params(c, rng, self.weight_scale), c["stride"]), {}


class ResidualBlockForward(BlockCases):
    """Your forward pass's output (the notebook's given wrapper ``residual_block_output``:
    the cache, a student's own structure of many arrays, stays in the kernel)."""

    name = family = "residual_block_forward"
    target = "residual_block_output"
    forbidden = NUMPY_POLICY
    arg_names = ("X", "params", "stride")
    outputs = "out"
    calls: tuple[str, ...] = ("batchnorm_forward",)  # the block's messages name it

    def expect(self, c, args, kwargs):
        return Array(mo.block_torch(*args))


class ResidualBlockGradients(BlockCases):
    """Your forward pass, then your backward pass (the notebook's given wrapper
    ``residual_block_gradients``), against PyTorch's autograd."""

    name = target = "residual_block_gradients"
    family = "residual_block_backward"
    forbidden = NUMPY_POLICY
    arg_names = ("X", "params", "stride", "dout")
    outputs = "residual_block_gradients(...)"
    calls: tuple[str, ...] = ("batchnorm_forward", "batchnorm_backward")

    def inputs(self, c, rng):
        (X, params, stride), _ = super().inputs(c, rng)
        n_H, n_W = _out(c["n_H"], stride), _out(c["n_W"], stride)
        dout = rng.standard_normal((c["m"], n_H, n_W, c["n_C"]))
        return (X, params, stride, dout), {}

    def expect(self, c, args, kwargs):
        _, grads = mo.block_torch(*args)
        return GradDict(grads)


class ResidualBlockGradientCheck(ResidualBlockGradients):
    """The block's gradients against centred differences of a numpy forward pass."""

    name = "residual_block_gradient_check"
    n_random = 2
    # A normalization over two values is ill-conditioned: centred differences of it are
    # noise at the 1e-4 level; six values per channel keep them accurate. And a convolution
    # followed by batch normalization does not depend on the scale of its weights, so with
    # one input channel the gradient of a 1x1 convolution's weights is zero (up to rounding)
    # and its relative error meaningless: two input channels at least. Likewise with one
    # output channel the second normalization undoes most of what W1, gamma1 and beta1 do:
    # their gradients are about 1e-5 and their centred differences noise at that level (a
    # right block was over the limit on 1 of 400 draws; with two, 0 of 1,500 over 1e-7),
    # so two output channels at least.
    min_pooled = 6
    min_channels_in = 2
    min_channels_out = 2

    def required(self):
        return [
            dict(m=2, n_H=3, n_W=3, n_C_prev=2, n_C=2, stride=1, proj=0),
            dict(m=2, n_H=4, n_W=3, n_C_prev=2, n_C=3, stride=2, proj=1),
        ]

    def hidden_required(self):
        return [dict(m=2, n_H=2, n_W=3, n_C_prev=2, n_C=2, stride=1, proj=1)]

    def draw(self, rng):
        c = _draw_block(rng, small=True, min_pooled=self.min_pooled)
        if c["n_C_prev"] < 2:
            c = dict(c, n_C_prev=2, proj=1)
        if c["n_C"] < 2:  # n_C was 1 < n_C_prev: the shortcut is a projection already
            c = dict(c, n_C=2)
        return c

    def expect(self, c, args, kwargs):
        X, params, stride, dout = args
        return GradDict(mo.centred_block_gradients(X, params, stride, dout), GRADIENT_CHECK_LIMIT)


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        BatchNormForward(),
        BatchNormBackward(),
        BatchNormGradientCheck(),
        ResidualBlockForward(),
        ResidualBlockGradients(),
        ResidualBlockGradientCheck(),
    )
}
