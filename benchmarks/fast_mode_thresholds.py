"""Fast-mode accuracy of the reference solutions of assignments 3-5, over several seeds.

    python benchmarks/fast_mode_thresholds.py                 # seeds 1-5, about 10 minutes
    python benchmarks/fast_mode_thresholds.py --seeds 1,2,3 --cases correct

The accuracy tests of assignments 3-5 ask a model trained in fast mode (the fixed subset of
``load_mnist(fast=True)``: 8,000 training digits, a few epochs) to reach a threshold. This
script measures what the reference solutions really reach, so that the thresholds leave a
known margin. For every grading case that trains a model which must keep its accuracy
points (the reference solution, and the fixture cases whose wrong architecture still trains:
``tests/fixtures/cases/*.py``), and for every seed, it builds the student notebook exactly as
the grading fixtures are built (release + reference solutions + the case's replacements),
removes the accuracy test cells, sets ``setup_notebook(seed=SEED)``, runs it in fast mode with one
thread (as the tests do) and measures each trained model on

* ``notebook``: the notebook's own test digits (the 2,000 fast-mode test digits), what the
  visible test checks;
* ``grading``: ``cnncourse.data.grading_digits()``, the 2,000 digits the hidden tests use
  (once they call it).

It prints (and writes to ``benchmarks/results/fast_mode_thresholds.md`` and ``.json``) one
row per model and case: accuracy per seed on the grading digits, the minimum over seeds on
each set, the threshold the grader applies now and the margin it leaves, and the seconds each
notebook run took (kernel start and imports included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from autograder.fixtures import build_case, load_cases  # noqa: E402
from benchmarks.notebook_exec import cell_text, run_notebook  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SETUP_CALL = "setup_notebook(seed=1)"
MARKER = "THRESHOLD_JSON"

# assignment -> (notebook, {model variable: (label, layout, threshold variable)})
ASSIGNMENTS = {
    "03_keras_mnist": (
        "03_keras_mnist.ipynb",
        {"model": ("lecture CNN (Keras)", "nhwc", "ACCURACY_THRESHOLD")},
    ),
    "04_pytorch_mnist": (
        "04_pytorch_mnist.ipynb",
        {"model": ("lecture CNN (PyTorch)", "nchw", "ACCURACY_THRESHOLD")},
    ),
    "05_cropping": (
        "05_cropping.ipynb",
        {
            "cropped_model": ("cropped classifier", "nhwc", "CROPPED_THRESHOLD"),
            "classic_model": ("classic classifier", "nhwc", "CLASSIC_THRESHOLD"),
        },
    ),
}
# Cases whose trained models must keep the accuracy points (see tests/fixtures/cases).
CASES = {
    "03_keras_mnist": ["correct", "missing_layer", "extra_layer"],
    "04_pytorch_mnist": ["correct"],
    "05_cropping": ["correct", "classic_missing_dropout"],
}

MEASURE = """
import json as _json
import numpy as _np
from cnncourse.data import grading_digits as _grading_digits
from cnncourse.grading_models import evaluate_accuracy as _evaluate

def _layout(x, layout):
    x = x.astype(_np.float32) / 255.0
    return x[:, _np.newaxis] if layout == "nchw" else x[..., _np.newaxis]

_sets = {
    "notebook": (x_test_digits, y_test_digits),
    "grading": _grading_digits(),
}
_out = {}
for _name, _layout_name in MODELS.items():
    _model = globals()[_name]
    _out[_name] = {
        _set: _evaluate(_model, _layout(_x, _layout_name), _y, batch_size=500)
        for _set, (_x, _y) in _sets.items()
    }
print("MARKER", _json.dumps(_out))
"""


def current_thresholds(assignment: str) -> dict[str, float]:
    """The thresholds the grader applies now (``cnncourse.checks.accuracy``), by the names
    of ``ASSIGNMENTS``."""
    from cnncourse.checks import accuracy

    keras_or_torch = "TORCH" if assignment == "04_pytorch_mnist" else "KERAS"
    return {
        "ACCURACY_THRESHOLD": getattr(accuracy, f"{keras_or_torch}_CNN_THRESHOLD"),
        "CROPPED_THRESHOLD": accuracy.CROPPED_THRESHOLD,
        "CLASSIC_THRESHOLD": accuracy.CLASSIC_THRESHOLD,
    }


def prepared(assignment: str, case_name: str, seed: int):
    """The case's student notebook, test cells removed, seeded, with the measuring cell."""
    import nbformat

    notebook, models = ASSIGNMENTS[assignment]
    cases = load_cases(ROOT / "tests" / "fixtures" / "cases" / f"{assignment}.py")
    nb = build_case(assignment, cases[case_name])
    kept = []
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if grade_id.endswith("accuracy_tests"):
            continue  # the thresholds under study: this script measures, it does not grade
        if SETUP_CALL in cell.source:
            cell.source = cell.source.replace(SETUP_CALL, f"setup_notebook(seed={seed})")
        kept.append(cell)
    if sum(f"setup_notebook(seed={seed})" in c.source for c in kept) != 1:
        raise RuntimeError(f"{assignment}: expected one {SETUP_CALL} in the setup cell")
    layouts = {name: layout for name, (_, layout, _) in models.items()}
    code = f"MODELS = {layouts!r}\n" + MEASURE.replace('"MARKER"', repr(MARKER))
    kept.append(nbformat.v4.new_code_cell(code))
    nb.cells = kept
    return nb


def measure(assignment: str, case_name: str, seed: int) -> dict:
    nb = prepared(assignment, case_name, seed)
    env = {"CNN_COURSE_FAST": "1", "CNN_COURSE_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # Test cells of a wrong architecture fail by design: errors are allowed, but only there.
    run = run_notebook(nb, ROOT / "assignments" / assignment, env, allow_errors=True)
    for cell in run.nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        is_test = cell.get("metadata", {}).get("nbgrader", {}).get("grade", False)
        if errors and not is_test:
            raise RuntimeError(
                f"{assignment}/{case_name} seed {seed}: {errors[0]['ename']}: "
                f"{errors[0]['evalue']} in\n{cell.source[:300]}"
            )
    text = cell_text(run.nb.cells[-1])
    payload = json.loads(text.split(MARKER, 1)[1].strip().splitlines()[0])
    return {"accuracy": payload, "seconds": run.seconds, "peak_mb": run.peak_mb}


def render(rows: list[dict], seeds: list[int]) -> str:
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [
        "Fast-mode accuracy of the reference solutions (`benchmarks/fast_mode_thresholds.py`), "
        f"seeds {', '.join(map(str, seeds))}, one thread.",
        "",
        f"| assignment | case | model | grading digits: {head} | min grading | min notebook "
        "| threshold now | margin | s / run |",
        "| --- | --- | --- | " + " | ".join("---" for _ in seeds) + " | --- | --- | --- | --- "
        "| --- |",
    ]
    for r in rows:
        per_seed = " | ".join(f"{100 * a:.2f}" for a in r["grading"])
        mins = {k: min(r[k]) for k in ("grading", "notebook")}
        lowest = min(mins.values())
        thr = r["threshold"]
        margin = "-" if thr is None else f"{100 * (lowest - thr):+.2f}"
        lines.append(
            f"| {r['assignment']} | {r['case']} | {r['label']} | {per_seed} "
            f"| {100 * mins['grading']:.2f} | {100 * mins['notebook']:.2f} "
            f"| {'-' if thr is None else f'{100 * thr:.0f}'} "
            f"| {margin} | {statistics.mean(r['seconds']):.0f} |"
        )
    lines += [
        "",
        "Accuracies in %. *margin*: the lowest accuracy of the row over all seeds and both "
        "digit sets, minus the threshold the grader applies now.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated (default 1-5)")
    parser.add_argument("--assignments", default=",".join(ASSIGNMENTS))
    parser.add_argument("--cases", default=None, help="only these case names (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS / "fast_mode_thresholds.md")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    only = set(args.cases.split(",")) if args.cases else None

    rows = []
    for assignment in args.assignments.split(","):
        models = ASSIGNMENTS[assignment][1]
        thresholds = current_thresholds(assignment)
        for case_name in CASES[assignment]:
            if only and case_name not in only:
                continue
            runs = []
            for seed in seeds:
                result = measure(assignment, case_name, seed)
                runs.append(result)
                accs = ", ".join(
                    f"{name} {100 * v['grading']:.2f}%" for name, v in result["accuracy"].items()
                )
                print(
                    f"{assignment} {case_name} seed {seed}: {accs} (grading digits), "
                    f"{result['seconds']:.0f} s, peak {result['peak_mb']:.0f} MiB",
                    flush=True,
                )
            for name, (label, _, threshold_name) in models.items():
                rows.append(
                    {
                        "assignment": assignment,
                        "case": case_name,
                        "label": label,
                        "threshold": thresholds.get(threshold_name),
                        "seconds": [r["seconds"] for r in runs],
                        "peak_mb": [r["peak_mb"] for r in runs],
                        **{
                            digit_set: [r["accuracy"][name][digit_set] for r in runs]
                            for digit_set in ("grading", "notebook")
                        },
                    }
                )
    text = render(rows, seeds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    args.output.with_suffix(".json").write_text(
        json.dumps({"seeds": seeds, "rows": rows}, indent=1), encoding="utf-8"
    )
    print(f"\n{text}\nwrote {args.output} and {args.output.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
