"""Grade one student's submission of one assignment, in a scratch course directory.

The worker is a plain function of picklable data (:class:`GradeTask` in,
:class:`SubmissionResult` out), so it runs the same way in-process, in a process pool or
on a Dask worker on another machine. It uses nbgrader's own converters (Autograde,
GenerateFeedback) with the course's safer preprocessors plugged in, and writes to a
private scratch gradebook; the grader's single writer copies the scores into the real
gradebook (:mod:`autograder.gradebook`).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.apps.api import NbGraderAPI

from . import course


@dataclass
class GradeTask:
    """Everything a worker needs, as plain data (no paths shared with the grader)."""

    student: str
    assignment: str
    files: dict[str, bytes]  # the submission folder: relative path -> content
    template_db: bytes  # scratch gradebook already holding the assignment (from release)
    source_files: dict[str, bytes] = field(default_factory=dict)  # non-notebook source files
    limits: dict = field(default_factory=dict)
    redact_hidden: bool = True
    bwrap: str = ""
    project_root: str = ""


@dataclass
class CellResult:
    notebook: str
    grade_id: str
    score: float
    max_score: float
    error: str = ""  # error name and message of a failed test cell


@dataclass
class SubmissionResult:
    """The outcome of grading one submission (picklable, JSON-able)."""

    student: str
    assignment: str
    status: str  # "graded" or "failed" (the grader itself could not grade it)
    score: float = 0.0
    max_score: float = 0.0
    cells: list[CellResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # limits hit, missing notebooks, ...
    autograded: dict[str, str] = field(default_factory=dict)  # notebook file -> JSON text
    feedback: dict[str, str] = field(default_factory=dict)  # html file -> html text
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    worker: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds per grading step

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SubmissionResult:
        data = dict(data)
        data["cells"] = [CellResult(**c) for c in data.get("cells", [])]
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


def _grader_config(scratch: Path, task: GradeTask, report: Path):
    config = course.course_config(scratch)
    config.Autograde.sanitize_preprocessors = [
        "nbgrader.preprocessors.ClearOutput",
        "nbgrader.preprocessors.DeduplicateIds",
        "nbgrader.preprocessors.OverwriteKernelspec",
        "autograder.preprocessors.OverwriteCellsAndFlags",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    config.Autograde.autograde_preprocessors = [
        "autograder.preprocessors.GuardedExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "autograder.preprocessors.SaveAutoGradesErrorsOnly",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    # Deleted test cells come back from the gradebook and are run: deleting a test
    # cannot skip it.
    config.OverwriteCellsAndFlags.add_missing_cells = True
    config.GuardedExecute.workdir = str(scratch / "work")
    config.GuardedExecute.runtime_dir = str(scratch / "runtime")
    config.GuardedExecute.limits = task.limits
    config.GuardedExecute.bwrap = task.bwrap
    config.GuardedExecute.report_file = str(report)
    config.GuardedExecute.raise_on_iopub_timeout = False
    if task.redact_hidden:
        config.GenerateFeedback.preprocessors = [
            "nbgrader.preprocessors.GetGrades",
            "autograder.preprocessors.RedactHiddenTests",
            "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        ]
    return config


def _collect_scores(db_url: str, task: GradeTask, autograded_dir: Path) -> list[CellResult]:
    errors: dict[tuple[str, str], str] = {}
    for nb_path in autograded_dir.glob("*.ipynb"):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and cell.get("cell_type") == "code":
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error":
                        message = f"{out.get('ename')}: {out.get('evalue')}"
                        errors[(nb_path.stem, meta["grade_id"])] = message[:500]
                        break
    cells = []
    with Gradebook(db_url) as gb:
        submission = gb.find_submission(task.assignment, task.student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                auto = grade.auto_score
                score = grade.score if grade.score is not None else (auto or 0.0)
                error = errors.get((nb.name, grade.name), "")
                if auto is None and not error:
                    error = "needs manual grading"
                cells.append(
                    CellResult(nb.name, grade.name, float(score), float(grade.max_score), error)
                )
    cells.sort(key=lambda c: (c.notebook, c.grade_id))
    return cells


def grade_task(task: GradeTask) -> SubmissionResult:
    """Autograde one submission. Never raises: failures come back as ``status='failed'``."""
    import socket
    import warnings

    from sqlalchemy.exc import SAWarning

    # nbgrader's gradebook code triggers SQLAlchemy autoflush warnings that mean nothing here.
    warnings.filterwarnings("ignore", category=SAWarning)
    start = time.monotonic()
    result = SubmissionResult(task.student, task.assignment, status="failed")
    result.worker = socket.gethostname()
    scratch = Path(tempfile.mkdtemp(prefix="cnn-grade-"))
    try:
        (scratch / "gradebook.db").write_bytes(task.template_db)
        _write_files(scratch / course.SOURCE_DIR_NAME / task.assignment, task.source_files)
        (scratch / course.SOURCE_DIR_NAME / task.assignment).mkdir(parents=True, exist_ok=True)
        submitted = scratch / "submitted" / task.student / task.assignment
        submitted.mkdir(parents=True)
        _write_files(submitted, task.files)
        # The kernel's folder: the student's own files and the assignment's data files,
        # never a notebook (the graded copy, with hidden tests, lives elsewhere).
        work = scratch / "work"
        work.mkdir()
        _write_files(work, task.source_files, skip_notebooks=True)
        _write_files(work, task.files, skip_notebooks=True)
        report = scratch / "execute-report.json"
        db_url = f"sqlite:///{scratch / 'gradebook.db'}"
        expected = _expected_notebooks(db_url, task.assignment)
        for name in sorted(expected):
            path = submitted / f"{name}.ipynb"
            if not path.exists():
                result.problems.append(f"MissingNotebook: {name}.ipynb was not submitted (0)")
            elif (problem := _unreadable(path)) is not None:
                # nbgrader scores a missing notebook 0; a broken one would stop it instead.
                path.unlink()
                result.problems.append(f"BrokenNotebook: {name}.ipynb {problem} (0)")
        if not any(submitted.glob("*.ipynb")):
            result.cells = _zero_cells(db_url, task.assignment)
            result.max_score = round(sum(c.max_score for c in result.cells), 6)
            result.status = "graded"
            return result

        api = NbGraderAPI(config=_grader_config(scratch, task, report))
        api.log.setLevel(logging.ERROR)
        t0 = time.monotonic()
        outcome = api.autograde(task.assignment, task.student, force=True, create=True)
        result.timings["autograde"] = round(time.monotonic() - t0, 2)
        if not outcome["success"]:
            result.problems.append(_short(outcome.get("log", "") + "\n" + outcome.get("error", "")))
            return result
        if report.exists():
            info = json.loads(report.read_text(encoding="utf-8"))
            result.peak_rss_mb = round(info.get("peak_rss_mb", 0.0), 1)
            for event in info.get("events", []):
                result.problems.append(event["message"])
        t0 = time.monotonic()
        feedback = api.generate_feedback(task.assignment, task.student, force=True)
        result.timings["feedback"] = round(time.monotonic() - t0, 2)
        if not feedback["success"]:
            result.problems.append("feedback: " + _short(feedback.get("error", "")))

        autograded = scratch / "autograded" / task.student / task.assignment
        result.cells = _collect_scores(db_url, task, autograded)
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
        result.problems.append(_short(traceback.format_exc()))
        return result
    finally:
        result.seconds = round(time.monotonic() - start, 2)
        shutil.rmtree(scratch, ignore_errors=True)


def _expected_notebooks(db_url: str, assignment: str) -> list[str]:
    with Gradebook(db_url) as gb:
        return [nb.name for nb in gb.find_assignment(assignment).notebooks]


def _zero_cells(db_url: str, assignment: str) -> list[CellResult]:
    """Every test cell of the assignment at 0 points (nothing gradable was submitted)."""
    cells = []
    with Gradebook(db_url) as gb:
        for nb in gb.find_assignment(assignment).notebooks:
            for cell in nb.grade_cells:
                cells.append(
                    CellResult(nb.name, cell.name, 0.0, float(cell.max_score), "not submitted")
                )
    return sorted(cells, key=lambda c: (c.notebook, c.grade_id))


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is not a notebook nbgrader can read, or None when it is fine."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # JSON errors, schema errors, bad encodings
        return f"is not a valid notebook ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def _short(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2 :]


def encode_files(folder: Path) -> dict[str, bytes]:
    """Read a submission folder into the ``files`` mapping of a :class:`GradeTask`."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".ipynb_checkpoints" not in path.parts:
            files[str(path.relative_to(folder))] = path.read_bytes()
    return files
