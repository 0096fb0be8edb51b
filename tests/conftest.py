"""Shared test set-up: offline, one thread per kernel, fast mode for notebooks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

os.environ.setdefault("CNN_COURSE_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(FIXTURES))  # build_fixtures


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


# Appended to the executed copy only: the kernel reports its own peak resident memory.
_PEAK_CELL = """
import re as _re
with open("/proc/self/status") as _fh:
    print("VmHWM_kB", _re.search(r"VmHWM:\\s+(\\d+)", _fh.read()).group(1))
"""


def execute_notebook(path: Path, cell_timeout_s: int = 300) -> tuple:
    """Run a notebook in fast mode (offline, one thread) in its own folder.

    Returns the executed notebook, the seconds it took and the kernel's peak memory (MiB).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_CELL))
    env = {"CNN_COURSE_FAST": "1", "CNN_COURSE_THREADS": "1"}
    saved = {k: os.environ.get(k) for k in (*env, "MPLBACKEND")}
    os.environ.update(env)
    os.environ.pop("MPLBACKEND", None)  # let the kernel use its inline backend: real figures
    try:
        client = NotebookClient(
            nb,
            timeout=cell_timeout_s,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = "".join(out.get("text", "") for out in nb.cells[-1].outputs)
    peak_mb = int(text.split()[-1]) / 1024
    nb.cells.pop()  # the measuring cell is not part of the notebook
    return nb, seconds, peak_mb
