"""MNIST that works offline.

:func:`load_mnist` returns ``(x_train, y_train), (x_test, y_test)`` as ``uint8`` arrays:

* the full 60,000 / 10,000 MNIST when a Keras-format ``mnist.npz`` is found
  (``$CNN_COURSE_MNIST`` or ``~/.keras/datasets/mnist.npz``) or can be downloaded
  within a short timeout (never when ``CNN_COURSE_OFFLINE=1``);
* otherwise the real MNIST *test* set shipped in ``data/mnist/``, checked against its
  MD5 sums and split deterministically into 8,000 training and 2,000 held-out digits.

It prints one line saying which data it used.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = PROJECT_ROOT / "data" / "mnist"
IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
BUNDLED_TRAIN = 8_000  # the first 8,000 bundled digits train, the last 2,000 are held out

MNIST_ENV = "CNN_COURSE_MNIST"
OFFLINE_ENV = "CNN_COURSE_OFFLINE"
KERAS_CACHE = Path("~/.keras/datasets/mnist.npz")
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
DOWNLOAD_TIMEOUT_S = 5.0

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class DataIntegrityError(RuntimeError):
    """A data file is missing, truncated or does not match its checksum."""


@dataclass(frozen=True)
class MnistSource:
    """Where :func:`load_mnist` found its digits."""

    kind: str  # "full" or "bundled"
    description: str


_last_source: MnistSource | None = None


def last_source() -> MnistSource | None:
    """The source used by the most recent :func:`load_mnist` call."""
    return _last_source


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_md5(data_dir: Path) -> dict[str, str]:
    sums = data_dir / "MD5SUMS"
    if not sums.is_file():
        raise DataIntegrityError(f"MNIST checksum file is missing: {sums}")
    expected = {}
    for line in sums.read_text(encoding="ascii").splitlines():
        if line.strip():
            digest, name = line.split()
            expected[name.lstrip("*")] = digest
    return expected


def verify_bundled(data_dir: Path = BUNDLED_DIR) -> None:
    """Raise :class:`DataIntegrityError` unless both files exist and match ``MD5SUMS``."""
    expected = _expected_md5(data_dir)
    for name in (IMAGES_FILE, LABELS_FILE):
        path = data_dir / name
        if not path.is_file():
            raise DataIntegrityError(f"MNIST file is missing: {path}")
        if name not in expected:
            raise DataIntegrityError(f"{data_dir / 'MD5SUMS'} has no entry for {name}")
        actual = md5sum(path)
        if actual != expected[name]:
            raise DataIntegrityError(
                f"MNIST file {path} is corrupted: MD5 {actual}, expected {expected[name]}. "
                "Restore it from the repository (git checkout -- data/mnist)."
            )


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    header = np.frombuffer(raw[: 4 * (ndim + 1)], dtype=">u4")
    if int(header[0]) != magic:
        raise DataIntegrityError(f"{path} is not an IDX file (magic {int(header[0])})")
    shape = tuple(int(d) for d in header[1:])
    data = np.frombuffer(raw[4 * (ndim + 1) :], dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise DataIntegrityError(f"{path} is truncated: {data.size} bytes for shape {shape}")
    return data.reshape(shape)


def load_bundled(data_dir: Path = BUNDLED_DIR, n_train: int = BUNDLED_TRAIN) -> Arrays:
    """The shipped 10,000 MNIST test digits, split into ``n_train`` / ``10000 - n_train``."""
    verify_bundled(data_dir)
    images = _read_idx(data_dir / IMAGES_FILE, 2051, 3)
    labels = _read_idx(data_dir / LABELS_FILE, 2049, 1)
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


def load_npz(path: Path) -> Arrays:
    """A Keras-format ``mnist.npz`` (keys ``x_train y_train x_test y_test``)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            x_train, y_train = npz["x_train"], npz["y_train"]
            x_test, y_test = npz["x_test"], npz["y_test"]
    except (OSError, KeyError, ValueError) as exc:
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
    return (x_train.astype(np.uint8), y_train.astype(np.uint8)), (
        x_test.astype(np.uint8),
        y_test.astype(np.uint8),
    )


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _try_download(target: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> bool:
    """Download the Keras mnist.npz to ``target``; False (quickly) when unreachable."""
    try:
        with urllib.request.urlopen(MNIST_URL, timeout=timeout) as response:
            payload = response.read()
    except Exception:  # no network, DNS failure, timeout, HTTP error: use the bundled data
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(payload)
    tmp.replace(target)
    return True


def find_full_mnist(download: bool | None = None) -> Path | None:
    """Path of a full ``mnist.npz``, downloading it if allowed; None when there is none."""
    override = os.environ.get(MNIST_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise DataIntegrityError(f"${MNIST_ENV} points to {path}, which does not exist")
        return path
    cache = KERAS_CACHE.expanduser()
    if cache.is_file():
        return cache
    if download is None:
        download = not _offline()
    if download and _try_download(cache):
        return cache
    return None


def load_mnist(source: str = "auto", download: bool | None = None, verbose: bool = True) -> Arrays:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8.

    Args:
        source: ``"auto"`` (full MNIST if present, else bundled), ``"full"`` (error if
            absent) or ``"bundled"`` (always the shipped 10k digits).
        download: try to download full MNIST when absent (default: unless
            ``CNN_COURSE_OFFLINE=1``); gives up after a few seconds.
        verbose: print one line naming the data used.

    Shapes: ``x_*`` is ``(m, 28, 28)``, ``y_*`` is ``(m,)`` with digits 0-9.
    """
    global _last_source
    if source not in {"auto", "full", "bundled"}:
        raise ValueError(f"source must be 'auto', 'full' or 'bundled', not {source!r}")
    path = None if source == "bundled" else find_full_mnist(download)
    if path is not None:
        data = load_npz(path)
        info = MnistSource(
            "full",
            f"MNIST: full set from {path} ({len(data[0][0]):,} train / {len(data[1][0]):,} test)",
        )
    elif source == "full":
        raise DataIntegrityError(
            f"full MNIST not found: put mnist.npz at {KERAS_CACHE} or set ${MNIST_ENV}"
        )
    else:
        data = load_bundled()
        info = MnistSource(
            "bundled",
            f"MNIST: bundled 10k test set, split {BUNDLED_TRAIN:,} train / "
            f"{10_000 - BUNDLED_TRAIN:,} held out (full MNIST not found)",
        )
    _last_source = info
    if verbose:
        print(info.description)
    return data


def subsample(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A reproducible random subset of ``n`` examples (all of them if ``n >= len(x)``)."""
    if n >= len(x):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx]
