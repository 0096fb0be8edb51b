"""Grading throughput: plain `nbgrader autograde` (serial) vs this grader with 1 and 2
jobs and on a local Dask cluster, on the same synthetic class, in one run.

    python benchmarks/bench_grading.py [--students N] [--assignments 01_conv_forward ...]

Prints wall time, notebooks per minute and ratios, and checks that every backend of ours
gave identical grades (and the same totals as plain nbgrader).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

import build_fixtures  # noqa: E402

from autograder import course  # noqa: E402
from autograder.grading import grade_submissions, template_gradebook  # noqa: E402

MIX = ("correct", "untouched")  # plus every other case of the assignment: wrong answers


def make_class(
    target: Path, n_students: int, assignments: list[str], only: list[str] | None = None
) -> int:
    """``n_students`` students per assignment cycling through its fixture cases (or the
    cases named in ``only``: to compare two versions of the grader on the same class)."""
    cases = build_fixtures.all_cases("cases")
    count = 0
    for aid in assignments:
        names = sorted(name for (a, name) in cases if a == aid and (not only or name in only))
        for i in range(n_students):
            name = names[i % len(names)]
            case = cases[(aid, name)]
            for nb_name in {case["notebook"]}:
                src = build_fixtures.case_path("cases", aid, name, nb_name)
                folder = target / f"s{i:03d}" / aid
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, folder / nb_name)
                count += 1
    return count


def plain_nbgrader(submissions: Path, assignments: list[str]) -> tuple[float, dict]:
    """Serial `nbgrader autograde` in a scratch course with the course's config."""
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "nbgrader_config.py", work)
        shutil.copytree(course.solutions_dir(), work / "solutions")
        shutil.copytree(submissions, work / "submitted")
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]}
        nbgrader = [str(Path(bindir) / "nbgrader")]
        for aid in assignments:
            subprocess.run(
                nbgrader + ["generate_assignment", aid, "--force"],
                cwd=work,
                env=env,
                check=True,
                capture_output=True,
            )
        start = time.monotonic()
        for aid in assignments:
            subprocess.run(
                nbgrader + ["autograde", aid, "--force"], cwd=work, env=env, capture_output=True
            )
        elapsed = time.monotonic() - start
        subprocess.run(
            nbgrader + ["export", "--to", str(work / "g.csv")],
            cwd=work,
            env=env,
            check=True,
            capture_output=True,
        )
        totals = {
            (r["student_id"], r["assignment"]): float(r["raw_score"] or 0)
            for r in csv.DictReader(open(work / "g.csv"))
        }
    return elapsed, totals


def ours(submissions: Path, jobs: int, scheduler: str | None) -> tuple[float, dict, str]:
    with tempfile.TemporaryDirectory(prefix="bench-ours-") as tmp:
        start = time.monotonic()
        run = grade_submissions(
            submissions,
            Path(tmp) / "out",
            jobs=jobs,
            scheduler=scheduler,
            progress=False,
            force=True,
        )
        elapsed = time.monotonic() - start
        totals = {(r.student, r.assignment): r.score for r in run.results}
        csv_text = run.csv_path.read_text()
    return elapsed, totals, csv_text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=12)
    parser.add_argument("--assignments", nargs="+", default=["01_conv_forward"])
    parser.add_argument("--cases", nargs="+", default=None, help="only these fixture cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        subs = Path(tmp) / "submissions"
        n = make_class(subs, args.students, args.assignments, args.cases)
        # Like plain nbgrader's generate_assignment (untimed below), our release-time
        # template gradebook is built before the clock starts.
        template_gradebook(sorted(args.assignments))
        rows, csvs, totals = [], {}, {}
        t, totals["plain nbgrader (serial)"] = plain_nbgrader(subs, args.assignments)
        rows.append(("plain nbgrader (serial)", t))
        for label, jobs, scheduler in (
            ("ours --jobs 1", 1, None),
            ("ours --jobs 2", 2, None),
            ("ours --scheduler local (dask, 2 workers)", 2, "local"),
        ):
            os.environ.pop("CNN_COURSE_THREADS", None)
            t, totals[label], csvs[label] = ours(subs, jobs, scheduler)
            rows.append((label, t))
    print(
        f"\n{n} notebooks ({args.students} students x {', '.join(args.assignments)}), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs\n"
    )
    print(f"{'backend':44} {'wall s':>8} {'nb/min':>8} {'vs plain':>9} {'vs jobs 1':>10}")
    base = rows[0][1]
    one = rows[1][1]
    for label, t in rows:
        print(f"{label:44} {t:8.1f} {60 * n / t:8.1f} {base / t:8.2f}x {one / t:9.2f}x")
    identical = len(set(csvs.values())) == 1
    print(f"\nidentical grades CSV from every backend of ours: {identical}")
    ours_totals = totals["ours --jobs 1"]
    same_as_plain = all(
        abs(totals["plain nbgrader (serial)"].get(k, -1) - v) < 1e-9 for k, v in ours_totals.items()
    )
    print(f"same totals as plain nbgrader: {same_as_plain}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
