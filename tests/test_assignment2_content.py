"""Assignment 2 (02_conv_backward): the reference solutions and the notebooks' metadata.

The solution cells of both source notebooks are executed (markers are comments) and checked
against the brief's anchor values, centred-difference gradients, PyTorch autograd and each
other (vectorised versus loops).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.fixtures import given_namespace, run_solution_cells
from cnncourse import oracles
from cnncourse.testing import relative_error

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "02_conv_backward"
NOTEBOOKS = ("02_conv_backward.ipynb", "02_efficient_conv.ipynb")
EXPECTED_POINTS = {
    "conv_backward_tests": 3,
    "conv_backward_gradient_check": 2,
    "create_mask_from_window_tests": 1,
    "distribute_value_tests": 1,
    "pool_backward_tests": 3,
    "conv_forward_fast_tests": 3,
    "conv_backward_fast_tests": 3,
    "pool_forward_fast_tests": 2,
}


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


GIVEN = given_namespace("02_conv_backward", "02_conv_backward.ipynb")
conv_forward, pool_forward = GIVEN["conv_forward"], GIVEN["pool_forward"]


@pytest.fixture(scope="module")
def ref():
    """Namespace holding the given layers and the reference solutions of both notebooks."""
    ns = dict(GIVEN)
    for name in NOTEBOOKS:
        run_solution_cells("02_conv_backward", name, ns)
    return ns


def test_given_forward_layers_match_torch():
    """The read-only forward layers of both notebooks agree with PyTorch (and each other)."""
    other = given_namespace("02_conv_backward", "02_efficient_conv.ipynb")
    rng = np.random.default_rng(7)
    A = rng.standard_normal((2, 7, 5, 3))
    W = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    for stride, pad in [(1, 0), (2, 1), (3, 2)]:
        for ns in (GIVEN, other):
            Z, cache = ns["conv_forward"](A, W, b, {"stride": stride, "pad": pad})
            np.testing.assert_allclose(Z, oracles.conv_forward(A, W, b, stride, pad), rtol=1e-10)
            assert cache[0] is A and cache[3] == {"stride": stride, "pad": pad}
        for mode in ("max", "average"):
            P, _ = ns["pool_forward"](A, {"f": 2, "stride": stride}, mode=mode)
            np.testing.assert_allclose(P, oracles.pool_forward(A, 2, stride, mode), rtol=1e-12)


def test_points():
    """The test cells and their points (the rules every source notebook follows are
    checked in tests/test_notebook_metadata.py)."""
    points = {}
    for name in NOTEBOOKS:
        for cell in nbformat.read(SOURCE / name, as_version=4).cells:
            meta = _nbgrader(cell)
            if meta.get("grade"):
                points[meta["grade_id"]] = meta["points"]
    assert points == EXPECTED_POINTS


def _classic_conv_case():
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    return conv_forward(A_prev, W, b, {"pad": 2, "stride": 2})


@pytest.mark.parametrize("fn", ["conv_backward", "conv_backward_fast"])
def test_conv_backward_anchors(ref, fn):
    Z, cache = _classic_conv_case()
    dA, dW, db = ref[fn](Z, cache)
    assert dA.shape == (10, 4, 4, 3) and dW.shape == (2, 2, 3, 8) and db.shape == (1, 1, 1, 8)
    assert np.isclose(np.mean(dA), 1.4524377775388075, rtol=1e-9, atol=0)
    assert np.isclose(np.mean(dW), 1.7269914583139097, rtol=1e-9, atol=0)
    assert np.isclose(np.mean(db), 7.839232564616838, rtol=1e-9, atol=0)


def test_mask_and_distribute_anchors(ref):
    mask = ref["create_mask_from_window"](np.array([[-1, 2, 3], [2, -3, 2], [1, 5, -2]]))
    assert mask.dtype == bool and mask.sum() == 1 and mask[2, 1]
    # Tie rule: the first maximum in row-major order only.
    tie = ref["create_mask_from_window"](np.array([[1.0, 3.0], [3.0, 0.0]]))
    np.testing.assert_array_equal(tie, [[False, True], [False, False]])
    np.testing.assert_array_equal(ref["distribute_value"](2, (2, 2)), np.full((2, 2), 0.5))
    assert ref["distribute_value"](1, (2, 2)).dtype.kind == "f"


def test_pool_backward_anchors(ref):
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    _, cache = pool_forward(A_prev, {"stride": 1, "f": 2})
    dA = np.random.randn(5, 4, 2, 2)
    got = ref["pool_backward"](dA, cache, mode="max")[1, 1]
    np.testing.assert_allclose(got, [[0, 0], [5.05844394, -1.68282702], [0, 0]], atol=1e-8)
    got = ref["pool_backward"](dA, cache, mode="average")[1, 1]
    expected = [[0.08485462, 0.2787552], [1.26461098, -0.25749373], [1.17975636, -0.53624893]]
    np.testing.assert_allclose(got, expected, atol=1e-8)


CONV_CONFIGS = [
    ((2, 6, 6, 3), 3, 2, 2, 0),
    ((2, 7, 5, 2), 2, 3, 3, 1),
    ((1, 5, 6, 4), 3, 2, 1, 0),
    ((2, 5, 8, 3), 4, 2, 2, 3),
    ((3, 9, 4, 1), 1, 3, 2, 0),
]


@pytest.mark.parametrize(("shape", "f", "n_C", "stride", "pad"), CONV_CONFIGS)
def test_conv_backward_matches_autograd(ref, shape, f, n_C, stride, pad):
    rng = np.random.default_rng(sum(shape) + 10 * stride + pad)
    A = rng.standard_normal(shape)
    W = rng.standard_normal((f, f, shape[3], n_C))
    b = rng.standard_normal((1, 1, 1, n_C))
    hp = {"stride": stride, "pad": pad}
    Z, cache = conv_forward(A, W, b, hp)
    Z_fast, cache_fast = ref["conv_forward_fast"](A, W, b, hp)
    np.testing.assert_allclose(Z_fast, Z, rtol=1e-10, atol=1e-10)
    dZ = rng.standard_normal(Z.shape)
    copies = [x.copy() for x in (A, W, b, dZ)]
    expected = oracles.conv_backward(A, W, b, stride, pad, dZ)
    for got in (ref["conv_backward"](dZ, cache), ref["conv_backward_fast"](dZ, cache_fast)):
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape and g.dtype == np.float64
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-10)
    for x, c in zip((A, W, b, dZ), copies, strict=True):
        np.testing.assert_array_equal(x, c)


def _numerical_gradient(cost, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = cost(x)
        x[idx] = old - eps
        minus = cost(x)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


@pytest.mark.parametrize(("stride", "pad"), [(1, 1), (2, 0), (3, 2)])
def test_conv_backward_gradient_check(ref, stride, pad):
    rng = np.random.default_rng(stride * 10 + pad)
    A = rng.standard_normal((2, 6, 5, 2))
    W = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad}
    Z, cache = conv_forward(A, W, b, hp)
    G = rng.standard_normal(Z.shape)
    dA, dW, db = ref["conv_backward"](G, cache)
    assert (
        relative_error(
            dA, _numerical_gradient(lambda a: np.sum(conv_forward(a, W, b, hp)[0] * G), A)
        )
        < 1e-7
    )
    assert (
        relative_error(
            dW, _numerical_gradient(lambda w: np.sum(conv_forward(A, w, b, hp)[0] * G), W)
        )
        < 1e-7
    )
    assert (
        relative_error(
            db, _numerical_gradient(lambda c: np.sum(conv_forward(A, W, c, hp)[0] * G), b)
        )
        < 1e-7
    )


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize(
    ("shape", "f", "stride"),
    [((2, 6, 6, 3), 2, 2), ((2, 7, 5, 2), 2, 3), ((1, 7, 9, 2), 3, 2), ((2, 5, 4, 1), 3, 1)],
)
def test_pool_layers_match_autograd(ref, mode, shape, f, stride):
    rng = np.random.default_rng(f * 100 + stride)
    A = rng.standard_normal(shape)
    hp = {"f": f, "stride": stride}
    out, cache = pool_forward(A, hp, mode=mode)
    np.testing.assert_allclose(
        ref["pool_forward_fast"](A, hp, mode)[0], out, rtol=1e-12, atol=1e-12
    )
    dA = rng.standard_normal(out.shape)
    got = ref["pool_backward"](dA, cache, mode=mode)
    np.testing.assert_allclose(
        got, oracles.pool_backward(A, f, stride, dA, mode), rtol=1e-10, atol=1e-12
    )
    numeric = _numerical_gradient(lambda a: np.sum(pool_forward(a, hp, mode=mode)[0] * dA), A)
    assert relative_error(got, numeric) < 1e-7


def test_max_pool_ties_agree_with_torch(ref):
    A = np.random.default_rng(5).integers(0, 3, size=(2, 6, 7, 2)).astype(np.float64)
    for f, stride in [(3, 2), (2, 1), (2, 2)]:
        out, cache = pool_forward(A, {"f": f, "stride": stride})
        dA = np.random.default_rng(f).standard_normal(out.shape)
        got = ref["pool_backward"](dA, cache, mode="max")
        np.testing.assert_allclose(got, oracles.pool_backward(A, f, stride, dA, "max"), atol=1e-12)


def test_fast_versions_keep_float32(ref):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    W = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, 4)).astype(np.float32)
    Z, cache = ref["conv_forward_fast"](A, W, b, {"stride": 1, "pad": 1})
    assert Z.dtype == np.float32
    assert all(g.dtype == np.float32 for g in ref["conv_backward_fast"](Z, cache))
