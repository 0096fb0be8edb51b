"""The known mistakes of assignment 6, recognised by the checks of
:mod:`cnncourse.checks.modern` (entries built like those of
:mod:`cnncourse.checks.misconceptions`, which registers them).

Most are *mutants*: the reference computation of :mod:`cnncourse.checks.modern_oracles` with
the mistake switched on; a function whose result matches the mutant made that mistake. Each
entry is proved by a buggy function in ``tests/test_modern_checks.py`` (several of them also
grading fixtures in ``tests/fixtures/cases/06_modern_cnn.py``).
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from . import lectures
from . import modern_oracles as mo
from .matchers import SHAPE, Array, Sequence
from .misconception_entry import Misconception
from .modern import GradDict, Running
from .modern_models import FLOAT32


def _training_only(mutate):
    """A mutant of batchnorm_forward's ``out`` for training-mode cases."""

    def mutant(spec, config, args, kwargs):
        if spec.family != "batchnorm_forward" or not args[4]:
            return None
        out, _, _ = mo.bn_forward(*args, **kwargs, **mutate)
        return Sequence([Array(out), None, None], ["out", "new_running", "cache"])

    return mutant


def _momentum_swapped(spec, config, args, kwargs):
    momentum = kwargs.get("momentum", mo.MOMENTUM)
    if spec.family != "batchnorm_forward" or not args[4] or momentum == 0.5:
        return None
    _, new, _ = mo.bn_forward(*args, **kwargs, swap_momentum=True)
    return Sequence([None, Running(new), None], ["out", "new_running", "cache"])


def _batch_stats_at_inference(spec, config, args, kwargs):
    if spec.family != "batchnorm_forward" or args[4]:
        return None
    out, _, _ = mo.bn_forward(*args, **kwargs, batch_stats_at_inference=True)
    return Sequence([Array(out), None, None], ["out", "new_running", "cache"])


def _bn_no_mean_terms(spec, config, args, kwargs):
    if spec.family != "batchnorm_backward":
        return None
    dout, cache = args
    dX, dgamma, dbeta = mo.bn_backward(dout, cache, no_mean_terms=True)
    return Sequence([Array(dX), Array(dgamma), Array(dbeta)], ["dX", "dgamma", "dbeta"])


def _bn_sums_over_examples_only(spec, config, got, mismatch) -> bool:
    return (
        spec.family == "batchnorm_backward"
        and mismatch is not None
        and mismatch.kind == SHAPE
        and mismatch.what in ("dgamma", "dbeta")
        and type(mismatch.got) is np.ndarray
        and mismatch.got.shape == (config["n_H"], config["n_W"], config["n_C"])
    )


def _relu_before_add(spec, config, args, kwargs):
    if spec.family == "residual_block_forward":
        return Array(mo.block_torch(*args, relu_before_add=True))
    if spec.family == "residual_block_backward":
        return GradDict(mo.block_torch(*args, relu_before_add=True)[1])
    return None


def _no_shortcut_gradient(spec, config, args, kwargs):
    if spec.family != "residual_block_backward":
        return None
    return GradDict(mo.block_torch(*args, no_shortcut_gradient=True)[1])


def _framework_mutant(families: tuple[str, ...], applies=None, **mistake):
    def mutant(spec, config, args, kwargs):
        if spec.family not in families or (applies is not None and not applies(args)):
            return None
        return Array(mo.block_torch(*args, **mistake), **FLOAT32)

    return mutant


def _pads_differently(args) -> bool:
    X, _, stride = args
    return stride == 2 and (X.shape[1] % 2 == 0 or X.shape[2] % 2 == 0)


FRAMEWORKS = ("keras_residual_block", "torch_residual_block")

MISCONCEPTIONS: list[Misconception] = [
    Misconception(
        "bn_unbiased_variance",
        "the variance is the unbiased one (divided by n - 1, as np.var(..., ddof=1) or "
        "torch.var compute it): batch normalization divides by n, the number of values "
        "pooled per channel (np.var's default).",
        mutant=_training_only({"ddof": 1}),
        applies_to=("batchnorm_forward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "bn_per_position",
        "the statistics are taken over the examples only (axis 0), one mean per position "
        "and channel: spatial batch normalization pools the examples and every position, "
        "one mean and variance per channel (axes 0, 1 and 2).",
        mutant=_training_only({"axes": (0,)}),
        applies_to=("batchnorm_forward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "bn_eps_outside_sqrt",
        "eps is added after the square root: X_hat = (X - mean) / np.sqrt(var + eps).",
        mutant=_training_only({"eps_outside": True}),
        applies_to=("batchnorm_forward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "bn_momentum_swapped",
        "the running averages keep (1 - momentum) of their old value: they keep momentum "
        "of it, running = momentum * running + (1 - momentum) * batch statistic (Keras' "
        "convention; PyTorch's momentum=0.1 means the opposite).",
        mutant=_momentum_swapped,
        applies_to=("batchnorm_forward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "bn_batch_stats_at_inference",
        "at inference (training=False) the batch's own mean and variance are used: "
        "inference normalizes with the running averages, so that an image's output does "
        "not depend on the other images of its batch.",
        mutant=_batch_stats_at_inference,
        applies_to=("batchnorm_forward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "bn_no_mean_terms",
        "dX treats the batch mean and variance as constants (dX = dout * gamma / std): "
        "both depend on every X in the batch, which adds the terms "
        "- mean(dX_hat) - X_hat * mean(dX_hat * X_hat) (per channel) before dividing by std.",
        mutant=_bn_no_mean_terms,
        applies_to=("batchnorm_backward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "bn_sums_over_examples_only",
        "dgamma and dbeta are summed over the examples only (axis 0): gamma and beta are "
        "shared by every position too, so sum over axes 0, 1 and 2.",
        predicate=_bn_sums_over_examples_only,
        applies_to=("batchnorm_backward",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "block_relu_before_add",
        "the second ReLU comes before the addition: the block adds the shortcut to the "
        "second batch normalization's output, and only then applies the ReLU.",
        mutant=_relu_before_add,
        applies_to=("residual_block_forward", "residual_block_backward"),
        lecture=lectures.RESIDUAL_BLOCKS,
    ),
    Misconception(
        "block_no_shortcut_gradient",
        "dX misses the shortcut's gradient: X reaches the output along two paths (the body "
        "and the shortcut), so dX is the sum of both (the identity passes d(out before the "
        "ReLU) straight through).",
        mutant=_no_shortcut_gradient,
        applies_to=("residual_block_backward",),
        lecture=lectures.RESIDUAL_BLOCKS,
    ),
    Misconception(
        "keras_same_padding_stride2",
        'Conv2D(..., strides=2, padding="same") pads an even-sized input at the bottom and '
        "right only (TensorFlow's rule), so its windows start one pixel later than the numpy "
        'block\'s (pad 1 on every side): use ZeroPadding2D(1), then padding="valid".',
        mutant=_framework_mutant(FRAMEWORKS, _pads_differently, same_padding=True),
        applies_to=FRAMEWORKS,
        lecture=lectures.FRAMEWORK_PADDING,
    ),
    Misconception(
        "keras_default_epsilon",
        "BatchNormalization uses Keras' default epsilon=1e-3; the block uses 1e-5 "
        "(PyTorch's default): pass epsilon=1e-5.",
        mutant=_framework_mutant(("keras_residual_block",), eps=1e-3),
        applies_to=("keras_residual_block",),
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "framework_inference_mode",
        "the batch normalization layers run in inference mode, with their running averages "
        "(0 and 1 in a new layer), not the batch's statistics: call the Keras model with "
        "training=True, or put the PyTorch module in training mode (module.train()).",
        mutant=_framework_mutant(FRAMEWORKS, eval_mode=True),
        applies_to=FRAMEWORKS,
        lecture=lectures.BATCH_NORM,
    ),
    Misconception(
        "torch_weights_reshaped",
        "the weights are reshaped, not transposed: numpy's (f, f, n_C_prev, n_C) becomes "
        "PyTorch's (n_C, n_C_prev, f, f) with W.transpose(3, 2, 0, 1); reshape keeps the "
        "memory order and mixes the axes up.",
        mutant=_framework_mutant(("torch_residual_block",), reshaped_weights=True),
        applies_to=("torch_residual_block",),
        lecture=lectures.CHANNELS_FIRST,
    ),
]
