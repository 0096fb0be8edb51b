"""Plain nbgrader on this course, as an instructor and students run it from a fresh clone.

Every command runs the venv's tools by path with a PATH that does not contain the venv's
``bin/`` (the venv not activated), in a temporary copy of the course.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main as autograder_main
from autograder.feedback import HIDDEN_NOTE, RedactHiddenTests, redact_source
from autograder.fixtures import build_case, write_notebook
from autograder.release import JUPYTERLAB_KERNELSPEC, JUPYTERLAB_LANGUAGE_INFO

BIN = Path(sys.executable).parent
AID = "01_conv_forward"
NOTEBOOK = f"{AID}.ipynb"
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


def _copy_course(root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copy2(root / "nbgrader_config.py", dest)
    for name in ("solutions", "assignments"):
        shutil.copytree(root / name, dest / name, ignore=shutil.ignore_patterns(".ipynb_*"))
    return dest


def _env(home: Path, course: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    assert str(BIN) not in CLEAN_PATH.split(":")
    return {
        "PATH": CLEAN_PATH,  # the venv is not activated
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CNN_COURSE_ROOT": str(course),
        "CNN_COURSE_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def _run(args, cwd: Path, env: dict, timeout: int = 600) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out[-4000:]}"
    return out


def _nbgrader(*args, cwd: Path, env: dict) -> str:
    return _run([str(BIN / "nbgrader"), *args], cwd, env)


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _gradebook(course: Path) -> sqlite3.Connection:
    return sqlite3.connect(course / "gradebook.db")


def _hidden_lines(root: Path) -> list[str]:
    """Distinctive lines of the hidden tests of assignment 1 (not also in the release)."""
    source = (root / "solutions" / AID / NOTEBOOK).read_text()
    release = (root / "assignments" / AID / NOTEBOOK).read_text()
    lines = []
    for cell in json.loads(source)["cells"]:
        text = "".join(cell["source"])
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
            for line in block.splitlines():
                line = line.strip()
                if len(line) >= 20 and json.dumps(line)[1:-1] not in release:
                    lines.append(line)
    assert len(lines) >= 4, "assignment 1 should have hidden tests"
    return lines


def _assert_no_hidden_tests(html_path: Path, hidden: list[str]) -> None:
    page = html_path.read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "BEGIN HIDDEN TESTS" not in text, html_path
    leaked = [line for line in hidden if line in text]
    assert not leaked, f"{html_path} shows hidden tests: {leaked[:3]}"
    assert HIDDEN_NOTE in text, f"{html_path} does not say that hidden tests are not shown"


# -- fast checks --------------------------------------------------------------------------


def test_course_config_makes_plain_nbgrader_safe(root):
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    assert config.Exchange.root == str(root / "exchange")
    assert (root / "exchange").is_dir(), "loading the config creates the exchange folder"
    assert "autograder.feedback.RedactHiddenTests" in config.GenerateFeedback.preprocessors
    assert "autograder.feedback.RestoreHiddenTests" in config.Autograde.sanitize_preprocessors


def test_redaction_removes_hidden_regions_and_tracebacks():
    cell = nbformat.v4.new_code_cell(
        "check(x)\n### BEGIN HIDDEN TESTS\nassert secret(x) == 42\n### END HIDDEN TESTS\n"
    )
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 1, "locked": True}
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="x differs at index (0, 1)",
            traceback=["Traceback", "----> 3 assert secret(x) == 42"],
        )
    ]
    cell, _ = RedactHiddenTests().preprocess_cell(cell, {}, 0)
    assert "secret" not in cell.source and cell.source.startswith("check(x)")
    assert cell.source.endswith(HIDDEN_NOTE)
    assert cell.outputs[0]["traceback"] == ["AssertionError: x differs at index (0, 1)"]
    # A region that is never closed is removed up to the end of the cell, never shown.
    text, removed = redact_source("a\n### BEGIN HIDDEN TESTS\nb\nc", "BEGIN HIDDEN", "END HIDDEN")
    assert removed and text == "a"
    # A cell without hidden tests is left alone, tracebacks included.
    plain = nbformat.v4.new_code_cell("print(1)")
    plain.outputs = [nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["tb"])]
    plain, _ = RedactHiddenTests().preprocess_cell(plain, {}, 0)
    assert plain.source == "print(1)" and plain.outputs[0]["traceback"] == ["tb"]


def test_gitignore_covers_nbgrader_working_folders(root):
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    paths = [
        "gradebook.db",
        "grades.csv",
        ".nbgrader.log",
        "submitted/alice/01_conv_forward/01_conv_forward.ipynb",
        "autograded/alice/01_conv_forward/01_conv_forward.ipynb",
        "feedback/alice/01_conv_forward/01_conv_forward.html",
        "release/01_conv_forward/01_conv_forward.ipynb",
        "exchange/cnn-course/outbound/01_conv_forward/01_conv_forward.ipynb",
        "cnn-course/01_conv_forward/01_conv_forward.ipynb",
        "graded/grades.csv",
        ".autograder/grading-secret",
        ".autograder/results/alice__0123.json",
        "autograder-grades.csv",
        "class-report/index.html",
    ]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=root, capture_output=True, text=True
    )
    ignored = set(result.stdout.split())
    assert ignored == set(paths), f"not ignored: {sorted(set(paths) - ignored)}"


def test_strip_clears_outputs_and_sets_jupyterlab_kernel_metadata(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=3)
    cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"})]
    nb.cells.append(cell)
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, path)
    other = tmp_path / "b.ipynb"  # names another kernel: keeps it
    nb_other = nbformat.v4.new_notebook()
    nb_other.metadata["kernelspec"] = {"name": "evil", "display_name": "E", "language": "python"}
    nbformat.write(nb_other, other)
    other_before = other.read_text()

    assert autograder_main(["strip", "--check", str(path), str(other)]) == 1
    assert autograder_main(["strip", str(path), str(other)]) == 0
    assert autograder_main(["strip", "--check", str(path), str(other)]) == 0
    capsys.readouterr()
    stripped = nbformat.read(path, as_version=4)
    assert stripped.cells[0].outputs == [] and stripped.cells[0].execution_count is None
    assert "widgets" not in stripped.metadata
    assert stripped.metadata.kernelspec == JUPYTERLAB_KERNELSPEC
    assert stripped.metadata.language_info == JUPYTERLAB_LANGUAGE_INFO
    assert other.read_text() == other_before
    assert autograder_main(["strip", str(tmp_path / "missing.ipynb")]) == 2

    written = tmp_path / "c.ipynb"  # fixtures are written the same way
    write_notebook(nbformat.v4.new_notebook(), written)
    assert nbformat.read(written, as_version=4).metadata.kernelspec == JUPYTERLAB_KERNELSPEC


def test_committed_notebooks_open_unmodified_in_jupyterlab(capsys):
    """Every committed notebook: no outputs, and the kernel metadata JupyterLab writes (else
    it marks the notebook unsaved as it opens). Fix: python -m autograder strip --all."""
    status = autograder_main(["strip", "--all", "--check"])
    out = capsys.readouterr().out
    assert status == 0, out


# -- gradebook from a fresh clone ---------------------------------------------------------


def test_generate_assignment_force_without_activation_keeps_release(root, tmp_path):
    course = _copy_course(root, tmp_path / "course")
    env = _env(tmp_path / "home", course)
    before = _tree_digest(course / "assignments")
    out = _nbgrader("generate_assignment", AID, "--force", cwd=course, env=env)
    assert "alembic" not in out.lower(), out
    assert _tree_digest(course / "assignments") == before, "the release changed"
    with _gradebook(course) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert db.execute("SELECT name FROM assignment").fetchall() == [(AID,)]


def test_gradebook_command_records_every_assignment(root, tmp_path):
    course = _copy_course(root, tmp_path / "course")
    env = _env(tmp_path / "home", course)
    before = _tree_digest(course / "assignments")
    # A gradebook that nbgrader left half-made (its tables, no alembic_version: what
    # `alembic` missing from PATH leaves) is repaired.
    from nbgrader.api import Base
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{course / 'gradebook.db'}")
    Base.metadata.create_all(bind=engine)
    engine.dispose()
    out = _run([sys.executable, "-m", "autograder", "gradebook"], course, env)
    assert "alembic_version" in out
    assert _tree_digest(course / "assignments") == before, "assignments/ was touched"
    ids = sorted(p.name for p in (root / "solutions").iterdir() if any(p.glob("*.ipynb")))
    with _gradebook(course) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert sorted(r[0] for r in db.execute("SELECT name FROM assignment")) == ids
        notebooks = {r[0] for r in db.execute("SELECT name FROM notebook")}
    assert notebooks == {p.stem for p in (root / "solutions").glob("*/*.ipynb")}
    bad = subprocess.run(
        [sys.executable, "-m", "autograder", "gradebook", "99_nope"],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "99_nope" in bad.stderr


# -- the round trip -----------------------------------------------------------------------


def _git(*args, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.mark.slow
def test_round_trip_three_students(root, tmp_path):
    """generate, release, fetch, submit, collect, autograde (nbgrader's command, which runs
    the trusted grader, and ours), feedback (plain, Formgrader API, fetched by the students),
    export; the course folder is a git checkout whose status stays clean."""
    course = _copy_course(root, tmp_path / "course")
    shutil.copy(root / ".gitignore", course / ".gitignore")
    env = _env(tmp_path / "home", course)
    _git("init", "-q", cwd=course)
    _git("add", "-A", cwd=course)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "course", cwd=course)
    hidden = _hidden_lines(root)
    _run([sys.executable, "-m", "autograder", "gradebook", AID], course, env)
    _nbgrader("release_assignment", AID, cwd=course, env=env)
    exchange = ["--course=cnn-course", f"--Exchange.root={course / 'exchange'}"]

    students = {"alice": "correct", "bob": "untouched", "carol": "edits a test cell"}
    homes = {}
    for student, kind in students.items():
        home = tmp_path / "students" / student
        senv = _env(home, course)
        _nbgrader("fetch_assignment", AID, *exchange, cwd=home, env=senv)
        path = home / AID / NOTEBOOK
        assert path.is_file()
        if kind != "untouched":
            nb = build_case(AID, {"notebook": NOTEBOOK})
            if kind == "edits a test cell":
                test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
                test_cell.source += "\nprint('I was here')"
            write_notebook(nb, path)
        _nbgrader("submit", AID, *exchange, f"--student={student}", cwd=home, env=senv)
        homes[student] = (home, senv)

    _nbgrader("collect", AID, cwd=course, env=env)
    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == sorted(students)

    # nbgrader's own command runs the trusted grader: carol's edited test cell is restored
    # and decided by the grader, bob's stubs score 0.
    out = _nbgrader("autograde", AID, cwd=course, env=env)
    assert "trusted grader" in out and "SAWarning" not in out, out[-3000:]
    with _gradebook(course) as db:
        plain_scores = dict(
            db.execute(
                "SELECT student.id, SUM(grade.auto_score) FROM grade JOIN submitted_notebook "
                "ON grade.notebook_id = submitted_notebook.id JOIN submitted_assignment ON "
                "submitted_notebook.assignment_id = submitted_assignment.id JOIN student ON "
                "submitted_assignment.student_id = student.id GROUP BY student.id"
            ).fetchall()
        )
    assert plain_scores == {"alice": 7.0, "bob": 0.0, "carol": 7.0}, plain_scores

    # Ours, on the collected folder, into the course's gradebook and autograded/.
    _run([sys.executable, "-m", "autograder", "grade", "submitted", "-j", "2"], course, env)
    with open(course / "autograder-grades.csv", newline="") as fh:
        ours = {r["student"]: float(r["score"]) for r in csv.DictReader(fh)}
    assert ours == {"alice": 7.0, "bob": 0.0, "carol": 7.0}, ours

    # Feedback from plain nbgrader: hidden tests removed, messages kept.
    _nbgrader("generate_feedback", AID, cwd=course, env=env)
    for student in students:
        _assert_no_hidden_tests(course / "feedback" / student / AID / f"{AID}.html", hidden)
    bob_text = (course / "feedback" / "bob" / AID / f"{AID}.html").read_text()
    assert "NotImplementedError" in bob_text

    # The Formgrader's "Generate Feedback" button: NbGraderAPI with the config the
    # Formgrader loads (nbgrader_config.py of the folder Jupyter runs in).
    shutil.rmtree(course / "feedback")
    button = (
        "from nbgrader.apps.baseapp import NbGrader\n"
        "from nbgrader.apps.api import NbGraderAPI\n"
        "app = NbGrader()\n"
        "app.load_config_file()\n"
        f"result = NbGraderAPI(config=app.config).generate_feedback({AID!r}, 'bob', force=True)\n"
        "assert result['success'], result\n"
    )
    _run([sys.executable, "-c", button], course, env)
    _assert_no_hidden_tests(course / "feedback" / "bob" / AID / f"{AID}.html", hidden)

    # Students fetch their feedback through the exchange.
    _nbgrader("generate_feedback", AID, "--force", cwd=course, env=env)
    _nbgrader("release_feedback", AID, cwd=course, env=env)
    for student, (home, senv) in homes.items():
        _nbgrader("fetch_feedback", AID, *exchange, f"--student={student}", cwd=home, env=senv)
        fetched = list((home / AID / "feedback").glob(f"*/{AID}.html"))
        assert len(fetched) == 1, f"{student} got {fetched}"
        _assert_no_hidden_tests(fetched[0], hidden)

    _nbgrader("export", cwd=course, env=env)
    with open(course / "grades.csv", newline="") as fh:
        plain = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh)}
    assert plain == {"alice": 7.0, "bob": 0.0, "carol": 7.0}

    # Nothing of the round trip (gradebook, secret, journal, submissions, feedback) is
    # offered for commit.
    assert (course / ".autograder" / "grading-secret").is_file()
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=course) == ""
