"""Cluttered MNIST: a harder data set made offline, deterministically, from the shipped MNIST.

Each image is a ``40 x 40`` canvas holding one MNIST digit, rotated by up to 20 degrees,
scaled by 0.8 to 1.1 and placed at a random position (its centre moves by up to about 10
pixels from the middle), on top of six ``8 x 8`` pieces cut from *other* digits of the same
split and scattered over the canvas. The label is the whole digit's. A plain CNN that does
well on MNIST falls short here: the digit is no longer centred and upright, and the clutter
looks like strokes (lecture 10 measures by how much).

Splits, and why no test digit leaks into training:

* **train** and **validation** use MNIST's 60,000 *training* digits only: a fixed permutation
  (``numpy.random.RandomState(SPLIT_SEED)``) gives the first ``n_train`` digits to training and
  the last ``n_val`` to validation, so the two never share a digit, not even as clutter (a
  split's clutter comes from that split's own digits);
* **test** uses MNIST's 10,000 *test* digits, one image per digit, clutter from the test
  digits only;
* **fast mode** draws its three splits the same way from the digits of
  :func:`cnncourse.data.load_mnist` ``(fast=True)`` (its training digits for train and
  validation, its test digits for test);
* **grading** (:func:`grading_set`) is made from the autograder's held-out test digits
  (:func:`cnncourse.data.grading_indices`), with clutter from those digits only: disjoint
  from every training, validation and fast-mode test image.

:func:`make_split` returns, with the images, the *sources* of every image (the index of its
digit and of each clutter piece's digit in MNIST, and every drawn parameter), and
:func:`render` rebuilds an image from its sources alone: ``tests/test_cluttered.py`` uses it
to prove that every training image is made of training digits only.

Every image has its own generator, seeded with ``(CLUTTER_SEED, split code, index)``, so an
image does not depend on how many others are made, and the data are the same on every
machine (numpy's ``default_rng`` streams are stable). Generation takes a few seconds for the
full set and is cached in the process (arrays returned read-only); nothing is written to
disk and nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data

CANVAS = 40  # side of the square canvas, in pixels
MAX_ANGLE = 20.0  # degrees, either way
SCALE_RANGE = (0.8, 1.1)
N_CLUTTER = 6  # pieces of other digits per image
PIECE = 8  # side of one clutter piece
INK_HALF = 10.0  # half the side of MNIST's 20 x 20 ink box (digits are centred in 28 x 28)
CLUTTER_SEED = 2024  # first word of every image's seed
SPLIT_SEED = 12  # RandomState seed of the permutation of the training digits

# Sizes: full mode (the reproduction, lecture 10 full mode) and fast mode (tests, grading).
FULL_SIZES = {"train": 20_000, "val": 5_000, "test": 10_000}
FAST_SIZES = {"train": 4_000, "val": 1_000, "test": 2_000}
GRADING_SIZE = data.GRADING_SIZE
SPLIT_CODES = {"train": 1, "val": 2, "test": 3, "grading": 4}

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Sources:
    """What each image of a split was made of (one row per image).

    Attributes:
        digit: index of the image's digit in its MNIST file (training or test), ``(m,)``.
        test_file: True when ``digit`` and ``clutter`` index MNIST's test file.
        angle: rotation in degrees, ``(m,)``; scale: ``(m,)``;
        centre: the digit's centre on the canvas ``(row, column)``, ``(m, 2)``.
        clutter: MNIST indices of the clutter pieces' digits, ``(m, N_CLUTTER)``.
        cut: top-left corner of each piece in its digit, ``(m, N_CLUTTER, 2)``.
        paste: top-left corner of each piece on the canvas, ``(m, N_CLUTTER, 2)``.
    """

    digit: np.ndarray
    test_file: bool
    angle: np.ndarray
    scale: np.ndarray
    centre: np.ndarray
    clutter: np.ndarray
    cut: np.ndarray
    paste: np.ndarray


_cache: dict[tuple, object] = {}


def place_digit(
    digit: np.ndarray, angle: float, scale: float, centre: tuple[float, float], canvas: int
) -> np.ndarray:
    """A 28 x 28 digit rotated by ``angle`` degrees about its centre, scaled and moved so that
    its centre lands on ``centre`` of a ``canvas x canvas`` image (bilinear interpolation,
    zeros outside the digit). Returns float64 ``(canvas, canvas)`` in the digit's units."""
    rows, cols = np.mgrid[0:canvas, 0:canvas].astype(np.float64)
    dy, dx = rows - centre[0], cols - centre[1]
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    # inverse map: canvas offset -> digit coordinates (undo the scale, rotate back)
    src_y = (cos * dy + sin * dx) / scale + 13.5
    src_x = (-sin * dy + cos * dx) / scale + 13.5
    y0, x0 = np.floor(src_y).astype(int), np.floor(src_x).astype(int)
    fy, fx = src_y - y0, src_x - x0
    padded = np.zeros((30, 30))  # one pixel of zeros around the digit
    padded[1:29, 1:29] = digit
    out = np.zeros((canvas, canvas))
    for oy, wy in ((0, 1 - fy), (1, fy)):
        for ox, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + oy + 1, x0 + ox + 1
            inside = (yy >= 0) & (yy < 30) & (xx >= 0) & (xx < 30)
            values = np.where(inside, padded[np.clip(yy, 0, 29), np.clip(xx, 0, 29)], 0.0)
            out += wy * wx * values
    return out


def _draw(rng: np.random.Generator, pool: np.ndarray, digit: int, canvas: int) -> dict:
    """The random parameters of one image (the digit itself is given)."""
    angle = float(rng.uniform(-MAX_ANGLE, MAX_ANGLE))
    scale = float(rng.uniform(*SCALE_RANGE))
    half = INK_HALF * scale
    centre = rng.uniform(half, canvas - half, size=2)
    others = pool[pool != digit] if len(pool) > 1 else pool
    clutter = rng.choice(others, size=N_CLUTTER)
    # pieces are cut from the ink box (rows and columns 4..23) of their digit
    cut = rng.integers(4, 24 - PIECE + 1, size=(N_CLUTTER, 2))
    paste = rng.integers(0, canvas - PIECE + 1, size=(N_CLUTTER, 2))
    return dict(angle=angle, scale=scale, centre=centre, clutter=clutter, cut=cut, paste=paste)


def render(
    images: np.ndarray,
    digit: int,
    angle: float,
    scale: float,
    centre,
    clutter,
    cut,
    paste,
    canvas: int = CANVAS,
) -> np.ndarray:
    """One cluttered image from its sources: ``images`` is the MNIST file the indices refer
    to (``(n, 28, 28)`` uint8); returns ``(canvas, canvas)`` uint8.

    The clutter pieces are drawn first and the digit on top (the brighter pixel wins where
    they overlap).
    """
    out = np.zeros((canvas, canvas))
    for index, (r, c), (pr, pc) in zip(clutter, cut, paste, strict=True):
        piece = images[int(index), r : r + PIECE, c : c + PIECE].astype(np.float64)
        region = out[pr : pr + PIECE, pc : pc + PIECE]
        np.maximum(region, piece, out=region)
    placed = place_digit(images[int(digit)].astype(np.float64), angle, scale, centre, canvas)
    np.maximum(out, placed, out=out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def make_split(
    images: np.ndarray,
    labels: np.ndarray,
    pool: np.ndarray,
    split: str,
    canvas: int = CANVAS,
    rows_of: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, Sources]:
    """One image per digit of ``pool``, clutter from ``pool`` only.

    Args:
        images, labels: MNIST digits, ``(n, 28, 28)`` uint8 and ``(n,)``: a whole MNIST file,
            or (with ``rows_of``) some of its digits.
        pool: the MNIST indices (into the file) of the digits this split may use, in order.
        split: "train", "val", "test" or "grading" (part of every image's seed).
        rows_of: the sorted MNIST indices of the rows of ``images`` (None: ``images`` is the
            whole file). The images do not depend on it: the same digits give the same images.

    Returns:
        ``(x, y, sources)``: ``x`` ``(m, canvas, canvas)`` uint8, ``y`` ``(m,)`` uint8 and the
        :class:`Sources` of every image, in MNIST indices (``test_file`` is left False: the
        caller knows).
    """
    pool = np.asarray(pool, dtype=np.int64)

    def row(index):
        return index if rows_of is None else np.searchsorted(rows_of, index)

    if rows_of is not None and not np.array_equal(rows_of[row(pool)], pool):
        raise ValueError("the pool holds digits that are not among the rows of images")
    m = len(pool)
    x = np.empty((m, canvas, canvas), dtype=np.uint8)
    rows = []
    for i, digit in enumerate(pool):
        rng = np.random.default_rng([CLUTTER_SEED, SPLIT_CODES[split], i])
        p = _draw(rng, pool, int(digit), canvas)
        x[i] = render(images, int(row(digit)), canvas=canvas, **dict(p, clutter=row(p["clutter"])))
        rows.append(p)
    sources = Sources(
        digit=pool.copy(),
        test_file=False,
        angle=np.array([r["angle"] for r in rows]),
        scale=np.array([r["scale"] for r in rows]),
        centre=np.array([r["centre"] for r in rows]).reshape(m, 2),
        clutter=np.array([r["clutter"] for r in rows], dtype=np.int64).reshape(m, N_CLUTTER),
        cut=np.array([r["cut"] for r in rows], dtype=np.int64).reshape(m, N_CLUTTER, 2),
        paste=np.array([r["paste"] for r in rows], dtype=np.int64).reshape(m, N_CLUTTER, 2),
    )
    return x, np.asarray(labels)[row(pool)].astype(np.uint8), sources


def split_pools(fast: bool = False) -> dict[str, tuple[np.ndarray, bool]]:
    """The MNIST digits each split is made of: ``{split: (indices, test_file)}``.

    ``indices`` (sorted) index MNIST's training file (``test_file`` False) or its test file
    (True). Full mode: train and validation are disjoint parts of a fixed permutation of the
    60,000 training digits, test is all 10,000 test digits. Fast mode: the same, made from the
    fast-mode subset of :func:`cnncourse.data.fast_subset_indices`.
    """
    sizes = FAST_SIZES if fast else FULL_SIZES
    if fast:
        train_digits, test_digits = data.fast_subset_indices()
    else:
        train_digits, test_digits = np.arange(data.N_TRAIN), np.arange(data.N_TEST)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(train_digits))
    train = np.sort(train_digits[order[: sizes["train"]]])
    val = np.sort(train_digits[order[len(order) - sizes["val"] :]])
    test = np.sort(test_digits[: sizes["test"]])
    return {"train": (train, False), "val": (val, False), "test": (test, True)}


def _readonly(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _mnist_digits(fast: bool):
    """``((x_train, y_train, rows), (x_test, y_test, rows))``: the digits the splits are made
    of, with the MNIST indices of their rows (None: the whole file). Fast mode reads
    :func:`cnncourse.data.load_mnist` ``(fast=True)``, the only digits a notebook's kernel has
    while it is graded; full mode the shipped files (never ``$CNN_COURSE_MNIST``: the same
    images everywhere)."""
    if fast:
        (x_tr, y_tr), (x_te, y_te) = data.load_mnist(fast=True, verbose=False)
        train_rows, test_rows = data.fast_subset_indices()
        return (x_tr, y_tr, train_rows), (x_te, y_te, test_rows)
    (x_tr, y_tr), (x_te, y_te) = data._full(data.DATA_DIR)
    return (x_tr, y_tr, None), (x_te, y_te, None)


def load_cluttered_with_sources(fast: bool = False) -> dict[str, tuple[np.ndarray, ...]]:
    """``{split: (x, y, sources)}`` for "train", "val" and "test" (see :func:`load_cluttered`)."""
    key = ("splits", fast)
    if key not in _cache:
        train_file, test_file = _mnist_digits(fast)
        out = {}
        for split, (pool, is_test) in split_pools(fast).items():
            images, labels, rows_of = test_file if is_test else train_file
            x, y, sources = make_split(images, labels, pool, split, rows_of=rows_of)
            sources = Sources(**{**sources.__dict__, "test_file": is_test})
            out[split] = (*_readonly(x, y), sources)
        _cache[key] = out
    return _cache[key]  # type: ignore[return-value]


def load_cluttered(fast: bool = False, verbose: bool = True) -> tuple[Split, Split, Split]:
    """Cluttered MNIST as ``(x_train, y_train), (x_val, y_val), (x_test, y_test)``.

    ``x_*`` is ``(m, 40, 40)`` uint8 (pixels 0-255), ``y_*`` is ``(m,)`` uint8 digits, all
    read-only. Full mode: 20,000 / 5,000 / 10,000 images; fast mode: 4,000 / 1,000 / 2,000
    (see the module docstring for which MNIST digits each split uses).
    """
    splits = load_cluttered_with_sources(fast)
    if verbose:
        sizes = ", ".join(f"{len(splits[s][0]):,} {s}" for s in ("train", "val", "test"))
        mode = "fast-mode subset" if fast else "full"
        print(
            f"cluttered MNIST ({mode}): {sizes} images of {CANVAS}x{CANVAS}, made from the "
            "shipped MNIST (training digits for train/val, test digits for test)"
        )
    return tuple((splits[s][0], splits[s][1]) for s in ("train", "val", "test"))  # type: ignore[return-value]


def grading_set(n: int = GRADING_SIZE) -> Split:
    """The autograder's held-out cluttered images: one per digit of
    :func:`cnncourse.data.grading_digits` ``(n)`` (MNIST test digits no notebook trains,
    validates or tests on, and which a graded kernel never has), clutter from those digits
    only. ``(x (n, 40, 40), y (n,))``, uint8, read-only."""
    key = ("grading", n)
    if key not in _cache:
        digits, labels = data.grading_digits(n)
        rows = data.grading_indices(n)
        x, y, _ = make_split(digits, labels, rows, "grading", rows_of=rows)
        _cache[key] = _readonly(x, y)
    return _cache[key]  # type: ignore[return-value]


def as_float(x: np.ndarray, layout: str = "nhwc") -> np.ndarray:
    """uint8 images ``(m, H, W)`` -> float32 in [0, 1], ``(m, H, W, 1)`` (``"nhwc"``, Keras)
    or ``(m, 1, H, W)`` (``"nchw"``, PyTorch)."""
    out = x.astype(np.float32)
    out /= 255.0
    return out[..., np.newaxis] if layout == "nhwc" else out[:, np.newaxis]
