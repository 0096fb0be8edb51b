"""Lectures 1-5 (numpy): the notebooks run in fast mode, and the numbers they teach are right.

The notebook runs are slow (a kernel each) and grouped so that ``pytest -n 2 --dist
loadgroup`` runs them on one worker. The helper checks are fast and test
``cnncourse.lecture_numpy`` directly: the figures the lectures print come from there.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import execute_notebook

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
MAX_SECONDS = 60  # the course promises "well under a minute" in fast mode
MAX_PEAK_MB = 2048  # Binder's hard cap is 2 GB


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


# --- executed notebooks ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.xdist_group("lectures")
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
    assert seconds < MAX_SECONDS, f"{name} took {seconds:.1f} s in fast mode"
    assert peak_mb < MAX_PEAK_MB, f"{name} peaked at {peak_mb:.0f} MiB"
    out = _stdout(nb)
    expected = {
        "01_matrices_images.ipynb": ["120,000 weights per neuron", "FAST"],
        "02_convolution.ipynb": ["24x24 = 576", "last entry = 74"],
        "03_forward_numpy.ipynb": ["(4, 28, 28, 4)"],
        "04_backward_numpy.ipynb": ["gradient check passed"],
        "05_im2col.ipynb": ["X_col: (363, 3025)", "W_row: (96, 363)", "55x55x96"],
    }[name]
    for snippet in expected:
        assert snippet in out, f"{name}: {snippet!r} not printed"


# --- the numbers the lectures teach -------------------------------------------------------
def test_matmul_loop_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(L.matmul_loop(x, w), x @ w, rtol=1e-12)
    with pytest.raises(ValueError):
        L.matmul_loop(x, x)


def test_dense_weights() -> None:
    assert L.dense_weights_per_neuron(200, 200, 3) == 120_000
    assert L.dense_weights_per_neuron(28, 28, 1) == 784
    assert L.dense_param_count(784, 10) == 7_850


@pytest.mark.parametrize(
    ("n_in", "f", "stride", "pad", "n_out"),
    [
        (5, 3, 1, 0, 3),
        (28, 5, 1, 0, 24),
        (7, 3, 2, 0, 3),
        (28, 3, 1, 1, 28),
        (227, 11, 4, 0, 55),
        (5, 3, 2, 1, 3),
        (6, 3, 2, 0, 2),  # floor: the last column is never the start of a window
        (32, 5, 1, 2, 32),
        (28, 2, 2, 0, 14),
    ],
)
def test_output_size(n_in: int, f: int, stride: int, pad: int, n_out: int) -> None:
    assert L.output_size(n_in, f, stride, pad) == n_out


def test_output_size_agrees_with_layers_module() -> None:
    from cnncourse import layers

    for n_in in range(3, 12):
        for f in range(1, 4):
            for stride in range(1, 4):
                for pad in range(3):
                    assert L.output_size(n_in, f, stride, pad) == layers.output_size(
                        n_in, f, stride, pad
                    )


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


def test_same_pad_and_params() -> None:
    assert L.same_pad(3) == 1 and L.same_pad(5) == 2
    with pytest.raises(ValueError):
        L.same_pad(2)
    assert L.conv_param_count(3, 1, 32) == 320
    assert L.conv_param_count(3, 32, 64) == 18_496
    assert L.receptive_field_sizes([(3, 1), (3, 1)]) == [1, 3, 5]
    assert L.receptive_field_sizes([(3, 1), (2, 2), (3, 1)]) == [1, 3, 4, 8]


def test_im2col_alexnet_shapes() -> None:
    shapes = L.im2col_shapes(227, 227, 3, f=11, n_C=96, stride=4)
    assert shapes["out"] == (55, 55)
    assert shapes["X_col"] == (363, 3025)
    assert shapes["W_row"] == (96, 363)
    assert shapes["product"] == (96, 3025)
    assert shapes["Z"] == (1, 55, 55, 96)


@pytest.mark.parametrize(
    ("shape", "f", "n_C", "stride", "pad"),
    [((2, 5, 7, 4), 3, 8, 2, 1), ((3, 9, 8, 2), 2, 3, 3, 0), ((1, 6, 6, 1), 3, 2, 1, 2)],
)
def test_im2col_layers_match_loops(shape, f, n_C, stride, pad) -> None:
    from cnncourse import layers

    rng = np.random.default_rng(3)
    A = rng.standard_normal(shape)
    W = rng.standard_normal((f, f, shape[-1], n_C))
    b = rng.standard_normal((1, 1, 1, n_C))
    Z_loop, _ = layers.conv_forward(A, W, b, {"stride": stride, "pad": pad})
    Z = L.conv_forward_im2col(A, W, b, stride, pad)
    np.testing.assert_allclose(Z, Z_loop, rtol=1e-10, atol=1e-12)
    X_col = L.im2col(A, f, stride, pad)
    assert X_col.shape == L.im2col_shapes(*shape[1:], f, n_C, stride, pad, m=shape[0])["X_col"]
    for mode in ("max", "average"):
        P_loop, _ = layers.pool_forward(A, {"f": 2, "stride": stride}, mode)
        np.testing.assert_allclose(L.pool_forward_vectorised(A, 2, stride, mode), P_loop)


def _numerical_grad(fun, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = fun()
        x[idx] = old - eps
        minus = fun()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1), (3, 2)])
def test_conv_backward_im2col_gradient_check(stride: int, pad: int) -> None:
    from cnncourse.testing import relative_error

    rng = np.random.default_rng(4)
    A = rng.standard_normal((2, 7, 6, 2))
    W = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    G = rng.standard_normal(L.conv_forward_im2col(A, W, b, stride, pad).shape)

    def cost() -> float:
        return float(np.sum(L.conv_forward_im2col(A, W, b, stride, pad) * G))

    dA, dW, db = L.conv_backward_im2col(G, A, W, stride, pad)
    assert relative_error(dA, _numerical_grad(cost, A)) < 1e-7
    assert relative_error(dW, _numerical_grad(cost, W)) < 1e-7
    assert relative_error(db, _numerical_grad(cost, b)) < 1e-7


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pool_backward_vectorised_gradient_check(stride: int, mode: str) -> None:
    from cnncourse.testing import relative_error

    rng = np.random.default_rng(5)
    A = rng.standard_normal((2, 7, 8, 3))
    G = rng.standard_normal(L.pool_forward_vectorised(A, 2, stride, mode).shape)

    def cost() -> float:
        return float(np.sum(L.pool_forward_vectorised(A, 2, stride, mode) * G))

    dA = L.pool_backward_vectorised(G, A, 2, stride, mode)
    assert relative_error(dA, _numerical_grad(cost, A)) < 1e-7


def test_pool_masks() -> None:
    mask = L.max_mask(np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]]))
    expected = np.zeros((3, 3), dtype=bool)
    expected[2, 1] = True
    np.testing.assert_array_equal(mask, expected)
    spread = L.average_spread(2, (2, 2))
    np.testing.assert_allclose(spread, np.full((2, 2), 0.5))
    assert spread.sum() == 2


def test_gradient_coverage() -> None:
    cov1 = L.gradient_coverage(7, 3, 1)
    assert cov1[3, 3] == 9 and cov1[0, 0] == 1
    cov2 = L.gradient_coverage(7, 3, 2)
    assert cov2[2, 2] == 4 and cov2[1, 1] == 1 and cov2.sum() == 9 * 9
    cov3 = L.gradient_coverage(7, 3, 3)
    assert cov3[6].sum() == 0  # the last row is never in a window
    ones = np.ones((1, 7, 7, 1))
    dA, _, _ = L.conv_backward_im2col(np.ones((1, 3, 3, 1)), ones, np.ones((3, 3, 1, 1)), 2, 0)
    np.testing.assert_array_equal(dA[0, :, :, 0], cov2)


def test_softmax_and_relu() -> None:
    p = L.softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], p[1])
    np.testing.assert_array_equal(L.relu(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
