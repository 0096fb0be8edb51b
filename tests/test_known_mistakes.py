"""Known mistakes of assignments 2-5 that no grading fixture shows, each proven by a buggy
function: the reference solution cell with one edit, as a student might write it.

The check a student runs (and the grader runs) must fail it, and its message must open with
the mistake's sentence from the catalogue (:mod:`cnncourse.checks.misconceptions`); the
check's ``cause`` (what the class report counts) must be the mistake's key.
Assignment 6's are proven the same way in ``tests/test_modern_checks.py`` (EXTRA_BUGS), and
the rest by grading fixtures (``tests/test_visible_checks.py``).
"""

from __future__ import annotations

import contextlib
import io
import numbers

import pytest

from autograder.fixtures import given_namespace, reference_sources
from cnncourse.checks import engine, misconceptions
from cnncourse.checks.registry import get_spec

SEED = 31337
CAPSTONE = ("02_conv_backward", "02_numpy_cnn.ipynb")
KERAS = ("03_keras_mnist", "03_keras_mnist.ipynb")
TORCH = ("04_pytorch_mnist", "04_pytorch_mnist.ipynb")
CROPPING = ("05_cropping", "05_cropping.ipynb")
# The solution cells each notebook's proofs run (none that trains a model).
CELLS = {
    CAPSTONE: (
        "capstone_conv_layers",
        "capstone_pool_forward",
        "pool_backward_fast_solution",
        "network_solution",
        "sgd_step_solution",
    ),
    KERAS: ("conv_output_size_solution", "conv_param_count_solution", "receptive_field_solution"),
    TORCH: ("lecture_cnn_solution", "evaluate_solution", "copy_weights_solution"),
    CROPPING: ("cropping_output_shape_solution",),
}

#: key -> (notebook, solution cell, text in it, its replacement, spec)
PROOFS = {
    "size_not_floored": (
        KERAS,
        "conv_output_size_solution",
        "(n + 2 * pad - f) // stride + 1",
        "(n + 2 * pad - f) / stride + 1",
        "conv_output_size",
    ),
    "size_without_one": (
        KERAS,
        "conv_output_size_solution",
        "(n + 2 * pad - f) // stride + 1",
        "(n + 2 * pad - f) // stride",
        "conv_output_size",
    ),
    "size_pad_one_side": (
        KERAS,
        "conv_output_size_solution",
        "(n + 2 * pad - f) // stride + 1",
        "(n + pad - f) // stride + 1",
        "conv_output_size",
    ),
    "count_one_bias": (
        KERAS,
        "conv_param_count_solution",
        "(f * f * n_c_prev + 1) * n_c",
        "f * f * n_c_prev * n_c + 1",
        "conv_param_count",
    ),
    "count_no_input_channels": (
        KERAS,
        "conv_param_count_solution",
        "(f * f * n_c_prev + 1) * n_c",
        "(f * f + 1) * n_c",
        "conv_param_count",
    ),
    "field_no_jump": (
        KERAS,
        "receptive_field_solution",
        "side += (f - 1) * jump",
        "side += f - 1",
        "receptive_field",
    ),
    "field_stride_first": (
        KERAS,
        "receptive_field_solution",
        "        side += (f - 1) * jump  # f neighbouring neurons of the layer below, `jump` "
        "pixels apart\n        jump *= stride",
        "        jump *= stride\n        side += (f - 1) * jump",
        "receptive_field",
    ),
    "crop_channels": (
        CROPPING,
        "cropping_output_shape_solution",
        "int(n_C))",
        "int(n_C - top - bottom))",
        "cropping_int_pair",
    ),
    "crop_int_one_side": (
        CROPPING,
        "cropping_output_shape_solution",
        "(top, bottom), (left, right) = (cropping, cropping), (cropping, cropping)",
        "(top, bottom), (left, right) = (cropping, 0), (cropping, 0)",
        "cropping_int_pair",
    ),
    "crop_pair_swapped": (
        CROPPING,
        "cropping_output_shape_solution",
        "(top, bottom), (left, right) = (height, height), (width, width)",
        "(top, bottom), (left, right) = (width, width), (height, height)",
        "cropping_int_pair",
    ),
    "evaluate_error_rate": (
        TORCH,
        "evaluate_solution",
        "return correct / len(x)",
        "return 1 - correct / len(x)",
        "evaluate",
    ),
    "forward_softmax": (
        TORCH,
        "lecture_cnn_solution",
        "return self.fc2(x)  # logits",
        "return torch.softmax(self.fc2(x), dim=1)",
        "lecture_cnn_forward",
    ),
    "forward_flatten_hwc": (
        TORCH,
        "lecture_cnn_solution",
        "x = torch.flatten(x, 1)",
        "x = torch.flatten(x.permute(0, 2, 3, 1), 1)",
        "lecture_cnn_forward",
    ),
    "copy_kernels_swapped": (
        TORCH,
        "copy_weights_solution",
        "kernel.transpose(3, 2, 0, 1)",
        "kernel.transpose(3, 2, 1, 0)",
        "copy_keras_weights",
    ),
    "gradients_wrong_sign": (
        CAPSTONE,
        "network_solution",
        "    return loss, grads",
        "    return loss, {k: -g for k, g in grads.items()}",
        "network_gradients",
    ),
    "gradients_summed": (
        CAPSTONE,
        "network_solution",
        "loss, dlogits = softmax_cross_entropy(logits, y)",
        "loss, dlogits = softmax_cross_entropy(logits, y)\n    dlogits = dlogits * len(X)",
        "network_gradients",
    ),
    "step_unchanged": (
        CAPSTONE,
        "sgd_step_solution",
        "params[name] - learning_rate * grads[name]",
        "params[name] + 0 * grads[name]",
        "sgd_step",
    ),
    "step_uphill": (
        CAPSTONE,
        "sgd_step_solution",
        "params[name] - learning_rate * grads[name]",
        "params[name] + learning_rate * grads[name]",
        "sgd_step",
    ),
    "step_without_rate": (
        CAPSTONE,
        "sgd_step_solution",
        "params[name] - learning_rate * grads[name]",
        "params[name] - grads[name]",
        "sgd_step",
    ),
}
# The same mistakes caught by a second check of the same function.
ALSO = {"gradients_wrong_sign": "network_gradient_check"}


def _namespace(notebook: tuple[str, str], grade_id: str, old: str, new: str) -> dict:
    """The notebook's given cells and the proof's solution cells, one of them edited."""
    ns = given_namespace(*notebook)
    ns["numbers"] = numbers
    if notebook == TORCH:
        import torch
        from torch import nn

        from cnncourse.models import build_lecture_cnn_keras

        # the notebook's given cell builds the Keras model the copy starts from
        ns.update(torch=torch, nn=nn, build_keras_lecture_cnn=build_lecture_cnn_keras)
    sources = reference_sources(*notebook)
    assert old in sources[grade_id], f"{grade_id} no longer contains {old!r}"
    sources[grade_id] = sources[grade_id].replace(old, new)
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in CELLS[notebook]:
            exec(compile(sources[cell], f"<{cell}>", "exec"), ns)  # noqa: S102
    return ns


def _check(spec_name: str, ns: dict) -> engine.Verdict:
    spec = get_spec(spec_name)
    with contextlib.redirect_stdout(io.StringIO()):
        return engine.check(spec, engine.DirectRunner(ns[spec.target], ns), SEED)


def _proofs():
    for key, (notebook, grade_id, old, new, spec_name) in PROOFS.items():
        for name in (spec_name, ALSO.get(key)):
            if name:
                yield pytest.param(key, notebook, grade_id, old, new, name, id=f"{key}-{name}")


@pytest.mark.parametrize("key,notebook,grade_id,old,new,spec_name", list(_proofs()))
def test_mistake_is_caught_and_named(key, notebook, grade_id, old, new, spec_name):
    verdict = _check(spec_name, _namespace(notebook, grade_id, old, new))
    assert not verdict.passed, f"{spec_name} passes a function with the mistake {key}"
    assert verdict.cause == key, verdict.message
    first = verdict.message.splitlines()[0]
    assert first.startswith(f"{get_spec(spec_name).target}: "), verdict.message
    assert misconceptions.CATALOGUE[key].sentence in first, verdict.message


@pytest.mark.parametrize("notebook", sorted(CELLS))
def test_reference_cells_pass(notebook):
    """The unedited cells pass the checks the proofs use (so each proof fails by its edit)."""
    ns = _namespace(notebook, CELLS[notebook][0], "", "")
    for spec_name in sorted({p[4] for p in PROOFS.values() if p[0] == notebook}):
        verdict = _check(spec_name, ns)
        assert verdict.passed, verdict.message


def test_every_entry_applies_to_a_checked_function():
    """A catalogue entry whose family no check has would never be named."""
    from cnncourse.checks.registry import all_specs

    families = {spec.family for spec in all_specs().values()}
    for key, entry in misconceptions.CATALOGUE.items():
        assert set(entry.applies_to) & families, f"{key}: no check of {entry.applies_to}"
