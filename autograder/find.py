"""Find the submissions: ``<dir>/<student>/<assignment>/<notebook>.ipynb``.

:func:`find_submissions` walks the submissions folder without following links and says
clearly when the folder given is not laid out as expected: a student's folder, an
assignment folder or the release folder given by mistake is a :class:`LayoutError` that
says what was expected and what was found (the CLI prints it as one line and exits 2).
Hidden folders (``.ipynb_checkpoints``, ``.git``) and stray files are ignored. A student or
assignment folder that is a symbolic link, or whose name is not printable UTF-8, is still
listed, with a :class:`~autograder.problems.Problem`, so that the batch reports it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .problems import Problem, ProblemName

LAYOUT = "<submissions>/<student>/<assignment>/<notebook>.ipynb"


class LayoutError(ValueError):
    """The submissions folder is missing or not laid out as ``LAYOUT``."""


@dataclass
class Submission:
    """One student's folder for one assignment."""

    student: str  # printable form of the folder name (escaped when odd)
    assignment: str
    folder: Path
    problems: list[Problem] = field(default_factory=list)


def display_name(name: str) -> tuple[str, bool]:
    """A printable, UTF-8 form of a file name, and whether it had to be escaped.

    Names that are not valid UTF-8 (kept by Python as surrogate escapes) or that hold
    control characters are shown with backslash escapes; the folder is still read by its
    real name.
    """
    raw = os.fsencode(name)
    text = raw.decode("utf-8", errors="backslashreplace")
    clean = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
    return clean, clean != name


def _fingerprint(name: str) -> str:
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:8]


def student_id(name: str) -> tuple[str, bool]:
    """The id a student folder is graded and recorded under, and whether it is odd.

    Identity is the exact folder name (its bytes): an ordinary name (printable UTF-8 in NFC
    form, no backslash) is its own id; any other name is shown escaped and followed by
    ``~`` and a fingerprint of its bytes, so two names that differ in an invisible
    character, or one that spells out another's escape (``a\\x07`` next to ``a`` + BEL),
    stay two students with two visibly different ids.
    """
    shown, escaped = display_name(name)
    ordinary = not escaped and "\\" not in name and unicodedata.normalize("NFC", name) == name
    if ordinary:
        return name, False
    return f"{shown}~{_fingerprint(name)}", True


def _disambiguate(found: list[Submission]) -> None:
    """Ids that look alike (equal once Unicode compatibility forms are folded, e.g. a
    ligature and its letters) get the fingerprint of their folder's bytes appended."""
    groups: dict[tuple[str, str], set[str]] = {}
    for sub in found:
        key = (unicodedata.normalize("NFKC", sub.student), sub.assignment)
        groups.setdefault(key, set()).add(sub.student)
    clash = {student for ids in groups.values() if len(ids) > 1 for student in ids}
    for sub in found:
        if sub.student in clash and "~" not in sub.student:
            sub.student = f"{sub.student}~{_fingerprint(sub.folder.parent.name)}"
            sub.problems.append(
                Problem(
                    ProblemName.ODD_NAME,
                    f"the folder name looks like another student's: graded as {sub.student}",
                )
            )


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _visible(entry: os.DirEntry) -> bool:
    return not entry.name.startswith(".")


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _has_notebooks(folder: Path) -> bool:
    try:
        return any(e.name.endswith(".ipynb") for e in _entries(folder) if _visible(e))
    except OSError:
        return False


def check_layout(root: Path, known: list[str]) -> None:
    """Raise :class:`LayoutError` unless ``root`` looks like a submissions folder."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        raise LayoutError(f"submissions folder not found: {root}") from None
    except OSError as exc:
        raise LayoutError(f"cannot read {root}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise LayoutError(f"{root} is a file; give the folder laid out {LAYOUT}")
    try:
        entries = [e for e in _entries(root) if _visible(e)]
    except OSError as exc:
        raise LayoutError(f"cannot read {root}: {exc.strerror}") from None
    notebooks = [e.name for e in entries if e.name.endswith(".ipynb")]
    if notebooks:
        raise LayoutError(
            f"{root} holds notebooks ({', '.join(notebooks[:3])}): it looks like one "
            f"student's assignment folder. Expected {LAYOUT}: give the folder that holds "
            "the students' folders."
        )
    folders = [e for e in entries if _is_dir(e)]
    as_assignments = [e.name for e in folders if e.name in known]
    if as_assignments and all(_has_notebooks(Path(e.path)) for e in folders if e.name in known):
        raise LayoutError(
            f"{root} holds assignment folders ({', '.join(as_assignments[:3])}) directly: "
            "it looks like one student's folder or the release folder (assignments/). "
            f"Expected {LAYOUT}: give the folder that holds the students' folders."
        )


def find_submissions(
    root: Path, known: list[str], only: list[str] | None = None
) -> list[Submission]:
    """Every ``<student>/<assignment>/`` folder below ``root``, sorted; links never followed."""
    root = Path(root)
    check_layout(root, known)
    found: list[Submission] = []
    for student_entry in _entries(root):
        if not _visible(student_entry):
            continue
        student, odd_student = student_id(student_entry.name)
        student_path = Path(student_entry.path)
        if student_entry.is_symlink():
            found.append(
                Submission(
                    student,
                    "?",
                    student_path,
                    [
                        Problem(
                            ProblemName.UNSAFE_FILE,
                            f"the student folder {student!r} is a symbolic link",
                        )
                    ],
                )
            )
            continue
        if not _is_dir(student_entry):
            continue  # a stray file next to the students' folders
        try:
            assignment_entries = _entries(student_path)
        except OSError as exc:
            found.append(
                Submission(
                    student,
                    "?",
                    student_path,
                    [Problem(ProblemName.UNSAFE_FILE, f"cannot read the folder: {exc.strerror}")],
                )
            )
            continue
        for entry in assignment_entries:
            if not _visible(entry) or not (entry.is_symlink() or _is_dir(entry)):
                continue
            assignment, odd_assignment = display_name(entry.name)
            if only and assignment not in only:
                continue
            problems = []
            if odd_student or odd_assignment:
                problems.append(
                    Problem(
                        ProblemName.ODD_NAME,
                        f"the folder name is not printable UTF-8: {student}/"
                        f"{assignment} (shown escaped)",
                    )
                )
            if entry.is_symlink():
                problems.append(
                    Problem(
                        ProblemName.UNSAFE_FILE,
                        f"the assignment folder {assignment!r} is a symbolic link",
                    )
                )
            found.append(Submission(student, assignment, Path(entry.path), problems))
    _disambiguate(found)
    return found
