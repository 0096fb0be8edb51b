"""Unit tests for cnncourse.network_views (confusion counts, Grad-CAM, saliency) and
cnncourse.training_runs (curves, seeds, reproduction files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnncourse import network_views as nv
from cnncourse import training_runs as tr

# --------------------------------------------------------------------------- mistakes


def test_confusion_matrix_counts():
    y_true = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 2, 2, 0, 0]
    cm = nv.confusion_matrix(y_true, y_pred, n_classes=3)
    expected = np.array([[1, 1, 0], [0, 2, 1], [2, 0, 2]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64 and cm.sum() == len(y_true)
    np.testing.assert_allclose(nv.per_class_accuracy(cm), [0.5, 2 / 3, 0.5])
    assert nv.most_confused_pairs(cm, k=2) == [(2, 0, 2), (0, 1, 1)]
    # ties broken by (true, predicted); zero cells never listed
    assert nv.most_confused_pairs(cm, k=10) == [(2, 0, 2), (0, 1, 1), (1, 2, 1)]


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        nv.confusion_matrix([0, 10], [0, 1], n_classes=10)
    with pytest.raises(ValueError, match="length"):
        nv.confusion_matrix([0, 1], [0], n_classes=10)


def test_per_class_accuracy_empty_class_is_nan():
    cm = nv.confusion_matrix([0, 0], [0, 1], n_classes=3)
    acc = nv.per_class_accuracy(cm)
    assert acc[0] == 0.5 and np.isnan(acc[2])


def test_misclassified_indices_order():
    y_true = np.array([3, 1, 4, 1, 5])
    y_pred = np.array([3, 7, 4, 2, 6])
    np.testing.assert_array_equal(nv.misclassified_indices(y_true, y_pred), [1, 3, 4])
    conf = [0.9, 0.5, 0.99, 0.8, 0.6]
    np.testing.assert_array_equal(nv.misclassified_indices(y_true, y_pred, conf), [3, 4, 1])
    np.testing.assert_array_equal(nv.misclassified_indices(y_true, y_pred, conf, limit=1), [3])


# --------------------------------------------------------------------------- Grad-CAM arithmetic


def _two_quadrant_activations():
    """(1, 4, 4, 2): channel 0 lit in the top-left 2x2, channel 1 in the bottom-right 2x2."""
    a = np.zeros((1, 4, 4, 2))
    a[0, :2, :2, 0] = 1.0
    a[0, 2:, 2:, 1] = 1.0
    return a


def test_grad_cam_weights_channels_by_mean_gradient():
    a = _two_quadrant_activations()
    g = np.zeros_like(a)
    g[..., 0] = 0.25  # the score grows with channel 0 only
    g[..., 1] = -0.5  # and falls with channel 1
    cam = nv.grad_cam_from_activations(a, g)
    assert cam.shape == (1, 4, 4)
    expected = np.zeros((4, 4))
    expected[:2, :2] = 1.0  # normalised to a peak of 1; ReLU removes channel 1's negative part
    np.testing.assert_allclose(cam[0], expected)
    raw = nv.grad_cam_from_activations(a, g, normalize=False)
    np.testing.assert_allclose(raw[0, 0, 0], 0.25)


def test_grad_cam_zero_map_stays_zero():
    a = _two_quadrant_activations()
    cam = nv.grad_cam_from_activations(a, -np.ones_like(a))
    assert np.all(cam == 0) and np.all(np.isfinite(cam))
    with pytest.raises(ValueError):
        nv.grad_cam_from_activations(a, a[..., :1])


def test_upsample_maps():
    flat = np.full((2, 3, 3), 0.7)
    np.testing.assert_allclose(nv.upsample_maps(flat, (28, 28)), 0.7)
    one_hot = np.zeros((1, 2, 2))
    one_hot[0, 0, 0] = 1.0
    up = nv.upsample_maps(one_hot, (8, 8))
    assert up.shape == (1, 8, 8)
    assert up[0, 0, 0] == 1.0 and up[0, -1, -1] == 0.0
    assert up[0, :4, :4].mean() > up[0, 4:, 4:].mean()
    # same size: unchanged
    x = np.random.default_rng(0).random((1, 5, 4))
    np.testing.assert_allclose(nv.upsample_maps(x, (5, 4)), x)
    # receptive-field geometry: 3 cells centred on pixels 8.5, 12.5, 16.5 of a 28-pixel image
    ramp = np.array([[[0.0, 1.0, 2.0]] * 3])  # (1, 3, 3), grows along the columns
    placed = nv.upsample_maps(ramp, (28, 28), centres=(8.5, 4.0))
    np.testing.assert_allclose(placed[0, 0, :9], 0.0)  # left of the first centre: edge value
    np.testing.assert_allclose(placed[0, 0, 19:], 2.0)  # right of the last centre
    np.testing.assert_allclose(placed[0, 5, 10:15], [0.375, 0.625, 0.875, 1.125, 1.375])
    # outside="nan": no value beyond the outermost centres (pixels 9..16 keep theirs)
    masked = nv.upsample_maps(ramp, (28, 28), centres=(8.5, 4.0), outside="nan")
    valid = ~np.isnan(masked[0])
    assert valid.any(axis=1).sum() == 8 and valid.any(axis=0).sum() == 8
    assert valid[9:17, 9:17].all() and not valid[:9].any() and not valid[:, 17:].any()
    np.testing.assert_allclose(masked[0][valid], placed[0][valid])
    with pytest.raises(ValueError, match="outside"):
        nv.upsample_maps(ramp, (28, 28), outside="zero")


def test_map_share_on():
    maps = np.zeros((2, 4, 4))
    maps[0, :2, :2] = 1.0
    maps[1] = 1.0
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :] = True
    np.testing.assert_allclose(nv.map_share_on(maps, masks), [1.0, 0.5])
    assert np.isnan(nv.map_share_on(np.zeros((1, 2, 2)), np.ones((1, 2, 2), bool))[0])
    holes = maps.copy()
    holes[1, 2:, :] = np.nan  # no value in the lower half: only the upper half counts
    np.testing.assert_allclose(nv.map_share_on(holes, masks), [1.0, 1.0])


# --------------------------------------------------------------------------- frameworks


def _quadrant_images():
    """(2, 8, 8, 2): both images have channel 0 in the top-left and channel 1 bottom-right."""
    x = np.zeros((2, 8, 8, 2), np.float32)
    x[:, :4, :4, 0] = 1.0
    x[:, 4:, 4:, 1] = 1.0
    return x


def test_grad_cam_keras_highlights_the_class_region():
    keras = pytest.importorskip("keras")
    # conv = identity on 2 channels; class c's logit = mean of channel c
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(2, 1, use_bias=False, name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    model.get_layer("conv").set_weights([np.eye(2, dtype=np.float32).reshape(1, 1, 2, 2)])
    model.get_layer("out").set_weights([np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
    x = _quadrant_images()
    maps, classes = nv.grad_cam_keras(model, x, "conv", class_indices=[0, 1])
    assert maps.shape == (2, 8, 8)
    np.testing.assert_array_equal(classes, [0, 1])
    assert maps[0, :4, :4].min() == pytest.approx(1.0) and maps[0, 4:, 4:].max() == 0.0
    assert maps[1, 4:, 4:].min() == pytest.approx(1.0) and maps[1, :4, :4].max() == 0.0
    # default class: the predicted one (class 0 when channel 0 holds more ink)
    x2 = x[:1].copy()
    x2[0, 4:6, 4:6, 1] = 0.0
    maps2, classes2 = nv.grad_cam_keras(model, x2, "conv")
    assert classes2.tolist() == [0] and maps2[0, 0, 0] == pytest.approx(1.0)
    outs = nv.keras_layer_outputs(model, x, ["conv"])
    np.testing.assert_allclose(outs["conv"], x, atol=1e-6)


def test_saliency_keras_is_abs_weight_of_linear_model():
    keras = pytest.importorskip("keras")
    w = np.random.default_rng(1).standard_normal((16, 3)).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", use_bias=False),
        ]
    )
    model.layers[-1].set_weights([w])
    x = np.random.default_rng(2).random((2, 4, 4, 1)).astype(np.float32)
    maps, classes = nv.saliency_keras(model, x, class_indices=[2, 0])
    assert maps.shape == (2, 4, 4)
    np.testing.assert_allclose(maps[0], np.abs(w[:, 2]).reshape(4, 4), rtol=1e-5)
    np.testing.assert_allclose(maps[1], np.abs(w[:, 0]).reshape(4, 4), rtol=1e-5)


def test_grad_cam_and_saliency_torch():
    torch = pytest.importorskip("torch")
    from torch import nn

    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(2).reshape(2, 2, 1, 1))
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model.train()
    x = np.moveaxis(_quadrant_images(), -1, 1)  # (2, 2, 8, 8) channels-first
    maps, classes = nv.grad_cam_torch(model, x, model[1], class_indices=[0, 1])
    assert maps.shape == (2, 8, 8) and classes.tolist() == [0, 1]
    assert maps[0, :4, :4].min() == pytest.approx(1.0) and maps[0, 4:, 4:].max() == 0.0
    assert maps[1, 4:, 4:].min() == pytest.approx(1.0) and maps[1, :4, :4].max() == 0.0
    assert model.training, "the model's mode is restored"
    assert all(p.grad is None for p in model.parameters())

    linear = nn.Sequential(nn.Flatten(), nn.Linear(16, 3, bias=False))
    xs = torch.rand(2, 1, 4, 4)
    sal, cls = nv.saliency_torch(linear, xs, class_indices=[1, 2])
    assert sal.shape == (2, 4, 4) and cls.tolist() == [1, 2]
    w = linear[1].weight.detach().numpy()
    np.testing.assert_allclose(sal[0], np.abs(w[1]).reshape(4, 4), rtol=1e-6)
    np.testing.assert_allclose(sal[1], np.abs(w[2]).reshape(4, 4), rtol=1e-6)


# --------------------------------------------------------------------------- curves and files


def _history(val_loss, val_accuracy=None, loss=None):
    n = len(val_loss)
    return {
        "loss": list(loss) if loss is not None else [0.5 / (i + 1) for i in range(n)],
        "accuracy": [0.9] * n,
        "val_loss": list(val_loss),
        "val_accuracy": list(val_accuracy) if val_accuracy is not None else [0.98] * n,
    }


def test_overfitting_summary():
    s = tr.overfitting_summary(
        _history([0.4, 0.25, 0.3, 0.35], [0.9, 0.95, 0.94, 0.93], loss=[0.5, 0.3, 0.2, 0.1])
    )
    assert (s.epochs, s.best_epoch, s.best_val_loss, s.final_val_loss) == (4, 2, 0.25, 0.35)
    assert (s.train_loss_at_best, s.final_train_loss) == (0.3, 0.1)
    assert (s.val_accuracy_at_best, s.final_val_accuracy) == (0.95, 0.93)
    assert s.longest_rise == 2 and s.max_rise == pytest.approx(0.4)
    assert s.sustained_rise and s.overfits and s.verdict == "overfits"
    still = tr.overfitting_summary(_history([0.4, 0.3]))
    assert still.best_epoch == 2 and not still.overfits and still.verdict == "still_falling"
    assert tr.overfitting_summary(_history([0.4])).verdict == "single_epoch"
    with pytest.raises(ValueError):
        tr.overfitting_summary(_history([0.5]) | {"val_loss": []})
    with pytest.raises(ValueError, match="val_accuracy"):
        tr.overfitting_summary({"loss": [0.5], "val_loss": [0.4]})


@pytest.mark.parametrize(
    "val_loss,val_accuracy,verdict",
    [
        # the old rule flagged this (final above the minimum): a 0.8% rise is no rise
        ([0.066, 0.0474, 0.0397, 0.0423, 0.0400], [0.9795, 0.9865, 0.9888, 0.9897, 0.9903],
         "levelled"),
        # above +10% for one epoch only, then back: not sustained
        ([0.05, 0.04, 0.045, 0.043, 0.0401], [0.98] * 5, "levelled"),
        # above +10% for 2 epochs but back within 10% in between: not consecutive
        ([0.05, 0.04, 0.045, 0.043, 0.045, 0.0402], [0.98] * 6, "levelled"),
        # exactly +10% is not above the margin
        ([0.05, 0.04, 0.044, 0.044], [0.98] * 4, "levelled"),
        # sustained rise, accuracy up: over-confidence (lecture 9's classic model, seed 1)
        ([0.05, 0.03, 0.036, 0.037, 0.0372], [0.98, 0.9913, 0.9915, 0.9918, 0.992],
         "over_confident"),
        # sustained rise, accuracy flat: still over-confidence
        ([0.05, 0.03, 0.036, 0.037], [0.98, 0.99, 0.991, 0.99], "over_confident"),
        # sustained rise, accuracy down by less than the 0.2-point noise floor: over-confidence
        ([0.05, 0.03, 0.036, 0.037], [0.98, 0.99, 0.991, 0.9899], "over_confident"),
        # sustained rise and accuracy down by more than the floor: over-fits
        ([0.05, 0.03, 0.036, 0.037], [0.98, 0.99, 0.991, 0.987], "overfits"),
        # a sustained rise that ends in a new minimum is no verdict of over-fitting
        ([0.05, 0.03, 0.04, 0.04, 0.02], [0.9, 0.91, 0.9, 0.9, 0.92], "still_falling"),
    ],
)  # fmt: skip
def test_overfitting_rule_needs_a_sustained_rise(val_loss, val_accuracy, verdict):
    s = tr.overfitting_summary(_history(val_loss, val_accuracy))
    assert s.verdict == verdict
    assert s.overfits == (verdict == "overfits")
    assert verdict in tr.VERDICTS


def test_overfitting_sentence_branches():
    over = tr.overfitting_sentence(
        _history([0.4, 0.3, 0.35, 0.36], [0.9, 0.95, 0.94, 0.93], loss=[0.5, 0.3, 0.2, 0.1]), "X"
    )
    assert over.startswith("For X,") and "epoch 2 of 4 (0.3000, validation accuracy 95.00%)" in over
    assert "over-fits after epoch 2" in over and "0.3600" in over and "93.00%" in over
    assert "for up to 2 epochs in a row" in over and "0.1000" in over
    confident = tr.overfitting_sentence(
        _history([0.4, 0.3, 0.35, 0.36], [0.9, 0.95, 0.95, 0.96]), "W"
    )
    assert "over-confidence, not over-fitting" in confident and "96.00%" in confident
    assert "over-fits" not in confident
    rising = tr.overfitting_sentence(_history([0.4, 0.3]), "Y")
    assert "still falling" in rising and "over-fits" not in rising
    flat = tr.overfitting_sentence(_history([0.4, 0.3, 0.31], [0.9, 0.95, 0.96]), "Z")
    assert "levelled off" in flat and "+3%" in flat and "over-fits" not in flat
    assert "not over-fitting by the course's rule" in flat
    single = tr.overfitting_sentence(_history([0.4]), "the short run")
    assert single.startswith("The short run was trained for a single epoch")


def _seed(test_accuracy, es_epoch, es_accuracy, val_loss, val_accuracy=None):
    return {
        "test_accuracy": test_accuracy,
        "test_loss": 0.03,
        "test_errors": [1, 2],
        "early_stopped": {"epoch": es_epoch, "test_accuracy": es_accuracy, "test_loss": 0.03},
        "seconds_per_epoch": 10.0,
        "peak_rss_mb": 900.0,
        "history": _history(val_loss, val_accuracy),
    }


def _run(seeds=None):
    seeds = seeds or {
        "1": _seed(0.990, 2, 0.990, [0.1, 0.05]),
        "2": _seed(0.992, 2, 0.992, [0.1, 0.05]),
    }
    return {
        "title": "run",
        "epochs": 2,
        "parameters": 10,
        "lecture_accuracy": 0.9908,
        "seeds": seeds,
    }


def test_seed_values_and_mean_sd():
    run = _run({"10": _seed(0.99, 1, 0.98, [0.1, 0.2]), "2": _seed(0.98, 2, 0.98, [0.2, 0.1])})
    assert list(tr.seed_records(run)) == [2, 10]  # numeric order, not "10" < "2"
    np.testing.assert_allclose(tr.seed_values(run, "test_accuracy"), [0.98, 0.99])
    np.testing.assert_allclose(tr.seed_values(run, "early_stopped.epoch"), [2, 1])
    mean, sd = tr.mean_sd([0.98, 0.99, 1.0])
    assert mean == pytest.approx(0.99) and sd == pytest.approx(0.01)  # sample sd (ddof=1)
    assert tr.mean_sd([0.5]) == (0.5, 0.0)
    assert tr.format_mean_sd([0.98, 0.99, 1.0], percent=True) == "99.00% ± 1.00 (n = 3)"
    assert tr.format_mean_sd([0.03, 0.05]) == "0.0400 ± 0.0141 (n = 2)"
    assert tr.format_per_seed([0.9812, 0.99], percent=True) == "98.12%, 99.00%"
    with pytest.raises(ValueError):
        tr.mean_sd([])


def test_seeds_sentence_counts_verdicts_and_early_stopping():
    run = _run(
        {
            "1": _seed(0.990, 2, 0.991, [0.1, 0.03, 0.04, 0.04], [0.9, 0.99, 0.98, 0.98]),
            "2": _seed(0.992, 4, 0.992, [0.1, 0.05, 0.04, 0.03]),
            "3": _seed(0.991, 2, 0.990, [0.1, 0.03, 0.031, 0.032]),
        }
    )
    text = tr.seeds_sentence(run, "the model")
    assert "lowest after epoch 2 (seed 1), 4 (seed 2) and 2 (seed 3) of 4" in text
    assert "over-fits: validation loss up and validation accuracy down (1 of 3: seed 1)" in text
    assert "still falling at the end (1 of 3: seed 2)" in text
    assert "levelled off: no sustained rise of the validation loss (1 of 3: seed 3)" in text
    assert "99.10% ± 0.10 (n = 3)" in text and "+0.10, +0.00, -0.10 points" in text
    assert "better on 1, worse on 1 and the same on 1 of 3 seeds" in text
    final = tr.seeds_sentence(_run(), "the model")
    assert "early-stopped checkpoint is the final model" in final


def test_compare_sentence_claims_only_what_every_seed_shows():
    a = _run({"1": _seed(0.990, 2, 0.99, [0.1, 0.05]), "2": _seed(0.991, 2, 0.99, [0.1, 0.05])})
    b = _run({"1": _seed(0.993, 2, 0.99, [0.1, 0.05]), "2": _seed(0.992, 2, 0.99, [0.1, 0.05])})
    text = tr.compare_sentence(a, b, "cropped", "classic")
    assert "+0.30, +0.10 points (mean +0.20)" in text and "ahead on 2 of 2 seeds" in text
    assert "support a lead for classic" in text and "0.10 to 0.30 points" in text
    mixed = _run({"1": _seed(0.989, 2, 0.99, [0.1, 0.05]), "2": _seed(0.993, 2, 0.99, [0.1, 0.05])})
    assert "do not support a winner" in tr.compare_sentence(a, mixed, "cropped", "classic")
    with pytest.raises(ValueError, match="same seeds"):
        tr.compare_sentence(a, _run({"7": _seed(0.99, 2, 0.99, [0.1, 0.05])}), "a", "b")


def test_load_reproduction_and_find_upwards(tmp_path):
    lectures = tmp_path / "lectures"
    lectures.mkdir()
    assert tr.find_upwards("no-such-folder/reproduction.json", start=lectures) is None
    path = tmp_path / "docs" / "reproduction.json"
    path.parent.mkdir()
    data = {
        "data": "full",
        "machine": "x",
        "threads": 2,
        "wall_seconds": 1.0,
        "seeds": [1, 2],
        "runs": {"keras_cnn": _run()},
    }
    path.write_text(json.dumps(data))
    assert tr.find_upwards("docs/reproduction.json", start=lectures) == path
    assert tr.load_reproduction(path)["runs"]["keras_cnn"]["epochs"] == 2
    assert tr.load_reproduction(tmp_path / "missing.json") is None
    del data["runs"]["keras_cnn"]["seeds"]["2"]["history"]["val_loss"]
    del data["runs"]["keras_cnn"]["seeds"]["1"]["early_stopped"]["epoch"]
    del data["threads"]
    path.write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match="threads.*seeds.1.early_stopped.epoch.*seeds.2.history.val_loss"
    ):
        tr.load_reproduction(path)


def test_figures_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = nv.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], n_classes=3)
    fig = nv.plot_confusion_matrix(cm, title="cm")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1", "0", "0", "0", "0", "1", "0", "1", "1"]
    imgs = np.random.default_rng(0).random((3, 6, 6))
    fig2 = nv.show_misclassified(imgs, [1, 2, 3], [4, 5, 6], [0.9, 0.8, 0.7])
    assert "pred 4 / true 1" in fig2.axes[0].get_title()
    fig3 = nv.show_layer_maps(imgs[0], {"a": np.ones((4, 4, 3))}, n_channels=4)
    assert len(fig3.axes) == 8
    fig3b = nv.show_layer_maps(
        imgs[0], {"a": np.ones((4, 4, 3))}, vectors={"probs": np.ones(10) / 10}, n_channels=4
    )
    assert len(fig3b.axes) == 9 and fig3b.axes[-1].get_title(loc="left") == "probs: 10 values"
    holes = imgs.copy()
    holes[:, 0, :] = np.nan  # no value on the top row: drawn transparent
    fig4 = nv.show_heatmaps(imgs, {"cam": holes}, titles=["a", "b", "c"])
    assert len(fig4.axes) == 7  # 2 rows of 3 panels and the heat row's colour bar
    assert fig4.axes[-1].get_ylabel() == "map / its max"
    overlay = fig4.axes[3].get_images()[1]
    assert overlay.get_clim() == (0.0, 1.0) and np.ma.is_masked(overlay.get_array())
    plt.close("all")


def test_gap_model_and_reported_figures():
    pytest.importorskip("keras")
    from cnncourse import architecture as arch
    from cnncourse.models import LECTURE_REPORTED, build_lecture_cnn_gap_keras

    model = build_lecture_cnn_gap_keras(seed=0)
    spec = arch.LECTURE_CNN[:5] + (("global_avg_pool",),) + arch.LECTURE_CNN[6:]
    rows = arch.sequential_summary((28, 28, 1), spec)
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [r.shape for r in rows]
    assert [layer.count_params() for layer in model.layers] == [r.params for r in rows]
    assert model.count_params() == arch.total_params(rows) == 60_554
    assert model.get_layer("gap").output.shape[1:] == (64,)
    assert set(LECTURE_REPORTED) == {"keras_cnn", "cropped", "classic"}
    assert LECTURE_REPORTED["classic"]["accuracy"] > LECTURE_REPORTED["cropped"]["accuracy"]


def test_plots_use_whole_epochs_and_true_scale():
    """cnncourse.plots: one epoch gets one integer tick; crops are drawn at true scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnncourse.plots import plot_history, show_before_after

    fig = plot_history({"run": {"loss": [0.5], "val_loss": [0.4]}})
    assert list(fig.axes[0].get_xticks()) == [1.0]
    fig = plot_history({"run": {"loss": list(np.linspace(1, 0.1, 25))}})
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())
    digit, crop = np.ones((28, 28)), np.ones((18, 18))
    fig = show_before_after({"a": digit, "b": crop}, true_scale=True, offsets={"b": (5, 5)})
    for ax in fig.axes:  # both panels span the 28x28 frame: the crop is not zoomed
        assert ax.get_xlim() == (-1.0, 28.0) and ax.get_ylim() == (28.0, -1.0)
    assert fig.axes[1].get_images()[0].get_extent() == [4.5, 22.5, 22.5, 4.5]
    plt.close("all")
