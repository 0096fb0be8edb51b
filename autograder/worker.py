"""Grade one student's submission of one assignment, in a scratch course folder.

The worker is a plain function of picklable data (:class:`GradeTask` in,
:class:`SubmissionResult` out), so it runs the same way in-process, in a process pool or on
a Dask worker on another machine. It uses nbgrader's own converters (Autograde,
GenerateFeedback) with the course's steps plugged in (:mod:`autograder.nbgrader_steps`,
:mod:`autograder.execute`), writes to a private scratch gradebook, and hands the scores
back; the grader's single writer records them (:mod:`autograder.record`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
import socket
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.apps.api import NbGraderAPI
from nbgrader.converters import Autograde as NbgraderAutograde
from nbgrader.utils import capture_log, temp_attrs

from . import course
from .problems import Problem, ProblemName
from .watchdog import become_subreaper, children, kill_new_children


@dataclass
class GradeTask:
    """Everything a worker needs, as plain data (no paths shared with the grader)."""

    student: str
    assignment: str
    files: dict[str, bytes]  # the submission, already read safely (autograder.intake)
    template_db: bytes  # scratch gradebook already holding the assignment (from release)
    source_files: dict[str, bytes] = field(default_factory=dict)  # non-notebook source files
    limits: dict = field(default_factory=dict)
    redact_hidden: bool = True
    bwrap: str = ""
    secret: str = ""  # seeds the grader's cases; never sent to the kernel
    problems: list[Problem] = field(default_factory=list)  # found before grading
    # The digits a kernel may train on (cnncourse.data.fast_subset_bytes) and the held-out
    # digits the grader measures accuracy on (grading_digits_bytes), so that a worker needs
    # no copy of the course's data.
    training_digits: bytes = b""
    grading_digits: bytes = b""
    course_config: str = ""  # the course's nbgrader_config.py (a worker needs no checkout)


@dataclass
class CellResult:
    notebook: str
    grade_id: str
    score: float
    max_score: float
    problem: str = ""  # name of the problem that cost the points ("" when full marks)
    message: str = ""  # the grader's message for the student
    needs_manual: bool = False
    cause: str = ""  # key of the recognised misconception (cnncourse.checks.misconceptions)


@dataclass
class SubmissionResult:
    """The outcome of grading one submission (picklable, JSON-able)."""

    student: str
    assignment: str
    status: str  # "graded" or "failed" (the grader itself could not grade it)
    score: float = 0.0
    max_score: float = 0.0
    cells: list[CellResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    autograded: dict[str, str] = field(default_factory=dict)  # notebook file -> JSON text
    feedback: dict[str, str] = field(default_factory=dict)  # html file -> html text
    seconds: float = 0.0
    peak_mb: float = 0.0  # the kernel's peak memory
    grader_peak_mb: float = 0.0  # the grading process's own peak (its max RSS)
    timestamp: str = ""  # when it was submitted (nbgrader's timestamp.txt), "" if unknown
    submission_secret: str = ""  # nbgrader's submission_secret.txt (release_feedback needs it)
    worker: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds per grading step

    def to_json(self) -> dict:
        data = asdict(self)
        data["problems"] = [p.to_json() for p in self.problems]
        return data

    @classmethod
    def from_json(cls, data: dict) -> SubmissionResult:
        data = dict(data)
        data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
        data["problems"] = [Problem.from_json(p) for p in data.get("problems", [])]
        return cls(**data)


def _write_files(root: Path, files: dict[str, bytes], skip_notebooks: bool = False) -> None:
    for rel, content in files.items():
        rel_path = Path(rel)
        if rel_path.is_absolute() or ".." in rel_path.parts:
            continue  # never write outside the folder
        if skip_notebooks and rel_path.suffix == ".ipynb":
            continue
        target = root / rel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


@contextlib.contextmanager
def _digits(scratch: Path, task: GradeTask):
    """The training digits for the sandbox (its own folder, bound read-only) and, while the
    task is graded, the grader's held-out digits for this process (never in the sandbox)."""
    from cnncourse import data

    if task.training_digits:
        data.write_fast_subset(scratch / "sandbox-data", task.training_digits)
    before = os.environ.get(data.GRADING_DIGITS_ENV)
    if task.grading_digits:
        path = scratch / "grader-data" / "grading-digits.npz"
        path.parent.mkdir(mode=0o700)
        path.write_bytes(task.grading_digits)
        os.environ[data.GRADING_DIGITS_ENV] = str(path)
        data.clear_cache()
    try:
        yield
    finally:
        if task.grading_digits:
            if before is None:
                os.environ.pop(data.GRADING_DIGITS_ENV, None)
            else:
                os.environ[data.GRADING_DIGITS_ENV] = before
            data.clear_cache()


def _grader_config(scratch: Path, task: GradeTask, report: Path):
    config_path = None
    if task.course_config:
        config_path = scratch / "config" / "nbgrader_config.py"
        config_path.parent.mkdir()
        config_path.write_text(task.course_config, encoding="utf-8")
    config = course.course_config(scratch, config_path=config_path)
    # The course's sanitize steps (nbgrader_config.py), with the step that restores the
    # release's test cells also flagging the cells a student changed.
    config.Autograde.sanitize_preprocessors = [
        "autograder.nbgrader_steps.OverwriteCellsAndFlags"
        if step == "autograder.feedback.RestoreHiddenTests"
        else step
        for step in config.Autograde.sanitize_preprocessors
    ]
    if "autograder.nbgrader_steps.OverwriteCellsAndFlags" not in (
        config.Autograde.sanitize_preprocessors
    ):
        raise RuntimeError("nbgrader_config.py: no RestoreHiddenTests step to build on")
    config.Autograde.autograde_preprocessors = [
        "autograder.execute.SandboxedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "autograder.nbgrader_steps.SaveVerdicts",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    # Deleted test cells come back from the gradebook: deleting a test cannot skip it.
    config.OverwriteCellsAndFlags.add_missing_cells = True
    executor = config.SandboxedExecute
    executor.workdir = str(scratch / "work")
    executor.runtime_dir = str(scratch / "runtime")
    executor.limits = task.limits
    executor.bwrap = task.bwrap
    executor.report_file = str(report)
    executor.secret = task.secret
    if task.training_digits:
        executor.data_dir = str(scratch / "sandbox-data")
    executor.raise_on_iopub_timeout = False
    # Set here whatever nbgrader_config.py says: --show-hidden is the only way to keep
    # hidden-test source in the feedback.
    feedback = ["nbgrader.preprocessors.GetGrades"]
    if task.redact_hidden:
        feedback.append("autograder.feedback.RedactHiddenTests")
    config.GenerateFeedback.preprocessors = feedback + [
        "nbconvert.preprocessors.sanitize.SanitizeHTML",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    # an nbconvert preprocessor does nothing until enabled: students' markdown and outputs
    # lose <script>, event handlers and javascript: links in the feedback
    config.SanitizeHTML.enabled = True
    config.SanitizeHTML.strip = True
    return config


def _cells(db_url: str, task: GradeTask, verdicts: dict[str, dict]) -> list[CellResult]:
    cells = []
    with Gradebook(db_url) as gb:
        submission = gb.find_submission(task.assignment, task.student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                score = grade.score if grade.score is not None else (grade.auto_score or 0.0)
                verdict = verdicts.get(f"{nb.name}/{grade.name}", {})
                result = CellResult(nb.name, grade.name, float(score), float(grade.max_score))
                if score < grade.max_score:
                    result.problem = verdict.get("problem") or ProblemName.NOT_RUN
                    result.message = verdict.get("message") or "this test cell was not graded"
                    result.cause = verdict.get("cause") or ""
                result.needs_manual = bool(grade.needs_manual_grade)
                cells.append(result)
    return sorted(cells, key=lambda c: (c.notebook, c.grade_id))


def _zero_cells(db_url: str, assignment: str) -> list[CellResult]:
    """Every test cell of the assignment at 0 points (nothing gradable was submitted)."""
    cells = []
    with Gradebook(db_url) as gb:
        for nb in gb.find_assignment(assignment).notebooks:
            for cell in nb.grade_cells:
                cells.append(
                    CellResult(
                        nb.name,
                        cell.name,
                        0.0,
                        float(cell.max_score),
                        ProblemName.NOT_SUBMITTED,
                        "no gradable notebook",
                    )
                )
    return sorted(cells, key=lambda c: (c.notebook, c.grade_id))


def _autograde(api: NbGraderAPI, assignment: str, student: str) -> dict:
    """nbgrader's own Autograde converter, with the course's steps configured (the
    converter the course's nbgrader_config.py installs for the command line and the
    Formgrader calls this worker: it is not the one to run here)."""
    with temp_attrs(api.coursedir, assignment_id=assignment, student_id=student):
        app = NbgraderAutograde(coursedir=api.coursedir, parent=api)
        app.force = True
        app.create_student = True
        return capture_log(app)


def expected_notebooks(template_db: bytes, assignment: str) -> list[str]:
    """Notebook names (without .ipynb) of ``assignment`` in a template gradebook."""
    with tempfile.TemporaryDirectory(prefix="cnn-template-") as tmp:
        path = Path(tmp) / "gradebook.db"
        path.write_bytes(template_db)
        with Gradebook(f"sqlite:///{path}") as gb:
            return sorted(nb.name for nb in gb.find_assignment(assignment).notebooks)


def grade_task(task: GradeTask) -> SubmissionResult:
    """Autograde one submission. Never raises: failures come back as ``status='failed'``."""
    from sqlalchemy.exc import SAWarning

    # nbgrader's gradebook code triggers SQLAlchemy autoflush warnings that mean nothing here.
    warnings.filterwarnings("ignore", category=SAWarning)
    become_subreaper()
    before = children()
    start = time.monotonic()
    result = SubmissionResult(task.student, task.assignment, status="failed")
    result.problems = list(task.problems)
    result.worker = socket.gethostname()
    result.timestamp = _timestamp(task.files.get("timestamp.txt", b""))
    secret = task.files.get("submission_secret.txt", b"")[:200].decode("ascii", "replace").strip()
    result.submission_secret = secret if secret.isprintable() else ""
    _reset_peak_memory()
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grade-"))
    stack = contextlib.ExitStack()
    try:
        (scratch / "gradebook.db").write_bytes(task.template_db)
        db_url = f"sqlite:///{scratch / 'gradebook.db'}"
        source = scratch / course.SOURCE_DIR_NAME / task.assignment
        source.mkdir(parents=True)
        _write_files(source, task.source_files)
        # nbgrader's student id is the folder's printable name (odd names are escaped).
        submitted = scratch / "submitted" / task.student / task.assignment
        submitted.mkdir(parents=True)
        _write_files(submitted, task.files)
        # The kernel's folder: the student's own files and the assignment's data files,
        # never a notebook (the graded copy, with hidden tests, lives elsewhere).
        work = scratch / "work"
        work.mkdir()
        _write_files(work, task.source_files, skip_notebooks=True)
        _write_files(work, task.files, skip_notebooks=True)
        stack.enter_context(_digits(scratch, task))
        if not any(submitted.glob("*.ipynb")):
            result.cells = _zero_cells(db_url, task.assignment)
            result.max_score = round(sum(c.max_score for c in result.cells), 6)
            result.status = "graded"
            return result

        report = scratch / "execute-report.json"
        api = NbGraderAPI(config=_grader_config(scratch, task, report))
        api.log.setLevel(logging.ERROR)
        t0 = time.monotonic()
        outcome = _autograde(api, task.assignment, task.student)
        result.timings["autograde"] = round(time.monotonic() - t0, 2)
        if not outcome["success"]:
            text = _short(outcome.get("log", "") + "\n" + outcome.get("error", ""))
            result.problems.append(Problem(ProblemName.GRADER_ERROR, text))
            return result
        verdicts: dict[str, dict] = {}
        for info in _reports(scratch):
            result.peak_mb = max(result.peak_mb, round(info.get("peak_mb", 0.0), 1))
            result.problems += [Problem.from_json(p) for p in info.get("problems", [])]
            notebook = info.get("notebook", "")
            for grade_id, verdict in info.get("verdicts", {}).items():
                verdicts[f"{notebook}/{grade_id}"] = verdict
        t0 = time.monotonic()
        feedback = api.generate_feedback(task.assignment, task.student, force=True)
        result.timings["feedback"] = round(time.monotonic() - t0, 2)
        if not feedback["success"]:
            result.problems.append(
                Problem(ProblemName.GRADER_ERROR, "feedback: " + _short(feedback.get("error", "")))
            )

        autograded = scratch / "autograded" / task.student / task.assignment
        result.cells = _cells(db_url, task, verdicts)
        result.score = round(sum(c.score for c in result.cells), 6)
        result.max_score = round(sum(c.max_score for c in result.cells), 6)
        for nb_path in sorted(autograded.glob("*.ipynb")):
            result.autograded[nb_path.name] = nb_path.read_text(encoding="utf-8")
        feedback_dir = scratch / "feedback" / task.student / task.assignment
        for html in sorted(feedback_dir.glob("*.html")):
            result.feedback[html.name] = html.read_text(encoding="utf-8")
        result.status = "graded"
        return result
    except Exception:  # the grader must report, never crash the batch
        result.problems.append(Problem(ProblemName.GRADER_ERROR, _short(traceback.format_exc())))
        return result
    finally:
        stack.close()
        kill_new_children(before)
        result.seconds = round(time.monotonic() - start, 2)
        result.grader_peak_mb = _peak_memory_mb()
        shutil.rmtree(scratch, ignore_errors=True)


def _reset_peak_memory() -> None:
    """Start this process's peak-memory count anew (a pool worker grades many submissions;
    Linux resets the high-water mark when 5 is written to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_memory_mb() -> float:
    """This process's peak resident memory since the last reset, in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timestamp(data: bytes) -> str:
    """The submission's ``timestamp.txt`` if it holds one nbgrader can read, else ""."""
    from nbgrader.utils import parse_utc

    text = data[:100].decode("utf-8", "replace").strip()
    try:
        parse_utc(text)
    except (ValueError, TypeError, OverflowError):
        return ""
    return text


def _reports(scratch: Path) -> list[dict]:
    found = []
    for path in sorted(scratch.glob("execute-report*.json")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return found


def _short(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2 :]
