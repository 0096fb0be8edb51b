"""Grade a folder of submissions: discover, dispatch to a backend, record, report.

Submissions are laid out ``<dir>/<student>/<assignment>/<notebook>.ipynb`` (nbgrader's
``submitted`` layout). Results go to ``out_dir``: ``gradebook.db`` (or ``--db``),
``autograded/``, ``feedback/``, ``results/`` (the resume journal) and ``grades.csv``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from cnncourse.runtime import cpu_quota

from . import backends, course, report
from .gradebook import GradebookWriter, copy_assignments, default_db_url, normalize_db_url
from .limits import Limits
from .release import generate_release
from .sandbox import bwrap_path
from .worker import GradeTask, SubmissionResult, encode_files


@dataclass
class Submission:
    student: str
    assignment: str
    folder: Path


@dataclass
class GradingRun:
    """What :func:`grade_submissions` did."""

    results: list[SubmissionResult]
    out_dir: Path
    db_url: str
    csv_path: Path
    isolated: bool
    skipped: list[str] = field(default_factory=list)

    @property
    def table(self) -> str:
        return report.summary_table(self.results)


def discover(submissions_dir: Path, assignments: list[str] | None = None) -> list[Submission]:
    """Every ``<student>/<assignment>/`` folder below ``submissions_dir``, sorted."""
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"submissions folder not found: {submissions_dir}")
    found = []
    for student_dir in sorted(p for p in submissions_dir.iterdir() if p.is_dir()):
        if student_dir.name.startswith("."):
            continue
        for assignment_dir in sorted(p for p in student_dir.iterdir() if p.is_dir()):
            if assignments and assignment_dir.name not in assignments:
                continue
            found.append(Submission(student_dir.name, assignment_dir.name, assignment_dir))
    return found


_template_cache: dict[str, bytes] = {}


def _solutions_fingerprint(ids: list[str]) -> str:
    digest = hashlib.sha256()
    for assignment_id in ids:
        for path in sorted((course.solutions_dir() / assignment_id).rglob("*")):
            if path.is_file():
                digest.update(str(path).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnn-course" / "templates"


def template_gradebook(ids: list[str]) -> bytes:
    """A scratch SQLite gradebook holding ``ids`` (nbgrader generate_assignment).

    Cached in memory and on disk (``~/.cache/cnn-course/templates``) under a hash of the
    source notebooks, so it is built once per version of solutions/, like a release.
    """
    key = _solutions_fingerprint(ids)
    if key in _template_cache:
        return _template_cache[key]
    cached = _cache_dir() / f"{key}.db"
    if cached.is_file():
        _template_cache[key] = cached.read_bytes()
        return _template_cache[key]
    with tempfile.TemporaryDirectory(prefix="cnn-template-") as tmp:
        db = Path(tmp) / "template.db"
        generate_release(Path(tmp) / "release", ids, db_url=f"sqlite:///{db}")
        data = db.read_bytes()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        partial.replace(cached)  # atomic: parallel graders never read half a file
    except OSError:
        pass  # a read-only home only costs the rebuild next time
    _template_cache[key] = data
    return data


def _source_files(assignment_id: str) -> dict[str, bytes]:
    folder = course.solutions_dir() / assignment_id
    return {rel: data for rel, data in encode_files(folder).items() if not rel.endswith(".ipynb")}


def default_jobs() -> int:
    return cpu_quota()


def grade_submissions(
    submissions_dir: Path,
    out_dir: Path,
    db_url: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    limits: Limits | None = None,
    redact_hidden: bool = True,
    force: bool = False,
    assignments: list[str] | None = None,
    progress: bool = True,
    sandbox: bool = True,
) -> GradingRun:
    """Autograde every submission below ``submissions_dir`` into ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    db_url = normalize_db_url(db_url) if db_url else default_db_url(out_dir)
    limits = limits or Limits()
    known = course.assignment_ids()
    subs = discover(Path(submissions_dir), assignments)
    bwrap = bwrap_path() if sandbox else None
    if bwrap is None:
        print(
            "WARNING: bubblewrap (bwrap) is not available: student code runs without a "
            "filesystem and network sandbox (resource limits still apply). "
            "Install the 'bubblewrap' package for isolated grading."
        )
    # Each kernel gets its share of the CPUs so parallel workers do not oversubscribe.
    os.environ.setdefault("CNN_COURSE_THREADS", str(max(1, cpu_quota() // max(1, jobs))))

    writer = GradebookWriter(db_url, out_dir)
    ids = sorted({s.assignment for s in subs if s.assignment in known})
    template = template_gradebook(ids) if ids else b""
    if ids:
        copy_assignments(template, db_url)

    tasks, results, skipped = [], [], []
    for sub in subs:
        if sub.assignment not in known:
            result = SubmissionResult(
                sub.student,
                sub.assignment,
                status="failed",
                problems=[f"UnknownAssignment: no solutions/{sub.assignment} in this course"],
            )
            writer.record(result)
            results.append(result)
            continue
        if not force and writer.is_done(sub.student, sub.assignment):
            skipped.append(f"{sub.student}/{sub.assignment}")
            continue
        tasks.append(
            GradeTask(
                student=sub.student,
                assignment=sub.assignment,
                files=encode_files(sub.folder),
                template_db=template,
                source_files=_source_files(sub.assignment),
                limits=limits.as_dict(),
                redact_hidden=redact_hidden,
                bwrap=bwrap or "",
            )
        )
    bar = tqdm(total=len(tasks), unit="submission", desc="grading", disable=not progress)
    for result in backends.run(tasks, jobs=jobs, scheduler=scheduler):
        writer.record(result)
        bar.set_postfix_str(f"{result.student}/{result.assignment}: {result.score:g}")
        bar.update(1)
    bar.close()
    results = writer.load_results()
    csv_path = report.write_csv(results, out_dir / "grades.csv")
    return GradingRun(
        results, out_dir, db_url, csv_path, isolated=bwrap is not None, skipped=skipped
    )
