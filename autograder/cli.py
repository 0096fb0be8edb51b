"""Command line: ``python -m autograder {release,grade,demo,strip,gradebook}``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import class_report, course, report
from .limits import Limits
from .problems import escape

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    group = parser.add_argument_group("limits (each is reported by name when hit)")
    group.add_argument(
        "--cell-timeout",
        type=int,
        default=defaults.cell_timeout_s,
        help="seconds per cell (default %(default)s)",
    )
    group.add_argument(
        "--notebook-timeout",
        type=int,
        default=defaults.notebook_timeout_s,
        help="seconds per notebook (default %(default)s)",
    )
    group.add_argument(
        "--memory-mb",
        type=int,
        default=defaults.memory_mb,
        help="memory per kernel in MB (default %(default)s)",
    )
    group.add_argument(
        "--max-processes",
        type=int,
        default=defaults.max_processes,
        help="processes per kernel (default %(default)s)",
    )
    group.add_argument(
        "--output-kb",
        type=int,
        default=defaults.output_kb,
        help="output kept per cell in KB (default %(default)s)",
    )


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(
        cell_timeout_s=args.cell_timeout,
        notebook_timeout_s=args.notebook_timeout,
        memory_mb=args.memory_mb,
        max_processes=args.max_processes,
        output_kb=args.output_kb,
    )


def cmd_release(args: argparse.Namespace) -> int:
    from .release import check_release, release

    if args.check:
        check = check_release()
        if check.ok:
            print("assignments/ is up to date with solutions/")
            return 0
        print(check.describe(), file=sys.stderr)
        return 1
    ids = release(args.assignment or None)
    print(f"released {', '.join(ids)} into {course.assignments_dir()}")
    return 0


def _grade(args: argparse.Namespace, submissions: Path, out: Path) -> int:
    from .find import LayoutError
    from .grading import default_jobs

    start = time.monotonic()
    jobs = args.jobs or default_jobs()
    try:
        run = _run_grading(args, submissions, out, jobs)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _print_run(args, run, out, jobs, time.monotonic() - start)


def _run_grading(args, submissions, out, jobs):
    from .grading import grade_submissions

    return grade_submissions(
        submissions,
        out,
        db_url=args.db,
        jobs=jobs,
        scheduler=args.scheduler,
        limits=_limits(args),
        redact_hidden=not args.show_hidden,
        force=args.force,
        assignments=args.assignment or None,
        retry_failed=args.retry_failed,
    )


def _print_run(args, run, out: Path, jobs: int, elapsed: float) -> int:
    print()
    print(run.table)
    problems = report.failures(run.results)
    if problems:
        print("\nProblems by student:")
        print(problems)
    if run.skipped:
        print(
            f"\n{len(run.skipped)} submission(s) already done (resumed: nothing changed; "
            "--force regrades, --retry-failed grades the failed ones again)"
        )
    graded = sum(r.status == "graded" for r in run.results)
    failed = [r for r in run.results if r.status != "graded"]
    backend = f"dask ({args.scheduler})" if args.scheduler else f"{jobs} job(s)"
    print(
        f"\n{graded} of {len(run.results)} submission(s) graded in {elapsed:.1f} s with "
        f"{backend}; sandbox: {'bubblewrap' if run.isolated else 'NONE (weaker isolation)'}"
    )
    if run.unknown:
        print(f"NOT GRADED: {len(run.unknown)} folder(s) are no assignment of this course:")
        for entry in run.unknown:
            print(f"    {escape(entry)}")
    print(f"gradebook: {run.db_url}\ngrades:    {run.csv_path}\nfeedback:  {out / 'feedback'}")
    if run.report_path is not None:
        print(f"class report: {run.report_path}")
    print(
        "next: nbgrader generate_feedback / release_feedback / export read these "
        f"(run them with the course folder {out} as CourseDirectory.root)"
    )
    if (run.unknown or failed) and not args.lenient:
        print(
            "exit status 2: some submissions were not graded (--lenient exits 0 anyway)",
            file=sys.stderr,
        )
        return 2
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    return _grade(args, Path(args.submissions), Path(args.out))


EXPECTED_DEMO = {
    # student -> (expected outcome, check)
    "alice_correct": "full marks",
    "bob_partly_wrong": "between 0 and full",
    "carol_untouched": "0",
    "dave_raises": "0 for the functions that raise",
}


def cmd_demo(args: argparse.Namespace) -> int:
    """Grade the shipped sample submissions and check the expected outcome."""
    out = Path(args.out)
    args.force = True
    print(f"Autograding the sample submissions in {SAMPLES_DIR} -> {out}\n")
    status = _grade(args, SAMPLES_DIR, out)
    from .record import GradebookWriter

    results = {r.student: r for r in GradebookWriter("", out).load_results()}
    checks = {
        "alice_correct": lambda r: r.score == r.max_score > 0,
        "bob_partly_wrong": lambda r: 0 < r.score < r.max_score,
        "carol_untouched": lambda r: r.score == 0 and r.status == "graded",
        "dave_raises": lambda r: r.score < r.max_score and r.status == "graded",
    }
    print("\nExpected outcomes:")
    ok = True
    for student, check in checks.items():
        result = results.get(student)
        passed = result is not None and check(result)
        ok &= passed
        print(f"  {'ok  ' if passed else 'FAIL'} {student}: {EXPECTED_DEMO[student]}")
    return status if ok else 1


def _committed_notebooks(root: Path) -> list[Path]:
    """Every notebook git tracks in ``root`` (else every notebook outside .venv)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.ipynb"],
            cwd=root,
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        return [root / name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return sorted(p for p in root.rglob("*.ipynb") if ".venv" not in p.parts)


def cmd_strip(args: argparse.Namespace) -> int:
    """Outputs, execution counts and widget state removed; the kernelspec JupyterLab writes."""
    import nbformat

    from .release import normalise_kernelspec

    paths = [Path(name) for name in args.notebooks]
    if args.all:
        paths += _committed_notebooks(course.project_root())
    if not paths:
        print("nothing to strip: name notebooks or use --all", file=sys.stderr)
        return 2
    changed = []
    for path in paths:
        if not path.is_file():
            print(f"strip: no such notebook: {path}", file=sys.stderr)
            return 2
        before = path.read_text(encoding="utf-8")
        nb = nbformat.reads(before, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nb.metadata.pop("widgets", None)  # saved widget state belongs to the outputs
        normalise_kernelspec(nb)
        after = nbformat.writes(nb) + "\n"
        if after != before:
            changed.append(path)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    verb = "need stripping" if args.check else "stripped"
    print(f"{len(changed)} of {len(paths)} notebook(s) {verb}")
    for path in changed:
        print(f"  {path}")
    return 1 if args.check and changed else 0


def _stamp_alembic_version(db_url: str) -> bool:
    """A gradebook left without ``alembic_version`` (nbgrader fails half-way through creating
    one when ``alembic`` is not on PATH) gets it; True when it was missing."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url)
    try:
        tables = inspect(engine).get_table_names()
        if not tables or "alembic_version" in tables:
            return False
        from nbgrader.api import get_alembic_version

        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                {"v": get_alembic_version()},
            )
        return True
    finally:
        engine.dispose()


def cmd_gradebook(args: argparse.Namespace) -> int:
    """Record every assignment in the course gradebook, as plain nbgrader expects it.

    nbgrader ``generate_assignment`` runs in a scratch copy of ``solutions/``, so the
    committed ``assignments/`` is never deleted or rewritten; it is compared with what
    nbgrader generated and any difference is reported.
    """
    import filecmp
    import tempfile

    from .release import ReleaseError, generate_release

    root = course.project_root()
    db_url = args.db or f"sqlite:///{root / 'gradebook.db'}"
    ids = args.assignment or course.assignment_ids()
    unknown = sorted(set(ids) - set(course.assignment_ids()))
    if unknown:
        print(
            f"gradebook: no assignment {', '.join(unknown)} in {course.solutions_dir()}",
            file=sys.stderr,
        )
        return 2
    if db_url.startswith("sqlite:///") and _stamp_alembic_version(db_url):
        print("gradebook: added the missing alembic_version table")
    with tempfile.TemporaryDirectory(prefix="cnn-gradebook-") as tmp:
        try:
            fresh = generate_release(Path(tmp) / "release", ids, db_url=db_url)
        except ReleaseError as exc:
            print(f"gradebook: {exc}", file=sys.stderr)
            return 1
        committed = course.assignments_dir()
        stale = [
            str(path.relative_to(fresh))
            for path in sorted(fresh.rglob("*"))
            if path.is_file()
            and not (
                (committed / path.relative_to(fresh)).is_file()
                and filecmp.cmp(path, committed / path.relative_to(fresh), shallow=False)
            )
        ]
    print(f"gradebook {db_url}: {len(ids)} assignment(s): {', '.join(ids)}")
    if stale:
        print(
            "note: assignments/ differs from what solutions/ generate now ("
            + ", ".join(stale)
            + "); run `make release` before releasing it to students",
            file=sys.stderr,
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Release and autograde the CNN course's assignments (built on nbgrader).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("assignment", nargs="*", help="assignment ids (default: all)")
    p.add_argument(
        "--check",
        action="store_true",
        help="only check that assignments/ is up to date and leak-free",
    )
    p.set_defaults(func=cmd_release)

    for name, helptext in (
        ("grade", "autograde <submissions>/<student>/<assignment>/"),
        ("demo", "autograde the shipped sample submissions"),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "grade":
            p.add_argument("submissions", help="folder laid out <student>/<assignment>/*.ipynb")
            p.add_argument(
                "--out",
                default=str(course.project_root()),
                help="course folder to write the gradebook, autograded/ and feedback/ into, "
                "where nbgrader reads them (default: this course, %(default)s)",
            )
            p.set_defaults(func=cmd_grade)
        else:
            p.add_argument("--out", default="demo-output", help="output folder")
            p.set_defaults(func=cmd_demo)
        p.add_argument(
            "--db",
            default=None,
            help="gradebook URL (default: sqlite:///<out>/gradebook.db; "
            "postgresql://... for a shared server)",
        )
        p.add_argument(
            "--jobs",
            "-j",
            type=int,
            default=0,
            help="parallel workers (default: the CPUs this process may use)",
        )
        p.add_argument(
            "--scheduler",
            default=None,
            help="run on Dask: 'local' for a local cluster or a scheduler address",
        )
        p.add_argument("--assignment", action="append", help="only these assignment ids")
        p.add_argument("--force", action="store_true", help="regrade finished submissions")
        p.add_argument(
            "--show-hidden",
            action="store_true",
            help="show hidden-test source and tracebacks in feedback",
        )
        p.add_argument(
            "--lenient",
            action="store_true",
            help="exit 0 even when a submission could not be graded or a folder is no "
            "assignment (by default that exits 2, so that scripts notice)",
        )
        p.add_argument(
            "--retry-failed",
            action="store_true",
            help="grade again the submissions a resumed run would skip because they failed",
        )
        _add_limit_options(p)

    p = sub.add_parser(
        "strip",
        help="remove outputs and widget state, set the kernelspec JupyterLab writes "
        "(before committing)",
    )
    p.add_argument("notebooks", nargs="*", type=str, help="notebook files")
    p.add_argument("--all", action="store_true", help="every notebook git tracks")
    p.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a notebook needs it"
    )
    p.set_defaults(func=cmd_strip)

    p = sub.add_parser(
        "gradebook",
        help="record every assignment in gradebook.db (for plain nbgrader and the "
        "Formgrader); assignments/ is not touched",
    )
    p.add_argument("assignment", nargs="*", help="assignment ids (default: all)")
    p.add_argument("--db", default=None, help="gradebook URL (default: sqlite:///gradebook.db)")
    p.set_defaults(func=cmd_gradebook)
    class_report.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
