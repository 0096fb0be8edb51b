"""Check descriptions of the pure functions of assignments 3 and 5: output sizes, parameter
counts, receptive fields, the shapes Cropping2D gives.

Their references are independent computations (counting window positions, walking a
receptive field back), and their policy forbids the course's helper package and the
frameworks: they are a few lines of arithmetic.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .channel import NumpyScalar
from .engine import Spec, one_smaller
from .matchers import (
    TYPE,
    VALUES,
    Mismatch,
    Number,
    type_name,
)

# What the pure functions may not use: they are a few lines of arithmetic.
PURE_POLICY = ("cnncourse", "keras", "tensorflow", "torch")


def _exact(value) -> Number:
    return Number(value, rtol=0, atol=0, integral=True)


def _is_int(value) -> bool:
    if type(value) is NumpyScalar:
        return value.dtype.startswith(("int", "uint"))
    return type(value) is int


def _plain_int(value) -> int:
    return value.value if type(value) is NumpyScalar else value


# ============================================================ A3: pure functions


def _positions(n: int, f: int, pad: int, stride: int) -> int:
    """Where a window of side f fits in a padded side, counted one by one."""
    return len(range(0, n + 2 * pad - f + 1, stride))


class ConvOutputSize(Spec):
    name = target = family = "conv_output_size"
    forbidden = PURE_POLICY
    arg_names = ("n", "f", "pad", "stride")
    outputs = "the output side"
    n_random = 10

    def required(self):
        return [
            dict(n=28, f=3, pad=0, stride=1),  # first Conv2D of the lecture network
            dict(n=26, f=2, pad=0, stride=2),  # first MaxPooling2D
            dict(n=13, f=3, pad=0, stride=1),
            dict(n=11, f=2, pad=0, stride=2),  # the last row and column are dropped
            dict(n=5, f=3, pad=0, stride=1),
            dict(n=28, f=5, pad=0, stride=1),  # 24 x 24 = 576 positions
            dict(n=7, f=3, pad=0, stride=2),  # the lecture's stride-2 example
            dict(n=5, f=3, pad=1, stride=1),  # "same" padding keeps the side
        ]

    def hidden_required(self):
        return [
            dict(n=63, f=9, pad=3, stride=4),
            dict(n=4, f=6, pad=1, stride=1),
            dict(n=10, f=1, pad=2, stride=3),
        ]

    def draw(self, rng):
        pad = int(rng.integers(0, 4))
        n = int(rng.integers(4, 64))
        f = int(rng.integers(1, min(n + 2 * pad, 9) + 1))
        return dict(n=n, f=f, pad=pad, stride=int(rng.integers(1, 5)))

    def inputs(self, c, rng):
        return (c["n"], c["f"], c["pad"], c["stride"]), {}

    def expect(self, c, args, kwargs):
        return _exact(_positions(*args))

    def describe(self, c):
        return f"conv_output_size({c['n']}, {c['f']}, {c['pad']}, {c['stride']})"

    def smaller(self, c):
        floors = (("n", 1), ("f", 1), ("pad", 0), ("stride", 1))
        return one_smaller(c, floors, lambda s: s["n"] + 2 * s["pad"] >= s["f"])


class ConvParamCount(Spec):
    name = target = family = "conv_param_count"
    forbidden = PURE_POLICY
    arg_names = ("f", "n_c_prev", "n_c")
    outputs = "the parameter count"
    n_random = 10

    def required(self):
        return [dict(f=3, n_c_prev=1, n_c=32), dict(f=3, n_c_prev=32, n_c=64)]

    def hidden_required(self):
        return [dict(f=3, n_c_prev=64, n_c=64), dict(f=1, n_c_prev=1, n_c=1)]

    def draw(self, rng):
        return dict(
            f=int(rng.integers(1, 8)),
            n_c_prev=int(rng.integers(1, 50)),
            n_c=int(rng.integers(1, 70)),
        )

    def inputs(self, c, rng):
        return (c["f"], c["n_c_prev"], c["n_c"]), {}

    def expect(self, c, args, kwargs):
        f, n_c_prev, n_c = args
        return _exact(int(np.prod((f, f, n_c_prev, n_c))) + n_c)  # one bias per filter

    def describe(self, c):
        return f"conv_param_count({c['f']}, {c['n_c_prev']}, {c['n_c']})"

    def smaller(self, c):
        return one_smaller(c, (("f", 1), ("n_c_prev", 1), ("n_c", 1)))


def _parse_stack(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.split("/")) for item in text.split()]  # type: ignore[misc]


def _stack_text(stack) -> str:
    return " ".join(f"{f}/{s}" for f, s in stack)


def reference_field(stack) -> int:
    """Receptive field side by walking back from one output neuron: a window of f neurons
    at stride s over the index range [a, b] covers [a * s, b * s + f - 1] one layer down."""
    first, last = 0, 0
    for f, stride in reversed(list(stack)):
        first, last = first * stride, last * stride + f - 1
    return last - first + 1


class ReceptiveField(Spec):
    name = target = family = "receptive_field"
    forbidden = PURE_POLICY
    arg_names = ("layers",)
    outputs = "the receptive field"
    n_random = 10

    def required(self):
        return [
            dict(stack="3/1 2/2 3/1 2/2 3/1", as_tuple=0),  # the lecture network: 18
            dict(stack="3/1 3/1 3/1", as_tuple=0),  # without pooling: 7
            dict(stack="3/1", as_tuple=0),
            dict(stack="", as_tuple=0),  # no layer: one pixel
        ]

    def hidden_required(self):
        return [dict(stack="5/2 3/1 2/2", as_tuple=1), dict(stack="7/3 1/2 4/3 2/1", as_tuple=0)]

    def draw(self, rng):
        n = int(rng.integers(1, 7))
        stack = [(int(rng.integers(1, 8)), int(rng.integers(1, 4))) for _ in range(n)]
        return dict(stack=_stack_text(stack), as_tuple=int(rng.integers(0, 2)))

    def inputs(self, c, rng):
        stack = _parse_stack(c["stack"])
        return (tuple(stack) if c["as_tuple"] else stack,), {}

    def expect(self, c, args, kwargs):
        return _exact(reference_field(list(args[0])))

    def describe(self, c):
        stack = _parse_stack(c["stack"])
        shown = tuple(stack) if c["as_tuple"] else stack
        return f"receptive_field({shown})"

    def smaller(self, c):
        stack = _parse_stack(c["stack"])
        out = []
        for i in range(len(stack)):
            out.append(dict(c, stack=_stack_text(stack[:i] + stack[i + 1 :])))
        for i, (f, s) in enumerate(stack):
            if f > 1:
                out.append(dict(c, stack=_stack_text(stack[:i] + [(f - 1, s)] + stack[i + 1 :])))
            if s > 1:
                out.append(dict(c, stack=_stack_text(stack[:i] + [(f, s - 1)] + stack[i + 1 :])))
        return out


# ====================================================== A5: cropping_output_shape


class ShapeTuple:
    """A tuple of ints (Python or numpy integers) equal to ``expected``."""

    def __init__(self, expected: tuple[int, ...]):
        self.expected = tuple(int(v) for v in expected)

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not tuple:
            hint = " (return a tuple, e.g. (n_H, n_W, n_C))" if type(got) is list else ""
            return Mismatch(what, TYPE, f"{what} should be a tuple, got {type_name(got)}{hint}")
        if len(got) != len(self.expected) or not all(_is_int(v) for v in got):
            return Mismatch(
                what,
                TYPE,
                f"{what} should be a tuple of {len(self.expected)} ints, got "
                f"({', '.join(type_name(v) for v in got)})",
                got,
            )
        values = tuple(_plain_int(v) for v in got)
        if values != self.expected:
            return Mismatch(what, VALUES, f"{what} is {values}, expected {self.expected}", got)
        return None


def _edges(c: dict) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for a cropping configuration."""
    a, b, cc, d = c["a"], c["b"], c["c"], c["d"]
    if c["form"] in ("int", "numpy"):
        return a, a, a, a
    if c["form"] == "pair":
        return a, a, b, b
    return a, b, cc, d


def _crop_valid(c: dict) -> bool:
    top, bottom, left, right = _edges(c)
    return min(c["n_H"], c["n_W"], c["n_C"]) >= 1 and (
        c["n_H"] - top - bottom >= 1 and c["n_W"] - left - right >= 1
    )


def _crop(**kw) -> dict:
    return dict(dict(a=0, b=0, c=0, d=0), **kw)


class CroppingOutputShape(Spec):
    """``cropping_output_shape`` with the int and ``(sym_h, sym_w)`` forms (numpy ints too)."""

    name = "cropping_int_pair"
    target = "cropping_output_shape"
    family = "cropping_output_shape"
    forbidden = PURE_POLICY
    arg_names: tuple[str, ...] = ("input_shape", "cropping")
    outputs = "the output shape"
    n_random = 10
    forms: tuple[str, ...] = ("int", "pair", "numpy")

    def required(self):
        return [
            _crop(n_H=28, n_W=28, n_C=1, form="int", a=5),  # the lecture's digit crop
            _crop(n_H=16, n_W=16, n_C=32, form="int", a=2),  # a feature map
            _crop(n_H=28, n_W=28, n_C=1, form="pair", a=2, b=4),
            _crop(n_H=10, n_W=12, n_C=3, form="pair", a=0, b=1),
            _crop(n_H=20, n_W=30, n_C=2, form="numpy", a=3),  # numpy integers are ints too
        ]

    def hidden_required(self):
        return [_crop(n_H=7, n_W=39, n_C=8, form="pair", a=3, b=0)]

    def draw(self, rng):
        n_H, n_W, n_C = (
            int(rng.integers(6, 40)),
            int(rng.integers(6, 40)),
            int(rng.integers(1, 9)),
        )
        form = self.forms[int(rng.integers(0, len(self.forms)))]
        if form == "nested":
            return _crop(
                n_H=n_H,
                n_W=n_W,
                n_C=n_C,
                form=form,
                a=int(rng.integers(0, n_H // 2)),
                b=int(rng.integers(0, n_H // 2)),
                c=int(rng.integers(0, n_W // 2)),
                d=int(rng.integers(0, n_W // 2)),
            )
        if form == "pair":
            return _crop(
                n_H=n_H,
                n_W=n_W,
                n_C=n_C,
                form=form,
                a=int(rng.integers(0, n_H // 2)),
                b=int(rng.integers(0, n_W // 2)),
            )
        return _crop(
            n_H=n_H, n_W=n_W, n_C=n_C, form=form, a=int(rng.integers(0, min(n_H, n_W) // 2))
        )

    def _cropping(self, c: dict):
        if c["form"] == "int":
            return c["a"]
        if c["form"] == "numpy":
            return np.int64(c["a"])
        if c["form"] == "pair":
            return (c["a"], c["b"])
        return ((c["a"], c["b"]), (c["c"], c["d"]))

    def inputs(self, c, rng):
        return ((c["n_H"], c["n_W"], c["n_C"]), self._cropping(c)), {}

    def expect(self, c, args, kwargs):
        (n_H, n_W, n_C), _ = args
        top, bottom, left, right = _edges(c)
        # Independent reference: cut a block of zeros and look at what is left.
        right_shape = np.zeros((n_H, n_W, n_C))[top : n_H - bottom, left : n_W - right].shape
        return ShapeTuple(right_shape)

    def describe(self, c):
        cropping = self._cropping(c)
        shown = f"np.int64({c['a']})" if c["form"] == "numpy" else repr(cropping)
        return f"cropping_output_shape({(c['n_H'], c['n_W'], c['n_C'])}, {shown})"

    def smaller(self, c):
        floors = (("n_C", 1), ("n_H", 1), ("n_W", 1), ("a", 0), ("b", 0), ("c", 0), ("d", 0))
        return one_smaller(c, floors, _crop_valid)


class CroppingNested(CroppingOutputShape):
    """``cropping_output_shape`` with the ``((top, bottom), (left, right))`` form."""

    name = "cropping_nested"
    forms = ("nested",)

    def required(self):
        return [
            _crop(n_H=28, n_W=28, n_C=1, form="nested", a=5, b=5, c=5, d=5),
            _crop(n_H=28, n_W=28, n_C=1, form="nested", a=1, b=2, c=3, d=4),
            _crop(n_H=16, n_W=20, n_C=8, form="nested", a=0, b=6, c=2, d=0),
        ]

    def hidden_required(self):
        return [_crop(n_H=9, n_W=31, n_C=3, form="nested", a=4, b=0, c=1, d=13)]


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        ConvOutputSize(),
        ConvParamCount(),
        ReceptiveField(),
        CroppingOutputShape(),
        CroppingNested(),
    )
}
