"""A grading worker needs only the course's wheel: no checkout, no solutions, no MNIST files.

The wheel is built from this checkout and installed into a fresh virtual environment
outside it (its other packages come from the course's environment through a ``.pth``
file, as a worker image would install them from the pins). A real ``dask scheduler`` and
``dask worker`` are started from that environment, in a folder that is not the course, and
assignments 1-5 are graded with ``--scheduler``: the grades are the ones the fixtures
expect (and that ``--jobs`` gives, tests/test_fixture_grades.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import build_fixtures
import pytest
from servers import free_port

from autograder.grading import grade_submissions

pytestmark = pytest.mark.slow

# (assignment, case): right and wrong answers of the numpy assignments (the capstone trains
# and is graded on the held-out digits the task carries), and the untouched notebooks of
# assignments 3-5 (their frameworks start in the worker's sandbox; no minutes of training)
GRADED = [
    ("01_conv_forward", "correct"),
    ("01_conv_forward", "pool_average_wrong"),
    ("02_conv_backward", "correct"),
    ("03_keras_mnist", "untouched"),
    ("04_pytorch_mnist", "untouched"),
    ("05_cropping", "untouched"),
]
SIBLINGS = {  # assignment 2 is three notebooks: the case, plus these
    "02_efficient_conv.ipynb": "efficient_correct",
    "02_numpy_cnn.ipynb": "capstone_correct",
}


def _build_wheel(root: Path, dist: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(dist), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("cnn_course-*.whl")
    return wheel


def _worker_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "worker-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        + ["--target", site, str(wheel)],
        check=True,
        capture_output=True,
    )
    # The course's other packages (as a worker image would pip-install them from the pins).
    Path(site, "course-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # ... and their data files (nbconvert's templates, for the feedback), which pip puts
    # under the environment's prefix
    (venv / "share").mkdir(exist_ok=True)
    (venv / "share" / "jupyter").symlink_to(Path(sys.prefix) / "share" / "jupyter")
    return python


def test_wheel_holds_what_a_worker_needs(tmp_path, root):
    wheel = _build_wheel(root, tmp_path / "dist")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "cnncourse/checks/engine.py",
        "cnncourse/checks/model_eval.py",
        "cnncourse/layer_spec.py",
        "autograder/worker.py",
        "autograder/class_report/__init__.py",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    assert not any(n.startswith(("solutions/", "tests/", "data/")) for n in names)


def test_a_worker_from_the_wheel_grades_assignments_1_to_5(tmp_path, root):
    wheel = _build_wheel(root, tmp_path / "dist")
    python = _worker_venv(tmp_path, wheel)
    away = tmp_path / "elsewhere"  # not the course: nothing of the checkout is reachable
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNN_COURSE_ROOT")}
    env["HOME"] = str(away)
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import autograder as a, cnncourse as c; print(a.__file__, c.__file__)",
        ],
        cwd=away,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(root) not in where, f"the worker imports the checkout: {where}"

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [str(python), "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
        + ["--port", str(port), "--dashboard-address", ":0"],
        cwd=away,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [str(python), "-m", "distributed.cli.dask_worker", address, "--nworkers", "2"]
        + ["--nthreads", "1", "--dashboard-address", ":0", "--local-directory", str(away)],
        cwd=away,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout=5) as client:
                    if len(client.scheduler_info()["workers"]) >= 2:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dask worker did not start"
            time.sleep(1)

        subs = tmp_path / "subs"
        for aid, case in GRADED:
            spec = build_fixtures.all_cases("cases")[(aid, case)]
            folder = subs / case / aid
            folder.mkdir(parents=True)
            shutil.copy(build_fixtures.case_path("cases", aid, case, spec["notebook"]), folder)
            if aid == "02_conv_backward":
                for notebook, sibling in SIBLINGS.items():
                    shutil.copy(build_fixtures.case_path("cases", aid, sibling, notebook), folder)
        run = grade_submissions(subs, tmp_path / "out", scheduler=address, jobs=2, progress=False)
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(30)
        scheduler.wait(30)

    assert run.complete, [(r.student, r.assignment, r.problems) for r in run.results]
    assert {r.worker for r in run.results}, "no result names its worker"
    for result in run.results:
        spec = build_fixtures.all_cases("cases")[(result.assignment, result.student)]
        lost = {c.grade_id: c.score for c in result.cells if c.score < c.max_score}
        assert lost == spec.get("expect", {}), (result.assignment, result.student, result.problems)
