"""Report: the grades CSV, the summary table and the per-student problems of a run."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .worker import SubmissionResult

CSV_FIELDS = ["student", "assignment", "status", "score", "max_score", "problems"]


def _one_line(text: str, limit: int) -> str:
    line = text.splitlines()[0] if text else ""
    return line[:limit]


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
                    "student": r.student,
                    "assignment": r.assignment,
                    "status": r.status,
                    "score": f"{r.score:g}",
                    "max_score": f"{r.max_score:g}",
                    "problems": " | ".join(_one_line(str(p), 200) for p in r.problems),
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
            note = _one_line(str(r.problems[0]), 70)
        elif failed:
            note = ("lost: " + ", ".join(c.grade_id for c in failed))[:70]
        student = r.student if len(r.student) <= 40 else r.student[:37] + "..."
        rows.append((student, r.assignment, f"{r.score:g} / {r.max_score:g}", r.status, note))
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
            lines.append(f"{r.student} / {r.assignment} ({r.status}):")
            lines += [f"    - {_one_line(str(p), 160)}" for p in r.problems]
    return "\n".join(lines)
