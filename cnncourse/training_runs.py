"""How a training run went, over one or several seeds: the course's one over-fitting rule.

Used by lectures 7-9, the capstone's reproduction and ``benchmarks/reproduction_report.py``
(pure numpy and the standard library; no framework):

* :func:`overfitting_summary`, :func:`overfitting_sentence` - where the validation loss of
  a training history stopped falling, and the course's one over-fitting rule
  (:data:`OVERFIT_MARGIN`, :data:`OVERFIT_EPOCHS`, :data:`OVERFIT_ACCURACY_DROP`), in numbers
  and in words;
* :func:`seed_values`, :func:`format_mean_sd`, :func:`seeds_sentence`,
  :func:`compare_sentence` - a run trained on several seeds: mean ± sd, per-seed values,
  verdicts and the early-stopped checkpoint;
* :func:`find_upwards`, :func:`load_reproduction` - the reproduction's results
  (``docs/reproduction.json``) found from a notebook's folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Keys each run of ``docs/reproduction.json`` holds (see ``benchmarks/reproduce_training.py``).
RUN_KEYS = ("title", "epochs", "parameters", "lecture_accuracy", "seeds")
#: Keys of each seed's record of a run (one training of that configuration).
SEED_KEYS = (
    "test_accuracy",
    "test_loss",
    "test_errors",
    "early_stopped",
    "seconds_per_epoch",
    "peak_rss_mb",
    "history",
)
#: The early-stopped checkpoint (weights of the lowest-validation-loss epoch) on the test set.
EARLY_STOPPED_KEYS = ("epoch", "test_accuracy", "test_loss")
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
REPRODUCTION_JSON = "docs/reproduction.json"
TRAINING_CURVES_PNG = "docs/figures/training_curves.png"

# --------------------------------------------------------------------------- training curves

#: The course's one rule for "over-fits" (lectures 7-9 and ``docs/reproduction.md`` use it):
#: after the epoch of lowest validation loss, the validation loss stays more than
#: ``OVERFIT_MARGIN`` above that minimum for at least ``OVERFIT_EPOCHS`` epochs in a row, *and*
#: the last epoch's validation accuracy is more than ``OVERFIT_ACCURACY_DROP`` below the
#: accuracy at the lowest-loss epoch. A sustained rise of the loss while the accuracy holds or
#: rises is over-confidence (a few digits' probabilities moving away from their true class),
#: not over-fitting.
OVERFIT_MARGIN = 0.10
OVERFIT_EPOCHS = 2
#: 0.2 points: about two standard errors of an accuracy near 99% measured on the lectures'
#: 6,000 to 12,000 validation digits; a smaller drop is what a re-run moves anyway.
OVERFIT_ACCURACY_DROP = 0.002

#: What each verdict of :attr:`OverfittingSummary.verdict` means, in words.
VERDICTS = {
    "single_epoch": "one epoch only: no curve to judge",
    "still_falling": "validation loss still falling at the end",
    "levelled": "levelled off: no sustained rise of the validation loss",
    "over_confident": "validation loss up, validation accuracy not down: over-confidence",
    "overfits": "over-fits: validation loss up and validation accuracy down",
}


@dataclass(frozen=True)
class OverfittingSummary:
    """Where a run's validation loss bottomed out and what came after (epochs from 1)."""

    epochs: int
    best_epoch: int  # epoch with the lowest validation loss
    best_val_loss: float
    final_val_loss: float
    train_loss_at_best: float
    final_train_loss: float
    val_accuracy_at_best: float  # validation accuracy at best_epoch
    final_val_accuracy: float
    longest_rise: int  # most consecutive epochs after best_epoch above (1 + margin) * minimum
    max_rise: float  # largest val_loss / minimum - 1 after best_epoch (0 when none)

    @property
    def sustained_rise(self) -> bool:
        """Validation loss above ``(1 + OVERFIT_MARGIN)`` x its minimum for at least
        ``OVERFIT_EPOCHS`` consecutive epochs after the minimum."""
        return self.longest_rise >= OVERFIT_EPOCHS

    @property
    def final_rise(self) -> float:
        """The last epoch's validation loss relative to the minimum, minus 1."""
        return self.final_val_loss / self.best_val_loss - 1

    @property
    def verdict(self) -> str:
        """One of the keys of :data:`VERDICTS`, by the course's rule."""
        if self.epochs == 1:
            return "single_epoch"
        if self.best_epoch == self.epochs:
            return "still_falling"
        if not self.sustained_rise:
            return "levelled"
        if self.final_val_accuracy < self.val_accuracy_at_best - OVERFIT_ACCURACY_DROP:
            return "overfits"
        return "over_confident"

    @property
    def overfits(self) -> bool:
        """The course's rule: a sustained rise of the validation loss *and* a lower
        validation accuracy at the end than at the lowest-loss epoch."""
        return self.verdict == "overfits"


def overfitting_summary(
    history: Mapping[str, Sequence[float]], margin: float = OVERFIT_MARGIN
) -> OverfittingSummary:
    """Summarise a Keras-style history (``loss``, ``val_loss``, ``val_accuracy`` per epoch).

    ``margin``: how far above its minimum the validation loss must stay to count as a rise.
    """
    if "val_accuracy" not in history:
        raise ValueError("history needs val_accuracy: the rule reads accuracy next to loss")
    loss = [float(v) for v in history["loss"]]
    val = [float(v) for v in history["val_loss"]]
    val_acc = [float(v) for v in history["val_accuracy"]]
    if not loss or not len(loss) == len(val) == len(val_acc):
        raise ValueError("history needs loss, val_loss and val_accuracy of one non-zero length")
    best = int(np.argmin(val))
    longest = current = 0
    for value in val[best + 1 :]:
        current = current + 1 if value > (1 + margin) * val[best] else 0
        longest = max(longest, current)
    return OverfittingSummary(
        epochs=len(loss),
        best_epoch=best + 1,
        best_val_loss=val[best],
        final_val_loss=val[-1],
        train_loss_at_best=loss[best],
        final_train_loss=loss[-1],
        val_accuracy_at_best=val_acc[best],
        final_val_accuracy=val_acc[-1],
        longest_rise=longest,
        max_rise=max([v / val[best] - 1 for v in val[best + 1 :]], default=0.0),
    )


#: The rule in words, for sentences such as "by the course's rule ({RULE_TEXT})".
RULE_TEXT = (
    f"over-fitting needs the validation loss to stay more than {OVERFIT_MARGIN:.0%} above its "
    f"minimum for at least {OVERFIT_EPOCHS} epochs in a row *and* the validation accuracy to "
    f"end more than {OVERFIT_ACCURACY_DROP * 100:.1f} points below its value at that minimum"
)


def overfitting_sentence(history: Mapping[str, Sequence[float]], label: str) -> str:
    """Two or three sentences, with the numbers of ``history``, on whether and when to stop.

    ``label`` names the run (e.g. ``"the lecture CNN"``). The text quotes the epoch of lowest
    validation loss, the validation accuracy next to the loss, and the verdict of the course's
    rule (:attr:`OverfittingSummary.verdict`).
    """
    s = overfitting_summary(history)
    if s.verdict == "single_epoch":
        return (
            f"{label[:1].upper()}{label[1:]} was trained for a single epoch (validation loss "
            f"{s.best_val_loss:.4f}, validation accuracy {s.final_val_accuracy:.2%}), so "
            f"there is no curve yet to tell when to stop."
        )
    text = (
        f"For {label}, the validation loss was lowest after epoch {s.best_epoch} of {s.epochs} "
        f"({s.best_val_loss:.4f}, validation accuracy {s.val_accuracy_at_best:.2%})"
    )
    if s.verdict == "still_falling":
        return text + (
            ": it was still falling at the end, so the network had not begun to over-fit and "
            "a few more epochs could still help."
        )
    text += (
        f"; at the end it was {s.final_val_loss:.4f} ({100 * s.final_rise:+.0f}%) with "
        f"validation accuracy {s.final_val_accuracy:.2%}"
    )
    if s.verdict == "levelled":
        return text + (
            f". It never stayed more than {OVERFIT_MARGIN:.0%} above its minimum for "
            f"{OVERFIT_EPOCHS} epochs in a row: the curve has levelled off, which is not "
            f"over-fitting by the course's rule ({RULE_TEXT})."
        )
    trend = "fell" if s.final_train_loss < s.train_loss_at_best else "went"
    text += (
        f". After the minimum it stayed more than {OVERFIT_MARGIN:.0%} above it for up to "
        f"{s.longest_rise} epochs in a row (at most {100 * s.max_rise:+.0f}%), while the "
        f"training loss {trend} from {s.train_loss_at_best:.4f} to {s.final_train_loss:.4f}"
    )
    if s.verdict == "over_confident":
        return text + (
            ", but the validation accuracy did not fall: at least as many unseen digits are "
            "right at the end as at the minimum. A higher loss with the same or a better "
            "accuracy means that some digits' probabilities moved away from their true class "
            "(cross-entropy punishes a confident mistake without bound): over-confidence, not "
            "over-fitting by the course's rule."
        )
    return text + (
        f", and the validation accuracy fell. By the course's rule ({RULE_TEXT}), the network "
        f"over-fits after epoch {s.best_epoch}; the checkpoint of that epoch (early stopping "
        f"on the validation loss) is the one to compare on the test digits."
    )


# --------------------------------------------------------------------------- several seeds


def seed_records(run: Mapping[str, Any]) -> dict[int, dict]:
    """The per-seed results of one run of ``docs/reproduction.json``, by integer seed."""
    return {int(seed): record for seed, record in sorted(run["seeds"].items(), key=_seed_key)}


def _seed_key(item: tuple[str, Any]) -> int:
    return int(item[0])


def seed_values(run: Mapping[str, Any], key: str) -> np.ndarray:
    """One value per seed (in seed order): ``key`` is a field of a seed's record, or
    ``"early_stopped.<field>"`` for the early-stopped checkpoint's."""
    out = []
    for record in seed_records(run).values():
        value: Any = record
        for part in key.split("."):
            value = value[part]
        out.append(float(value))
    return np.array(out)


def mean_sd(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0.0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def format_mean_sd(values: Sequence[float] | np.ndarray, percent: bool = False) -> str:
    """``"99.03% ± 0.05 (n = 3)"`` for accuracies (``percent``), ``"0.0306 ± 0.0012 (n = 3)"``
    for losses; the ± is the sample standard deviation over the values (seeds)."""
    mean, sd = mean_sd(values)
    n = len(values)
    if percent:
        return f"{100 * mean:.2f}% ± {100 * sd:.2f} (n = {n})"
    return f"{mean:.4f} ± {sd:.4f} (n = {n})"


def format_per_seed(values: Sequence[float] | np.ndarray, percent: bool = False) -> str:
    """``"98.99%, 99.10%, 99.05%"``: the values themselves, in seed order."""
    return ", ".join(f"{100 * v:.2f}%" if percent else f"{v:.4f}" for v in values)


def seed_verdicts(run: Mapping[str, Any]) -> dict[int, OverfittingSummary]:
    """The over-fitting summary of every seed's history (same rule as one run)."""
    return {seed: overfitting_summary(r["history"]) for seed, r in seed_records(run).items()}


def seeds_sentence(run: Mapping[str, Any], label: str) -> str:
    """What the seeds of one run say about over-fitting and early stopping, in words.

    Counts the verdicts of the course's rule over the seeds and compares the early-stopped
    checkpoint (the weights of the lowest-validation-loss epoch) with the last epoch's
    weights on the test digits, seed by seed.
    """
    summaries = seed_verdicts(run)
    n = len(summaries)
    counts: dict[str, list[int]] = {}
    for seed, s in summaries.items():
        counts.setdefault(s.verdict, []).append(seed)
    verdicts = "; ".join(
        f"{VERDICTS[v]} ({len(seeds)} of {n}: seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))})"
        for v, seeds in counts.items()
    )
    best = [f"{s.best_epoch} (seed {seed})" for seed, s in summaries.items()]
    best_epochs = best[0] if n == 1 else ", ".join(best[:-1]) + " and " + best[-1]
    epochs = next(iter(summaries.values())).epochs
    final = seed_values(run, "test_accuracy")
    stopped = seed_values(run, "early_stopped.test_accuracy")
    diff = 100 * (stopped - final)
    better, worse = int(np.sum(diff > 1e-9)), int(np.sum(diff < -1e-9))
    same = n - better - worse
    text = (
        f"Over {n} seed{'s' if n > 1 else ''}, the validation loss of {label} was lowest "
        f"after epoch {best_epochs} of {epochs}. By the course's rule: {verdicts}. "
    )
    if all(s.best_epoch == s.epochs for s in summaries.values()):
        return text + (
            "Every seed's lowest validation loss came at the last epoch, so the early-stopped "
            "checkpoint is the final model."
        )
    return text + (
        f"On the test digits the early-stopped checkpoint (the weights of that epoch) scored "
        f"{format_mean_sd(stopped, percent=True)} against {format_mean_sd(final, percent=True)} "
        f"for the last epoch's weights (per seed, checkpoint minus last: "
        f"{', '.join(f'{d:+.2f}' for d in diff)} points): better on {better}, worse on "
        f"{worse} and the same on {same} of {n} seeds"
        + (
            f" (one test digit is {100 / run['test_digits']:.2f} points)."
            if "test_digits" in run
            else "."
        )
    )


def compare_sentence(
    run_a: Mapping[str, Any], run_b: Mapping[str, Any], label_a: str, label_b: str
) -> str:
    """What the seeds support about ``label_b`` versus ``label_a`` (test accuracy), in words.

    Quotes mean ± sd of both, the per-seed differences (``b - a`` with the same seed) and how
    many seeds put ``b`` ahead; claims a lead only when every seed agrees on its sign, and then
    only its observed range.
    """
    a, b = seed_values(run_a, "test_accuracy"), seed_values(run_b, "test_accuracy")
    seeds = [s for s in seed_records(run_a) if s in seed_records(run_b)]
    if len(seeds) != len(a) or len(seeds) != len(b):
        raise ValueError("the two runs need the same seeds")
    diff = 100 * (b - a)
    n = len(diff)
    ahead = int(np.sum(diff > 0))
    text = (
        f"Test accuracy over {n} seed{'s' if n > 1 else ''}: {label_a} "
        f"{format_mean_sd(a, percent=True)} (per seed {format_per_seed(a, percent=True)}), "
        f"{label_b} {format_mean_sd(b, percent=True)} (per seed "
        f"{format_per_seed(b, percent=True)}). With the same seed, {label_b} minus {label_a} "
        f"was {', '.join(f'{d:+.2f}' for d in diff)} points (mean {diff.mean():+.2f}); "
        f"{label_b} was ahead on {ahead} of {n} seeds. "
    )
    if n < 2:
        return text + "One seed cannot separate a difference from run-to-run noise."
    if ahead in (0, n):
        leader = label_b if ahead == n else label_a
        return text + (
            f"Every seed puts {leader} ahead, by {np.abs(diff).min():.2f} to "
            f"{np.abs(diff).max():.2f} points: the seeds support a lead for {leader}, but "
            f"{n} seeds cannot pin down its size."
        )
    return text + (
        "The sign changes from seed to seed: the seeds do not support a winner; the "
        "difference is of the size of the run-to-run spread."
    )


# --------------------------------------------------------------------------- reproduction files


def find_upwards(relative: str | Path, start: str | Path | None = None) -> Path | None:
    """The first ``<folder>/<relative>`` that exists, walking up from ``start`` (default: cwd).

    A lecture runs in ``lectures/``, so ``find_upwards("docs/reproduction.json")`` finds the
    repository's copy however the notebook was opened.
    """
    folder = Path(start if start is not None else os.getcwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / relative
        if path.exists():
            return path
    return None


def load_reproduction(path: str | Path | None = None) -> dict | None:
    """The full-length reproduction's results, or None when they have not been produced.

    Args:
        path: the JSON file; default: ``docs/reproduction.json`` found by :func:`find_upwards`.

    Raises:
        ValueError: when the file exists but lacks a key of the schema
            ``{"data", "machine", "threads", "wall_seconds", "seeds", "runs": {NAME: {RUN_KEYS,
            "seeds": {SEED: {SEED_KEYS, "history": {HISTORY_KEYS}}}}}}``.
    """
    path = Path(path) if path is not None else find_upwards(REPRODUCTION_JSON)
    if path is None or not path.is_file():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    top = ("data", "machine", "threads", "wall_seconds", "seeds", "runs")
    missing = [k for k in top if k not in result]
    for name, run in result.get("runs", {}).items():
        missing += [f"runs.{name}.{k}" for k in RUN_KEYS if k not in run]
        for seed, record in run.get("seeds", {}).items():
            where = f"runs.{name}.seeds.{seed}"
            missing += [f"{where}.{k}" for k in SEED_KEYS if k not in record]
            missing += [f"{where}.early_stopped.{k}" for k in EARLY_STOPPED_KEYS
                        if k not in record.get("early_stopped", {})]  # fmt: skip
            missing += [
                f"{where}.history.{k}" for k in HISTORY_KEYS if k not in record.get("history", {})
            ]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    return result
