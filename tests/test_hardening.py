"""Attacks and faults: each fixture gets exactly the outcome it should.

The fixtures are in tests/fixtures/attacks/; every one is graded in the same batch as an
honest student, whose grade must not change.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import build_fixtures
import pytest

from autograder.cli import SAMPLES_DIR
from autograder.grading import grade_submissions
from autograder.limits import Limits

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hardening")]

ATTACKS = build_fixtures.all_cases("attacks")
HONEST = "zz_honest"
# Limits small enough to hit quickly; everything else as in production.
TEST_LIMITS = Limits(cell_timeout_s=15, notebook_timeout_s=300, memory_mb=1500, max_processes=40)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    subs = root / "subs"
    for (aid, name), case in ATTACKS.items():
        src = build_fixtures.case_path("attacks", aid, name, case["notebook"])
        (subs / name / aid).mkdir(parents=True)
        shutil.copy(src, subs / name / aid / src.name)
    shutil.copytree(SAMPLES_DIR / "alice_correct", subs / HONEST)
    run = grade_submissions(subs, root / "out", jobs=2, limits=TEST_LIMITS, progress=False)
    return run


def _result(batch, name):
    return next(r for r in batch.results if r.student == name)


@pytest.mark.parametrize("case_name", sorted(name for _, name in ATTACKS))
def test_attack_outcome(batch, case_name):
    case = next(c for (_, n), c in ATTACKS.items() if n == case_name)
    if case_name == "read_hidden_tests" and not batch.isolated:
        pytest.skip("bubblewrap is not available: hidden tests are on a readable disk")
    result = _result(batch, case_name)
    assert result.status == "graded", f"{case_name} was not graded: {result.problems}"
    honest = _result(batch, HONEST)
    assert result.max_score == honest.max_score, "metadata edits must not change the points"
    expect = dict(case.get("expect", {}))
    for cell in result.cells:
        wanted = expect.pop(cell.grade_id, cell.max_score)
        assert cell.score == wanted, (
            f"{case_name}: {cell.grade_id} {cell.score} != {wanted} ({cell.problem}: {cell.message})"
        )
    assert not expect
    if "problem" in case:
        assert any(case["problem"] in p for p in result.problems), result.problems
    if "output_contains" in case:
        nb = batch.out_dir / "autograded" / case_name / "01_conv_forward" / "01_conv_forward.ipynb"
        outputs = json.dumps(json.loads(nb.read_text())["cells"])
        assert case["output_contains"] in outputs


def test_honest_student_unaffected(batch):
    honest = _result(batch, HONEST)
    assert honest.score == honest.max_score > 0


def test_gradebook_not_poisoned(batch):
    con = sqlite3.connect(batch.out_dir / "gradebook.db")
    assert (
        con.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone()[0] == 0
    )


def test_batch_completed(batch):
    assert len(batch.results) == len(ATTACKS) + 1
    assert all(r.status == "graded" for r in batch.results)
