"""What a returned value must look like, and a message when it does not.

A *matcher* describes the expected value of one output (an array, a number, a tuple of
outputs, ...). ``matcher.mismatch(got)`` returns ``None`` when ``got`` (plain data, see
:mod:`cnncourse.checks.channel`) matches and a :class:`Mismatch` otherwise. Matchers run on
plain data only, so the visible checks in a notebook and the autograder, which compares in
its own process, give the same verdict and the same message.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import math
from dataclasses import dataclass, field

import numpy as np

from .channel import NumpyScalar, Other

# Kinds of mismatch, from the coarsest to the finest.
TYPE, SHAPE, DTYPE, NOT_FINITE, VALUES = "type", "shape", "dtype", "not finite", "values"


@dataclass
class Mismatch:
    """Why a value does not match: ``kind`` is one of the constants above."""

    what: str  # the output's name, e.g. "Z" or "cache[0]"
    kind: str
    message: str
    got: object = None  # the offending value (for diagnoses)
    expected: object = None
    details: list[str] = field(default_factory=list)  # extra lines (slices of arrays)


def type_name(value) -> str:
    """How a value's type reads in a message (``numpy.float64`` for numpy scalars)."""
    if type(value) is Other:
        return value.type_name
    if type(value) is NumpyScalar:
        return f"numpy.{value.dtype}"
    if type(value) is np.ndarray:
        return "numpy.ndarray"
    return type(value).__name__


def _fmt(array: np.ndarray) -> str:
    with np.printoptions(precision=4, suppress=True, linewidth=90, threshold=64, edgeitems=3):
        return np.array2string(np.asarray(array))


def _item(value) -> str:
    """One array entry as a plain Python number (``1.5``, not ``np.float64(1.5)``)."""
    return repr(value.item()) if isinstance(value, np.generic) else repr(value)


def _slice_index(shape: tuple[int, ...], where: tuple[int, ...]) -> tuple:
    """A 2-D slice through ``where``: the last two axes for 2-D arrays, the middle two (the
    height and width of ``(m, n_H, n_W, n_C)`` batches) for 4-D ones."""
    if len(shape) <= 2:
        return tuple(slice(None) for _ in shape)
    if len(shape) == 4:
        return (where[0], slice(None), slice(None), where[3])
    return tuple(where[:-2]) + (slice(None), slice(None))


def _slice_text(index: tuple) -> str:
    parts = [":" if isinstance(i, slice) else str(i) for i in index]
    return "[" + ", ".join(parts) + "]"


@dataclass
class Array:
    """An ``ndarray`` equal to ``expected`` within ``atol + rtol * |expected|``.

    ``dtype`` is the exact dtype required (``"float64"``), or ``None`` to accept any dtype
    of the same kind as ``expected`` (``"f"`` float, ``"b"`` bool, ...).
    """

    expected: np.ndarray
    rtol: float = 1e-7
    atol: float = 1e-10
    dtype: str | None = "float64"
    values: bool = True  # False: check type, shape and dtype only

    def mismatch(self, got, what: str) -> Mismatch | None:
        expected = np.asarray(self.expected)
        if type(got) is not np.ndarray:
            hint = ""
            if type(got) in (tuple, list):
                hint = " (a tuple or list where one array was expected)"
            return Mismatch(
                what, TYPE, f"{what} should be a numpy.ndarray, got {type_name(got)}{hint}", got
            )
        if got.shape != expected.shape:
            return Mismatch(
                what,
                SHAPE,
                f"{what} has shape {got.shape}, expected {expected.shape}",
                got,
                expected,
            )
        if self.dtype is not None and got.dtype != np.dtype(self.dtype):
            return Mismatch(
                what, DTYPE, f"{what} has dtype {got.dtype}, expected {self.dtype}", got, expected
            )
        if self.dtype is None and got.dtype.kind != expected.dtype.kind:
            return Mismatch(
                what,
                DTYPE,
                f"{what} has dtype {got.dtype}, expected a dtype like {expected.dtype}",
                got,
                expected,
            )
        if not self.values:
            return None
        if expected.dtype.kind == "b" or got.dtype.kind == "b":
            bad = got != expected
        else:
            if got.dtype.kind in "fc" and not np.isfinite(got).all():
                return Mismatch(what, NOT_FINITE, f"{what} contains NaN or infinity", got, expected)
            g = got.astype(np.float64)
            e = expected.astype(np.float64)
            bad = np.abs(g - e) > self.atol + self.rtol * np.abs(e)
        if not bad.any():
            return None
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
        count = int(bad.sum())
        message = (
            f"{what} differs from the expected values in {count} of {bad.size} entries; "
            f"first at index {where}: got {_item(got[where])}, expected {_item(expected[where])}"
        )
        details = []
        if got.ndim >= 2:
            index = _slice_index(got.shape, where)
            name = f"{what}{_slice_text(index)}"
            details = [
                f"expected {name}:",
                _fmt(expected[index]),
                f"got {name}:",
                _fmt(got[index]),
            ]
        return Mismatch(what, VALUES, message, got, expected, details)


@dataclass
class Number:
    """A real number (Python or numpy scalar, not an array) close to ``expected``.

    ``integral`` requires an integer (Python ``int`` or a numpy integer, not ``bool``).
    """

    expected: float
    rtol: float = 1e-7
    atol: float = 1e-10
    integral: bool = False

    def mismatch(self, got, what: str) -> Mismatch | None:
        value = got.value if type(got) is NumpyScalar else got
        kinds = (int,) if self.integral else (int, float)
        if type(value) not in kinds or (type(got) is NumpyScalar and got.dtype.startswith("bool")):
            wanted = "an integer (int)" if self.integral else "a number (float)"
            hint = ""
            if type(got) is np.ndarray:
                hint = " -- use float(...) or .item() to turn a one-element array into a number"
            return Mismatch(
                what, TYPE, f"{what} should be {wanted}, got {type_name(got)}{hint}", got
            )
        if not math.isfinite(value):
            return Mismatch(what, NOT_FINITE, f"{what} is {value}", got, self.expected)
        if abs(value - self.expected) > self.atol + self.rtol * abs(self.expected):
            return Mismatch(
                what, VALUES, f"{what} is {value!r}, expected {self.expected!r}", got, self.expected
            )
        return None


@dataclass
class Equal:
    """Plain data equal to ``expected`` (for dicts of settings, labels, ...)."""

    expected: object

    def mismatch(self, got, what: str) -> Mismatch | None:
        if not _equal(got, self.expected):
            return Mismatch(what, VALUES, f"{what} should be {self.expected!r}, got {got!r}", got)
        return None


def _equal(a, b) -> bool:
    if type(a) is np.ndarray or type(b) is np.ndarray:
        return (
            type(a) is np.ndarray
            and type(b) is np.ndarray
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool((a == b).all())
        )
    if type(a) in (tuple, list) and type(b) in (tuple, list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return a == b


@dataclass
class Sequence:
    """A tuple (or, with ``kind="list"``, a list) of outputs, each with its own matcher."""

    items: list
    names: list[str]
    kind: str = "tuple"

    def mismatch(self, got, what: str) -> Mismatch | None:
        wanted = tuple if self.kind == "tuple" else list
        if type(got) is not wanted:
            return Mismatch(
                what,
                TYPE,
                f"{what} should be a {self.kind} ({', '.join(self.names)}), got {type_name(got)}",
                got,
            )
        if len(got) != len(self.items):
            return Mismatch(
                what,
                TYPE,
                f"{what} should be a {self.kind} of {len(self.items)} "
                f"({', '.join(self.names)}), got {len(got)} items",
                got,
            )
        for item, name, value in zip(self.items, self.names, got, strict=True):
            if item is None:
                continue
            found = item.mismatch(value, name)
            if found is not None:
                return found
        return None


@dataclass
class Anything:
    """No requirement (an output the checks do not look at)."""

    def mismatch(self, got, what: str) -> Mismatch | None:
        return None


def too_few_right(
    what: str, predicted: np.ndarray, labels: np.ndarray, threshold: float, items: str, advice: str
) -> Mismatch | None:
    """The mismatch of a trained network whose ``predicted`` labels match ``labels`` less
    often than ``threshold`` (``items``: what was labelled, e.g. "held-out digits")."""
    accuracy = float(np.mean(predicted == labels))
    if accuracy >= threshold:
        return None
    return Mismatch(
        what,
        VALUES,
        f"the trained network labels {accuracy:.1%} of the {len(labels):,} {items} correctly; "
        f"it must reach {threshold:.0%}: {advice}",
        accuracy,
        threshold,
    )


def mismatch_from_check(error, what: str, got) -> Mismatch:
    """A check's error (first line, details after) as a Mismatch of ``what``."""
    first, _, rest = str(error).partition("\n")
    return Mismatch(what, VALUES, first.rstrip("."), got, details=rest.splitlines())
