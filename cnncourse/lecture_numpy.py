"""Small numpy teaching helpers shared by lectures 1-5 (matrices, convolution, backward pass).

They keep the lecture notebooks short and let the test suite check what the lectures show
(the formula ``c_ij = sum_k x_ik w_kj`` as loops, the 7x7 stride-2 example ending in 74, the
classic kernels, how many windows cover each pixel with and without padding, a shift that
moves a digit without wrapping its ink around). Layouts follow the assignments
(channels last); "convolution" means cross-correlation, as in every deep-learning library.

Two things are deliberately *not* here:

* arithmetic (output sizes, parameter counts, receptive fields, im2col shapes): it has one
  home, :mod:`cnncourse.architecture`;
* implementations of functions the assignments grade (padding, batched convolution and
  pooling layers, their backward passes, im2col, pooling masks): the lectures write their
  own short teaching versions in notebook cells, and hidden tests use
  :mod:`cnncourse.oracles`.
"""

from __future__ import annotations

import numpy as np

from .architecture import conv_output_size

__all__ = [
    "convolve2d",
    "correlate2d",
    "curve_detector",
    "gradient_coverage",
    "laplacian",
    "matmul_loop",
    "relu",
    "safe_shift",
    "shift_image",
    "sobel_vertical",
    "softmax",
    "worked_example_74",
]


# ---------------------------------------------------------------------------------------
# Lecture 1: matrices and images
# ---------------------------------------------------------------------------------------
def matmul_loop(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Matrix product written as the formula ``c_ij = sum_k x_ik w_kj``.

    Arguments:
    x -- matrix of shape (n, K)
    w -- matrix of shape (K, p)

    Returns:
    c -- matrix of shape (n, p), equal to ``x @ w``
    """
    n, K = x.shape
    K_w, p = w.shape
    if K != K_w:
        raise ValueError(f"inner sizes differ: x is {x.shape}, w is {w.shape}")
    c = np.zeros((n, p), dtype=np.result_type(x, w))
    for i in range(n):
        for j in range(p):
            for k in range(K):
                c[i, j] += x[i, k] * w[k, j]
    return c


# ---------------------------------------------------------------------------------------
# Lecture 2: convolution
# ---------------------------------------------------------------------------------------
def correlate2d(
    image: np.ndarray, kernel: np.ndarray, *, pad: int = 0, stride: int = 1
) -> np.ndarray:
    """Single-channel cross-correlation, ``out_ij = sum_l sum_m k_lm x_(s*i+l)(s*j+m)``.

    Written with two loops over the output positions so it reads like the formula.

    Arguments:
    image -- 2-D array, shape (n_H_prev, n_W_prev)
    kernel -- 2-D array, shape (f, f)
    pad -- zeros added on every side first (keyword only, like ``stride``)
    stride -- step between two windows

    Returns:
    out -- 2-D array, shape (n_H, n_W) given by
           :func:`cnncourse.architecture.conv_output_size`
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    f = kernel.shape[0]
    if pad:
        image = np.pad(image, pad)
    n_H = conv_output_size(image.shape[0], f, 0, stride)
    n_W = conv_output_size(image.shape[1], f, 0, stride)
    out = np.zeros((n_H, n_W))
    for i in range(n_H):
        for j in range(n_W):
            window = image[i * stride : i * stride + f, j * stride : j * stride + f]
            out[i, j] = np.sum(window * kernel)
    return out


def convolve2d(
    image: np.ndarray, kernel: np.ndarray, *, pad: int = 0, stride: int = 1
) -> np.ndarray:
    """True (mathematical) convolution: cross-correlation with the kernel flipped 180 degrees."""
    return correlate2d(image, np.flip(kernel), stride=stride, pad=pad)


def sobel_vertical() -> np.ndarray:
    """3x3 Sobel kernel that responds to vertical edges (left-right intensity changes)."""
    return np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def laplacian() -> np.ndarray:
    """3x3 Laplacian edge detector (sums to zero: flat regions give 0)."""
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def curve_detector(size: int = 7, value: float = 30.0) -> np.ndarray:
    """A ``size x size`` kernel that is ``value`` along a quarter-circle arc, 0 elsewhere.

    The arc bends like the lower-left part of a "0" or a "6": the kernel answers strongly
    where the image has a stroke with that shape.
    """
    kernel = np.zeros((size, size))
    radius = size - 1.5
    for angle in np.linspace(0.0, np.pi / 2, 8 * size):
        row = int(round(size - 1 - radius * np.cos(angle)))
        col = int(round(size - 1 - radius * np.sin(angle)))
        kernel[row, col] = value
    return kernel


def worked_example_74() -> tuple[np.ndarray, np.ndarray]:
    """The 7x7 input and 3x3 kernel of the stride-2 worked example.

    ``correlate2d(x, k, stride=2)`` is 3x3 and its last (bottom-right) entry is 74.

    Returns:
    x -- integer-valued input, shape (7, 7)
    k -- integer-valued kernel, shape (3, 3)
    """
    x = np.array(
        [
            [3, 0, 1, 2, 7, 4, 1],
            [1, 5, 8, 9, 3, 1, 2],
            [2, 7, 2, 5, 1, 3, 0],
            [0, 1, 3, 1, 7, 8, 2],
            [4, 2, 1, 6, 6, 8, 5],
            [2, 4, 5, 2, 3, 9, 6],
            [1, 3, 6, 4, 9, 7, 8],
        ],
        dtype=np.float64,
    )
    k = np.array([[1, 0, 2], [0, 1, 0], [2, 1, 3]], dtype=np.float64)
    return x, k


# ---------------------------------------------------------------------------------------
# Lectures 3-4: activations and the backward pass
# ---------------------------------------------------------------------------------------
def relu(Z: np.ndarray) -> np.ndarray:
    """``max(0, z)`` element-wise, any shape."""
    return np.maximum(Z, 0.0)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities ``exp(z_k) / sum_j exp(z_j)`` along ``axis``.

    The maximum is subtracted first: the result is the same, but ``exp`` cannot overflow.
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def gradient_coverage(n_in: int, f: int, *, stride: int = 1, pad: int = 0) -> np.ndarray:
    """How many windows of side ``f`` (step ``stride``) cover each pixel of an n_in x n_in
    image: the gradient ``dA`` a pixel receives when ``W`` and ``dZ`` are all ones.

    With ``pad`` the windows slide over the zero-padded image (side ``n_in + 2 pad``) and the
    counts of the ``n_in x n_in`` real pixels are returned (the padding is no pixel). With
    ``f = 3``: no padding puts a corner in 1 window and a central pixel in 9; "same" padding
    (``pad = 1``) puts a corner in 4, an edge pixel in 6 and a central one in 9; only "full"
    padding (``pad = f - 1 = 2``) puts every pixel in 9.

    Pixels that no window reaches (possible when ``stride > f`` or at the far border) get 0.
    """
    n_pad = n_in + 2 * pad
    n_out = conv_output_size(n_in, f, pad, stride)
    counts = np.zeros((n_pad, n_pad), dtype=np.int64)
    for i in range(n_out):
        for j in range(n_out):
            counts[i * stride : i * stride + f, j * stride : j * stride + f] += 1
    return counts[pad : pad + n_in, pad : pad + n_in]


# ---------------------------------------------------------------------------------------
# Lecture 2: moving a digit (translation equivariance)
# ---------------------------------------------------------------------------------------
def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move a 2-D picture ``dy`` rows down and ``dx`` columns right (negative: up, left).

    A real shift: the rows and columns that enter are black (0) and what leaves the frame is
    lost, unlike ``np.roll``, which wraps it around to the other side.

    Arguments:
    image -- 2-D array, shape (n_H, n_W)
    dy, dx -- integer shifts

    Returns:
    shifted -- array of the same shape and dtype
    """
    n_H, n_W = image.shape
    shifted = np.zeros_like(image)
    if abs(dy) >= n_H or abs(dx) >= n_W:
        return shifted
    shifted[max(dy, 0) : n_H + min(dy, 0), max(dx, 0) : n_W + min(dx, 0)] = image[
        max(-dy, 0) : n_H + min(-dy, 0), max(-dx, 0) : n_W + min(-dx, 0)
    ]
    return shifted


def safe_shift(image: np.ndarray, *, max_shift: int = 4, margin: int = 2) -> tuple[int, int]:
    """A shift ``(dy, dx)`` of a digit that keeps all its ink inside the frame.

    Along each axis it moves towards the side with the wider black margin, by at most
    ``max_shift`` pixels, and stops ``margin`` pixels before the border, so that
    :func:`shift_image` loses no ink (and ``np.roll`` would wrap none around). An axis
    without room gets 0. Raises ``ValueError`` for an image without ink.
    """
    rows, cols = np.nonzero(image)
    if rows.size == 0:
        raise ValueError("the image has no ink to move")
    shift = []
    for first, last, n in (
        (rows.min(), rows.max(), image.shape[0]),
        (cols.min(), cols.max(), image.shape[1]),
    ):
        room_after = int(n - 1 - last) - margin  # room to move down (or right)
        room_before = int(first) - margin  # room to move up (or left)
        if room_after >= room_before:
            shift.append(max(0, min(max_shift, room_after)))
        else:
            shift.append(-max(0, min(max_shift, room_before)))
    return shift[0], shift[1]
