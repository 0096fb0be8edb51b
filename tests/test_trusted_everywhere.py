"""One trusted grader, whatever the instructor presses.

The same three submissions of assignment 1 (an honest student; a student whose functions
return zeros and whose solution cell replaces the checks' ``verify`` by one that prints the
pass line; the same patch in a cell added after set-up) are graded in one course folder by
the three ways an instructor can grade, one after the other:

1. ``python -m autograder grade submitted`` (the course's own command);
2. nbgrader's own ``nbgrader autograde`` (the command line);
3. the Formgrader's autograde button, clicked in a real browser (headless Chromium).

Plain nbgrader gave the cheats 7/7 both ways (the test cells ran in the student's kernel);
every way must now read 7 / 0 / 0, and the Formgrader must show the grades ours recorded.
Assignment 6 (three notebooks, frameworks in one of them) is graded the same way by the
command line and the button.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import build_fixtures
import nbformat
import pytest
from servers import BIN, CHROMIUM, CHROMIUM_ARGS, jupyter_lab, need_chromium

pytestmark = pytest.mark.slow

AID = "01_conv_forward"
NB = f"{AID}.ipynb"
STUDENTS = {  # student -> (fixture kind, case)
    "honest": ("cases", "correct"),
    "cheat_in_solution": ("attacks", "verify_patched_in_solution"),
    "cheat_in_added_cell": ("attacks", "verify_patched_in_added_cell"),
}
EXPECTED = {"honest": 7.0, "cheat_in_solution": 0.0, "cheat_in_added_cell": 0.0}


def _env(course: Path, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # the venv is not activated
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CNN_COURSE_ROOT": str(course),
        "CNN_COURSE_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def _run(args, cwd: Path, env: dict, timeout: int = 900) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out[-4000:]}"
    return out


def _tail(path: Path, chars: int = 4000) -> str:
    """The end of a log, for a failure message."""
    return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else ""


def _row(page, student: str, shots: Path, log: Path):
    """The Formgrader's table row of ``student``, once shown; on a time-out the failure
    carries what the page showed and the server's log."""
    row = page.locator("tr", has_text=student).first
    try:
        row.wait_for()
    except Exception as exc:
        page.screenshot(path=str(shots / f"no_row_{student}.png"))
        pytest.fail(
            f"the Formgrader shows no row for {student} ({type(exc).__name__}); page text:\n"
            f"{page.inner_text('body')[:2000]}\nserver log:\n{_tail(log)}"
        )
    return row


def _scores(course: Path) -> dict[str, float]:
    with sqlite3.connect(course / "gradebook.db") as db:
        rows = db.execute(
            "SELECT student.id, SUM(grade.auto_score) FROM grade "
            "JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
            "JOIN submitted_assignment ON submitted_notebook.assignment_id = "
            "submitted_assignment.id JOIN student ON submitted_assignment.student_id = "
            "student.id GROUP BY student.id"
        ).fetchall()
    return {student: float(total or 0) for student, total in rows}


def _clear_scores(course: Path) -> None:
    with sqlite3.connect(course / "gradebook.db") as db:
        db.execute("UPDATE grade SET auto_score = NULL")
    shutil.rmtree(course / "autograded", ignore_errors=True)


@pytest.fixture(scope="module")
def course(root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trusted")
    course = tmp / "course"
    course.mkdir()
    shutil.copy2(root / "nbgrader_config.py", course)
    for name in ("solutions", "assignments"):
        shutil.copytree(root / name, course / name, ignore=shutil.ignore_patterns(".ipynb_*"))
    for student, (kind, case) in STUDENTS.items():
        folder = course / "submitted" / student / AID
        folder.mkdir(parents=True)
        shutil.copy(build_fixtures.case_path(kind, AID, case, NB), folder / NB)
        (folder / "timestamp.txt").write_text("2026-12-06 10:00:00.000000 UTC")
    env = _env(course, tmp / "home")
    _run([sys.executable, "-m", "autograder", "gradebook", AID], course, env)
    for student in STUDENTS:
        _run([str(BIN / "nbgrader"), "db", "student", "add", student], course, env)
    return course, env, tmp


def test_ours_then_nbgrader_cli_then_the_formgrader_button(course):
    course, env, tmp = course
    # 1. the course's own command, into the course's gradebook and autograded/
    _run([sys.executable, "-m", "autograder", "grade", "submitted", "-j", "2"], course, env)
    ours = _scores(course)
    assert ours == EXPECTED, ours

    # 2. nbgrader's own command line
    _clear_scores(course)
    out = _run([str(BIN / "nbgrader"), "autograde", AID, "--force"], course, env)
    assert "trusted grader" in out, out[-2000:]
    cli = _scores(course)
    assert cli == EXPECTED, cli

    # 3. the Formgrader's button, in a real browser
    _formgrader_buttons(course, env, tmp, AID, EXPECTED, 7)
    button = _scores(course)
    assert button == EXPECTED, button


def _formgrader_buttons(
    course: Path, env: dict, tmp: Path, aid: str, expected: dict[str, float], max_score: int
) -> None:
    """The Formgrader shows the grades recorded so far; then, with the scores cleared, its
    autograde button of each student grades again and the page shows the same grades."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    shots = tmp / "screenshots"
    shots.mkdir(exist_ok=True)
    log = tmp / "jupyter.log"
    with jupyter_lab(course, env, log) as (base, token):
        # The Formgrader's table is filled from this API: ask it first, so that a failure
        # says why (the page itself would only time out).
        api = f"{base}/formgrader/api/submissions/{aid}?token={token}"
        try:
            with urllib.request.urlopen(api, timeout=120) as response:
                listed = {row["student"] for row in json.load(response)}
        except OSError as exc:
            pytest.fail(f"the Formgrader's API failed ({exc}):\n{_tail(log)}")
        assert listed == set(expected), (listed, _tail(log))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 950}).new_page()
            page.set_default_timeout(120_000)
            # JupyterLab's page turns the token into a login cookie; the Formgrader's own
            # page accepts the token but sets none, and its table's requests would go to the
            # login page
            page.goto(f"{base}/lab?token={token}")
            page.goto(f"{base}/formgrader/manage_submissions/{aid}")
            for student, score in expected.items():
                row = _row(page, student, shots, log)
                assert f"{score:g} / {max_score}" in row.inner_text(), row.inner_text()
            page.screenshot(path=str(shots / f"formgrader_before_{aid}.png"))
            _clear_scores(course)
            for student in expected:
                row = page.locator("tr", has_text=student).first
                row.locator("td.autograde a").click()
                modal = page.locator("#success-modal, #error-modal").first
                modal.wait_for()
                text = modal.inner_text()
                page.screenshot(path=str(shots / f"button_{aid}_{student}.png"))
                assert "Successfully autograded" in text, text
                modal.locator(".modal-footer button").first.click()  # nbgrader 0.9: "OK"
                modal.wait_for(state="detached")
            page.reload()
            for student, score in expected.items():
                row = _row(page, student, shots, log)
                assert f"{score:g} / {max_score}" in row.inner_text(), row.inner_text()
            browser.close()


# Assignment 6 (numpy, frameworks and a trained ResNet in three notebooks): a student whose
# batchnorm_backward treats the batch statistics as constants, with right framework blocks
# and no ResNet notebook handed in.
MODERN = "06_modern_cnn"
MODERN_PARTS = {
    "06_batchnorm_residual.ipynb": "bn_no_mean_terms",
    "06_framework_blocks.ipynb": "frameworks_correct",
}


def _points(notebook: Path) -> dict[str, float]:
    cells = nbformat.read(notebook, as_version=4).cells
    meta = [c.metadata.get("nbgrader", {}) for c in cells]
    return {m["grade_id"]: m["points"] for m in meta if m.get("grade")}


def test_assignment_6_by_the_cli_and_the_formgrader_button(root, tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy2(root / "nbgrader_config.py", course)
    for name in ("solutions", "assignments"):
        shutil.copytree(root / name / MODERN, course / name / MODERN)
    folder = course / "submitted" / "bn_bug" / MODERN
    folder.mkdir(parents=True)
    cases = build_fixtures.all_cases("cases")
    expected, max_score = 0.0, 0
    for notebook in sorted((root / "solutions" / MODERN).glob("*.ipynb")):
        points = _points(notebook)
        max_score += sum(points.values())
        case = MODERN_PARTS.get(notebook.name)
        if case is None:
            continue  # not handed in: no points, the others are graded
        shutil.copy(build_fixtures.case_path("cases", MODERN, case, notebook.name), folder)
        lost = cases[(MODERN, case)]["expect"]  # the test cells it loses, and what they earn
        expected += sum(lost.get(cell, full) for cell, full in points.items())
    (folder / "timestamp.txt").write_text("2026-12-06 10:00:00.000000 UTC")
    env = _env(course, tmp_path / "home")
    _run([sys.executable, "-m", "autograder", "gradebook", MODERN], course, env)
    _run([str(BIN / "nbgrader"), "db", "student", "add", "bn_bug"], course, env)

    out = _run([str(BIN / "nbgrader"), "autograde", MODERN, "--force"], course, env)
    assert "trusted grader" in out, out[-2000:]
    assert _scores(course) == {"bn_bug": expected}, (expected, out[-2000:])
    _formgrader_buttons(course, env, tmp_path, MODERN, {"bn_bug": expected}, max_score)
    assert _scores(course) == {"bn_bug": expected}


def test_in_kernel_grading_needs_a_loud_opt_in(course):
    """nbgrader's old path (test cells run in the kernel) exists only behind
    CNN_COURSE_IN_KERNEL_GRADING=1, and says so at every run."""
    course, env, _ = course
    out = _run(
        [str(BIN / "nbgrader"), "autograde", AID, "--force", "--student", "honest"],
        course,
        {**env, "CNN_COURSE_IN_KERNEL_GRADING": "1"},
    )
    assert "UNSAFE" in out and "INSIDE the student's kernel" in out, out[-2000:]
