"""Fast checks of assignments 3-5: the model-checking helpers and the reference solutions.

* ``cnncourse.grading_models``: a model with a missing or an extra layer fails, the right one
  passes, parameter counts of Keras models and PyTorch modules, batched evaluation;
* the reference solutions of the function-only cells of the three source notebooks (their
  code is executed from ``solutions/``) against independent references (Keras' own layers,
  brute force);
* the nbgrader metadata of the three notebooks.

Notebook executions and autograding of the fixtures are covered by the generic fixture test.
"""

from __future__ import annotations

import json
import numbers
import os
from pathlib import Path

import numpy as np
import pytest

from autograder.fixtures import run_solution_cells
from cnncourse.testing import CheckError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "03_keras_mnist": ROOT / "solutions" / "03_keras_mnist" / "03_keras_mnist.ipynb",
    "04_pytorch_mnist": ROOT / "solutions" / "04_pytorch_mnist" / "04_pytorch_mnist.ipynb",
    "05_cropping": ROOT / "solutions" / "05_cropping" / "05_cropping.ipynb",
}
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")

pytestmark = pytest.mark.xdist_group("tensorflow")  # one TensorFlow import per worker


def _cells(assignment: str) -> list[dict]:
    return json.loads(NOTEBOOKS[assignment].read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def run_solutions(assignment: str, *grade_ids: str, namespace: dict | None = None) -> dict:
    """Execute solution cells in a fresh namespace (plus ``namespace``); returns it."""
    ns: dict = {"np": np, "numbers": numbers}
    ns.update(namespace or {})
    return run_solution_cells(assignment, f"{assignment}.ipynb", ns, grade_ids)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def keras_mod():
    keras = pytest.importorskip("keras")
    return keras


@pytest.fixture(scope="module")
def lecture_layers(keras_mod):
    """The lecture CNN's layer list (a function, so that each model gets new layers)."""
    layers = keras_mod.layers

    def make(skip_third_conv: bool = False, extra_dense: bool = False):
        stack = [
            keras_mod.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
        ]
        if not skip_third_conv:
            stack.append(layers.Conv2D(64, 3, activation="relu"))
        stack += [layers.Flatten(), layers.Dense(64, activation="relu")]
        if extra_dense:
            stack.append(layers.Dense(64, activation="relu"))
        stack.append(layers.Dense(10, activation="softmax"))
        return keras_mod.Sequential(stack)

    return make


def expected_lecture():
    from cnncourse.grading_models import LayerSpec

    conv = {"kernel_size": (3, 3), "activation": "relu"}
    return [
        LayerSpec("Conv2D", (26, 26, 32), 320, {"filters": 32, **conv}),
        LayerSpec("MaxPooling2D", (13, 13, 32), 0, {"pool_size": (2, 2)}),
        LayerSpec("Conv2D", (11, 11, 64), 18_496, {"filters": 64, **conv}),
        LayerSpec("MaxPooling2D", (5, 5, 64), 0, {"pool_size": (2, 2)}),
        LayerSpec("Conv2D", (3, 3, 64), 36_928, {"filters": 64, **conv}),
        LayerSpec("Flatten", (576,), 0),
        LayerSpec("Dense", (64,), 36_928, {"units": 64, "activation": "relu"}),
        LayerSpec("Dense", (10,), 650, {"units": 10, "activation": "softmax"}),
    ]


# ------------------------------------------------------------- grading_models: Keras
@pytest.mark.parametrize("parts", [("types", "config"), ("shapes",), ("params",)])
def test_correct_keras_model_passes(lecture_layers, parts):
    from cnncourse.grading_models import check_keras_architecture

    check_keras_architecture(lecture_layers(), expected_lecture(), parts=parts)
    check_keras_architecture(lecture_layers(), expected_lecture(), total_params=93_322)


@pytest.mark.parametrize("parts", [("types",), ("shapes",), ("params",)])
def test_missing_layer_fails(lecture_layers, parts):
    from cnncourse.grading_models import check_keras_architecture

    with pytest.raises(CheckError, match="parameters|layers"):
        check_keras_architecture(
            lecture_layers(skip_third_conv=True), expected_lecture(), parts=parts
        )


@pytest.mark.parametrize("parts", [("types",), ("shapes",), ("params",)])
def test_extra_layer_fails(lecture_layers, parts):
    from cnncourse.grading_models import check_keras_architecture

    with pytest.raises(CheckError, match="parameters|layers"):
        check_keras_architecture(lecture_layers(extra_dense=True), expected_lecture(), parts=parts)


def test_missing_layer_message_names_it(lecture_layers):
    from cnncourse.grading_models import check_keras_architecture

    with pytest.raises(CheckError, match=r"7 layers, expected 8 \(missing 1 x Conv2D\)"):
        check_keras_architecture(
            lecture_layers(skip_third_conv=True), expected_lecture(), parts=("types",)
        )


def test_expected_list_longer_than_model_fails(lecture_layers):
    """The model is a prefix-compatible match of a longer list: must fail, not zip-and-pass."""
    from cnncourse.grading_models import LayerSpec, check_keras_architecture

    longer = [*expected_lecture(), LayerSpec("Dense", (10,), 110)]
    with pytest.raises(CheckError, match="8 layers, expected 9"):
        check_keras_architecture(lecture_layers(), longer, parts=("types",))


def test_wrong_settings_fail(keras_mod):
    from cnncourse.grading_models import LayerSpec, check_keras_architecture

    layers = keras_mod.layers
    model = keras_mod.Sequential(
        [keras_mod.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="tanh"), layers.Flatten()]
    )
    expected = [
        LayerSpec("Conv2D", (26, 26, 32), 320, {"filters": 32, "activation": "relu"}),
        LayerSpec("Flatten", (26 * 26 * 32,), 0),
    ]
    check_keras_architecture(model, expected, parts=("types", "shapes", "params"))
    with pytest.raises(CheckError, match="activation='tanh'"):
        check_keras_architecture(model, expected, parts=("config",))


def test_wrong_shape_fails(keras_mod):
    from cnncourse.grading_models import LayerSpec, check_keras_architecture

    layers = keras_mod.layers
    model = keras_mod.Sequential(
        [keras_mod.Input((28, 28, 1)), layers.Conv2D(8, 3, padding="same")]
    )
    with pytest.raises(CheckError, match=r"outputs shape \(28, 28, 8\)"):
        check_keras_architecture(model, [LayerSpec("Conv2D", (26, 26, 8), 80)], parts=("shapes",))


def test_params_ignore_layers_without_weights(keras_mod):
    """A model without its Dropout layers keeps the parameter points, loses the layer list."""
    from cnncourse.grading_models import LayerSpec, check_keras_architecture

    layers = keras_mod.layers
    expected = [
        LayerSpec("Conv2D", (26, 26, 4), 40),
        LayerSpec("Dropout", (26, 26, 4), 0, {"rate": 0.25}),
        LayerSpec("Flatten", (2704,), 0),
    ]
    model = keras_mod.Sequential(
        [keras_mod.Input((28, 28, 1)), layers.Conv2D(4, 3), layers.Flatten()]
    )
    check_keras_architecture(model, expected, parts=("params",))
    for parts in (("types",), ("shapes",)):
        with pytest.raises(CheckError, match="missing 1 x Dropout"):
            check_keras_architecture(model, expected, parts=parts)


def test_unknown_part_is_a_programming_error(lecture_layers):
    from cnncourse.grading_models import check_keras_architecture

    with pytest.raises(ValueError):
        check_keras_architecture(lecture_layers(), expected_lecture(), parts=("shape",))


def test_not_a_model_fails():
    from cnncourse.grading_models import check_keras_architecture

    with pytest.raises(CheckError, match="keras.Model"):
        check_keras_architecture("not a model", expected_lecture())


def test_check_compiled(keras_mod):
    from cnncourse.grading_models import check_compiled

    model = keras_mod.Sequential([keras_mod.Input((4,)), keras_mod.layers.Dense(10)])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    check_compiled(model, "RMSprop", "categorical_crossentropy")
    with pytest.raises(CheckError, match="optimizer"):
        check_compiled(model, "Adam", "categorical_crossentropy")
    model.compile(optimizer="rmsprop", loss=keras_mod.losses.CategoricalCrossentropy())
    check_compiled(model, "RMSprop", "categorical_crossentropy")
    model.compile(optimizer="rmsprop", loss="mse")
    with pytest.raises(CheckError, match="loss"):
        check_compiled(model, "RMSprop", "categorical_crossentropy")


# ------------------------------------------------------------- grading_models: PyTorch
@pytest.fixture(scope="module")
def torch_solutions():
    torch = pytest.importorskip("torch")
    from torch import nn
    from tqdm import tqdm

    return run_solutions(
        "04_pytorch_mnist",
        "lecture_cnn_solution",
        "train_solution",
        "evaluate_solution",
        "copy_weights_solution",
        namespace={"torch": torch, "nn": nn, "tqdm": tqdm},
    )


def test_torch_param_count(torch_solutions):
    from cnncourse.grading_models import check_torch_module, count_torch_params, torch_layer_kinds

    net = torch_solutions["LectureCNN"]()
    assert count_torch_params(net) == 93_322
    assert torch_layer_kinds(net) == ["Conv2d", "Conv2d", "Conv2d", "Linear", "Linear"]
    check_torch_module(net, (3, 1, 28, 28), (3, 10), 93_322, ["Conv2d"] * 3 + ["Linear"] * 2)


def test_torch_checks_fail(torch_solutions):
    import torch
    from torch import nn

    from cnncourse.grading_models import check_torch_module

    net = torch_solutions["LectureCNN"]()
    with pytest.raises(CheckError, match="93,322 trainable parameters, expected 93,000"):
        check_torch_module(net, (2, 1, 28, 28), n_params=93_000)
    with pytest.raises(CheckError, match=r"returns shape \(2, 10\), expected \(2, 11\)"):
        check_torch_module(net, (2, 1, 28, 28), output_shape=(2, 11))
    with pytest.raises(CheckError, match="5 layers, expected 4"):
        check_torch_module(net, (2, 1, 28, 28), layer_kinds=["Conv2d"] * 2 + ["Linear"] * 2)
    with pytest.raises(CheckError, match="torch.nn.Module"):
        check_torch_module(object(), (2, 1, 28, 28), n_params=1)
    # The train/eval mode is restored.
    small = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 2))
    small.train()
    check_torch_module(small, (3, 1, 2, 2), output_shape=(3, 2))
    assert small.training
    assert isinstance(small(torch.zeros(1, 1, 2, 2)), torch.Tensor)


def test_evaluate_accuracy_batches_torch():
    torch = pytest.importorskip("torch")
    from torch import nn

    from cnncourse.grading_models import evaluate_accuracy

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.batches, self.grad = [], []

        def forward(self, x):
            self.batches.append(x.shape[0])
            self.grad.append(torch.is_grad_enabled())
            # "Predicts" the first feature as the class: index 0 or 1.
            flat = x.flatten(1)
            return torch.stack([1 - flat[:, 0], flat[:, 0]], dim=1)

    x = np.zeros((25, 1, 2, 2), dtype=np.float32)
    x[::2, 0, 0, 0] = 1.0  # 13 examples of class 1
    y = (np.arange(25) % 2 == 0).astype(np.int64)
    rec = Recorder()
    assert evaluate_accuracy(rec, x, y, batch_size=10) == 1.0
    assert rec.batches == [10, 10, 5] and not any(rec.grad)
    assert evaluate_accuracy(rec, x, 1 - y, batch_size=7) == 0.0
    one_hot = np.eye(2)[y]
    assert evaluate_accuracy(rec, x, one_hot) == 1.0
    with pytest.raises(ValueError):
        evaluate_accuracy(rec, x, y[:3])


def test_evaluate_accuracy_keras(keras_mod):
    from cnncourse.grading_models import evaluate_accuracy

    model = keras_mod.Sequential([keras_mod.Input((3,)), keras_mod.layers.Dense(2)])
    model.set_weights([np.array([[1.0, -1.0], [0, 0], [0, 0]], dtype=np.float32), np.zeros(2)])
    x = np.array([[1, 0, 0], [-1, 0, 0], [2, 0, 0]], dtype=np.float32)
    assert evaluate_accuracy(model, x, np.array([0, 1, 0]), batch_size=2) == 1.0
    assert evaluate_accuracy(model, x, np.array([1, 1, 0])) == pytest.approx(2 / 3)


# ------------------------------------------------------------- reference solutions
def test_a3_reference_functions(keras_mod):
    ns = run_solutions(
        "03_keras_mnist",
        "conv_output_size_solution",
        "conv_param_count_solution",
        "receptive_field_solution",
    )
    size, count, field = ns["conv_output_size"], ns["conv_param_count"], ns["receptive_field"]
    assert [size(28, 3, 0, 1), size(26, 2, 0, 2), size(11, 2, 0, 2), size(7, 3, 0, 2)] == [
        26,
        13,
        5,
        3,
    ]
    rng = np.random.default_rng(0)
    for _ in range(30):
        n, pad, stride = int(rng.integers(3, 40)), int(rng.integers(0, 3)), int(rng.integers(1, 4))
        f = int(rng.integers(1, min(n + 2 * pad, 7) + 1))
        assert size(n, f, pad, stride) == len(range(0, n + 2 * pad - f + 1, stride))
    assert [count(3, 1, 32), count(3, 32, 64), count(3, 64, 64)] == [320, 18_496, 36_928]
    layer = keras_mod.layers.Conv2D(7, 5)
    layer.build((None, 9, 9, 3))
    assert count(5, 3, 7) == layer.count_params()
    conv3, pool2 = (3, 1), (2, 2)
    assert field([conv3, pool2, conv3, pool2, conv3]) == 18
    assert field([conv3, conv3, conv3]) == 7
    assert field([]) == 1
    # The lecture's coverage figures.
    assert round(100 * 18 * 18 / 784, 1) == 41.3 and 100 * 7 * 7 / 784 == 6.25


def test_a3_reference_model(keras_mod):
    from cnncourse.grading_models import check_keras_architecture

    ns = run_solutions(
        "03_keras_mnist",
        "build_model_solution",
        "compile_model_solution",
        namespace={"keras": keras_mod, "layers": keras_mod.layers},
    )
    model = ns["build_model"]()
    check_keras_architecture(model, expected_lecture(), total_params=93_322)
    ns["compile_model"](model)
    from cnncourse.grading_models import check_compiled

    check_compiled(model, "RMSprop", "categorical_crossentropy")


def test_a4_copy_weights_matches_keras(keras_mod, torch_solutions, lecture_layers):
    """Reference copy gives the same logits; skipping the flatten permutation does not."""
    import torch

    from cnncourse.grading_models import predict_batched

    keras_mod.utils.set_random_seed(5)
    kmodel = lecture_layers()
    rng = np.random.default_rng(5)
    kmodel.set_weights(
        [(rng.standard_normal(w.shape) * 0.2).astype(np.float32) for w in kmodel.get_weights()]
    )
    net = torch_solutions["LectureCNN"]()
    torch_solutions["copy_keras_weights_to_torch"](kmodel, net)
    x = rng.random((6, 28, 28, 1), dtype=np.float64).astype(np.float32)
    keras_probs = predict_batched(kmodel, x)
    torch_logits = predict_batched(net, x.transpose(0, 3, 1, 2))
    torch_probs = torch.softmax(torch.from_numpy(torch_logits), dim=1).numpy()
    np.testing.assert_allclose(torch_probs, keras_probs, atol=1e-5, rtol=0)
    # The same copy without the permutation of fc1's inputs gives other outputs.
    kernel = kmodel.layers[-2].get_weights()[0]
    with torch.no_grad():
        net.fc1.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
    wrong = torch.softmax(torch.from_numpy(predict_batched(net, x.transpose(0, 3, 1, 2))), dim=1)
    assert np.abs(wrong.numpy() - keras_probs).max() > 1e-3


def test_a4_train_and_evaluate_reference(torch_solutions):
    import torch

    torch.manual_seed(0)
    net = torch_solutions["LectureCNN"]()
    rng = np.random.default_rng(1)
    x = rng.random((40, 1, 28, 28), dtype=np.float64).astype(np.float32)
    y = rng.integers(0, 10, 40).astype(np.int64)
    losses = torch_solutions["train"](net, x, y, num_epochs=2, batch_size=16, learning_rate=1e-3)
    assert len(losses) == 2 and all(np.isfinite(losses))
    accuracy = torch_solutions["evaluate"](net, x, y, batch_size=16)
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0


def test_a5_cropping_output_shape_matches_keras(keras_mod):
    ns = run_solutions("05_cropping", "cropping_output_shape_solution")
    shape_fn = ns["cropping_output_shape"]
    rng = np.random.default_rng(3)
    for _ in range(30):
        shape = tuple(
            int(v) for v in (rng.integers(6, 30), rng.integers(6, 30), rng.integers(1, 5))
        )
        form = int(rng.integers(0, 3))
        if form == 0:
            crop = int(rng.integers(0, 3))
        elif form == 1:
            crop = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        else:
            crop = (
                (int(rng.integers(0, 3)), int(rng.integers(0, 3))),
                (1, int(rng.integers(0, 3))),
            )
        want = keras_mod.layers.Cropping2D(crop).compute_output_shape((None, *shape))[1:]
        assert shape_fn(shape, crop) == tuple(want)
    assert shape_fn((28, 28, 1), ((5, 5), (5, 5))) == (18, 18, 1)


def test_a5_reference_models(keras_mod):
    from cnncourse.grading_models import LayerSpec, check_keras_architecture, keras_layer_table

    ns = run_solutions(
        "05_cropping",
        "feature_map_cropper_solution",
        "cropped_classifier_solution",
        "classic_classifier_solution",
        namespace={"keras": keras_mod, "layers": keras_mod.layers},
    )
    cropper = keras_layer_table(ns["build_feature_map_cropper"]())
    assert [(s.kind, s.output_shape, s.params) for s in cropper] == [
        ("Conv2D", (16, 16, 32), 320),
        ("Cropping2D", (12, 12, 32), 0),
    ]
    assert ns["build_cropped_classifier"]().count_params() == 169_098
    assert ns["build_classic_classifier"]().count_params() == 431_242
    cropped = keras_layer_table(ns["build_cropped_classifier"]())
    assert cropped[0].output_shape == (18, 18, 1)
    classic = keras_layer_table(ns["build_classic_classifier"]())
    assert [s.kind for s in cropped][1:] == [s.kind for s in classic]
    # The table of one model describes another built the same way (names aside).
    specs = [LayerSpec(s.kind, s.output_shape, s.params) for s in cropped]
    check_keras_architecture(ns["build_cropped_classifier"](), specs)


# ------------------------------------------------------------- notebook metadata
@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_notebook_metadata(assignment):
    nb = json.loads(NOTEBOOKS[assignment].read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    ids = []
    points = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta:
            continue
        ids.append(meta["grade_id"])
        src = _source(cell)
        if meta["grade"]:
            assert meta["locked"] and not meta["solution"] and meta["points"] > 0
            assert "### BEGIN HIDDEN TESTS" in src and "### END HIDDEN TESTS" in src
            points += meta["points"]
        elif meta["solution"]:
            assert not meta["locked"]
            assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION") >= 1
        else:
            assert meta["locked"]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    assert points == {"03_keras_mnist": 12, "04_pytorch_mnist": 8, "05_cropping": 14}[assignment]
