"""What can go wrong with one submission, as typed values (never text parsed back).

A :class:`Problem` names what happened (``MemoryLimit``, ``ForbiddenCall``,
``UnsafeFile``, ...), says it in one sentence, and names the test cell it cost, if any.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    name: str
    message: str
    cell: str = ""  # grade_id of the test cell it concerns ("" for the whole notebook)
    notebook: str = ""

    def __str__(self) -> str:
        where = f"{self.notebook}:{self.cell}: " if self.cell else ""
        return f"{self.name}: {where}{self.message}"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Problem:
        return cls(**{k: str(data.get(k, "")) for k in ("name", "message", "cell", "notebook")})


# Resource limits, by name: each one that is hit becomes a Problem with this name.
LIMITS = (
    "CellTimeLimit",  # one cell (or one test cell's verdict) ran too long
    "NotebookTimeLimit",  # the notebook used its whole time, replays after a restart included
    "MemoryLimit",  # the kernel's memory (resident, and allocations)
    "ProcessLimit",  # processes started by the kernel
    "OutputLimit",  # output kept per cell and per notebook (display updates included)
    "DiskLimit",  # files written by the kernel (/tmp, working folder, result channel)
    "KernelDied",  # the kernel exited (os._exit, a crash, a limit)
)

# Problems of a submission's files (found before any code runs).
FILE_PROBLEMS = (
    "MissingNotebook",  # an expected notebook is not there
    "RenamedNotebook",  # graded under its expected name, saying which file it was
    "BrokenNotebook",  # not a readable notebook
    "NotebookTooLarge",  # over the size or cell-count limit
    "UnsafeFile",  # a symbolic link, device, FIFO or socket: never followed
    "OddName",  # a name that is not printable UTF-8 (shown escaped)
    "UnknownAssignment",  # a folder that is not an assignment of this course
)

# Verdict problems (one test cell).
VERDICT_PROBLEMS = (
    "CheckFailed",  # the function's results differ from the oracle's
    "ForbiddenCall",  # the function used a library its policy forbids
    "MissingFunction",  # the function is not defined
    "ResultMissing",  # the kernel wrote no result
    "ResultMalformed",  # the result is not well-formed plain data
    "ResultTooLarge",
    "ResultDuplicated",  # a case answered twice, or extra files in the channel
    "NoTrustedCheck",  # a test cell the grader has no description of (a course bug)
)
