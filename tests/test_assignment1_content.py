"""Content checks for assignment 1 (01_conv_forward): the reference solution and the metadata.

The reference functions are taken from the nbgrader source notebook itself: its solution
cells are executed as they are (the ``### BEGIN/END SOLUTION`` markers are comments) in a
fresh namespace, then checked against the published anchor values and against PyTorch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.fixtures import run_solution_cells
from cnncourse import oracles

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_ID = "01_conv_forward"
SOURCE = ROOT / "solutions" / ASSIGNMENT_ID / "01_conv_forward.ipynb"
CASES_FILE = ROOT / "tests" / "fixtures" / "cases" / f"{ASSIGNMENT_ID}.py"
GRADED_FUNCTIONS = ("zero_pad", "conv_single_step", "conv_forward", "pool_forward")


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(SOURCE, as_version=4)


@pytest.fixture(scope="module")
def ref(notebook) -> dict:
    """Namespace holding the reference functions defined by the solution cells."""
    namespace: dict = {"np": np, "__name__": "assignment1_reference"}
    run_solution_cells("01_conv_forward", SOURCE.name, namespace)
    missing = [name for name in GRADED_FUNCTIONS if name not in namespace]
    assert not missing, f"solution cells do not define {missing}"
    return namespace


# ------------------------------------------------------------------ anchor values


def test_zero_pad_anchor(ref):
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_copy = x.copy()
    x_pad = ref["zero_pad"](x, 3)
    assert x_pad.shape == (4, 9, 9, 2)
    assert x_pad.dtype == np.float64
    np.testing.assert_array_equal(x_pad[:, 3:6, 3:6, :], x)
    border = x_pad.copy()
    border[:, 3:6, 3:6, :] = 0
    assert not border.any()
    np.testing.assert_array_equal(x, x_copy)
    # pad 0 is the identity (a slice like x[pad:-pad] would be empty here)
    np.testing.assert_array_equal(ref["zero_pad"](x, 0), x)


def test_conv_single_step_anchor(ref):
    np.random.seed(1)
    a_slice_prev = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    Z = ref["conv_single_step"](a_slice_prev, W, b)
    assert isinstance(Z, float) and not isinstance(Z, np.ndarray)
    assert Z == pytest.approx(-6.999089450680221, rel=1e-7)
    # the bias is added once: a window of zeros returns the bias
    assert ref["conv_single_step"](np.zeros((4, 4, 3)), W, b) == pytest.approx(b.item(), rel=1e-12)


def test_conv_forward_anchors(ref):
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    hparameters = {"pad": 1, "stride": 2}
    Z, cache = ref["conv_forward"](A_prev, W, b, hparameters)
    assert Z.shape == (2, 3, 4, 8) and Z.dtype == np.float64
    assert Z.mean() == pytest.approx(0.5511276474566768, rel=1e-7)
    expected = [-2.17796037, 8.07171329, -0.5772704, 3.36286738]
    expected += [4.48113645, -2.89198428, 10.99288867, 3.03171932]
    np.testing.assert_allclose(Z[0, 2, 1], expected, rtol=1e-7, atol=1e-8)
    assert len(cache) == 4
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b and cache[3] == hparameters

    # Published second example: the 3x3 filters are drawn, then replaced by 5x5 ones.
    np.random.seed(3)
    A_prev = np.random.randn(2, 5, 7, 4)
    np.random.randn(3, 3, 4, 8), np.random.randn(1, 1, 1, 8)
    W = np.random.randn(5, 5, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, _ = ref["conv_forward"](A_prev, W, b, {"pad": 6, "stride": 1})
    assert Z.shape == (2, 13, 15, 8)
    assert Z.mean() == pytest.approx(-0.5384027772160062, rel=1e-7)


def test_pool_forward_anchors(ref):
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    hparameters = {"stride": 1, "f": 3}
    A, cache = ref["pool_forward"](A_prev, hparameters)
    assert A.shape == (2, 3, 3, 3)
    expected_max = [
        [1.96710175, 0.84616065, 1.27375593],
        [1.96710175, 0.84616065, 1.23616403],
        [1.62765075, 1.12141771, 1.2245077],
    ]
    np.testing.assert_allclose(A[1, 1], expected_max, rtol=1e-7, atol=1e-8)
    assert cache[0] is A_prev and cache[1] == hparameters
    A, _ = ref["pool_forward"](A_prev, hparameters, mode="average")
    expected_avg = [
        [0.44497696, -0.00261695, -0.31040307],
        [0.50811474, -0.23493734, -0.23961183],
        [0.11872677, 0.17255229, -0.22112197],
    ]
    np.testing.assert_allclose(A[1, 1], expected_avg, rtol=1e-7, atol=1e-8)
    for mode in ("max", "average"):
        A, _ = ref["pool_forward"](A_prev, {"stride": 2, "f": 3}, mode=mode)
        assert A.shape == (2, 2, 2, 3)


# ------------------------------------------------------------------ PyTorch agreement

# (m, n_H_prev, n_W_prev, n_C_prev, f, n_C, stride, pad)
CONV_CONFIGS = [
    (2, 5, 7, 3, 3, 4, 1, 0),
    (1, 8, 6, 5, 3, 6, 3, 0),
    (2, 7, 9, 2, 2, 3, 3, 2),
    (1, 6, 5, 4, 4, 2, 2, 3),
    (3, 4, 4, 1, 1, 5, 1, 1),
]


@pytest.mark.parametrize("config", CONV_CONFIGS)
def test_conv_forward_matches_torch(ref, config):
    m, n_H_prev, n_W_prev, n_C_prev, f, n_C, stride, pad = config
    rng = np.random.default_rng(sum(config))
    A_prev = rng.standard_normal((m, n_H_prev, n_W_prev, n_C_prev))
    W = rng.standard_normal((f, f, n_C_prev, n_C))
    b = rng.standard_normal((1, 1, 1, n_C))
    copies = [A_prev.copy(), W.copy(), b.copy()]
    Z, _ = ref["conv_forward"](A_prev, W, b, {"stride": stride, "pad": pad})
    expected = oracles.conv_forward(A_prev, W, b, stride, pad)
    assert Z.shape == expected.shape and Z.dtype == np.float64
    np.testing.assert_allclose(Z, expected, rtol=1e-7, atol=1e-10)
    for before, after in zip(copies, (A_prev, W, b), strict=True):
        np.testing.assert_array_equal(before, after)


# (m, n_H_prev, n_W_prev, n_C, f, stride)
POOL_CONFIGS = [(2, 6, 8, 3, 2, 2), (1, 9, 7, 5, 3, 3), (2, 5, 6, 2, 2, 1), (1, 4, 4, 1, 1, 1)]


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("config", POOL_CONFIGS)
def test_pool_forward_matches_torch(ref, config, mode):
    m, n_H_prev, n_W_prev, n_C, f, stride = config
    rng = np.random.default_rng(sum(config))
    A_prev = rng.standard_normal((m, n_H_prev, n_W_prev, n_C))
    A_copy = A_prev.copy()
    A, _ = ref["pool_forward"](A_prev, {"f": f, "stride": stride}, mode=mode)
    expected = oracles.pool_forward(A_prev, f, stride, mode)
    assert A.shape == expected.shape and A.dtype == np.float64
    np.testing.assert_allclose(A, expected, rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(A_prev, A_copy)


# ------------------------------------------------------------------ nbgrader metadata


def test_points(notebook):
    """The test cells and their points (the rules every source notebook follows are
    checked in tests/test_notebook_metadata.py)."""
    graded = {
        _nbgrader(c)["grade_id"]: _nbgrader(c)["points"]
        for c in notebook.cells
        if _nbgrader(c).get("grade")
    }
    assert graded == {
        "zero_pad_tests": 1,
        "conv_single_step_tests": 1,
        "conv_forward_tests": 3,
        "pool_forward_tests": 2,
    }


def test_source_notebook_has_no_outputs(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_fixture_cases_name_real_cells(notebook):
    spec = importlib.util.spec_from_file_location("cases_01", CASES_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    solution_ids = {
        _nbgrader(c)["grade_id"] for c in notebook.cells if _nbgrader(c).get("solution")
    }
    test_ids = {_nbgrader(c)["grade_id"] for c in notebook.cells if _nbgrader(c).get("grade")}
    assert "correct" in module.CASES and "untouched" in module.CASES
    for name, case in module.CASES.items():
        assert set(case.get("replace", {})) <= solution_ids, name
        assert set(case["expect"]) <= test_ids, name
