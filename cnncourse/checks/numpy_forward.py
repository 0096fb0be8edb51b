"""Check descriptions of assignment 1's graded numpy functions (the forward pass) and of the
im2col track's forward layers, with what both assignments share.

Each :class:`~cnncourse.checks.engine.Spec` says how to draw a configuration (shapes,
stride, pad, mode), how to build inputs for it, what the correct result is (PyTorch in
float64 through :mod:`cnncourse.oracles`, or a direct numpy formula), and how to make a
failing configuration smaller. The published reference examples of the course brief are the
anchors; the configurations that public versions of these assignments get wrong (stride 2
and 3, pad 0, non-square inputs, several channels, ties in max pooling) are checked every
time.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .engine import Anchor, Spec, one_smaller
from .matchers import Array, Equal, Number, Sequence

# Library-call policies (what the graded function may not use).
LOOP_POLICY: tuple[str, ...] = (
    "torch",
    "tensorflow",
    "keras",
    "jax",
    "scipy",
    "cnncourse",
    "stride_tricks",
)
IM2COL_POLICY: tuple[str, ...] = ("torch", "tensorflow", "keras", "jax", "cnncourse")


def _out(n: int, f: int, pad: int, stride: int) -> int:
    return (n + 2 * pad - f) // stride + 1


def _table(kind: str, keys: list[bytes], values) -> dict:
    """A helper's answers as plain data, shuffled (see calls.table_helper)."""
    order = np.random.default_rng(len(keys)).permutation(len(keys))
    key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16)
    if not isinstance(values, np.ndarray) and len({np.shape(v) for v in values}) == 1:
        values = np.stack([np.asarray(v) for v in values])  # one array, not many
    if isinstance(values, np.ndarray):
        values = values[order]
    else:
        values = [values[i] for i in order]
    return {"kind": kind, "keys": key_array[order].copy(), "values": values}


def _oracles():
    from .. import oracles  # imported late: it imports PyTorch on first use

    return oracles


def _fmt_values(values) -> str:
    return np.array2string(np.asarray(values), precision=8, separator=", ", max_line_width=100)


def _draw_size(rng, low: int) -> int:
    return int(rng.integers(max(1, low), max(low, 1) + 6))


# ---------------------------------------------------------------------- zero_pad


class ZeroPad(Spec):
    name = target = family = "zero_pad"
    forbidden = LOOP_POLICY
    arg_names = ("X", "pad")
    outputs = "X_pad"
    height_width = ("n_H", "n_W")

    def anchors(self):
        def build():
            np.random.seed(1)
            return (np.random.randn(4, 3, 3, 2), 3), {}

        def show(value):
            shape = getattr(value, "shape", None)
            return [f"x_pad.shape = {shape} (x.shape = (4, 3, 3, 2), pad 3)"]

        return [Anchor("the reference example: x of shape (4, 3, 3, 2), pad 3", build, show)]

    def required(self):
        return [
            dict(m=2, n_H=4, n_W=6, n_C=3, pad=0),
            dict(m=1, n_H=5, n_W=2, n_C=1, pad=1),
            dict(m=3, n_H=3, n_W=4, n_C=2, pad=2),
        ]

    def hidden_required(self):
        return [dict(m=2, n_H=2, n_W=3, n_C=2, pad=3), dict(m=1, n_H=1, n_W=1, n_C=5, pad=1)]

    def draw(self, rng):
        return dict(
            m=int(rng.integers(1, 4)),
            n_H=int(rng.integers(1, 7)),
            n_W=int(rng.integers(1, 7)),
            n_C=int(rng.integers(1, 5)),
            pad=int(rng.integers(0, 4)),
        )

    def inputs(self, c, rng):
        return (rng.standard_normal((c["m"], c["n_H"], c["n_W"], c["n_C"])), c["pad"]), {}

    def expect(self, c, args, kwargs):
        X, pad = args
        return Array(np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0))), rtol=0, atol=0)

    def describe(self, c):
        return f"X of shape ({c['m']}, {c['n_H']}, {c['n_W']}, {c['n_C']}), pad {c['pad']}"

    def smaller(self, c):
        return one_smaller(c, (("m", 1), ("n_C", 1), ("n_H", 1), ("n_W", 1), ("pad", 0)))


# -------------------------------------------------------------- conv_single_step


class ConvSingleStep(Spec):
    name = target = family = "conv_single_step"
    forbidden = LOOP_POLICY
    arg_names = ("a_slice_prev", "W", "b")
    outputs = "Z"

    def anchors(self):
        def build():
            np.random.seed(1)
            a = np.random.randn(4, 4, 3)
            W = np.random.randn(4, 4, 3)
            b = np.random.randn(1, 1, 1)
            return (a, W, b), {}

        def show(value):
            number = getattr(value, "value", value)
            return [f"Z = {number!r} (published: -6.999089450680221)"]

        return [Anchor("the reference example (np.random.seed(1), 4x4x3 window)", build, show)]

    def required(self):
        return [dict(f=1, n_C_prev=1, zeros=1), dict(f=3, n_C_prev=2, zeros=0)]

    def draw(self, rng):
        return dict(f=int(rng.integers(1, 6)), n_C_prev=int(rng.integers(1, 6)), zeros=0)

    def inputs(self, c, rng):
        shape = (c["f"], c["f"], c["n_C_prev"])
        a = np.zeros(shape) if c["zeros"] else rng.standard_normal(shape)
        return (a, rng.standard_normal(shape), rng.standard_normal((1, 1, 1))), {}

    def expect(self, c, args, kwargs):
        a, W, b = args
        return Number(float(np.sum(a * W)) + float(b.reshape(-1)[0]))

    def describe(self, c):
        window = "a window of zeros" if c["zeros"] else "a random window"
        return f"{window} of shape ({c['f']}, {c['f']}, {c['n_C_prev']})"

    def smaller(self, c):
        return one_smaller(c, (("f", 1), ("n_C_prev", 1)))


# ------------------------------------------------------------------ conv layers


def _conv_valid(c: dict) -> bool:
    return (
        c["f"] >= 1
        and c["stride"] >= 1
        and c["pad"] >= 0
        and c["n_H_prev"] + 2 * c["pad"] >= c["f"]
        and c["n_W_prev"] + 2 * c["pad"] >= c["f"]
    )


def _draw_conv(rng) -> dict:
    f = int(rng.integers(1, 5))
    pad = int(rng.integers(0, 4))
    return dict(
        m=int(rng.integers(1, 4)),
        n_H_prev=_draw_size(rng, f - 2 * pad),
        n_W_prev=_draw_size(rng, f - 2 * pad),
        n_C_prev=int(rng.integers(1, 5)),
        f=f,
        n_C=int(rng.integers(1, 5)),
        stride=int(rng.integers(1, 4)),
        pad=pad,
    )


def _smaller_conv(c: dict) -> list[dict]:
    floors = (("m", 1), ("n_C", 1), ("n_C_prev", 1), ("n_H_prev", 1), ("n_W_prev", 1))
    return one_smaller(c, (*floors, ("pad", 0), ("stride", 1), ("f", 1)), _conv_valid)


def _describe_conv(c: dict) -> str:
    return (
        f"A_prev of shape ({c['m']}, {c['n_H_prev']}, {c['n_W_prev']}, {c['n_C_prev']}), "
        f"W of shape ({c['f']}, {c['f']}, {c['n_C_prev']}, {c['n_C']}), "
        f"stride {c['stride']}, pad {c['pad']}"
    )


def _conv_inputs(c: dict, rng) -> tuple:
    A = rng.standard_normal((c["m"], c["n_H_prev"], c["n_W_prev"], c["n_C_prev"]))
    W = rng.standard_normal((c["f"], c["f"], c["n_C_prev"], c["n_C"]))
    b = rng.standard_normal((1, 1, 1, c["n_C"]))
    return A, W, b, {"stride": c["stride"], "pad": c["pad"]}


CONV_HIDDEN = [
    dict(m=3, n_H_prev=9, n_W_prev=4, n_C_prev=1, f=1, n_C=3, stride=2, pad=0),  # 1x1 filters
    dict(m=2, n_H_prev=5, n_W_prev=8, n_C_prev=3, f=4, n_C=2, stride=2, pad=3),
    dict(m=1, n_H_prev=8, n_W_prev=7, n_C_prev=2, f=3, n_C=4, stride=3, pad=0),
]

CONV_REQUIRED = [
    # stride 2 and pad 0, non-square: the cases public versions never test
    dict(m=2, n_H_prev=6, n_W_prev=9, n_C_prev=3, f=3, n_C=2, stride=2, pad=0),
    dict(m=1, n_H_prev=7, n_W_prev=5, n_C_prev=2, f=2, n_C=3, stride=3, pad=1),
    dict(m=2, n_H_prev=5, n_W_prev=8, n_C_prev=3, f=4, n_C=2, stride=1, pad=3),
    dict(m=1, n_H_prev=5, n_W_prev=4, n_C_prev=1, f=1, n_C=2, stride=2, pad=0),
]


class ConvCases(Spec):
    """The configurations of a convolution layer (shared by its forward and backward specs):
    ``m, n_H_prev, n_W_prev, n_C_prev, f, n_C, stride, pad``."""

    forbidden = LOOP_POLICY
    height_width = ("n_H_prev", "n_W_prev")

    def required(self):
        return CONV_REQUIRED

    def hidden_required(self):
        return CONV_HIDDEN

    def draw(self, rng):
        return _draw_conv(rng)

    def describe(self, c):
        return _describe_conv(c)

    def smaller(self, c):
        return _smaller_conv(c)


class ConvForward(ConvCases):
    name = target = family = "conv_forward"
    arg_names = ("A_prev", "W", "b", "hparameters")
    outputs = "conv_forward(...)"
    helpers: tuple[str, ...] = ("zero_pad", "conv_single_step")

    def helper_table(self, helper, args, kwargs):
        """The answers of zero_pad for the padded input, or of conv_single_step for every
        window and filter, in a shuffled order (the order says nothing of the positions)."""
        from .calls import digest

        A, W, _, hp = args
        pad, stride, f = hp["pad"], hp["stride"], W.shape[0]
        padded = np.pad(A, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        if helper == "zero_pad":
            return _table("zero_pad", [digest(A, pad)], [padded])
        keys, values = [], []
        n_H, n_W = (
            (A.shape[1] + 2 * pad - f) // stride + 1,
            (A.shape[2] + 2 * pad - f) // stride + 1,
        )
        for i in range(A.shape[0]):
            for h in range(n_H):
                for w in range(n_W):
                    window = padded[i, h * stride : h * stride + f, w * stride : w * stride + f]
                    for c in range(W.shape[3]):
                        keys.append(digest(window, W[..., c]))
                        values.append(float(np.sum(window * W[..., c])))
        return _table("conv_single_step", keys, np.array(values))

    def anchors(self):
        def build_1():
            np.random.seed(1)
            A = np.random.randn(2, 5, 7, 4)
            W = np.random.randn(3, 3, 4, 8)
            b = np.random.randn(1, 1, 1, 8)
            return (A, W, b, {"pad": 1, "stride": 2}), {}

        def show_1(value):
            Z = value[0] if isinstance(value, tuple) and value else None
            if type(Z) is not np.ndarray or Z.shape != (2, 3, 4, 8):
                return []
            return [
                f"Z's mean = {float(Z.mean())!r} (published: 0.5511276474566768)",
                f"Z[0, 2, 1] = {_fmt_values(Z[0, 2, 1])}",
            ]

        def build_2():
            # The 3x3 filters drawn first are not used: drawing them keeps the random
            # numbers identical to the published version of this example.
            np.random.seed(3)
            A = np.random.randn(2, 5, 7, 4)
            np.random.randn(3, 3, 4, 8), np.random.randn(1, 1, 1, 8)
            W = np.random.randn(5, 5, 4, 8)
            b = np.random.randn(1, 1, 1, 8)
            return (A, W, b, {"pad": 6, "stride": 1}), {}

        def show_2(value):
            Z = value[0] if isinstance(value, tuple) and value else None
            if type(Z) is not np.ndarray:
                return []
            return [f"Z's mean with pad 6 = {float(Z.mean())!r} (published: -0.5384027772160062)"]

        return [
            Anchor("the reference example (np.random.seed(1), pad 1, stride 2)", build_1, show_1),
            Anchor("the second reference example (np.random.seed(3), pad 6)", build_2, show_2),
        ]

    def inputs(self, c, rng):
        return _conv_inputs(c, rng), {}

    def expect(self, c, args, kwargs):
        A, W, b, hp = args
        Z = _oracles().conv_forward(A, W, b, hp["stride"], hp["pad"])
        cache = Sequence(
            [
                Array(A, rtol=0, atol=0),
                Array(W, rtol=0, atol=0),
                Array(b, rtol=0, atol=0),
                Equal(dict(hp)),
            ],
            ["cache[0] (A_prev)", "cache[1] (W)", "cache[2] (b)", "cache[3] (hparameters)"],
        )
        return Sequence([Array(Z), cache], ["Z", "cache"])


class ConvForwardFast(ConvForward):
    name = target = "conv_forward_fast"
    helpers = ()
    forbidden = IM2COL_POLICY
    outputs = "conv_forward_fast(...)"
    # 8 digits with 4 channels, 16 filters 3x3: the loops take seconds, im2col milliseconds
    speed = (dict(m=8, n_H_prev=28, n_W_prev=28, n_C_prev=4, f=3, n_C=16, stride=1, pad=0), 0.5)


# --------------------------------------------------------------------- pooling


def _pool_valid(c: dict) -> bool:
    return c["f"] >= 1 and c["stride"] >= 1 and c["n_H_prev"] >= c["f"] and c["n_W_prev"] >= c["f"]


def _draw_pool(rng, modes=("max", "average")) -> dict:
    f = int(rng.integers(1, 5))
    return dict(
        m=int(rng.integers(1, 4)),
        n_H_prev=_draw_size(rng, f),
        n_W_prev=_draw_size(rng, f),
        n_C=int(rng.integers(1, 4)),
        f=f,
        stride=int(rng.integers(1, 4)),
        mode=str(rng.choice(modes)),
        ties=int(rng.integers(0, 2)),
    )


def _smaller_pool(c: dict) -> list[dict]:
    floors = (("m", 1), ("n_C", 1), ("n_H_prev", 1), ("n_W_prev", 1), ("stride", 1), ("f", 1))
    return one_smaller(c, (*floors, ("ties", 0)), _pool_valid)


def _describe_pool(c: dict) -> str:
    ties = ", with ties (small integers)" if c.get("ties") else ""
    return (
        f"A_prev of shape ({c['m']}, {c['n_H_prev']}, {c['n_W_prev']}, {c['n_C']}), "
        f"f {c['f']}, stride {c['stride']}, mode {c['mode']!r}{ties}"
    )


def _pool_input(c: dict, rng) -> np.ndarray:
    shape = (c["m"], c["n_H_prev"], c["n_W_prev"], c["n_C"])
    if c.get("ties"):
        return rng.integers(0, 3, size=shape).astype(np.float64)
    return rng.standard_normal(shape)


POOL_HIDDEN = [
    dict(m=2, n_H_prev=4, n_W_prev=4, n_C=1, f=1, stride=1, mode="average", ties=0),
    dict(m=1, n_H_prev=8, n_W_prev=9, n_C=3, f=4, stride=3, mode="max", ties=0),
    dict(m=1, n_H_prev=7, n_W_prev=9, n_C=2, f=3, stride=2, mode="max", ties=1),
    dict(m=2, n_H_prev=5, n_W_prev=4, n_C=1, f=3, stride=1, mode="average", ties=1),
]

POOL_REQUIRED = [
    dict(m=2, n_H_prev=6, n_W_prev=8, n_C=3, f=2, stride=2, mode="max", ties=0),
    dict(m=1, n_H_prev=7, n_W_prev=5, n_C=2, f=3, stride=2, mode="average", ties=0),
    dict(m=2, n_H_prev=9, n_W_prev=7, n_C=2, f=2, stride=3, mode="max", ties=0),
    dict(m=1, n_H_prev=5, n_W_prev=6, n_C=2, f=3, stride=1, mode="average", ties=0),
    dict(m=2, n_H_prev=6, n_W_prev=7, n_C=2, f=3, stride=2, mode="max", ties=1),
]


class PoolCases(Spec):
    """The configurations of a pooling layer (shared by its forward and backward specs):
    ``m, n_H_prev, n_W_prev, n_C, f, stride, mode, ties``."""

    forbidden = LOOP_POLICY
    height_width = ("n_H_prev", "n_W_prev")

    def required(self):
        return POOL_REQUIRED

    def hidden_required(self):
        return POOL_HIDDEN

    def draw(self, rng):
        return _draw_pool(rng)

    def describe(self, c):
        return _describe_pool(c)

    def smaller(self, c):
        return _smaller_pool(c)


class PoolForward(PoolCases):
    name = target = family = "pool_forward"
    arg_names = ("A_prev", "hparameters")
    outputs = "pool_forward(...)"

    def anchors(self):
        def build(mode, stride):
            def make():
                np.random.seed(1)
                A = np.random.randn(2, 5, 5, 3)
                return (A, {"stride": stride, "f": 3}), {"mode": mode}

            return make

        def show(mode):
            def lines(value):
                A = value[0] if isinstance(value, tuple) and value else None
                if type(A) is not np.ndarray or A.ndim != 4 or A.shape[0] < 2:
                    return []
                return [f"{mode} pooling, A[1, 1] =", _fmt_values(A[1, 1])]

            return lines

        return [
            Anchor(
                "the reference example, max pooling (f 3, stride 1)", build("max", 1), show("max")
            ),
            Anchor(
                "the reference example, average pooling (f 3, stride 1)",
                build("average", 1),
                show("average"),
            ),
            Anchor("the reference example, max pooling, stride 2", build("max", 2)),
        ]

    def inputs(self, c, rng):
        return (_pool_input(c, rng), {"f": c["f"], "stride": c["stride"]}), {"mode": c["mode"]}

    def expect(self, c, args, kwargs):
        A, hp = args
        mode = kwargs["mode"]
        P = _oracles().pool_forward(A, hp["f"], hp["stride"], mode)
        cache = Sequence(
            [Array(A, rtol=0, atol=0), Equal(dict(hp))],
            ["cache[0] (A_prev)", "cache[1] (hparameters)"],
        )
        return Sequence([Array(P), cache], ["A", "cache"])


class PoolForwardFast(PoolForward):
    name = target = "pool_forward_fast"
    forbidden = IM2COL_POLICY
    outputs = "pool_forward_fast(...)"


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        ZeroPad(),
        ConvSingleStep(),
        ConvForward(),
        PoolForward(),
        ConvForwardFast(),
        PoolForwardFast(),
    )
}
