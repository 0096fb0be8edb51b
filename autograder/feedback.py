"""Hidden tests in nbgrader's pipeline: never shown in feedback, restored quietly for grading.

Both are nbgrader preprocessors that the course's ``nbgrader_config.py`` plugs in, so they
work for plain ``nbgrader`` and the Formgrader as well as for ``python -m autograder``.

* :class:`RedactHiddenTests` (``GenerateFeedback``): for every code cell that holds a
  ``### BEGIN HIDDEN TESTS`` region it removes the region and replaces the tracebacks of the
  cell's errors by one line, ``<ename>: <evalue>`` (an IPython traceback quotes the source
  lines around the failing line, which may be hidden). The student still sees which test
  cell failed and its message (for example ``conv_backward: dA_prev differs ... at index
  (0, 1, 2, 0)``), not the hidden code.
* :class:`RestoreHiddenTests` (``Autograde``'s sanitising step): nbgrader's
  ``OverwriteCells`` compares each locked cell with the gradebook, which holds the test cell
  *with* its hidden tests, so every test cell of an untouched submission is reported as
  "Attribute 'checksum' ... has changed!" (nbgrader issue #1961). This subclass puts the
  hidden tests back first when the cell is exactly as released, so only real edits warn.
"""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells
from traitlets import List

HIDDEN_NOTE = "# (hidden tests are not shown)"


def redact_source(source: str, begin: str, end: str) -> tuple[str, bool]:
    """``source`` without its hidden regions; True when one was removed.

    A region runs from a line containing ``begin`` to the next line containing ``end``
    (both removed). Unlike nbgrader's ``ClearHiddenTests`` this never raises: an
    unterminated region is removed up to the end of the cell, so a damaged marker in a
    notebook cannot make the feedback show the tests.
    """
    kept: list[str] = []
    hidden = removed = False
    for line in source.split("\n"):
        if begin in line:
            hidden = removed = True
        elif end in line and hidden:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept), removed


class RedactHiddenTests(ClearHiddenTests):
    """For feedback: drop hidden-test source and the tracebacks of cells that had it."""

    # GenerateFeedback configures this for its preprocessors; declared configurable here (as
    # nbgrader's GetGrades does) so that traitlets does not warn it is not recognised.
    display_data_priority = List(
        [
            "text/html",
            "application/pdf",
            "text/latex",
            "image/svg+xml",
            "image/png",
            "image/jpeg",
            "text/plain",
        ]
    ).tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: dict, cell_index: int
    ) -> tuple[NotebookNode, dict]:
        if cell.cell_type != "code":
            return cell, resources
        source, removed = redact_source(
            cell.source, self.begin_test_delimeter, self.end_test_delimeter
        )
        if removed:
            cell.source = source.rstrip() + "\n" + HIDDEN_NOTE
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


class RestoreHiddenTests(OverwriteCells):
    """nbgrader's ``OverwriteCells`` that restores hidden tests of untouched cells silently."""

    def _released_source(self, source: str) -> str | None:
        """What ``generate_assignment`` made of ``source`` (None if it cannot be told)."""
        cell = NotebookNode(cell_type="code", source=source, metadata={})
        try:
            ClearHiddenTests(parent=self)._remove_hidden_test_region(cell)
        except RuntimeError:  # malformed markers: leave the decision to nbgrader
            return None
        return cell.source

    def preprocess_cell(
        self, cell: NotebookNode, resources: dict, cell_index: int
    ) -> tuple[NotebookNode, dict]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                source_cell = self.gradebook.find_source_cell(
                    grade_id, self.notebook_id, self.assignment_id
                )
            except MissingEntry:
                source_cell = None  # nbgrader reports it below
            if (
                source_cell is not None
                and source_cell.locked
                and cell.get("cell_type") == source_cell.cell_type
                and cell.source != source_cell.source
                and cell.source == self._released_source(source_cell.source)
            ):
                cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)
