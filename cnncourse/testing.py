"""Checks used by the visible and hidden tests of the assignments.

They give students messages that say what is wrong (shape, dtype, which entry, by how
much) and they are harder to fool than a bare ``assert np.allclose(...)``:

* the numpy functions they rely on are captured when this module is imported, in the
  setup cell, before any student code runs, so ``np.allclose = lambda *a, **k: True``
  in a student cell does not change what they compute;
* values are checked for their exact type (``numpy.ndarray`` or a real number) before
  they are compared, so an object whose ``__eq__`` always returns True fails.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import math
import numbers
from typing import NoReturn, cast

import numpy as np

# References captured at import time (before student code can monkey-patch numpy).
_ndarray = np.ndarray
_asarray = np.asarray
_abs = np.absolute  # ufuncs are C objects: their behaviour cannot be patched from Python
_subtract = np.subtract
_isfinite = np.isfinite
_greater = np.greater
_argmax = np.argmax
_unravel = np.unravel_index
_float64 = np.float64

_isinstance = isinstance
_type = type
_len = len
_math_isfinite = math.isfinite


class CheckError(AssertionError):
    """A failed check; the message is written for the student.

    In a notebook, IPython shows it as the student's own line (the call in the test cell)
    and the message only: the frames inside the checks are marked ``__tracebackhide__``
    and left out.
    """

    def _render_traceback_(self) -> list[str]:
        import linecache
        import traceback

        lines = []
        for frame, lineno in traceback.walk_tb(self.__traceback__):
            if frame.f_locals.get("__tracebackhide__") or frame.f_globals.get("__tracebackhide__"):
                continue
            code = linecache.getline(frame.f_code.co_filename, lineno).strip()
            lines.append(f"\x1b[36mline {lineno}:\x1b[0m {code}")
        return lines + [f"\x1b[31mCheckError\x1b[0m: {self}"]


def _fail(message: str) -> NoReturn:
    raise CheckError(message)


def check_type(name: str, value: object, expected: type | tuple[type, ...]) -> None:
    """``value`` must be an instance of ``expected`` (for arrays: exactly ``np.ndarray``)."""
    if expected is _ndarray:
        if _type(value) is not _ndarray:
            _fail(f"{name} should be a numpy.ndarray, got {_type(value).__name__}")
    elif not _isinstance(value, expected):
        names: tuple[type, ...] = expected if isinstance(expected, tuple) else (expected,)
        wanted = " or ".join(t.__name__ for t in names)
        _fail(f"{name} should be {wanted}, got {_type(value).__name__}")


def check_shape(name: str, value: np.ndarray, shape: tuple[int, ...]) -> None:
    """``value`` must be an ``ndarray`` of exactly ``shape``."""
    check_type(name, value, _ndarray)
    if tuple(value.shape) != tuple(shape):
        _fail(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")


def check_dtype_kind(name: str, value: np.ndarray, kinds: str = "f") -> None:
    """``value.dtype.kind`` must be one of ``kinds`` ('f' float, 'b' bool, 'i' int)."""
    check_type(name, value, _ndarray)
    if value.dtype.kind not in kinds:
        _fail(f"{name} has dtype {value.dtype}, expected a dtype of kind {kinds!r}")


def check_array(
    name: str,
    actual: object,
    expected: np.ndarray,
    rtol: float = 1e-7,
    atol: float = 1e-10,
    dtype_kinds: str | None = "f",
) -> None:
    """Compare an array with the expected one: type, shape, dtype, finiteness, values.

    Passes when ``|actual - expected| <= atol + rtol * |expected|`` everywhere (the
    numpy ``allclose`` rule, computed with references captured at import time).
    """
    expected = _asarray(expected)
    check_type(name, actual, _ndarray)
    actual = cast(np.ndarray, actual)
    check_shape(name, actual, expected.shape)
    if dtype_kinds is not None:
        check_dtype_kind(name, actual, dtype_kinds)
    a = actual.astype(_float64, copy=False) if actual.dtype.kind != "b" else actual
    e = expected.astype(_float64, copy=False) if expected.dtype.kind != "b" else expected
    if a.dtype.kind == "b" or e.dtype.kind == "b":
        bad = a != e
        if bad.any():
            where = tuple(int(i) for i in _unravel(_argmax(bad), bad.shape))
            _fail(f"{name} differs at index {where}: got {a[where]}, expected {e[where]}")
        return
    if not _isfinite(a).all():
        _fail(f"{name} contains NaN or infinity")
    err = _abs(_subtract(a, e))
    tol = atol + rtol * _abs(e)
    bad = _greater(err, tol)
    if bad.any():
        where = tuple(int(i) for i in _unravel(_argmax(bad), bad.shape)) if a.ndim else ()
        n_bad = int(bad.sum())
        _fail(
            f"{name} differs from the expected values in {n_bad} of {a.size} entries; "
            f"first at index {where}: got {a[where]!r}, expected {e[where]!r}"
        )


def check_scalar(
    name: str, actual: object, expected: float, rtol: float = 1e-7, atol: float = 1e-10
) -> None:
    """``actual`` must be a real number (Python or numpy scalar) close to ``expected``."""
    if _isinstance(actual, _ndarray) or not _isinstance(actual, numbers.Real):
        _fail(f"{name} should be a number (float), got {_type(actual).__name__}")
    value = float(cast(float, actual))
    if not _math_isfinite(value):
        _fail(f"{name} is {value}")
    if abs(value - expected) > atol + rtol * abs(expected):
        _fail(f"{name} is {value!r}, expected {expected!r}")


def check_unmodified(name: str, original_copy: np.ndarray, after: np.ndarray) -> None:
    """An input array must come back unchanged (compare with a copy taken before)."""
    if tuple(original_copy.shape) != tuple(after.shape) or (original_copy != after).any():
        _fail(f"{name} was modified in place; work on a copy or on new arrays instead")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / max(|a| + |b|, tiny)``, the usual gradient-check measure."""
    a = _asarray(a, dtype=_float64)
    b = _asarray(b, dtype=_float64)
    num = float(np.linalg.norm(a - b))
    den = float(np.linalg.norm(a) + np.linalg.norm(b))
    return num / max(den, 1e-300)


__all__ = [
    "CheckError",
    "check_array",
    "check_dtype_kind",
    "check_scalar",
    "check_shape",
    "check_type",
    "check_unmodified",
    "relative_error",
]
