"""Run a notebook in a fresh kernel and report its wall time and the kernel's peak memory.

Shared by ``fast_mode_thresholds.py`` and ``notebook_memory.py``. The peak is the kernel
process's ``VmHWM`` (peak resident set size, from ``/proc/self/status``), read by a cell
appended to the executed copy, which ``tests/conftest.py::execute_notebook`` also uses. Child
processes of the kernel are not counted (the course's notebooks start none).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import nbformat

_PEAK_CELL = """
import re as _re
with open("/proc/self/status") as _fh:
    print("VmHWM_kB", _re.search(r"VmHWM:\\s+(\\d+)", _fh.read()).group(1))
"""


@dataclass
class NotebookRun:
    """An executed notebook (measuring cell removed), its wall time and peak RSS."""

    nb: nbformat.NotebookNode
    seconds: float
    peak_mb: float
    error: str | None


def cell_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed (stream outputs and text/plain results)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


def run_notebook(
    nb: nbformat.NotebookNode,
    cwd: Path,
    env: Mapping[str, str],
    cell_timeout_s: int = 1800,
    allow_errors: bool = False,
    raise_errors: bool = False,
) -> NotebookRun:
    """Execute ``nb`` (a copy is changed) with ``env`` added to the kernel's environment.

    A failing cell ends the run: its error's last line is in ``NotebookRun.error``, or the
    ``CellExecutionError`` propagates with ``raise_errors``.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.from_dict(nb)
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_CELL))
    error = None
    # The kernel inherits this process's environment; patch.dict restores it afterwards.
    with mock.patch.dict(os.environ, env):
        if "MPLBACKEND" not in env:
            os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend draws real figures
        client = NotebookClient(
            nb,
            timeout=cell_timeout_s,
            kernel_name="python3",
            allow_errors=allow_errors,
            resources={"metadata": {"path": str(cwd)}},
        )
        start = time.perf_counter()
        try:
            client.execute()
        except CellExecutionError as exc:
            if raise_errors:
                raise
            error = str(exc).strip().splitlines()[-1][:300]
        seconds = time.perf_counter() - start
    match = re.search(r"VmHWM_kB (\d+)", cell_text(nb.cells[-1]))
    peak_mb = int(match.group(1)) / 1024 if match else float("nan")
    nb.cells.pop()
    return NotebookRun(nb, seconds, peak_mb, error)
