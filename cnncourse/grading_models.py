"""Checks of whole models, used by the tests of assignments 3-5 (Keras and PyTorch).

A model is compared with the *full* ordered list of the layers it should have: a model with
a missing or an extra layer fails (the lists are never zipped and cut at the shorter one).
Every check raises :class:`cnncourse.testing.CheckError` with a message for the student.

* :func:`keras_layer_table` - what a Keras model is made of (kind, output shape, parameters)
* :func:`check_keras_architecture` - layer kinds and order, settings, output shapes, parameters
* :func:`rebuild_keras_model` - a Keras model rebuilt from the JSON config another process
  sent (how the autograder looks at a student's model without trusting the student's kernel)
* :func:`count_torch_params`, :func:`check_torch_module` - the same for a ``torch.nn.Module``
* :func:`evaluate_accuracy` - batched accuracy of a Keras model or a PyTorch module

Keras and PyTorch are imported lazily, so that a notebook that uses only one of them does not
pay for the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .testing import CheckError

KERAS_PARTS = ("types", "config", "shapes", "params")
TORCH_PARTS = ("types", "shapes", "params")


@dataclass(frozen=True)
class LayerSpec:
    """One layer as a test expects it (or as :func:`keras_layer_table` found it).

    ``kind`` is the class name (``"Conv2D"``), ``output_shape`` leaves out the batch
    dimension, ``params`` counts the layer's weights and ``config`` lists the settings that
    must match, e.g. ``{"filters": 32, "kernel_size": (3, 3), "activation": "relu"}``.
    """

    kind: str
    output_shape: tuple[int, ...] | None = None
    params: int | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


def _fail(message: str) -> None:
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


def check_keras_architecture(
    model: Any,
    expected_layers: Sequence[LayerSpec],
    parts: Iterable[str] = KERAS_PARTS,
    total_params: int | None = None,
) -> None:
    """Compare a Keras model with the expected layers, in order.

    ``parts`` chooses what is compared (so that each can be its own test cell):

    * ``"types"`` - the full ordered list of layer kinds (a missing or extra layer fails);
    * ``"config"`` - the settings named in each ``LayerSpec.config``;
    * ``"shapes"`` - every layer's output shape;
    * ``"params"`` - the model's total (``total_params``, default: the sum over
      ``expected_layers``) and the ordered list of the layers that hold weights with their
      counts (layers without weights, such as Dropout, are left to ``"types"``).

    Settings and shapes are only compared once the list of kinds matches, so a missing
    layer is reported as such and not as a cascade of shape errors.
    """
    parts = tuple(parts)
    unknown = set(parts) - set(KERAS_PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {KERAS_PARTS}")
    actual = keras_layer_table(model)
    expected = list(expected_layers)
    listing = f"\nyour model:\n{describe_layers(actual)}\nexpected:\n{describe_layers(expected)}"
    if "params" in parts:
        want_total = (
            total_params if total_params is not None else sum(spec.params or 0 for spec in expected)
        )
        got_total = int(model.count_params())
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
            if tuple(got.output_shape) != tuple(want.output_shape):
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


def check_compiled(model: Any, optimizer: str, loss: str) -> None:
    """A compiled Keras model must use the optimizer class ``optimizer`` (e.g. ``"RMSprop"``)
    and the loss ``loss`` (e.g. ``"categorical_crossentropy"``, as a name or a Loss object).
    """
    if not _is_keras_model(model):
        _fail(f"expected a keras.Model, got {type(model).__name__}")
    opt = getattr(model, "optimizer", None)
    if opt is None or not getattr(model, "compiled", True):
        _fail("the model is not compiled: call model.compile(optimizer=..., loss=...)")
    if type(opt).__name__ != optimizer:
        _fail(f"the optimizer is {type(opt).__name__}, expected {optimizer}")
    got = model.loss
    if isinstance(got, str):
        name = got
    else:
        name = getattr(got, "name", None) or getattr(got, "__name__", type(got).__name__)
    camel = "".join(part.capitalize() for part in loss.split("_"))
    if name not in {loss, camel} and type(got).__name__ != camel:
        _fail(f"the loss is {name!r}, expected {loss!r}")


# ------------------------------------------------------------ rebuilding a Keras model

MAX_CONFIG_BYTES = 1_000_000  # a JSON config longer than this is not rebuilt
MAX_LAYERS = 64
MAX_REBUILD_PARAMS = 20_000_000  # 80 MB of float32 weights: far above the course's models
MAX_SIDE = 4096  # largest input dimension accepted

# Layer kinds the grader rebuilds. Their weights are counted from the config before Keras
# allocates anything (so that a config cannot make the grader's process allocate gigabytes);
# any other kind is refused by name.
WEIGHTED_KINDS = ("Conv1D", "Conv2D", "Conv3D", "Dense", "BatchNormalization")
WEIGHTLESS_KINDS = (
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "Permute",
    "Dropout",
    "SpatialDropout1D",
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
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "UpSampling1D",
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
        _fail(f"the model has {len(layers)} layers, more than the {MAX_LAYERS} the grader reads")
    return config


def config_layer_kinds(config: dict) -> list[str]:
    """The class names of a Sequential config's layers, in order, without the input."""
    kinds = [str(c.get("class_name")) for c in config["config"]["layers"]]
    return [k for k in kinds if k != "InputLayer"]


def _config_input_shape(config: dict) -> tuple:
    layers = config["config"]["layers"]
    shape = None
    if layers and layers[0].get("class_name") == "InputLayer":
        shape = (layers[0].get("config") or {}).get("batch_shape")
    if shape is None:
        shape = config["config"].get("build_input_shape")
    if not isinstance(shape, list | tuple) or not 2 <= len(shape) <= 5:
        _fail(
            "the model does not say the shape of its input: start it with keras.Input(...), "
            "e.g. keras.Input((28, 28, 1))"
        )
    dims = list(shape)[1:]
    if not all(type(d) is int and 1 <= d <= MAX_SIDE for d in dims):
        _fail(f"the model's input shape {tuple(dims)} is not a shape of positive sizes")
    return (None, *dims)


def _weights_of(kind: str, config: dict, input_shape: tuple) -> int:
    """Number of weights a layer of ``kind`` creates for ``input_shape`` (with the batch)."""
    if kind not in WEIGHTED_KINDS:
        return 0
    channels_last = config.get("data_format", "channels_last") != "channels_first"
    if kind == "Dense":
        n_in = input_shape[-1]
        return int(config.get("units", 0)) * (n_in + (1 if config.get("use_bias", True) else 0))
    if kind == "BatchNormalization":
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, list | tuple) and axis else axis
        return 4 * int(input_shape[axis if isinstance(axis, int) else -1])
    channels = input_shape[-1] if channels_last else input_shape[1]
    groups = max(1, int(config.get("groups", 1) or 1))
    kernel = int(np.prod([int(k) for k in config.get("kernel_size", [1])]))
    filters = int(config.get("filters", 0))
    bias = filters if config.get("use_bias", True) else 0
    return kernel * (int(channels) // groups) * filters + bias


def rebuild_keras_model(data: Any) -> Any:
    """A ``keras.Sequential`` rebuilt here from its JSON config (see
    :func:`model_config_from_json`), with freshly initialised weights.

    Keras deserialises in safe mode (no Lambda code, no modules outside Keras). Before
    anything is built, the layers are read one by one: every kind must be one of
    :data:`WEIGHTED_KINDS` or :data:`WEIGHTLESS_KINDS`, every shape must follow from the
    input, and the model must hold at most :data:`MAX_REBUILD_PARAMS` weights. Raises
    :class:`CheckError` with the reason otherwise.
    """
    import keras

    config = model_config_from_json(data)
    shape = _config_input_shape(config)
    known = set(WEIGHTED_KINDS) | set(WEIGHTLESS_KINDS)
    total = 0
    for i, layer_config in enumerate(
        c for c in config["config"]["layers"] if c.get("class_name") != "InputLayer"
    ):
        kind = str(layer_config.get("class_name"))
        if kind not in known or not str(layer_config.get("module", "")).startswith("keras"):
            _fail(
                f"layer {i} is {kind}, a kind the grader does not rebuild (the course's "
                "models use Conv2D, MaxPooling2D, Dropout, Flatten, Dense, Cropping2D, ...)"
            )
        settings = layer_config.get("config") or {}
        try:
            layer = keras.saving.deserialize_keras_object(layer_config, safe_mode=True)
            total += _weights_of(kind, settings, shape)
            out = tuple(layer.compute_output_shape(shape))
        except Exception as exc:  # a config Keras refuses, or a shape that does not fit
            _fail(f"layer {i} ({kind}) cannot be rebuilt for input {shape[1:]}: {exc}"[:600])
        if not all(d is None or (type(d) is int and d >= 1) for d in out[1:]):
            _fail(f"layer {i} ({kind}) would output shape {out[1:]} from input {shape[1:]}")
        if total > MAX_REBUILD_PARAMS:
            _fail(
                f"the model has more than {MAX_REBUILD_PARAMS:,} weights by layer {i} "
                f"({kind}): far more than the network of the exercise"
            )
        shape = (None, *out[1:])
    full = {k: v for k, v in config.items() if k != "compile_config"}
    try:
        model = keras.saving.deserialize_keras_object(full, safe_mode=True)
    except Exception as exc:
        _fail(f"the model cannot be rebuilt from its config: {exc}"[:600])
    if not isinstance(model, keras.Model):
        _fail(f"the config describes a {type(model).__name__}, not a keras model")
    return model


def count_torch_params(module: Any, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a ``torch.nn.Module``."""
    if not _is_torch_module(module):
        _fail(f"expected a torch.nn.Module, got {type(module).__name__}")
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))


def torch_layer_kinds(module: Any) -> list[str]:
    """Class names of the leaf modules that hold parameters, in registration order."""
    kinds = []
    for sub in module.modules():
        has_children = any(True for _ in sub.children())
        if not has_children and any(True for _ in sub.parameters(recurse=False)):
            kinds.append(type(sub).__name__)
    return kinds


def check_torch_module(
    module: Any,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...] | None = None,
    n_params: int | None = None,
    layer_kinds: Sequence[str] | None = None,
    parts: Iterable[str] = TORCH_PARTS,
    seed: int = 0,
) -> None:
    """Check a ``torch.nn.Module``: parameter count, kinds of weighted layers, output shape.

    The forward pass runs on random float32 input of ``input_shape`` (e.g. ``(5, 1, 28, 28)``)
    in eval mode under ``torch.no_grad``; the module's train/eval mode is restored after.
    """
    import torch

    parts = tuple(parts)
    if not _is_torch_module(module):
        _fail(f"expected a torch.nn.Module, got {type(module).__name__}")
    if "params" in parts and n_params is not None:
        got = count_torch_params(module)
        if got != n_params:
            _fail(f"the module has {got:,} trainable parameters, expected {n_params:,}")
    if "types" in parts and layer_kinds is not None:
        check_layer_kinds(torch_layer_kinds(module), layer_kinds, what="module")
    if "shapes" in parts and output_shape is not None:
        x = torch.from_numpy(
            np.random.default_rng(seed).random(input_shape, dtype=np.float64).astype(np.float32)
        )
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(x)
        finally:
            module.train(was_training)
        if not isinstance(out, torch.Tensor):
            _fail(f"forward should return a torch.Tensor, got {type(out).__name__}")
        if tuple(out.shape) != tuple(output_shape):
            _fail(
                f"for input of shape {tuple(input_shape)} the module returns shape "
                f"{tuple(out.shape)}, expected {tuple(output_shape)}"
            )
        if not torch.isfinite(out).all():
            _fail("the module's output contains NaN or infinity")


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


def check_accuracy(accuracy: float, threshold: float, what: str = "test accuracy") -> None:
    """``accuracy`` must reach ``threshold``; the message says by how much it missed."""
    if not np.isfinite(accuracy) or accuracy < threshold:
        _fail(
            f"{what} is {accuracy:.4f}, below the required {threshold:.2f}: is the model "
            "trained (fit called, epochs > 0) and are the images scaled to [0, 1]?"
        )


__all__ = [
    "KERAS_PARTS",
    "LayerSpec",
    "check_accuracy",
    "check_compiled",
    "check_keras_architecture",
    "check_layer_kinds",
    "check_torch_module",
    "config_layer_kinds",
    "count_torch_params",
    "describe_layers",
    "evaluate_accuracy",
    "first_kind_difference",
    "keras_layer_table",
    "model_config_from_json",
    "predict_batched",
    "rebuild_keras_model",
    "torch_layer_kinds",
]
