"""The house rules for every source notebook in ``solutions/``, in one place
(docs/CONVENTIONS.md, "nbgrader cells"): a new assignment is checked by being there.

Each assignment's own tests keep only its facts (which cells, how many points).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from cnncourse.checks.registry import TEST_CELLS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


@pytest.fixture(params=SOURCES, ids=lambda p: p.stem)
def source(request) -> Path:
    return request.param


def test_every_graded_notebook_has_one_source():
    assert sorted(p.stem for p in SOURCES) == sorted(TEST_CELLS)


def test_notebook_is_valid_stripped_and_follows_the_skeleton(source):
    nb = nbformat.read(source, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "no title"
    assert "What you will learn" in first.source
    lines = {line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()}
    assert "## Summary" in lines
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs not stripped"


def test_nbgrader_cells_follow_the_schema(source):
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        meta = _meta(cell)
        if not meta:
            continue
        where = f"{source.name}: {meta.get('grade_id')}"
        assert meta["schema_version"] == 3, where
        assert re.fullmatch(r"[a-z0-9_]+", meta["grade_id"]), where
        if meta["grade"]:  # a test cell
            assert meta["locked"] and not meta["solution"] and meta["points"] > 0, where
            visible, hidden_marker, hidden = cell.source.partition("### BEGIN HIDDEN TESTS")
            assert hidden_marker and "### END HIDDEN TESTS" in hidden, where
            names = [re.findall(r'verify\("(\w+)"', part) for part in (visible, hidden)]
            assert names[0] and names[0] == names[1], f"{where}: visible and hidden differ"
        elif meta["solution"]:  # student code
            assert not meta["locked"], where
            begin = cell.source.count("### BEGIN SOLUTION")
            assert begin == cell.source.count("### END SOLUTION") >= 1, where
        else:  # read-only: setup, instructions, given code
            assert meta["locked"], where


def test_test_cells_are_the_registered_ones(source):
    """The test cells and the checks they call are what the grader decides them by."""
    nb = nbformat.read(source, as_version=4)
    called = {}
    for cell in nb.cells:
        meta = _meta(cell)
        if meta.get("grade"):
            visible = cell.source.partition("### BEGIN HIDDEN TESTS")[0]
            called[meta["grade_id"]] = tuple(re.findall(r'verify\("(\w+)"', visible))
    assert called == TEST_CELLS[source.stem]


@pytest.mark.parametrize("assignment", sorted({p.parent for p in SOURCES}), ids=lambda p: p.name)
def test_grade_ids_are_unique_in_an_assignment(assignment):
    ids = [
        _meta(cell)["grade_id"]
        for path in sorted(assignment.glob("*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if _meta(cell)
    ]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, duplicates
