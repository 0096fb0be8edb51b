"""What can go wrong with one submission, as typed values (never text parsed back).

A :class:`Problem` names what happened with a member of the closed set
:class:`ProblemName` (``MemoryLimit``, ``ForbiddenCall``, ``UnsafeFile``, ...), says it in
one sentence, and names the test cell it cost, if any. :func:`render` is the one place that
turns problems into text for a terminal, a CSV cell or a feedback page.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass
from enum import StrEnum


class ProblemName(StrEnum):
    """Every named outcome of grading that costs points or leaves a submission ungraded."""

    # Resource limits (each is hit by a cell and restarts the kernel)
    CELL_TIME_LIMIT = "CellTimeLimit"
    NOTEBOOK_TIME_LIMIT = "NotebookTimeLimit"
    MEMORY_LIMIT = "MemoryLimit"
    PROCESS_LIMIT = "ProcessLimit"
    OUTPUT_LIMIT = "OutputLimit"
    DISK_LIMIT = "DiskLimit"
    KERNEL_DIED = "KernelDied"
    # The submission's files (found before any code runs)
    MISSING_NOTEBOOK = "MissingNotebook"
    RENAMED_NOTEBOOK = "RenamedNotebook"
    BROKEN_NOTEBOOK = "BrokenNotebook"
    NOTEBOOK_TOO_LARGE = "NotebookTooLarge"
    UNSAFE_FILE = "UnsafeFile"
    ODD_NAME = "OddName"
    UNKNOWN_ASSIGNMENT = "UnknownAssignment"
    NOT_SUBMITTED = "NotSubmitted"
    # One test cell's verdict
    CHECK_FAILED = "CheckFailed"
    FORBIDDEN_CALL = "ForbiddenCall"
    MISSING_FUNCTION = "MissingFunction"
    RESULT_MISSING = "ResultMissing"
    RESULT_MALFORMED = "ResultMalformed"
    RESULT_TOO_LARGE = "ResultTooLarge"
    RESULT_DUPLICATED = "ResultDuplicated"
    NO_TRUSTED_CHECK = "NoTrustedCheck"
    NOT_RUN = "NotRun"
    # The grader itself
    GRADER_ERROR = "GraderError"
    WORKER_DIED = "WorkerDied"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def is_limit(self) -> bool:
        return self in LIMITS


_DESCRIPTIONS = {
    ProblemName.CELL_TIME_LIMIT: "one cell (or one test cell's checks) ran too long",
    ProblemName.NOTEBOOK_TIME_LIMIT: "the notebook used its whole time, replays included",
    ProblemName.MEMORY_LIMIT: "the kernel used more memory than allowed",
    ProblemName.PROCESS_LIMIT: "the kernel started more processes than allowed",
    ProblemName.OUTPUT_LIMIT: "a cell or the notebook printed more than allowed",
    ProblemName.DISK_LIMIT: "the kernel wrote more files than allowed",
    ProblemName.KERNEL_DIED: "the kernel exited (os._exit, a crash, a limit)",
    ProblemName.MISSING_NOTEBOOK: "an expected notebook was not submitted",
    ProblemName.RENAMED_NOTEBOOK: "graded under its expected name, saying which file it was",
    ProblemName.BROKEN_NOTEBOOK: "not a readable notebook",
    ProblemName.NOTEBOOK_TOO_LARGE: "over the notebook size or cell-count limit",
    ProblemName.UNSAFE_FILE: "a link, device, FIFO or socket: the submission is refused",
    ProblemName.ODD_NAME: "a name that is not printable UTF-8 (shown escaped)",
    ProblemName.UNKNOWN_ASSIGNMENT: "a folder that is not an assignment of this course",
    ProblemName.NOT_SUBMITTED: "nothing gradable was submitted for this notebook",
    ProblemName.CHECK_FAILED: "the function's results differ from the checks'",
    ProblemName.FORBIDDEN_CALL: "the function uses what its exercise forbids",
    ProblemName.MISSING_FUNCTION: "the function is not defined",
    ProblemName.RESULT_MISSING: "the kernel wrote no result",
    ProblemName.RESULT_MALFORMED: "the result is not well-formed plain data",
    ProblemName.RESULT_TOO_LARGE: "the result is over the size limit",
    ProblemName.RESULT_DUPLICATED: "a case was answered twice, or extra files appeared",
    ProblemName.NO_TRUSTED_CHECK: "a test cell the grader has no checks for (a course bug)",
    ProblemName.NOT_RUN: "this test cell was not graded",
    ProblemName.GRADER_ERROR: "the grader failed (its bug, never the student's)",
    ProblemName.WORKER_DIED: "the grading process died twice on this submission",
}

LIMITS = frozenset(
    {
        ProblemName.CELL_TIME_LIMIT,
        ProblemName.NOTEBOOK_TIME_LIMIT,
        ProblemName.MEMORY_LIMIT,
        ProblemName.PROCESS_LIMIT,
        ProblemName.OUTPUT_LIMIT,
        ProblemName.DISK_LIMIT,
        ProblemName.KERNEL_DIED,
    }
)


def escape(text: str) -> str:
    """``text`` with every non-printable character escaped (terminal escapes, NULs, lone
    surrogates, bidirectional controls): safe for a terminal or a CSV cell."""
    out = []
    for ch in str(text):
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch == "\n":
            out.append("\n")
        else:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
    return "".join(out)


@dataclass(frozen=True)
class Problem:
    """One named problem: ``name`` (a :class:`ProblemName`), a sentence, the test cell it
    cost (its grade_id, "" for the whole notebook) and the notebook."""

    name: ProblemName
    message: str
    cell: str = ""
    notebook: str = ""

    def __post_init__(self) -> None:
        name = ProblemName(self.name)  # a name outside the closed set is a bug: ValueError
        object.__setattr__(self, "name", name)
        message = str(self.message)
        if message.startswith(f"{name}: "):  # checks' messages often start with the name
            message = message[len(name) + 2 :]
        object.__setattr__(self, "message", message)

    def __str__(self) -> str:
        return render(self)

    def to_json(self) -> dict:
        data = asdict(self)
        data["name"] = str(self.name)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Problem:
        values = {k: str(data.get(k, "")) for k in ("name", "message", "cell", "notebook")}
        if values["name"] not in ProblemName._value2member_map_:
            values["message"] = f"{values['name']}: {values['message']}"
            values["name"] = ProblemName.GRADER_ERROR
        return cls(**values)  # type: ignore[arg-type]


def render(problem: Problem, width: int | None = None) -> str:
    """``Name: notebook:cell: message``, escaped; with ``width``, shortened at a word
    boundary (never mid-word) to at most ``width`` characters."""
    where = f"{problem.notebook}:{problem.cell}: " if problem.cell else ""
    text = escape(f"{problem.name}: {where}{problem.message}")
    if width is None:
        return text
    one_line = " ".join(text.split())
    return textwrap.shorten(one_line, width=width, placeholder=" ...")
