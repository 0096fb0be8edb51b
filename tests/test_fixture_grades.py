"""Every grading fixture earns exactly the points its case description says.

Cases live in tests/fixtures/cases/<assignment>.py; the notebooks are built by
tests/fixtures/build_fixtures.py. All cases of one assignment are graded in one batch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import build_fixtures
import pytest

from autograder.grading import grade_submissions

CASES = build_fixtures.all_cases("cases")
_runs: dict[str, dict] = {}


def _graded(assignment_id: str, tmp_root: Path) -> dict:
    if assignment_id not in _runs:
        subs = tmp_root / assignment_id / "subs"
        for (aid, name), case in CASES.items():
            if aid == assignment_id:
                src = build_fixtures.case_path("cases", aid, name, case["notebook"])
                folder = subs / name / aid
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, folder / src.name)
        run = grade_submissions(subs, tmp_root / assignment_id / "out", jobs=1, progress=False)
        _runs[assignment_id] = {r.student: r for r in run.results}
    return _runs[assignment_id]


def test_fixtures_are_up_to_date(monkeypatch):
    monkeypatch.setattr("sys.argv", ["build_fixtures.py", "--check"])
    assert build_fixtures.main() == 0, "run: python tests/fixtures/build_fixtures.py"


@pytest.mark.slow
@pytest.mark.parametrize(
    "assignment_id,case_name",
    [
        pytest.param(aid, name, marks=pytest.mark.xdist_group(f"fixtures-{aid}"))
        for (aid, name) in sorted(CASES)
    ],
)
def test_fixture_scores(assignment_id, case_name, tmp_path_factory):
    results = _graded(assignment_id, tmp_path_factory.getbasetemp() / "fixture-grades")
    result = results[case_name]
    case = CASES[(assignment_id, case_name)]
    assert result.status == "graded", result.problems
    expect = dict(case.get("expect", {}))
    got = {c.grade_id: c.score for c in result.cells}
    notebook = case["notebook"].removesuffix(".ipynb")
    # A case submits one notebook; other notebooks of the assignment are missing (0 points).
    for cell in (c for c in result.cells if c.notebook == notebook):
        wanted = expect.pop(cell.grade_id, cell.max_score)
        assert cell.score == pytest.approx(wanted), (
            f"{case_name}: {cell.grade_id} earned {cell.score}, expected {wanted} "
            f"({cell.problem}: {cell.message}); all: {got}"
        )
    assert not expect, f"{case_name}: expected test cells not found: {sorted(expect)}"
