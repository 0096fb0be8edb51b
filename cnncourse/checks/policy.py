"""The library-call policy, judged from what a graded function uses, by reading its code.

Each graded function declares what it may not use (``Spec.forbidden``: libraries such as
``torch``, the course's helper package, numpy's stride tricks). Libraries that hold a
ready-made answer are *absent* from the grading sandbox (:mod:`autograder.python_view`), so
what is left to judge is what cannot be absent: numpy's own functions, and the frameworks a
notebook needs for its other exercises (Keras in assignment 3, whose arithmetic functions may
not use it). This module judges that here, in the grader, by reading the notebook's code; it
never runs it, and nothing is watched or recorded inside the kernel.

**What a function uses** is what it can reach: the function's own definition, every
module-level definition its code names (helper functions, classes, values, imports), and
recursively what those name, across all the notebook's code cells, the cells a student added
included; plus every module-level statement that changes a module's attributes
(``np.pad = ...``, ``setattr(np, ...)``), since those change what any function calls. An
import in the same cell that the function does not use, or a ``verify(...)`` self-check
after it, is not used by the function.

In what it reaches, the policy finds:

* imports of a forbidden module and names of forbidden functions (``as_strided``,
  ``sliding_window_view``, ``stride_tricks``);
* strings that name a forbidden module (``__import__("torch")``);
* for a function that may not use numpy's stride tricks, the other ways to build a strided
  view (``np.ndarray(..., strides=...)``, assigning ``.strides``) and every computed lookup
  that could hide one: ``getattr`` with a computed name, ``eval``/``exec``/``compile``,
  ``__import__``/``importlib``, ``globals()``/``vars()``/``__dict__``, ``sys.modules``.

It cannot follow what a name refers to at run time beyond that: code that reaches a
forbidden function through objects built at run time in ways none of the above names is not
seen. Those are said in the README.
"""

from __future__ import annotations

import ast
import re
import symtable
from collections.abc import Iterable

from .channel import POLICY_MODULES, STRIDE_TRICKS

# Names that reach numpy's stride tricks.
STRIDE_WORDS = (*STRIDE_TRICKS, "stride_tricks", "_stride_tricks_impl")
# Calls and names that look a name up at run time (the checks cannot tell what they reach).
DYNAMIC_CALLS = ("getattr", "eval", "exec", "compile", "__import__", "globals", "vars", "locals")
DYNAMIC_NAMES = ("importlib", "__builtins__", "builtins", "__dict__", "__getattribute__")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _module_names(forbidden: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for item in forbidden:
        if item != "stride_tricks":
            names.update(POLICY_MODULES.get(item, (item,)))
    return names


def _hits_module(name: str, modules: set[str]) -> str | None:
    for module in modules:
        if name == module or name.startswith(module + "."):
            return module
    return None


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None  # it fails at run time anyway


def _bound_names(node: ast.stmt) -> set[str]:
    """Module-level names a top-level statement binds."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    names: set[str] = set()
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    elif isinstance(node, ast.For | ast.AsyncFor):
        targets = [node.target]
    elif isinstance(node, ast.With | ast.AsyncWith):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
    if isinstance(node, ast.If | ast.Try | ast.While):  # definitions inside a block
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
    return names


def _changes_attributes(node: ast.stmt) -> bool:
    """A top-level statement that changes an attribute or item of some object
    (``np.pad = f``, ``setattr(np, "pad", f)``, ``del np.pad``)."""
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = list(node.targets)
    if any(isinstance(t, ast.Attribute) for target in targets for t in ast.walk(target)):
        return True
    return any(
        isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "setattr"
        for sub in ast.walk(node)
    )


def _names_used(node: ast.AST) -> set[str]:
    """The module-level names a top-level statement refers to: for a function or class,
    only its global names (its parameters and locals are its own), by Python's own scoping
    rules (:mod:`symtable`)."""
    try:
        table = symtable.symtable(ast.unparse(node), "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)}
    names = {sym.get_name() for sym in table.get_symbols() if sym.is_referenced()}
    todo = list(table.get_children())
    while todo:
        scope = todo.pop()
        names |= {
            sym.get_name()
            for sym in scope.get_symbols()
            if sym.is_referenced() and (sym.is_global() or sym.is_declared_global())
        }
        todo.extend(scope.get_children())
    return names


def reachable(cells: list, function: str) -> list[ast.AST]:
    """The statements of ``cells`` (the code cells that ran before the check, in order) that
    ``function`` can reach (see the module docstring), in no particular order; empty when
    nothing defines it."""
    statements: list[ast.stmt] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(cell.get("source", ""))
        if tree is not None:
            statements.extend(tree.body)
    # Cells run in order: the last statement that binds a name is the one a call finds.
    bindings: dict[str, list[ast.stmt]] = {}
    for statement in statements:
        for name in _bound_names(statement):
            bindings[name] = [statement]
    if function not in bindings:
        return []
    found: dict[int, ast.AST] = {}
    todo = [function]
    seen_names: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen_names:
            continue
        seen_names.add(name)
        for statement in bindings.get(name, []):
            if id(statement) not in found:
                found[id(statement)] = statement
                todo.extend(_names_used(statement))
    for statement in statements:  # what changes modules changes every function's calls
        if _changes_attributes(statement) and id(statement) not in found:
            found[id(statement)] = statement
    return list(found.values())


def _dynamic_lookup(node: ast.AST) -> str | None:
    """The computed lookup in ``node``, if it is one, in words."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name == "getattr":
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                return None
            return "getattr with a computed name"
        if name in DYNAMIC_CALLS:
            return f"{name}()"
    if isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in DYNAMIC_NAMES + ("modules",):
        if node.attr != "modules" or (isinstance(node.value, ast.Name) and node.value.id == "sys"):
            return f".{node.attr}" if node.attr != "modules" else "sys.modules"
    return None


def _strided_view(node: ast.AST) -> str | None:
    """Another way to build a strided view than numpy's stride tricks."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "ndarray" and (
            any(k.arg == "strides" for k in node.keywords) or len(node.args) >= 6
        ):
            return "numpy.ndarray(..., strides=...)"
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Attribute) and t.attr == "strides" for t in targets):
            return "assigning .strides"
    return None


def forbidden_uses(nodes: Iterable[ast.AST], forbidden: Iterable[str]) -> list[str]:
    """What ``nodes`` (statements) import or name against the policy, e.g.
    ``["torch", "as_strided", "getattr with a computed name"]``."""
    forbidden = tuple(forbidden)
    modules = _module_names(forbidden)
    strict = "stride_tricks" in forbidden
    words = set(STRIDE_WORDS) if strict else set()
    found: list[str] = []

    def note(item: str | None) -> None:
        if item and item not in found:
            found.append(item)

    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    note(_hits_module(alias.name, modules))
                    note(alias.name.split(".")[-1] if alias.name.split(".")[-1] in words else None)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                note(_hits_module(node.module, modules))
                for part in node.module.split("."):
                    note(part if part in words else None)
                for alias in node.names:
                    note(alias.name if alias.name in words else None)
            elif isinstance(node, ast.Attribute):
                note(node.attr if node.attr in words else None)
            elif isinstance(node, ast.Name):
                note(node.id if node.id in words else None)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value.strip()
                if _DOTTED.fullmatch(value):  # a module path: __import__("cnncourse.oracles")
                    note(_hits_module(value, modules))
                note(value if value in words else None)
            if strict:
                note(_dynamic_lookup(node))
                note(_strided_view(node))
    return found


def function_uses(cells: list, function: str, forbidden: Iterable[str]) -> list[str]:
    """What ``function`` (a name defined in the notebook's code cells) uses against the
    policy ``forbidden`` (empty when nothing, or when no cell defines it)."""
    forbidden = tuple(forbidden)
    if not forbidden:
        return []
    return forbidden_uses(reachable(cells, function), forbidden)
