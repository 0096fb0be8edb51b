"""The library-call policy, checked statically on the student's solution cells.

Each graded function declares what it may not use (``Spec.forbidden``, e.g. ``torch`` or
numpy's stride tricks). This module reads the source of the solution cells, never runs it,
and finds imports of forbidden modules and references to forbidden names. The runtime
check (:class:`cnncourse.checks.calls.CallWatch`, while the function runs) and the
sandbox (which hides forbidden packages from the kernel) are the other two layers.
"""

from __future__ import annotations

import ast

from cnncourse.checks.channel import POLICY_MODULES, STRIDE_TRICKS


def _module_names(forbidden) -> set[str]:
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


def forbidden_uses(source: str, forbidden) -> list[str]:
    """What ``source`` imports or names against the policy (``["torch", "as_strided"]``).

    Source that does not parse has no findings: it fails at run time anyway.
    """
    modules = _module_names(forbidden)
    words = set(STRIDE_TRICKS) if "stride_tricks" in forbidden else set()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: list[str] = []

    def note(item: str | None) -> None:
        if item and item not in found:
            found.append(item)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                note(_hits_module(alias.name, modules))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            note(_hits_module(node.module, modules))
            for alias in node.names:
                note(alias.name if alias.name in words else None)
        elif isinstance(node, ast.Attribute):
            note(node.attr if node.attr in words else None)
        elif isinstance(node, ast.Name):
            note(node.id if node.id in words else None)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # __import__("torch"), importlib.import_module("torch")
            note(_hits_module(node.value, modules) if node.value in modules else None)
    return found
