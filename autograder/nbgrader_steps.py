"""The grader's steps inside nbgrader's Autograde converter.

* :class:`OverwriteCellsAndFlags` (sanitize step): nbgrader's ``OverwriteCells`` plus the
  ``grade`` / ``solution`` flags and points, restored from the gradebook too.
* :class:`SaveVerdicts` (after execution): each test cell's score is the grader's verdict
  (:mod:`autograder.decide`), never a reading of the cell's outputs: nothing the kernel
  prints, raises or displays can change it.

The executor between them is :class:`autograder.execute.SandboxedExecute`; the feedback's
redaction of hidden tests is :class:`autograder.feedback.RedactHiddenTests`.
"""

from __future__ import annotations

from nbgrader import utils
from nbgrader.preprocessors import SaveAutoGrades

from .feedback import RestoreHiddenTests


class SaveVerdicts(SaveAutoGrades):
    """Scores from the grader's verdicts: full points when passed, else 0."""

    def preprocess(self, nb, resources):
        self._verdicts = resources.get("autograder_verdicts", {})
        return super().preprocess(nb, resources)

    def _add_score(self, cell, resources):
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        grade = self.gradebook.find_grade(
            grade_id, self.notebook_id, self.assignment_id, self.student_id
        )
        verdict = self._verdicts.get(grade_id)
        max_score = float(cell.metadata["nbgrader"].get("points", 0) or 0)
        grade.auto_score = max_score if verdict is not None and verdict.passed else 0.0
        grade.needs_manual_grade = grade.manual_score is not None
        self.gradebook.db.commit()

    def preprocess_cell(self, cell, resources, cell_index):
        if utils.is_grade(cell):
            self._add_score(cell, resources)
        if utils.is_solution(cell) or utils.is_task(cell):
            self._add_comment(cell, resources)
        return cell, resources


class OverwriteCellsAndFlags(RestoreHiddenTests):
    """nbgrader's OverwriteCells (without its false checksum warnings for untouched test
    cells, see :class:`~autograder.feedback.RestoreHiddenTests`), plus: the grade/solution/
    task flags come back from the gradebook too. (nbgrader restores source, points, lock and
    checksum, but a student who flips ``grade`` to false on a test cell makes plain nbgrader
    fail the whole notebook.)"""

    def preprocess(self, nb, resources):
        # DeduplicateIds leaves copies of a cell with nbgrader metadata but no grade_id,
        # which nbgrader's missing-cell check cannot handle: they are plain cells now.
        for cell in nb.cells:
            meta = cell.get("metadata", {})
            if "nbgrader" in meta and "grade_id" not in meta["nbgrader"]:
                del meta["nbgrader"]
        self._source_nb = None
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            if self._source_nb is None:
                self._source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
                self._graded = {c.name: c for c in self._source_nb.grade_cells}
                self._solutions = {c.name for c in self._source_nb.solution_cells}
            meta = cell.metadata.nbgrader
            meta["grade"] = grade_id in self._graded
            meta["solution"] = grade_id in self._solutions
            meta["task"] = False
            if grade_id in self._graded:
                meta["points"] = float(self._graded[grade_id].max_score)
            else:
                meta.pop("points", None)
            meta.setdefault("schema_version", 3)
        return super().preprocess_cell(cell, resources, cell_index)
