"""Reference forward layers of the course, written with plain loops in numpy.

Assignment 1 asks students to write these; assignment 2 (the backward pass) gives them
here so nobody has to redo assignment 1. They are written to be read, not to be fast:
one Python loop per output position, exactly like the formulas in the lectures.

Conventions (channels last, as in Keras):

* activations ``A`` are ``(m, n_H, n_W, n_C)``;
* conv weights ``W`` are ``(f, f, n_C_prev, n_C)`` and biases ``b`` are ``(1, 1, 1, n_C)``;
* "convolution" is cross-correlation (the kernel is not flipped);
* output sizes follow ``n_out = floor((n_in + 2 * pad - f) / stride) + 1``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv_forward", "output_size", "pool_forward", "zero_pad"]


def output_size(n_in: int, f: int, stride: int = 1, pad: int = 0) -> int:
    """Number of positions a window of side ``f`` takes along an axis of length ``n_in``."""
    return (n_in + 2 * pad - f) // stride + 1


def zero_pad(X: np.ndarray, pad: int) -> np.ndarray:
    """Surround every image of a batch with ``pad`` rows and columns of zeros.

    Arguments:
    X -- batch of images, shape (m, n_H, n_W, n_C)
    pad -- number of zeros added on each side of the height and width axes

    Returns:
    X_pad -- padded batch, shape (m, n_H + 2 * pad, n_W + 2 * pad, n_C)
    """
    # Only the two spatial axes are padded: the batch and channel axes keep their size.
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)


def conv_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a convolution layer (cross-correlation plus bias).

    Arguments:
    A_prev -- activations of the previous layer, shape (m, n_H_prev, n_W_prev, n_C_prev)
    W -- filters, shape (f, f, n_C_prev, n_C)
    b -- biases, shape (1, 1, 1, n_C)
    hparameters -- dict with the integers "stride" and "pad"

    Returns:
    Z -- pre-activations, shape (m, n_H, n_W, n_C)
    cache -- (A_prev, W, b, hparameters), what conv_backward needs
    """
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, f_w, n_C_prev_w, n_C = W.shape
    if f != f_w or n_C_prev != n_C_prev_w:
        raise ValueError(f"W of shape {W.shape} does not fit A_prev of shape {A_prev.shape}")
    stride = hparameters["stride"]
    pad = hparameters["pad"]

    n_H = output_size(n_H_prev, f, stride, pad)
    n_W = output_size(n_W_prev, f, stride, pad)
    Z = np.zeros((m, n_H, n_W, n_C))
    A_prev_pad = zero_pad(A_prev, pad)

    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        for h in range(n_H):
            # The window of output row h starts `stride` input rows further than row h - 1.
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):
                    # One number per filter: the sum of the element-wise product, plus the
                    # bias added once (not inside the product, which would add it f*f*C times).
                    Z[i, h, w, c] = np.sum(a_slice * W[:, :, :, c]) + b[0, 0, 0, c]

    cache = (A_prev, W, b, hparameters)
    return Z, cache


def pool_forward(
    A_prev: np.ndarray, hparameters: dict, mode: str = "max"
) -> tuple[np.ndarray, tuple]:
    """Forward pass of a pooling layer (no padding), channel by channel.

    Arguments:
    A_prev -- input, shape (m, n_H_prev, n_W_prev, n_C)
    hparameters -- dict with the integers "f" (window side) and "stride"
    mode -- "max" or "average"

    Returns:
    A -- output, shape (m, n_H, n_W, n_C)
    cache -- (A_prev, hparameters), what pool_backward needs
    """
    if mode not in ("max", "average"):
        raise ValueError(f"mode must be 'max' or 'average', not {mode!r}")
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f = hparameters["f"]
    stride = hparameters["stride"]
    n_H = output_size(n_H_prev, f, stride)
    n_W = output_size(n_W_prev, f, stride)
    A = np.zeros((m, n_H, n_W, n_C))

    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                for c in range(n_C):
                    window = A_prev[i, vert_start:vert_end, horiz_start:horiz_end, c]
                    A[i, h, w, c] = np.max(window) if mode == "max" else np.mean(window)

    cache = (A_prev, hparameters)
    return A, cache


def given_namespace() -> dict:
    """The names assignment 2's notebooks give students before their own code runs
    (numpy, stride tricks and the forward layers above): for running the reference
    solutions outside a notebook, e.g. in tests and benchmarks."""
    from numpy.lib.stride_tricks import as_strided, sliding_window_view

    return {
        "np": np,
        "as_strided": as_strided,
        "sliding_window_view": sliding_window_view,
        "conv_forward": conv_forward,
        "pool_forward": pool_forward,
        "zero_pad": zero_pad,
    }
