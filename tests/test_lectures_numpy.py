"""Lectures 1-5 (numpy): the notebooks run in fast mode, and the numbers they teach are right.

The notebook runs are slow (a kernel each); ``pytest -n 2 --dist loadscope`` keeps this
module on one worker. The helper checks are fast and test
``cnncourse.lecture_numpy`` directly (the arithmetic the lectures print is tested with its
one home, ``cnncourse.architecture``, in ``test_architecture.py``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import execute_notebook
from test_lecture_exercises import assert_answers_ran

from cnncourse import lecture_numpy as L

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
NOTEBOOKS = [
    "01_matrices_images.ipynb",
    "02_convolution.ipynb",
    "03_forward_numpy.ipynb",
    "04_backward_numpy.ipynb",
    "05_im2col.ipynb",
]
CELL_TIMEOUT_S = 120
MAX_PEAK_MB = 2048  # Binder's hard cap is 2 GB
#: Names lecture_numpy used to define: arithmetic now in cnncourse.architecture, and vectorised
#: versions of graded functions that lectures 4-5 now write as teaching code in their cells.
REMOVED_FROM_LECTURE_NUMPY = (
    "output_size",
    "conv_param_count",
    "dense_param_count",
    "dense_weights_per_neuron",
    "receptive_field_sizes",
    "same_pad",
    "im2col_shapes",
    "im2col",
    "col2im",
    "conv_forward_im2col",
    "conv_backward_im2col",
    "pool_forward_vectorised",
    "pool_backward_vectorised",
    "max_mask",
    "average_spread",
    "_pool_windows",
)
#: Functions the assignments grade (1, 2 and the im2col track, 3): no course helper module
#: except the lead's given layers may define them.
GRADED_NAMES = (
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "pool_forward",
    "conv_backward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
    "im2col",
    "conv_forward_fast",
    "conv_backward_fast",
    "pool_forward_fast",
    "receptive_field",
)


def execute_lecture(name: str) -> tuple[nbformat.NotebookNode, float, float]:
    """Run a lecture in fast mode; return the executed notebook, seconds and peak MiB."""
    return execute_notebook(LECTURES / name, CELL_TIMEOUT_S)


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "\n".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


# --- saved notebooks ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_saved_without_outputs_and_with_skeleton(name: str) -> None:
    nb = nbformat.read(LECTURES / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs not stripped"
    text = "\n".join(c.source for c in nb.cells)
    assert nb.cells[0].source.startswith("# ")
    for heading in ("What you will learn", "## Summary", "## Exercises"):
        assert heading in text, f"{name} lacks {heading!r}"
    assert "config = setup_notebook(seed=" in text and "FAST = config.fast" in text
    assert "../assignments/" in text, "no link to the assignment that practises the lecture"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    calls = code.count("load_mnist(")
    assert code.count("load_mnist(fast=FAST)") == calls, "load_mnist must get fast=FAST"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_lecture_imports_no_removed_helpers(name: str) -> None:
    """Arithmetic comes from cnncourse.architecture; graded functions are not imported."""
    from cnncourse import architecture

    nb = nbformat.read(LECTURES / name, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for block in re.findall(r"from cnncourse\.lecture_numpy import \(?([^)]*?)\)?\n", code):
        for imported in re.findall(r"\w+", block):
            assert imported in L.__all__, f"{name} imports {imported} from lecture_numpy"
    called = {
        node.func.id
        for cell in nb.cells
        if cell.cell_type == "code"
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    for removed in REMOVED_FROM_LECTURE_NUMPY:
        if hasattr(architecture, removed):
            continue  # now imported from its one home
        assert removed not in called, f"{name} still calls {removed}"


# --- executed notebooks ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_lecture_runs_fast(name: str) -> None:
    nb, seconds, peak_mb = execute_lecture(name)
    print(f"{name}: {seconds:.1f} s, peak {peak_mb:.0f} MiB")
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert peak_mb < MAX_PEAK_MB, f"{name} peaked at {peak_mb:.0f} MiB"
    out = _stdout(nb)
    expected = {
        "01_matrices_images.ipynb": ["120,000 weights per neuron", "FAST"],
        "02_convolution.ipynb": [
            "24x24 = 576",
            "last entry = 74",
            "PyTorch's conv2d gives the same",
        ],
        "03_forward_numpy.ipynb": ["(4, 28, 28, 4)", "single step"],
        "04_backward_numpy.ipynb": ["gradient check passed", "dA is W placed on the window"],
        "05_im2col.ipynb": ["X_col: (363, 3025)", "W_row: (96, 363)", "55x55x96"],
    }[name]
    for snippet in expected:
        assert snippet in out, f"{name}: {snippet!r} not printed"
    assert "True" in out and ": False" not in out, f"{name}: a printed check is False"
    assert_answers_ran(nb)
    if name == "02_convolution.ipynb":
        _check_explorer_output(nb)
    if name == "05_im2col.ipynb":
        diff = re.search(r"largest difference from autograd: ([0-9.e+-]+)", out)
        assert diff and float(diff.group(1)) < 1e-10, "im2col backward does not match autograd"


def _check_explorer_output(nb: nbformat.NotebookNode) -> None:
    """Executed without a frontend, the explorer leaves its static PNG and its formula."""
    (cell,) = [c for c in nb.cells if c.get("id") == "l02-explorer"]
    (output,) = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
    assert output.data["image/png"], "the explorer left no static figure"
    assert output.data["text/plain"].endswith(
        "n_out = floor((n + 2p - f) / s) + 1 = floor((7 + 2*0 - 3) / 2) + 1 = 3"
    )
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return
    assert "application/vnd.jupyter.widget-view+json" in output.data, "no live widget"


# --- the numbers the lectures teach -------------------------------------------------------
def test_matmul_loop_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(L.matmul_loop(x, w), x @ w, rtol=1e-12)
    with pytest.raises(ValueError):
        L.matmul_loop(x, x)


def test_24x24_positions() -> None:
    rng = np.random.default_rng(1)
    out = L.correlate2d(rng.random((28, 28)), rng.random((5, 5)))
    assert out.shape == (24, 24) and out.size == 576
    assert L.correlate2d(rng.random((5, 5)), rng.random((3, 3))).shape == (3, 3)


def test_worked_example_74() -> None:
    x, k = L.worked_example_74()
    assert x.shape == (7, 7) and k.shape == (3, 3)
    out = L.correlate2d(x, k, stride=2)
    assert out.shape == (3, 3)
    assert out[-1, -1] == 74
    assert np.sum(x[4:7, 4:7] * k) == 74


def test_correlation_vs_convolution() -> None:
    rng = np.random.default_rng(2)
    x, k = rng.random((6, 6)), rng.random((3, 3))
    np.testing.assert_allclose(L.convolve2d(x, k), L.correlate2d(x, k[::-1, ::-1]))
    assert not np.allclose(L.convolve2d(x, k), L.correlate2d(x, k))
    lap = L.laplacian()
    np.testing.assert_allclose(L.convolve2d(x, lap), L.correlate2d(x, lap))  # symmetric


def test_kernels() -> None:
    assert L.sobel_vertical().sum() == 0 and L.laplacian().sum() == 0
    curve = L.curve_detector()
    assert curve.shape == (7, 7)
    assert set(np.unique(curve)) == {0.0, 30.0}
    assert (curve == 30).sum() >= 7


def test_gradient_coverage() -> None:
    from cnncourse import oracles

    cov1 = L.gradient_coverage(7, 3, stride=1)
    assert cov1[3, 3] == 9 and cov1[0, 0] == 1
    cov2 = L.gradient_coverage(7, 3, stride=2)
    assert cov2[2, 2] == 4 and cov2[1, 1] == 1 and cov2.sum() == 9 * 9
    cov3 = L.gradient_coverage(7, 3, stride=3)
    assert cov3[6].sum() == 0  # the last row is never in a window
    ones = np.ones((1, 7, 7, 1))
    dA, _, _ = oracles.conv_backward(
        ones, np.ones((3, 3, 1, 1)), np.zeros((1, 1, 1, 1)), 2, 0, np.ones((1, 3, 3, 1))
    )
    np.testing.assert_allclose(dA[0, :, :, 0], cov2)
    with pytest.raises(ValueError):
        L.gradient_coverage(2, 3)


def test_keyword_only_window_arguments() -> None:
    """pad and stride are keyword-only: no argument order to get wrong."""
    x, k = L.worked_example_74()
    with pytest.raises(TypeError):
        L.correlate2d(x, k, 2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        L.gradient_coverage(7, 3, 2)  # type: ignore[misc]
    assert L.correlate2d(x, k, pad=1, stride=2).shape == (4, 4)
    with pytest.raises(ValueError):
        L.correlate2d(np.ones((2, 2)), np.ones((3, 3)))


def test_no_duplicate_arithmetic_or_graded_functions() -> None:
    from cnncourse import architecture, explorer

    for name in REMOVED_FROM_LECTURE_NUMPY:
        assert not hasattr(L, name), f"lecture_numpy.{name} is back"
    for module in (L, architecture, explorer):
        for name in GRADED_NAMES:
            assert not hasattr(module, name), (
                f"{module.__name__}.{name} gives a graded function away"
            )
    # the arithmetic the lectures print lives once
    assert architecture.conv_output_size(5, 3, 2, 1) == 7
    assert architecture.receptive_field_sizes([(3, 1), (2, 2), (3, 1)]) == [1, 3, 4, 8]


def test_softmax_and_relu() -> None:
    p = L.softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], p[1])
    np.testing.assert_array_equal(L.relu(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
