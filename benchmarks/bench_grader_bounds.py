"""The grader is bounded too: its own memory with hostile kernels, and a neighbour's CPU.

    python benchmarks/bench_grader_bounds.py [--jobs 2]

Two tables, each measured side by side in one run:

1. **Grader-side peak memory.** A normal batch (honest students of assignment 1) and a batch
   of attacks that aim at the grader's memory (a 56 MB result, output floods while the checks
   run and in cells, display-update floods), graded the same way. For each batch: the largest
   peak resident memory of a grading worker over its submissions (``grader_peak_mb``, the
   worker's high-water mark, reset before each submission) and the peak of the process that
   runs the batch. The goal: an attack batch stays within 2x a normal batch.
2. **A neighbour's CPU.** An honest notebook graded alone, then graded next to a notebook
   that starts 30 busy processes, with the per-kernel CPU share (a control group) on and off
   (``CNN_GRADER_NO_CPU_SHARE=1``). The honest notebook's grading time is the measure.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

import build_fixtures  # noqa: E402

from autograder import cpu_share  # noqa: E402
from autograder.grading import grade_submissions  # noqa: E402
from autograder.limits import Limits  # noqa: E402

AID = "01_conv_forward"
NB = f"{AID}.ipynb"
MEMORY_ATTACKS = ("huge_result", "print_in_checks", "huge_output", "display_flood")
HOG = """import os, time
for _ in range(30):
    if os.fork() == 0:
        end = time.time() + 60
        while time.time() < end:
            pass
        os._exit(0)
"""


def _honest(folder: Path) -> None:
    folder.mkdir(parents=True)
    shutil.copy(build_fixtures.case_path("cases", AID, "correct", NB), folder / NB)


def _batch(root: Path, students: dict[str, Path]) -> Path:
    subs = root / "subs"
    for name, source in students.items():
        (subs / name / AID).mkdir(parents=True)
        shutil.copy(source, subs / name / AID / NB)
    return subs


def memory_table(jobs: int) -> list[tuple[str, float, float]]:
    rows = []
    honest = build_fixtures.case_path("cases", AID, "correct", NB)
    batches = {
        "normal (4 honest students)": {f"honest{i}": honest for i in range(4)},
        "attacks on the grader's memory": {
            name: build_fixtures.case_path("attacks", AID, name, NB) for name in MEMORY_ATTACKS
        },
    }
    for label, students in batches.items():
        with tempfile.TemporaryDirectory(prefix="bench-bounds-") as tmp:
            subs = _batch(Path(tmp), students)
            run = grade_submissions(
                subs, Path(tmp) / "out", jobs=jobs, progress=False, write_class_report=False
            )
            worker = max(r.grader_peak_mb for r in run.results)
            rows.append((label, worker, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return rows


def _notebook_with_hog(target: Path) -> Path:
    import nbformat

    nb = nbformat.read(build_fixtures.case_path("cases", AID, "correct", NB), as_version=4)
    cell = nbformat.v4.new_code_cell(HOG)
    cell["id"] = "cpu-hog"
    nb.cells.insert(2, cell)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def neighbour_table() -> list[tuple[str, float]]:
    rows = []
    limits = Limits(max_processes=64)
    with tempfile.TemporaryDirectory(prefix="bench-neighbour-") as tmp:
        root = Path(tmp)
        honest = build_fixtures.case_path("cases", AID, "correct", NB)
        hog = _notebook_with_hog(root / "hog.ipynb")
        cases = [
            ("honest alone", {"honest": honest}, None),
            ("honest next to a 30-process hog, CPU share on", {"honest": honest, "hog": hog}, None),
            ("honest next to a 30-process hog, CPU share off", {"honest": honest, "hog": hog}, "1"),
        ]
        for n, (label, students, off) in enumerate(cases):
            subs = _batch(root / f"b{n}", students)
            if off:
                os.environ["CNN_GRADER_NO_CPU_SHARE"] = "1"
            try:
                run = grade_submissions(
                    subs,
                    root / f"out{n}",
                    jobs=2,
                    limits=limits,
                    progress=False,
                    write_class_report=False,
                )
            finally:
                os.environ.pop("CNN_GRADER_NO_CPU_SHARE", None)
            seconds = next(r.seconds for r in run.results if r.student == "honest")
            rows.append((label, seconds))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    start = time.monotonic()
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs; CPU share available: "
        f"{cpu_share.available()}\n"
    )
    memory = memory_table(args.jobs)
    print("batch                                  worker peak MiB   batch process peak MiB")
    for label, worker, parent in memory:
        print(f"{label:38s} {worker:15.0f}   {parent:22.0f}")
    ratio = memory[1][1] / memory[0][1]
    print(f"attack / normal (worker peak): {ratio:.2f}x (goal: at most 2x)\n")
    neighbour = neighbour_table()
    print("honest notebook                                      grading time, s")
    for label, seconds in neighbour:
        print(f"{label:52s} {seconds:8.1f}")
    alone = neighbour[0][1]
    print(
        f"slowdown next to the hog: {neighbour[1][1] / alone:.2f}x with the CPU share, "
        f"{neighbour[2][1] / alone:.2f}x without"
    )
    print(f"\n(benchmark took {time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
