"""Reproduce the lectures' training runs on the full MNIST, offline, in one command.

    make reproduce                                   # full length -> docs/reproduction.*
    python benchmarks/reproduce_training.py --quick  # smoke test (fast-mode subset, 1-2 epochs)
    python benchmarks/reproduce_training.py --runs keras_cnn,torch_cnn --out-dir /tmp/repro
    python benchmarks/reproduce_training.py --spread-seeds 2,3,4,5  # + Keras/PyTorch spread
    python benchmarks/reproduce_training.py --from-json docs/reproduction.json \
        --add-spread /tmp/s2/reproduction.json ...   # re-render (and add other seeds' runs)

Runs (the configurations of lectures 7, 8 and 9, seeds fixed):

* ``keras_cnn``: the lecture CNN (``cnncourse.models.build_lecture_cnn_keras``, 93,322
  parameters), RMSprop, batch 64, 5 epochs, a tenth of the training digits held out for
  validation (Keras' ``validation_split=0.1``: the last tenth), as in lecture 7; the lecture
  reported 99.08% test accuracy;
* ``torch_cnn``: the same CNN in PyTorch (``cnncourse.models.LectureCNNTorch``), trained as
  in lecture 8: RMSprop with Keras' defaults (lr 1e-3, alpha 0.9, eps 1e-7), batch 64,
  5 epochs, the first tenth of the training digits held out for validation;
* ``cropped`` and ``classic``: the classifier of lecture 9 with and without a leading
  ``Cropping2D(5)``, Adam, batch 250, 25 epochs, ``validation_split=0.2``; the lecture
  reported 99.05% (loss 0.0304) and 99.27% (loss 0.0290).

Every run trains in its own Python process, so that the peak resident memory it reports
(``VmHWM``) is its own: framework import, data and training together. The data are the
shipped, MD5-verified MNIST files (60,000 training and 10,000 test digits), read through
``cnncourse.data.load_mnist``; nothing is downloaded.

Outputs (in ``--out-dir``, default ``docs/`` for a full run, ``benchmarks/results/`` for
``--quick``): ``reproduction.json`` (what other tools read), ``reproduction.md`` (the table
beside the lecture's figures, the goals, the wall time) and ``figures/training_curves.png``
(loss and accuracy per epoch, training vs validation, one panel per run).

Single runs move with the seed by a few tenths of a point, as much as the goals' tolerances;
``--spread-seeds`` trains the two lecture-CNN runs again with other seeds and adds a table of
that spread (the goals are still judged on the main seed's runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.reproduction_report import add_spread, write_outputs  # noqa: E402

DOCS = ROOT / "docs"
QUICK_DIR = ROOT / "benchmarks" / "results"
QUICK_SCALE = 0.1  # 5 epochs -> 1, 25 epochs -> 2 (rounded, at least 1)
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class RunSpec:
    """One training configuration and what the lecture reported for it."""

    name: str
    title: str
    framework: str
    optimizer: str
    batch_size: int
    epochs: int
    validation: float  # share of the training digits held out for validation
    lecture_accuracy: float | None
    lecture_loss: float | None


def _lecture(name: str, key: str) -> float | None:
    """What the original lecture reported for a run (``cnncourse.models.LECTURE_REPORTED``)."""
    from cnncourse.models import LECTURE_REPORTED

    return LECTURE_REPORTED.get(name, {}).get(key)


RUNS = {
    spec.name: spec
    for spec in [
        RunSpec("keras_cnn", "lecture CNN, Keras (lecture 7)", "keras", "rmsprop", 64, 5, 0.1,
                _lecture("keras_cnn", "accuracy"), _lecture("keras_cnn", "loss")),
        RunSpec("torch_cnn", "lecture CNN, PyTorch (lecture 8)", "torch", "rmsprop", 64, 5, 0.1,
                None, None),
        RunSpec("cropped", "cropped classifier (lecture 9)", "keras", "adam", 250, 25, 0.2,
                _lecture("cropped", "accuracy"), _lecture("cropped", "loss")),
        RunSpec("classic", "classic classifier (lecture 9)", "keras", "adam", 250, 25, 0.2,
                _lecture("classic", "accuracy"), _lecture("classic", "loss")),
    ]
}  # fmt: skip


def scaled_epochs(epochs: int, scale: float) -> int:
    return max(1, round(epochs * scale))


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", fh.read())
    return int(match.group(1)) / 1024 if match else float("nan")


def cpu_model() -> str:
    """The CPU's model name from lscpu (or the platform module when lscpu is missing)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------- one run
def _keras_run(spec: RunSpec, epochs: int, seed: int, data) -> dict:
    import keras
    import numpy as np

    from cnncourse import models

    (x_train, y_train), (x_test, y_test) = data

    def prepare(x):  # (m, 28, 28) uint8 -> (m, 28, 28, 1) float32 in [0, 1]
        return (x.astype("float32") / 255.0)[..., np.newaxis]

    x_train, x_test = prepare(x_train), prepare(x_test)
    y_train, y_test = (
        keras.utils.to_categorical(y_train, 10),
        keras.utils.to_categorical(y_test, 10),
    )
    build = {
        "keras_cnn": models.build_lecture_cnn_keras,
        "cropped": models.build_cropped_classifier_keras,
        "classic": models.build_classic_classifier_keras,
    }[spec.name]
    model = build(seed=seed)  # compiled as in the lecture (rmsprop or adam)

    seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=spec.batch_size,
        validation_split=spec.validation,
        callbacks=[EpochTimer()],
        verbose=1,
    )
    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    n_val = math.floor(len(x_train) * spec.validation)
    return {
        "history": {k: [float(v) for v in history.history[k]] for k in HISTORY_KEYS},
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "epoch_seconds": seconds,
        "parameters": int(model.count_params()),
        "training_digits": len(x_train) - n_val,
        "validation_digits": n_val,
        "test_digits": len(x_test),
        "framework_version": f"Keras {keras.__version__}, TensorFlow "
        + __import__("tensorflow").__version__,
    }


def _torch_run(spec: RunSpec, epochs: int, seed: int, data, threads: int) -> dict:
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm import tqdm

    from cnncourse.models import LectureCNNTorch

    torch.set_num_threads(threads)
    (x_train, y_train), (x_test, y_test) = data

    def tensors(images, labels):  # uint8 (m, 28, 28) -> float32 (m, 1, 28, 28) in [0, 1]
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        return x, torch.from_numpy(labels.astype(np.int64))

    x_all, y_all = tensors(x_train, y_train)
    x_test_t, y_test_t = tensors(x_test, y_test)
    n_val = math.floor(len(x_all) * spec.validation)  # lecture 8: the first tenth
    x_val, y_val = x_all[:n_val], y_all[:n_val]
    x_fit, y_fit = x_all[n_val:], y_all[n_val:]

    torch.manual_seed(seed)
    model = LectureCNNTorch()
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(x_fit, y_fit), batch_size=spec.batch_size, shuffle=True, generator=generator
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)

    def evaluate(x, y, batch_size=500):
        model.eval()
        total_loss, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = model(x[start : start + batch_size])
                yb = y[start : start + batch_size]
                total_loss += loss_fn(logits, yb).item() * len(yb)
                correct += int((logits.argmax(dim=1) == yb).sum())
        return total_loss / len(x), correct / len(x)

    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        progress = tqdm(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", mininterval=2.0)
        for xb, yb in progress:
            optimizer.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(yb)
            correct += int((logits.argmax(dim=1) == yb).sum())
            seen += len(yb)
            progress.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        val_loss, val_accuracy = evaluate(x_val, y_val)
        seconds.append(time.perf_counter() - start)
        for key, value in zip(
            HISTORY_KEYS, (total_loss / seen, correct / seen, val_loss, val_accuracy), strict=True
        ):
            history[key].append(float(value))
        print(
            f"epoch {epoch}: loss {total_loss / seen:.4f} accuracy {correct / seen:.4f} | "
            f"val_loss {val_loss:.4f} val_accuracy {val_accuracy:.4f}",
            flush=True,
        )
    test_loss, test_accuracy = evaluate(x_test_t, y_test_t)
    return {
        "history": history,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "epoch_seconds": seconds,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training_digits": len(x_fit),
        "validation_digits": n_val,
        "test_digits": len(x_test_t),
        "framework_version": f"PyTorch {torch.__version__}",
    }


def worker(name: str, epochs: int, seed: int, fast_data: bool, result_path: Path) -> int:
    """Train one run in this process and write its result (with this process's peak RSS)."""
    from cnncourse.data import last_source, load_mnist
    from cnncourse.runtime import setup_notebook

    config = setup_notebook(seed=seed, quiet=True)  # threads from the environment / quota
    spec = RUNS[name]
    data = load_mnist(fast=fast_data)
    start = time.perf_counter()
    if spec.framework == "torch":
        result = _torch_run(spec, epochs, seed, data, config.threads)
    else:
        result = _keras_run(spec, epochs, seed, data)
    result.update(
        name=name,
        epochs=epochs,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
        threads=config.threads,
        data=last_source().description,
    )
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


# ----------------------------------------------------------------------------- outputs
def run_record(spec: RunSpec, r: dict) -> dict:
    """The entry of ``reproduction.json`` for one run."""
    seconds = r["epoch_seconds"]
    return {
        "title": spec.title,
        "framework": spec.framework,
        "optimizer": spec.optimizer,
        "batch_size": spec.batch_size,
        "epochs": r["epochs"],
        "training_digits": r["training_digits"],
        "validation_digits": r["validation_digits"],
        "test_digits": r["test_digits"],
        "parameters": r["parameters"],
        "test_accuracy": round(r["test_accuracy"], 6),
        "test_loss": round(r["test_loss"], 6),
        "seconds_per_epoch": round(sum(seconds) / len(seconds), 2),
        "peak_rss_mb": round(r["peak_rss_mb"], 1),
        "lecture_accuracy": spec.lecture_accuracy,
        "lecture_loss": spec.lecture_loss,
        "history": {k: [round(v, 6) for v in values] for k, values in r["history"].items()},
    }


# ----------------------------------------------------------------------------- driver
def train_in_subprocess(
    name: str, epochs: int, seed: int, quick: bool, tmp: str, env: dict[str, str]
) -> dict:
    """Run :func:`worker` for one run in a fresh Python process; returns its result."""
    result_path = Path(tmp) / f"{name}-{seed}.json"
    command = [sys.executable, __file__, "--worker", name, "--epochs", str(epochs)]
    command += ["--seed", str(seed), "--result", str(result_path)]
    command += ["--quick"] if quick else []
    subprocess.run(command, check=True, env=env)
    return json.loads(result_path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated run names")
    parser.add_argument("--quick", action="store_true", help="fast-mode subset, epochs x 0.1")
    parser.add_argument("--epochs-scale", type=float, default=None, help="multiply the epochs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per run (default: the CPU quota)"
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="where the outputs go")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="no training: re-render reproduction.md and the figure from this reproduction.json",
    )
    parser.add_argument(
        "--spread-seeds",
        default="",
        help="also train keras_cnn and torch_cnn with these seeds (comma-separated) and report "
        "the run-to-run spread of their test accuracies",
    )
    parser.add_argument(
        "--add-spread",
        type=Path,
        nargs="*",
        default=[],
        help="with --from-json: add the keras_cnn / torch_cnn results of these other "
        "reproduction.json files (other seeds) to the spread table",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return worker(args.worker, args.epochs, args.seed, args.quick, args.result)
    if args.from_json:
        report = json.loads(args.from_json.read_text(encoding="utf-8"))
        if args.add_spread:
            add_spread(report, report["seed"], report["threads"], report["runs"])
        for other in args.add_spread:
            extra = json.loads(other.read_text(encoding="utf-8"))
            add_spread(report, extra["seed"], extra["threads"], extra["runs"])
        write_outputs(report, args.out_dir or args.from_json.parent)
        return 0

    scale = (
        args.epochs_scale if args.epochs_scale is not None else (QUICK_SCALE if args.quick else 1)
    )
    shortened = args.quick or scale != 1
    out_dir = args.out_dir or (QUICK_DIR if shortened else DOCS)
    wanted = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = set(wanted) - set(RUNS)
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}; choose from {list(RUNS)}")

    env = os.environ.copy()
    if args.threads:
        env["CNN_COURSE_THREADS"] = str(args.threads)
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            spec = RUNS[name]
            epochs = scaled_epochs(spec.epochs, scale)
            print(f"\n== {spec.title}: {epochs} epoch(s), batch {spec.batch_size}, "
                  f"{spec.optimizer}", flush=True)  # fmt: skip
            results[name] = train_in_subprocess(name, epochs, args.seed, args.quick, tmp, env)
            r = results[name]
            print(f"   test accuracy {100 * r['test_accuracy']:.2f}%, loss {r['test_loss']:.4f}, "
                  f"{sum(r['epoch_seconds']) / len(r['epoch_seconds']):.1f} s/epoch, "
                  f"peak {r['peak_rss_mb']:.0f} MiB", flush=True)  # fmt: skip
        wall = time.perf_counter() - start
        spread_runs = []
        for seed in [int(x) for x in args.spread_seeds.split(",") if x.strip()]:
            for name in ("keras_cnn", "torch_cnn"):
                print(f"\n== spread: {RUNS[name].title}, seed {seed}", flush=True)
                epochs = scaled_epochs(RUNS[name].epochs, scale)
                r = train_in_subprocess(name, epochs, seed, args.quick, tmp, env)
                spread_runs.append((seed, name, r))

    note = ""
    if shortened:
        note = (
            f"SHORTENED RUN (smoke test): epochs x {scale:g}"
            + (", fast-mode subset of 8,000 training digits" if args.quick else "")
            + ". Not a reproduction: run `make reproduce` for the real figures."
        )
    first = next(iter(results.values()))
    import numpy

    versions = f"Python {platform.python_version()}, numpy {numpy.__version__}, " + "; ".join(
        sorted({r["framework_version"] for r in results.values()})
    )
    cmd = "python benchmarks/reproduce_training.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    report = {
        "data": first["data"],
        "machine": f"{cpu_model()}, {os.cpu_count()} CPU(s) visible",
        "threads": first["threads"],
        "wall_seconds": round(wall, 1),
        "load_average": {
            "before": round(load_before[0], 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "note": note,
        "command": cmd.strip(),
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "seed": args.seed,
        "software": versions,
        "runs": {name: run_record(RUNS[name], r) for name, r in results.items()},
    }
    if spread_runs:
        add_spread(report, args.seed, first["threads"], report["runs"])
        for seed, name, r in spread_runs:
            add_spread(report, seed, r["threads"], {name: {"test_accuracy": r["test_accuracy"]}})
    write_outputs(report, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
