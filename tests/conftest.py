"""Shared test set-up: offline, one thread per kernel, fast mode for notebooks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

os.environ.setdefault("CNN_COURSE_OFFLINE", "1")
os.environ.setdefault("CNN_COURSE_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(FIXTURES))  # build_fixtures


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def grade_folder(tmp_path: Path, notebooks: dict[tuple[str, str], Path], **kwargs):
    """Lay out ``{(student, assignment): notebook_path}`` as submissions and grade them."""
    import shutil

    from autograder.grading import grade_submissions

    subs = tmp_path / "submissions"
    for (student, assignment), nb in notebooks.items():
        folder = subs / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        if nb is not None:
            shutil.copy(nb, folder / nb.name)
    kwargs.setdefault("progress", False)
    return grade_submissions(subs, tmp_path / "out", **kwargs)
