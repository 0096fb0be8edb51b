"""Record: the grader's single writer copies workers' scores into the nbgrader gradebook.

Workers grade into private scratch gradebooks; only this process writes the class
gradebook (SQLite by default, or any SQLAlchemy URL nbgrader accepts, e.g. PostgreSQL).
It writes where nbgrader reads: scores into the gradebook, ``autograded/<student>/<assignment>/``
and ``feedback/<student>/<assignment>/`` (with their ``timestamp.txt``), so that nbgrader's
``generate_feedback``, ``release_feedback``, ``export`` and the Formgrader work on what it
graded. Each finished submission is committed, then journalled in ``.autograder/results/``
(one JSON file per submission, named by a hash of student and assignment so that any folder
name works) so that a batch killed midway resumes where it stopped, without duplicates.
``.autograder/`` (the journal, the grading secret) is never committed (``.gitignore``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SAWarning

from .worker import SubmissionResult

STATE_DIR = ".autograder"  # the journal and the grading secret, next to the gradebook


def state_dir(out_dir: Path) -> Path:
    """``out_dir/.autograder``, private to the grader's user."""
    folder = Path(out_dir) / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def nbgrader_timestamp(when: datetime.datetime | None = None) -> str:
    """A time as nbgrader writes ``timestamp.txt`` (``2026-12-06 11:30:00.000000 UTC``)."""
    when = when or datetime.datetime.now(datetime.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def copy_assignments(template_db: bytes, db_url: str, attempts: int = 6) -> None:
    """Create (or update) the assignments of ``template_db`` in the gradebook at ``db_url``.

    Several graders may start at once on one PostgreSQL gradebook and race to create the
    same tables and rows; the loser of a race simply tries again.
    """
    for attempt in range(attempts):
        try:
            return _copy_assignments(template_db, db_url)
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random())


def _copy_assignments(template_db: bytes, db_url: str) -> None:
    with tempfile.NamedTemporaryFile(suffix=".db", delete=False) as tmp:
        tmp.write(template_db)
        template_path = tmp.name
    try:
        with Gradebook(f"sqlite:///{template_path}") as src, Gradebook(db_url) as dst:
            for assignment in src.assignments:
                dst.update_or_create_assignment(assignment.name, duedate=assignment.duedate)
                for nb in assignment.notebooks:
                    dst.update_or_create_notebook(nb.name, assignment.name)
                    for cell in nb.source_cells:
                        dst.update_or_create_source_cell(
                            cell.name,
                            nb.name,
                            assignment.name,
                            cell_type=cell.cell_type,
                            locked=cell.locked,
                            source=cell.source,
                            checksum=cell.checksum,
                        )
                    for cell in nb.grade_cells:
                        dst.update_or_create_grade_cell(
                            cell.name,
                            nb.name,
                            assignment.name,
                            max_score=cell.max_score,
                            cell_type=cell.cell_type,
                        )
                    for cell in nb.solution_cells:
                        dst.update_or_create_solution_cell(cell.name, nb.name, assignment.name)
    finally:
        os.unlink(template_path)


class GradebookWriter:
    """Records results; ``out_dir/results`` is the journal used to resume."""

    def __init__(self, db_url: str, out_dir: Path):
        self.db_url = db_url
        self.out_dir = Path(out_dir)
        self.results_dir = state_dir(self.out_dir) / "results"
        self.results_dir.mkdir(parents=True, exist_ok=True)

    def journal_path(self, student: str, assignment: str) -> Path:
        key = json.dumps([student, assignment]).encode("utf-8", "backslashreplace")
        digest = hashlib.sha256(key).hexdigest()[:24]
        prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in student)[:40]
        return self.results_dir / f"{prefix}__{digest}.json"

    def is_done(self, student: str, assignment: str, retry_failed: bool = False) -> bool:
        """Whether the journal holds a final outcome for this submission: graded, or failed
        (unless ``retry_failed``), so that a resumed run never changes a grade."""
        path = self.journal_path(student, assignment)
        if not path.exists():
            return False
        try:
            status = json.loads(path.read_text(encoding="utf-8"))["status"]
        except (ValueError, KeyError):
            return False  # a torn journal entry: grade again
        return status == "graded" or (status == "failed" and not retry_failed)

    def record(self, result: SubmissionResult) -> None:
        """Write scores (graded results only), autograded notebooks, feedback, journal."""
        if result.status == "graded":
            timestamp = result.timestamp or nbgrader_timestamp()
            with warnings.catch_warnings(), Gradebook(self.db_url) as gb:
                # nbgrader's own session handling emits SQLAlchemy autoflush warnings here.
                warnings.simplefilter("ignore", SAWarning)
                gb.update_or_create_student(result.student)
                gb.update_or_create_submission(
                    result.assignment, result.student, timestamp=_parsed(timestamp)
                )
                for cell in result.cells:
                    grade = gb.find_grade(
                        cell.grade_id, cell.notebook, result.assignment, result.student
                    )
                    grade.auto_score = cell.score
                    grade.needs_manual_grade = cell.needs_manual
                gb.db.commit()
            for kind, files in (("autograded", result.autograded), ("feedback", result.feedback)):
                folder = self.out_dir / kind / result.student / result.assignment
                folder.mkdir(parents=True, exist_ok=True)
                for name, text in files.items():
                    (folder / name).write_text(text, encoding="utf-8")
                # nbgrader's release_feedback and the Formgrader read them next to the files
                (folder / "timestamp.txt").write_text(timestamp, encoding="utf-8")
                if result.submission_secret:
                    secret_file = folder / "submission_secret.txt"
                    secret_file.write_text(result.submission_secret, encoding="ascii")
        payload = result.to_json()
        payload.pop("autograded")
        payload.pop("feedback")
        path = self.journal_path(result.student, result.assignment)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=True), encoding="utf-8"
        )
        tmp.replace(path)  # atomic: a kill leaves the old entry or the new one

    def load_results(self) -> list[SubmissionResult]:
        results = []
        for path in sorted(self.results_dir.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                data.setdefault("autograded", {})
                data.setdefault("feedback", {})
                results.append(SubmissionResult.from_json(data))
            except (OSError, ValueError, TypeError, KeyError):
                continue  # a torn or foreign file: that submission is graded again
        return results


def _parsed(timestamp: str) -> datetime.datetime | None:
    try:
        return parse_utc(timestamp)
    except (ValueError, TypeError, OverflowError):
        return None


def normalize_db_url(url: str) -> str:
    """``postgresql://`` means the psycopg2 driver the course installs (SQLAlchemy 2.1
    would otherwise look for psycopg 3)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def default_db_url(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'gradebook.db').resolve()}"
