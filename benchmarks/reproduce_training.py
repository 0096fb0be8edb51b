"""Reproduce the lectures' training runs on the full MNIST, offline, on several seeds.

    make reproduce                                   # full length, seeds 1,2,3 -> docs/
    python benchmarks/reproduce_training.py --seeds 1,2,3,4,5   # more seeds
    python benchmarks/reproduce_training.py --quick  # smoke test (fast-mode subset, 1-2 epochs)
    python benchmarks/reproduce_training.py --runs keras_cnn,torch_cnn --out-dir /tmp/repro
    python benchmarks/reproduce_training.py --resume # reuse the (run, seed) results already made
    python benchmarks/reproduce_training.py --from-json docs/reproduction.json  # re-render only

Runs (the configurations of lectures 7, 8 and 9), each trained once per seed:

* ``keras_cnn``: the lecture CNN (``cnncourse.models.build_lecture_cnn_keras``, 93,322
  parameters), RMSprop, batch 64, 5 epochs, a tenth of the training digits held out for
  validation (Keras' ``validation_split=0.1``: the last tenth), as in lecture 7; the lecture
  reported 99.08% test accuracy;
* ``torch_cnn``: the same CNN in PyTorch (``cnncourse.models.LectureCNNTorch``), trained as
  in lecture 8: RMSprop with Keras' numbers (lr 1e-3, alpha 0.9, eps 1e-7), batch 64,
  5 epochs, the first tenth of the training digits held out for validation;
* ``cropped`` and ``classic``: the classifier of lecture 9 with and without a leading
  ``Cropping2D(5)``, Adam, batch 250, 25 epochs, ``validation_split=0.2``; the lecture
  reported 99.05% (loss 0.0304) and 99.27% (loss 0.0290).

Every training keeps the weights of its epoch with the lowest validation loss (the
early-stopped checkpoint) and evaluates both them and the last epoch's weights on the test
digits; it also records which test digits each got wrong (indices into the 10,000 test digits
of the full MNIST, also with ``--quick``). The seed fixes the initial weights,
the batch order and the dropout draws, so a seed repeats its run and the seeds show the
run-to-run spread: ``docs/reproduction.json`` keeps every seed's values, the report shows
mean ± sd and the over-fitting verdict of ``cnncourse.training_runs`` for every seed.

Every training runs in its own Python process, so that the peak resident memory it reports
(``VmHWM``) is its own: framework import, data and training together. Each (run, seed) result
is kept in ``--work-dir`` as soon as it is made (``--resume`` reuses them). The data are the
shipped, MD5-verified MNIST files (60,000 training and 10,000 test digits), read through
``cnncourse.data.load_mnist``; nothing is downloaded. PyTorch's OpenMP threads wait passively
(``OMP_WAIT_POLICY=PASSIVE`` unless set): spinning waits made a PyTorch epoch about 40 times
slower on a shared 2-core machine.

Outputs (in ``--out-dir``, default ``docs/`` for a full run, ``benchmarks/results/`` for
``--quick``): ``reproduction.json`` (what other tools read), ``reproduction.md`` (the tables
beside the lecture's figures, the goals, the verdicts, the wall time) and
``figures/training_curves.png`` (loss and accuracy per epoch, training vs validation, one
panel per run, one line per seed).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import reproduction_report  # noqa: E402
from benchmarks.reproduction_report import write_outputs  # noqa: E402

DOCS = ROOT / "docs"
QUICK_DIR = ROOT / "benchmarks" / "results"
QUICK_SCALE = 0.1  # 5 epochs -> 1, 25 epochs -> 2 (rounded, at least 1)
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
DEFAULT_SEEDS = (1, 2, 3)


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
    best: dict = {"val_loss": math.inf, "epoch": 0, "weights": None}

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    class KeepBest(keras.callbacks.Callback):
        """Keep the weights of the epoch with the lowest validation loss (in memory)."""

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_loss"] < best["val_loss"]:
                best.update(val_loss=logs["val_loss"], epoch=epoch + 1,
                            weights=self.model.get_weights())  # fmt: skip

    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=spec.batch_size,
        validation_split=spec.validation,
        callbacks=[EpochTimer(), KeepBest()],
        verbose=2,
    )

    def test(m):  # (loss, accuracy, indices of the misclassified test digits)
        loss, accuracy = m.evaluate(x_test, y_test, batch_size=500, verbose=0)
        predicted = m.predict(x_test, batch_size=500, verbose=0).argmax(axis=1)
        errors = np.flatnonzero(predicted != y_test.argmax(axis=1))
        return float(loss), float(accuracy), [int(i) for i in errors]

    test_loss, test_accuracy, test_errors = test(model)
    model.set_weights(best["weights"])  # the early-stopped checkpoint
    es_loss, es_accuracy, es_errors = test(model)
    n_val = math.floor(len(x_train) * spec.validation)
    return {
        "history": {k: [float(v) for v in history.history[k]] for k in HISTORY_KEYS},
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "test_errors": test_errors,
        "early_stopped": {
            "epoch": best["epoch"],
            "test_loss": es_loss,
            "test_accuracy": es_accuracy,
            "test_errors": es_errors,
        },
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

    def evaluate(x, y, batch_size=500, errors=None):
        model.eval()
        total_loss, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = model(x[start : start + batch_size])
                yb = y[start : start + batch_size]
                total_loss += loss_fn(logits, yb).item() * len(yb)
                wrong = logits.argmax(dim=1) != yb
                correct += len(yb) - int(wrong.sum())
                if errors is not None:
                    errors += [start + int(i) for i in torch.nonzero(wrong).flatten()]
        return total_loss / len(x), correct / len(x)

    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    seconds = []
    best: dict = {"val_loss": math.inf, "epoch": 0, "state": None}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        progress = tqdm(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", mininterval=30.0)
        for xb, yb in progress:
            optimizer.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(yb)
            correct += int((logits.argmax(dim=1) == yb).sum())
            seen += len(yb)
            progress.set_postfix(
                loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False
            )
        val_loss, val_accuracy = evaluate(x_val, y_val)
        seconds.append(time.perf_counter() - start)
        if val_loss < best["val_loss"]:  # keep the early-stopped checkpoint (in memory)
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best.update(val_loss=val_loss, epoch=epoch, state=state)
        for key, value in zip(
            HISTORY_KEYS, (total_loss / seen, correct / seen, val_loss, val_accuracy), strict=True
        ):
            history[key].append(float(value))
        print(
            f"epoch {epoch}: loss {total_loss / seen:.4f} accuracy {correct / seen:.4f} | "
            f"val_loss {val_loss:.4f} val_accuracy {val_accuracy:.4f}",
            flush=True,
        )
    test_errors: list[int] = []
    test_loss, test_accuracy = evaluate(x_test_t, y_test_t, errors=test_errors)
    model.load_state_dict(best["state"])
    es_errors: list[int] = []
    es_loss, es_accuracy = evaluate(x_test_t, y_test_t, errors=es_errors)
    return {
        "history": history,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "test_errors": test_errors,
        "early_stopped": {
            "epoch": best["epoch"],
            "test_loss": float(es_loss),
            "test_accuracy": float(es_accuracy),
            "test_errors": es_errors,
        },
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
    load_before = os.getloadavg()[0]
    spec = RUNS[name]
    data = load_mnist(fast=fast_data)
    start = time.perf_counter()
    if spec.framework == "torch":
        result = _torch_run(spec, epochs, seed, data, config.threads)
    else:
        result = _keras_run(spec, epochs, seed, data)
    if fast_data:  # error indices always refer to the 10,000 test digits of the full MNIST
        from cnncourse.data import fast_subset_indices

        full_index = fast_subset_indices()[1]
        for where in (result, result["early_stopped"]):
            where["test_errors"] = [int(full_index[i]) for i in where["test_errors"]]
    result.update(
        name=name,
        epochs=epochs,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
        threads=config.threads,
        seed=seed,
        load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],
        data=last_source().description,
    )
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


# ----------------------------------------------------------------------------- driver
def train_in_subprocess(
    name: str, epochs: int, seed: int, quick: bool, result_path: Path, env: dict[str, str]
) -> dict:
    """Run :func:`worker` for one run in a fresh Python process; returns its result."""
    command = [sys.executable, __file__, "--worker", name, "--epochs", str(epochs)]
    command += ["--seed", str(seed), "--result", str(result_path)]
    command += ["--quick"] if quick else []
    subprocess.run(command, check=True, env=env)
    return json.loads(result_path.read_text(encoding="utf-8"))


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (distinct, in the order given)."""
    seeds = [int(x) for x in text.split(",") if x.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct integers, got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated run names")
    parser.add_argument("--quick", action="store_true", help="fast-mode subset, epochs x 0.1")
    parser.add_argument("--epochs-scale", type=float, default=None, help="multiply the epochs")
    parser.add_argument(
        "--seeds",
        default=",".join(map(str, DEFAULT_SEEDS)),
        help="comma-separated seeds; every run trains once per seed (default: %(default)s)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per run (default: the CPU quota)"
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="where the outputs go")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where each (run, seed) result is kept as it finishes "
        "(default: benchmarks/results/reproduction_runs/<full|quick>)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the (run, seed) results already in --work-dir instead of training again",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="no training: re-render reproduction.md and the figure from this reproduction.json",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        return worker(args.worker, args.epochs, args.seed, args.quick, args.result)
    if args.from_json:
        report = json.loads(args.from_json.read_text(encoding="utf-8"))
        write_outputs(report, args.out_dir or args.from_json.parent)
        return 0

    scale = (
        args.epochs_scale if args.epochs_scale is not None else (QUICK_SCALE if args.quick else 1)
    )
    shortened = args.quick or scale != 1
    out_dir = args.out_dir or (QUICK_DIR if shortened else DOCS)
    work_dir = args.work_dir or (
        QUICK_DIR / "reproduction_runs" / ("quick" if shortened else "full")
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    wanted = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = set(wanted) - set(RUNS)
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}; choose from {list(RUNS)}")
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))

    env = os.environ.copy()
    if args.threads:
        env["CNN_COURSE_THREADS"] = str(args.threads)
    # OpenMP threads (PyTorch's) that wait by spinning stall each other on a shared machine:
    # a PyTorch epoch measured 40 times slower there than with sleeping waits.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    load_before = os.getloadavg()
    results: dict[str, dict[int, dict]] = {name: {} for name in wanted}
    reused: list[str] = []  # (run, seed) results taken from --work-dir (--resume)
    start = time.perf_counter()
    for seed in seeds:  # seed by seed: an interrupted reproduction keeps whole seeds
        for name in wanted:
            spec = RUNS[name]
            epochs = scaled_epochs(spec.epochs, scale)
            path = work_dir / f"{name}-seed{seed}-epochs{epochs}.json"
            if args.resume and path.is_file():
                print(f"== {spec.title}, seed {seed}: reusing {path}", flush=True)
                r = json.loads(path.read_text(encoding="utf-8"))
                reused.append(f"{name} seed {seed}")
            else:
                print(f"\n== {spec.title}, seed {seed}: {epochs} epoch(s), batch "
                      f"{spec.batch_size}, {spec.optimizer}", flush=True)  # fmt: skip
                r = train_in_subprocess(name, epochs, seed, args.quick, path, env)
            results[name][seed] = r
            print(f"   test accuracy {100 * r['test_accuracy']:.2f}%, loss {r['test_loss']:.4f}; "
                  f"early-stopped (epoch {r['early_stopped']['epoch']}) "
                  f"{100 * r['early_stopped']['test_accuracy']:.2f}%; "
                  f"{sum(r['epoch_seconds']) / len(r['epoch_seconds']):.1f} s/epoch, "
                  f"peak {r['peak_rss_mb']:.0f} MiB", flush=True)  # fmt: skip
    wall = time.perf_counter() - start

    note = ""
    if shortened:
        note = (
            f"SHORTENED RUN (smoke test): epochs x {scale:g}"
            + (", fast-mode subset of 8,000 training digits" if args.quick else "")
            + ". Not a reproduction: run `make reproduce` for the real figures."
        )
    every = [r for by_seed in results.values() for r in by_seed.values()]
    import numpy

    versions = f"Python {platform.python_version()}, numpy {numpy.__version__}, " + "; ".join(
        sorted({r["framework_version"] for r in every})
    )
    cmd = "python benchmarks/reproduce_training.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    meta = {
        "data": every[0]["data"],
        "machine": f"{cpu_model()}, {os.cpu_count()} CPU(s) visible",
        "threads": every[0]["threads"],
        "wall_seconds": round(wall, 1),
        "load_average": {
            "before": round(load_before[0], 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "note": note,
        "command": cmd.strip(),
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "seeds": seeds,
        "software": versions,
        "omp_wait_policy": env["OMP_WAIT_POLICY"],
        "reused": reused,
    }
    # The report code is reloaded here, so that a long reproduction writes its outputs with
    # the report code of the moment it ends.
    importlib.reload(reproduction_report)
    specs = {name: dataclasses.asdict(RUNS[name]) for name in wanted}
    report = reproduction_report.assemble_report(meta, specs, results)
    reproduction_report.write_outputs(report, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
