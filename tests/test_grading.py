"""The grading pipeline end to end: demo samples, CSV, feedback, gradebook, resume."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3

import pytest

from autograder.cli import SAMPLES_DIR, main
from autograder.grading import grade_submissions
from autograder.record import GradebookWriter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``make demo``'s command, once: its exit status, what it printed, and its results."""
    import contextlib
    import io
    from types import SimpleNamespace

    out = tmp_path_factory.mktemp("demo") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["demo", "--out", str(out), "--jobs", "2"])
    return SimpleNamespace(
        status=status,
        printed=printed.getvalue(),
        out_dir=out.resolve(),
        csv_path=out / "autograder-grades.csv",
        results=GradebookWriter("", out).load_results(),
    )


def _by_student(run):
    return {r.student: r for r in run.results}


def test_demo_scores(demo_run):
    results = _by_student(demo_run)
    assert set(results) == {"alice_correct", "bob_partly_wrong", "carol_untouched", "dave_raises"}
    full = results["alice_correct"].max_score
    assert full > 0 and results["alice_correct"].score == full
    assert results["carol_untouched"].score == 0
    assert 0 < results["bob_partly_wrong"].score < full
    assert results["dave_raises"].score < full
    lost = {c.grade_id for c in results["dave_raises"].cells if c.score < c.max_score}
    assert lost == {"conv_forward_tests"}
    assert all(r.status == "graded" for r in demo_run.results)


def test_csv_and_feedback_written(demo_run):
    rows = list(csv.DictReader(open(demo_run.csv_path)))
    assert [r["student"] for r in rows] == sorted(r["student"] for r in rows)
    scores = {r["student"]: float(r["score"]) for r in rows}
    assert scores["carol_untouched"] == 0
    html = (
        demo_run.out_dir
        / "feedback"
        / "bob_partly_wrong"
        / "01_conv_forward"
        / "01_conv_forward.html"
    )
    text = html.read_text()
    assert "pool_forward" in text
    assert "BEGIN HIDDEN TESTS" not in text and "hidden tests are not shown" in text
    graded_nb = (
        demo_run.out_dir
        / "autograded"
        / "alice_correct"
        / "01_conv_forward"
        / "01_conv_forward.ipynb"
    )
    assert json.loads(graded_nb.read_text())["cells"]


def test_gradebook_holds_the_scores(demo_run):
    db = demo_run.out_dir / "gradebook.db"
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT student.id, SUM(grade.auto_score) FROM grade "
        "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
        "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
        "JOIN student ON submitted_assignment.student_id = student.id GROUP BY student.id"
    ).fetchall()
    totals = dict(rows)
    assert totals["alice_correct"] == _by_student(demo_run)["alice_correct"].max_score
    assert totals["carol_untouched"] == 0


def test_resume_skips_finished_and_does_not_duplicate(demo_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(demo_run.out_dir, out)
    # pretend the batch was killed before carol was recorded
    GradebookWriter("", out).journal_path("carol_untouched", "01_conv_forward").unlink()
    run = grade_submissions(SAMPLES_DIR, out, jobs=1, progress=False)
    assert sorted(run.skipped) == [
        "alice_correct/01_conv_forward",
        "bob_partly_wrong/01_conv_forward",
        "dave_raises/01_conv_forward",
    ]
    assert len(run.results) == 4
    con = sqlite3.connect(out / "gradebook.db")
    assert con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == 4
    assert con.execute("SELECT COUNT(*) FROM student").fetchone()[0] == 4


def test_cli_demo_checks_expected_outcomes(demo_run):
    assert demo_run.status == 0
    assert "alice_correct" in demo_run.printed and "FAIL" not in demo_run.printed


def test_broken_missing_and_unknown_submissions(tmp_path):
    subs = tmp_path / "subs"
    (subs / "erin" / "01_conv_forward").mkdir(parents=True)
    (subs / "erin" / "01_conv_forward" / "01_conv_forward.ipynb").write_text("{not json")
    (subs / "fred" / "01_conv_forward").mkdir(parents=True)  # submitted nothing
    (subs / "gina" / "99_nonexistent").mkdir(parents=True)
    shutil.copytree(SAMPLES_DIR / "alice_correct", subs / "alice_correct")
    run = grade_submissions(subs, tmp_path / "out", jobs=1, progress=False)
    results = {r.student: r for r in run.results}
    assert results["alice_correct"].score == results["alice_correct"].max_score > 0
    assert results["erin"].score == 0 and results["erin"].status == "graded"
    assert any(p.name == "BrokenNotebook" for p in results["erin"].problems)
    assert results["erin"].max_score == results["alice_correct"].max_score
    assert results["fred"].score == 0 and results["fred"].status == "graded"
    assert results["fred"].max_score == results["alice_correct"].max_score
    assert any(p.name == "MissingNotebook" for p in results["fred"].problems)
    assert results["gina"].status == "failed"
    assert results["gina"].problems[0].name == "UnknownAssignment"
    assert run.unknown == ["gina/99_nonexistent"] and not run.complete


def test_misnamed_notebooks_are_named_and_score_zero(tmp_path):
    """Two notebooks, neither under the expected name: both are named, the assignment is
    graded 0 / 7 (not "failed 0 / 0"), and neither is graded as the other."""
    folder = tmp_path / "subs" / "hana" / "01_conv_forward"
    folder.mkdir(parents=True)
    source = SAMPLES_DIR / "alice_correct" / "01_conv_forward" / "01_conv_forward.ipynb"
    shutil.copy(source, folder / "draft.ipynb")
    shutil.copy(source, folder / "final version.ipynb")
    run = grade_submissions(tmp_path / "subs", tmp_path / "out", jobs=1, progress=False)
    (result,) = run.results
    assert result.status == "graded" and (result.score, result.max_score) == (0, 7)
    (missing,) = [p for p in result.problems if p.name == "MissingNotebook"]
    assert "'draft.ipynb'" in missing.message and "'final version.ipynb'" in missing.message


def test_a_misspelt_assignment_folder_exits_2_unless_lenient(tmp_path, capsys):
    subs = tmp_path / "subs"
    shutil.copytree(SAMPLES_DIR / "alice_correct", subs / "alice_correct")
    (subs / "alice_correct" / "01_conv_forwrd").mkdir()
    out = tmp_path / "out"
    status = main(["grade", str(subs), "--out", str(out), "--jobs", "1"])
    printed = capsys.readouterr()
    assert status == 2
    assert "did you mean 01_conv_forward?" in printed.out
    assert "NOT GRADED: 1 folder(s)" in printed.out
    lenient = main(["grade", str(subs), "--out", str(out), "--jobs", "1", "--lenient"])
    assert lenient == 0


def test_kernel_folder_holds_only_student_files(tmp_path):
    """Even without bubblewrap the kernel never starts next to the graded notebook."""
    import nbformat

    nb = nbformat.read(
        SAMPLES_DIR / "alice_correct" / "01_conv_forward" / "01_conv_forward.ipynb", as_version=4
    )
    probe = nbformat.v4.new_code_cell("import os\nprint('CWD_FILES', sorted(os.listdir('.')))")
    probe["id"] = "probe"
    nb.cells.insert(1, probe)
    folder = tmp_path / "subs" / "ivan" / "01_conv_forward"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "01_conv_forward.ipynb")
    (folder / "my_notes.txt").write_text("mine")
    run = grade_submissions(tmp_path / "subs", tmp_path / "out", progress=False, sandbox=False)
    result = run.results[0]
    assert result.score == result.max_score > 0
    graded = tmp_path / "out" / "autograded" / "ivan" / "01_conv_forward" / "01_conv_forward.ipynb"
    text = json.dumps(json.loads(graded.read_text())["cells"][1]["outputs"])
    assert "CWD_FILES" in text and "my_notes.txt" in text
    assert ".ipynb" not in text, text
