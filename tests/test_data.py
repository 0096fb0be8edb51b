"""The offline MNIST loader: full set, fast-mode subset, grading digits, integrity errors."""

from __future__ import annotations

import ast
import hashlib
import shutil
import socket
import zlib
from pathlib import Path

import numpy as np
import pytest

from cnncourse import data

# Canonical facts of MNIST, independent of the loader.
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CANONICAL_RAW_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
# Fingerprints of the fast-mode subset and the grading digits: if a numpy upgrade or an edit
# changed which digits they are, grading thresholds measured on them would no longer hold.
FAST_TRAIN_IDX_MD5 = "10c894ed7f667684895996dce94f0d7d"
FAST_TEST_IDX_MD5 = "b4576b685653c55e8c8e4763d77fb01f"
GRADING_IDX_MD5 = "04c9f96be5a4d6dfa28f8362f4857f81"


def _md5_of_indices(idx: np.ndarray) -> str:
    return hashlib.md5(np.asarray(idx, dtype="<i8").tobytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch):
    """The tests read the shipped files, whatever $CNN_COURSE_MNIST says on this machine."""
    monkeypatch.delenv(data.MNIST_ENV, raising=False)


@pytest.fixture
def copy_dir(tmp_path) -> Path:
    """A private copy of data/mnist (the tests damage it)."""
    target = tmp_path / "mnist"
    shutil.copytree(data.DATA_DIR, target)
    return target


def test_full_set_shapes_labels_and_counts(capsys):
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60_000, 28, 28) and y_train.shape == (60_000,)
    assert x_test.shape == (10_000, 28, 28) and y_test.shape == (10_000,)
    for array in (x_train, y_train, x_test, y_test):
        assert array.dtype == np.uint8
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert y_test[:10].tolist() == FIRST_TEST_LABELS
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0
    out = capsys.readouterr().out
    assert "60,000 training / 10,000 test" in out and out.count("\n") == 1
    assert data.last_source().kind == "full"


def test_shipped_files_hold_canonical_mnist():
    for spec in data.FILES.values():
        raw = zlib.decompress((data.DATA_DIR / spec.name).read_bytes(), wbits=31)
        assert hashlib.md5(raw).hexdigest() == CANONICAL_RAW_MD5[spec.name] == spec.raw_md5


def test_md5sums_file_matches_the_loader_table():
    listed = {}
    for line in (data.DATA_DIR / "MD5SUMS").read_text(encoding="ascii").splitlines():
        digest, name = line.split()
        listed[name] = digest
    assert listed == {spec.name: spec.md5 for spec in data.FILES.values()}
    for spec in data.FILES.values():
        path = data.DATA_DIR / spec.name
        assert path.stat().st_size == spec.size
        assert hashlib.md5(path.read_bytes()).hexdigest() == spec.md5
    readme = (data.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for digest in CANONICAL_RAW_MD5.values():
        assert digest in readme


def test_arrays_are_cached_and_read_only():
    first = data.load_mnist(verbose=False)
    second = data.load_mnist(verbose=False)
    assert first[0][0] is second[0][0] and first[1][1] is second[1][1]
    with pytest.raises(ValueError, match="read-only"):
        first[0][0][0, 0, 0] = 1
    fast = data.load_mnist(fast=True, verbose=False)
    with pytest.raises(ValueError, match="read-only"):
        fast[1][0][0, 0, 0] = 1


def test_fast_subset_sizes_content_and_determinism(capsys):
    (x_train, y_train), (x_test, y_test) = data.load_mnist(fast=True)
    assert x_train.shape == (data.FAST_TRAIN_SIZE, 28, 28) == (8_000, 28, 28)
    assert x_test.shape == (data.FAST_TEST_SIZE, 28, 28) == (2_000, 28, 28)
    assert y_train.shape == (8_000,) and y_test.shape == (2_000,)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert "fast-mode subset" in capsys.readouterr().out
    assert data.last_source().kind == "fast"

    train_idx, test_idx = data.fast_subset_indices()
    assert len(np.unique(train_idx)) == 8_000 and len(np.unique(test_idx)) == 2_000
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(test_idx) > 0)  # file order
    (full_x, full_y), (full_xt, full_yt) = data.load_mnist(verbose=False)
    assert np.array_equal(x_train, full_x[train_idx]) and np.array_equal(y_train, full_y[train_idx])
    assert np.array_equal(x_test, full_xt[test_idx]) and np.array_equal(y_test, full_yt[test_idx])
    # every digit is well represented (a random 8,000 of 60,000: about 800 each)
    assert np.bincount(y_train, minlength=10).min() > 600
    assert np.bincount(y_test, minlength=10).min() > 140

    # the same digits in a fresh process state, and the documented fingerprints
    data.clear_cache()
    (x_again, _), (xt_again, _) = data.load_mnist(fast=True, verbose=False)
    assert np.array_equal(x_again, x_train) and np.array_equal(xt_again, x_test)
    assert _md5_of_indices(train_idx) == FAST_TRAIN_IDX_MD5
    assert _md5_of_indices(test_idx) == FAST_TEST_IDX_MD5


def test_grading_digits_are_fixed_and_apart_from_the_fast_test_digits():
    x, y = data.grading_digits()
    assert x.shape == (2_000, 28, 28) and y.shape == (2_000,) and x.dtype == np.uint8
    idx = data.grading_indices()
    assert _md5_of_indices(idx) == GRADING_IDX_MD5
    (_, _), (x_test, y_test) = data.load_mnist(verbose=False)
    assert np.array_equal(x, x_test[idx]) and np.array_equal(y, y_test[idx])
    _, fast_test_idx = data.fast_subset_indices()
    assert len(np.intersect1d(idx, fast_test_idx)) == 0
    assert len(np.intersect1d(data.grading_indices(8_000), fast_test_idx)) == 0
    assert np.bincount(y, minlength=10).min() > 140
    x_small, _ = data.grading_digits(500)
    assert x_small.shape == (500, 28, 28)
    assert data.grading_digits()[0] is x  # cached
    for bad in (0, 10_001):
        with pytest.raises(ValueError):
            data.grading_digits(bad)


def test_fast_must_be_a_bool():
    with pytest.raises(TypeError, match="True or False"):
        data.load_mnist("bundled")  # the old positional source argument
    with pytest.raises(TypeError):
        data.load_mnist(source="bundled", verbose=False)  # the removed keyword


@pytest.mark.parametrize("spec", list(data.FILES.values()), ids=lambda s: s.name)
def test_missing_file_names_it_and_how_to_restore(copy_dir, spec):
    (copy_dir / spec.name).unlink()
    with pytest.raises(data.DataIntegrityError) as info:
        data.load_mnist(data_dir=copy_dir, verbose=False)
    message = str(info.value)
    assert "missing" in message and spec.name in message
    assert f"git checkout -- data/mnist/{spec.name}" in message


def test_corrupted_file_names_it(copy_dir):
    spec = data.FILES["train_images"]
    target = copy_dir / spec.name
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte, same size
    target.write_bytes(bytes(raw))
    for load in (
        lambda: data.load_mnist(data_dir=copy_dir, verbose=False),
        lambda: data.load_mnist(fast=True, data_dir=copy_dir, verbose=False),
    ):
        with pytest.raises(data.DataIntegrityError, match="corrupted: .* MD5") as info:
            load()
        assert str(target) in str(info.value)
        assert f"git checkout -- data/mnist/{spec.name}" in str(info.value)


def test_truncated_file_names_it(copy_dir):
    spec = data.FILES["test_labels"]
    target = copy_dir / spec.name
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(data.DataIntegrityError, match="truncated: 1,000 of 4,542 bytes") as info:
        data.grading_digits(data_dir=copy_dir)
    assert spec.name in str(info.value) and "git checkout" in str(info.value)


def test_appended_bytes_are_corruption_too(copy_dir):
    target = copy_dir / data.FILES["test_images"].name
    target.write_bytes(target.read_bytes() + b"\0")
    with pytest.raises(data.DataIntegrityError, match="corrupted"):
        data.verify_files(copy_dir)


def test_intact_copy_loads_like_the_original(copy_dir):
    (x, y), (xt, yt) = data.load_mnist(data_dir=copy_dir, verbose=False)
    (x0, y0), (xt0, yt0) = data.load_mnist(verbose=False)
    assert np.array_equal(x, x0) and np.array_equal(yt, yt0)
    data.verify_files(copy_dir)


def _fake_npz(path, n_train=12, n_test=5):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def test_env_var_points_full_mode_to_another_npz(tmp_path, monkeypatch, capsys):
    npz = tmp_path / "mnist.npz"
    _fake_npz(npz)
    monkeypatch.setenv(data.MNIST_ENV, str(npz))
    (x_train, _), (x_test, _) = data.load_mnist()
    assert x_train.shape == (12, 28, 28) and x_test.shape == (5, 28, 28)
    assert x_train.dtype == np.uint8
    assert data.MNIST_ENV in capsys.readouterr().out
    assert data.last_source().kind == "npz"
    # fast mode and the grading digits never depend on the environment
    (x_fast, _), _ = data.load_mnist(fast=True, verbose=False)
    assert x_fast.shape == (8_000, 28, 28)
    assert data.grading_digits()[0].shape == (2_000, 28, 28)


def test_env_var_errors(tmp_path, monkeypatch):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=np.zeros((3, 5, 5)))
    monkeypatch.setenv(data.MNIST_ENV, str(bad))
    with pytest.raises(data.DataIntegrityError, match="not a readable Keras mnist.npz"):
        data.load_mnist(verbose=False)
    monkeypatch.setenv(data.MNIST_ENV, str(tmp_path / "nope.npz"))
    with pytest.raises(data.DataIntegrityError, match="does not exist"):
        data.load_mnist(verbose=False)


def test_no_network_code_in_the_loader():
    source = Path(data.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"urllib", "socket", "http", "requests", "ssl", "ftplib"}
    assert "http://" not in source and "https://" not in source
    assert "OFFLINE" not in source


def test_loading_opens_no_socket(copy_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the MNIST loader tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    (x, _), _ = data.load_mnist(data_dir=copy_dir, verbose=False)  # a copy: nothing cached
    assert len(x) == 60_000
    assert len(data.load_mnist(fast=True, data_dir=copy_dir, verbose=False)[0][0]) == 8_000


def test_subsample_is_reproducible():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    a, b = data.subsample(x, y, 10, seed=3)
    c, d = data.subsample(x, y, 10, seed=3)
    assert np.array_equal(a, c) and np.array_equal(b, d) and len(a) == 10
    assert np.array_equal(a[:, 0] // 2, b)  # rows stay paired with their labels
    assert data.subsample(x, y, 80)[0] is x
