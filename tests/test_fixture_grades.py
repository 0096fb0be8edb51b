"""Every grading fixture earns exactly the points its case description says.

Cases live in tests/fixtures/cases/<assignment>.py; the notebooks are built by
tests/fixtures/build_fixtures.py. The cases of one notebook are graded in one batch, by one
test class per notebook (``pytest --dist loadscope`` keeps a class on one worker, so each
batch runs once).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import build_fixtures
import pytest

from autograder.grading import grade_submissions

CASES = build_fixtures.all_cases("cases")
_runs: dict[str, dict] = {}


def _graded(assignment_id: str, notebook: str, tmp_root: Path) -> dict:
    key = f"{assignment_id}-{notebook}"
    if key not in _runs:
        subs = tmp_root / key / "subs"
        for (aid, name), case in CASES.items():
            if aid == assignment_id and case["notebook"] == notebook:
                src = build_fixtures.case_path("cases", aid, name, case["notebook"])
                folder = subs / name / aid
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, folder / src.name)
        run = grade_submissions(subs, tmp_root / key / "out", jobs=1, progress=False)
        _runs[key] = {r.student: r for r in run.results}
    return _runs[key]


def test_fixtures_are_up_to_date(monkeypatch):
    monkeypatch.setattr("sys.argv", ["build_fixtures.py", "--check"])
    assert build_fixtures.main() == 0, "run: python tests/fixtures/build_fixtures.py"


def check_fixture(assignment_id: str, case_name: str, tmp_path_factory) -> None:
    case = CASES[(assignment_id, case_name)]
    results = _graded(
        assignment_id, case["notebook"], tmp_path_factory.getbasetemp() / "fixture-grades"
    )
    result = results[case_name]
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


def _fixture_class(assignment_id: str, notebook: str) -> type:
    names = sorted(
        n for (a, n), c in CASES.items() if a == assignment_id and c["notebook"] == notebook
    )

    @pytest.mark.slow
    class FixtureScores:
        @pytest.mark.parametrize("case_name", names)
        def test_fixture_score(self, case_name, tmp_path_factory):
            check_fixture(assignment_id, case_name, tmp_path_factory)

    name = "TestScores_" + notebook.removesuffix(".ipynb")
    FixtureScores.__name__ = FixtureScores.__qualname__ = name
    return FixtureScores


for _aid, _notebook in sorted({(a, c["notebook"]) for (a, _), c in CASES.items()}):
    _cls = _fixture_class(_aid, _notebook)
    globals()[_cls.__name__] = _cls
