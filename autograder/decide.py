"""Decide a test cell's points in the grader's own process.

For each check registered for the test cell (:mod:`cnncourse.checks.registry`) the grader
first judges the library-call policy from what the function can reach in the notebook's
code (:mod:`cnncourse.checks.policy`; never running it), then draws its cases from a seed the
kernel never sees, has the kernel run the function on them (:mod:`autograder.collect`) and
compares what came back with its own oracles (:func:`cnncourse.checks.engine.check`). The
cell earns its points only if every check passes; the message the student reads in the
feedback is the grader's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbformat import NotebookNode

from cnncourse.checks import registry
from cnncourse.checks.engine import FORBIDDEN, Runner, Spec, check, derived_seed
from cnncourse.checks.policy import function_uses

from .problems import ProblemName


@dataclass
class CellVerdict:
    """The grader's decision on one test cell."""

    grade_id: str
    passed: bool
    problem: str = ""  # a name from autograder.problems when not passed
    message: str = ""
    cause: str = ""  # key of the recognised misconception
    summary: list[str] = field(default_factory=list)

    def outputs(self) -> list[NotebookNode]:
        """What the test cell shows in the autograded notebook and the feedback."""
        if self.passed:
            text = "\n".join(self.summary + [self.message]) + "\n"
            return [NotebookNode(output_type="stream", name="stdout", text=text)]
        return [
            NotebookNode(
                output_type="error",
                ename=self.problem,
                evalue=self.message,
                traceback=[f"{self.problem}: {self.message}"],
            )
        ]


def static_violation(spec: Spec, cells: list) -> str:
    """What ``spec.target`` uses against its policy, as words ("" if nothing)."""
    return ", ".join(function_uses(cells, spec.target, spec.forbidden))


def decide_cell(
    notebook: str,
    grade_id: str,
    cells: list,
    runner: Runner,
    secret: str,
    student: str,
) -> CellVerdict:
    """The verdict on one test cell (see the module docstring)."""
    specs = registry.specs_for_cell(notebook, grade_id)
    if specs is None:
        return CellVerdict(
            grade_id,
            False,
            ProblemName.NO_TRUSTED_CHECK,
            f"the grader has no checks for {grade_id}",
        )
    summary: list[str] = []
    passed_messages = []
    position = next(
        (
            i
            for i, cell in enumerate(cells)
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
        ),
        len(cells),
    )
    for spec in specs:
        used = static_violation(spec, cells[:position])
        if used:
            return CellVerdict(
                grade_id,
                False,
                FORBIDDEN,
                f"{FORBIDDEN}: {spec.target} uses {used}; the graded version {spec.rule()}",
            )
        seed = derived_seed(secret, student, notebook, grade_id, spec.name)
        verdict = check(spec, runner, seed, hidden=True)
        summary += verdict.summary
        if not verdict.passed:
            return CellVerdict(
                grade_id, False, verdict.problem, verdict.message, verdict.cause, summary
            )
        passed_messages.append(
            verdict.message or f"{spec.target}: all {verdict.cases} checks passed"
        )
    message = "; ".join(passed_messages) + " (decided by the grader, outside your kernel)"
    return CellVerdict(grade_id, True, message=message, summary=summary)
