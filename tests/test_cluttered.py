"""Cluttered MNIST (cnncourse.cluttered): deterministic, offline, and no test digit in the
training images.

The proof that no test digit leaks: every image records its sources (the MNIST index of its
digit and of each clutter piece's digit, and the file they index); the training and
validation splits index MNIST's *training* file only, through disjoint pools, and rebuilding
every fast-mode training image from its sources and the training file alone gives the image
back pixel for pixel. For the full set the pools and the drawn sources are checked without
rendering all 35,000 images.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnncourse import cluttered, data


@pytest.fixture(scope="module")
def fast_splits():
    return cluttered.load_cluttered_with_sources(fast=True)


def test_shapes_types_and_sizes(fast_splits):
    for split, size in cluttered.FAST_SIZES.items():
        x, y, sources = fast_splits[split]
        assert x.shape == (size, cluttered.CANVAS, cluttered.CANVAS) and x.dtype == np.uint8
        assert y.shape == (size,) and y.dtype == np.uint8
        assert not x.flags.writeable and not y.flags.writeable
        assert sources.clutter.shape == (size, cluttered.N_CLUTTER)
        assert set(np.unique(y)) == set(range(10))
        assert x.max() == 255 and x.mean() > 10  # digits and clutter are there


def test_labels_are_the_digits_labels(fast_splits):
    (x_tr, y_tr), (x_te, y_te) = data.load_mnist(fast=False, verbose=False)
    for split in ("train", "val", "test"):
        _, y, sources = fast_splits[split]
        labels = y_te if sources.test_file else y_tr
        assert np.array_equal(y, labels[sources.digit])


def test_pools_are_disjoint_and_from_the_right_file():
    for fast in (True, False):
        pools = cluttered.split_pools(fast)
        train, train_test_file = pools["train"]
        val, val_test_file = pools["val"]
        test, test_test_file = pools["test"]
        assert not train_test_file and not val_test_file and test_test_file
        assert not set(train) & set(val)
        assert len(set(train)) == len(train) and len(set(val)) == len(val)
        sizes = cluttered.FAST_SIZES if fast else cluttered.FULL_SIZES
        assert (len(train), len(val), len(test)) == (sizes["train"], sizes["val"], sizes["test"])
    fast_train, fast_test = data.fast_subset_indices()
    pools = cluttered.split_pools(True)
    assert set(pools["train"][0]) | set(pools["val"][0]) <= set(fast_train)
    assert set(pools["test"][0]) == set(fast_test)
    # the grading images use the autograder's held-out test digits, none of the fast ones
    assert not set(data.grading_indices()) & set(fast_test)


def test_no_test_digit_in_the_fast_training_images(fast_splits):
    """Every training (and validation) image is rebuilt from training digits alone."""
    (x_train_file, _), _ = data.load_mnist(fast=False, verbose=False)
    for split in ("train", "val"):
        x, _, s = fast_splits[split]
        pool = set(cluttered.split_pools(True)[split][0])
        assert not s.test_file
        assert set(s.digit) <= pool and set(s.clutter.ravel()) <= pool
        for i in range(len(x)):
            rebuilt = cluttered.render(
                x_train_file, s.digit[i], s.angle[i], s.scale[i], s.centre[i],
                s.clutter[i], s.cut[i], s.paste[i],
            )  # fmt: skip
            assert np.array_equal(rebuilt, x[i]), f"{split} image {i} is not what its sources make"


def test_no_test_digit_in_the_full_training_sources():
    """Full mode: the digits and clutter every training image draws come from its pool."""
    pools = cluttered.split_pools(False)
    for split in ("train", "val"):
        pool = pools[split][0]
        allowed = set(pool)
        for i in range(0, len(pool), 97):  # a spread-out sample of the images' draws
            rng = np.random.default_rng([cluttered.CLUTTER_SEED, cluttered.SPLIT_CODES[split], i])
            drawn = cluttered._draw(rng, pool, int(pool[i]), cluttered.CANVAS)
            assert set(drawn["clutter"]) <= allowed
            assert int(pool[i]) not in set(drawn["clutter"])  # clutter from *other* digits


def test_deterministic_and_offline(fast_splits, monkeypatch):
    """The same images on a second generation (nothing cached, no other source used)."""
    monkeypatch.setenv(data.MNIST_ENV, "/nonexistent/mnist.npz")  # never consulted
    cluttered._cache.clear()
    again = cluttered.load_cluttered_with_sources(fast=True)
    for split in ("train", "val", "test"):
        assert np.array_equal(again[split][0], fast_splits[split][0])
        assert np.array_equal(again[split][1], fast_splits[split][1])


def test_grading_set():
    x, y = cluttered.grading_set()
    _, (_, y_test) = data.load_mnist(fast=False, verbose=False)
    assert x.shape == (cluttered.GRADING_SIZE, 40, 40) and x.dtype == np.uint8
    assert np.array_equal(y, y_test[data.grading_indices()])
    assert not x.flags.writeable


def test_place_digit_keeps_the_ink():
    """An upright, unscaled digit centred on the canvas is the digit itself, padded (the
    digit's centre 13.5 lands on 19.5: a shift of 6 whole pixels)."""
    (x_train, _), _ = data.load_mnist(fast=True, verbose=False)
    digit = x_train[0].astype(np.float64)
    placed = cluttered.place_digit(digit, 0.0, 1.0, (19.5, 19.5), 40)
    assert np.allclose(placed[6:34, 6:34], digit)
    rotated = cluttered.place_digit(digit, 15.0, 0.9, (18.0, 22.0), 40)
    assert rotated.sum() == pytest.approx(digit.sum() * 0.81, rel=0.05)  # area scales by s^2


def test_as_float_layouts():
    x = np.full((2, 40, 40), 255, dtype=np.uint8)
    assert cluttered.as_float(x).shape == (2, 40, 40, 1)
    assert cluttered.as_float(x, "nchw").shape == (2, 1, 40, 40)
    assert cluttered.as_float(x).dtype == np.float32 and cluttered.as_float(x).max() == 1.0


def test_fast_mode_in_a_grading_sandbox(fast_splits, tmp_path, monkeypatch):
    """A graded kernel has only the fast-mode digits ($CNN_COURSE_DATA_DIR): the same images
    come out of them, and the full set is refused."""
    data.write_fast_subset(tmp_path)
    monkeypatch.setenv(data.SANDBOX_DATA_ENV, str(tmp_path))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "no-mnist-here")
    cluttered._cache.clear()
    try:
        again = cluttered.load_cluttered_with_sources(fast=True)
        for split in ("train", "val", "test"):
            assert np.array_equal(again[split][0], fast_splits[split][0])
        with pytest.raises(data.DataIntegrityError):
            cluttered.load_cluttered(fast=False, verbose=False)
    finally:
        cluttered._cache.clear()
