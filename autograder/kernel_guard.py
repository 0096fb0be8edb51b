"""Runs *inside* the student's kernel: snapshot trusted state, restore it before tests.

The grader imports this module and calls :func:`install` before the first notebook cell
(before any student code), and calls :func:`restore` in a hidden request right before
each graded test cell. ``restore`` puts back what student code may have replaced:

* IPython's input transformers, AST transformers, event callbacks and the shell methods
  that run cells and report errors (an input transformer could otherwise turn every test
  cell into ``pass``; a patched ``showtraceback`` could hide failures);
* module attributes of numpy, numpy.testing, math and the course's test helpers
  (``np.allclose = lambda *a, **k: True``), and ``sys.modules`` entries for them;
* builtins (``isinstance``, ``abs``, ...), ``sys.excepthook``/``displayhook``,
  trace and profile hooks.

This is defence in depth, not a proof: code running in the same process can always
attack the process. See the README's "Grading safely" section for the whole design.
"""

from __future__ import annotations

import builtins
import sys
import threading

_PROTECTED_MODULES = (
    "numpy",
    "numpy.testing",
    "numpy.linalg",
    "math",
    "cnncourse.testing",
    "cnncourse.oracles",
    "cnncourse.layers",
    "cnncourse.grading_models",
)
_SHELL_METHODS = (
    "run_cell",
    "run_cell_async",
    "_run_cell",
    "run_ast_nodes",
    "run_code",
    "transform_cell",
    "transform_ast",
    "should_run_async",
    "showtraceback",
    "_showtraceback",
    "showsyntaxerror",
    "get_exception_only",
)

_baseline: dict | None = None


def _shell():
    try:
        from IPython.core.interactiveshell import InteractiveShell

        return InteractiveShell.instance() if InteractiveShell.initialized() else None
    except Exception:  # pragma: no cover - no IPython
        return None


def install() -> None:
    """Import what tests use and remember the trusted state (call before student code)."""
    global _baseline
    import importlib

    modules = {}
    for name in _PROTECTED_MODULES:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue  # optional helper modules may not exist in every course version
        modules[name] = (module, dict(vars(module)))
    baseline: dict = {
        "builtins": dict(vars(builtins)),
        "modules": modules,
        "excepthook": sys.excepthook,
        "displayhook": sys.displayhook,
    }
    ip = _shell()
    if ip is not None:
        manager = ip.input_transformer_manager
        baseline["shell"] = {
            "manager": manager,
            "cleanup": list(manager.cleanup_transforms),
            "line": list(manager.line_transforms),
            "token": list(manager.token_transformers),
            "post": list(ip.input_transformers_post),
            "ast": list(ip.ast_transformers),
            "events": {name: list(cbs) for name, cbs in ip.events.callbacks.items()},
            "class_methods": {
                (klass, name): klass.__dict__[name]
                for klass in type(ip).__mro__
                for name in _SHELL_METHODS
                if name in klass.__dict__
            },
            "instance_keys": set(vars(ip)),
        }
    _baseline = baseline


def restore() -> list[str]:
    """Put back the trusted state; returns the names of what had been changed."""
    if _baseline is None:
        return ["guard was never installed"]
    changed: list[str] = []
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)
    threading.setprofile(None)
    if sys.excepthook is not _baseline["excepthook"]:
        sys.excepthook = _baseline["excepthook"]
        changed.append("sys.excepthook")
    if sys.displayhook is not _baseline["displayhook"]:
        sys.displayhook = _baseline["displayhook"]
        changed.append("sys.displayhook")
    current_builtins = vars(builtins)
    for key, value in _baseline["builtins"].items():
        if current_builtins.get(key, _MISSING) is not value:
            current_builtins[key] = value
            changed.append(f"builtins.{key}")
    for name, (module, snapshot) in _baseline["modules"].items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            changed.append(f"sys.modules[{name!r}]")
        namespace = vars(module)
        for key, value in snapshot.items():
            if namespace.get(key, _MISSING) is not value:
                namespace[key] = value
                changed.append(f"{name}.{key}")
    shell = _baseline.get("shell")
    ip = _shell()
    if shell is not None and ip is not None:
        changed += _restore_shell(ip, shell)
    return changed


def _restore_shell(ip, shell: dict) -> list[str]:
    changed = []
    manager = shell["manager"]
    if ip.input_transformer_manager is not manager:
        ip.input_transformer_manager = manager
        changed.append("input_transformer_manager")
    for attr, key in (
        ("cleanup_transforms", "cleanup"),
        ("line_transforms", "line"),
        ("token_transformers", "token"),
    ):
        if list(getattr(manager, attr)) != shell[key]:
            setattr(manager, attr, list(shell[key]))
            changed.append(f"input transformers ({attr})")
    if list(ip.input_transformers_post) != shell["post"]:
        ip.input_transformers_post[:] = shell["post"]
        changed.append("input_transformers_post")
    if list(ip.ast_transformers) != shell["ast"]:
        ip.ast_transformers[:] = shell["ast"]
        changed.append("ast_transformers")
    for name, callbacks in shell["events"].items():
        if ip.events.callbacks.get(name) != callbacks:
            ip.events.callbacks[name] = list(callbacks)
            changed.append(f"events.{name}")
    for (klass, name), value in shell["class_methods"].items():
        if klass.__dict__.get(name, _MISSING) is not value:
            setattr(klass, name, value)
            changed.append(f"{klass.__name__}.{name}")
    for name in _SHELL_METHODS:
        # an instance attribute that was not there before student code shadows the method
        if name in vars(ip) and name not in shell["instance_keys"]:
            delattr(ip, name)
            changed.append(f"shell.{name}")
    return changed


class _Missing:
    pass


_MISSING = _Missing()
