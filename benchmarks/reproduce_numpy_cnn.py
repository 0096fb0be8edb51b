"""Full-mode run of the capstone notebook (02_numpy_cnn): your numpy CNN on all of MNIST.

    python benchmarks/reproduce_numpy_cnn.py [--threads 2] [--epochs N]

Executes ``solutions/02_conv_backward/02_numpy_cnn.ipynb`` (the reference solutions) in full
mode on the shipped 60,000 / 10,000 digits, then writes ``docs/numpy_cnn.json`` (accuracy,
loss, seconds per epoch, wall and CPU time, machine) and the training curve
``docs/figures/numpy_cnn_curve.png``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notebook_exec import cell_text, run_notebook  # noqa: E402

NOTEBOOK = ROOT / "solutions" / "02_conv_backward" / "02_numpy_cnn.ipynb"
RESULT = ROOT / "docs" / "numpy_cnn.json"
FIGURE = ROOT / "docs" / "figures" / "numpy_cnn_curve.png"

# Runs in the kernel after the notebook: the results as one JSON line, and the curve saved.
REPORT_CELL = """
import json as _json
import os as _os
from cnncourse.data import grading_digits as _grading_digits

_x_grading, _y_grading = _grading_digits()
_report = {
    "epochs": EPOCHS,
    "batch_size": BATCH_SIZE,
    "learning_rate": LEARNING_RATE,
    "train_digits": int(len(X_train)),
    "test_digits": int(len(X_test)),
    "threads": config.threads,
    "test_accuracy": history["test_accuracy"],
    "epoch_loss": history["epoch_loss"],
    "epoch_seconds": history["epoch_seconds"],
    "train_seconds": train_seconds,
    "train_cpu_seconds": _cpu_after - _cpu_before,
    "grading_accuracy": float((trained_predictions(_x_grading) == _y_grading).mean()),
    "first_50_batches_loss": float(batch_loss[:50].mean()),
    "last_50_batches_loss": float(batch_loss[-50:].mean()),
}
print("REPORT " + _json.dumps(_report))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="override EPOCHS (full mode)")
    args = parser.parse_args()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = {cell.get("id"): i for i, cell in enumerate(nb.cells)}
    train = nb.cells[index["numpy-cnn-train"]]
    if args.epochs is not None:
        train.source = train.source.replace(
            "EPOCHS = 2 if FAST else 5", f"EPOCHS = 2 if FAST else {args.epochs}"
        )
    train.source = "_cpu_before = time.process_time()\n" + train.source
    train.source += "\n_cpu_after = time.process_time()\n"
    curve = nb.cells[index["numpy-cnn-curve"]]
    curve.source = curve.source.replace(
        "plt.show()", f"fig.savefig({str(FIGURE)!r}, dpi=130)\nplt.show()", 1
    )
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))

    env = {"CNN_COURSE_FAST": "0", "CNN_COURSE_THREADS": str(args.threads)}
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    run = run_notebook(nb, ROOT, env, cell_timeout_s=3600, raise_errors=True)
    wall = run.seconds

    text = cell_text(run.nb.cells[-1])
    report = json.loads(text.split("REPORT ", 1)[1].splitlines()[0])
    load = os.getloadavg()
    report.update(
        notebook_wall_seconds=wall,
        seconds_per_epoch=sum(report["epoch_seconds"]) / len(report["epoch_seconds"]),
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        load_average_after=[round(x, 2) for x in load],
        date=time.strftime("%Y-%m-%d"),
        command="python benchmarks/reproduce_numpy_cnn.py --threads "
        f"{args.threads}" + (f" --epochs {args.epochs}" if args.epochs else ""),
        figure=str(FIGURE.relative_to(ROOT)),
    )
    RESULT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
