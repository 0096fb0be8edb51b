"""The known mistakes of the pure functions of assignments 3 and 5
(:mod:`cnncourse.checks.arithmetic`): output sizes, parameter counts, receptive fields and
the shapes Cropping2D gives. The catalogue (:mod:`cnncourse.checks.misconceptions`) gathers
them; each is proven by a one-edit reference cell in ``tests/test_known_mistakes.py`` or by
a grading fixture.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

from . import lectures
from .arithmetic import ShapeTuple, _edges, _exact, _positions
from .matchers import Number
from .misconception_entry import Misconception

# Each mutant is what a function with the mistake returns for the same arguments (None
# where the mistake cannot show on them).


def _size_not_floored(spec, config, args, kwargs):
    n, f, pad, stride = args
    return Number((n + 2 * pad - f) / stride + 1)


def _size_without_one(spec, config, args, kwargs):
    n, f, pad, stride = args
    return _exact((n + 2 * pad - f) // stride) if _positions(*args) else None


def _size_pad_one_side(spec, config, args, kwargs):
    n, f, pad, stride = args
    return _exact((n + pad - f) // stride + 1) if pad else None


def _count_no_biases(spec, config, args, kwargs):
    f, n_c_prev, n_c = args
    return _exact(f * f * n_c_prev * n_c)


def _count_one_bias(spec, config, args, kwargs):
    f, n_c_prev, n_c = args
    return _exact(f * f * n_c_prev * n_c + 1) if n_c > 1 else None


def _count_no_input_channels(spec, config, args, kwargs):
    f, n_c_prev, n_c = args
    return _exact(f * f * n_c + n_c) if n_c_prev > 1 else None


def _field_no_jump(spec, config, args, kwargs):
    return _exact(1 + sum(f - 1 for f, _ in args[0]))


def _field_stride_first(spec, config, args, kwargs):
    side, jump = 1, 1
    for f, stride in args[0]:
        jump *= stride
        side += (f - 1) * jump
    return _exact(side)


def _crop_channels(spec, config, args, kwargs):
    (n_H, n_W, n_C), _ = args
    top, bottom, left, right = _edges(config)
    if not top + bottom:
        return None
    return ShapeTuple((n_H - top - bottom, n_W - left - right, n_C - top - bottom))


def _crop_int_one_side(spec, config, args, kwargs):
    (n_H, n_W, n_C), _ = args
    if config["form"] not in ("int", "numpy") or not config["a"]:
        return None
    return ShapeTuple((n_H - config["a"], n_W - config["a"], n_C))


def _crop_pair_swapped(spec, config, args, kwargs):
    (n_H, n_W, n_C), _ = args
    a, b = config["a"], config["b"]
    if config["form"] != "pair" or a == b:
        return None
    return ShapeTuple((n_H - 2 * b, n_W - 2 * a, n_C))


def _crop_nested_transposed(spec, config, args, kwargs):
    (n_H, n_W, n_C), _ = args
    if config["form"] != "nested" or config["b"] == config["c"]:
        return None
    return ShapeTuple((n_H - config["a"] - config["c"], n_W - config["b"] - config["d"], n_C))


MISCONCEPTIONS = [
    Misconception(
        "size_not_floored",
        "the division is not floored: use // so that the positions where the filter does "
        "not fit are dropped and the result is an int",
        lecture=lectures.OUTPUT_SIZE,
        mutant=_size_not_floored,
        applies_to=("conv_output_size",),
    ),
    Misconception(
        "size_without_one",
        "the + 1 is missing: the filter's first position (at 0) counts too",
        lecture=lectures.OUTPUT_SIZE,
        mutant=_size_without_one,
        applies_to=("conv_output_size",),
    ),
    Misconception(
        "size_pad_one_side",
        "the padding is added on one side only: pad zeros go on each side, so the padded "
        "side is n + 2 * pad",
        lecture=lectures.OUTPUT_SIZE,
        mutant=_size_pad_one_side,
        applies_to=("conv_output_size",),
    ),
    Misconception(
        "count_no_biases",
        "the biases are not counted: every filter has one bias, so add n_c",
        lecture=lectures.KERAS_MODEL,
        mutant=_count_no_biases,
        applies_to=("conv_param_count",),
    ),
    Misconception(
        "count_one_bias",
        "one bias per layer is counted: every filter has its own bias (n_c biases in all)",
        lecture=lectures.KERAS_MODEL,
        mutant=_count_one_bias,
        applies_to=("conv_param_count",),
    ),
    Misconception(
        "count_no_input_channels",
        "the input channels are missing: each filter has f * f * n_c_prev weights, one "
        "f x f kernel per input channel",
        lecture=lectures.KERAS_MODEL,
        mutant=_count_no_input_channels,
        applies_to=("conv_param_count",),
    ),
    Misconception(
        "field_no_jump",
        "the jump is missing: each layer adds (f - 1) times the distance, in input pixels, "
        "between neighbouring neurons below it, and every stride multiplies that distance",
        lecture=lectures.RECEPTIVE_FIELDS,
        mutant=_field_no_jump,
        applies_to=("receptive_field",),
    ),
    Misconception(
        "field_stride_first",
        "a layer's own stride is applied before its window: a layer grows the field by "
        "(f - 1) * jump with the jump of the layers below it; multiply the jump by its "
        "stride after that",
        lecture=lectures.RECEPTIVE_FIELDS,
        mutant=_field_stride_first,
        applies_to=("receptive_field",),
    ),
    Misconception(
        "crop_channels",
        "the channels are cropped too: Cropping2D cuts rows and columns only",
        lecture=lectures.CROPPING_FORMS,
        mutant=_crop_channels,
        applies_to=("cropping_output_shape",),
    ),
    Misconception(
        "crop_int_one_side",
        "an int c crops c rows off the top and c off the bottom (and c columns off each "
        "side): the height loses 2 * c",
        lecture=lectures.CROPPING_FORMS,
        mutant=_crop_int_one_side,
        applies_to=("cropping_output_shape",),
    ),
    Misconception(
        "crop_pair_swapped",
        "(sym_h, sym_w) is read the wrong way round: the first number crops the height "
        "(rows off the top and the bottom), the second the width",
        lecture=lectures.CROPPING_FORMS,
        mutant=_crop_pair_swapped,
        applies_to=("cropping_output_shape",),
    ),
    Misconception(
        "crop_nested_transposed",
        "the nested form is read as ((top, left), (bottom, right)): it is "
        "((top, bottom), (left, right)), the first pair for the rows",
        lecture=lectures.CROPPING_FORMS,
        mutant=_crop_nested_transposed,
        applies_to=("cropping_output_shape",),
    ),
]
