"""Plain data between a student's kernel and the checks: values, files, calls.

What a student's function returns is turned into *plain data* before anything compares it:
arrays (exactly ``numpy.ndarray``), Python numbers, strings, ``None``, numpy scalars, and
tuples, lists and string-keyed dicts of those; anything else becomes an :class:`Other` that
only remembers its type name. The same form serves both paths of a check:

* the visible checks in a notebook call the function themselves and :func:`normalize` the
  result;
* the autograder sends inputs into the kernel as a file, the kernel runs the function with
  :func:`run_probe` and writes what it returned as a file; the grader reads it back with
  :func:`unpack` and compares in its own process. Files are ``.npz`` archives of ``.npy``
  arrays plus one JSON tree: never pickle.

This module depends on numpy and the standard library only: the grader sends its source
into the kernel as text, so it must work without the rest of the package.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import io
import json
import math
import os
import sys
import time
import traceback
import zipfile

import numpy as np

FORMAT = "cnn-course-channel-1"
MAX_DEPTH = 8  # nesting of tuples / lists / dicts
MAX_ITEMS = 4096  # entries in one tuple, list or dict
MAX_STRING = 2000  # characters kept of a string or a message
MAX_ARRAYS = 512  # arrays in one archive
DEFAULT_MAX_BYTES = 64 * 2**20  # size of one archive, packed or unpacked

# Functions whose use a library-call policy can forbid, by the module they live in.
# "stride_tricks" names two functions only: numpy itself uses broadcast_to from that module.
POLICY_MODULES = {
    "torch": ("torch",),
    "tensorflow": ("tensorflow", "tf_keras"),
    "keras": ("keras",),
    "jax": ("jax", "jaxlib"),
    "scipy": ("scipy",),
    "cnncourse": ("cnncourse",),
}
STRIDE_TRICKS = ("as_strided", "sliding_window_view")


class ChannelError(ValueError):
    """Data that does not follow the channel's format (malformed, too large, ...)."""


class Other:
    """A value that is not plain data: only its type name (and a short repr) is kept."""

    __slots__ = ("type_name", "text")

    def __init__(self, type_name: str, text: str = ""):
        self.type_name = str(type_name)[:200]
        self.text = str(text)[:MAX_STRING]

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is Other and other.type_name == self.type_name and other.text == self.text
        )

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


class NumpyScalar:
    """A numpy scalar such as ``np.float64(1.5)``: its dtype name and its Python value."""

    __slots__ = ("dtype", "value")

    def __init__(self, dtype: str, value):
        self.dtype = str(dtype)
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is NumpyScalar and (other.dtype, other.value) == (
            self.dtype,
            self.value,
        )

    def __repr__(self) -> str:
        return f"np.{self.dtype}({self.value!r})"


_PLAIN = (bool, int, float, str, type(None))


def _short_repr(value) -> str:
    try:
        return repr(value)[:200]
    except Exception:  # a student's __repr__ may raise: the type name is enough
        return ""


def normalize(value, _depth: int = 0):
    """``value`` as plain data (see the module docstring); arrays are copied."""
    kind = type(value)
    if kind is NumpyScalar or kind is Other:
        return value  # already plain data
    if kind is np.ndarray:
        if value.dtype.hasobject or value.dtype.fields is not None:
            return Other(f"ndarray of dtype {value.dtype}")
        return np.array(value, copy=True)
    if kind in _PLAIN:
        if kind is str:
            return value[:MAX_STRING]
        if kind is int and value.bit_length() > 64:
            return Other("int (more than 64 bits)")
        return value
    if isinstance(value, np.generic) and kind.__module__ == "numpy":
        if value.dtype.kind in "biuf":
            return NumpyScalar(value.dtype.name, value.item())
        return Other(f"numpy.{kind.__name__}")
    if _depth >= MAX_DEPTH:
        return Other(kind.__name__, "nested too deeply")
    if kind in (tuple, list):
        if len(value) > MAX_ITEMS:
            return Other(kind.__name__, f"{len(value)} items")
        items = [normalize(v, _depth + 1) for v in value]
        return tuple(items) if kind is tuple else items
    if kind is dict:
        if len(value) > MAX_ITEMS or not all(type(k) is str for k in value):
            return Other("dict", "keys that are not strings, or too many")
        return {k[:MAX_STRING]: normalize(v, _depth + 1) for k, v in value.items()}
    return Other(getattr(kind, "__qualname__", kind.__name__), _short_repr(value))


# ---------------------------------------------------------------------- encoding


def _encode(value, arrays: list, depth: int = 0):
    kind = type(value)
    if depth > MAX_DEPTH:
        raise ChannelError("value nested too deeply")
    if kind is np.ndarray:
        if len(arrays) >= MAX_ARRAYS:
            raise ChannelError(f"more than {MAX_ARRAYS} arrays")
        arrays.append(value)
        return {"t": "array", "i": len(arrays) - 1}
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        return {"t": "int", "v": str(value)}
    if kind is float:
        return {"t": "float", "v": repr(value)}
    if kind is str:
        return {"t": "str", "v": value}
    if value is None:
        return {"t": "none"}
    if kind is NumpyScalar:
        return {"t": "npscalar", "dtype": value.dtype, "v": repr(value.value)}
    if kind is Other:
        return {"t": "other", "type": value.type_name, "text": value.text}
    if kind in (tuple, list):
        return {"t": kind.__name__, "v": [_encode(v, arrays, depth + 1) for v in value]}
    if kind is dict:
        return {"t": "dict", "v": {k: _encode(v, arrays, depth + 1) for k, v in value.items()}}
    raise ChannelError(f"not plain data: {kind.__name__}")


def _number(text: str, kind: str):
    if not isinstance(text, str) or len(text) > 64:
        raise ChannelError(f"malformed {kind}")
    try:
        if kind == "int":
            return int(text)
        return float(text)  # repr() of a float, nan and inf included
    except ValueError:
        raise ChannelError(f"malformed {kind}: {text[:20]!r}") from None


def _decode(node, arrays: list, used: set, depth: int = 0):
    if depth > MAX_DEPTH or type(node) is not dict:
        raise ChannelError("malformed tree")
    tag = node.get("t")
    if tag == "array":
        index = node.get("i")
        if type(index) is not int or not 0 <= index < len(arrays) or index in used:
            raise ChannelError("array reference missing or used twice")
        used.add(index)
        return arrays[index]
    if tag == "bool" and type(node.get("v")) is bool:
        return node["v"]
    if tag == "int":
        return _number(node.get("v"), "int")
    if tag == "float":
        return _number(node.get("v"), "float")
    if tag == "str" and type(node.get("v")) is str:
        return node["v"][:MAX_STRING]
    if tag == "none":
        return None
    if tag == "npscalar" and type(node.get("dtype")) is str:
        dtype = node["dtype"][:20]
        text = node.get("v")
        if dtype.startswith("bool"):
            if text not in ("True", "False"):
                raise ChannelError("malformed numpy bool")
            return NumpyScalar(dtype, text == "True")
        kind = "float" if dtype.startswith(("float", "longdouble")) else "int"
        return NumpyScalar(dtype, _number(text, kind))
    if tag == "other":
        return Other(str(node.get("type", "?")), str(node.get("text", "")))
    if tag in ("tuple", "list") and type(node.get("v")) is list:
        if len(node["v"]) > MAX_ITEMS:
            raise ChannelError("too many items")
        items = [_decode(v, arrays, used, depth + 1) for v in node["v"]]
        return tuple(items) if tag == "tuple" else items
    if tag == "dict" and type(node.get("v")) is dict:
        if len(node["v"]) > MAX_ITEMS:
            raise ChannelError("too many items")
        return {str(k): _decode(v, arrays, used, depth + 1) for k, v in node["v"].items()}
    raise ChannelError(f"unknown or malformed node {str(tag)[:20]!r}")


def revive(value):
    """Plain data with numpy scalars made real again (``NumpyScalar`` -> ``np.float64``)."""
    if type(value) is NumpyScalar:
        return np.dtype(value.dtype).type(value.value)
    if type(value) in (tuple, list):
        items = [revive(v) for v in value]
        return tuple(items) if type(value) is tuple else items
    if type(value) is dict:
        return {k: revive(v) for k, v in value.items()}
    return value


def pack(value) -> bytes:
    """A value as the bytes of an ``.npz`` archive (it is normalized to plain data first)."""
    arrays: list = []
    tree = _encode(normalize(value), arrays)
    text = json.dumps({"format": FORMAT, "tree": tree}, allow_nan=False)
    buffer = io.BytesIO()
    members = {f"a{i}": array for i, array in enumerate(arrays)}
    members["tree"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    np.savez(buffer, **members)
    return buffer.getvalue()


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES):
    """Read what :func:`pack` wrote, refusing anything else.

    Raises :class:`ChannelError` for a file that is too large (packed or unpacked), not an
    archive of ``.npy`` members named as :func:`pack` names them, holds pickled objects,
    or whose tree is malformed or references arrays that are missing or used twice.
    """
    if len(data) > max_bytes:
        raise ChannelError(f"{len(data)} bytes, over the limit of {max_bytes}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ChannelError(f"not an archive ({type(exc).__name__})") from None
    if len(infos) > MAX_ARRAYS + 1:
        raise ChannelError(f"{len(infos)} members, over the limit of {MAX_ARRAYS + 1}")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise ChannelError("a member appears twice")
    if sum(info.file_size for info in infos) > max_bytes:
        raise ChannelError("unpacked size over the limit")
    expected = {"tree.npy"} | {f"a{i}.npy" for i in range(len(infos) - 1)}
    if set(names) != expected:
        raise ChannelError("unexpected member names")
    loaded = {}
    try:
        for name in names:
            with archive.open(name) as fh:
                loaded[name[:-4]] = np.lib.format.read_array(
                    io.BytesIO(fh.read(max_bytes + 1)), allow_pickle=False
                )
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ChannelError(f"an unreadable array ({type(exc).__name__}: {exc})"[:300]) from None
    tree_bytes = loaded.pop("tree")
    if tree_bytes.dtype != np.uint8 or tree_bytes.ndim != 1:
        raise ChannelError("malformed tree member")
    try:
        header = json.loads(tree_bytes.tobytes().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ChannelError("tree is not JSON") from None
    if type(header) is not dict or header.get("format") != FORMAT:
        raise ChannelError("wrong format tag")
    arrays = [loaded[f"a{i}"] for i in range(len(loaded))]
    for array in arrays:
        if array.dtype.hasobject:
            raise ChannelError("object arrays are not allowed")
    used: set = set()
    value = _decode(header.get("tree"), arrays, used)
    if len(used) != len(arrays):
        raise ChannelError("unreferenced arrays")
    return value


# ------------------------------------------------------------------ library policy


def _policy_prefixes(forbidden) -> tuple[str, ...]:
    prefixes: list[str] = []
    for name in forbidden:
        prefixes += POLICY_MODULES.get(name, (name,)) if name != "stride_tricks" else ()
    return tuple(prefixes)


def _offence(module: str, function: str, prefixes, stride_tricks: bool) -> str | None:
    for prefix in prefixes:
        if module == prefix or module.startswith(prefix + "."):
            return prefix.split(".")[0] if prefix != "cnncourse" else module
    if stride_tricks and "stride_tricks" in module and function in STRIDE_TRICKS:
        return f"numpy's {function}"
    return None


class CallWatch:
    """While active, notes calls into forbidden libraries (a profile hook on this thread).

    ``forbidden`` holds names of :data:`POLICY_MODULES` (or module names) and
    ``"stride_tricks"``. After the ``with`` block, :attr:`seen` lists what was used, e.g.
    ``["torch"]``.
    """

    def __init__(self, forbidden=()):
        self.prefixes = _policy_prefixes(forbidden)
        self.stride_tricks = "stride_tricks" in forbidden
        self.seen: list[str] = []
        self._previous = None

    def _hook(self, frame, event, arg):
        if frame.f_code.co_filename == _OWN_FILE:
            return  # the watch itself (entering and leaving the with block)
        if event == "call":
            module = frame.f_globals.get("__name__", "") or ""
            function = frame.f_code.co_name
        elif event == "c_call":
            module = getattr(arg, "__module__", None) or ""
            owner = getattr(arg, "__self__", None)
            if not module and owner is not None:
                module = getattr(owner, "__name__", "") or type(owner).__module__ or ""
            function = getattr(arg, "__name__", "")
        else:
            return
        if type(module) is not str:
            return
        found = _offence(module, function, self.prefixes, self.stride_tricks)
        if found and found not in self.seen:
            self.seen.append(found)

    def __enter__(self):
        if self.prefixes or self.stride_tricks:
            self._previous = sys.getprofile()
            sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc):
        if self.prefixes or self.stride_tricks:
            sys.setprofile(self._previous)
        return False


_OWN_FILE = CallWatch._hook.__code__.co_filename

# ------------------------------------------------------------------------ calls


def student_traceback(exc: BaseException, limit: int = 3) -> str:
    """The last lines of ``exc``'s traceback that are in notebook cells (the student's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [
        f for f in frames if "ipykernel" in f.filename or f.filename.startswith("<ipython-input")
    ]
    lines = [f"line {f.lineno} of {f.name}: {(f.line or '').strip()}" for f in mine[-limit:]]
    return "\n".join(lines)[:MAX_STRING]


def call(function, args, kwargs, forbidden=()) -> dict:
    """Call ``function(*args, **kwargs)``; what happened, as plain data.

    Keys: ``status`` (``"returned"`` or ``"raised"``), ``value`` (normalized return value),
    ``error`` (type, message and the student's lines), ``args_after`` (the arguments after
    the call, normalized), ``forbidden`` (libraries used against the policy), ``seconds``.
    """
    outcome: dict = {"status": "raised", "value": None, "error": None, "forbidden": []}
    watch = CallWatch(forbidden)
    start = time.perf_counter()
    try:
        with watch:
            value = function(*args, **kwargs)
        outcome["status"] = "returned"
        outcome["value"] = normalize(value)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: report, go on
        outcome["error"] = {
            "type": type(exc).__name__[:100],
            "message": _short_repr_message(exc),
            "where": student_traceback(exc),
        }
    outcome["seconds"] = time.perf_counter() - start
    outcome["forbidden"] = list(watch.seen)
    outcome["args_after"] = normalize([list(args), dict(kwargs)])
    return outcome


def _short_repr_message(exc: BaseException) -> str:
    try:
        return str(exc)[:MAX_STRING]
    except Exception:
        return ""


# ------------------------------------------------------------------------ adapters
# How the grader's plain-data inputs reach functions that take or return framework objects
# (Keras models, PyTorch modules). An adapter runs in the kernel, calls the student's code and
# turns what it built into plain data; the grader then recomputes what it can from that data
# in its own process (it rebuilds a Keras model from its JSON config, runs its own forward
# pass on the weights, computes accuracies from predicted labels it alone can score).


MAX_CONFIG_BYTES = 1_000_000  # a model's JSON config larger than this is not sent


def _keras_description(model) -> dict:
    """A Keras model as plain data: its type, and its JSON config as UTF-8 bytes (a uint8
    array: strings are cut at MAX_STRING characters, arrays are not)."""
    import keras

    if not isinstance(model, keras.Model):
        return {"type": type(model).__name__}
    try:
        text = model.to_json()
    except Exception as exc:  # e.g. a subclassed model without get_config
        return {"type": type(model).__name__, "error": f"{type(exc).__name__}: {exc}"}
    data = text.encode("utf-8")
    if len(data) > MAX_CONFIG_BYTES:
        return {"type": type(model).__name__, "error": f"a config of {len(data):,} bytes"}
    return {
        "type": type(model).__name__,
        "json": np.frombuffer(data, dtype=np.uint8).copy(),
        "count_params": int(model.count_params()),
    }


def adapt_keras_model(namespace, builder, *args, **kwargs):
    """Call a builder twice; its model's JSON config, and whether it built a new model."""
    first, second = builder(*args, **kwargs), builder(*args, **kwargs)
    return dict(_keras_description(first), new_each_call=first is not second)


def adapt_keras_value(namespace, model):
    """A model held in a variable: its JSON config."""
    return _keras_description(model)


def adapt_keras_compile(namespace, compile_model):
    """Compile a tiny model of our own with the student's function; its compile config."""
    import keras

    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    compile_model(tiny)
    optimizer = getattr(tiny, "optimizer", None)
    loss = getattr(tiny, "loss", None)
    metrics = []
    try:
        metrics = [str(m) for m in (tiny.get_compile_config() or {}).get("metrics") or []]
    except Exception:  # an uncompiled model has no compile config
        pass
    return {
        "compiled": bool(getattr(tiny, "compiled", False)),
        "optimizer": type(optimizer).__name__ if optimizer is not None else "",
        "loss": loss if isinstance(loss, str) else type(loss).__name__,
        "loss_name": str(getattr(loss, "name", "") or getattr(loss, "__name__", "") or ""),
        "metrics": metrics,
    }


def adapt_predict(namespace, model, x, batch_size=500):
    """Outputs of a trained model (Keras: channels last; PyTorch: channels first) for x."""
    outputs = []
    if type(model).__module__.startswith("torch") or hasattr(model, "state_dict"):
        import torch

        model.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
                outputs.append(model(batch).double().numpy())
    else:
        import keras

        for start in range(0, len(x), batch_size):
            out = model(x[start : start + batch_size], training=False)
            outputs.append(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float64))
    return np.concatenate(outputs, axis=0)


def adapt_torch_module(namespace, module_class, state, x):
    """Instantiate the student's module, load the grader's weights, run it on x.

    ``state`` maps parameter names to arrays (or is ``None``); returns the parameter shapes,
    the kinds of the layers that hold weights, whether the weights were loaded, and, when
    ``x`` is given, the output on ``x`` (eval mode) and whether it depends on the weights.
    """
    import torch

    module = module_class()
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    kinds = []
    for sub in module.modules():
        if not any(True for _ in sub.children()) and any(True for _ in sub.parameters(False)):
            kinds.append(type(sub).__name__)
    loaded = False
    if (
        state
        and set(state) == set(shapes)
        and all(tuple(np.shape(state[k])) == shapes[k] for k in shapes)
    ):
        module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        loaded = True
    result = {"shapes": {k: list(v) for k, v in shapes.items()}, "kinds": kinds, "loaded": loaded}
    if x is not None:
        module.eval()
        out = module(torch.from_numpy(np.ascontiguousarray(x)))
        result["requires_grad"] = bool(getattr(out, "requires_grad", False))
        result["output"] = out.detach().double().numpy() if hasattr(out, "detach") else out
    return result


def adapt_torch_evaluate(namespace, evaluate, weight, bias, x, y, batch_size):
    """Run the student's evaluate on a linear model of the grader's weights; record batches."""
    import torch
    from torch import nn

    class Recorder(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.batches: list[int] = []
            self.grad: list[bool] = []

        def forward(self, data):
            self.batches.append(int(data.shape[0]))
            self.grad.append(torch.is_grad_enabled())
            return self.inner(data)

    linear = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0]))
    with torch.no_grad():
        linear[1].weight.copy_(torch.from_numpy(weight))
        linear[1].bias.copy_(torch.from_numpy(bias))
    recorder = Recorder(linear)
    accuracy = evaluate(recorder, x, y, batch_size)
    return {"accuracy": accuracy, "batches": recorder.batches, "grad_enabled": recorder.grad}


def adapt_keras_to_torch(
    namespace, copy_weights, weights, x_nchw, builder="build_keras_lecture_cnn", module="LectureCNN"
):
    """Copy a Keras model holding the grader's weights into a new module of the student's
    class (in place, as the exercise asks); the module's logits on x (the grader computes
    the expected ones from the same weights) and whether the Keras weights stayed as they
    were."""
    import torch

    keras_model = namespace[builder]()
    keras_model.set_weights([np.asarray(w) for w in weights])
    before = [w.copy() for w in keras_model.get_weights()]
    torch_model = namespace[module]()
    copy_weights(keras_model, torch_model)
    after = keras_model.get_weights()
    unchanged = len(after) == len(before) and all(
        np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )
    torch_model.eval()
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(np.ascontiguousarray(x_nchw)))
    return {"logits": logits.double().numpy(), "keras_unchanged": bool(unchanged)}


ADAPTERS = {
    "keras_model": adapt_keras_model,
    "keras_value": adapt_keras_value,
    "keras_compile": adapt_keras_compile,
    "predict": adapt_predict,
    "torch_module": adapt_torch_module,
    "torch_evaluate": adapt_torch_evaluate,
    "keras_to_torch": adapt_keras_to_torch,
}


def call_target(namespace: dict, target, adapter: str | None, args, kwargs, forbidden=()) -> dict:
    """Call ``target`` (or hand it to an adapter) and report what happened (see call()).

    With an adapter, ``args_after`` still holds only the grader's arguments (not the
    notebook's namespace or the target), so that "changed its input" means the inputs.
    """
    if adapter:
        adapt = ADAPTERS[adapter]

        def adapted(*a, **k):
            return adapt(namespace, target, *a, **k)

        return call(adapted, args, kwargs, forbidden)
    return call(target, args, kwargs, forbidden)


def run_probe(namespace: dict, request_path: str, result_path: str) -> None:
    """Kernel side of the autograder: run the calls of a request file, write a result file.

    The request is ``{"calls": [{"id", "target", "adapter", "args", "kwargs"}], "forbidden":
    [...]}``; each target is looked up in ``namespace`` (the notebook's globals) and called,
    or handed to the named adapter (for framework objects). The result is
    ``{"calls": [{"id", ...what call() returns, or status "missing"}]}``; it is written once
    (an existing result file is never overwritten).
    """
    with open(request_path, "rb") as fh:
        request = unpack(fh.read())
    results = []
    forbidden = tuple(request.get("forbidden", ()))
    for item in request["calls"]:
        adapter = item.get("adapter")
        target = namespace.get(item["target"])
        if target is None or (adapter is None and not callable(target)):
            results.append({"id": item["id"], "status": "missing"})
            continue
        args, kwargs = revive(tuple(item["args"])), revive(dict(item["kwargs"]))
        outcome = call_target(namespace, target, adapter, args, kwargs, forbidden)
        outcome["id"] = item["id"]
        results.append(outcome)
    data = pack({"calls": results})
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(result_path, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def is_finite_number(value) -> bool:
    """True for a real (non-bool) Python or numpy number that is finite."""
    if type(value) is NumpyScalar:
        value = value.value
    return type(value) in (int, float) and math.isfinite(value)
