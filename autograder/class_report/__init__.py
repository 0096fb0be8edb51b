"""What the class got wrong: a class report after grading (``python -m autograder report``).

From the grader's results (the journal, read by the caller through
:meth:`autograder.record.GradebookWriter.load_results`) and the autograded notebooks in
``<graded>/autograded/<student>/<assignment>/``, it writes ``<graded>/class-report/``:
``index.html`` (one self-contained file: plots embedded as PNG, no script, no network) and
one CSV per table. It reads no gradebook, so it is the same whatever the gradebook is
(SQLite or PostgreSQL), and it never changes a grade.

* the scores per assignment and per notebook: histogram, mean, median, full marks, 0, and
  how many could not be graded (those are left out of the mean and the histogram);
* every test cell's pass rate (full points) across the graded submissions, worst first;
* the misconceptions (:data:`cnncourse.checks.misconceptions.CATALOGUE`) by the number of
  students who hit them, each with its sentence, its students and the lecture section
  that teaches the rule (each entry's ``lecture``, from :mod:`cnncourse.checks.lectures`);
* the problems by name (``CellTimeLimit``, ``MemoryLimit``, ``UnsafeFile``, ...) with the
  students, so that slow but right code can be looked at by hand;
* near-identical submissions, for a person to review (:mod:`.similarity`);
* one row per student and assignment: score, lost checks, named causes, problems.

Modules: :mod:`.data` (the tables, from results alone), :mod:`.similarity` (the copy
check), :mod:`.plots` and :mod:`.html` (the page), :mod:`.build` (files, the subcommand).
"""

from .build import REPORT_DIR, add_parser, build_report, load_results, main, write_report
from .data import ClassData, summarise

__all__ = [
    "REPORT_DIR",
    "ClassData",
    "add_parser",
    "build_report",
    "load_results",
    "main",
    "summarise",
    "write_report",
]
