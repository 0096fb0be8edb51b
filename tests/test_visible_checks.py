"""Self-study parity: every fixture that loses points when graded also fails a visible check
of the release, and the visible message names its cause.

The visible checks are what a student runs in the notebook (``verify`` in the test cells).
Here they run in this process on each fixture's functions (the fixture's solution cells
executed in a namespace, as in its notebook); each fixture declares, per spec, the key of the
misconception its message must name (``"cause"``), or ``"raised"`` when the function fails
by raising. The grading outcome of the same fixtures is checked by test_fixture_grades.py.
"""

from __future__ import annotations

import contextlib
import io
import time

import build_fixtures
import nbformat
import numpy as np
import pytest

from cnncourse.checks import CheckError, verify
from cnncourse.checks.misconceptions import CATALOGUE
from cnncourse.checks.registry import TEST_CELLS, get_spec

CASES = build_fixtures.all_cases("cases")
NUMPY_ASSIGNMENTS = ("01_conv_forward", "02_conv_backward")
LOSING = sorted(
    (aid, name)
    for (aid, name), case in CASES.items()
    if aid in NUMPY_ASSIGNMENTS and case.get("expect") and not case.get("untouched")
    and case["notebook"].removesuffix(".ipynb") in TEST_CELLS
)


def _namespace(aid: str, name: str) -> dict:
    """Run the fixture notebook's given and solution cells, as a student's kernel would."""
    case = CASES[(aid, name)]
    path = build_fixtures.case_path("cases", aid, name, case["notebook"])
    nb = nbformat.read(path, as_version=4)
    ns: dict = {"np": np}
    from numpy.lib.stride_tricks import as_strided, sliding_window_view

    ns.update(as_strided=as_strided, sliding_window_view=sliding_window_view)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and (
            meta.get("solution") or str(meta.get("grade_id", "")).startswith("given_")
        ):
            exec(compile(cell.source, f"<{name}:{meta['grade_id']}>", "exec"), ns)  # noqa: S102
    return ns


def _visible(spec_name: str, ns: dict) -> str | None:
    """The visible check's message, or None when it passes."""
    spec = get_spec(spec_name)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            verify(spec_name, ns.get(spec.target), seed=12345)
    except CheckError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("aid,name", LOSING)
def test_fixture_fails_a_visible_check_naming_its_cause(aid, name):
    case = CASES[(aid, name)]
    notebook = case["notebook"].removesuffix(".ipynb")
    ns = _namespace(aid, name)
    causes = case.get("cause", {})
    for grade_id in case["expect"]:
        for spec_name in TEST_CELLS[notebook][grade_id]:
            message = _visible(spec_name, ns)
            assert message is not None, f"{name}: the visible check of {spec_name} passes"
            cause = causes.get(spec_name)
            assert cause, f"{name}: no expected cause declared for {spec_name}:\n{message}"
            if cause == "raised":
                assert " raised " in message.splitlines()[0], message
            else:
                first = message.splitlines()[0]
                assert CATALOGUE[cause].sentence in first, f"{name}/{spec_name}:\n{message}"


@pytest.mark.parametrize("aid,name", LOSING)
def test_other_functions_of_the_fixture_pass(aid, name):
    """A fixture breaks only what it says: its other test cells pass the visible checks."""
    case = CASES[(aid, name)]
    notebook = case["notebook"].removesuffix(".ipynb")
    ns = _namespace(aid, name)
    for grade_id, specs in TEST_CELLS[notebook].items():
        if grade_id not in case["expect"]:
            for spec_name in specs:
                assert _visible(spec_name, ns) is None, f"{name}: {spec_name} fails"


def test_every_misconception_has_a_fixture():
    declared = {
        cause for case in CASES.values() for cause in case.get("cause", {}).values()
    }
    missing = sorted(set(CATALOGUE) - declared)
    assert not missing, f"misconceptions without a fixture that proves them: {missing}"


@pytest.mark.parametrize("notebook", sorted(TEST_CELLS))
def test_visible_checks_are_fast(notebook):
    """Every visible check of the reference solution runs in under 5 s (goal of issue 11)."""
    aid = "02_conv_backward" if notebook.startswith("02_") else notebook
    if notebook not in ("01_conv_forward", "02_conv_backward", "02_efficient_conv"):
        pytest.skip("not a numpy notebook")
    name = next(n for (a, n), c in CASES.items() if a == aid and c["notebook"] == f"{notebook}.ipynb"
                and not c.get("expect") and not c.get("untouched"))
    ns = _namespace(aid, name)
    for grade_id, specs in TEST_CELLS[notebook].items():
        start = time.perf_counter()
        for spec_name in specs:
            assert _visible(spec_name, ns) is None, f"the reference fails {spec_name}"
        seconds = time.perf_counter() - start
        assert seconds < 5, f"{notebook}/{grade_id}: visible check took {seconds:.1f} s"
