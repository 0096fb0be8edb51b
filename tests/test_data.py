"""The offline MNIST loader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cnncourse import data


def test_bundled_split_shapes_and_dtypes(capsys):
    (x_train, y_train), (x_test, y_test) = data.load_mnist(source="bundled")
    assert x_train.shape == (8000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert y_train.shape == (8000,) and y_test.shape == (2000,)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert set(np.unique(y_test)) == set(range(10))
    # the canonical first test labels of MNIST
    assert list(y_train[:5]) == [7, 2, 1, 0, 4]
    assert "bundled" in capsys.readouterr().out
    assert data.last_source().kind == "bundled"


def test_split_is_deterministic():
    (a, _), (b, _) = data.load_mnist(source="bundled", verbose=False)
    (c, _), (d, _) = data.load_mnist(source="bundled", verbose=False)
    assert np.array_equal(a, c) and np.array_equal(b, d)


def test_md5_mismatch_is_a_clear_error(tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(data.BUNDLED_DIR, copy)
    target = copy / data.LABELS_FILE
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(data.DataIntegrityError, match="corrupted: MD5"):
        data.load_bundled(copy)


def test_missing_file_is_a_clear_error(tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(data.BUNDLED_DIR, copy)
    (copy / data.IMAGES_FILE).unlink()
    with pytest.raises(data.DataIntegrityError, match="missing"):
        data.load_bundled(copy)


def _fake_npz(path, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def test_full_mnist_from_env_path(tmp_path, monkeypatch, capsys):
    npz = tmp_path / "mnist.npz"
    _fake_npz(npz)
    monkeypatch.setenv(data.MNIST_ENV, str(npz))
    (x_train, y_train), (x_test, _) = data.load_mnist()
    assert x_train.shape == (12, 28, 28) and x_test.shape == (5, 28, 28)
    assert x_train.dtype == np.uint8
    assert "full set" in capsys.readouterr().out
    assert data.last_source().kind == "full"


def test_full_mnist_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(data.MNIST_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".keras" / "datasets").mkdir(parents=True)
    _fake_npz(tmp_path / ".keras" / "datasets" / "mnist.npz", n_train=7)
    (x_train, _), _ = data.load_mnist(verbose=False)
    assert len(x_train) == 7


def test_bad_npz_and_bad_env_path(tmp_path, monkeypatch):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=np.zeros((3, 5, 5)))
    monkeypatch.setenv(data.MNIST_ENV, str(bad))
    with pytest.raises(data.DataIntegrityError):
        data.load_mnist(verbose=False)
    monkeypatch.setenv(data.MNIST_ENV, str(tmp_path / "nope.npz"))
    with pytest.raises(data.DataIntegrityError, match="does not exist"):
        data.load_mnist(verbose=False)


def test_offline_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv(data.MNIST_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")

    def boom(*args, **kwargs):
        raise AssertionError("tried to download while offline")

    monkeypatch.setattr(data, "_try_download", boom)
    (x_train, _), _ = data.load_mnist(verbose=False)
    assert len(x_train) == data.BUNDLED_TRAIN
    with pytest.raises(data.DataIntegrityError, match="full MNIST not found"):
        data.load_mnist(source="full", verbose=False)


def test_failed_download_falls_back_quickly(tmp_path, monkeypatch):
    import time
    import urllib.request

    monkeypatch.delenv(data.MNIST_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)

    def unreachable(url, timeout):
        assert timeout <= 10, "the download must use a short timeout"
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    start = time.monotonic()
    (x_train, _), _ = data.load_mnist(verbose=False)
    assert len(x_train) == data.BUNDLED_TRAIN
    assert time.monotonic() - start < 10
