"""Calling a student's function: the library-call watch, the call, and the kernel side of
the autograder's requests (:func:`run_probe`).

Like :mod:`cnncourse.checks.channel` it is sent into the kernel as text, after it and
:mod:`cnncourse.checks.adapters`, so the names of both are defined when it runs there.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import hashlib
import os
import sys
import time
import traceback

try:  # a module of the package (sent into a kernel as text, the names are already defined)
    from .adapters import ADAPTERS
    from .channel import MAX_STRING, POLICY_MODULES, STRIDE_TRICKS, normalize, pack, revive, unpack
except (ImportError, KeyError):  # KeyError: exec()d without a __name__
    pass


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
        if frame.f_code.co_filename in _OWN_FILES:
            return  # the watch itself, and the adapters that hand objects to the student
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


# ------------------------------------------------------------------------ calls


_OWN_FILES = {CallWatch._hook.__code__.co_filename} | {
    adapter.__code__.co_filename for adapter in ADAPTERS.values()
}


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


def is_missing(target, adapter: str | None) -> bool:
    """No function to call: the name is unbound, or bound to something that is not callable
    (an adapter receives models and other objects instead)."""
    return target is None or (adapter is None and not callable(target))


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


# ----------------------------------------------------------- answers for a helper

# How each helper's call is keyed (which arguments) and answered from a table of the
# checks' answers (see Spec.helper_table): only the calls the checks' inputs make have an
# answer; any other call raises, so a table is no implementation of the helper.
TABLE_KINDS = (
    "conv_single_step",
    "zero_pad",
    "create_mask_from_window",
    "distribute_value",
    "network_gradients",
)


def digest(*parts) -> bytes:
    """A 16-byte fingerprint of arrays and numbers (shape and float64 values)."""
    import numpy as np

    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        array = np.ascontiguousarray(np.asarray(part, dtype=np.float64))
        h.update(repr(array.shape).encode())
        h.update(array.tobytes())
    return h.digest()


def call_key(kind: str, args, kwargs) -> bytes:
    """The fingerprint of one call of a helper of ``kind``."""
    values = list(args) + list(kwargs.values())
    if kind == "conv_single_step":
        return digest(values[0], values[1])  # the bias is added after the look-up
    if kind == "zero_pad":
        return digest(values[0], int(values[1]))
    if kind == "create_mask_from_window":
        return digest(values[0])
    if kind == "distribute_value":
        return digest(float(values[0]), tuple(int(n) for n in values[1]))
    if kind == "network_gradients":  # (params, X, y): every parameter by name, then the batch
        params = values[0]
        return digest(*(params[name] for name in sorted(params)), values[1], values[2])
    raise ValueError(f"no table kind {kind!r}")


def table_helper(name: str, table: dict):
    """A stand-in for the helper ``name`` that answers from ``table`` (plain data: kind,
    keys (n, 16) uint8, values)."""
    import numpy as np

    kind, values = table["kind"], table["values"]
    index = {bytes(key): i for i, key in enumerate(np.asarray(table["keys"], dtype=np.uint8))}

    def helper(*args, **kwargs):
        key = call_key(kind, args, kwargs)
        if key not in index:
            raise LookupError(
                f"the checks have no answer of {name} for these arguments: call {name} as "
                "the exercise says (with the slices and values it describes)"
            )
        value = values[index[key]]
        if kind == "conv_single_step":
            bias = (list(args) + list(kwargs.values()))[2]
            return float(value) + float(np.sum(bias))
        if kind == "network_gradients":
            grads = {name: np.array(g, copy=True) for name, g in value["grads"].items()}
            return float(value["loss"]), grads
        return np.array(value, copy=True)

    helper.__name__ = name
    return helper


def substituted(namespace: dict, tables: dict | None):
    """A context in which ``namespace``'s helpers named in ``tables`` answer from them."""
    import contextlib

    @contextlib.contextmanager
    def swap():
        saved = {name: namespace.get(name) for name in tables or {}}
        try:
            for name, table in (tables or {}).items():
                namespace[name] = table_helper(name, table)
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    namespace.pop(name, None)
                else:
                    namespace[name] = value

    return swap()


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
        if is_missing(target, adapter):
            results.append({"id": item["id"], "status": "missing"})
            continue
        args, kwargs = revive(tuple(item["args"])), revive(dict(item["kwargs"]))
        with substituted(namespace, item.get("substitute")):
            outcome = call_target(namespace, target, adapter, args, kwargs, forbidden)
        outcome["id"] = item["id"]
        results.append(outcome)
    data = pack({"calls": results})
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(result_path, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
