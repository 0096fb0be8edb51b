"""Build student notebooks from a release: for grading fixtures, samples and benchmarks.

A *case* fills every solution cell of the released notebook with the reference solution
(from ``solutions/``, markers removed), then swaps the cells named in ``replace`` for
other code; ``untouched`` keeps the bare release (stubs that raise NotImplementedError).
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np

from . import course

_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def reference_sources(assignment_id: str, notebook: str) -> dict[str, str]:
    """grade_id -> source of each solution cell of the source notebook, markers removed."""
    nb = nbformat.read(course.solutions_dir() / assignment_id / notebook, as_version=4)
    sources = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            lines = [ln for ln in cell.source.split("\n") if ln.strip() not in _MARKERS]
            sources[meta["grade_id"]] = "\n".join(lines)
    return sources


def given_namespace(assignment_id: str, notebook: str) -> dict:
    """numpy, the stride tricks and what the notebook's read-only *given* code cells define
    (assignment 2's forward layers): for running reference solutions outside a notebook,
    e.g. in tests and benchmarks."""
    from numpy.lib.stride_tricks import as_strided, sliding_window_view

    namespace = {"np": np, "as_strided": as_strided, "sliding_window_view": sliding_window_view}
    nb = nbformat.read(course.solutions_dir() / assignment_id / notebook, as_version=4)
    for cell in nb.cells:
        grade_id = _grade_id(cell) or ""
        if cell.cell_type == "code" and grade_id.startswith("given_"):
            exec(compile(cell.source, f"<{notebook}:{grade_id}>", "exec"), namespace)  # noqa: S102
    return namespace


def run_solution_cells(
    assignment_id: str,
    notebook: str,
    namespace: dict | None = None,
    grade_ids: list[str] | tuple[str, ...] | None = None,
) -> dict:
    """Execute the reference solution cells of a source notebook (all of them, or those
    named, in the given order) in ``namespace``; returns the namespace."""
    namespace = {} if namespace is None else namespace
    sources = reference_sources(assignment_id, notebook)
    for grade_id in grade_ids or list(sources):
        code = compile(sources[grade_id], f"<{notebook}:{grade_id}>", "exec")
        exec(code, namespace)  # noqa: S102 - the course's own reference solutions
    return namespace


def build_case(assignment_id: str, case: dict) -> nbformat.NotebookNode:
    """The student notebook described by ``case`` (keys: notebook, replace, untouched)."""
    notebook = case["notebook"]
    release = nbformat.read(course.assignments_dir() / assignment_id / notebook, as_version=4)
    nb = copy.deepcopy(release)
    if case.get("untouched"):
        return nb
    sources = reference_sources(assignment_id, notebook)
    replace = case.get("replace", {})
    unknown = set(replace) - set(sources)
    if unknown:
        raise KeyError(f"{assignment_id}/{notebook}: no solution cell named {sorted(unknown)}")
    # replace_with: grade_id -> function(reference sources) -> new source
    for grade_id, make in case.get("replace_with", {}).items():
        replace = {**replace, grade_id: make(sources)}
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        if grade_id in sources:
            cell.source = replace.get(grade_id, sources[grade_id])
    for mutate in case.get("mutations", []):
        mutate(nb)
    return nb


def load_cases(path: Path) -> dict[str, dict]:
    """The ``CASES`` dict of a cases module (file names may start with digits)."""
    spec = importlib.util.spec_from_file_location(f"cases_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Write ``nb`` without outputs and with the kernelspec JupyterLab writes (a notebook
    that names another kernel keeps it); returns True when the file changed."""
    from .release import normalise_kernelspec

    normalise_kernelspec(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    text = nbformat.writes(nb) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
