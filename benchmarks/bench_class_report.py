"""How long the class report takes for a large class of assignment 1 (no grading).

    python benchmarks/bench_class_report.py [--students 500] [--keep DIR] [--seed 0]

Builds two synthetic graded folders of ``--students`` submissions each, as the grader
leaves them (journal entries written where :class:`autograder.record.GradebookWriter`
keeps them, and one autograded notebook per student with about 200 KB of outputs), then
times ``python -m autograder report`` on each, step by step, and prints a table.

* ``fixtures``: every student submits one of the grading fixtures of assignment 1
  (``tests/fixtures/01_conv_forward/``), with the scores and causes its case describes:
  the worst case for the copy check's pair count, every student near-identical to many.
* ``mixed``: each student picks, per function, one of three independent solutions (the
  reference and two written for the class report's tests), may carry one of the fixtures'
  bugs, and adds a few statements of their own, so nearly every document differs.

Some students hit a time or memory limit, and a few could not be graded at all. The
report reads only the journal and the notebooks, never the gradebook, so the gradebook's
backend (SQLite or PostgreSQL) does not enter the timing.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import course  # noqa: E402
from autograder.class_report import build, data, similarity  # noqa: E402
from autograder.class_report.html import render  # noqa: E402
from autograder.fixtures import build_case, load_cases, reference_sources  # noqa: E402
from autograder.problems import Problem  # noqa: E402
from autograder.record import GradebookWriter, default_db_url  # noqa: E402
from autograder.worker import CellResult, SubmissionResult  # noqa: E402
from cnncourse.checks.misconceptions import CATALOGUE  # noqa: E402

AID = "01_conv_forward"
NB = f"{AID}.ipynb"
CASES = load_cases(ROOT / "tests" / "fixtures" / "cases" / f"{AID}.py")


def _similarity_cases():
    path = ROOT / "tests" / "fixtures" / "class_report" / "similarity_cases.py"
    spec = importlib.util.spec_from_file_location("similarity_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _release() -> dict:
    return json.loads((course.assignments_dir() / AID / NB).read_text(encoding="utf-8"))


def _points(release: dict) -> dict[str, float]:
    return {
        c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"]["points"])
        for c in release["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
    }


def _outputs(nb: dict, rng: random.Random) -> None:
    """About 200 KB of figure output, as an executed notebook has."""
    blob = base64.b64encode(rng.randbytes(20_000)).decode("ascii")
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and not cell["metadata"].get("nbgrader"):
            cell["outputs"] = [
                {"output_type": "display_data", "metadata": {}, "data": {"image/png": blob}}
            ]


def _result(student: str, case: dict, points: dict, rng: random.Random) -> SubmissionResult:
    """The result the grader gives the case (its ``expect`` and ``cause``), plus limits."""
    cells = []
    expect = case.get("expect", {})
    causes = {f"{k}_tests": v for k, v in case.get("cause", {}).items()}
    for grade_id, top in sorted(points.items()):
        score = float(expect.get(grade_id, top))
        cell = CellResult(AID, grade_id, score, top)
        if score < top:
            cause = causes.get(grade_id, "")
            cause = cause if cause in CATALOGUE else ""
            cell.problem, cell.cause = "CheckFailed", cause
            sentence = CATALOGUE[cause].sentence if cause else "raised NotImplementedError"
            cell.message = f"{grade_id.removesuffix('_tests')}: {sentence}"
        cells.append(cell)
    result = SubmissionResult(student, AID, "graded", cells=cells)
    roll = rng.random()
    if roll < 0.03:
        cell = next(c for c in cells if c.grade_id == "conv_forward_tests")
        cell.score, cell.problem, cell.message = 0.0, "CellTimeLimit", "over 60 s"
        result.problems.append(Problem("CellTimeLimit", "over 60 s", cell.grade_id, AID))
    elif roll < 0.04:
        result.problems.append(Problem("MemoryLimit", "over 2000 MB", "", AID))
    result.score = sum(c.score for c in cells)
    result.max_score = sum(c.max_score for c in cells)
    return result


def _mixed_sources(rng: random.Random, styles: dict, case: dict) -> dict[str, str]:
    pair = rng.choice(list(styles))  # conv_forward and pool_forward share helpers
    chosen = {g: styles[rng.choice(list(styles))][g] for g in styles[pair]}
    chosen["conv_forward_solution"] = styles[pair]["conv_forward_solution"]
    chosen["pool_forward_solution"] = styles[pair]["pool_forward_solution"]
    chosen.update(case.get("replace", {}))
    for _ in range(rng.randint(1, 4)):  # a few lines of the student's own
        grade_id = rng.choice(sorted(chosen))
        lines = chosen[grade_id].rstrip("\n").split("\n")
        where = rng.randint(1, len(lines) - 1)
        indent = "    " if lines[where].startswith("    ") else ""
        lines.insert(where, f"{indent}checked = {rng.randint(0, 10**6)} * {rng.random():.6f}")
        chosen[grade_id] = "\n".join(lines) + "\n"
    return chosen


def make_class(out: Path, n: int, kind: str, seed: int) -> None:
    """A graded folder of ``n`` synthetic submissions (journal + autograded notebooks)."""
    rng = random.Random(seed)
    release = _release()
    points = _points(release)
    writer = GradebookWriter(default_db_url(out), out)
    names = sorted(CASES)
    weights = [30 if name == "correct" else 5 for name in names]
    styles = {"reference": reference_sources(AID, NB)}
    sc = _similarity_cases()
    stubs = {
        c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
        for c in release["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution")
    }
    for name in ("ana", "chen"):
        styles[name] = {g: sc.fill(stubs[g], *v) for g, v in sc.STUDENTS[name].items()}
    for i in range(n):
        student = f"student{i:04d}"
        case_name = rng.choices(names, weights)[0]
        case = CASES[case_name]
        if rng.random() < 0.01:  # the grader could not grade it
            result = SubmissionResult(student, AID, "failed")
            result.problems.append(Problem("GraderError", "worker lost"))
        else:
            result = _result(student, case, points, rng)
            if kind == "fixtures" or case.get("untouched"):
                nb = build_case(AID, case)
            else:
                nb = build_case(AID, {"notebook": NB, "replace": _mixed_sources(rng, styles, case)})
            nb = json.loads(json.dumps(nb))
            _outputs(nb, rng)
            folder = out / "autograded" / student / AID
            folder.mkdir(parents=True, exist_ok=True)
            (folder / NB).write_text(json.dumps(nb), encoding="utf-8")
        payload = result.to_json()
        payload.pop("autograded")
        payload.pop("feedback")
        writer.journal_path(student, AID).write_text(json.dumps(payload), encoding="utf-8")


def time_report(out: Path) -> dict[str, float]:
    """Seconds of each step of the report, then of the whole command."""
    steps = {}
    t0 = time.perf_counter()
    results = build.load_results(out)
    steps["read journal"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = data.summarise(results)
    steps["tables"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    notebooks = build.autograded_notebooks(out, results)
    releases = {AID: [course.assignments_dir() / AID / NB]}
    summary.similar = similarity.compare_class(notebooks, releases)
    steps["copy check"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    render(summary, title=out.name)
    steps["HTML and plots"] = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    args = argparse.Namespace(graded=str(out), course=None, threshold=similarity.THRESHOLD)
    build.main(args)
    steps["whole command"] = time.perf_counter() - t0
    steps["its CPU time"] = time.process_time() - c0
    steps["_pairs"] = len(summary.similar.pairs)
    steps["_documents"] = summary.similar.distinct.get(AID, 0)
    steps["_results"] = len(results)
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="write the graded folders here")
    args = parser.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    rows = []
    for kind in ("fixtures", "mixed"):
        out = base / kind
        t0 = time.perf_counter()
        make_class(out, args.students, kind, args.seed)
        made = time.perf_counter() - t0
        steps = time_report(out)
        rows.append((kind, made, steps))
    print(
        f"\nclass report, {args.students} synthetic submissions of {AID} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible)\n"
    )
    names = [k for k in rows[0][2] if not k.startswith("_")]
    header = ["class", "submissions", "distinct own code", "pairs flagged"] + [
        f"{k} (s)" for k in names
    ]
    table = [header]
    for kind, _, steps in rows:
        table.append(
            [kind, str(steps["_results"]), str(steps["_documents"]), str(steps["_pairs"])]
            + [f"{steps[k]:.2f}" for k in names]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print(" | ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("-|-".join("-" * w for w in widths))
    print(f"\ngraded folders: {base} (the report is in <folder>/class-report/index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
