"""Lecture 10's measurements on cluttered MNIST, offline: the architecture table over seeds,
the learning-rate sweep with and without batch normalization, and the fast-mode runs that set
assignment 6's accuracy threshold.

    python benchmarks/reproduce_modern.py                   # everything -> docs/modern.json
    python benchmarks/reproduce_modern.py --parts table     # only the architecture table
    python benchmarks/reproduce_modern.py --parts fast --fast-seeds 1,2,3,4,5
    python benchmarks/reproduce_modern.py --quick           # smoke test -> benchmarks/results/
    python benchmarks/reproduce_modern.py --report-only     # re-render the markdown from the JSON

Parts (every run trains in its own process, so its peak memory is its own; finished runs are
kept in ``benchmarks/results/modern_runs/`` and not trained again):

* ``table``: every architecture of :data:`cnncourse.modern_nets.ARCHITECTURES` (the lecture
  CNN, plain CNNs of 7 and 13 convolutions, + batch normalization, + residual shortcuts,
  + augmentation) on the full cluttered MNIST (20,000 training, 5,000 validation, 10,000
  test images; :mod:`cnncourse.cluttered`), Adam (learning rate 1e-3 decaying to 0 along a
  cosine), batches of 64,
  :data:`EPOCHS` epochs, seeds 1, 2 and 3;
* ``lr``: the 13-convolution plain net and the same net with batch normalization at larger
  learning rates (:data:`LR_SWEEP`), :data:`LR_EPOCHS` epochs, the same seeds;
* ``fast``: assignment 6c's fast-mode training (the 4,000 fast-mode training images,
  :data:`FAST_EPOCHS` epochs) of the small ResNet and of the lecture CNN, scored on the
  autograder's 2,000 held-out cluttered images (:func:`cnncourse.cluttered.grading_set`):
  what :data:`cnncourse.checks.modern_models.CLUTTERED_THRESHOLD` is chosen from.

Outputs: ``docs/modern.json`` (what lecture 10 reads) and the section "Modern CNNs on cluttered
MNIST" of ``docs/reproduction.md`` (only the text between its two markers is replaced).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"
RUNS_DIR = RESULTS / "modern_runs"
EPOCHS = 8
LR_SWEEP = (3e-3, 1e-2)  # on top of 1e-3
LR_EPOCHS = 3
LR_ARCHITECTURES = ("deep_plain", "deep_bn")
FAST_EPOCHS = 5
FAST_ARCHITECTURES = ("lecture_cnn", "resnet")
SEEDS = (1, 2, 3)
FAST_SEEDS = (1, 2, 3, 4, 5)
BEGIN = "<!-- modern-cnns:begin (benchmarks/reproduce_modern.py writes this section) -->"
END = "<!-- modern-cnns:end -->"


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", fh.read())
    return int(match.group(1)) / 1024 if match else float("nan")


# ----------------------------------------------------------------------------- one run


def worker(kind: str, arch: str, seed: int, epochs: int, lr: float, quick: bool, out: Path) -> int:
    """Train one network in this process and write its result as JSON."""
    from cnncourse.runtime import setup_notebook

    setup_notebook(seed=seed, quiet=True)
    import numpy as np

    from cnncourse import cluttered, modern_nets

    fast_data = quick or kind == "fast"
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = cluttered.load_cluttered(fast_data, verbose=False)
    if kind == "fast":  # scored on the autograder's held-out images
        x_te, y_te = cluttered.grading_set()
    model = modern_nets.ARCHITECTURES[arch].build(seed=seed)
    result = modern_nets.compile_and_fit(
        model,
        (cluttered.as_float(x_tr), np.asarray(y_tr)),
        (cluttered.as_float(x_va), np.asarray(y_va)),
        (cluttered.as_float(x_te), np.asarray(y_te)),
        epochs,
        learning_rate=lr,
        verbose=2,
    )
    result.update(
        kind=kind,
        arch=arch,
        seed=seed,
        epochs=epochs,
        learning_rate=lr,
        images={"train": len(x_tr), "val": len(x_va), "test": len(x_te)},
        peak_rss_mib=peak_rss_mb(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


def run_one(kind: str, arch: str, seed: int, epochs: int, lr: float, quick: bool) -> dict:
    """A finished run's result, training it in a child process first if needed."""
    mode = "quick" if quick else "full"
    path = RUNS_DIR / mode / f"{kind}-{arch}-seed{seed}-epochs{epochs}-lr{lr:g}.json"
    if not path.is_file():
        command = [sys.executable, __file__, "--worker", kind, arch, str(seed), str(epochs)]
        command += [f"{lr:g}", "1" if quick else "0", str(path)]
        print(f"training {kind} {arch} seed {seed}, {epochs} epoch(s), lr {lr:g} ...", flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the report


def mean_sd(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for a single value) of ``values``, as the
    lectures compute them (:func:`cnncourse.training_runs.mean_sd`), in the JSON's form."""
    from cnncourse import training_runs as tr

    mean, sd = tr.mean_sd(values)
    return {"mean": mean, "sd": sd, "n": len(values)}


def summarize(results: list[dict]) -> dict:
    """Per-seed values and their mean and spread, for runs of one configuration."""
    by_seed = {str(r["seed"]): r for r in sorted(results, key=lambda r: r["seed"])}
    accuracies = [r["test_accuracy"] for r in by_seed.values()]
    return {
        "params": results[0]["params"],
        "epochs": results[0]["epochs"],
        "learning_rate": results[0]["learning_rate"],
        "images": results[0]["images"],
        "test_accuracy": mean_sd(accuracies),
        "test_loss": mean_sd([r["test_loss"] for r in by_seed.values()]),
        "seconds_per_epoch": statistics.fmean(r["seconds_per_epoch"] for r in by_seed.values()),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in by_seed.values()),
        "seeds": {
            seed: {
                "test_accuracy": r["test_accuracy"],
                "test_loss": r["test_loss"],
                "history": r["history"],
                "seconds_per_epoch": r["seconds_per_epoch"],
            }
            for seed, r in by_seed.items()
        },
    }


def machine() -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "load_average": os.getloadavg()[0],
    }


def _pct(summary: dict) -> str:
    acc = summary["test_accuracy"]
    return f"{100 * acc['mean']:.1f}% ± {100 * acc['sd']:.1f}"


def _seeds(summary: dict) -> str:
    return ", ".join(f"{100 * s['test_accuracy']:.1f}%" for s in summary["seeds"].values())


def render(report: dict) -> str:
    """The markdown section for docs/reproduction.md."""
    from cnncourse.modern_nets import ARCHITECTURES

    lines = [BEGIN, "", "## Modern CNNs on cluttered MNIST (lecture 10, assignment 6)", ""]
    data = report["data"]
    lines += [
        f"Generated by `python benchmarks/reproduce_modern.py` on {report['date']} "
        f"({report['machine']['cpus']} CPUs, shared: 1-minute load average "
        f"{report['machine']['load_average']:.1f} at the end; Keras "
        f"{report['machine']['keras']}, TensorFlow {report['machine']['tensorflow']}); wall "
        f"time {report['wall_seconds'] / 60:.0f} min. The numbers below are what "
        "`lectures/10_modern_cnns.ipynb` reads from `docs/modern.json`.",
        "",
        f"- **Data:** cluttered MNIST ({data['canvas']}x{data['canvas']}, "
        "`cnncourse.cluttered`): one MNIST digit per image, rotated, scaled and moved, over six "
        "8x8 pieces of other digits; train and validation from MNIST's training digits, test "
        "from its test digits (a test checks that no test digit reaches the training images).",
        "",
    ]
    table = report.get("table")
    if table:
        first = next(iter(table.values()))
        lines += [
            f"- **Training:** Adam, learning rate 1e-3 with a cosine decay to 0, batches of 64, "
            f"{first['epochs']} epochs "
            f"on {first['images']['train']:,} training images; test accuracy after the last "
            f"epoch on {first['images']['test']:,} test images; seeds "
            f"{', '.join(next(iter(table.values()))['seeds'])} (mean ± sample standard "
            "deviation).",
            "",
            "| architecture | parameters | test accuracy (mean ± sd) | per seed | s / epoch | "
            "peak RSS |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for name, s in table.items():
            lines.append(
                f"| {ARCHITECTURES[name].title} | {s['params']:,} | **{_pct(s)}** | "
                f"{_seeds(s)} | {s['seconds_per_epoch']:.0f} | {s['peak_rss_mib']:.0f} MiB |"
            )
        lines.append("")
    lr = report.get("lr_sweep")
    if lr:
        lines += [
            f"Learning rates: validation accuracy after {LR_EPOCHS}-epoch runs (the cosine decay "
            "spread over those epochs), the same seeds:",
            "",
            "| architecture | learning rate | validation accuracy after the last epoch "
            "(mean ± sd) | per seed |",
            "| --- | --- | --- | --- |",
        ]
        for s in lr.values():
            per_seed = ", ".join(f"{100 * v:.1f}%" for v in s["val_accuracy"]["values"])
            lines.append(
                f"| {ARCHITECTURES[s['arch']].title} | {s['learning_rate']:g} | "
                f"{100 * s['val_accuracy']['mean']:.1f}% ± {100 * s['val_accuracy']['sd']:.1f} "
                f"| {per_seed} |"
            )
        lines.append("")
    fast = report.get("fast_mode")
    if fast:
        from cnncourse.checks.modern_models import CLUTTERED_THRESHOLD

        first = next(iter(fast.values()))
        lines += [
            f"Assignment 6c in fast mode ({first['images']['train']:,} training images, "
            f"{first['epochs']} epochs), scored on the autograder's "
            f"{first['images']['test']:,} held-out cluttered images; the graded threshold is "
            f"{CLUTTERED_THRESHOLD:.0%}:",
            "",
            "| network | accuracy (mean ± sd) | per seed | lowest |",
            "| --- | --- | --- | --- |",
        ]
        for name, s in fast.items():
            low = min(v["test_accuracy"] for v in s["seeds"].values())
            lines.append(
                f"| {ARCHITECTURES[name].title} | {_pct(s)} | {_seeds(s)} | {100 * low:.1f}% |"
            )
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_section(markdown: str, path: Path) -> None:
    """Replace the section between the markers in ``path`` (append it when absent)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + markdown + tail
    else:
        text = text.rstrip("\n") + "\n\n" + markdown + "\n"
    path.write_text(text, encoding="utf-8")


def lr_summary(arch: str, lr: float, results: list[dict], epochs: int) -> dict:
    """Validation accuracy after ``epochs`` epochs (NaN when a run stopped on a NaN loss)."""
    histories = [r["history"] for r in results]
    values = [
        h["val_accuracy"][epochs - 1] if len(h["val_accuracy"]) >= epochs else float("nan")
        for h in histories
    ]
    losses = [h["loss"][:epochs] for h in histories]
    return {
        "arch": arch,
        "learning_rate": lr,
        "val_accuracy": dict(mean_sd(values), values=values),
        "loss_curves": losses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="table,lr,fast")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--fast-seeds", default=",".join(map(str, FAST_SEEDS)))
    parser.add_argument("--quick", action="store_true", help="fast-mode data, 1 epoch")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, arch, seed, epochs, lr, quick, out = args.worker
        return worker(kind, arch, int(seed), int(epochs), float(lr), quick == "1", Path(out))

    out_dir = RESULTS if args.quick else DOCS
    json_path = out_dir / "modern.json"
    if args.report_only:
        report = json.loads(json_path.read_text(encoding="utf-8"))
        write_section(render(report), out_dir / "reproduction.md")
        return 0

    from cnncourse import cluttered
    from cnncourse.modern_nets import ARCHITECTURES

    start = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")][: 1 if args.quick else None]
    fast_seeds = [int(s) for s in args.fast_seeds.split(",")][: 2 if args.quick else None]
    parts = args.parts.split(",")
    epochs = 1 if args.quick else EPOCHS
    report = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else {}
    if "table" in parts:
        report["table"] = {
            name: summarize([run_one("table", name, s, epochs, 1e-3, args.quick) for s in seeds])
            for name in ARCHITECTURES
        }
    if "lr" in parts:
        lr_epochs = 1 if args.quick else LR_EPOCHS
        sweep = {}
        for arch in LR_ARCHITECTURES:
            for lr in (1e-3, *LR_SWEEP):
                results = [run_one("lr", arch, s, lr_epochs, lr, args.quick) for s in seeds]
                sweep[f"{arch}@{lr:g}"] = lr_summary(arch, lr, results, lr_epochs)
        report["lr_sweep"] = sweep
        report["lr_epochs"] = lr_epochs
    if "fast" in parts:
        fast_epochs = 1 if args.quick else FAST_EPOCHS
        report["fast_mode"] = {
            name: summarize(
                [run_one("fast", name, s, fast_epochs, 1e-3, args.quick) for s in fast_seeds]
            )
            for name in FAST_ARCHITECTURES
        }
    report.update(
        date=dt.date.today().isoformat(),
        machine=machine(),
        wall_seconds=report.get("wall_seconds", 0.0) + time.perf_counter() - start,
        data={
            "canvas": cluttered.CANVAS,
            "full": cluttered.FULL_SIZES,
            "fast": cluttered.FAST_SIZES,
            "grading": cluttered.GRADING_SIZE,
        },
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    write_section(render(report), out_dir / "reproduction.md")
    print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
