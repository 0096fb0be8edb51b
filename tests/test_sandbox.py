"""The sandbox's file system, with the real bubblewrap: what a kernel sees and where it writes.

A course (or its virtual environment) checked out under /tmp must stay visible inside the
sandbox, whose own /tmp is a fresh memory file system: a fresh clone in /tmp once graded
every demo submission "failed" (the kernel could not find its Python packages).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.limits import Limits

BWRAP = sandbox.bwrap_path()
pytestmark = pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not available here")


def _sandbox(tmp_path: Path) -> sandbox.Sandbox:
    workdir, runtime = tmp_path / "student", tmp_path / "runtime"
    workdir.mkdir()
    runtime.mkdir()
    (workdir / "answer.txt").write_text("the student's file")
    return sandbox.Sandbox(workdir=workdir, runtime_dir=runtime, limits=Limits(), bwrap=BWRAP)


def _run(box: sandbox.Sandbox, code: str) -> subprocess.CompletedProcess:
    command = box.wrap([sys.executable, "-c", code])
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_packages_under_tmp_stay_visible(tmp_path, monkeypatch):
    assert str(tmp_path).startswith("/tmp/"), "this test needs pytest's folders under /tmp"
    package_root = tmp_path / "checkout" / "site"
    package_root.mkdir(parents=True)
    (package_root / "course_marker.py").write_text("WHERE = 'under /tmp'\n")
    readonly = sandbox._readonly_paths()
    monkeypatch.setattr(sandbox, "_readonly_paths", lambda: [*readonly, package_root])
    done = _run(
        _sandbox(tmp_path),
        f"import sys; sys.path.insert(0, {str(package_root)!r}); "
        "import course_marker; print(course_marker.WHERE)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "under /tmp"


def test_tmp_is_private_and_the_rest_of_tmp_is_hidden(tmp_path):
    outside = tmp_path / "grader-only.txt"
    outside.write_text("secret")
    box = _sandbox(tmp_path)
    done = _run(
        box,
        "import os, pathlib; "
        "pathlib.Path('/tmp/written-inside').write_text('x'); "
        f"print(os.path.exists({str(outside)!r}), open('answer.txt').read())",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=1) == ["False", "the student's file\n"]
    assert not Path("/tmp/written-inside").exists()


def test_hidden_folders_are_read_only(tmp_path):
    """The folders the sandbox hides (the course's checks, forbidden packages) are empty and
    cannot be written: a writable memory file system there would escape every disk limit."""
    checks = Path(sandbox._course_dir()) / "checks"
    box = _sandbox(tmp_path)
    done = _run(
        box,
        "import os, pathlib\n"
        f"print(os.listdir({str(checks)!r}))\n"
        "try:\n"
        f"    pathlib.Path({str(checks)!r}, 'filler').write_bytes(b'x')\n"
        "    print('written')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n", 1)[0] == "[]"
    assert done.stdout.split("\n")[1].startswith("refused"), done.stdout
