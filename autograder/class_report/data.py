"""The class report's data: scores, pass rates, misconceptions, problems, students.

Computed from the grader's results alone (no file is read), so a test can build it from
results it makes up.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from cnncourse.checks.misconceptions import CATALOGUE

from ..worker import SubmissionResult
from . import similarity

# Cell problems that the pass rates and misconceptions already tell; every other name is
# listed with the problems (ForbiddenCall, MissingFunction, CellTimeLimit, ...).
_TOLD_ELSEWHERE = {"", "CheckFailed"}


def _text(value) -> str:
    """A name as text, whether it is a str or an enum member (problems.py's names)."""
    return str(getattr(value, "value", value))


def heading_anchor(heading: str) -> str:
    """The anchor JupyterLab and nbconvert give a markdown heading: its text as rendered
    (code marks dropped), spaces made dashes."""
    return heading.replace("`", "").strip().replace(" ", "-")


@dataclass
class ScoreSummary:
    """Scores of one assignment (or one notebook of it) over the graded submissions."""

    assignment: str
    notebook: str  # "" for the whole assignment
    max_score: float
    scores: list[float]
    submissions: int  # graded + failed to grade
    failed: int  # the grader could not grade them (not in ``scores``)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.scores) if self.scores else 0.0

    @property
    def full(self) -> int:
        return sum(s >= self.max_score > 0 for s in self.scores)

    @property
    def zero(self) -> int:
        return sum(s == 0 for s in self.scores)


@dataclass
class CellStat:
    """One test cell across the class."""

    assignment: str
    notebook: str
    grade_id: str
    points: float
    graded: int = 0
    passed: int = 0
    points_earned: float = 0.0
    failed_by: list[str] = field(default_factory=list)
    causes: dict[str, int] = field(default_factory=dict)  # cause ("" unnamed) -> students

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass
class Hit:
    """Where a student met a misconception or a problem."""

    student: str
    assignment: str
    notebook: str = ""
    cell: str = ""
    message: str = ""


@dataclass
class CauseStat:
    """One misconception: who hit it, in which test cells, and where it is taught."""

    key: str
    sentence: str
    hits: list[Hit] = field(default_factory=list)
    lecture: tuple[str, str] = ("", "")

    @property
    def students(self) -> list[str]:
        return sorted({h.student for h in self.hits})

    @property
    def cells(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for h in self.hits:
            counts[h.cell] = counts.get(h.cell, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class StudentRow:
    student: str
    assignment: str
    status: str
    score: float
    max_score: float
    lost: list[str]  # grade_ids that lost points
    causes: list[str]  # misconception keys
    problems: list[str]  # problem names


@dataclass
class ClassData:
    """Everything the report shows, computed from the results alone (no I/O)."""

    summaries: list[ScoreSummary]
    cells: list[CellStat]
    causes: list[CauseStat]  # most students first
    problems: dict[str, list[Hit]]  # problem name -> hits, most first
    students: list[StudentRow]
    similar: similarity.SimilarityResult = field(default_factory=similarity.SimilarityResult)

    def cause(self, key: str) -> CauseStat | None:
        return next((c for c in self.causes if c.key == key), None)


def _score_summaries(results: list[SubmissionResult]) -> list[ScoreSummary]:
    out = []
    for aid in sorted({r.assignment for r in results}):
        mine = [r for r in results if r.assignment == aid]
        graded = [r for r in mine if r.status == "graded"]
        top = max((r.max_score for r in graded), default=0.0)
        failed = len(mine) - len(graded)
        out.append(ScoreSummary(aid, "", top, [r.score for r in graded], len(mine), failed))
        notebooks = sorted({c.notebook for r in graded for c in r.cells})
        if len(notebooks) < 2:
            continue  # one notebook: its scores are the assignment's
        for nb in notebooks:
            per = [[c for c in r.cells if c.notebook == nb] for r in graded]
            top_nb = max((sum(c.max_score for c in cells) for cells in per), default=0.0)
            scores = [round(sum(c.score for c in cells), 6) for cells in per]
            out.append(ScoreSummary(aid, nb, top_nb, scores, len(mine), failed))
    return out


def summarise(results: list[SubmissionResult]) -> ClassData:
    """The report's tables from the grader's results."""
    cells: dict[tuple[str, str, str], CellStat] = {}
    causes = {key: CauseStat(key, m.sentence, lecture=m.lecture) for key, m in CATALOGUE.items()}
    problems: dict[str, dict[tuple, Hit]] = {}
    students = []
    for r in sorted(results, key=lambda r: (r.assignment, r.student)):
        row_causes: list[str] = []
        for p in r.problems:
            hit = Hit(r.student, r.assignment, p.notebook, p.cell, p.message)
            key = (r.student, r.assignment, p.notebook, p.cell)
            problems.setdefault(_text(p.name), {}).setdefault(key, hit)
        for c in r.cells if r.status == "graded" else []:
            stat = cells.setdefault(
                (r.assignment, c.notebook, c.grade_id),
                CellStat(r.assignment, c.notebook, c.grade_id, c.max_score),
            )
            stat.points = max(stat.points, c.max_score)
            stat.graded += 1
            stat.points_earned += c.score
            if c.score >= c.max_score:
                stat.passed += 1
                continue
            stat.failed_by.append(r.student)
            stat.causes[c.cause] = stat.causes.get(c.cause, 0) + 1
            hit = Hit(r.student, r.assignment, c.notebook, c.grade_id, c.message)
            if c.cause:
                cause = causes.setdefault(c.cause, CauseStat(c.cause, "(not in the catalogue)"))
                cause.hits.append(hit)
                row_causes += [c.cause] if c.cause not in row_causes else []
            problem = _text(c.problem)
            if problem not in _TOLD_ELSEWHERE:
                key = (r.student, r.assignment, c.notebook, c.grade_id)
                problems.setdefault(problem, {}).setdefault(key, hit)
        students.append(
            StudentRow(
                r.student,
                r.assignment,
                r.status,
                r.score,
                r.max_score,
                [c.grade_id for c in r.cells if c.score < c.max_score],
                row_causes,
                sorted({_text(p.name) for p in r.problems}),
            )
        )
    return ClassData(
        summaries=_score_summaries(results),
        cells=sorted(cells.values(), key=lambda s: (s.pass_rate, s.assignment, s.grade_id)),
        causes=sorted(
            (c for c in causes.values() if c.hits), key=lambda c: (-len(c.students), c.key)
        ),
        problems={
            name: list(hits.values())
            for name, hits in sorted(problems.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        },
        students=sorted(students, key=lambda s: (s.student, s.assignment)),
    )
