"""Fast checks of assignments 3-5: the model-checking helpers, the checks' specs and the
reference solutions.

* ``cnncourse.grading_models``: a model with a missing or an extra layer fails, the right one
  passes, parameter counts of Keras models and PyTorch modules, batched evaluation; the
  layer table read from a model's JSON config agrees with Keras on many random models;
* ``cnncourse.checks.keras_models`` and ``torch_models``: their references (the numpy forward
  pass of the lecture CNN, the Keras-to-PyTorch weight mapping) agree with the frameworks, the
  layer lists with the
  notebooks', the registry with the test cells; the adapters hand back plain data and the
  grader's side decides without importing a framework;
* the reference solutions of the function-only cells of the three source notebooks (their
  code is executed from ``solutions/``) against independent references (Keras' own layers,
  brute force);
* the nbgrader metadata of the three notebooks.

Notebook executions and autograding of the fixtures are covered by the generic fixture test.
"""

from __future__ import annotations

import contextlib
import io
import json
import numbers
import os
import re
from pathlib import Path

import numpy as np
import pytest

from autograder.fixtures import run_solution_cells
from cnncourse.checks.registry import all_specs
from cnncourse.testing import CheckError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "03_keras_mnist": ROOT / "solutions" / "03_keras_mnist" / "03_keras_mnist.ipynb",
    "04_pytorch_mnist": ROOT / "solutions" / "04_pytorch_mnist" / "04_pytorch_mnist.ipynb",
    "05_cropping": ROOT / "solutions" / "05_cropping" / "05_cropping.ipynb",
}
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")

# (pytest --dist loadscope keeps this module on one worker: one TensorFlow import)


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


def check_keras_architecture(model, expected, parts=None, total_params=None):
    """A built model's table (Keras' own) against ``expected`` (see check_layer_table)."""
    from cnncourse.grading_models import KERAS_PARTS, check_layer_table, keras_layer_table

    table = keras_layer_table(model)
    check_layer_table(table, expected, parts or KERAS_PARTS, total_params, model.count_params())


# ------------------------------------------------------------- grading_models: Keras
@pytest.mark.parametrize("parts", [("types", "config"), ("shapes",), ("params",)])
def test_correct_keras_model_passes(lecture_layers, parts):
    check_keras_architecture(lecture_layers(), expected_lecture(), parts=parts)
    check_keras_architecture(lecture_layers(), expected_lecture(), total_params=93_322)


@pytest.mark.parametrize("parts", [("types",), ("shapes",), ("params",)])
def test_missing_layer_fails(lecture_layers, parts):
    with pytest.raises(CheckError, match="parameters|layers"):
        check_keras_architecture(
            lecture_layers(skip_third_conv=True), expected_lecture(), parts=parts
        )


@pytest.mark.parametrize("parts", [("types",), ("shapes",), ("params",)])
def test_extra_layer_fails(lecture_layers, parts):
    with pytest.raises(CheckError, match="parameters|layers"):
        check_keras_architecture(lecture_layers(extra_dense=True), expected_lecture(), parts=parts)


def test_missing_layer_message_names_it(lecture_layers):
    with pytest.raises(
        CheckError, match=r"^layer 4 is Flatten, expected Conv2D \(missing 1 x Conv2D\)"
    ):
        check_keras_architecture(
            lecture_layers(skip_third_conv=True), expected_lecture(), parts=("types",)
        )


def test_expected_list_longer_than_model_fails(lecture_layers):
    """The model is a prefix-compatible match of a longer list: must fail, not zip-and-pass."""
    from cnncourse.grading_models import LayerSpec

    longer = [*expected_lecture(), LayerSpec("Dense", (10,), 110)]
    with pytest.raises(CheckError, match="8 layers, expected 9"):
        check_keras_architecture(lecture_layers(), longer, parts=("types",))


def test_wrong_settings_fail(keras_mod):
    from cnncourse.grading_models import LayerSpec

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
    from cnncourse.grading_models import LayerSpec

    layers = keras_mod.layers
    model = keras_mod.Sequential(
        [keras_mod.Input((28, 28, 1)), layers.Conv2D(8, 3, padding="same")]
    )
    with pytest.raises(CheckError, match=r"outputs shape \(28, 28, 8\)"):
        check_keras_architecture(model, [LayerSpec("Conv2D", (26, 26, 8), 80)], parts=("shapes",))


def test_params_ignore_layers_without_weights(keras_mod):
    """A model without its Dropout layers keeps the parameter points, loses the layer list."""
    from cnncourse.grading_models import LayerSpec

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
    with pytest.raises(ValueError):
        check_keras_architecture(lecture_layers(), expected_lecture(), parts=("shape",))


def test_not_a_model_fails():
    with pytest.raises(CheckError, match="keras.Model"):
        check_keras_architecture("not a model", expected_lecture())


def test_compile_model_spec(keras_mod):
    """RMSprop, categorical cross-entropy (by name or as a Loss object) and an accuracy
    metric pass; anything else fails with a message that says what is wrong."""
    from cnncourse.checks import verify

    losses = keras_mod.losses
    good = [
        dict(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"]),
        dict(
            optimizer=keras_mod.optimizers.RMSprop(),
            loss=losses.CategoricalCrossentropy(),
            metrics=[keras_mod.metrics.CategoricalAccuracy()],
        ),
    ]
    bad = [
        (dict(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"]), "Adam"),
        (dict(optimizer="rmsprop", loss="mse", metrics=["accuracy"]), "the loss is 'mse'"),
        (dict(optimizer="rmsprop", loss="categorical_crossentropy"), "add the accuracy"),
        (None, "did not compile the model"),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        for settings in good:
            verify("compile_model", lambda m, k=settings: m.compile(**k), seed=1)
    for settings, words in bad:
        function = (lambda m: None) if settings is None else (lambda m, k=settings: m.compile(**k))
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(CheckError, match=words):
            verify("compile_model", function, seed=1)


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


def test_lecture_cnn_specs(torch_solutions):
    """The reference LectureCNN passes; a module with other names, kinds or shapes fails
    with a message naming the first difference."""
    from torch import nn

    from cnncourse.checks import verify

    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.Sequential(nn.Conv2d(1, 32, 3))

    class Wider(torch_solutions["LectureCNN"]):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(576, 65)

    class Bilinear(torch_solutions["LectureCNN"]):
        def __init__(self):
            super().__init__()
            self.extra = nn.Bilinear(2, 2, 1)

    with contextlib.redirect_stdout(io.StringIO()):
        verify("lecture_cnn_params", torch_solutions["LectureCNN"], seed=1)
    for module, words in [
        (Renamed, "it has no parameter conv1.weight"),
        (Wider, "fc1.weight has shape (65, 576), expected (64, 576)"),
        (Bilinear, "parameters the lecture network does not: extra.weight"),
    ]:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            pytest.raises(CheckError, match=re.escape(words)),
        ):
            verify("lecture_cnn_params", module, seed=1)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(CheckError, match="cannot load"):
        verify("lecture_cnn_forward", Wider, seed=1)


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
    ns = run_solutions(
        "03_keras_mnist",
        "build_model_solution",
        "compile_model_solution",
        namespace={"keras": keras_mod, "layers": keras_mod.layers},
    )
    model = ns["build_model"]()
    check_keras_architecture(model, expected_lecture(), total_params=93_322)
    ns["compile_model"](model)
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model.loss == "categorical_crossentropy"


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
    from cnncourse.grading_models import LayerSpec, keras_layer_table

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
def test_points(assignment):
    """The total of the test cells' points (the rules every source notebook follows are
    checked in tests/test_notebook_metadata.py)."""
    nb = json.loads(NOTEBOOKS[assignment].read_text(encoding="utf-8"))
    points = sum(
        meta["points"]
        for cell in nb["cells"]
        if (meta := cell.get("metadata", {}).get("nbgrader")) and meta["grade"]
    )
    assert points == {"03_keras_mnist": 12, "04_pytorch_mnist": 8, "05_cropping": 14}[assignment]


# ------------------------------------------------- the layer table read from a config
def _random_stack(keras_mod, rng) -> list:
    """A random channels-last Sequential stack over the layer kinds the config reader knows."""
    layers = keras_mod.layers
    stack = [keras_mod.Input((int(rng.integers(12, 30)), int(rng.integers(12, 30)), 3))]
    for _ in range(int(rng.integers(1, 5))):
        kind = int(rng.integers(0, 9))
        padding = ["valid", "same"][int(rng.integers(0, 2))]
        if kind == 0:
            stack.append(
                layers.Conv2D(
                    int(rng.integers(1, 5)) * 2,
                    (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                    strides=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                    padding=padding,
                    use_bias=bool(rng.integers(0, 2)),
                )
            )
        elif kind == 1:
            stack.append(layers.Conv2D(4, 3, dilation_rate=2, padding=padding))
        elif kind == 2:
            pool = [layers.MaxPooling2D, layers.AveragePooling2D][int(rng.integers(0, 2))]
            stack.append(
                pool(int(rng.integers(1, 4)), strides=int(rng.integers(1, 3)), padding=padding)
            )
        elif kind == 3:
            stack.append(
                layers.Cropping2D(((1, int(rng.integers(0, 3))), (int(rng.integers(0, 3)), 2)))
            )
        elif kind == 4:
            stack.append(layers.ZeroPadding2D((int(rng.integers(0, 3)), 1)))
        elif kind == 5:
            stack.append(layers.BatchNormalization(scale=bool(rng.integers(0, 2))))
        elif kind == 6:
            stack.append(layers.UpSampling2D((2, 1)))
        elif kind == 7:
            stack.append(layers.Dense(int(rng.integers(1, 9))))  # on the last axis
        else:
            stack += [layers.Dropout(0.3), layers.Activation("tanh"), layers.ReLU()]
    ending = int(rng.integers(0, 3))
    if ending == 0:
        stack.append(layers.GlobalAveragePooling2D(keepdims=bool(rng.integers(0, 2))))
    elif ending == 1:
        stack.append(layers.GlobalMaxPooling2D())
    stack += [layers.Flatten(), layers.Dense(int(rng.integers(2, 12)), activation="softmax")]
    return stack


def test_layer_table_from_config_agrees_with_keras(keras_mod, lecture_layers):
    """Kinds, output shapes, parameter counts and settings computed from the JSON config alone
    are those Keras gives for the built model: the course's models and random stacks."""
    from cnncourse.checks import keras_models, torch_models  # noqa: F401
    from cnncourse.grading_models import keras_layer_table, layer_table_from_config
    from cnncourse.models import build_classic_classifier_keras, build_cropped_classifier_keras

    models = [
        lecture_layers(),
        lecture_layers(skip_third_conv=True),
        build_cropped_classifier_keras(compile_model=False),
        build_classic_classifier_keras(compile_model=False),
    ]
    rng = np.random.default_rng(7)
    for _ in range(25):
        models.append(keras_mod.Sequential(_random_stack(keras_mod, rng)))
    for model in models:
        want = keras_layer_table(model)
        got = layer_table_from_config(model.to_json())
        assert [(s.kind, s.output_shape, s.params) for s in got] == [
            (s.kind, s.output_shape, s.params) for s in want
        ], model.to_json()
        assert [s.config for s in got] == [s.config for s in want]
        assert sum(s.params for s in got) == model.count_params()
    # the checks' own layer lists describe the models the course builds
    for built, expected in [
        (models[0], keras_models.lecture_cnn_layers()),
        (models[2], keras_models.cropped_classifier_layers()),
        (models[3], keras_models.classic_classifier_layers()),
    ]:
        table = layer_table_from_config(built.to_json())
        from cnncourse.grading_models import check_layer_table

        check_layer_table(table, expected)


def test_config_reader_refuses_what_it_cannot_read(keras_mod):
    import json

    from cnncourse.grading_models import layer_table_from_config, model_config_from_json

    layers = keras_mod.layers
    with pytest.raises(CheckError, match="not valid JSON"):
        model_config_from_json(b"{not json")
    with pytest.raises(CheckError, match="over 1,000,000"):
        model_config_from_json("x" * 1_000_001)
    inputs = keras_mod.Input((8, 8, 1))
    functional = keras_mod.Model(inputs, layers.Flatten()(inputs))
    with pytest.raises(CheckError, match="is a Functional, expected a keras.Sequential"):
        model_config_from_json(functional.to_json())
    odd = keras_mod.Sequential([keras_mod.Input((8, 8, 1)), layers.LayerNormalization()])
    with pytest.raises(CheckError, match="layer 0 is LayerNormalization, a kind the checks"):
        layer_table_from_config(odd.to_json())
    too_small = json.loads(
        keras_mod.Sequential([keras_mod.Input((8, 8, 1)), layers.Conv2D(2, 3)]).to_json()
    )
    too_small["config"]["layers"][0]["config"]["batch_shape"] = [None, 2, 2, 1]
    with pytest.raises(CheckError, match=r"layer 0 \(Conv2D\) would output shape \(0, 0, 2\)"):
        layer_table_from_config(json.dumps(too_small))
    too_small["config"]["layers"][1]["config"]["padding"] = "full"
    with pytest.raises(CheckError, match="neither 'valid' nor 'same'"):
        layer_table_from_config(json.dumps(too_small))
    del too_small["config"]["layers"][0]
    too_small["config"].pop("build_input_shape", None)
    with pytest.raises(CheckError, match="keras.Input"):
        layer_table_from_config(json.dumps(too_small))


def _notebook_cell(assignment: str, grade_id: str) -> str:
    cell = next(
        c
        for c in _cells(assignment)
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
    )
    return _source(cell)


def test_notebook_layer_lists_agree_with_the_checks():
    """The lists the notebooks show students are those the checks use (the checks also
    compare strides and padding, which the notebooks' lists leave out)."""
    from cnncourse.checks import keras_models, torch_models  # noqa: F401
    from cnncourse.grading_models import LayerSpec

    ns: dict = {"LayerSpec": LayerSpec}
    exec(_notebook_cell("03_keras_mnist", "expected_architecture"), ns)  # noqa: S102
    with contextlib.redirect_stdout(io.StringIO()):
        exec(_notebook_cell("05_cropping", "expected_architectures"), ns)  # noqa: S102
    pairs = [
        (ns["EXPECTED_LAYERS"], keras_models.lecture_cnn_layers()),
        (ns["EXPECTED_CROPPED"], keras_models.cropped_classifier_layers()),
        (ns["EXPECTED_CLASSIC"], keras_models.classic_classifier_layers()),
    ]
    for shown, checked in pairs:
        assert [(s.kind, s.output_shape, s.params) for s in shown] == [
            (s.kind, s.output_shape, s.params) for s in checked
        ]
        for a, b in zip(shown, checked, strict=True):
            assert dict(a.config).items() <= dict(b.config).items(), (a, b)
    assert sum(s.params for s in ns["EXPECTED_LAYERS"]) == ns["EXPECTED_TOTAL_PARAMS"]
    assert all_specs()["build_model_params"].total_params == ns["EXPECTED_TOTAL_PARAMS"]
    assert all_specs()["cropped_classifier_params"].total_params == sum(
        s.params for s in ns["EXPECTED_CROPPED"]
    )
    assert all_specs()["classic_classifier_params"].total_params == sum(
        s.params for s in ns["EXPECTED_CLASSIC"]
    )


# -------------------------------------------------------- the checks' references
def test_numpy_forward_pass_is_the_lecture_cnn(keras_mod, lecture_layers):
    """torch_models.lecture_cnn_logits equals cnncourse.models.LectureCNNTorch in float64, and
    keras_to_torch_state maps a Keras lecture CNN to the same function."""
    torch = pytest.importorskip("torch")

    from cnncourse.checks import keras_models, torch_models  # noqa: F401
    from cnncourse.grading_models import predict_batched
    from cnncourse.models import LectureCNNTorch

    rng = np.random.default_rng(11)
    state = torch_models.random_torch_state(rng)
    x = rng.random((5, 1, 28, 28), dtype=np.float32)
    net = LectureCNNTorch().double()
    where = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6"}
    where |= {"fc1": "classifier.1", "fc2": "classifier.3"}
    net.load_state_dict(
        {
            f"{where[k.split('.')[0]]}.{k.split('.')[1]}": torch.from_numpy(v.astype(np.float64))
            for k, v in state.items()
        }
    )
    with torch.no_grad():
        want = net(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(
        torch_models.lecture_cnn_logits(state, x), want, rtol=1e-10, atol=1e-10
    )

    kmodel = lecture_layers()
    weights = torch_models.random_keras_weights(rng)
    kmodel.set_weights(weights)
    logits = torch_models.lecture_cnn_logits(torch_models.keras_to_torch_state(weights), x)
    probabilities = predict_batched(kmodel, x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(torch_models._softmax(logits), probabilities, atol=1e-5, rtol=0)
    wrong = torch_models.lecture_cnn_logits(
        torch_models.keras_to_torch_state(weights, permute_fc1=False), x
    )
    assert np.abs(torch_models._softmax(wrong) - probabilities).max() > 1e-3


def test_evaluate_spec_inputs():
    """No near ties (float32 and float64 agree on every arg-max); labels partly right."""
    from cnncourse.checks import keras_models, torch_models  # noqa: F401

    spec = all_specs()["evaluate"]
    for case in spec.cases(seed=3, hidden=True):
        weight, bias, x, y, batch_size = spec.build(case)[0]
        scores = spec._scores(weight, bias, x)
        top2 = np.sort(scores, axis=1)[:, -2:]
        assert (top2[:, 1] - top2[:, 0]).min() >= 1e-3
        accuracy = np.mean(scores.argmax(axis=1) == y)
        assert 0.4 < accuracy < 0.9 or len(x) < 20
        assert weight.dtype == np.float32 and y.dtype == np.int64 and batch_size >= 1


# ------------------------------------------------------------ registry and notebooks
@pytest.mark.parametrize("assignment", sorted(NOTEBOOKS))
def test_test_cells_call_the_registered_checks(assignment):
    """Each test cell's visible part and its hidden part verify exactly the specs that
    registry.TEST_CELLS lists for it (the grader decides with those)."""
    import re

    from cnncourse.checks.registry import TEST_CELLS, get_spec

    graded = {}
    for cell in _cells(assignment):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            graded[meta["grade_id"]] = _source(cell)
    assert set(graded) == set(TEST_CELLS[assignment])
    for grade_id, source in graded.items():
        visible, hidden = source.split("### BEGIN HIDDEN TESTS")
        names = tuple(TEST_CELLS[assignment][grade_id])
        calls = re.compile(r'verify\("(\w+)", (\w+)')
        assert tuple(n for n, _ in calls.findall(visible)) == names, grade_id
        assert tuple(n for n, _ in calls.findall(hidden)) == names, grade_id
        for name, target in calls.findall(source):
            assert get_spec(name).target == target
        assert "hidden=True" in hidden and "seed=" in hidden


def test_setup_cells_import_no_checks():
    """Test cells do not run while grading: nothing else may depend on their imports."""
    for assignment in NOTEBOOKS:
        for cell in _cells(assignment):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell["cell_type"] == "code" and not meta.get("grade"):
                source = _source(cell)
                for name in ("check_accuracy", "evaluate_accuracy", "check_scalar", "CheckError"):
                    assert name not in source, (assignment, meta.get("grade_id"), name)


# -------------------------------------------------- adapters and the grader's side
def test_adapters_hand_back_plain_data(keras_mod, lecture_layers):
    from cnncourse.checks import adapters, calls, channel
    from cnncourse.checks.model_eval import probe_images

    probe = probe_images((28, 28, 1))
    outcome = calls.call_target({}, lecture_layers, "keras_model", (), {"probe": probe})
    assert outcome["status"] == "returned", outcome
    value = outcome["value"]
    assert value["new_each_call"] is True and value["type"] == "Sequential"
    assert value["json"].dtype == np.uint8 and "count_params" not in value  # data, not facts
    assert [w.shape for w in value["weights"]][:2] == [(3, 3, 1, 32), (32,)]
    assert value["outputs"].shape == (len(probe), 10)
    assert outcome["args_after"][0] == []  # the namespace and the target are not inputs
    # through the channel's file format (what the grader reads) and back
    back = channel.unpack(channel.pack(outcome))
    assert bytes(back["value"]["json"]) == bytes(value["json"])
    same = lecture_layers()
    assert (
        calls.call_target({}, lambda: same, "keras_model", (), {})["value"]["new_each_call"]
        is False
    )
    assert adapters.adapt_keras_value({}, 3) == {"type": "int"}


def test_torch_adapters(torch_solutions):
    from cnncourse.checks import adapters, calls, torch_models

    described = adapters.adapt_torch_module({}, torch_solutions["LectureCNN"], None, None)
    assert "output" not in described and not described["loaded"]
    assert {k: tuple(v) for k, v in described["shapes"].items()} == torch_models.TORCH_SHAPES
    rng = np.random.default_rng(2)
    state, x = torch_models.random_torch_state(rng), rng.random((3, 1, 28, 28), dtype=np.float32)
    outcome = calls.call_target({}, torch_solutions["LectureCNN"], "torch_module", (state, x), {})
    got = outcome["value"]
    assert got["loaded"] and got["requires_grad"]
    np.testing.assert_allclose(got["output"], torch_models.lecture_cnn_logits(state, x), atol=1e-4)
    assert outcome["args_after"][0][1].shape == x.shape  # x, not the namespace


GRADER_SIDE = r"""
import sys, numpy as np
from cnncourse.checks import adapters, calls, channel, keras_models, torch_models
from cnncourse.checks.registry import all_specs
from cnncourse.checks.engine import check, Runner

class Canned(Runner):
    # what a kernel sent back, already as plain data (read from the channel's files)
    def __init__(self, values):
        self.values = values
    def run(self, spec, cases, substitutes=None):
        return [{"status": "returned", "value": self.values[spec.name], "args_after": None}
                for _ in cases]

config = np.frombuffer(open(sys.argv[1], "rb").read(), np.uint8)
saved = np.load(sys.argv[2])
weights = [saved[f"w{i}"] for i in range(len(saved.files) - 1)]
values = {"build_model_layers": {"type": "Sequential", "json": config, "new_each_call": True,
                                 "weights": weights, "outputs": saved["outputs"]}}
values["build_model_params"] = values["build_model_shapes"] = values["build_model_layers"]
for name in values:
    verdict = check(all_specs()[name], Canned(values), seed=1, hidden=True)
    assert verdict.passed, verdict.message
spec = all_specs()["copy_keras_weights"]
(weights, x), _ = spec.build(spec.cases(seed=1)[0])
logits = torch_models.lecture_cnn_logits(torch_models.keras_to_torch_state(weights), x)
got = {"logits": logits, "keras_unchanged": True}
assert spec.expect({}, (weights, x), {}).mismatch(got, "x") is None
loaded = [m for m in ("keras", "tensorflow", "torch") if m in sys.modules]
assert not loaded, loaded
print("ok")
"""


def test_grader_side_needs_no_framework(tmp_path, lecture_layers):
    """The grader decides Keras and PyTorch checks from plain data without importing Keras,
    TensorFlow or PyTorch (nothing of theirs to import, allocate or trust)."""
    import subprocess
    import sys

    from cnncourse.checks.model_eval import probe_images

    model = lecture_layers()
    config = tmp_path / "lecture.json"
    config.write_text(model.to_json())
    outputs = np.asarray(model(probe_images((28, 28, 1)), training=False), dtype=np.float64)
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(tmp_path / "data.npz", outputs=outputs, **arrays)
    script = tmp_path / "grader_side.py"
    script.write_text(GRADER_SIDE)
    result = subprocess.run(
        [sys.executable, str(script), str(config), str(tmp_path / "data.npz")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# ------------------------------------------------------- mistakes the checks recognise
def _torch_bug(torch_solutions, forward: str):
    """LectureCNN with another forward pass (``forward`` is its body, using torch)."""
    import torch

    ns = {"torch": torch, "Base": torch_solutions["LectureCNN"]}
    exec(f"class Bug(Base):\n    def forward(self, x):\n{forward}", ns)  # noqa: S102
    return ns["Bug"]


def test_torch_forward_that_leaves_torch_is_named(torch_solutions):
    """A forward pass through numpy loses the gradients: the check says so (the known
    mistakes of assignments 3-5 are proven in tests/test_known_mistakes.py)."""
    from cnncourse.checks import verify

    body = (
        "        x = self.pool(torch.relu(self.conv1(x)))\n"
        "        x = self.pool(torch.relu(self.conv2(x)))\n"
        "        x = torch.relu(self.conv3(x))\n"
    )
    detached = _torch_bug(
        torch_solutions,
        body + "        out = self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))\n"
        "        return torch.from_numpy(out.detach().numpy())\n",
    )
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(CheckError) as info:
        verify("lecture_cnn_forward", detached, seed=5)
    first = str(info.value).splitlines()[0]
    assert "the output does not depend on the weights" in first, str(info.value)
