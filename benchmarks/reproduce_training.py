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

DOCS = ROOT / "docs"
QUICK_DIR = ROOT / "benchmarks" / "results"
QUICK_SCALE = 0.1  # 5 epochs -> 1, 25 epochs -> 2 (rounded, at least 1)
GOAL_POINTS = 0.25  # |test accuracy - lecture's| in percentage points
FRAMEWORK_POINTS = 0.3  # |Keras - PyTorch| in percentage points
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


def goals(runs: dict) -> list[tuple[str, bool | None, str]]:
    """(goal, met?, measured) for each goal of the reproduction; None: not measured."""
    out = []
    for name in ("keras_cnn", "cropped", "classic"):
        spec = RUNS[name]
        goal = (
            f"{spec.title}: within {GOAL_POINTS} points of the lecture's "
            f"{100 * spec.lecture_accuracy:.2f}%"
        )
        if name not in runs:
            out.append((goal, None, "not run"))
            continue
        gap = round(100 * (runs[name]["test_accuracy"] - spec.lecture_accuracy), 2) + 0.0
        out.append((goal, abs(gap) <= GOAL_POINTS + 1e-9, f"{gap:+.2f} points"))
    goal = "classic classifier ahead of the cropped one"
    if "cropped" in runs and "classic" in runs:
        gap = round(100 * (runs["classic"]["test_accuracy"] - runs["cropped"]["test_accuracy"]), 2)
        out.append((goal, gap > 0, f"classic {gap:+.2f} points"))
    else:
        out.append((goal, None, "not run"))
    goal = f"Keras and PyTorch within {FRAMEWORK_POINTS} points of each other"
    if "keras_cnn" in runs and "torch_cnn" in runs:
        gap = round(
            100 * (runs["torch_cnn"]["test_accuracy"] - runs["keras_cnn"]["test_accuracy"]), 2
        )
        out.append((goal, abs(gap) <= FRAMEWORK_POINTS + 1e-9, f"PyTorch {gap:+.2f} points"))
    else:
        out.append((goal, None, "not run"))
    return out


def add_spread(report: dict, seed: int, threads: int, runs: dict) -> None:
    """Record the keras_cnn / torch_cnn test accuracies of one seed in ``report["spread"]``."""
    spread = report.setdefault("spread", {"threads": threads, "seeds": {}})
    if spread["threads"] != threads:
        raise ValueError(f"spread runs use {spread['threads']} thread(s), not {threads}")
    entry = spread["seeds"].setdefault(str(seed), {})
    for name in ("keras_cnn", "torch_cnn"):
        if name in runs:
            entry[name] = round(runs[name]["test_accuracy"], 6)


def render_spread(report: dict) -> list[str]:
    """The run-to-run spread of the two lecture-CNN runs over seeds, as markdown."""
    spread = report.get("spread")
    if not spread:
        return []
    lines = [
        "## Run-to-run spread: Keras vs PyTorch",
        "",
        f"The lecture CNN trained again with other seeds ({spread['threads']} thread(s), "
        "everything else as above). The goals compare single runs; this is how much a single "
        "run moves with the seed.",
        "",
        "| seed | Keras | PyTorch | PyTorch minus Keras |",
        "| --- | --- | --- | --- |",
    ]
    keras, torch, gaps = [], [], []
    for seed, entry in sorted(spread["seeds"].items(), key=lambda kv: int(kv[0])):
        k, t = entry.get("keras_cnn"), entry.get("torch_cnn")
        keras += [k] if k is not None else []
        torch += [t] if t is not None else []
        gap = "-"
        if k is not None and t is not None:
            gaps.append(100 * (t - k))
            gap = f"{gaps[-1]:+.2f} points"
        cells = [f"{100 * v:.2f}%" if v is not None else "-" for v in (k, t)]
        lines.append(f"| {seed} | {cells[0]} | {cells[1]} | {gap} |")
    if len(gaps) > 1:
        lines.append(
            f"| mean of {len(gaps)} | {100 * sum(keras) / len(keras):.2f}% "
            f"| {100 * sum(torch) / len(torch):.2f}% | {sum(gaps) / len(gaps):+.2f} points |"
        )
        lines += [
            "",
            f"Over these seeds Keras reached {100 * min(keras):.2f}% to {100 * max(keras):.2f}% "
            f"and PyTorch {100 * min(torch):.2f}% to {100 * max(torch):.2f}%; the PyTorch minus "
            f"Keras gap ranged from {min(gaps):+.2f} to {max(gaps):+.2f} points "
            f"({sum(abs(g) <= FRAMEWORK_POINTS + 1e-9 for g in gaps)} of {len(gaps)} seeds "
            f"within {FRAMEWORK_POINTS} points).",
        ]
    lines.append("")
    return lines


def render_markdown(report: dict) -> str:
    runs = report["runs"]
    wall_min = report["wall_seconds"] / 60
    lines = ["# Reproducing the lectures' training runs", ""]
    if report["note"]:
        lines += [f"> **{report['note']}**", ""]
    lines += [
        f"Generated by `{report['command']}` on {report['date']}; "
        f"wall time **{wall_min:.1f} min** for the {len(runs)} runs "
        "(each run in its own process: start-up, data, training and evaluation).",
        "",
        f"- **Data:** {report['data']}",
        f"- **Machine:** {report['machine']}; {report['threads']} thread(s) per run; "
        f"1-minute load average {report['load_average']['before']} before the runs, "
        f"{report['load_average']['after']} after (other work on the machine slows the "
        "runs down)",
        f"- **Software:** {report['software']}; seed {report['seed']}",
        "",
        "| run | optimizer, batch | epochs | train / val. digits | parameters | test accuracy "
        "| test loss | lecture reported | s / epoch | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs.values():
        reported = "-"
        if r["lecture_accuracy"] is not None:
            reported = f"{100 * r['lecture_accuracy']:.2f}%"
            if r["lecture_loss"] is not None:
                reported += f" (loss {r['lecture_loss']:.4f})"
        lines.append(
            f"| {r['title']} | {r['optimizer']}, {r['batch_size']} | {r['epochs']} "
            f"| {r['training_digits']:,} / {r['validation_digits']:,} | {r['parameters']:,} "
            f"| **{100 * r['test_accuracy']:.2f}%** | {r['test_loss']:.4f} | {reported} "
            f"| {r['seconds_per_epoch']:.1f} | {r['peak_rss_mb']:.0f} MiB |"
        )
    lines += ["", "## Goals", "", "| goal | measured | met |", "| --- | --- | --- |"]
    for goal, met, measured in goals(runs):
        flag = "not measured" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {goal} | {measured} | {flag} |")
    lines += [
        "",
        "Test accuracy and loss are measured once, after the last epoch, on the "
        f"{next(iter(runs.values()))['test_digits']:,} test digits, which no run trains or "
        "validates on. The validation digits are held out from the training digits as in the "
        "lectures (Keras: the last tenth or fifth; "
        "lecture 8's PyTorch loop: the first tenth). *s / epoch* includes the validation pass. "
        "*Peak RSS* is the run's process's peak resident memory (framework, data and training).",
        "",
        "## Training curves",
        "",
        "![loss and accuracy per epoch, training vs validation](figures/training_curves.png)",
        "",
    ]
    lines += curve_notes(runs)
    lines.append("")
    lines += render_spread(report)
    return "\n".join(lines)


def curve_notes(runs: dict) -> list[str]:
    """One sentence per run, computed from its history: best validation epoch, the gap, and
    whether the validation loss turned up while the training loss kept falling."""
    out = []
    for r in runs.values():
        h = r["history"]
        if not h["val_loss"]:
            continue
        last = len(h["val_loss"])
        best = min(range(last), key=h["val_loss"].__getitem__)
        gap = h["val_loss"][-1] - h["loss"][-1]
        text = (
            f"- {r['title']}: validation loss lowest after epoch {best + 1} of {last} "
            f"({h['val_loss'][best]:.4f}; {h['val_loss'][-1]:.4f} at the end); last epoch's "
            f"training loss {h['loss'][-1]:.4f}, validation minus training {gap:+.4f}; "
            f"validation accuracy {100 * h['val_accuracy'][-1]:.2f}%. "
        )
        rise = h["val_loss"][-1] / h["val_loss"][best] - 1
        if rise <= 0.05:
            text += (
                "The validation loss is still at or near its lowest at the end: no clear "
                "over-fitting within these epochs."
            )
        else:
            falling = h["loss"][-1] < h["loss"][best]
            text += f"The validation loss ends {100 * rise:.0f}% above its minimum" + (
                " while the training loss keeps falling: " if falling else ": "
            )
            if last - (best + 1) >= 3:
                text += (
                    "the network over-fits, and stopping near epoch "
                    f"{best + 1} would have kept the best validation loss."
                )
            else:
                text += "a first sign of over-fitting in the last epoch(s)."
        out.append(text)
    return out


def plot_curves(runs: dict, path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = list(runs)
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7.2), squeeze=False)
    for col, name in enumerate(names):
        r = runs[name]
        h = r["history"]
        epochs = range(1, len(h["loss"]) + 1)
        for row, metric in enumerate(("loss", "accuracy")):
            ax = axes[row][col]
            ax.plot(epochs, h[metric], "o-", color="tab:blue", ms=3, label="training")
            ax.plot(epochs, h[f"val_{metric}"], "s--", color="tab:orange", ms=3, label="validation")
            if metric == "accuracy" and r["lecture_accuracy"] is not None:
                ax.axhline(
                    r["lecture_accuracy"], color="grey", lw=1, ls=":", label="lecture (test)"
                )
            if metric == "loss":
                best = min(range(len(h["val_loss"])), key=h["val_loss"].__getitem__)
                ax.axvline(best + 1, color="tab:orange", lw=0.8, alpha=0.5)
                ax.set_title(r["title"], fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            ax.set_xlim(0.5, len(h["loss"]) + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if metric == "accuracy":
                ax.plot(len(h["loss"]), r["test_accuracy"], "*", color="tab:green", ms=11,
                        label="test, this run")  # fmt: skip
            values = h[metric] + h[f"val_{metric}"] + [r["test_accuracy"]] * (metric == "accuracy")
            if len(h["loss"]) >= 10:  # zoom on the later epochs (the first ones fall off scale)
                later = h[metric][2:] + h[f"val_{metric}"][2:]
                if metric == "accuracy":
                    ax.set_ylim(min(later) - 0.002, max(values) + 0.001)
                else:
                    ax.set_ylim(0, 1.15 * max(later))
            elif metric == "accuracy":
                ax.set_ylim(min(values) - 0.002, max(values) + 0.002)
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
            if row == 1 and col == 0:
                ax.legend(fontsize=8, loc="lower right")
    title = (
        "MNIST: training (solid) vs validation (dashed) per epoch; "
        "vertical line: lowest validation loss"
    )
    if note:
        title += f"\n{note}"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


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


def write_outputs(report: dict, out_dir: Path) -> None:
    """reproduction.json, reproduction.md and figures/training_curves.png in ``out_dir``."""
    report["goals"] = [
        {"goal": goal, "met": met, "measured": measured}
        for goal, met, measured in goals(report["runs"])
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "reproduction.json").write_text(json.dumps(report, indent=1) + "\n", "utf-8")
    text = render_markdown(report)
    (out_dir / "reproduction.md").write_text(text, encoding="utf-8")
    plot_curves(report["runs"], out_dir / "figures" / "training_curves.png", report["note"])
    print(f"\nwrote {out_dir}/reproduction.json, reproduction.md, figures/training_curves.png\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
