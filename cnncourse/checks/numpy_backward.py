"""Check descriptions of assignment 2's graded numpy functions (the backward pass).

The configurations, their drawing and shrinking are those of the forward pass
(:mod:`cnncourse.checks.numpy_forward`); the oracles are PyTorch's autograd in float64 and,
for the gradient check, centred differences of a vectorised forward pass.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from ..testing import relative_error
from .engine import Anchor, Spec, one_smaller
from .matchers import VALUES, Array, Mismatch, Sequence
from .numpy_forward import (
    IM2COL_POLICY,
    LOOP_POLICY,
    POOL_REQUIRED,
    ConvCases,
    PoolCases,
    _conv_inputs,
    _conv_valid,
    _draw_conv,
    _fmt_values,
    _oracles,
    _out,
    _pool_input,
)


class ConvBackward(ConvCases):
    name = target = family = "conv_backward"
    arg_names = ("dZ", "cache")
    outputs = "conv_backward(...)"

    def anchors(self):
        def build():
            np.random.seed(1)
            A = np.random.randn(10, 4, 4, 3)
            W = np.random.randn(2, 2, 3, 8)
            b = np.random.randn(1, 1, 1, 8)
            hp = {"pad": 2, "stride": 2}
            Z = _oracles().conv_forward(A, W, b, 2, 2)
            return (Z, (A, W, b, hp)), {}

        def show(value):
            if not (isinstance(value, tuple) and len(value) == 3):
                return []
            if not all(type(v) is np.ndarray for v in value):
                return []
            return [
                f"dA_prev's mean = {float(value[0].mean())!r} (published: 1.4524377775388075)",
                f"dW's mean = {float(value[1].mean())!r} (published: 1.7269914583139097)",
                f"db's mean = {float(value[2].mean())!r} (published: 7.839232564616838)",
            ]

        return [Anchor("the reference example (np.random.seed(1), pad 2, stride 2)", build, show)]

    def inputs(self, c, rng):
        A, W, b, hp = _conv_inputs(c, rng)
        n_H = _out(c["n_H_prev"], c["f"], c["pad"], c["stride"])
        n_W = _out(c["n_W_prev"], c["f"], c["pad"], c["stride"])
        dZ = rng.standard_normal((c["m"], n_H, n_W, c["n_C"]))
        return (dZ, (A, W, b, hp)), {}

    def expect(self, c, args, kwargs):
        dZ, (A, W, b, hp) = args
        dA, dW, db = _oracles().conv_backward(A, W, b, hp["stride"], hp["pad"], dZ)
        return Sequence([Array(dA), Array(dW), Array(db)], ["dA_prev", "dW", "db"])


class ConvBackwardFast(ConvBackward):
    name = target = "conv_backward_fast"
    forbidden = IM2COL_POLICY
    outputs = "conv_backward_fast(...)"


def _conv_numpy(A, W, b, stride: int, pad: int) -> np.ndarray:
    """A vectorised convolution (window view and one einsum): the numerical gradient's
    forward pass, cheap enough to run once per perturbed entry."""
    from numpy.lib.stride_tricks import sliding_window_view

    f = W.shape[0]
    A_pad = np.pad(A, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(A_pad, (f, f), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("mhwcij,ijcn->mhwn", windows, W) + b.reshape(1, 1, 1, -1)


def centred_differences(cost, arrays, eps: float = 1e-6) -> list:
    """Centred differences of ``cost()`` with respect to every entry of ``arrays``.

    ``cost`` reads the arrays, which are perturbed in place one entry at a time and
    restored, so they must be float64 copies the caller owns.
    """
    grads = []
    for x in arrays:
        grad = np.zeros_like(x)
        for pos in np.ndindex(x.shape):
            saved = x[pos]
            x[pos] = saved + eps
            plus = cost()
            x[pos] = saved - eps
            minus = cost()
            x[pos] = saved
            grad[pos] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def numerical_gradients(A, W, b, stride: int, pad: int, dZ, eps: float = 1e-6):
    """Centred differences of ``sum(conv_forward(A, W, b) * dZ)`` for A, W and b."""
    return centred_differences(
        lambda: float(np.sum(_conv_numpy(A, W, b, stride, pad) * dZ)), (A, W, b), eps
    )


class RelativeError:
    """Matcher: arrays whose relative error ``|g - e| / (|g| + |e|)`` is below ``limit``."""

    def __init__(self, expected: list[np.ndarray], names: list[str], limit: float = 1e-7):
        self.expected, self.names, self.limit = expected, names, limit

    def mismatch(self, got, what):
        shape_check = Sequence([Array(e, values=False) for e in self.expected], self.names)
        found = shape_check.mismatch(got, what)
        if found is not None:
            return found
        for name, g, e in zip(self.names, got, self.expected, strict=True):
            error = relative_error(g, e)
            if not error < self.limit:
                return Mismatch(
                    name,
                    VALUES,
                    f"{name} does not match the numerical gradient: relative error "
                    f"{error:.2e} (must be below {self.limit:.0e})",
                    g,
                    e,
                )
        return None


class ConvBackwardGradientCheck(ConvBackward):
    """conv_backward against centred differences of the forward pass (a gradient check)."""

    name = "conv_backward_gradient_check"
    n_random = 3

    def anchors(self):
        return []

    def hidden_required(self):
        return []

    def required(self):
        return [
            dict(m=2, n_H_prev=4, n_W_prev=4, n_C_prev=2, f=3, n_C=3, stride=1, pad=1),
            dict(m=1, n_H_prev=5, n_W_prev=4, n_C_prev=2, f=3, n_C=2, stride=2, pad=0),
            dict(m=1, n_H_prev=4, n_W_prev=5, n_C_prev=1, f=2, n_C=2, stride=3, pad=2),
        ]

    def draw(self, rng):
        # Small configurations: the numerical gradient costs two forward passes per entry.
        while True:
            c = _draw_conv(rng)
            c.update(m=1, n_C_prev=min(c["n_C_prev"], 2), n_C=min(c["n_C"], 2))
            c.update(n_H_prev=min(c["n_H_prev"], 5), n_W_prev=min(c["n_W_prev"], 5))
            if _conv_valid(c):
                return c

    def expect(self, c, args, kwargs):
        dZ, (A, W, b, hp) = args
        grads = numerical_gradients(A.copy(), W.copy(), b.copy(), hp["stride"], hp["pad"], dZ)
        return RelativeError(grads, ["dA_prev", "dW", "db"])


class PoolBackward(PoolCases):
    name = target = family = "pool_backward"
    arg_names = ("dA", "cache")
    outputs = "dA_prev"
    helpers: tuple[str, ...] = ("create_mask_from_window", "distribute_value")

    def helper_table(self, helper, args, kwargs):
        """The masks of every window (max pooling), or the spread of every gradient entry
        (average pooling), for these inputs, shuffled."""
        from .calls import digest
        from .numpy_forward import _table

        dA, (A, hp) = args
        f, stride = hp["f"], hp["stride"]
        keys, values = [], []
        for i in range(dA.shape[0]):
            for h in range(dA.shape[1]):
                for w in range(dA.shape[2]):
                    for c in range(dA.shape[3]):
                        if helper == "create_mask_from_window":
                            window = A[
                                i, h * stride : h * stride + f, w * stride : w * stride + f, c
                            ]
                            mask = np.zeros(window.shape, dtype=bool)
                            mask[np.unravel_index(np.argmax(window), window.shape)] = True
                            keys.append(digest(window))
                            values.append(mask)
                        else:
                            dz = float(dA[i, h, w, c])
                            keys.append(digest(dz, (f, f)))
                            values.append(np.full((f, f), dz / (f * f)))
        unique: dict[bytes, object] = dict(zip(keys, values, strict=True))
        return _table(helper, list(unique), list(unique.values()))

    def anchors(self):
        def build(mode):
            def make():
                np.random.seed(1)
                A = np.random.randn(5, 5, 3, 2)
                dA = np.random.randn(5, 4, 2, 2)
                return (dA, (A, {"stride": 1, "f": 2})), {"mode": mode}

            return make

        def show(mode):
            def lines(value):
                if type(value) is not np.ndarray or value.shape != (5, 5, 3, 2):
                    return []
                return [f"{mode}: dA_prev[1, 1] =", _fmt_values(value[1, 1])]

            return lines

        return [
            Anchor("the reference example, max (f 2, stride 1)", build("max"), show("max")),
            Anchor("the reference example, average", build("average"), show("average")),
        ]

    def required(self):
        return POOL_REQUIRED + [
            dict(m=1, n_H_prev=5, n_W_prev=5, n_C=2, f=2, stride=1, mode="max", ties=1)
        ]

    def inputs(self, c, rng):
        A = _pool_input(c, rng)
        n_H = _out(c["n_H_prev"], c["f"], 0, c["stride"])
        n_W = _out(c["n_W_prev"], c["f"], 0, c["stride"])
        dA = rng.standard_normal((c["m"], n_H, n_W, c["n_C"]))
        return (dA, (A, {"f": c["f"], "stride": c["stride"]})), {"mode": c["mode"]}

    def expect(self, c, args, kwargs):
        dA, (A, hp) = args
        return Array(_oracles().pool_backward(A, hp["f"], hp["stride"], dA, kwargs["mode"]))


# ------------------------------------------------------------ pooling pieces


class CreateMaskFromWindow(Spec):
    name = target = family = "create_mask_from_window"
    forbidden = LOOP_POLICY
    arg_names = ("x",)
    outputs = "mask"
    height_width = ("n_H", "n_W")

    def anchors(self):
        def build():
            return (np.array([[-1.0, 2, 3], [2, -3, 2], [1, 5, -2]]),), {}

        return [Anchor("the reference window [[-1, 2, 3], [2, -3, 2], [1, 5, -2]]", build)]

    def required(self):
        return [
            dict(n_H=2, n_W=2, ties=1),
            dict(n_H=3, n_W=3, ties=2),
            dict(n_H=2, n_W=3, ties=0),
            dict(n_H=3, n_W=1, ties=0),
        ]

    def draw(self, rng):
        return dict(
            n_H=int(rng.integers(1, 5)), n_W=int(rng.integers(1, 5)), ties=int(rng.integers(0, 3))
        )

    def inputs(self, c, rng):
        shape = (c["n_H"], c["n_W"])
        if c["ties"] == 2:  # a constant window: every entry is the maximum
            return (np.full(shape, 7.0),), {}
        if c["ties"] == 1:
            return (rng.integers(0, 2, size=shape).astype(np.float64),), {}
        return (rng.standard_normal(shape),), {}

    def expect(self, c, args, kwargs):
        (x,) = args
        mask = np.zeros(x.shape, dtype=bool)
        mask[np.unravel_index(np.argmax(x), x.shape)] = True
        return Array(mask, dtype="bool")

    def describe(self, c):
        kinds = {0: "random", 1: "with ties", 2: "constant"}
        return f"a {kinds[c['ties']]} window of shape ({c['n_H']}, {c['n_W']})"

    def smaller(self, c):
        return one_smaller(c, (("n_H", 1), ("n_W", 1)))


class DistributeValue(Spec):
    name = target = family = "distribute_value"
    forbidden = LOOP_POLICY
    arg_names = ("dz", "shape")
    outputs = "a"
    height_width = ("n_H", "n_W")

    def anchors(self):
        return [
            Anchor("the reference example distribute_value(2, (2, 2))", lambda: ((2, (2, 2)), {}))
        ]

    def required(self):
        return [dict(n_H=3, n_W=2, kind=0), dict(n_H=1, n_W=1, kind=1), dict(n_H=3, n_W=3, kind=2)]

    def draw(self, rng):
        return dict(
            n_H=int(rng.integers(1, 5)), n_W=int(rng.integers(1, 5)), kind=int(rng.integers(0, 3))
        )

    def inputs(self, c, rng):
        value = float(np.round(rng.standard_normal() * 3, 3))
        dz = {0: value, 1: int(rng.integers(-5, 6)), 2: np.float64(value)}[c["kind"]]
        return (dz, (c["n_H"], c["n_W"])), {}

    def expect(self, c, args, kwargs):
        dz, (n_H, n_W) = args
        return Array(np.full((n_H, n_W), float(dz) / (n_H * n_W)))

    def describe(self, c):
        kind = {0: "a float", 1: "an int", 2: "a numpy float64"}[c["kind"]]
        return f"dz {kind}, shape ({c['n_H']}, {c['n_W']})"

    def smaller(self, c):
        return one_smaller(c, (("n_H", 1), ("n_W", 1)))


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        ConvBackward(),
        ConvBackwardGradientCheck(),
        CreateMaskFromWindow(),
        DistributeValue(),
        PoolBackward(),
        ConvBackwardFast(),
    )
}
