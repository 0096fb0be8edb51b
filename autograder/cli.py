"""Command line: ``python -m autograder {release,grade,demo,strip}``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import course, report
from .limits import Limits

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
    from .grading import default_jobs, grade_submissions

    start = time.monotonic()
    jobs = args.jobs or default_jobs()
    run = grade_submissions(
        submissions,
        out,
        db_url=args.db,
        jobs=jobs,
        scheduler=args.scheduler,
        limits=_limits(args),
        redact_hidden=not args.show_hidden,
        force=args.force,
        assignments=args.assignment or None,
    )
    elapsed = time.monotonic() - start
    print()
    print(run.table)
    problems = report.failures(run.results)
    if problems:
        print("\nProblems by student:")
        print(problems)
    if run.skipped:
        print(f"\n{len(run.skipped)} submission(s) already graded (resumed; --force regrades)")
    backend = f"dask ({args.scheduler})" if args.scheduler else f"{jobs} job(s)"
    print(
        f"\ngraded {len(run.results)} submission(s) in {elapsed:.1f} s with {backend}; "
        f"sandbox: {'bubblewrap' if run.isolated else 'NONE (weaker isolation)'}"
    )
    print(f"gradebook: {run.db_url}\ngrades:    {run.csv_path}\nfeedback:  {out / 'feedback'}")
    failed = [r for r in run.results if r.status != "graded"]
    return 2 if failed and args.strict else 0


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
    from .gradebook import GradebookWriter

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


def cmd_strip(args: argparse.Namespace) -> int:
    import nbformat

    for name in args.notebooks:
        nb = nbformat.read(name, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nbformat.write(nb, name)
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
            p.add_argument("--out", default="graded", help="output folder (default: graded)")
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
            "--strict", action="store_true", help="exit 2 when any submission could not be graded"
        )
        _add_limit_options(p)

    p = sub.add_parser("strip", help="remove outputs from notebooks (before committing)")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_strip)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
