"""Write the class report (HTML and CSVs) and the ``report`` subcommand."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .. import course
from ..worker import SubmissionResult
from . import similarity
from .data import ClassData, summarise

REPORT_DIR = "class-report"


def autograded_notebooks(
    out_dir: Path, results: list[SubmissionResult]
) -> dict[str, dict[str, list[Path]]]:
    """assignment -> student -> autograded notebooks of every graded submission (as the
    grader's writer laid them out: ``<out>/autograded/<student>/<assignment>/*.ipynb``)."""
    base = (Path(out_dir) / "autograded").resolve()
    found: dict[str, dict[str, list[Path]]] = {}
    for r in results:
        folder = (base / r.student / r.assignment).resolve()
        if r.status != "graded" or base not in folder.parents or not folder.is_dir():
            continue
        found.setdefault(r.assignment, {})[r.student] = sorted(folder.glob("*.ipynb"))
    return found


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_csvs(data: ClassData, folder: Path) -> list[Path]:
    """One CSV per table of the report; returns their paths."""
    tables = {
        "scores.csv": (
            ["assignment", "notebook", "max_score", "submissions", "graded", "failed_to_grade"]
            + ["mean", "median", "full_marks", "zero"],
            [
                [s.assignment, s.notebook, f"{s.max_score:g}", s.submissions, len(s.scores)]
                + [s.failed, f"{s.mean:.3f}", f"{s.median:g}", s.full, s.zero]
                for s in data.summaries
            ],
        ),
        "checks.csv": (
            ["assignment", "notebook", "test_cell", "points", "graded", "passed", "pass_rate"],
            [
                [c.assignment, c.notebook, c.grade_id, f"{c.points:g}", c.graded, c.passed]
                + [f"{c.pass_rate:.3f}"]
                for c in data.cells
            ],
        ),
        "misconceptions.csv": (
            ["cause", "students", "sentence", "test_cells", "lecture", "who"],
            [
                [c.key, len(c.students), c.sentence]
                + [" ".join(f"{k}:{n}" for k, n in c.cells.items())]
                + [" § ".join(c.lecture) if c.lecture[0] else "", " ".join(c.students)]
                for c in data.causes
            ],
        ),
        "problems.csv": (
            ["problem", "student", "assignment", "notebook", "cell", "message"],
            [
                [name, h.student, h.assignment, h.notebook, h.cell, h.message]
                for name, hits in data.problems.items()
                for h in hits
            ],
        ),
        "students.csv": (
            ["student", "assignment", "status", "score", "max_score", "lost_checks", "causes"]
            + ["problems"],
            [
                [s.student, s.assignment, s.status, f"{s.score:g}", f"{s.max_score:g}"]
                + [" ".join(s.lost), " ".join(s.causes), " ".join(s.problems)]
                for s in data.students
            ],
        ),
        "similar_pairs.csv": (
            ["assignment", "student_a", "student_b", "similarity", "share_of_a", "share_of_b"]
            + ["chars_a", "chars_b"],
            [
                [p.assignment, p.student_a, p.student_b, f"{p.similarity:.3f}"]
                + [f"{p.similarity_a:.3f}", f"{p.similarity_b:.3f}", p.chars_a, p.chars_b]
                for p in data.similar.pairs
            ],
        ),
    }
    paths = []
    for name, (header, rows) in tables.items():
        _write_csv(folder / name, header, rows)  # type: ignore[arg-type]
        paths.append(folder / name)
    return paths


def build_report(
    results: list[SubmissionResult],
    out_dir: Path,
    course_root: Path | None = None,
    threshold: float = similarity.THRESHOLD,
) -> Path:
    """Write ``<out_dir>/class-report/index.html`` and its CSVs; returns the HTML's path.

    ``results``: the grader's results (``GradebookWriter(...).load_results()``);
    ``out_dir``: the graded folder (its ``autograded/`` notebooks are compared);
    ``course_root``: the course (its ``assignments/`` release is subtracted from the code
    compared, its ``lectures/`` are linked); default: this course.
    """
    return write_report(results, out_dir, course_root, threshold)[0]


def write_report(
    results: list[SubmissionResult],
    out_dir: Path,
    course_root: Path | None = None,
    threshold: float = similarity.THRESHOLD,
) -> tuple[Path, ClassData]:
    """:func:`build_report`, also returning the data it shows."""
    from .html import render

    out_dir = Path(out_dir)
    root = Path(course_root) if course_root else course.project_root()
    folder = out_dir / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    data = summarise(results)
    notebooks = autograded_notebooks(out_dir, results)
    releases = {
        aid: sorted((course.assignments_dir(root) / aid).glob("*.ipynb")) for aid in notebooks
    }
    data.similar = similarity.compare_class(notebooks, releases, threshold)
    write_csvs(data, folder)
    page = render(data, lectures_href=_lectures_href(root, folder), title=out_dir.name)
    path = folder / "index.html"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8", errors="backslashreplace")
    tmp.replace(path)
    return path, data


def _lectures_href(root: Path, folder: Path) -> str:
    """The lectures folder as a link from the report (relative where it can be)."""
    lectures = (root / "lectures").resolve()
    try:
        return Path(os.path.relpath(lectures, folder.resolve())).as_posix()
    except ValueError:  # another drive
        return lectures.as_uri()


def load_results(out_dir: Path) -> list[SubmissionResult]:
    """The grader's results for ``out_dir``, read the way the grader reads them."""
    from ..record import GradebookWriter, default_db_url

    return GradebookWriter(default_db_url(out_dir), out_dir).load_results()


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``report <graded folder>`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "report",
        help="what the class got wrong: <graded>/class-report/index.html and CSVs",
    )
    p.add_argument("graded", help="the folder `grade --out` wrote (default name: graded)")
    p.add_argument("--course", default=None, help="course root (default: this course)")
    p.add_argument(
        "--threshold",
        type=float,
        default=similarity.THRESHOLD,
        help="flag pairs whose shared own code is at least this share of each "
        "(default %(default)s)",
    )
    p.set_defaults(func=main)
    return p


def main(
    args: argparse.Namespace, load: Callable[[Path], list[SubmissionResult]] = load_results
) -> int:
    """``python -m autograder report <graded>``: 0 when written, 2 when there is nothing."""
    out = Path(args.graded)
    if not out.is_dir():
        print(f"error: no graded folder {out}", file=sys.stderr)
        return 2
    results = load(out)
    if not results:
        print(
            f"error: {out} holds no grading results (run `grade --out {out}` first)",
            file=sys.stderr,
        )
        return 2
    path, data = write_report(results, out, args.course, args.threshold)
    print(
        f"class report: {path} ({len(results)} submission(s), "
        f"{len(data.similar.pairs)} near-identical pair(s) for a person to review)"
    )
    return 0
