"""Reference layers computed by PyTorch, in the course's channels-last layout.

Hidden tests compare students' numpy layers with these on random shapes. Arrays follow
the assignments' conventions:

* activations ``A`` are ``(m, n_H, n_W, n_C)`` (channels last);
* conv weights ``W`` are ``(f, f, n_C_prev, n_C)`` and biases ``b`` are ``(1, 1, 1, n_C)``.

Everything runs in float64 so differences are due to the student, not to rounding.
"""

from __future__ import annotations

import numpy as np


def _torch():
    import torch  # imported lazily: it costs about a second

    return torch


def _to_nchw(a: np.ndarray):
    torch = _torch()
    return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)), dtype=np.float64))


def _from_nchw(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy().transpose(0, 2, 3, 1))


def _weights(W: np.ndarray, b: np.ndarray):
    torch = _torch()
    w = torch.from_numpy(np.ascontiguousarray(np.transpose(W, (3, 2, 0, 1)), dtype=np.float64))
    bias = torch.from_numpy(np.asarray(b, dtype=np.float64).reshape(-1).copy())
    return w, bias


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: int):
    """Z of a convolution (cross-correlation), shape ``(m, n_H, n_W, n_C)``."""
    torch = _torch()
    w, bias = _weights(W, b)
    z = torch.nn.functional.conv2d(_to_nchw(A_prev), w, bias, stride=stride, padding=pad)
    return _from_nchw(z)


def pool_forward(A_prev: np.ndarray, f: int, stride: int, mode: str = "max") -> np.ndarray:
    """Max or average pooling without padding, shape ``(m, n_H, n_W, n_C)``."""
    torch = _torch()
    x = _to_nchw(A_prev)
    if mode == "max":
        out = torch.nn.functional.max_pool2d(x, kernel_size=f, stride=stride)
    elif mode == "average":
        out = torch.nn.functional.avg_pool2d(x, kernel_size=f, stride=stride)
    else:
        raise ValueError(f"mode must be 'max' or 'average', not {mode!r}")
    return _from_nchw(out)


def conv_backward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int, pad: int, dZ: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dA_prev, dW, db)`` of a convolution by autograd, in the course's layouts."""
    torch = _torch()
    x = _to_nchw(A_prev).requires_grad_(True)
    w, bias = _weights(W, b)
    w.requires_grad_(True)
    bias.requires_grad_(True)
    z = torch.nn.functional.conv2d(x, w, bias, stride=stride, padding=pad)
    z.backward(_to_nchw(dZ))
    dA_prev = _from_nchw(x.grad)
    dW = np.ascontiguousarray(w.grad.numpy().transpose(2, 3, 1, 0))
    db = bias.grad.numpy().reshape(1, 1, 1, -1).copy()
    return dA_prev, dW, db


def pool_backward(
    A_prev: np.ndarray, f: int, stride: int, dA: np.ndarray, mode: str = "max"
) -> np.ndarray:
    """``dA_prev`` of max or average pooling by autograd.

    For max pooling PyTorch sends the gradient of a window to the *first* maximum in
    row-major order when several entries tie.
    """
    torch = _torch()
    x = _to_nchw(A_prev).requires_grad_(True)
    if mode == "max":
        out = torch.nn.functional.max_pool2d(x, kernel_size=f, stride=stride)
    elif mode == "average":
        out = torch.nn.functional.avg_pool2d(x, kernel_size=f, stride=stride)
    else:
        raise ValueError(f"mode must be 'max' or 'average', not {mode!r}")
    out.backward(_to_nchw(dA))
    return _from_nchw(x.grad)
