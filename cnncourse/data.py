"""MNIST, offline and verified: the full 60,000 / 10,000 digits ship with the course.

The four canonical IDX files (gzip-compressed) live in ``data/mnist/``. Every file is checked
against its size and MD5 before it is decoded; a missing, truncated or corrupted file raises
:class:`DataIntegrityError` naming the file and how to restore it. Nothing here touches the
network.

* :func:`load_mnist` - ``(x_train, y_train), (x_test, y_test)`` as ``uint8`` arrays: the full
  set by default, or the fixed *fast-mode subset* with ``fast=True`` (what tests and the
  autograder train on);
* :func:`grading_digits` - the fixed test digits on which the autograder measures accuracy;
* :func:`fast_subset_indices` - which digits the fast-mode subset and the grading digits are;
* :func:`subsample` - a reproducible random subset of any arrays.

The fast-mode subset: 8,000 training digits drawn without replacement from the 60,000 with
``numpy.random.RandomState(FAST_TRAIN_SEED)`` and 2,000 test digits drawn from the 10,000 with
``RandomState(TEST_SPLIT_SEED)`` (the first 2,000 of that permutation), each kept in file
order. The grading digits are the *last* ``n`` digits of the same test permutation, so for
``n <= 8,000`` they never overlap the fast-mode test digits. ``RandomState`` is numpy's
frozen legacy generator: its streams do not change between numpy versions, so the subsets
are the same everywhere.

Decoded arrays are cached in the process and returned read-only (``x.flags.writeable`` is
False): each set is decoded once however many times it is asked for, and a caller that
wants to change pixels works on a copy (``x.astype(...)`` makes one anyway).

``$CNN_COURSE_MNIST`` may point to another Keras-format ``mnist.npz`` (keys ``x_train
y_train x_test y_test``); full mode then loads that file instead (its content cannot be
checked against the canonical MD5s, only its shapes). Fast mode and :func:`grading_digits`
always use the shipped files, so tests and grades are the same on every machine.

**While a notebook is graded** its kernel sees no MNIST file at all: ``$CNN_COURSE_DATA_DIR``
names a folder holding only the fast-mode subset (``mnist-fast.npz``, written by
:func:`write_fast_subset`), so ``load_mnist(fast=True)`` works there, full mode says it is not
available, and the digits the grader measures accuracy on (:func:`grading_digits`) are not in
the sandbox. The grader's own process reads them from the shipped files, or from the file
``$CNN_COURSE_GRADING_DIGITS`` names (a grading worker installed without the course's data).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data" / "mnist"
MNIST_ENV = "CNN_COURSE_MNIST"

N_TRAIN, N_TEST = 60_000, 10_000
FAST_TRAIN_SIZE, FAST_TEST_SIZE = 8_000, 2_000
FAST_TRAIN_SEED = 10  # RandomState seed of the fast-mode training digits
TEST_SPLIT_SEED = 11  # RandomState seed of the permutation of the 10,000 test digits
GRADING_SIZE = 2_000
SANDBOX_DATA_ENV = "CNN_COURSE_DATA_DIR"  # a folder holding only FAST_SUBSET_FILE
FAST_SUBSET_FILE = "mnist-fast.npz"
GRADING_DIGITS_ENV = "CNN_COURSE_GRADING_DIGITS"  # an .npz with x, y (grader only)

Pair = tuple[np.ndarray, np.ndarray]
Arrays = tuple[Pair, Pair]


class DataIntegrityError(RuntimeError):
    """A data file is missing, truncated, corrupted or not what it should be."""


@dataclass(frozen=True)
class MnistFile:
    """One shipped IDX file and what it must be."""

    name: str
    size: int  # bytes of the .gz file as shipped
    md5: str  # MD5 of the .gz file as shipped (also in data/mnist/MD5SUMS)
    raw_md5: str  # canonical MD5 of the uncompressed IDX file (LeCun et al.)
    shape: tuple[int, ...]

    @property
    def magic(self) -> int:
        """IDX magic number: unsigned bytes (0x08) and the number of dimensions."""
        return 0x0800 + len(self.shape)


FILES = {
    "train_images": MnistFile(
        "train-images-idx3-ubyte.gz",
        9_719_438,
        "c7dfcf1bfd3481a40f7b3aedbdbd083c",
        "6bbc9ace898e44ae57da46a324031adb",
        (N_TRAIN, 28, 28),
    ),
    "train_labels": MnistFile(
        "train-labels-idx1-ubyte.gz",
        28_857,
        "d289298a347a2cc65765a3c81043ba88",
        "a25bea736e30d166cdddb491f175f624",
        (N_TRAIN,),
    ),
    "test_images": MnistFile(
        "t10k-images-idx3-ubyte.gz",
        1_648_877,
        "9fb629c4189551a2d022fa330f9573f3",
        "2646ac647ad5339dbf082846283269ea",
        (N_TEST, 28, 28),
    ),
    "test_labels": MnistFile(
        "t10k-labels-idx1-ubyte.gz",
        4_542,
        "ec29112dd5afa0611ce80d1b7f02629c",
        "27ae3e4e09519cfbb04c329615203637",
        (N_TEST,),
    ),
}


@dataclass(frozen=True)
class MnistSource:
    """What :func:`load_mnist` returned: ``kind`` is "full", "fast" or "npz"."""

    kind: str
    description: str


_last_source: MnistSource | None = None
_cache: dict[tuple, object] = {}


def last_source() -> MnistSource | None:
    """What the most recent :func:`load_mnist` call returned (None before the first)."""
    return _last_source


def clear_cache() -> None:
    """Forget the decoded arrays (the next load reads and verifies the files again)."""
    _cache.clear()


def _restore_hint(name: str) -> str:
    return (
        f"Restore it from the course repository: git checkout -- data/mnist/{name} "
        "(or copy it from a fresh clone)."
    )


def _read_verified(data_dir: Path, spec: MnistFile) -> bytes:
    """The bytes of one shipped .gz file, after checking its size and MD5."""
    path = data_dir / spec.name
    if not path.is_file():
        raise DataIntegrityError(f"MNIST file is missing: {path}. {_restore_hint(spec.name)}")
    raw = path.read_bytes()
    if len(raw) < spec.size:
        raise DataIntegrityError(
            f"MNIST file {path} is truncated: {len(raw):,} of {spec.size:,} bytes. "
            + _restore_hint(spec.name)
        )
    digest = hashlib.md5(raw).hexdigest()
    if len(raw) != spec.size or digest != spec.md5:
        raise DataIntegrityError(
            f"MNIST file {path} is corrupted: {len(raw):,} bytes with MD5 {digest}, expected "
            f"{spec.size:,} bytes with MD5 {spec.md5}. " + _restore_hint(spec.name)
        )
    return raw


def _decode_idx(raw_gz: bytes, spec: MnistFile, path: Path) -> np.ndarray:
    """A gzip-compressed IDX file of unsigned bytes -> read-only uint8 array ``spec.shape``."""
    try:
        raw = zlib.decompress(raw_gz, wbits=31)  # 31: gzip header and trailer
    except zlib.error as exc:
        raise DataIntegrityError(f"{path} is not a valid gzip file: {exc}") from exc
    ndim = len(spec.shape)
    if len(raw) < 4 * (ndim + 1):
        raise DataIntegrityError(f"{path} is too short to be an IDX file")
    header = np.frombuffer(raw[: 4 * (ndim + 1)], dtype=">u4")
    shape = tuple(int(d) for d in header[1:])
    if len(header) != ndim + 1 or int(header[0]) != spec.magic or shape != spec.shape:
        raise DataIntegrityError(f"{path} is not the expected IDX file (header {header})")
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (ndim + 1))
    if data.size != int(np.prod(shape)):
        raise DataIntegrityError(f"{path} holds {data.size} values for shape {shape}")
    return data.reshape(shape)  # a view of immutable bytes: read-only


def _array(data_dir: Path, key: str) -> np.ndarray:
    """One decoded, verified file of ``data_dir``, cached in the process."""
    spec = FILES[key]
    cache_key = ("file", str(data_dir.resolve()), spec.name)
    if cache_key not in _cache:
        raw_gz = _read_verified(data_dir, spec)
        _cache[cache_key] = _decode_idx(raw_gz, spec, data_dir / spec.name)
    return _cache[cache_key]  # type: ignore[return-value]


def verify_files(data_dir: Path | str | None = None) -> None:
    """Check the size and MD5 of the four shipped files; raise DataIntegrityError if one fails."""
    directory = Path(data_dir) if data_dir is not None else DATA_DIR
    for spec in FILES.values():
        _read_verified(directory, spec)


def _readonly(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _full(data_dir: Path) -> Arrays:
    return (
        (_array(data_dir, "train_images"), _array(data_dir, "train_labels")),
        (_array(data_dir, "test_images"), _array(data_dir, "test_labels")),
    )


def fast_subset_indices() -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fast-mode digits: ``(train_idx (8000,), test_idx (2000,))``, sorted.

    ``train_idx`` indexes the 60,000 training digits, ``test_idx`` the 10,000 test digits.
    """
    train = np.random.RandomState(FAST_TRAIN_SEED).choice(N_TRAIN, FAST_TRAIN_SIZE, replace=False)
    test = _test_permutation()[:FAST_TEST_SIZE]
    return np.sort(train), np.sort(test)


def _test_permutation() -> np.ndarray:
    return np.random.RandomState(TEST_SPLIT_SEED).permutation(N_TEST)


def grading_indices(n: int = GRADING_SIZE) -> np.ndarray:
    """Indices (sorted) into the 10,000 test digits of :func:`grading_digits`."""
    if not 1 <= n <= N_TEST:
        raise ValueError(f"n must be between 1 and {N_TEST:,}, not {n}")
    return np.sort(_test_permutation()[N_TEST - n :])


def _fast(data_dir: Path) -> Arrays:
    cache_key = ("fast", str(data_dir.resolve()))
    if cache_key not in _cache:
        (x_train, y_train), (x_test, y_test) = _full(data_dir)
        train_idx, test_idx = fast_subset_indices()
        _cache[cache_key] = (
            _readonly(x_train[train_idx], y_train[train_idx]),
            _readonly(x_test[test_idx], y_test[test_idx]),
        )
    return _cache[cache_key]  # type: ignore[return-value]


def _sandbox_dir() -> Path | None:
    value = os.environ.get(SANDBOX_DATA_ENV, "").strip()
    return Path(value) if value else None


def _sandbox_fast(folder: Path) -> Arrays:
    """The fast-mode subset from the file the grader put in the sandbox."""
    cache_key = ("sandbox", str(folder))
    if cache_key not in _cache:
        path = folder / FAST_SUBSET_FILE
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = [
                    np.array(npz[k], dtype=np.uint8)
                    for k in ("x_train", "y_train", "x_test", "y_test")
                ]
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise DataIntegrityError(
                f"the fast-mode digits are unreadable here ({path}): {exc}"
            ) from exc
        x_train, y_train, x_test, y_test = arrays
        if x_train.shape != (FAST_TRAIN_SIZE, 28, 28) or x_test.shape != (FAST_TEST_SIZE, 28, 28):
            raise DataIntegrityError(f"{path} does not hold the fast-mode subset")
        _cache[cache_key] = (_readonly(x_train, y_train), _readonly(x_test, y_test))
    return _cache[cache_key]  # type: ignore[return-value]


def fast_subset_bytes(data_dir: Path | str | None = None) -> bytes:
    """The fast-mode subset as the bytes of a compressed ``.npz`` (what a grading sandbox
    holds instead of the MNIST files)."""
    import io

    directory = Path(data_dir) if data_dir is not None else DATA_DIR
    (x_train, y_train), (x_test, y_test) = _fast(directory)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return buffer.getvalue()


def write_fast_subset(folder: Path | str, data: bytes | None = None) -> Path:
    """Write the fast-mode subset into ``folder`` (for ``$CNN_COURSE_DATA_DIR``)."""
    path = Path(folder) / FAST_SUBSET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if data is not None else fast_subset_bytes())
    return path


def grading_digits_bytes(n: int = GRADING_SIZE) -> bytes:
    """:func:`grading_digits` as the bytes of an ``.npz`` (x, y), for a grading worker that
    has no copy of the course's data (``$CNN_COURSE_GRADING_DIGITS``)."""
    import io

    x, y = grading_digits(n)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x, y=y)
    return buffer.getvalue()


def grading_digits(n: int = GRADING_SIZE, data_dir: Path | str | None = None) -> Pair:
    """The fixed test digits on which the autograder measures a trained model's accuracy.

    The last ``n`` digits of the seeded permutation of the 10,000 MNIST test digits (see the
    module docstring), in file order: no training set contains them, and for ``n <= 8,000``
    they are disjoint from the fast-mode test digits that a notebook shows. Verified like
    every shipped file, never printed, never taken from ``$CNN_COURSE_MNIST``.

    Returns ``(x, y)``: ``x`` ``(n, 28, 28)`` and ``y`` ``(n,)``, uint8, read-only.
    """
    if data_dir is None and _sandbox_dir() is not None:
        raise DataIntegrityError(
            "the held-out grading digits are not available while a notebook is graded"
        )
    override = os.environ.get(GRADING_DIGITS_ENV, "").strip()
    if data_dir is None and override:
        cache_key: tuple = ("grading-file", override, n)
        if cache_key not in _cache:
            with np.load(override, allow_pickle=False) as npz:
                x, y = np.array(npz["x"], dtype=np.uint8), np.array(npz["y"], dtype=np.uint8)
            if len(x) < n:
                raise DataIntegrityError(f"{override} holds {len(x)} grading digits, not {n}")
            _cache[cache_key] = _readonly(x[len(x) - n :], y[len(y) - n :])
        return _cache[cache_key]  # type: ignore[return-value]
    directory = Path(data_dir) if data_dir is not None else DATA_DIR
    cache_key = ("grading", str(directory.resolve()), n)
    if cache_key not in _cache:
        idx = grading_indices(n)
        (_, _), (x_test, y_test) = _full(directory)
        _cache[cache_key] = _readonly(x_test[idx], y_test[idx])
    return _cache[cache_key]  # type: ignore[return-value]


def load_npz(path: Path | str) -> Arrays:
    """A Keras-format ``mnist.npz`` (keys ``x_train y_train x_test y_test``), uint8, read-only."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            x_train, y_train = npz["x_train"], npz["y_train"]
            x_test, y_test = npz["x_test"], npz["y_test"]
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise DataIntegrityError(f"{path} is not a readable Keras mnist.npz: {exc}") from exc
    for name, arr, ndim in (
        ("x_train", x_train, 3),
        ("x_test", x_test, 3),
        ("y_train", y_train, 1),
        ("y_test", y_test, 1),
    ):
        if arr.ndim != ndim or (ndim == 3 and arr.shape[1:] != (28, 28)):
            raise DataIntegrityError(f"{path}: {name} has shape {arr.shape}")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DataIntegrityError(f"{path}: images and labels differ in length")
    return (
        _readonly(x_train.astype(np.uint8, copy=False), y_train.astype(np.uint8, copy=False)),
        _readonly(x_test.astype(np.uint8, copy=False), y_test.astype(np.uint8, copy=False)),
    )  # type: ignore[return-value]


def _shown(directory: Path) -> str:
    try:
        return str(directory.resolve().relative_to(PROJECT_ROOT)) + "/"
    except ValueError:
        return str(directory)


def _from_env() -> Path | None:
    override = os.environ.get(MNIST_ENV, "").strip()
    if not override:
        return None
    path = Path(override).expanduser()
    if not path.is_file():
        raise DataIntegrityError(f"${MNIST_ENV} points to {path}, which does not exist")
    return path


def _npz(path: Path) -> Arrays:
    stat = path.stat()
    cache_key = ("npz", str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if cache_key not in _cache:
        _cache[cache_key] = load_npz(path)
    return _cache[cache_key]  # type: ignore[return-value]


def load_mnist(
    fast: bool = False,
    verbose: bool = True,
    *,
    data_dir: Path | str | None = None,
) -> Arrays:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8, read-only.

    Shapes: ``x_*`` is ``(m, 28, 28)`` with pixels 0-255, ``y_*`` is ``(m,)`` with digits 0-9.

    Args:
        fast: False (default): the full MNIST, 60,000 training and 10,000 test digits (or the
            ``mnist.npz`` that ``$CNN_COURSE_MNIST`` names). True: the fixed fast-mode subset,
            8,000 training and 2,000 test digits (see the module docstring), always from the
            shipped files.
        verbose: print one line naming what was loaded.
        data_dir: folder holding the four IDX files (default ``data/mnist/`` of the course).

    Raises:
        DataIntegrityError: a file is missing, truncated or corrupted (the message names it
            and says how to restore it), or ``$CNN_COURSE_MNIST`` names an unusable file.
    """
    global _last_source
    if not isinstance(fast, bool):
        raise TypeError(f"load_mnist(fast=...) takes True or False, not {fast!r}")
    directory = Path(data_dir) if data_dir is not None else DATA_DIR
    sandbox = _sandbox_dir() if data_dir is None else None
    if sandbox is not None and not fast:
        raise DataIntegrityError(
            "while a notebook is graded only the fast-mode digits are available: "
            "load_mnist(fast=True) (grading always runs in fast mode)"
        )
    env_path = None if fast else _from_env()
    if fast and sandbox is not None:
        data = _sandbox_fast(sandbox)
        info = MnistSource(
            "fast",
            f"MNIST fast-mode subset: {FAST_TRAIN_SIZE:,} training and {FAST_TEST_SIZE:,} test "
            "digits (the grading sandbox's copy)",
        )
    elif fast:
        data = _fast(directory)
        info = MnistSource(
            "fast",
            f"MNIST fast-mode subset: {FAST_TRAIN_SIZE:,} of the {N_TRAIN:,} training digits, "
            f"{FAST_TEST_SIZE:,} of the {N_TEST:,} test digits (fixed seeds, verified files)",
        )
    elif env_path is not None:
        data = _npz(env_path)
        info = MnistSource(
            "npz",
            f"MNIST from ${MNIST_ENV}={env_path}: {len(data[0][0]):,} training / "
            f"{len(data[1][0]):,} test digits (not checked against the canonical MD5s)",
        )
    else:
        data = _full(directory)
        info = MnistSource(
            "full",
            f"MNIST: full set, {N_TRAIN:,} training / {N_TEST:,} test digits "
            f"(canonical files in {_shown(directory)}, MD5 verified)",
        )
    _last_source = info
    if verbose:
        print(info.description)
    return data


def subsample(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A reproducible random subset of ``n`` examples (all of them if ``n >= len(x)``).

    ``x`` is ``(m, ...)`` and ``y`` is ``(m,)``; returns ``(x[idx], y[idx])``.
    """
    if n >= len(x):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx]
