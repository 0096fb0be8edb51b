"""Reference computations for assignment 6's checks (batch normalization, residual blocks).

Conventions of the assignment: activations ``X`` are ``(m, n_H, n_W, n_C)`` (channels last),
convolution weights ``(f, f, n_C_prev, n_C)``, ``gamma`` and ``beta`` ``(n_C,)``. A residual
block's ``params`` hold ``W1 (3, 3, n_C_prev, n_C)``, ``gamma1``, ``beta1``, ``W2 (3, 3, n_C,
n_C)``, ``gamma2``, ``beta2`` and, for a projection shortcut, ``W_proj (1, 1, n_C_prev, n_C)``,
``gamma_proj``, ``beta_proj``. The block is::

    conv 3x3 (stride s, pad 1) -> BN -> ReLU -> conv 3x3 (stride 1, pad 1) -> BN
        -> + shortcut(X) -> ReLU

with the shortcut ``X`` itself (identity) or ``BN(conv 1x1 (stride s, pad 0)(X))``
(projection, used exactly when ``params`` has ``W_proj``); every BN uses the batch's
statistics (training mode) and ``eps``; the convolutions have no bias.

Two independent references:

* :func:`block_torch` - PyTorch's ``conv2d`` and ``batch_norm`` in float64 (autograd gives the
  gradients); its keyword arguments reproduce known mistakes (the mutants of the
  misconceptions in :mod:`cnncourse.checks.modern_mistakes`);
* :func:`block_numpy` - plain numpy (the forward pass of the gradient checks, which trust no
  framework).
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .numpy_backward import _conv_numpy

EPS = 1e-5
MOMENTUM = 0.9
BN_AXES = (0, 1, 2)  # NHWC: a channel's statistics pool the examples and every position
PARAM_ORDER = (
    "W1",
    "gamma1",
    "beta1",
    "W2",
    "gamma2",
    "beta2",
    "W_proj",
    "gamma_proj",
    "beta_proj",
)


def param_names(params: dict) -> list[str]:
    """The keys of a block's params, in the assignment's order."""
    return [k for k in PARAM_ORDER if k in params]


# ------------------------------------------------------------------- batch normalization


def bn_forward(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running: dict,
    training: bool,
    momentum: float = MOMENTUM,
    eps: float = EPS,
    *,
    ddof: int = 0,
    axes: tuple[int, ...] = BN_AXES,
    swap_momentum: bool = False,
    eps_outside: bool = False,
    batch_stats_at_inference: bool = False,
):
    """The batch normalization the assignment asks for, as ``(out, new_running, cache)``.

    Training: the batch mean and (biased) variance per channel normalise ``X``; the running
    averages become ``momentum * running + (1 - momentum) * batch``. Inference: the running
    averages normalise ``X`` and stay as they are. ``cache = (X, X_hat, mean, var, gamma,
    eps)`` in training, None at inference. The keyword-only arguments reproduce mistakes.
    """
    use_batch = training or batch_stats_at_inference
    if use_batch:
        mean = X.mean(axis=axes)
        var = X.var(axis=axes, ddof=ddof)
    else:
        mean, var = np.asarray(running["mean"]), np.asarray(running["var"])
    std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    X_hat = (X - mean) / std
    out = gamma * X_hat + beta
    if training:
        keep = 1 - momentum if swap_momentum else momentum
        new = {
            "mean": keep * running["mean"] + (1 - keep) * mean,
            "var": keep * running["var"] + (1 - keep) * var,
        }
        cache = (X, X_hat, mean, var, gamma, eps)
    else:
        new = {"mean": np.array(running["mean"], copy=True), "var": np.array(running["var"])}
        cache = None
    return out, new, cache


def bn_backward(dout: np.ndarray, cache: tuple, *, no_mean_terms: bool = False):
    """``(dX, dgamma, dbeta)`` of training-mode batch normalization (the compact formula);
    ``no_mean_terms`` treats the batch mean and variance as constants (a known mistake)."""
    X, X_hat, mean, var, gamma, eps = cache
    n = X.size // X.shape[-1]
    inv_std = 1.0 / np.sqrt(var + eps)
    dbeta = dout.sum(axis=BN_AXES)
    dgamma = (dout * X_hat).sum(axis=BN_AXES)
    dX_hat = dout * gamma
    if no_mean_terms:
        return dX_hat * inv_std, dgamma, dbeta
    dX = (
        inv_std
        / n
        * (n * dX_hat - dX_hat.sum(axis=BN_AXES) - X_hat * (dX_hat * X_hat).sum(axis=BN_AXES))
    )
    return dX, dgamma, dbeta


def bn_backward_torch(dout: np.ndarray, X: np.ndarray, gamma: np.ndarray, beta, eps: float):
    """``(dX, dgamma, dbeta)`` by PyTorch's autograd of ``batch_norm`` (training, float64)."""
    import torch

    x = torch.tensor(_nchw(X), requires_grad=True)
    g = torch.tensor(np.asarray(gamma, dtype=np.float64), requires_grad=True)
    b = torch.tensor(np.asarray(beta, dtype=np.float64), requires_grad=True)
    y = torch.nn.functional.batch_norm(x, None, None, g, b, training=True, eps=eps)
    y.backward(torch.from_numpy(_nchw(dout)))
    assert x.grad is not None and g.grad is not None and b.grad is not None  # leaves, backward ran
    return _nhwc(x.grad.numpy()), g.grad.numpy().copy(), b.grad.numpy().copy()


def _nchw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)), dtype=np.float64)


def _nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))


# ------------------------------------------------------------------------ residual block


def block_torch(
    X: np.ndarray,
    params: dict,
    stride: int,
    dout: np.ndarray | None = None,
    *,
    eps: float = EPS,
    same_padding: bool = False,
    eval_mode: bool = False,
    reshaped_weights: bool = False,
    relu_before_add: bool = False,
    no_shortcut_gradient: bool = False,
):
    """The block's output ``(m, n_H, n_W, n_C)`` by PyTorch in float64; with ``dout`` also
    the gradients ``{"X": dX, <param>: d<param>}`` (autograd).

    Mistakes it can reproduce: ``eps`` (Keras' default 1e-3), ``same_padding`` (Keras'
    ``padding="same"`` with stride 2 pads one row and column at the bottom and right only),
    ``eval_mode`` (a PyTorch module left in ``eval()``: fresh running averages 0 and 1
    normalise), ``reshaped_weights`` (``W.reshape(n_C, n_C_prev, f, f)`` instead of a
    transpose), ``relu_before_add`` (the body's output goes through the ReLU before the
    shortcut is added), ``no_shortcut_gradient`` (the gradient skips the shortcut path).
    """
    import torch

    F = torch.nn.functional
    x = torch.tensor(_nchw(X), requires_grad=dout is not None)
    leaves = {}
    for key in param_names(params):
        value = np.asarray(params[key], dtype=np.float64)
        if key.startswith("W"):
            if reshaped_weights:
                f, _, c_in, c_out = value.shape
                value = value.reshape(c_out, c_in, f, f)
            else:
                value = np.transpose(value, (3, 2, 0, 1))
        leaves[key] = torch.tensor(np.ascontiguousarray(value), requires_grad=dout is not None)

    def bn(t, suffix):
        g, b = leaves[f"gamma{suffix}"], leaves[f"beta{suffix}"]
        if eval_mode:
            zeros = torch.zeros(t.shape[1], dtype=t.dtype)
            ones = torch.ones(t.shape[1], dtype=t.dtype)
            return F.batch_norm(t, zeros, ones, g, b, training=False, eps=eps)
        return F.batch_norm(t, None, None, g, b, training=True, eps=eps)

    def conv3(t, w, s):
        if same_padding and s > 1:
            h, w_ = t.shape[2], t.shape[3]
            pad_h = max((-(-h // s) - 1) * s + 3 - h, 0)
            pad_w = max((-(-w_ // s) - 1) * s + 3 - w_, 0)
            t = F.pad(t, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
            return F.conv2d(t, w, stride=s)
        return F.conv2d(t, w, stride=s, padding=1)

    h = F.relu(bn(conv3(x, leaves["W1"], stride), "1"))
    body = bn(conv3(h, leaves["W2"], 1), "2")
    shortcut_input = x.detach() if no_shortcut_gradient else x
    if "W_proj" in leaves:
        shortcut = bn(F.conv2d(shortcut_input, leaves["W_proj"], stride=stride), "_proj")
    else:
        shortcut = shortcut_input
    if relu_before_add:
        body = F.relu(body)
    out = F.relu(body + shortcut)
    result = _nhwc(out.detach().numpy())
    if dout is None:
        return result
    out.backward(torch.from_numpy(_nchw(dout)))
    assert x.grad is not None  # a leaf that requires grad, after backward
    grads = {"X": _nhwc(x.grad.numpy())}
    for key, leaf in leaves.items():
        assert leaf.grad is not None
        g = leaf.grad.numpy()
        if reshaped_weights and key.startswith("W"):
            g = g.reshape(np.shape(params[key]))
        elif key.startswith("W"):
            g = np.transpose(g, (2, 3, 1, 0))
        grads[key] = np.ascontiguousarray(g)
    return result, grads


def _bn_numpy(t: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = EPS) -> np.ndarray:
    mean = t.mean(axis=BN_AXES)
    var = t.var(axis=BN_AXES)
    return gamma * (t - mean) / np.sqrt(var + eps) + beta


def block_numpy(X: np.ndarray, params: dict, stride: int, eps: float = EPS) -> np.ndarray:
    """The block's forward pass in plain numpy (float64), for centred differences."""
    zeros = np.zeros((1, 1, 1, np.shape(params["W1"])[-1]))
    h = _conv_numpy(X, params["W1"], zeros, stride, 1)
    h = np.maximum(_bn_numpy(h, params["gamma1"], params["beta1"], eps), 0.0)
    body = _bn_numpy(
        _conv_numpy(h, params["W2"], zeros, 1, 1), params["gamma2"], params["beta2"], eps
    )
    if "W_proj" in params:
        shortcut = _bn_numpy(
            _conv_numpy(X, params["W_proj"], zeros, stride, 0),
            params["gamma_proj"],
            params["beta_proj"],
            eps,
        )
    else:
        shortcut = X
    return np.maximum(body + shortcut, 0.0)


def centred_block_gradients(X, params: dict, stride: int, dout, eps: float = 1e-6) -> dict:
    """Centred differences of ``sum(block_numpy(X, params, stride) * dout)`` with respect to
    ``X`` and every parameter: ``{"X": ..., <param>: ...}``."""
    from .numpy_backward import centred_differences

    work = {k: np.array(params[k], dtype=np.float64, copy=True) for k in param_names(params)}
    x = np.array(X, dtype=np.float64, copy=True)
    keys = ["X", *work]
    arrays = [x, *work.values()]
    grads = centred_differences(
        lambda: float(np.sum(block_numpy(x, work, stride) * dout)), arrays, eps
    )
    return dict(zip(keys, grads, strict=True))
