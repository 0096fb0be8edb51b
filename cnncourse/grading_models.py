"""Checks of whole models, used by the checks of assignments 3-5 (Keras and PyTorch).

A model is compared with the *full* ordered list of the layers it should have: a model with
a missing or an extra layer fails (the lists are never zipped and cut at the shorter one),
and the first line of the message names the first layer that differs and how. Every check
raises :class:`cnncourse.testing.CheckError` with a message for the student.

* :func:`layer_table_from_config` - what a Keras model is made of (kind, output shape,
  parameters, settings), computed from its JSON config alone: nothing is built and no
  framework is imported (how :mod:`cnncourse.checks.keras_models` looks at a student's model,
  in the notebook and in the autograder's own process);
* :func:`keras_layer_table` - the same table read from a built Keras model;
* :func:`check_layer_table` - layer kinds and order, settings, output shapes, parameters;
* :func:`predict_batched`, :func:`evaluate_accuracy` - batched outputs and accuracy of a
  Keras model or a PyTorch module.

Keras and PyTorch are imported lazily, so that a notebook that uses only one of them does not
pay for the other.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import numpy as np

from .layer_spec import LayerSpec
from .testing import CheckError

KERAS_PARTS = ("types", "config", "shapes", "params")


def _fail(message: str) -> NoReturn:
    raise CheckError(message)


def _as_tuple(value: Any) -> Any:
    """Lists (from a layer config) become tuples, recursively, so they compare with ``==``."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


def _is_keras_model(model: object) -> bool:
    try:
        import keras
    except ImportError:  # pragma: no cover - keras is a course dependency
        return False
    return isinstance(model, keras.Model)


def _is_torch_module(model: object) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def keras_layer_table(model: Any) -> list[LayerSpec]:
    """The layers of a built Keras model, in order, without the ``InputLayer``.

    Each entry holds the class name, the output shape (no batch dimension), the number of
    parameters and the whole layer config (lists turned into tuples).
    """
    if not _is_keras_model(model):
        _fail(f"expected a keras.Model (e.g. keras.Sequential), got {type(model).__name__}")
    table = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        try:
            shape = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError) as exc:
            raise CheckError(
                f"layer {layer.name} ({kind}) has no output shape yet: start the model with "
                "keras.Input((28, 28, 1)) so that Keras builds every layer"
            ) from exc
        shape = tuple(None if d is None else int(d) for d in shape)
        config = {k: _as_tuple(v) for k, v in layer.get_config().items()}
        table.append(LayerSpec(kind, shape, int(layer.count_params()), config))
    return table


def describe_layers(layers: Sequence[LayerSpec]) -> str:
    """A short multi-line listing ``index kind output_shape params``."""
    lines = []
    for i, spec in enumerate(layers):
        shape = "?" if spec.output_shape is None else str(spec.output_shape)
        params = "?" if spec.params is None else f"{spec.params:,}"
        lines.append(f"  {i:2d} {spec.kind:<16} {shape:<18} {params}")
    return "\n".join(lines)


def _count_difference(actual: Sequence[str], expected: Sequence[str]) -> str:
    have, want = Counter(actual), Counter(expected)
    missing = want - have
    extra = have - want
    parts = []
    if missing:
        parts.append("missing " + ", ".join(f"{n} x {k}" for k, n in sorted(missing.items())))
    if extra:
        parts.append("extra " + ", ".join(f"{n} x {k}" for k, n in sorted(extra.items())))
    return "; ".join(parts) if parts else "same layers, different order"


def first_kind_difference(actual: Sequence[str], expected: Sequence[str]) -> str | None:
    """The first layer whose kind differs, and how, in words; ``None`` when the lists agree.

    ``"layer 2 is Conv2D, expected Dropout (missing 2 x Dropout)"``; a model that stops early
    reads ``"layer 7 is missing, expected Dense (...)"`` and one that goes on ``"layer 8 is
    Dense, expected no more layers (...)"``. Layers are counted from 0, without the input.
    """
    actual, expected = list(actual), list(expected)
    if actual == expected:
        return None
    i = next(
        i
        for i in range(max(len(actual), len(expected)))
        if i >= len(actual) or i >= len(expected) or actual[i] != expected[i]
    )
    how = _count_difference(actual, expected)
    if i >= len(actual):
        return f"layer {i} is missing, expected {expected[i]} ({how})"
    if i >= len(expected):
        return f"layer {i} is {actual[i]}, expected no more layers ({how})"
    return f"layer {i} is {actual[i]}, expected {expected[i]} ({how})"


def check_layer_kinds(actual: Sequence[str], expected: Sequence[str], what: str = "model") -> None:
    """The whole ordered list of layer kinds must equal ``expected`` (counts included).

    The message's first line names the first layer that differs and how
    (:func:`first_kind_difference`); the next ones give both counts and both lists.
    """
    actual, expected = list(actual), list(expected)
    difference = first_kind_difference(actual, expected)
    if difference is not None:
        _fail(
            f"{difference}.\nthe {what} has {len(actual)} layers, expected {len(expected)}"
            f"\n  got:      {actual}\n  expected: {expected}"
        )


def check_layer_table(
    actual: Sequence[LayerSpec],
    expected_layers: Sequence[LayerSpec],
    parts: Iterable[str] = KERAS_PARTS,
    total_params: int | None = None,
    got_total: int | None = None,
) -> None:
    """Compare a model's layer table (:func:`keras_layer_table`, or
    :func:`layer_table_from_config`) with the expected layers, in order.

    ``parts`` chooses what is compared (so that each can be its own test cell):

    * ``"types"`` - the full ordered list of layer kinds (a missing or extra layer fails);
    * ``"config"`` - the settings named in each ``LayerSpec.config``;
    * ``"shapes"`` - every layer's output shape;
    * ``"params"`` - the model's total (``total_params``, default: the sum over
      ``expected_layers``; ``got_total``, default: the sum over ``actual``) and the ordered
      list of the layers that hold weights with their counts (layers without weights, such
      as Dropout, are left to ``"types"``).

    Settings and shapes are only compared once the list of kinds matches, so a missing
    layer is reported as such and not as a cascade of shape errors. The first line of a
    failure names the first layer that differs and how.
    """
    parts = tuple(parts)
    unknown = set(parts) - set(KERAS_PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {KERAS_PARTS}")
    actual = list(actual)
    expected = list(expected_layers)
    listing = f"\nyour model:\n{describe_layers(actual)}\nexpected:\n{describe_layers(expected)}"
    if "params" in parts:
        want_total = (
            total_params if total_params is not None else sum(spec.params or 0 for spec in expected)
        )
        if got_total is None:
            got_total = sum(spec.params or 0 for spec in actual)
        # The layers that hold weights, in order: same counts, same kinds (a layer without
        # weights, e.g. Dropout, does not change them; the "types" part checks those).
        got_weighted = [(s.kind, s.params) for s in actual if s.params]
        want_weighted = [(s.kind, s.params) for s in expected if s.params]
        if got_total != want_total or got_weighted != want_weighted:
            where = _first_params_difference(actual, expected)
            head = (
                f"the model has {got_total:,} parameters, expected {want_total:,}"
                if got_total != want_total
                else "the layers with weights differ"
            )
            _fail(
                f"{head}: {where}.\nthe layers with weights have (kind, parameters) "
                f"{got_weighted},\n  expected {want_weighted}{listing}"
            )
    if not set(parts) & {"types", "config", "shapes"}:
        return
    try:
        check_layer_kinds([s.kind for s in actual], [s.kind for s in expected])
    except CheckError as exc:
        raise CheckError(f"{exc}{listing}") from None
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if "config" in parts:
            for key, value in want.config.items():
                have = got.config.get(key, "<not set>")
                if _as_tuple(have) != _as_tuple(value):
                    _fail(f"layer {i} ({got.kind}) has {key}={have!r}, expected {value!r}")
        if "shapes" in parts and want.output_shape is not None:
            if tuple(got.output_shape or ()) != tuple(want.output_shape):
                _fail(
                    f"layer {i} ({got.kind}) outputs shape {got.output_shape}, "
                    f"expected {tuple(want.output_shape)}{listing}"
                )


def _first_params_difference(actual: Sequence[LayerSpec], expected: Sequence[LayerSpec]) -> str:
    """Where the parameter counts part: the first layer that differs in kind, or else the
    first whose count differs."""
    kinds = first_kind_difference([s.kind for s in actual], [s.kind for s in expected])
    if kinds is not None:
        return kinds
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if want.params is not None and got.params != want.params:
            return f"layer {i} ({got.kind}) has {got.params:,} parameters, expected {want.params:,}"
    return "the counts differ outside the listed layers"


# --------------------------------------------------- reading a Keras model's config

MAX_CONFIG_BYTES = 1_000_000  # a JSON config longer than this is not read
MAX_LAYERS = 64

# Layer kinds whose output shape and weights layer_table_from_config computes (Keras 3,
# channels last); any other kind is named in the message instead.
SHAPE_KEEPING_KINDS = (
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Identity",
    "Rescaling",
    "BatchNormalization",
)
CONFIG_KINDS = SHAPE_KEEPING_KINDS + (
    "Conv2D",
    "Dense",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "Cropping2D",
    "ZeroPadding2D",
    "UpSampling2D",
)


def model_config_from_json(data: Any) -> dict:
    """The config of a ``keras.Sequential`` model from its JSON (``str``, ``bytes`` or a
    ``uint8`` array of UTF-8 bytes, as ``model.to_json()`` writes it), checked for form.

    Raises :class:`CheckError` for anything else (too long, not JSON, not a Sequential
    model, too many layers).
    """
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        data = data.tobytes()
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes):
        _fail(f"expected a model's JSON config, got {type(data).__name__}")
    if len(data) > MAX_CONFIG_BYTES:
        _fail(f"the model's config is {len(data):,} bytes long, over {MAX_CONFIG_BYTES:,}")
    import json

    try:
        config = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        _fail("the model's config is not valid JSON")
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        _fail(
            f"the model is a {kind}, expected a keras.Sequential: build it with "
            "keras.Sequential([keras.Input(...), layer, layer, ...])"
        )
    layers = (config.get("config") or {}).get("layers")
    if not isinstance(layers, list) or not all(isinstance(c, dict) for c in layers):
        _fail("the model's config has no list of layers")
    if len(layers) > MAX_LAYERS:
        _fail(f"the model has {len(layers)} layers, more than the {MAX_LAYERS} the checks read")
    return config


def config_layer_kinds(config: dict) -> list[str]:
    """The class names of a Sequential config's layers, in order, without the input."""
    kinds = [str(c.get("class_name")) for c in config["config"]["layers"]]
    return [k for k in kinds if k != "InputLayer"]


def _config_input_shape(config: dict) -> tuple[int, ...]:
    layers = config["config"]["layers"]
    shape = None
    if layers and layers[0].get("class_name") == "InputLayer":
        shape = (layers[0].get("config") or {}).get("batch_shape")
    if shape is None:
        shape = config["config"].get("build_input_shape")
    if not isinstance(shape, list | tuple) or len(shape) < 2:
        _fail(
            "the model does not say the shape of its input: start it with keras.Input(...), "
            "e.g. keras.Input((28, 28, 1))"
        )
    dims = tuple(shape[1:])
    if not all(type(d) is int and d >= 1 for d in dims):
        _fail(f"the model's input shape {dims} is not a shape of positive sizes")
    return dims


def _pair(value: Any, name: str) -> tuple[int, int]:
    if type(value) is int:
        return value, value
    if isinstance(value, list | tuple) and len(value) == 2 and all(type(v) is int for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}={value!r} is not a pair of ints")


def _edges(value: Any, name: str) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a Cropping2D / ZeroPadding2D config."""
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, list | tuple) for v in value)
    ):
        (top, bottom), (left, right) = _pair(value[0], name), _pair(value[1], name)
        return top, bottom, left, right
    h, w = _pair(value, name)
    return h, h, w, w


def _windows(n: int, f: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Keras' output side of a convolution or pooling window along one axis."""
    if padding == "valid":
        return (n - dilation * (f - 1) - 1) // stride + 1
    if padding == "same":
        return (n - 1) // stride + 1
    raise ValueError(f"padding={padding!r} is neither 'valid' nor 'same'")


def _layer_output(kind: str, c: dict, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(output shape, number of weights) of one layer for an input ``shape`` (no batch)."""
    if c.get("data_format", "channels_last") not in ("channels_last", None):
        raise ValueError("only channels_last layers are read (the course's layout)")
    if kind in SHAPE_KEEPING_KINDS:
        if kind != "BatchNormalization":
            return shape, 0
        axis = c.get("axis", -1)
        axis = axis[0] if isinstance(axis, list | tuple) and len(axis) == 1 else axis
        # Keras counts the batch axis; shape does not.
        index = axis - 1 if type(axis) is int and axis > 0 else axis
        n = shape[index] if type(index) is int and -len(shape) <= index < len(shape) else None
        if n is None:
            raise ValueError(f"axis={axis!r} is not an axis of the input")
        return shape, n * (2 + bool(c.get("center", True)) + bool(c.get("scale", True)))
    if kind == "Dense":
        units, bias = int(c["units"]), bool(c.get("use_bias", True))
        return shape[:-1] + (units,), shape[-1] * units + (units if bias else 0)
    if kind == "Flatten":
        return (math.prod(shape),), 0
    if kind == "Reshape":
        target = [int(d) for d in c["target_shape"]]
        known = math.prod(d for d in target if d != -1)
        if target.count(-1) == 1 and known and math.prod(shape) % known == 0:
            target[target.index(-1)] = math.prod(shape) // known
        if math.prod(target) != math.prod(shape):
            raise ValueError(f"cannot reshape {shape} to {tuple(c['target_shape'])}")
        return tuple(target), 0
    if len(shape) != 3:
        raise ValueError(f"expects an input (n_H, n_W, n_C), got {shape}")
    n_H, n_W, n_C = shape
    if kind == "Conv2D":
        (kh, kw), (sh, sw) = _pair(c["kernel_size"], "kernel_size"), _pair(c["strides"], "strides")
        dh, dw = _pair(c.get("dilation_rate", 1), "dilation_rate")
        groups, filters = int(c.get("groups", 1) or 1), int(c["filters"])
        if groups < 1 or n_C % groups or filters % groups:
            raise ValueError(f"groups={groups} does not divide the channels")
        out = (
            _windows(n_H, kh, sh, c["padding"], dh),
            _windows(n_W, kw, sw, c["padding"], dw),
            filters,
        )
        conv_bias = filters if c.get("use_bias", True) else 0
        return out, kh * kw * (n_C // groups) * filters + conv_bias
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        ph, pw = _pair(c["pool_size"], "pool_size")
        sh, sw = _pair(c.get("strides") or c["pool_size"], "strides")
        return (
            _windows(n_H, ph, sh, c["padding"]),
            _windows(n_W, pw, sw, c["padding"]),
            n_C,
        ), 0
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return ((1, 1, n_C) if c.get("keepdims") else (n_C,)), 0
    if kind == "Cropping2D":
        top, bottom, left, right = _edges(c["cropping"], "cropping")
        return (n_H - top - bottom, n_W - left - right, n_C), 0
    if kind == "ZeroPadding2D":
        top, bottom, left, right = _edges(c["padding"], "padding")
        return (n_H + top + bottom, n_W + left + right, n_C), 0
    if kind == "UpSampling2D":
        a, b = _pair(c["size"], "size")
        return (n_H * a, n_W * b, n_C), 0
    raise ValueError(f"{kind} is not a kind the checks read")


def layer_table_from_config(data: Any) -> list[LayerSpec]:
    """The layer table of a ``keras.Sequential`` model computed from its JSON config alone
    (see :func:`model_config_from_json`): for each layer after the input, its kind, output
    shape (no batch dimension), number of weights (what ``count_params`` counts) and its
    whole config, as :func:`keras_layer_table` gives them for the built model.

    Nothing is built and no framework is imported: this is how the autograder looks at a
    student's model in its own process. The layer kinds of :data:`CONFIG_KINDS` are read
    (channels last); any other kind, or a shape that does not fit, raises
    :class:`CheckError` naming the layer.
    """
    config = model_config_from_json(data)
    shape = _config_input_shape(config)
    table = []
    layers = [c for c in config["config"]["layers"] if c.get("class_name") != "InputLayer"]
    for i, layer in enumerate(layers):
        kind = str(layer.get("class_name"))
        settings = layer.get("config")
        if kind not in CONFIG_KINDS or not isinstance(settings, dict):
            _fail(
                f"layer {i} is {kind}, a kind the checks do not read: the exercise's models "
                "are made of Conv2D, MaxPooling2D, Dropout, Flatten, Dense and Cropping2D "
                "layers"
            )
        try:
            out, params = _layer_output(kind, settings, shape)
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
            _fail(f"layer {i} ({kind}) does not fit its input of shape {shape}: {exc}"[:500])
        if not all(type(d) is int and d >= 1 for d in out):
            _fail(f"layer {i} ({kind}) would output shape {out} from an input of shape {shape}")
        table.append(
            LayerSpec(kind, out, int(params), {k: _as_tuple(v) for k, v in settings.items()})
        )
        shape = out
    return table


def config_input_shape(data: Any) -> tuple[int, ...]:
    """The input shape (no batch dimension) a Sequential model's JSON config declares."""
    return _config_input_shape(model_config_from_json(data))


def predict_batched(model: Any, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Model outputs for ``x`` computed ``batch_size`` examples at a time, as float64 numpy.

    ``x`` must already be in the layout the model expects: ``(m, n_H, n_W, n_C)`` for Keras,
    ``(m, n_C, n_H, n_W)`` for PyTorch. PyTorch modules run in eval mode under
    ``torch.no_grad`` (their mode is restored after); Keras models run with
    ``training=False``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    x = np.asarray(x, dtype=np.float32)
    outputs = []
    if _is_torch_module(model):
        import torch

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(x), batch_size):
                    batch = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
                    outputs.append(model(batch).double().numpy())
        finally:
            model.train(was_training)
    elif _is_keras_model(model):
        import keras

        for start in range(0, len(x), batch_size):
            out = model(x[start : start + batch_size], training=False)
            outputs.append(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64))
    else:
        _fail(f"expected a keras.Model or a torch.nn.Module, got {type(model).__name__}")
    return np.concatenate(outputs, axis=0)


def evaluate_accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Fraction of ``x`` whose arg-max output equals the label, evaluated in batches.

    ``y`` holds digit labels ``(m,)`` or one-hot rows ``(m, n_classes)``. Works for Keras
    models and PyTorch modules (see :func:`predict_batched` for the layout of ``x``).
    """
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 else y.astype(np.int64)
    if len(labels) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(labels)}")
    scores = predict_batched(model, x, batch_size=batch_size)
    if scores.ndim != 2 or scores.shape[0] != len(x):
        _fail(f"the model returns shape {scores.shape}, expected ({len(x)}, n_classes)")
    return float(np.mean(scores.argmax(axis=1) == labels))


__all__ = [
    "KERAS_PARTS",
    "LayerSpec",
    "check_layer_kinds",
    "check_layer_table",
    "config_input_shape",
    "config_layer_kinds",
    "describe_layers",
    "evaluate_accuracy",
    "first_kind_difference",
    "keras_layer_table",
    "layer_table_from_config",
    "model_config_from_json",
    "predict_batched",
]
