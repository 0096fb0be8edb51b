"""Small numpy helpers shared by lectures 1-5 (matrices, convolution, forward, backward, im2col).

They keep the lecture notebooks short and let the test suite check the numbers the
lectures print (120,000 weights, 24x24 = 576 positions, the stride-2 example ending in
74, the im2col shapes 363 x 3025 ...). Layouts follow the assignments (channels last):

* activations ``A`` are ``(m, n_H, n_W, n_C)``;
* conv weights ``W`` are ``(f, f, n_C_prev, n_C)`` and biases ``b`` are ``(1, 1, 1, n_C)``;
* "convolution" means cross-correlation, as in every deep-learning library.

The batched layers here are *vectorised* (im2col and strided slices). The plain-loop
versions are what the assignments ask students to write, so they are not given here.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "average_spread",
    "col2im",
    "conv_backward_im2col",
    "conv_forward_im2col",
    "conv_param_count",
    "convolve2d",
    "correlate2d",
    "curve_detector",
    "dense_param_count",
    "dense_weights_per_neuron",
    "gradient_coverage",
    "im2col",
    "im2col_shapes",
    "laplacian",
    "matmul_loop",
    "max_mask",
    "output_size",
    "pool_backward_vectorised",
    "pool_forward_vectorised",
    "receptive_field_sizes",
    "relu",
    "same_pad",
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


def dense_weights_per_neuron(n_H: int, n_W: int, n_C: int) -> int:
    """Weights one fully connected neuron needs to see a whole ``n_H x n_W x n_C`` image."""
    return n_H * n_W * n_C


def dense_param_count(n_in: int, n_out: int, bias: bool = True) -> int:
    """Parameters of a dense layer with ``n_in`` inputs and ``n_out`` neurons."""
    return n_in * n_out + (n_out if bias else 0)


# ---------------------------------------------------------------------------------------
# Lecture 2: convolution
# ---------------------------------------------------------------------------------------
def output_size(n_in: int, f: int, stride: int = 1, pad: int = 0) -> int:
    """``n_out = floor((n_in + 2 * pad - f) / stride) + 1``: positions of a window of side f.

    Same argument order as :func:`cnncourse.layers.output_size`.
    """
    if f > n_in + 2 * pad:
        raise ValueError(f"a window of side {f} does not fit in {n_in} + 2*{pad} pixels")
    return (n_in + 2 * pad - f) // stride + 1


def same_pad(f: int) -> int:
    """Padding that keeps the size unchanged at stride 1 ("same"), for an odd ``f``."""
    if f % 2 == 0:
        raise ValueError("'same' padding is symmetric only for odd kernel sides")
    return (f - 1) // 2


def correlate2d(image: np.ndarray, kernel: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Single-channel cross-correlation, ``out_ij = sum_l sum_m k_lm x_(s*i+l)(s*j+m)``.

    Written with two loops over the output positions so it reads like the formula.

    Arguments:
    image -- 2-D array, shape (n_H_prev, n_W_prev)
    kernel -- 2-D array, shape (f, f)
    stride -- step between two windows
    pad -- zeros added on every side first

    Returns:
    out -- 2-D array, shape (n_H, n_W) given by :func:`output_size`
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    f = kernel.shape[0]
    if pad:
        image = np.pad(image, pad)
    n_H = output_size(image.shape[0], f, stride)
    n_W = output_size(image.shape[1], f, stride)
    out = np.zeros((n_H, n_W))
    for i in range(n_H):
        for j in range(n_W):
            window = image[i * stride : i * stride + f, j * stride : j * stride + f]
            out[i, j] = np.sum(window * kernel)
    return out


def convolve2d(image: np.ndarray, kernel: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
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


def conv_param_count(f: int, n_C_prev: int, n_C: int, bias: bool = True) -> int:
    """Parameters of a conv layer: ``n_C`` filters of ``f x f x n_C_prev`` plus one bias each.

    The count does not depend on the image size: every position shares the same filters.
    """
    return f * f * n_C_prev * n_C + (n_C if bias else 0)


def receptive_field_sizes(layers: list[tuple[int, int]]) -> list[int]:
    """Side of the input patch one unit sees after each layer of ``(f, stride)`` windows.

    Starts with 1 (a pixel sees itself). Each layer adds ``(f - 1) * jump`` where ``jump``
    is the product of the strides before it.
    """
    sizes, jump, size = [1], 1, 1
    for f, stride in layers:
        size += (f - 1) * jump
        jump *= stride
        sizes.append(size)
    return sizes


# ---------------------------------------------------------------------------------------
# Lecture 3: activations
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


# ---------------------------------------------------------------------------------------
# Lecture 5 (used by 3 and 4 too): im2col
# ---------------------------------------------------------------------------------------
def im2col_shapes(
    n_H_prev: int,
    n_W_prev: int,
    n_C_prev: int,
    f: int,
    n_C: int,
    stride: int = 1,
    pad: int = 0,
    m: int = 1,
) -> dict[str, tuple[int, ...]]:
    """Shapes of every array in an im2col convolution, without allocating anything.

    Returns a dict with ``"out"`` (n_H, n_W), ``"X_col"`` (f*f*n_C_prev, m*n_H*n_W),
    ``"W_row"`` (n_C, f*f*n_C_prev), ``"product"`` (n_C, m*n_H*n_W) and ``"Z"``
    (m, n_H, n_W, n_C).
    """
    n_H = output_size(n_H_prev, f, stride, pad)
    n_W = output_size(n_W_prev, f, stride, pad)
    patch = f * f * n_C_prev
    return {
        "out": (n_H, n_W),
        "X_col": (patch, m * n_H * n_W),
        "W_row": (n_C, patch),
        "product": (n_C, m * n_H * n_W),
        "Z": (m, n_H, n_W, n_C),
    }


def im2col(A_prev: np.ndarray, f: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Stretch every receptive field of a batch into one column.

    Arguments:
    A_prev -- batch, shape (m, n_H_prev, n_W_prev, n_C_prev)
    f, stride, pad -- window side, step and zero padding

    Returns:
    X_col -- shape (f * f * n_C_prev, m * n_H * n_W); rows are ordered like
             ``W.reshape(f * f * n_C_prev, n_C)`` (row, column, channel) and columns like
             ``(example, output row, output column)``
    """
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    n_H = output_size(n_H_prev, f, stride, pad)
    n_W = output_size(n_W_prev, f, stride, pad)
    A_pad = np.pad(A_prev, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    # A view of every f x f window (no copy), then keep one window every `stride` pixels.
    windows = np.lib.stride_tricks.sliding_window_view(A_pad, (f, f), axis=(1, 2))
    windows = windows[:, ::stride, ::stride][:, :n_H, :n_W]  # (m, n_H, n_W, C, f, f)
    # Rows (f, f, C) to match W's layout, columns (m, n_H, n_W); reshape copies once.
    return windows.transpose(4, 5, 3, 0, 1, 2).reshape(f * f * n_C_prev, m * n_H * n_W)


def col2im(
    X_col: np.ndarray, A_shape: tuple[int, int, int, int], f: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """Inverse bookkeeping of :func:`im2col`: add every column back onto its window.

    Overlapping windows *add up*, which is exactly what the gradient of im2col needs.

    Returns:
    A -- shape ``A_shape`` = (m, n_H_prev, n_W_prev, n_C_prev)
    """
    m, n_H_prev, n_W_prev, n_C_prev = A_shape
    n_H = output_size(n_H_prev, f, stride, pad)
    n_W = output_size(n_W_prev, f, stride, pad)
    cols = X_col.reshape(f, f, n_C_prev, m, n_H, n_W)
    A_pad = np.zeros((m, n_H_prev + 2 * pad, n_W_prev + 2 * pad, n_C_prev))
    # One loop over the f*f kernel offsets: for a fixed offset, the windows of different
    # output positions hit different pixels, so a strided slice can take them all at once.
    for r in range(f):
        for c in range(f):
            A_pad[:, r : r + stride * n_H : stride, c : c + stride * n_W : stride, :] += cols[
                r, c
            ].transpose(1, 2, 3, 0)
    # Slicing with an explicit end also works when pad == 0 (x[0:-0] would be empty).
    return A_pad[:, pad : pad + n_H_prev, pad : pad + n_W_prev, :]


def conv_forward_im2col(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """Convolution as one matrix product ``W_row @ X_col + b``.

    Arguments:
    A_prev -- (m, n_H_prev, n_W_prev, n_C_prev)
    W -- (f, f, n_C_prev, n_C)
    b -- (1, 1, 1, n_C)

    Returns:
    Z -- (m, n_H, n_W, n_C)
    """
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, _, _, n_C = W.shape
    n_H = output_size(n_H_prev, f, stride, pad)
    n_W = output_size(n_W_prev, f, stride, pad)
    X_col = im2col(A_prev, f, stride, pad)
    W_row = W.reshape(f * f * n_C_prev, n_C).T
    out = W_row @ X_col + np.reshape(b, (n_C, 1))  # (n_C, m * n_H * n_W)
    return out.reshape(n_C, m, n_H, n_W).transpose(1, 2, 3, 0)


def conv_backward_im2col(
    dZ: np.ndarray, A_prev: np.ndarray, W: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_forward_im2col`, vectorised.

    Arguments:
    dZ -- gradient of the cost with respect to Z, shape (m, n_H, n_W, n_C)
    A_prev -- the forward input, shape (m, n_H_prev, n_W_prev, n_C_prev)
    W -- the filters, shape (f, f, n_C_prev, n_C)

    Returns:
    dA_prev -- (m, n_H_prev, n_W_prev, n_C_prev)
    dW -- (f, f, n_C_prev, n_C)
    db -- (1, 1, 1, n_C)
    """
    f, _, n_C_prev, n_C = W.shape
    X_col = im2col(A_prev, f, stride, pad)
    dZ_row = dZ.transpose(3, 0, 1, 2).reshape(n_C, -1)  # (n_C, m * n_H * n_W)
    dW = (dZ_row @ X_col.T).T.reshape(f, f, n_C_prev, n_C)
    db = dZ_row.sum(axis=1).reshape(1, 1, 1, n_C)
    W_row = W.reshape(f * f * n_C_prev, n_C).T
    dA_prev = col2im(W_row.T @ dZ_row, A_prev.shape, f, stride, pad)
    return dA_prev, dW, db


# ---------------------------------------------------------------------------------------
# Lectures 3-4: pooling, vectorised
# ---------------------------------------------------------------------------------------
def _pool_windows(A_prev: np.ndarray, f: int, stride: int) -> np.ndarray:
    """View of the pooling windows, shape (m, n_H, n_W, n_C, f, f)."""
    n_H = output_size(A_prev.shape[1], f, stride)
    n_W = output_size(A_prev.shape[2], f, stride)
    windows = np.lib.stride_tricks.sliding_window_view(A_prev, (f, f), axis=(1, 2))
    return windows[:, ::stride, ::stride][:, :n_H, :n_W]


def pool_forward_vectorised(
    A_prev: np.ndarray, f: int, stride: int, mode: str = "max"
) -> np.ndarray:
    """Max or average pooling of ``(m, n_H_prev, n_W_prev, n_C)`` without Python loops."""
    windows = _pool_windows(A_prev, f, stride)
    if mode == "max":
        return windows.max(axis=(4, 5))
    if mode == "average":
        return windows.mean(axis=(4, 5))
    raise ValueError(f"mode must be 'max' or 'average', not {mode!r}")


def max_mask(window: np.ndarray) -> np.ndarray:
    """Boolean array, True where ``window`` holds its maximum: where max pooling's
    gradient goes (ties all receive it)."""
    return window == np.max(window)


def average_spread(value: float, shape: tuple[int, int]) -> np.ndarray:
    """``value`` shared equally over a window of ``shape``: average pooling's gradient."""
    return np.full(shape, value / (shape[0] * shape[1]))


def pool_backward_vectorised(
    dA: np.ndarray, A_prev: np.ndarray, f: int, stride: int, mode: str = "max"
) -> np.ndarray:
    """Gradient of :func:`pool_forward_vectorised` with respect to ``A_prev``.

    Arguments:
    dA -- gradient with respect to the pooled output, shape (m, n_H, n_W, n_C)
    A_prev -- the forward input, shape (m, n_H_prev, n_W_prev, n_C)

    Returns:
    dA_prev -- shape of ``A_prev``
    """
    _, n_H, n_W, _ = dA.shape
    if mode == "max":
        windows = _pool_windows(A_prev, f, stride)
        share = windows == windows.max(axis=(4, 5), keepdims=True)  # (m, n_H, n_W, C, f, f)
        share = share * dA[..., None, None]
    elif mode == "average":
        share = np.broadcast_to(dA[..., None, None] / (f * f), dA.shape + (f, f))
    else:
        raise ValueError(f"mode must be 'max' or 'average', not {mode!r}")
    dA_prev = np.zeros(A_prev.shape)
    for r in range(f):
        for c in range(f):
            dA_prev[:, r : r + stride * n_H : stride, c : c + stride * n_W : stride, :] += share[
                ..., r, c
            ]
    return dA_prev


def gradient_coverage(n_in: int, f: int, stride: int) -> np.ndarray:
    """How many windows of side ``f`` (step ``stride``) cover each pixel of an n_in x n_in
    image: the gradient ``dA`` a pixel receives when ``W`` and ``dZ`` are all ones.

    Pixels that no window reaches (possible when ``stride > f`` or at the far border) get 0.
    """
    n_out = output_size(n_in, f, stride)
    counts = np.zeros((n_in, n_in), dtype=np.int64)
    for i in range(n_out):
        for j in range(n_out):
            counts[i * stride : i * stride + f, j * stride : j * stride + f] += 1
    return counts
