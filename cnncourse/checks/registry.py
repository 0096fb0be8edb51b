"""Every graded notebook, registered in one place.

``NOTEBOOKS[notebook]`` says, for one graded notebook:

* ``test_cells``: which checks (specs, by name) decide each test cell, in order; the
  notebook's visible test cell calls ``verify(name, function)`` for each of them and the
  autograder decides the cell's points from the same names
  (``tests/test_notebook_metadata.py`` checks that both agree);
* ``libraries``: the frameworks its kernel may import while it is graded (none for the numpy
  notebooks: every other library, SciPy, PyTorch, TensorFlow and JAX included, is absent from
  the sandbox, see :mod:`autograder.python_view`);
* ``course_modules``: the modules of the helper package its kernel may import besides the
  ones every notebook gets (:data:`KERNEL_COURSE_MODULES`); the modules that implement a
  graded function (``architecture``, ``models``, ``grading_models``, ``lecture_numpy``, the
  checks and oracles) are never among them.

A new assignment adds its notebooks here and its specs' module to :data:`SPEC_MODULES`.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

from dataclasses import dataclass, field

from .engine import Spec

# Helper modules every graded kernel may import (set-up, data, figures, the CheckError type).
KERNEL_COURSE_MODULES = ("__init__", "runtime", "data", "plots", "testing")
# Frameworks by the distributions that provide them (see autograder.python_view).
KERAS = ("keras", "tensorflow-cpu", "tensorflow")
TORCH = ("torch",)


@dataclass(frozen=True)
class GradedNotebook:
    """One graded notebook: its test cells' checks and what its kernel may import."""

    test_cells: dict[str, tuple[str, ...]]
    libraries: tuple[str, ...] = ()
    course_modules: tuple[str, ...] = field(default=())


NOTEBOOKS: dict[str, GradedNotebook] = {
    "01_conv_forward": GradedNotebook(
        {
            "zero_pad_tests": ("zero_pad",),
            "conv_single_step_tests": ("conv_single_step",),
            "conv_forward_tests": ("conv_forward",),
            "pool_forward_tests": ("pool_forward",),
        }
    ),
    "02_conv_backward": GradedNotebook(
        {
            "conv_backward_tests": ("conv_backward",),
            "conv_backward_gradient_check": ("conv_backward_gradient_check",),
            "create_mask_from_window_tests": ("create_mask_from_window",),
            "distribute_value_tests": ("distribute_value",),
            "pool_backward_tests": ("pool_backward",),
        }
    ),
    "02_efficient_conv": GradedNotebook(
        {
            "conv_forward_fast_tests": ("conv_forward_fast",),
            "conv_backward_fast_tests": ("conv_backward_fast",),
            "pool_forward_fast_tests": ("pool_forward_fast",),
        }
    ),
    "02_numpy_cnn": GradedNotebook(
        {
            "pool_backward_fast_tests": ("pool_backward_fast",),
            "network_gradients_tests": ("network_gradients",),
            "network_gradient_check": ("network_gradient_check",),
            "sgd_step_tests": ("sgd_step",),
            "trained_accuracy_tests": ("trained_accuracy",),
        }
    ),
    # Assignments 3-5: arithmetic.py, keras_models.py, accuracy.py, torch_models.py
    "03_keras_mnist": GradedNotebook(
        {
            "conv_output_size_tests": ("conv_output_size",),
            "conv_param_count_tests": ("conv_param_count",),
            "receptive_field_tests": ("receptive_field",),
            "build_model_layers_tests": ("build_model_layers",),
            "build_model_shapes_tests": ("build_model_shapes",),
            "build_model_params_tests": ("build_model_params",),
            "compile_model_tests": ("compile_model",),
            "accuracy_tests": ("keras_accuracy",),
        },
        libraries=KERAS,
        course_modules=("layer_spec",),
    ),
    "04_pytorch_mnist": GradedNotebook(
        {
            "lecture_cnn_params_tests": ("lecture_cnn_params",),
            "lecture_cnn_shape_tests": ("lecture_cnn_forward",),
            "evaluate_tests": ("evaluate",),
            "accuracy_tests": ("torch_accuracy",),
            "copy_weights_tests": ("copy_keras_weights",),
        },
        libraries=TORCH + KERAS,
    ),
    "05_cropping": GradedNotebook(
        {
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
        libraries=KERAS,
        course_modules=("layer_spec",),
    ),
    # Assignment 6: modern.py (numpy), modern_models.py (framework blocks, trained ResNet).
    # The numpy part is its own notebook so that no framework is in its sandbox.
    "06_batchnorm_residual": GradedNotebook(
        {
            "batchnorm_forward_tests": ("batchnorm_forward",),
            "batchnorm_backward_tests": ("batchnorm_backward",),
            "batchnorm_gradient_check": ("batchnorm_gradient_check",),
            "residual_forward_tests": ("residual_block_forward",),
            "residual_backward_tests": ("residual_block_gradients",),
            "residual_gradient_check": ("residual_block_gradient_check",),
        }
    ),
    "06_framework_blocks": GradedNotebook(
        {
            "keras_block_tests": ("keras_residual_block",),
            "torch_block_tests": ("torch_residual_block",),
        },
        libraries=TORCH + KERAS,
    ),
    "06_cluttered_resnet": GradedNotebook(
        {"trained_accuracy_tests": ("cluttered_accuracy",)},
        libraries=KERAS,
        course_modules=("cluttered",),
    ),
}

# Which checks decide each test cell (a view of NOTEBOOKS, for readers and tests).
TEST_CELLS: dict[str, dict[str, tuple[str, ...]]] = {
    name: entry.test_cells for name, entry in NOTEBOOKS.items()
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
    "modern",
    "modern_models",
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


def kernel_imports(notebook: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What ``notebook``'s kernel may import while graded: (framework distributions, helper
    modules). A notebook that is not registered gets no framework and the common helpers."""
    entry = NOTEBOOKS.get(notebook, GradedNotebook({}))
    return entry.libraries, KERNEL_COURSE_MODULES + entry.course_modules
