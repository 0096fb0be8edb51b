"""Report: the grades CSV, the summary table and the per-student problems of a run."""

from __future__ import annotations

import csv
import os
import textwrap
from pathlib import Path

from .problems import escape, render
from .worker import SubmissionResult

CSV_FIELDS = ["student", "assignment", "status", "score", "max_score", "problems"]
# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """``text`` safe for a CSV cell: escaped, on one line, never read as a formula."""
    value = " / ".join(line.strip() for line in escape(text).splitlines() if line.strip())
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(results: list[SubmissionResult], path: Path) -> Path:
    """One row per (student, assignment), sorted, identical whatever backend graded it.

    Written to a temporary file first and renamed, so a crash never leaves a truncated
    CSV; characters that UTF-8 cannot hold are written escaped.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(results, key=lambda r: (r.student, r.assignment))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow(
                {
                    "student": csv_cell(r.student),
                    "assignment": csv_cell(r.assignment),
                    "status": r.status,
                    "score": f"{r.score:g}",
                    "max_score": f"{r.max_score:g}",
                    # whole messages: a spreadsheet cell holds them, nothing is cut
                    "problems": " | ".join(csv_cell(render(p)) for p in r.problems),
                }
            )
    tmp.replace(path)
    return path


def summary_table(results: list[SubmissionResult]) -> str:
    """A plain-text table: student, assignment, score, status, first problem."""
    rows = [("student", "assignment", "score", "status", "notes")]
    for r in sorted(results, key=lambda r: (r.student, r.assignment)):
        failed = [c for c in r.cells if c.score < c.max_score]
        note = ""
        if r.problems:
            more = f" (+{len(r.problems) - 1} more)" if len(r.problems) > 1 else ""
            note = render(r.problems[0], width=70 - len(more)) + more
        elif failed:
            note = textwrap.shorten(
                "lost: " + ", ".join(c.grade_id for c in failed), width=70, placeholder=" ..."
            )
        student = escape(r.student)
        student = student if len(student) <= 40 else student[:37] + "..."
        rows.append(
            (student, escape(r.assignment), f"{r.score:g} / {r.max_score:g}", r.status, note)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def failures(results: list[SubmissionResult]) -> str:
    """Per-student list of what went wrong (empty when nothing did)."""
    lines = []
    for r in sorted(results, key=lambda r: (r.student, r.assignment)):
        if r.status != "graded" or r.problems:
            lines.append(f"{escape(r.student)} / {escape(r.assignment)} ({r.status}):")
            for problem in r.problems:
                text = " ".join(render(problem).split())  # whole, wrapped at word boundaries
                lines += textwrap.wrap(
                    text, width=100, initial_indent="    - ", subsequent_indent="      "
                )
    return "\n".join(lines)
