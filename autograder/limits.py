"""Resource limits for one graded notebook, configurable from the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Every limit is reported by name when hit
    (see :data:`autograder.problems.LIMITS`).

    Attributes:
        cell_timeout_s: wall time of one cell, or of one test cell's verdict (long enough
            for the training cells).
        notebook_timeout_s: wall time of a whole notebook, kernel restarts and replayed
            cells included; cells after it are not run.
        memory_mb: memory of the kernel and its children (address-space data limit plus a
            proportional-memory watchdog).
        max_processes: processes in the kernel's sandbox (fork bombs stop here).
        output_kb: output kept per cell; the rest is dropped (not scored as an error).
        notebook_output_kb: output kept for the whole notebook, display updates included.
        file_size_mb: largest file the kernel may write.
        disk_mb: all files the kernel may write (``/tmp``, its working folder, results).
        notebook_mb: largest notebook file accepted (bigger ones score 0 unread).
        max_cells: most cells in a notebook accepted.
        result_mb: largest result a kernel may hand back for one test cell.
        max_restarts: kernel restarts per notebook (after a crash or a limit).
    """

    cell_timeout_s: int = 600
    notebook_timeout_s: int = 1800
    memory_mb: int = 3072
    max_processes: int = 64
    output_kb: int = 512
    notebook_output_kb: int = 8192
    file_size_mb: int = 512
    disk_mb: int = 512
    notebook_mb: int = 20
    max_cells: int = 2000
    result_mb: int = 64
    max_restarts: int = 8

    def as_dict(self) -> dict:
        return asdict(self)
