"""Copy a submission safely: read its files into memory, never following a link.

:func:`read_submission` turns a submission folder into ``{relative path: bytes}`` plus the
problems found, before any of its code runs:

* a symbolic link, device, FIFO or socket anywhere in the folder refuses the whole
  submission (``UnsafeFile``; every notebook of it scores 0): the grader never follows a
  link to a classmate's notebook, the course's solutions or ``/proc``;
* files are opened with ``O_NOFOLLOW`` and read within size limits; hidden entries
  (``.ipynb_checkpoints``, ``.git``) are skipped;
* a notebook saved under another name (``01_conv_forward-Copy1.ipynb``) is named, and
  graded under the expected name when it is the only candidate (``RenamedNotebook``);
* a notebook that is too large, has too many cells or is not a valid notebook scores 0
  with a named problem (``NotebookTooLarge``, ``BrokenNotebook``).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .collect import read_regular_file
from .find import display_name
from .limits import Limits
from .problems import Problem, ProblemName

MAX_FILES = 1000
MAX_SUBMISSION_MB = 200


@dataclass
class Intake:
    """What was read from a submission folder."""

    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    problems: list[Problem] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(p.name == ProblemName.UNSAFE_FILE for p in self.problems)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk(folder: Path, intake: Intake, limits: Limits) -> None:
    total = 0
    stack: list[tuple[Path, str]] = [(folder, "")]
    while stack:
        path, prefix = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            intake.problems.append(
                Problem(ProblemName.UNSAFE_FILE, f"cannot read {prefix or '.'}: {exc}")
            )
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .ipynb_checkpoints, .git, editor files
            rel = f"{prefix}{entry.name}"
            shown, odd = display_name(rel)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                intake.problems.append(
                    Problem(ProblemName.UNSAFE_FILE, f"cannot read {shown!r}: {exc}")
                )
                return
            if stat.S_ISDIR(mode):
                stack.append((Path(entry.path), rel + "/"))
                continue
            if not stat.S_ISREG(mode):
                intake.problems.append(
                    Problem(
                        ProblemName.UNSAFE_FILE,
                        f"{shown!r} is {_kind(mode)}: the submission is refused",
                    )
                )
                return
            if odd:
                intake.problems.append(
                    Problem(
                        ProblemName.ODD_NAME,
                        f"a file name is not printable UTF-8: {shown} (skipped)",
                    )
                )
                continue
            if len(intake.files) >= MAX_FILES:
                intake.problems.append(
                    Problem(ProblemName.UNSAFE_FILE, f"more than {MAX_FILES} files")
                )
                return
            cap = limits.notebook_mb * 2**20 if rel.endswith(".ipynb") else 100 * 2**20
            try:
                data = read_regular_file(Path(entry.path), cap)
            except OverflowError:
                intake.problems.append(
                    Problem(
                        ProblemName.NOTEBOOK_TOO_LARGE
                        if rel.endswith(".ipynb")
                        else ProblemName.UNSAFE_FILE,
                        f"{shown!r} is larger than {cap // 2**20} MB (not read)",
                    )
                )
                continue
            except OSError as exc:
                intake.problems.append(
                    Problem(ProblemName.UNSAFE_FILE, f"cannot read {shown!r}: {exc}")
                )
                return
            total += len(data)
            if total > MAX_SUBMISSION_MB * 2**20:
                intake.problems.append(
                    Problem(
                        ProblemName.UNSAFE_FILE,
                        f"the submission is larger than {MAX_SUBMISSION_MB} MB",
                    )
                )
                return
            intake.files[rel] = data


def clean_text(text: str) -> str:
    """``text`` with what UTF-8 files cannot hold replaced by U+FFFD: lone surrogates (a
    notebook's JSON may spell them as escapes) and NUL characters."""
    if text.isascii() and "\x00" not in text:
        return text
    return (
        text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "\ufffd")
    )


def clean_strings(value):
    """Every string inside ``value`` (dicts, lists) passed through :func:`clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): clean_strings(v) for k, v in value.items()}
    return value


def _cleaned(data: bytes) -> bytes:
    """A notebook's bytes with every string cleaned (see :func:`clean_text`), so that any
    text a notebook holds can be graded, written and rendered."""
    raw = json.loads(data.decode("utf-8"))
    cleaned = clean_strings(raw)
    if cleaned == raw:
        return data
    return json.dumps(cleaned, ensure_ascii=False).encode("utf-8")


def notebook_problem(data: bytes, limits: Limits, name: str) -> Problem | None:
    """Why ``data`` is not a notebook the grader accepts, or None when it is fine."""
    import nbformat

    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return Problem(
            ProblemName.BROKEN_NOTEBOOK,
            f"{name} is not a valid notebook ({type(exc).__name__}: {str(exc)[:120]}) (0)",
        )
    if not isinstance(raw, dict):
        return Problem(
            ProblemName.BROKEN_NOTEBOOK, f"{name} is not a valid notebook (not a JSON object) (0)"
        )
    cells = raw.get("cells")
    if isinstance(cells, list) and len(cells) > limits.max_cells:
        return Problem(
            ProblemName.NOTEBOOK_TOO_LARGE,
            f"{name} has {len(cells)} cells (limit {limits.max_cells}) (0)",
        )
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # schema errors, old formats nbformat cannot convert
        return Problem(
            ProblemName.BROKEN_NOTEBOOK,
            f"{name} is not a valid notebook ({type(exc).__name__}: {str(exc)[:120]}) (0)",
        )
    return None


def read_submission(folder: Path, expected: list[str], limits: Limits) -> Intake:
    """Read ``folder`` (see the module docstring); ``expected`` are notebook names
    without ``.ipynb``."""
    intake = Intake()
    _walk(Path(folder), intake, limits)
    if intake.refused:
        intake.files = {}
        return intake
    top_notebooks = sorted(n for n in intake.files if n.endswith(".ipynb") and "/" not in n)
    wanted = [f"{name}.ipynb" for name in expected]
    missing = [n for n in wanted if n not in intake.files]
    others = [n for n in top_notebooks if n not in wanted]
    if len(missing) == 1 and len(others) == 1:
        intake.files[missing[0]] = intake.files.pop(others[0])
        intake.problems.append(
            Problem(
                ProblemName.RENAMED_NOTEBOOK,
                f"graded {others[0]!r} as {missing[0]} (the only notebook of this assignment "
                "under another name)",
            )
        )
        missing = []
    for name in missing:
        found = f"; found {', '.join(repr(o) for o in others)}" if others else ""
        intake.problems.append(
            Problem(ProblemName.MISSING_NOTEBOOK, f"{name} was not submitted (0){found}")
        )
    for name in others:  # named in the problem above; never graded as some other notebook
        if name in intake.files and name not in wanted:
            del intake.files[name]
    for name in wanted:
        if name in intake.files:
            problem = notebook_problem(intake.files[name], limits, name)
            if problem is not None:
                intake.problems.append(problem)
                del intake.files[name]
            else:
                intake.files[name] = _cleaned(intake.files[name])
    return intake
