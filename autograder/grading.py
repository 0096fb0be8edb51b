"""Grade a folder of submissions: the pipeline, step by step.

1. find the submissions (:mod:`autograder.find`): ``<dir>/<student>/<assignment>/``;
2. copy each one safely into memory (:mod:`autograder.intake`);
3. grade each in a worker (:mod:`autograder.worker`): isolate (:mod:`autograder.sandbox`),
   execute (:mod:`autograder.execute`), collect results (:mod:`autograder.collect`) and
   decide (:mod:`autograder.decide`), on a backend (:mod:`autograder.backends`);
4. record every result with one writer (:mod:`autograder.record`);
5. report: ``grades.csv``, the summary table, the problems (:mod:`autograder.report`).

Results go to ``out_dir``, laid out as nbgrader's course folder so that nbgrader's own
commands and the Formgrader read them: ``gradebook.db`` (or ``--db``),
``autograded/<student>/<assignment>/``, ``feedback/<student>/<assignment>/``, and the
grader's own ``autograder-grades.csv`` and ``.autograder/`` (the resume journal and the
grading secret; git-ignored, readable by the grader's user only).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from cnncourse.runtime import cpu_quota

from . import backends, class_report, course, cpu_share, report
from .find import LayoutError, Submission, find_submissions
from .intake import read_submission
from .limits import Limits
from .problems import Problem, ProblemName
from .record import (
    GradebookWriter,
    copy_assignments,
    default_db_url,
    normalize_db_url,
    state_dir,
)
from .release import generate_release
from .sandbox import bwrap_path
from .worker import GradeTask, SubmissionResult, expected_notebooks


@dataclass
class GradingRun:
    """What :func:`grade_submissions` did."""

    results: list[SubmissionResult]
    out_dir: Path
    db_url: str
    csv_path: Path
    isolated: bool
    skipped: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # folders that are no assignment here
    report_path: Path | None = None  # the class report (autograder.class_report)

    @property
    def table(self) -> str:
        return report.summary_table(self.results)

    @property
    def complete(self) -> bool:
        """Every submission found was graded (none failed, no unknown assignment folder)."""
        return not self.unknown and all(r.status == "graded" for r in self.results)


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
    """The assignment's data files from solutions/ (the course's own files, no notebooks)."""
    folder = course.solutions_dir() / assignment_id
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if (
            path.is_file()
            and path.suffix != ".ipynb"
            and not any(part.startswith(".") for part in rel.parts)
        ):
            files[str(rel)] = path.read_bytes()
    return files


def default_jobs() -> int:
    return cpu_quota()


def grading_secret(out_dir: Path) -> str:
    """The secret that seeds the grader's cases: ``$CNN_GRADER_SECRET``, else a random one
    kept with the journal (``out_dir/.autograder/grading-secret``, mode 600, git-ignored)
    so that regrading repeats the same cases. It is never sent to a kernel."""
    value = os.environ.get("CNN_GRADER_SECRET")
    if value:
        return value
    path = state_dir(out_dir) / "grading-secret"
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        value = secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value)
        return value


def _failed(sub: Submission, problems: list[Problem]) -> SubmissionResult:
    return SubmissionResult(sub.student, sub.assignment, status="failed", problems=problems)


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
    students: list[str] | None = None,
    retry_failed: bool = False,
    isolate_workers: bool = False,
    write_class_report: bool = True,
) -> GradingRun:
    """Autograde every submission below ``submissions_dir`` into ``out_dir``.

    Raises :class:`~autograder.find.LayoutError` when the folder is missing or not laid out
    ``<student>/<assignment>/<notebook>.ipynb``.
    """
    known = course.assignment_ids()
    subs = find_submissions(Path(submissions_dir), known, assignments)
    if students is not None:
        subs = [s for s in subs if s.student in students]
    if not subs:
        raise LayoutError(
            f"no submissions found in {submissions_dir}: expected "
            "<submissions>/<student>/<assignment>/<notebook>.ipynb"
        )
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    db_url = normalize_db_url(db_url) if db_url else default_db_url(out_dir)
    limits = limits or Limits()
    bwrap = bwrap_path() if sandbox else None
    if bwrap is None:
        print(
            "WARNING: bubblewrap (bwrap) is not available: student code runs without a "
            "filesystem and network sandbox (resource limits still apply). "
            "Install the 'bubblewrap' package for isolated grading."
        )
    if bwrap is not None and not cpu_share.available():
        print(
            "note: no CPU share can be set here (no writable cpu control group): kernels "
            "share the CPUs as the host's scheduler decides"
        )
    cpu_share.sweep()
    # Each kernel gets its share of the CPUs so parallel workers do not oversubscribe.
    os.environ.setdefault("CNN_COURSE_THREADS", str(max(1, cpu_quota() // max(1, jobs))))
    secret = grading_secret(out_dir)

    writer = GradebookWriter(db_url, out_dir)
    ids = sorted({s.assignment for s in subs if s.assignment in known})
    template = template_gradebook(ids) if ids else b""
    if ids:
        copy_assignments(template, db_url)
    notebooks = {aid: expected_notebooks(template, aid) for aid in ids}

    from cnncourse import data

    training_digits, grading_digits = data.fast_subset_bytes(), data.grading_digits_bytes()
    config_text = course.config_file().read_text(encoding="utf-8")
    tasks, skipped, unknown = [], [], []
    for sub in subs:
        if sub.assignment not in known:
            close = difflib.get_close_matches(sub.assignment, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"{sub.assignment!r} is not an assignment of this course{hint}"
            problem = Problem(ProblemName.UNKNOWN_ASSIGNMENT, message)
            writer.record(_failed(sub, [*sub.problems, problem]))
            unknown.append(f"{sub.student}/{sub.assignment}{hint}")
            continue
        if not force and writer.is_done(sub.student, sub.assignment, retry_failed):
            skipped.append(f"{sub.student}/{sub.assignment}")
            continue
        if any(p.name == ProblemName.UNSAFE_FILE for p in sub.problems):
            files, problems = {}, list(sub.problems)
        else:
            intake = read_submission(sub.folder, notebooks[sub.assignment], limits)
            files, problems = intake.files, sub.problems + intake.problems
        tasks.append(
            GradeTask(
                student=sub.student,
                assignment=sub.assignment,
                files=files,
                template_db=template,
                source_files=_source_files(sub.assignment),
                limits=limits.as_dict(),
                redact_hidden=redact_hidden,
                bwrap=bwrap or "",
                secret=secret,
                problems=problems,
                training_digits=training_digits,
                grading_digits=grading_digits,
                course_config=config_text,
            )
        )
    bar = tqdm(total=len(tasks), unit="submission", desc="grading", disable=not progress)
    for result in backends.run(tasks, jobs=jobs, scheduler=scheduler, isolate=isolate_workers):
        writer.record(result)
        bar.set_postfix_str(f"{result.student}/{result.assignment}: {result.score:g}")
        bar.update(1)
    bar.close()
    results = writer.load_results()
    csv_path = report.write_csv(results, out_dir / "autograder-grades.csv")
    report_path = None
    if write_class_report:
        try:
            report_path = class_report.build_report(results, out_dir, course.project_root())
        except Exception as exc:  # the class report never fails a grading run
            print(f"WARNING: the class report was not written: {type(exc).__name__}: {exc}")
    return GradingRun(
        results,
        out_dir,
        db_url,
        csv_path,
        isolated=bwrap is not None,
        skipped=skipped,
        unknown=unknown,
        report_path=report_path,
    )
