"""cnncourse.layers (the given loop forward layers) against the anchors and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from cnncourse import oracles
from cnncourse.layers import conv_forward, output_size, pool_forward, zero_pad


def test_zero_pad_anchor():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = zero_pad(x, 3)
    assert x_pad.shape == (4, 9, 9, 2)
    np.testing.assert_array_equal(x_pad[:, 3:6, 3:6, :], x)
    inner = np.zeros(x_pad.shape, dtype=bool)
    inner[:, 3:6, 3:6, :] = True
    assert not x_pad[~inner].any()
    assert zero_pad(x, 0).shape == x.shape


@pytest.mark.parametrize(
    ("n_in", "f", "stride", "pad", "expected"),
    [(5, 3, 1, 0, 3), (28, 5, 1, 0, 24), (7, 3, 2, 0, 3), (4, 2, 2, 2, 4), (227, 11, 4, 0, 55)],
)
def test_output_size(n_in, f, stride, pad, expected):
    assert output_size(n_in, f, stride, pad) == expected


def test_conv_forward_anchors():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    hparameters = {"pad": 1, "stride": 2}
    Z, cache = conv_forward(A_prev, W, b, hparameters)
    assert Z.shape == (2, 3, 4, 8)
    assert np.isclose(Z.mean(), 0.5511276474566768, rtol=1e-7, atol=0)
    expected = [
        -2.17796037,
        8.07171329,
        -0.5772704,
        3.36286738,
        4.48113645,
        -2.89198428,
        10.99288867,
        3.03171932,
    ]
    np.testing.assert_allclose(Z[0, 2, 1], expected, rtol=1e-7, atol=1e-7)
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b and cache[3] is hparameters

    # The classic second check draws a 3x3 W and b first, then the 5x5 ones.
    np.random.seed(3)
    A_prev = np.random.randn(2, 5, 7, 4)
    np.random.randn(3, 3, 4, 8)
    np.random.randn(1, 1, 1, 8)
    W = np.random.randn(5, 5, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, _ = conv_forward(A_prev, W, b, {"pad": 6, "stride": 1})
    assert Z.shape == (2, 13, 15, 8)
    assert np.isclose(Z.mean(), -0.5384027772160062, rtol=1e-7, atol=0)


def test_pool_forward_anchors():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    A, cache = pool_forward(A_prev, {"stride": 1, "f": 3}, mode="max")
    assert A.shape == (2, 3, 3, 3) and cache[0] is A_prev
    expected_max = [
        [1.96710175, 0.84616065, 1.27375593],
        [1.96710175, 0.84616065, 1.23616403],
        [1.62765075, 1.12141771, 1.2245077],
    ]
    np.testing.assert_allclose(A[1, 1], expected_max, rtol=1e-7, atol=1e-7)
    A, _ = pool_forward(A_prev, {"stride": 1, "f": 3}, mode="average")
    expected_avg = [
        [0.44497696, -0.00261695, -0.31040307],
        [0.50811474, -0.23493734, -0.23961183],
        [0.11872677, 0.17255229, -0.22112197],
    ]
    np.testing.assert_allclose(A[1, 1], expected_avg, rtol=1e-7, atol=1e-7)
    assert pool_forward(A_prev, {"stride": 2, "f": 3})[0].shape == (2, 2, 2, 3)
    with pytest.raises(ValueError):
        pool_forward(A_prev, {"stride": 1, "f": 3}, mode="median")


@pytest.mark.parametrize("seed", range(6))
def test_conv_forward_matches_torch(seed):
    rng = np.random.default_rng(seed)
    f = int(rng.integers(1, 5))
    stride, pad = int(rng.integers(1, 4)), int(rng.integers(0, 4))
    shape = (2, int(rng.integers(f, 9)), int(rng.integers(f, 9)), int(rng.integers(1, 4)))
    n_C = int(rng.integers(1, 5))
    A = rng.standard_normal(shape)
    W = rng.standard_normal((f, f, shape[3], n_C))
    b = rng.standard_normal((1, 1, 1, n_C))
    copies = [x.copy() for x in (A, W, b)]
    Z, _ = conv_forward(A, W, b, {"stride": stride, "pad": pad})
    np.testing.assert_allclose(
        Z, oracles.conv_forward(A, W, b, stride, pad), rtol=1e-10, atol=1e-10
    )
    for x, c in zip((A, W, b), copies, strict=True):
        np.testing.assert_array_equal(x, c)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize(
    ("f", "stride", "shape"),
    [(2, 2, (2, 6, 7, 3)), (3, 2, (1, 9, 5, 2)), (2, 3, (2, 8, 8, 1)), (3, 1, (1, 5, 6, 2))],
)
def test_pool_forward_matches_torch(mode, f, stride, shape):
    A = np.random.default_rng(7).standard_normal(shape)
    out, _ = pool_forward(A, {"f": f, "stride": stride}, mode=mode)
    np.testing.assert_allclose(
        out, oracles.pool_forward(A, f, stride, mode), rtol=1e-12, atol=1e-12
    )
