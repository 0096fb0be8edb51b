"""Resource limits for one graded notebook, configurable from the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Every limit is reported by its name when hit.

    Attributes:
        cell_timeout_s: wall time of one cell (long enough for the training cells).
        notebook_timeout_s: wall time of a whole notebook; cells after it are not run.
        memory_mb: memory of the kernel and its children (address-space data limit plus a
            resident-memory watchdog).
        max_processes: processes in the kernel's sandbox (fork bombs stop here).
        output_kb: output kept per cell; the rest is dropped (not scored as an error).
        file_size_mb: largest file the kernel may write.
    """

    cell_timeout_s: int = 600
    notebook_timeout_s: int = 1800
    memory_mb: int = 3072
    max_processes: int = 64
    output_kb: int = 512
    file_size_mb: int = 256

    def as_dict(self) -> dict:
        return asdict(self)


LIMIT_NAMES = {
    "cell_timeout_s": "CellTimeLimit",
    "notebook_timeout_s": "NotebookTimeLimit",
    "memory_mb": "MemoryLimit",
    "max_processes": "ProcessLimit",
    "output_kb": "OutputLimit",
}
