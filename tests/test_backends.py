"""Serial, process-pool and Dask backends give identical grades."""

from __future__ import annotations

import shutil

import pytest

from autograder.cli import SAMPLES_DIR
from autograder.grading import grade_submissions

pytestmark = pytest.mark.slow


def test_identical_grades_from_every_backend(tmp_path):
    subs = tmp_path / "subs"
    for student in ("alice_correct", "bob_partly_wrong", "carol_untouched"):
        shutil.copytree(SAMPLES_DIR / student, subs / student)
    csvs = {}
    for label, jobs, scheduler in (("serial", 1, None), ("pool", 2, None), ("dask", 2, "local")):
        run = grade_submissions(
            subs, tmp_path / label, jobs=jobs, scheduler=scheduler, progress=False
        )
        assert all(r.status == "graded" for r in run.results), (label, run.results)
        csvs[label] = run.csv_path.read_text()
    assert csvs["serial"] == csvs["pool"] == csvs["dask"]
    assert "alice_correct" in csvs["serial"]


def _dies_for_bob(task):
    """A stand-in worker: kills its own process for bob, 'grades' everyone else."""
    import os

    from autograder.worker import SubmissionResult

    if task.student.startswith("bob"):
        os._exit(3)
    return SubmissionResult(task.student, task.assignment, status="graded", score=1.0)


def test_dead_worker_is_retried_then_reported():
    from autograder.backends import run_pool
    from autograder.worker import GradeTask

    tasks = [GradeTask(name, "01_conv_forward", {}, b"") for name in ("ann", "bob", "cid")]
    results = {r.student: r for r in run_pool(tasks, jobs=2, fn=_dies_for_bob)}
    assert set(results) == {"ann", "bob", "cid"}, "no submission may be dropped"
    assert results["ann"].status == results["cid"].status == "graded"
    assert results["bob"].status == "failed"
    assert results["bob"].problems[-1].name == "WorkerDied"


def test_a_dead_worker_reaches_the_csv(tmp_path, monkeypatch):
    """A task whose worker dies twice goes through the single writer into grades.csv as a
    failed row with a typed WorkerDied problem (the batch is not lost)."""
    from autograder import grading

    subs = tmp_path / "subs"
    for student in ("alice_correct", "bob_partly_wrong"):
        shutil.copytree(SAMPLES_DIR / student, subs / student)
    monkeypatch.setattr(grading.backends, "run", _run_pool_killing_bob)
    run = grading.grade_submissions(subs, tmp_path / "out", jobs=2, progress=False)
    rows = run.csv_path.read_text()
    assert "bob_partly_wrong,01_conv_forward,failed" in rows
    assert "WorkerDied" in rows
    assert not run.complete


def _run_pool_killing_bob(tasks, jobs=1, scheduler=None, isolate=False):
    from autograder.backends import run_pool

    return run_pool(tasks, jobs=2, fn=_dies_for_bob)
