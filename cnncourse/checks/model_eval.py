"""Run a student's trained weights with the checks' own code: the accuracy is data, not a fact.

The kernel hands over what the student's training produced as plain data, never a
prediction: a Keras model's JSON config and its weights (``get_weights()`` order), a PyTorch
module's ``state_dict`` arrays, or the capstone's parameter dict. This module rebuilds the
network from that data in numpy (float64), checks that every weight has the shape the
layers need, and computes the outputs for digits of its own choosing (the grader's held-out
digits, which are not in the grading sandbox). A lookup table of answers cannot pass; a
trained network does.

Only channels-last Keras layers are read (the course's layout), from the layer table that
:func:`cnncourse.grading_models.layer_table_from_config` computes from the config alone.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..layer_spec import LayerSpec

BATCH = 250  # images per forward pass (bounds the memory of the window views)


class WeightsError(ValueError):
    """The weights do not fit the layers (message for the student)."""


def _activation(name: object) -> Callable[[np.ndarray], np.ndarray]:
    if name in (None, "linear"):
        return lambda a: a
    if name == "relu":
        return lambda a: np.maximum(a, 0.0)
    if name == "softmax":

        def softmax(a: np.ndarray) -> np.ndarray:
            e = np.exp(a - a.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)

        return softmax
    if name == "sigmoid":
        return lambda a: 1.0 / (1.0 + np.exp(-a))
    if name == "tanh":
        return np.tanh
    raise WeightsError(f"the activation {name!r} is not one the checks can run")


def _pair(value: object) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = cast(tuple[int, int], value)
    return int(first), int(second)


def _same_pads(n: int, f: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras' 'same' padding along one axis: (before, after)."""
    out = -(-n // stride)
    total = max((out - 1) * stride + (f - 1) * dilation + 1 - n, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, c: dict, fill: float) -> np.ndarray:
    """Windows (m, oh, ow, C, kh, kw) of a channels-last ``x`` for a conv or pool config."""
    kh, kw = _pair(c.get("kernel_size", c.get("pool_size")))
    sh, sw = _pair(c.get("strides") or c.get("pool_size"))
    dh, dw = _pair(c.get("dilation_rate", 1))
    if c.get("padding", "valid") == "same":
        (t, b), (left, r) = _same_pads(x.shape[1], kh, sh, dh), _same_pads(x.shape[2], kw, sw, dw)
        x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=fill)
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = sliding_window_view(x, (eh, ew), axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
    return win


def _layer(kind: str, c: dict, weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    if kind == "Conv2D":
        kernel = weights[0]
        out = np.einsum("mhwcij,ijcf->mhwf", _windows(x, c, 0.0), kernel, optimize=True)
        if len(weights) > 1:
            out = out + weights[1]
        return _activation(c.get("activation"))(out)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        if kind == "MaxPooling2D":
            return _windows(x, c, -np.inf).max(axis=(-2, -1))
        if c.get("padding", "valid") == "same":  # Keras averages over the real entries only
            ones = _windows(np.ones_like(x[:1, ..., :1]), c, 0.0).sum(axis=(-2, -1))
            return _windows(x, c, 0.0).sum(axis=(-2, -1)) / ones
        return _windows(x, c, 0.0).mean(axis=(-2, -1))
    if kind == "GlobalAveragePooling2D":
        out = x.mean(axis=(1, 2), keepdims=bool(c.get("keepdims")))
        return out
    if kind == "GlobalMaxPooling2D":
        return x.max(axis=(1, 2), keepdims=bool(c.get("keepdims")))
    if kind == "Flatten":
        return x.reshape(len(x), -1)  # channels last: (row, column, channel) order
    if kind == "Reshape":
        return x.reshape((len(x), *[int(d) for d in c["target_shape"]]))
    if kind == "Dense":
        out = x @ weights[0]
        if len(weights) > 1:
            out = out + weights[1]
        return _activation(c.get("activation"))(out)
    if kind == "Cropping2D":
        crop = c["cropping"]
        if isinstance(crop, int):
            (t, b), (left, r) = (crop, crop), (crop, crop)
        elif isinstance(crop[0], int):
            (t, b), (left, r) = (crop[0], crop[0]), (crop[1], crop[1])
        else:
            (t, b), (left, r) = crop
        return x[:, t : x.shape[1] - b, left : x.shape[2] - r, :]
    if kind == "ZeroPadding2D":
        pad = c["padding"]
        if isinstance(pad, int):
            (t, b), (left, r) = (pad, pad), (pad, pad)
        elif isinstance(pad[0], int):
            (t, b), (left, r) = (pad[0], pad[0]), (pad[1], pad[1])
        else:
            (t, b), (left, r) = pad
        return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    if kind == "UpSampling2D":
        a, b = _pair(c["size"])
        return x.repeat(a, axis=1).repeat(b, axis=2)
    if kind in ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout"):
        return x  # inference
    if kind in ("AlphaDropout", "Identity"):
        return x
    if kind == "Activation":
        return _activation(c.get("activation"))(x)
    if kind == "ReLU":
        return np.maximum(x, 0.0)
    if kind == "Softmax":
        return _activation("softmax")(x)
    if kind == "Rescaling":
        return x * float(c.get("scale", 1.0)) + float(c.get("offset", 0.0))
    if kind == "BatchNormalization":
        names = (["gamma"] if c.get("scale", True) else []) + (
            ["beta"] if c.get("center", True) else []
        )
        values = dict(zip(names + ["mean", "variance"], weights, strict=True))
        out = (x - values["mean"]) / np.sqrt(values["variance"] + float(c.get("epsilon", 1e-3)))
        return out * values.get("gamma", 1.0) + values.get("beta", 0.0)
    raise WeightsError(f"{kind} is not a layer the checks can run")


def _expected_shapes(spec: LayerSpec, n_in: int) -> list[tuple[int, ...]]:
    """The shapes of one layer's weights, in get_weights() order."""
    c = dict(spec.config)
    if spec.kind == "Conv2D":
        kh, kw = _pair(c["kernel_size"])
        filters = int(c["filters"])
        shapes = [(kh, kw, n_in, filters)]
        return shapes + ([(filters,)] if c.get("use_bias", True) else [])
    if spec.kind == "Dense":
        units = int(c["units"])
        return [(n_in, units)] + ([(units,)] if c.get("use_bias", True) else [])
    if spec.kind == "BatchNormalization":
        n = int(spec.output_shape[-1]) if spec.output_shape else 0
        count = int(bool(c.get("scale", True))) + int(bool(c.get("center", True))) + 2
        return [(n,)] * count
    return []


def split_weights(
    table: Sequence[LayerSpec], input_shape: tuple[int, ...], weights: Sequence
) -> list[list[np.ndarray]]:
    """The flat ``get_weights()`` list cut into each layer's weights, every shape checked.

    Raises :class:`WeightsError` naming the first layer whose weights do not fit.
    """
    arrays = [w for w in weights]
    if not all(type(w) is np.ndarray and w.dtype.kind == "f" for w in arrays):
        raise WeightsError("the weights are not all floating-point arrays")
    out: list[list[np.ndarray]] = []
    position, n_in = 0, input_shape[-1]
    for i, spec in enumerate(table):
        shapes = _expected_shapes(spec, n_in)
        mine = arrays[position : position + len(shapes)]
        if [tuple(w.shape) for w in mine] != shapes:
            got = [tuple(w.shape) for w in mine]
            raise WeightsError(
                f"layer {i} ({spec.kind}) needs weights of shapes {shapes}, the model holds {got}"
            )
        out.append([np.asarray(w, dtype=np.float64) for w in mine])
        position += len(shapes)
        if spec.output_shape:
            n_in = spec.output_shape[-1]
    if position != len(arrays):
        raise WeightsError(
            f"the model holds {len(arrays)} weight arrays, its layers use {position}"
        )
    return out


def keras_outputs(
    table: Sequence[LayerSpec], input_shape: tuple[int, ...], weights: Sequence, x: np.ndarray
) -> np.ndarray:
    """The model's outputs for channels-last images ``x`` (m, n_H, n_W, n_C), float64."""
    per_layer = split_weights(table, input_shape, weights)
    outputs = []
    for start in range(0, len(x), BATCH):
        a = np.asarray(x[start : start + BATCH], dtype=np.float64)
        for spec, layer_weights in zip(table, per_layer, strict=True):
            a = _layer(spec.kind, dict(spec.config), layer_weights, a)
        outputs.append(a.reshape(len(a), -1))
    return np.concatenate(outputs, axis=0)


def probe_images(shape: tuple[int, ...], n: int = 3, seed: int = 20261206) -> np.ndarray:
    """A few random images (float32 in [0, 1]) on which a model's own outputs are compared
    with what its config and weights compute."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def described_differently(got: dict, table, input_shape, probe: np.ndarray) -> str | None:
    """Why the model's own outputs for ``probe`` differ from what its config and weights
    compute (run here), or None when they agree. A model whose ``to_json`` or
    ``get_weights`` describe another network than the one it runs fails here."""
    if got.get("outputs_error"):
        return (
            f"the model does not run on images of shape {probe.shape[1:]}: {got['outputs_error']}"
        )
    outputs, weights = got.get("outputs"), got.get("weights")
    if type(outputs) is not np.ndarray or type(weights) is not list:
        return "the model's outputs or weights are missing"
    try:
        expected = keras_outputs(table, input_shape, weights, probe)
    except WeightsError as exc:
        return str(exc)
    mine = outputs.reshape(len(outputs), -1) if outputs.ndim > 1 else outputs
    if mine.shape != expected.shape or not np.allclose(mine, expected, rtol=1e-3, atol=1e-4):
        return (
            "the model does not compute what its configuration and weights describe "
            "(to_json() and get_weights() describe another network): build it from "
            "keras.layers with keras.Sequential and do not override its methods"
        )
    return None


def capstone_logits(params: dict, x: np.ndarray) -> np.ndarray:
    """The capstone network's logits (conv 'valid' stride 1 -> ReLU -> 2x2 max pool ->
    flatten channels last -> dense) for images ``x`` (m, n_H, n_W, n_C), float64."""
    W1, b1 = np.asarray(params["W1"], np.float64), np.asarray(params["b1"], np.float64)
    W2, b2 = np.asarray(params["W2"], np.float64), np.asarray(params["b2"], np.float64)
    f = W1.shape[0]
    conv = {"kernel_size": (f, f), "strides": (1, 1), "padding": "valid"}
    pool = {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    outputs = []
    for start in range(0, len(x), BATCH):
        a = np.asarray(x[start : start + BATCH], dtype=np.float64)
        z = np.einsum("mhwcij,ijcf->mhwf", _windows(a, conv, 0.0), W1, optimize=True)
        p = _windows(np.maximum(z + b1.reshape(-1), 0.0), pool, -np.inf).max(axis=(-2, -1))
        outputs.append(p.reshape(len(p), -1) @ W2 + b2.reshape(-1))
    return np.concatenate(outputs, axis=0)
