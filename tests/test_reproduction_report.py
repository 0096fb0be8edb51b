"""The write-up of `make reproduce`: goals judged from the runs, sentences computed from the
histories on every seed (benchmarks/reproduction_report.py)."""

from __future__ import annotations

import pytest

from benchmarks import reproduction_report as report
from cnncourse import training_runs as tr


def _seed(accuracy, val_loss, val_accuracy, loss, es_epoch=None, es_accuracy=None):
    best = min(range(len(val_loss)), key=val_loss.__getitem__) + 1
    return {
        "test_accuracy": accuracy,
        "test_loss": 0.03,
        "test_errors": [3, 5],
        "early_stopped": {
            "epoch": es_epoch or best,
            "test_accuracy": es_accuracy if es_accuracy is not None else accuracy,
            "test_loss": 0.031,
            "test_errors": [3],
        },
        "seconds_per_epoch": 4.0,
        "peak_rss_mb": 900.0,
        "load_average": [0.5, 0.6],
        "history": {
            "loss": list(loss),
            "val_loss": list(val_loss),
            "accuracy": [0.9] * len(loss),
            "val_accuracy": list(val_accuracy),
        },
    }


def _run(title, accuracy, lecture=None, val_loss=(0.05, 0.04, 0.03), loss=(0.2, 0.1, 0.05),
         val_accuracy=None, spread=(0.0, 0.0002, -0.0002)):  # fmt: skip
    """A run trained on 3 seeds whose test accuracies average ``accuracy``."""
    val_accuracy = val_accuracy or [0.99] * len(loss)
    return {
        "title": title,
        "framework": "keras",
        "optimizer": "adam",
        "batch_size": 250,
        "epochs": len(val_loss),
        "training_digits": 48_000,
        "validation_digits": 12_000,
        "test_digits": 10_000,
        "parameters": 1000,
        "lecture_accuracy": lecture,
        "lecture_loss": None,
        "seeds": {
            str(seed): _seed(accuracy + d, val_loss, val_accuracy, loss)
            for seed, d in zip((1, 2, 3), spread, strict=True)
        },
    }


def _runs(keras=0.9899, torch=0.9903, cropped=0.9900, classic=0.9927):
    return {
        "keras_cnn": _run("lecture CNN, Keras", keras, 0.9908),
        "torch_cnn": _run("lecture CNN, PyTorch", torch),
        "cropped": _run("cropped", cropped, 0.9905),
        "classic": _run("classic", classic, 0.9927),
    }


def test_goals_met():
    results = report.goals(_runs())
    assert [met for _, met, _ in results] == [True] * 5
    assert results[0][2] == "-0.09 points"
    assert results[4][2] == "PyTorch +0.04 points"


@pytest.mark.parametrize(
    "change,failed",
    [
        ({"keras": 0.9880}, 0),  # 0.28 points below the lecture
        ({"cropped": 0.9930}, 3),  # cropped ahead of classic
        ({"torch": 0.9864}, 4),  # 0.35 points from Keras
    ],
)
def test_goals_not_met(change, failed):
    results = report.goals(_runs(**change))
    assert [i for i, (_, met, _) in enumerate(results) if not met] == [failed]


def test_goals_of_runs_not_made():
    runs = _runs()
    del runs["classic"]
    results = report.goals(runs)
    assert results[2][1] is None and results[3][1] is None and results[2][2] == "not run"


def test_goals_use_the_means_and_count_seeds():
    runs = _runs(cropped=0.9920, classic=0.9922)
    runs["classic"]["seeds"]["3"]["test_accuracy"] = 0.9910  # behind cropped on seed 3
    goal, met, measured = report.goals(runs)[3]
    assert met is False and measured == "classic -0.01 points, ahead on 2 of 3 seeds"


def test_curve_notes_use_the_course_rule_on_every_seed():
    run = _run(
        "classic",
        0.99,
        0.99,
        val_loss=(0.05, 0.03, 0.035, 0.04, 0.045),
        loss=(5, 4, 3, 2, 1),
        val_accuracy=[0.98, 0.991, 0.992, 0.993, 0.993],
    )
    (note,) = report.curve_notes({"classic": run})
    assert "lowest after epoch 2 (seed 1), 2 (seed 2) and 2 (seed 3) of 5" in note
    assert "validation loss up, validation accuracy not down: over-confidence" in note
    assert "(3 of 3: seeds 1, 2, 3)" in note
    run["seeds"]["1"]["history"]["val_accuracy"][-1] = 0.985  # accuracy falls: over-fits
    (note,) = report.curve_notes({"classic": run})
    assert "over-fits: validation loss up and validation accuracy down (1 of 3: seed 1)" in note
    (calm,) = report.curve_notes({"c": _run("c", 0.99)})
    assert "still falling at the end (3 of 3" in calm
    assert "early-stopped checkpoint is the final model" in calm


def test_summary_has_mean_sd_and_verdicts():
    run = _run("c", 0.99)
    run["seeds"]["2"]["early_stopped"]["test_accuracy"] = 0.995
    summary = report.summarise(run)
    assert summary["test_accuracy"]["mean"] == pytest.approx(0.99)
    assert summary["test_accuracy"]["sd"] == pytest.approx(0.0002)
    assert summary["test_accuracy"]["n"] == 3
    assert summary["early_stopped_test_accuracy"]["max"] == 0.995
    assert summary["verdicts"] == {"1": "still_falling", "2": "still_falling", "3": "still_falling"}


def test_figure_draws_every_seed(tmp_path):
    runs = _runs()
    runs["keras_cnn"] = _run("one epoch", 0.98, val_loss=(0.05,), loss=(0.2,))
    path = tmp_path / "figures" / "curves.png"
    report.plot_curves(runs, path, "smoke test")
    assert path.stat().st_size > 10_000


def test_markdown_has_every_section(tmp_path):
    full = {
        "runs": _runs(),
        "note": "",
        "command": "python benchmarks/reproduce_training.py",
        "date": "2026-12-01 20:00",
        "wall_seconds": 700.0,
        "data": "MNIST",
        "machine": "2 CPUs",
        "threads": 2,
        "load_average": {"before": 0.1, "after": 2.0},
        "software": "Python",
        "seeds": [1, 2, 3],
    }
    capstone = ["## Your numpy CNN learns MNIST (assignment 2's capstone)", "", "its table"]
    text = report.render_markdown(full, capstone)
    for heading in (
        "### Per seed",
        "## Goals",
        "## Cropped vs classic (lecture 9)",
        "## Keras vs PyTorch (lectures 7 and 8)",
        "## Training curves and over-fitting",
        "## Your numpy CNN learns MNIST",
    ):
        assert heading in text
    assert "**99.27% ± 0.02 (n=3)**" in text and "**no**" not in text
    assert "12 trainings (4 runs x 3 seeds: 1, 2, 3" in text
    assert "| classic | 2 | 99.29% | 0.0300 | 3 of 3 | 99.29% | 0.0310 |" in text
    assert tr.RULE_TEXT in text
    assert text.rstrip().endswith("its table")  # the capstone's section comes last, as given
