"""Serial, process-pool and Dask backends give identical grades."""

from __future__ import annotations

import shutil

import pytest

from autograder.cli import SAMPLES_DIR
from autograder.grading import grade_submissions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("backends")]


def test_identical_grades_from_every_backend(tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(SAMPLES_DIR, subs)
    csvs = {}
    for label, jobs, scheduler in (("serial", 1, None), ("pool", 2, None), ("dask", 2, "local")):
        run = grade_submissions(
            subs, tmp_path / label, jobs=jobs, scheduler=scheduler, progress=False
        )
        assert all(r.status == "graded" for r in run.results), (label, run.results)
        csvs[label] = run.csv_path.read_text()
    assert csvs["serial"] == csvs["pool"] == csvs["dask"]
    assert "alice_correct" in csvs["serial"]
