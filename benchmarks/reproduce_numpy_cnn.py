"""Full-mode runs of the capstone notebook (02_numpy_cnn) on several seeds: your numpy CNN on
all of MNIST.

    python benchmarks/reproduce_numpy_cnn.py [--threads 2] [--seeds 0 1 2] [--epochs N]
    python benchmarks/reproduce_numpy_cnn.py --from-json   # re-render the figure and the docs

Executes ``solutions/02_conv_backward/02_numpy_cnn.ipynb`` (the reference solutions) in full
mode once per seed (the notebook's ``SEED``: initial parameters and batch order), on the
shipped 54,000 training / 6,000 validation / 10,000 test digits, as the notebook splits them.
Each run records the two sanity checks (initial loss, over-fitting 50 digits), the validation
loss and accuracy per epoch, and the test loss and accuracy, measured once after training.
Writes ``docs/numpy_cnn.json`` (after every seed, so a stopped run keeps what it finished),
then the figure ``docs/figures/numpy_cnn_curve.png`` and the capstone's section of
``docs/reproduction.md`` (per-seed values and mean ± sample sd). Nothing is downloaded.
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
from cnncourse import training_runs as tr  # noqa: E402

NOTEBOOK = ROOT / "solutions" / "02_conv_backward" / "02_numpy_cnn.ipynb"
RESULT = ROOT / "docs" / "numpy_cnn.json"
FIGURE = ROOT / "docs" / "figures" / "numpy_cnn_curve.png"
REPRODUCTION_MD = ROOT / "docs" / "reproduction.md"
SECTION_TITLE = "## Your numpy CNN learns MNIST (assignment 2's capstone)"
DEFAULT_SEEDS = (0, 1, 2)
#: Summarised over the seeds (mean ± sample sd) in the JSON and the docs.
SUMMARY_KEYS = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "grading_accuracy")

# Runs in the kernel after the notebook: the results as one JSON line.
REPORT_CELL = """
import json as _json
from cnncourse.data import grading_digits as _grading_digits

_x_grading, _y_grading = _grading_digits()
_report = {
    "epochs": EPOCHS,
    "batch_size": BATCH_SIZE,
    "learning_rate": LEARNING_RATE,
    "train_digits": int(len(X_train)),
    "validation_digits": int(len(X_val)),
    "test_digits": int(len(X_test)),
    "grading_digits": int(len(_y_grading)),
    "threads": config.threads,
    "seed": SEED,
    "initial_loss": float(initial_loss),
    "overfit_steps": overfit_steps,
    "history": {
        "loss": history["epoch_loss"],
        "val_loss": history["val_loss"],
        "val_accuracy": history["val_accuracy"],
        "epoch_seconds": history["epoch_seconds"],
    },
    "val_loss": history["val_loss"][-1],
    "val_accuracy": history["val_accuracy"][-1],
    "test_loss": test_loss,
    "test_accuracy": test_accuracy,
    "grading_accuracy": float(np.mean(predict(params, prepare(_x_grading)) == _y_grading)),
    "train_seconds": train_seconds,
    "train_cpu_seconds": _cpu_after - _cpu_before,
    "first_50_batches_loss": float(batch_loss[:50].mean()),
    "last_50_batches_loss": float(batch_loss[-50:].mean()),
}
print("REPORT " + _json.dumps(_report))
"""


def _replace(source: str, old: str, new: str) -> str:
    """``source`` with ``old`` replaced once; raises when the notebook no longer has it."""
    if old not in source:
        raise KeyError(f"02_numpy_cnn no longer contains {old!r}: update reproduce_numpy_cnn.py")
    return source.replace(old, new, 1)


def prepared_notebook(seed: int, epochs: int | None) -> nbformat.NotebookNode:
    """The capstone with ``SEED`` (and ``EPOCHS``) set, CPU time around the training, the
    graded accuracy cell left out (the report cell measures the grading digits itself) and the
    report cell appended."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = {cell.get("id"): i for i, cell in enumerate(nb.cells)}
    data = nb.cells[index["numpy-cnn-data"]]
    data.source = _replace(data.source, "SEED = 0\n", f"SEED = {seed}\n")
    train = nb.cells[index["numpy-cnn-train"]]
    if epochs is not None:
        train.source = _replace(
            train.source, "EPOCHS = 2 if FAST else 5", f"EPOCHS = 2 if FAST else {epochs}"
        )
    train.source = "_cpu_before = time.process_time()\n" + train.source
    train.source += "\n_cpu_after = time.process_time()\n"
    del nb.cells[index["numpy-cnn-accuracy-tests"]]
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    return nb


def run_seed(seed: int, threads: int, epochs: int | None) -> dict:
    """Execute the notebook in full mode with one seed; its report, plus the wall time."""
    env = {"CNN_COURSE_FAST": "0", "CNN_COURSE_THREADS": str(threads)}
    run = run_notebook(
        prepared_notebook(seed, epochs),
        NOTEBOOK.parent,
        env,
        cell_timeout_s=3600,
        raise_errors=True,
    )
    text = cell_text(run.nb.cells[-1])
    report = json.loads(text.split("REPORT ", 1)[1].splitlines()[0])
    report["notebook_wall_seconds"] = run.seconds
    report["peak_rss_mb"] = run.peak_mb
    return report


def summarise(result: dict) -> None:
    """``result["summary"]``: mean, sample sd and per-seed values of :data:`SUMMARY_KEYS`."""
    seeds = tr.seed_records(result)
    summary = {}
    for key in SUMMARY_KEYS:
        values = [float(record[key]) for record in seeds.values()]
        mean, sd = tr.mean_sd(values)
        summary[key] = {"mean": mean, "sd": sd, "n": len(values), "values": values}
    result["summary"] = summary


def _fmt(values: list[float], percent: bool) -> str:
    return tr.format_mean_sd(values, percent=percent)


def render_section(result: dict | None) -> list[str]:
    """The capstone's section of ``docs/reproduction.md`` from ``numpy_cnn.json``, as lines;
    nothing without a result. Every number is read from ``result``."""
    if not result or not result.get("seeds"):
        return []
    seeds = tr.seed_records(result)
    n = len(seeds)
    first = next(iter(seeds.values()))
    lines = [
        SECTION_TITLE,
        "",
        f"Generated by `{result['command']}` on {result['date']} ({result['machine']}): "
        "`solutions/02_conv_backward/02_numpy_cnn.ipynb` in full mode, the reference answers' "
        "numpy layers (conv, ReLU, max pool, dense, softmax; no framework) trained with plain "
        f"SGD, learning rate {result['learning_rate']}, batches of {result['batch_size']}, "
        f"{result['epochs']} epochs, on {result['train_digits']:,} training digits; "
        f"{result['validation_digits']:,} validation digits (the last tenth of the training "
        "digits) are watched after every epoch, and the "
        f"{result['test_digits']:,} test digits are evaluated once, after training. "
        f"{n} seed{'s' if n > 1 else ''} (the notebook's `SEED`: initial parameters and batch "
        "order); ± is the sample standard deviation over the seeds.",
        "",
        "| seed | initial loss | over-fit 50 digits | validation accuracy per epoch "
        "| validation loss per epoch | validation accuracy | validation loss | test accuracy "
        "| test loss | grading digits | CPU s / epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for seed, r in seeds.items():
        h = r["history"]
        steps = r["overfit_steps"]
        overfit = f"100% after {steps} steps" if steps is not None else "**not reached**"
        lines.append(
            f"| {seed} | {r['initial_loss']:.3f} | {overfit} "
            f"| {', '.join(f'{100 * a:.2f}%' for a in h['val_accuracy'])} "
            f"| {', '.join(f'{v:.4f}' for v in h['val_loss'])} "
            f"| {100 * r['val_accuracy']:.2f}% | {r['val_loss']:.4f} "
            f"| **{100 * r['test_accuracy']:.2f}%** | {r['test_loss']:.4f} "
            f"| {100 * r['grading_accuracy']:.2f}% "
            f"| {r['train_cpu_seconds'] / len(h['val_loss']):.0f} |"
        )
    values = {key: [float(r[key]) for r in seeds.values()] for key in SUMMARY_KEYS}
    lines.append(
        f"| mean ± sd | | | | | {_fmt(values['val_accuracy'], True)} "
        f"| {_fmt(values['val_loss'], False)} | **{_fmt(values['test_accuracy'], True)}** "
        f"| {_fmt(values['test_loss'], False)} | {_fmt(values['grading_accuracy'], True)} | |"
    )
    verdicts = {}
    for seed, r in seeds.items():
        history = {k: r["history"][k] for k in ("loss", "val_loss", "val_accuracy")}
        verdicts.setdefault(tr.overfitting_summary(history).verdict, []).append(str(seed))
    verdict_text = "; ".join(
        f"{tr.VERDICTS[v]} ({len(s)} of {n}: seed{'s' if len(s) > 1 else ''} {', '.join(s)})"
        for v, s in verdicts.items()
    )
    gaps = [100 * (r["test_accuracy"] - r["val_accuracy"]) for r in seeds.values()]
    initial = [r["initial_loss"] for r in seeds.values()]
    steps = [r["overfit_steps"] for r in seeds.values() if r["overfit_steps"] is not None]
    lines += [
        "",
        f"Sanity checks (before training, as the notebook runs them): the initial loss on 500 "
        f"training digits was {min(initial):.3f} to {max(initial):.3f} over the seeds (ln 10 = "
        "2.303 for ten equally likely classes); the network reached 100% training accuracy on "
        f"50 digits in {len(steps)} of {n} seeds"
        + (f", after {min(steps)} to {max(steps)} full-batch steps." if steps else ".")
        + f" Validation loss per epoch, by the course's over-fitting rule "
        f"(`cnncourse.training_runs`): {verdict_text}. Test minus validation accuracy, per "
        f"seed: {', '.join(f'{g:+.2f}' for g in gaps)} points. *Grading digits* are the "
        f"autograder's {result['grading_digits']:,} held-out digits (a "
        "subset of the test digits). "
        "*CPU s / epoch* is the CPU time of the training cell (training and validation "
        f"passes) per epoch, with "
        f"{result['threads']} thread(s); wall time was {first['notebook_wall_seconds']:.0f} s "
        "for the whole notebook of the first seed.",
    ]
    load = result.get("load_average_after", [0])[0]
    cpus = int(result["machine"].split(",")[-1].split()[0])
    if load > cpus:
        lines[-1] += (
            f" The machine was shared (load average {load:g} on {cpus} CPUs when the runs "
            "ended), so wall times are inflated; CPU seconds are the better guide."
        )
    figure = f"figures/{Path(result['figure']).name}"  # relative to docs/
    lines += [
        "",
        f"![the numpy CNN's validation accuracy and loss per epoch, one line per seed]({figure})",
        "",
    ]
    return lines


def replace_section(markdown: str, section: list[str]) -> str:
    """``markdown`` with the capstone's section (from its title to the next ``## `` heading,
    the next marker comment of another generated section, or the end) replaced by
    ``section``; appended when the file has none."""
    lines = markdown.splitlines()
    new = "\n".join(section).rstrip("\n")
    if SECTION_TITLE not in lines:
        return markdown.rstrip("\n") + "\n\n" + new + "\n"
    start = lines.index(SECTION_TITLE)
    ends = ("## ", "<!-- ")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(ends)), len(lines))
    after = "\n".join(lines[end:])
    text = "\n".join(lines[:start]).rstrip("\n") + "\n\n" + new + "\n"
    return text + ("\n" + after + "\n" if after else "")


def plot(result: dict, path: Path) -> None:
    """Validation accuracy and loss (and training loss) per epoch, one line per seed, and
    each seed's test accuracy after training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (seed, r) in enumerate(tr.seed_records(result).items()):
        h, colour = r["history"], colours[k % len(colours)]
        epochs = range(1, len(h["val_loss"]) + 1)
        ax_acc.plot(epochs, [100 * a for a in h["val_accuracy"]], "o-", color=colour, ms=4,
                    label=f"seed {seed}: validation")  # fmt: skip
        ax_acc.plot(len(h["val_loss"]) + 0.15, 100 * r["test_accuracy"], "*", color=colour,
                    ms=11, label=f"seed {seed}: test, once")  # fmt: skip
        ax_loss.plot(
            epochs, h["val_loss"], "o-", color=colour, ms=4, label=f"seed {seed}: validation"
        )
        ax_loss.plot(epochs, h["loss"], ":", color=colour, label=f"seed {seed}: training")
    ax_acc.set_ylabel("accuracy (%)")
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_title("validation accuracy after each epoch; test accuracy (star)", fontsize=10)
    ax_loss.set_title("validation loss (solid) and mean training loss (dotted)", fontsize=10)
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"the capstone's numpy CNN on {result['train_digits']:,} MNIST training digits, "
        f"{len(result['seeds'])} seeds (full mode)",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_docs(result: dict) -> None:
    """The figure and the capstone's section of ``docs/reproduction.md``."""
    plot(result, FIGURE)
    section = render_section(result)
    old = REPRODUCTION_MD.read_text("utf-8") if REPRODUCTION_MD.is_file() else ""
    REPRODUCTION_MD.write_text(replace_section(old, section), encoding="utf-8")
    print("\n".join(section))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--epochs", type=int, default=None, help="override EPOCHS (full mode)")
    parser.add_argument(
        "--from-json", action="store_true", help="only re-render the figure and the docs"
    )
    args = parser.parse_args()
    if args.from_json:
        write_docs(json.loads(RESULT.read_text("utf-8")))
        return 0

    command = (
        f"python benchmarks/reproduce_numpy_cnn.py --threads {args.threads} --seeds "
        + " ".join(map(str, args.seeds))
    )
    command += f" --epochs {args.epochs}" if args.epochs else ""
    result: dict = {"seeds": {}}
    for seed in args.seeds:
        start = time.perf_counter()
        report = run_seed(seed, args.threads, args.epochs)
        for key in ("epochs", "batch_size", "learning_rate", "train_digits",
                    "validation_digits", "test_digits", "grading_digits", "threads"):  # fmt: skip
            result[key] = report.pop(key)
        result["seeds"][str(report.pop("seed"))] = report
        summarise(result)
        result.update(
            machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            load_average_after=[round(x, 2) for x in os.getloadavg()],
            date=time.strftime("%Y-%m-%d"),
            command=command,
            figure=str(FIGURE.relative_to(ROOT)),
            complete=len(result["seeds"]) == len(args.seeds),
        )
        RESULT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(
            f"seed {seed}: validation {100 * report['val_accuracy']:.2f}%, test "
            f"{100 * report['test_accuracy']:.2f}% ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    write_docs(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
