"""A small Python API for tests and notebooks: grade one notebook, get its points."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .grading import grade_submissions
from .limits import Limits
from .worker import SubmissionResult


@dataclass
class NotebookGrade:
    """Points of one graded notebook: ``cells`` maps grade_id -> (points, max_points)."""

    result: SubmissionResult

    @property
    def score(self) -> float:
        return self.result.score

    @property
    def max_score(self) -> float:
        return self.result.max_score

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def problems(self) -> list[str]:
        return self.result.problems

    @property
    def cells(self) -> dict[str, tuple[float, float]]:
        return {c.grade_id: (c.score, c.max_score) for c in self.result.cells}

    @property
    def errors(self) -> dict[str, str]:
        return {c.grade_id: c.error for c in self.result.cells if c.error}


def grade_notebook(
    assignment_id: str,
    notebook: str | Path,
    student: str = "student",
    limits: Limits | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> NotebookGrade:
    """Autograde one notebook file as ``student``'s submission of ``assignment_id``."""
    notebook = Path(notebook)
    with tempfile.TemporaryDirectory(prefix="cnn-grade-one-") as tmp:
        folder = Path(tmp) / "submissions" / student / assignment_id
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / notebook.name)
        for rel, data in (extra_files or {}).items():
            (folder / rel).write_bytes(data)
        run = grade_submissions(
            Path(tmp) / "submissions", Path(tmp) / "out", limits=limits, progress=False
        )
        return NotebookGrade(run.results[0])
