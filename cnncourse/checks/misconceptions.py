"""The catalogue of known mistakes, in one place: how to recognise each, and what to say.

A failing check looks here for a one-sentence explanation. An entry recognises its mistake
in one of two ways:

* a **mutant**: what a function with exactly this mistake returns for the same inputs
  (computed from the oracle); if the student's result matches it, that is the cause;
* **variants**: configurations on which the mistake does not show (square inputs for
  "works on square inputs only", stride = f for "overlapping windows overwrite"); if the
  failing case fails but all its variants pass, that is the cause.

The entries here are the numpy layers' (assignments 1 and 2); every other checks module keeps
its own entries next to its checks, in a ``MISCONCEPTIONS`` list that :func:`_gather` adds
to :data:`CATALOGUE`. This is the one way a known mistake is described: a check's matcher
says only what is right, and :func:`cnncourse.checks.engine.diagnose` asks the catalogue
which mistake a failing value shows.

Each entry is proven by a fixture notebook in ``tests/fixtures/cases`` or by a one-edit
buggy function (``tests/test_visible_checks.py::test_every_misconception_has_a_fixture``).
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from . import lectures, matchers
from .matchers import Array, Sequence
from .misconception_entry import Misconception


def _oracles():
    from .. import oracles

    return oracles


def _first_array(got):
    """The first array of a returned value (``Z`` of ``(Z, cache)``)."""
    if type(got) is np.ndarray:
        return got
    if type(got) in (tuple, list) and got and type(got[0]) is np.ndarray:
        return got[0]
    return None


def _with_first(expected_first: np.ndarray, n_outputs: int) -> Sequence:
    """A matcher for ``(first, anything...)``."""
    return Sequence([Array(expected_first)] + [None] * (n_outputs - 1), ["output"] * n_outputs)


# --------------------------------------------------------------------------- mutants


def _conv_out(n: int, f: int, pad: int, stride: int) -> int:
    return (n + 2 * pad - f) // stride + 1


def _ignores_stride(spec, config, args, kwargs):
    oracles = _oracles()
    stride = config.get("stride", 1)
    if stride == 1:
        return None
    if spec.family == "conv_forward":
        A, W, b, hp = args
        n_H = _conv_out(A.shape[1], W.shape[0], hp["pad"], stride)
        n_W = _conv_out(A.shape[2], W.shape[0], hp["pad"], stride)
        Z1 = oracles.conv_forward(A, W, b, 1, hp["pad"])
        return _with_first(Z1[:, :n_H, :n_W, :], 2)
    if spec.family == "pool_forward":
        A, hp = args
        mode = kwargs.get("mode", "max")
        n_H = _conv_out(A.shape[1], hp["f"], 0, stride)
        n_W = _conv_out(A.shape[2], hp["f"], 0, stride)
        P1 = oracles.pool_forward(A, hp["f"], 1, mode)
        return _with_first(P1[:, :n_H, :n_W, :], 2)
    if spec.family == "conv_backward":
        dZ, (A, W, b, hp) = args
        f, pad = W.shape[0], hp["pad"]
        full = np.zeros(
            (A.shape[0], _conv_out(A.shape[1], f, pad, 1), _conv_out(A.shape[2], f, pad, 1))
            + dZ.shape[3:]
        )
        full[:, : dZ.shape[1], : dZ.shape[2], :] = dZ
        dA, dW, db = oracles.conv_backward(A, W, b, 1, pad, full)
        return Sequence([Array(dA), Array(dW), Array(db)], ["dA_prev", "dW", "db"])
    if spec.family == "pool_backward":
        dA, (A, hp) = args
        mode = kwargs.get("mode", "max")
        f = hp["f"]
        full = np.zeros((A.shape[0], A.shape[1] - f + 1, A.shape[2] - f + 1, A.shape[3]))
        full[:, : dA.shape[1], : dA.shape[2], :] = dA
        return Array(oracles.pool_backward(A, f, 1, full, mode))
    return None


def _bias_repeated(spec, config, args, kwargs):
    if spec.family == "conv_single_step":
        a, W, b = args
        value = float(np.sum(a * W)) + a.size * float(np.asarray(b).reshape(-1)[0])
        return matchers.Number(value)
    if spec.family == "conv_forward":
        A, W, b, hp = args
        Z = _oracles().conv_forward(A, W, b, hp["stride"], hp["pad"])
        f, _, n_C_prev, _ = W.shape
        return _with_first(Z + (f * f * n_C_prev - 1) * b.reshape(1, 1, 1, -1), 2)
    return None


def _db_repeated(spec, config, args, kwargs):
    if spec.family != "conv_backward":
        return None
    dZ, (A, W, b, hp) = args
    dA, dW, db = _oracles().conv_backward(A, W, b, hp["stride"], hp["pad"], dZ)
    f, _, n_C_prev, _ = W.shape
    return Sequence([Array(dA), Array(dW), Array(db * f * f * n_C_prev)], ["dA_prev", "dW", "db"])


def _bias_missing(spec, config, args, kwargs):
    if spec.family == "conv_single_step":
        a, W, _ = args
        return matchers.Number(float(np.sum(a * W)))
    if spec.family == "conv_forward":
        A, W, b, hp = args
        Z = _oracles().conv_forward(A, W, np.zeros_like(b), hp["stride"], hp["pad"])
        return _with_first(Z, 2)
    return None


def _first_max_mask(window: np.ndarray, all_ties: bool) -> np.ndarray:
    if all_ties:
        return window == window.max()
    mask = np.zeros(window.shape, dtype=bool)
    mask[np.unravel_index(np.argmax(window), window.shape)] = True
    return mask


def _all_ties_marked(spec, config, args, kwargs):
    if spec.family == "create_mask_from_window":
        (x,) = args
        return Array(_first_max_mask(np.asarray(x), True), dtype=None)
    if spec.family == "pool_backward" and kwargs.get("mode", "max") == "max":
        dA, (A, hp) = args
        f, stride = hp["f"], hp["stride"]
        out = np.zeros(A.shape)
        for i in range(dA.shape[0]):
            for h in range(dA.shape[1]):
                for w in range(dA.shape[2]):
                    for c in range(dA.shape[3]):
                        r, s = h * stride, w * stride
                        window = A[i, r : r + f, s : s + f, c]
                        out[i, r : r + f, s : s + f, c] += (
                            _first_max_mask(window, True) * dA[i, h, w, c]
                        )
        return Array(out)
    return None


def _average_divides_by_f(spec, config, args, kwargs):
    if kwargs.get("mode", "max") != "average" and spec.family != "distribute_value":
        return None
    oracles = _oracles()
    if spec.family == "pool_forward":
        A, hp = args
        return _with_first(oracles.pool_forward(A, hp["f"], hp["stride"], "average") * hp["f"], 2)
    if spec.family == "pool_backward":
        dA, (A, hp) = args
        return Array(oracles.pool_backward(A, hp["f"], hp["stride"], dA, "average") * hp["f"])
    return None


def _average_is_max(spec, config, args, kwargs):
    if spec.family != "pool_forward" or kwargs.get("mode") != "average":
        return None
    A, hp = args
    return _with_first(_oracles().pool_forward(A, hp["f"], hp["stride"], "max"), 2)


def _distribute_by_side(spec, config, got, mismatch) -> bool:
    if spec.family != "distribute_value" or type(got) is not np.ndarray or mismatch is None:
        return False
    expected = np.asarray(mismatch.expected) if mismatch.expected is not None else None
    if expected is None or expected.shape != got.shape or expected.size == 0:
        return False
    n_H, n_W = got.shape
    for side in (n_H, n_W):
        if np.allclose(got, expected * (n_H * n_W) / side, rtol=1e-9, atol=1e-12):
            return True
    return False


# ------------------------------------------------------------------------ predicates


def _height_width_swapped(spec, config, got, mismatch) -> bool:
    array = _first_array(got)
    if mismatch is None or mismatch.kind != matchers.SHAPE or array is None:
        return False
    expected = np.asarray(mismatch.expected) if mismatch.expected is not None else None
    if expected is None or expected.ndim not in (2, 4) or array.ndim != expected.ndim:
        return False
    axes = (0, 1) if expected.ndim == 2 else (1, 2)
    want = list(expected.shape)
    want[axes[0]], want[axes[1]] = want[axes[1]], want[axes[0]]
    return want != list(expected.shape) and list(array.shape) == want


def _pads_wrong_axes(spec, config, got, mismatch) -> bool:
    if spec.family != "zero_pad" or mismatch is None or type(got) is not np.ndarray:
        return False
    pad = config.get("pad", 0)
    base = (config["m"], config["n_H"], config["n_W"], config["n_C"])
    if got.ndim != 4 or pad == 0:
        return False
    right = tuple(n + 2 * pad if i in (1, 2) else n for i, n in enumerate(base))
    return tuple(got.shape) != right and all(
        got.shape[i] in (base[i], base[i] + 2 * pad) for i in range(4)
    )


def _unpad_empty(spec, config, got, mismatch) -> bool:
    array = _first_array(got)
    return (
        spec.family == "conv_backward"
        and config.get("pad", None) == 0
        and array is not None
        and array.ndim == 4
        and (array.shape[1] == 0 or array.shape[2] == 0)
    )


def _pad_variants(spec, config) -> list[dict]:
    if config.get("pad") != 0:
        return []
    return [dict(config, pad=1)]


def _unpadded_variants(spec, config) -> list[dict]:
    """The same case without padding (where reading the unpadded input does no harm)."""
    if config.get("pad", 0) == 0:
        return []
    variant = dict(config, pad=0)
    for key in ("n_H_prev", "n_W_prev"):  # a window must still fit without padding
        if key in variant and "f" in variant:
            variant[key] = max(variant[key], variant["f"])
    return [variant]


def _across_channels(spec, config, args, kwargs):
    """Pooling over the window and every channel at once (the channel axis not kept apart)."""
    if spec.family != "pool_forward" or config.get("n_C", 1) < 2:
        return None
    A, hp = args
    mode = kwargs.get("mode", "max")
    P = _oracles().pool_forward(A, hp["f"], hp["stride"], mode)
    if mode == "max":
        P = _oracles().pool_forward(A.max(axis=3, keepdims=True), hp["f"], hp["stride"], mode)
    else:
        P = P.mean(axis=3, keepdims=True)
    return _with_first(np.broadcast_to(P, P.shape[:3] + (A.shape[3],)).copy(), 2)


def _db_flat(spec, config, got, mismatch) -> bool:
    return (
        spec.family == "conv_backward"
        and type(got) in (tuple, list)
        and len(got) == 3
        and type(got[2]) is np.ndarray
        and got[2].ndim == 1
    )


def _returns_array(spec, config, got, mismatch) -> bool:
    return spec.family == "conv_single_step" and type(got) is np.ndarray and got.size == 1


def _float32(spec, config, got, mismatch) -> bool:
    return (
        mismatch is not None
        and mismatch.kind == matchers.DTYPE
        and type(mismatch.got) is np.ndarray
        and mismatch.got.dtype == np.float32
    )


# -------------------------------------------------------------------------- variants


def _square_variants(spec, config) -> list[dict]:
    keys = getattr(spec, "height_width", None)
    if not keys or config.get(keys[0]) == config.get(keys[1]):
        return []
    small = min(config[keys[0]], config[keys[1]])
    large = max(config[keys[0]], config[keys[1]])
    return [dict(config, **{keys[0]: n, keys[1]: n}) for n in (small, large)]


def _overlap_variants(spec, config) -> list[dict]:
    f, stride = config.get("f"), config.get("stride")
    if f is None or stride is None or stride >= f:
        return []
    return [dict(config, stride=f)]


_LAYERS = ("conv_forward", "pool_forward", "conv_backward", "pool_backward")

CATALOGUE: dict[str, Misconception] = {
    m.key: m
    for m in [
        Misconception(
            "ignores_stride",
            "the window does not move by the stride: output position h starts at input row "
            "h * stride (and w at column w * stride), not at h.",
            mutant=_ignores_stride,
            applies_to=_LAYERS,
            lecture=lectures.CONV_FORWARD,
        ),
        Misconception(
            "bias_repeated",
            "the bias is added f*f*n_C_prev times (once per product, inside the sum): add it "
            "once per window, after the sum.",
            mutant=_bias_repeated,
            applies_to=("conv_single_step", "conv_forward"),
            lecture=lectures.SINGLE_STEP,
        ),
        Misconception(
            "db_repeated",
            "db counts every dZ entry f*f*n_C_prev times (once per product term): the bias "
            "is added once per window, so db[..., c] is just the sum of dZ[..., c].",
            mutant=_db_repeated,
            applies_to=("conv_backward",),
            lecture=lectures.THREE_RULES,
        ),
        Misconception(
            "bias_missing",
            "the bias is not added: every output is the sum of the products plus b.",
            mutant=_bias_missing,
            applies_to=("conv_single_step", "conv_forward"),
            lecture=lectures.SINGLE_STEP,
        ),
        Misconception(
            "unpad_empty",
            "un-padding with [pad:-pad] is empty when pad = 0 (x[0:-0] is x[0:0]); use "
            "[pad:pad + n_H_prev] (and the same for the width).",
            predicate=_unpad_empty,
            variant=_pad_variants,
            applies_to=("conv_backward",),
            lecture=lectures.BACKWARD_EXERCISES,
        ),
        Misconception(
            "all_ties_marked",
            "every tied maximum is marked: when several entries share the maximum, only the "
            "first one in row-major order (np.argmax) gets the gradient.",
            mutant=_all_ties_marked,
            applies_to=("create_mask_from_window", "pool_backward"),
            lecture=lectures.POOL_BACKWARD,
        ),
        Misconception(
            "height_width_swapped",
            "width and height are swapped: the output's axis 1 is the height (n_H, rows) and "
            "axis 2 the width (n_W, columns).",
            predicate=_height_width_swapped,
            applies_to=_LAYERS + ("zero_pad", "create_mask_from_window", "distribute_value"),
            lecture=lectures.BATCHES_4D,
        ),
        Misconception(
            "pools_across_channels",
            "each window is pooled over every channel at once: pool each channel c on its "
            "own, A_prev[i, rows, columns, c], so that the output keeps n_C channels apart.",
            mutant=_across_channels,
            applies_to=("pool_forward",),
            lecture=lectures.POOL_FORWARD,
        ),
        Misconception(
            "db_flat",
            "db has shape (n_C,): keep the bias's shape (1, 1, 1, n_C), e.g. "
            "dZ.sum(axis=(0, 1, 2), keepdims=True) or db[:, :, :, c] += ...",
            predicate=_db_flat,
            applies_to=("conv_backward",),
            lecture=lectures.THREE_RULES,
        ),
        Misconception(
            "returns_array",
            "it returns a one-element array, not a number: b has shape (1, 1, 1), so the sum "
            "plus b is an array; return float(...) of it.",
            predicate=_returns_array,
            applies_to=("conv_single_step",),
            lecture=lectures.SINGLE_STEP,
        ),
        Misconception(
            "pads_wrong_axes",
            "the wrong axes are padded: only the height and width (axes 1 and 2) get zeros, "
            "not the examples (axis 0) or the channels (axis 3).",
            predicate=_pads_wrong_axes,
            applies_to=("zero_pad",),
            lecture=lectures.ZERO_PAD,
        ),
        Misconception(
            "average_divides_by_f",
            "average pooling divides by f, not by f*f: a window has f*f entries.",
            mutant=_average_divides_by_f,
            predicate=_distribute_by_side,
            applies_to=("pool_forward", "pool_backward", "distribute_value"),
            lecture=lectures.POOL_FORWARD,
        ),
        Misconception(
            "average_is_max",
            "mode='average' returns the maximum of each window: use the mean for average "
            "pooling (and the maximum only for mode='max').",
            mutant=_average_is_max,
            applies_to=("pool_forward",),
            lecture=lectures.POOL_FORWARD,
        ),
        Misconception(
            "square_only",
            "it works on square inputs only: somewhere the height is used for the width (or "
            "the other way round): check n_H / n_W and the slices of each axis.",
            variant=_square_variants,
            applies_to=_LAYERS + ("zero_pad", "create_mask_from_window", "distribute_value"),
            lecture=lectures.CONV_FORWARD,
        ),
        Misconception(
            "overlap_overwrites",
            "where windows overlap (stride < f) their contributions must be added (+=); "
            "assigning (=) keeps only the last one.",
            variant=_overlap_variants,
            applies_to=("conv_backward", "pool_backward"),
            lecture=lectures.THREE_RULES,
        ),
        Misconception(
            "float32_output",
            "it returns float32: keep float64 for float64 inputs (np.zeros(...) is float64 by "
            "default; do not cast).",
            predicate=_float32,
            applies_to=_LAYERS + ("zero_pad", "distribute_value"),
            lecture=lectures.GRADIENT_CHECKING,
        ),
        Misconception(
            "reads_unpadded",
            "the windows are read from the unpadded input: slice A_prev_pad (what zero_pad "
            "returned), not A_prev, so that windows near the border see the zeros.",
            variant=_unpadded_variants,
            applies_to=("conv_forward",),
            lecture=lectures.CONV_FORWARD,
        ),
        Misconception(
            "dw_from_unpadded",
            "dW (and dA) are computed from windows of the unpadded input: take the windows "
            "of A_prev_pad (and add into dA_prev_pad), then remove the padding at the end.",
            variant=_unpadded_variants,
            applies_to=("conv_backward",),
            lecture=lectures.THREE_RULES,
        ),
    ]
}


def _gather() -> None:
    """Add the entries each checks module keeps (its ``MISCONCEPTIONS`` list:
    arithmetic_mistakes.py, torch_models.py, capstone.py, modern_mistakes.py, ...), so that
    a new assignment's mistakes need no registration here."""
    import importlib
    import pkgutil

    from . import __path__ as package_path

    for module in sorted(m.name for m in pkgutil.iter_modules(package_path)):
        if module == __name__.rpartition(".")[2]:
            continue
        entries = getattr(importlib.import_module(f"{__package__}.{module}"), "MISCONCEPTIONS", [])
        for entry in entries:
            if entry.key in CATALOGUE:
                raise ValueError(f"misconception {entry.key!r} is registered twice")
            CATALOGUE[entry.key] = entry


_gather()


def applicable(spec) -> list[Misconception]:
    """The entries that apply to ``spec``'s family, in catalogue order."""
    return [m for m in CATALOGUE.values() if spec.family in m.applies_to]
