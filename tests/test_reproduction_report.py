"""The write-up of `make reproduce`: goals judged from the runs, sentences computed from the
histories, the capstone's section from numpy_cnn.json (benchmarks/reproduction_report.py)."""

from __future__ import annotations

import pytest

from benchmarks import reproduction_report as report


def _run(title, accuracy, lecture=None, val_loss=(0.05, 0.04, 0.03), loss=(0.2, 0.1, 0.05)):
    return {
        "title": title,
        "optimizer": "adam",
        "batch_size": 250,
        "epochs": len(val_loss),
        "training_digits": 48_000,
        "validation_digits": 12_000,
        "test_digits": 10_000,
        "parameters": 1000,
        "test_accuracy": accuracy,
        "test_loss": 0.03,
        "seconds_per_epoch": 4.0,
        "peak_rss_mb": 900.0,
        "lecture_accuracy": lecture,
        "lecture_loss": None,
        "history": {
            "loss": list(loss),
            "val_loss": list(val_loss),
            "accuracy": [0.9] * len(loss),
            "val_accuracy": [0.99] * len(loss),
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


def test_curve_notes_name_over_fitting():
    run = _run(
        "classic", 0.99, 0.99, val_loss=(0.05, 0.03, 0.035, 0.04, 0.045), loss=(5, 4, 3, 2, 1)
    )
    (note,) = report.curve_notes({"classic": run})
    assert "lowest after epoch 2 of 5" in note
    assert "50% above its minimum" in note and "stopping near epoch 2" in note
    (calm,) = report.curve_notes({"c": _run("c", 0.99)})
    assert "no clear over-fitting" in calm


NUMPY_CNN = {
    "epochs": 2,
    "batch_size": 64,
    "learning_rate": 0.2,
    "train_digits": 60000,
    "test_digits": 10000,
    "test_accuracy": [0.971, 0.9786],
    "epoch_loss": [0.2186, 0.0615],
    "grading_accuracy": 0.9775,
    "seconds_per_epoch": 100.4,
    "cpu_seconds_per_epoch": 61.2,
    "machine": "x86_64, 2 CPUs",
    "load_average_after": [5.23, 6.29, 6.56],
    "date": "2026-12-01",
    "command": "python benchmarks/reproduce_numpy_cnn.py --threads 2",
    "figure": "docs/figures/numpy_cnn_curve.png",
}


def test_numpy_cnn_section():
    text = "\n".join(report.render_numpy_cnn(NUMPY_CNN))
    assert "97.10%, 97.86%" in text and "**97.86%**" in text and "97.75%" in text
    assert "0.219 to 0.061" in text
    assert "load average 5.23 on 2 CPUs" in text
    assert "(figures/numpy_cnn_curve.png)" in text
    assert report.render_numpy_cnn(None) == []
    idle = {**NUMPY_CNN, "load_average_after": [0.5, 0.5, 0.5]}
    assert "shared" not in "\n".join(report.render_numpy_cnn(idle))


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
        "seed": 1,
    }
    text = report.render_markdown(full, NUMPY_CNN)
    for heading in ("## Goals", "## Training curves", "## Your numpy CNN learns MNIST"):
        assert heading in text
    assert "**99.27%**" in text and "**no**" not in text
