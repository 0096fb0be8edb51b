"""Peak memory of every lecture and assignment notebook in full mode (Binder's cap: 2 GB).

    python benchmarks/notebook_memory.py                      # every notebook, full mode (long)
    python benchmarks/notebook_memory.py --only 07,09 --fast  # a few, in fast mode

Each notebook runs top to bottom in a fresh kernel (``nbclient``), in full mode
(``CNN_COURSE_FAST=0``: full MNIST, the lectures' epochs) unless ``--fast``, with one thread
as on Binder (``--threads``). Assignments run from ``solutions/`` (reference solutions and
hidden tests included, so every cell does its real work). The kernel's peak resident set size
(``VmHWM``) is read by a cell appended to the executed copy; cell errors are allowed and
reported, so that one failing cell does not hide the memory of the rest. When a notebook goes
over the limit the script names the cell that raised the peak most (the kernel's ``VmHWM``
is read after every cell for that).

Prints a table and writes it to ``benchmarks/results/notebook_memory.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notebook_exec import cell_text, run_notebook  # noqa: E402

LIMIT_MB = 2048  # Binder's memory cap (2 GB)
RESULTS = ROOT / "benchmarks" / "results"
_HWM = (
    "import re as _re\n"
    "with open('/proc/self/status') as _fh:\n"
    "    print('CELL_VmHWM_kB', _re.search(r'VmHWM:\\s+(\\d+)', _fh.read()).group(1))"
)


def notebooks() -> list[Path]:
    lectures = sorted((ROOT / "lectures").glob("*.ipynb"))
    assignments = sorted((ROOT / "solutions").glob("*/*.ipynb"))
    return lectures + assignments


def with_probes(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a VmHWM probe after every code cell (probes are tagged)."""
    nb = nbformat.from_dict(nb)
    cells = []
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        if cell.cell_type == "code":
            probe = nbformat.v4.new_code_cell(_HWM)
            probe.metadata["probe_for"] = index
            cells.append(probe)
    nb.cells = cells
    return nb


def per_cell_peaks(nb: nbformat.NotebookNode) -> list[tuple[int, float, str]]:
    """(cell index, VmHWM in MiB after it, first line) for each probed code cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        if "probe_for" not in cell.metadata:
            continue
        match = re.search(r"CELL_VmHWM_kB (\d+)", cell_text(cell))
        if match:
            source = nb.cells[i - 1].source.strip().splitlines() or [""]
            out.append((cell.metadata["probe_for"], int(match.group(1)) / 1024, source[0][:70]))
    return out


def measure(path: Path, fast: bool, threads: int, timeout_s: int) -> dict:
    nb = with_probes(nbformat.read(path, as_version=4))
    env = {
        "CNN_COURSE_FAST": "1" if fast else "0",
        "CNN_COURSE_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    run = run_notebook(nb, path.parent, env, cell_timeout_s=timeout_s, allow_errors=True)
    errors = []
    for cell in run.nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"{out['ename']}: {out['evalue']}"[:160])
    peaks = per_cell_peaks(run.nb)
    growth = []
    previous = 0.0
    for index, peak, first_line in peaks:
        growth.append((peak - previous, index, first_line, peak))
        previous = peak
    growth.sort(reverse=True)
    return {
        "notebook": str(path.relative_to(ROOT)),
        "peak_mb": run.peak_mb,
        "seconds": run.seconds,
        "errors": errors,
        "top_cells": [
            {"cell": index, "adds_mb": round(add, 1), "peak_after_mb": round(peak, 1),
             "first_line": line}
            for add, index, line, peak in growth[:3]
        ],
    }  # fmt: skip


def render(rows: list[dict], fast: bool, threads: int) -> str:
    mode = "fast" if fast else "full"
    lines = [
        f"Peak memory (kernel VmHWM) of each notebook in {mode} mode, {threads} thread(s) "
        f"(`benchmarks/notebook_memory.py`); limit {LIMIT_MB} MiB (Binder).",
        "",
        "| notebook | peak MiB | under 2 GB | minutes | cell that adds most (MiB) | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        top = r["top_cells"][0] if r["top_cells"] else None
        where = f"cell {top['cell']} (+{top['adds_mb']:.0f}): `{top['first_line']}`" if top else "-"
        errors = "; ".join(r["errors"][:2]) or "-"
        ok = "yes" if r["peak_mb"] < LIMIT_MB else "**NO**"
        lines.append(
            f"| {r['notebook']} | {r['peak_mb']:.0f} | {ok} | {r['seconds'] / 60:.1f} "
            f"| {where} | {errors} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fast", action="store_true", help="fast mode instead of full mode")
    parser.add_argument("--threads", type=int, default=1, help="threads per kernel (Binder: 1)")
    parser.add_argument("--only", default=None, help="comma-separated name prefixes or parts")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--output", type=Path, default=RESULTS / "notebook_memory.md")
    args = parser.parse_args(argv)

    wanted = notebooks()
    if args.only:
        keys = [k.strip() for k in args.only.split(",") if k.strip()]
        wanted = [p for p in wanted if any(k in str(p.relative_to(ROOT)) for k in keys)]
    rows = []
    for path in wanted:
        print(f"running {path.relative_to(ROOT)} ...", flush=True)
        row = measure(path, args.fast, args.threads, args.timeout)
        rows.append(row)
        print(
            f"  peak {row['peak_mb']:.0f} MiB, {row['seconds']:.0f} s, "
            f"{len(row['errors'])} error(s)",
            flush=True,
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(rows, args.fast, args.threads), encoding="utf-8")
        args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1), "utf-8")
    text = render(rows, args.fast, args.threads)
    print("\n" + text)
    print(f"wrote {args.output}")
    return 0 if all(r["peak_mb"] < LIMIT_MB for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
