"""Collapse the outputs of exercise answers, so running a lecture shows no spoilers.

A lecture's answers are markdown ``<details>`` cells followed by code cells tagged ``answer``
whose code is collapsed in JupyterLab (``metadata.jupyter.source_hidden``). Their outputs are
not: *Run All* prints every answer's numbers under the exercises. This script also sets
``metadata.jupyter.outputs_hidden = true`` on every ``answer`` cell (``source_hidden`` is kept),
so JupyterLab shows a collapsed "..." bar that opens on click.

    .venv/bin/python book/hide_answer_outputs.py lectures/*.ipynb          # change them
    .venv/bin/python book/hide_answer_outputs.py --check lectures/*.ipynb  # exit 1 if needed

The notebook is written as ``python -m autograder strip`` writes it (nbformat, one-space
indent, final newline); nothing else in it changes.

Limit (checked in JupyterLab 4.6 with Chromium): JupyterLab collapses these outputs when it
opens a notebook, but running a cell shows its output again (``CodeCell.execute`` sets
``outputHidden = false``), so after *Run All* the answers' outputs are visible. An output that
must stay collapsed while the cell runs has to collapse itself, e.g. markdown written as
``<details><summary>Computed answer</summary>`` ... ``</details>`` (that stays closed after
*Run All* and opens on click).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ANSWER_TAG = "answer"


def hide_answer_outputs(nb: nbformat.NotebookNode) -> int:
    """Set ``outputs_hidden`` (keep ``source_hidden``) on answer cells; return how many changed."""
    changed = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if ANSWER_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        jupyter = cell.metadata.setdefault("jupyter", {})
        if jupyter.get("outputs_hidden") is not True:
            jupyter["outputs_hidden"] = True
            changed += 1
    return changed


def process(path: Path, check: bool) -> bool:
    """Hide the answer outputs of one notebook file; True if it changed (or would)."""
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=4)
    if not hide_answer_outputs(nb):
        return False
    if not check:
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    args = parser.parse_args(argv)
    changed = [path for path in args.notebooks if process(path, args.check)]
    verb = "need their answer outputs hidden" if args.check else "changed"
    print(f"{len(changed)} of {len(args.notebooks)} notebook(s) {verb}")
    for path in changed:
        print(f"  {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
