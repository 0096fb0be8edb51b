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

This module, :mod:`~cnncourse.checks.adapters` and :mod:`~cnncourse.checks.calls` depend on
numpy and the standard library only: the grader sends their source into the kernel as text
(:data:`PROBE_MODULES`), so they must work without the rest of the package.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import io
import json
import zipfile

import numpy as np

FORMAT = "cnn-course-channel-1"
MAX_DEPTH = 8  # nesting of tuples / lists / dicts
MAX_ITEMS = 4096  # entries in one tuple, list or dict
MAX_STRING = 2000  # characters kept of a string or a message
MAX_ARRAYS = 512  # arrays in one archive
DEFAULT_MAX_BYTES = 64 * 2**20  # size of one archive, packed or unpacked
MAX_TREE_BYTES = 2**20  # the JSON tree (arrays carry the bulk): bounds the objects it makes

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


def _number(text: object, kind: str):
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


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member, after checking that its header declares exactly the bytes the
    member holds (a forged header cannot make the reader allocate more than it sent)."""
    fmt = np.lib.format
    with archive.open(info) as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed (they would need pickle)")
        count = 1
        for dim in shape:
            count *= int(dim)
        header = fh.tell()
        if count * dtype.itemsize != info.file_size - header:
            raise ValueError(
                f"the header declares {count * dtype.itemsize} bytes, the member holds "
                f"{info.file_size - header}"
            )
        data = bytearray(fh.read(count * dtype.itemsize))  # writable, one copy
    return np.frombuffer(data, dtype=dtype, count=count).reshape(
        shape, order="F" if fortran else "C"
    )


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
    by_name = {info.filename: info for info in infos}
    if by_name["tree.npy"].file_size > MAX_TREE_BYTES + 256:
        raise ChannelError(f"the tree is over the limit of {MAX_TREE_BYTES} bytes")
    loaded = {}
    try:
        for name in names:
            loaded[name[:-4]] = _read_member(archive, by_name[name])
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


# The modules the grader sends into a kernel, in order (each one's source is executed in the
# same namespace; their package-relative imports are then skipped).
PROBE_MODULES = ("channel", "adapters", "calls")
