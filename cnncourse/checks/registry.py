"""Which checks decide each test cell of each graded notebook.

``TEST_CELLS[notebook][grade_id]`` lists the names of the specs a test cell runs, in order.
The notebook's visible test cell calls ``verify(name, function)`` for each of them; the
autograder looks the same names up here and decides the cell's points from its own
comparisons (``tests/test_registry.py`` checks that both agree).
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

from .engine import Spec

TEST_CELLS: dict[str, dict[str, tuple[str, ...]]] = {
    "01_conv_forward": {
        "zero_pad_tests": ("zero_pad",),
        "conv_single_step_tests": ("conv_single_step",),
        "conv_forward_tests": ("conv_forward",),
        "pool_forward_tests": ("pool_forward",),
    },
    "02_conv_backward": {
        "conv_backward_tests": ("conv_backward",),
        "conv_backward_gradient_check": ("conv_backward_gradient_check",),
        "create_mask_from_window_tests": ("create_mask_from_window",),
        "distribute_value_tests": ("distribute_value",),
        "pool_backward_tests": ("pool_backward",),
    },
    "02_efficient_conv": {
        "conv_forward_fast_tests": ("conv_forward_fast",),
        "conv_backward_fast_tests": ("conv_backward_fast",),
        "pool_forward_fast_tests": ("pool_forward_fast",),
    },
    "02_numpy_cnn": {
        "pool_backward_fast_tests": ("pool_backward_fast",),
        "network_gradients_tests": ("network_gradients",),
        "network_gradient_check": ("network_gradient_check",),
        "sgd_step_tests": ("sgd_step",),
        "trained_accuracy_tests": ("trained_accuracy",),
    },
    # Assignments 3-5: arithmetic.py, keras_models.py, accuracy.py, torch_models.py
    "03_keras_mnist": {
        "conv_output_size_tests": ("conv_output_size",),
        "conv_param_count_tests": ("conv_param_count",),
        "receptive_field_tests": ("receptive_field",),
        "build_model_layers_tests": ("build_model_layers",),
        "build_model_shapes_tests": ("build_model_shapes",),
        "build_model_params_tests": ("build_model_params",),
        "compile_model_tests": ("compile_model",),
        "accuracy_tests": ("keras_accuracy",),
    },
    "04_pytorch_mnist": {
        "lecture_cnn_params_tests": ("lecture_cnn_params",),
        "lecture_cnn_shape_tests": ("lecture_cnn_forward",),
        "evaluate_tests": ("evaluate",),
        "accuracy_tests": ("torch_accuracy",),
        "copy_weights_tests": ("copy_keras_weights",),
    },
    "05_cropping": {
        "cropping_int_pair_tests": ("cropping_int_pair",),
        "cropping_nested_tests": ("cropping_nested",),
        "feature_map_cropper_tests": ("feature_map_cropper",),
        "cropped_layers_tests": ("cropped_classifier_layers",),
        "cropped_shapes_tests": ("cropped_classifier_shapes",),
        "cropped_params_tests": ("cropped_classifier_params",),
        "classic_layers_tests": ("classic_classifier_layers",),
        "classic_shapes_tests": ("classic_classifier_shapes",),
        "classic_params_tests": ("classic_classifier_params",),
        "cropped_accuracy_tests": ("cropped_accuracy", "cropped_model_crops"),
        "classic_accuracy_tests": ("classic_accuracy",),
    },
}


# Modules that define a ``SPECS`` dict (name -> Spec); each assignment family has its own.
SPEC_MODULES = (
    "numpy_forward",
    "numpy_backward",
    "capstone",
    "arithmetic",
    "keras_models",
    "accuracy",
    "torch_models",
)


def all_specs() -> dict[str, Spec]:
    """Every spec by name."""
    import importlib

    specs: dict[str, Spec] = {}
    for module in SPEC_MODULES:
        specs.update(importlib.import_module(f"{__package__}.{module}").SPECS)
    return specs


def get_spec(name: str) -> Spec:
    specs = all_specs()
    if name not in specs:
        raise KeyError(f"no check named {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def specs_for_cell(notebook: str, grade_id: str) -> list[Spec] | None:
    """The specs deciding a test cell, or ``None`` when the cell is not registered."""
    names = TEST_CELLS.get(notebook, {}).get(grade_id)
    return None if names is None else [get_spec(n) for n in names]


# Libraries the sandbox hides from a notebook's kernel while grading: the notebooks whose
# graded functions may not use a framework at all and that need none in their other cells.
# (Notebooks that use Keras or PyTorch keep them; their functions' policies are checked by
# reading the source and watching the calls.)
SANDBOX_HIDES: dict[str, tuple[str, ...]] = {
    "01_conv_forward": ("torch", "tensorflow", "keras", "jax", "scipy"),
    "02_conv_backward": ("torch", "tensorflow", "keras", "jax", "scipy"),
    "02_efficient_conv": ("torch", "tensorflow", "keras", "jax"),
    "02_numpy_cnn": ("torch", "tensorflow", "keras", "jax"),
}


def notebook_policy(notebook: str) -> tuple[str, ...]:
    """The libraries hidden from ``notebook``'s kernel while grading (see SANDBOX_HIDES)."""
    return SANDBOX_HIDES.get(notebook, ())
