"""Shared test set-up: offline, one thread per kernel, fast mode for notebooks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

os.environ.setdefault("CNN_COURSE_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(FIXTURES))  # build_fixtures
sys.path.insert(0, str(ROOT))  # benchmarks.notebook_exec


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def execute_notebook(path: Path, cell_timeout_s: int = 300) -> tuple:
    """Run a notebook in fast mode (offline, one thread) in its own folder.

    Returns the executed notebook, the seconds it took and the kernel's peak memory (MiB).
    A failing cell raises ``CellExecutionError``. A lecture is run through the book's cache
    of executed copies (``book/execute.py``): it runs once per change to it or to what it
    reads, whichever of the tests and the book needs it first.
    """
    import nbformat

    path = Path(path).resolve()
    if path.parent == ROOT / "lectures":
        from book.execute import run_cached

        nb, seconds, peak_mb, _ = run_cached(
            ROOT,
            path.relative_to(ROOT),
            ROOT / "book" / "_build" / "cache" / "fast",
            fast=True,
            threads=1,
            timeout_s=cell_timeout_s,
        )
        return nb, seconds, peak_mb

    from benchmarks.notebook_exec import run_notebook

    nb = nbformat.read(path, as_version=4)
    env = {"CNN_COURSE_FAST": "1", "CNN_COURSE_THREADS": "1"}
    run = run_notebook(nb, path.parent, env, cell_timeout_s=cell_timeout_s, raise_errors=True)
    return run.nb, run.seconds, run.peak_mb
