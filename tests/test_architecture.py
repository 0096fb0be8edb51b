"""Unit tests for cnncourse.architecture and the lecture models in cnncourse.models."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from cnncourse import architecture as arch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --------------------------------------------------------------------------- output sizes


@pytest.mark.parametrize(
    ("n", "f", "pad", "stride", "expected"),
    [
        (5, 3, 0, 1, 3),  # a 3x3 filter over 5x5 gives 3x3
        (28, 5, 0, 1, 24),  # 5x5 over 28x28: 24x24 = 576 positions
        (7, 3, 0, 2, 3),  # 7x7, 3x3, stride 2
        (5, 3, 1, 2, 3),
        (7, 3, 1, 2, 4),
        (6, 3, 1, 1, 6),  # "same" for stride 1
        (28, 3, 0, 1, 26),
    ],
)
def test_conv_output_size(n, f, pad, stride, expected):
    assert arch.conv_output_size(n, f, pad, stride) == expected
    assert expected == math.floor((n + 2 * pad - f) / stride) + 1


@pytest.mark.parametrize(
    "args",
    [
        (2, 3),  # window larger than the input
        (2, 5),  # the old layers.output_size(2, 5) returned -2
        (5, 3, 0, 0),  # stride 0
        (5, 3, -1),  # negative padding
        (5, 3, 0, 1, 0),  # dilation 0
        (5, 3, 0, 1, 3),  # a 3-tap window with dilation 3 spans 7 > 5
        (0, 1),  # empty input
        (5, 0),  # empty window
        (5.0, 3),  # sizes are integers
        (5, 3, 0, 1.5),
        (5, True),  # a bool is not a size
    ],
)
def test_conv_output_size_rejects_impossible_sizes(args):
    with pytest.raises(ValueError):
        arch.conv_output_size(*args)


def test_one_argument_order():
    # (n, f, pad, stride, dilation): the case that used to differ between two modules
    assert arch.conv_output_size(5, 3, 2, 1) == 7
    assert arch.conv_output_size(5, 3, pad=2, stride=1) == 7
    assert arch.conv_output_size(5, 3, 1, 2) == 3
    assert arch.conv_output_size(np.int64(28), np.int32(5)) == 24  # numpy integers are fine
    assert arch.pool_output_size(7, 3, 1, 2) == arch.conv_output_size(7, 3, 1, 2) == 4
    assert arch.transposed_conv_output_size(5, 3, 1, 2) == 9


@pytest.mark.parametrize("seed", range(3))
def test_conv_output_size_counts_window_positions(seed):
    """Independent check: count the start positions where the (dilated) window fits."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n, f = int(rng.integers(1, 40)), int(rng.integers(1, 8))
        pad, stride, dilation = (
            int(rng.integers(0, 4)),
            int(rng.integers(1, 5)),
            int(rng.integers(1, 4)),
        )
        taps = [t * dilation for t in range(f)]
        starts = [s for s in range(0, n + 2 * pad, stride) if s + taps[-1] < n + 2 * pad]
        if not starts:
            with pytest.raises(ValueError):
                arch.conv_output_size(n, f, pad, stride, dilation)
        else:
            assert arch.conv_output_size(n, f, pad, stride, dilation) == len(starts)


def test_dilation():
    assert arch.effective_kernel_size(3) == 3
    assert arch.effective_kernel_size(3, 2) == 5
    assert arch.effective_kernel_size(5, 3) == 13
    assert arch.effective_kernel_size(1, 4) == 1  # a 1x1 kernel has no gaps to spread
    assert arch.conv_output_size(28, 3, dilation=2) == 24  # same as a 5x5 kernel
    assert arch.conv_output_size(28, 3, 2, 1, 2) == 28  # pad 2 keeps the size
    assert arch.same_pad(3, 2) == 2 and arch.same_pad(3) == 1 and arch.same_pad(5) == 2
    with pytest.raises(ValueError):
        arch.same_pad(2)
    with pytest.raises(ValueError):
        arch.effective_kernel_size(3, 0)


# --------------------------------------------------------------------------- parameter counts


def test_param_counts_of_lecture_cnn_layers():
    assert arch.conv_param_count(3, 1, 32) == 320 == 9 * 32 + 32
    assert arch.conv_param_count(3, 32, 64) == 18_496
    assert arch.conv_param_count(3, 64, 64) == 36_928
    assert arch.conv_param_count((3, 3), 64, 64, use_bias=False) == 36_864
    assert arch.dense_param_count(576, 64) == 36_928
    assert arch.dense_param_count(64, 10) == 650
    assert arch.dense_param_count(64, 10, use_bias=False) == 640
    assert arch.dense_weights_per_neuron(200, 200, 3) == 120_000
    assert arch.dense_weights_per_neuron(28, 28, 1) == 784
    assert arch.dense_param_count(784, 10) == 7_850


def test_im2col_shapes_alexnet():
    shapes = arch.im2col_shapes(227, 227, 3, f=11, n_C=96, stride=4)
    assert shapes["out"] == (55, 55)
    assert shapes["X_col"] == (363, 3025)
    assert shapes["W_row"] == (96, 363)
    assert shapes["product"] == (96, 3025)
    assert shapes["Z"] == (1, 55, 55, 96)
    batch = arch.im2col_shapes(9, 11, 3, 3, 4, 1, 2, m=2)  # pad 1, stride 2
    assert batch["out"] == (5, 6) and batch["X_col"] == (27, 60) and batch["Z"] == (2, 5, 6, 4)


def test_lecture_cnn_summary():
    rows = arch.sequential_summary((28, 28, 1), arch.LECTURE_CNN)
    assert [r.shape for r in rows] == [
        (26, 26, 32),
        (13, 13, 32),
        (11, 11, 64),
        (5, 5, 64),
        (3, 3, 64),
        (576,),
        (64,),
        (10,),
    ]
    assert [r.params for r in rows] == [320, 0, 18_496, 0, 36_928, 0, 36_928, 650]
    conv_part = sum(r.params for r in rows if r.name == "conv")
    assert conv_part == 55_744
    assert arch.total_params(rows) == 93_322


def test_classifier_summaries():
    cropped = arch.sequential_summary((28, 28, 1), (("crop", 5),) + arch.CLASSIC_CLASSIFIER)
    classic = arch.sequential_summary((28, 28, 1), arch.CLASSIC_CLASSIFIER)
    assert cropped[0].shape == (18, 18, 1) and cropped[0].params == 0
    assert cropped[1].shape == (16, 16, 32) and cropped[1].params == 320
    assert cropped[7].shape == (576,) and classic[6].shape == (1600,)
    assert arch.total_params(cropped) == 169_098
    assert arch.total_params(classic) == 431_242


def test_sequential_summary_pad_stride_dilation_and_gap():
    rows = arch.sequential_summary(
        (28, 28, 1),
        [("conv", 8, 3, 1), ("conv", 8, 3, 0, 2), ("conv", 16, 3, 0, 1, 2), ("pool", 2)],
    )
    assert [r.shape for r in rows] == [(28, 28, 8), (13, 13, 8), (9, 9, 16), (4, 4, 16)]
    assert rows[2].params == arch.conv_param_count(3, 8, 16)  # dilation adds no weights
    gap = arch.sequential_summary((3, 3, 64), [("global_avg_pool",), ("dense", 10)])
    assert gap[0].shape == (64,) and gap[0].params == 0 and gap[1].params == 650
    flat = arch.sequential_summary((3, 3, 64), [("flatten",), ("dense", 10)])
    assert flat[1].params == 5_770
    with pytest.raises(ValueError):
        arch.sequential_summary((576,), [("global_avg_pool",)])


def test_sequential_summary_errors():
    with pytest.raises(ValueError):
        arch.sequential_summary((28, 28, 1), [("dense", 10)])  # not flattened
    with pytest.raises(ValueError):
        arch.sequential_summary((28, 28, 1), [("bogus",)])


# --------------------------------------------------------------------------- receptive fields


def test_receptive_field_with_pooling():
    table = arch.receptive_field_table(arch.LECTURE_CNN_FIELD_LAYERS)
    assert table == [1, 3, 6, 8, 16, 18]
    assert table[-1] ** 2 == 324
    assert round(100 * arch.receptive_field_fraction(table[-1]), 1) == 41.3
    # the bottom-up recursion starts at the input pixel and ends at the same patch
    assert arch.receptive_field_sizes(arch.LECTURE_CNN_FIELD_LAYERS) == [1, 3, 4, 8, 10, 18]


def test_receptive_field_without_pooling():
    table = arch.receptive_field_table(arch.LECTURE_CNN_NO_POOL_FIELD_LAYERS)
    assert table == [1, 3, 5, 7]
    assert table[-1] ** 2 == 49
    assert arch.receptive_field_fraction(table[-1]) == pytest.approx(0.0625)
    assert arch.receptive_field_sizes(arch.LECTURE_CNN_NO_POOL_FIELD_LAYERS) == [1, 3, 5, 7]


@pytest.mark.parametrize(
    "layers",
    [
        [],
        [(3, 1)],
        [(3, 1), (2, 2), (3, 1)],
        [(3, 1, 2), (3, 1, 4)],
        [(5, 2), (3, 1, 2), (2, 2), (3, 3)],
    ],
)
def test_receptive_field_conventions(layers):
    """Both lists have one entry per layer plus one, start with 1 and end at the same patch."""
    up = arch.receptive_field_sizes(layers)
    down = arch.receptive_field_table(layers)
    assert len(up) == len(down) == len(layers) + 1
    assert up[0] == down[0] == 1
    assert up[-1] == down[-1]
    assert up == sorted(up) and down == sorted(down)


def test_receptive_field_dilation():
    # a 3x3 kernel with dilation 2 sees 5x5; stacking dilations 1, 2, 4 grows 3, 7, 15
    assert arch.receptive_field_sizes([(3, 1, 2)]) == [1, 5]
    assert arch.receptive_field_sizes([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == [1, 3, 7, 15]
    assert arch.receptive_field_table([(3, 1, 1), (3, 1, 2), (3, 1, 4)])[-1] == 15
    with pytest.raises(ValueError):
        arch.receptive_field_sizes([(3, 0)])
    with pytest.raises(ValueError):
        arch.receptive_field_sizes([(3, 1, 1, 1)])


def test_receptive_field_brute_force():
    """Which input pixels can change one output unit? Propagate a one-hot map down the stack."""
    layers = [(3, 1), (2, 2), (3, 1, 2), (2, 2)]
    reach = {0}  # unit 0 of the last layer
    for f, stride, *rest in reversed(layers):
        dilation = rest[0] if rest else 1
        reach = {u * stride + t * dilation for u in reach for t in range(f)}
    assert max(reach) - min(reach) + 1 == arch.receptive_field_sizes(layers)[-1]


def test_receptive_field_fraction_caps_at_one():
    assert arch.receptive_field_fraction(40, 28) == 1.0


# --------------------------------------------------------------------------- cropping


@pytest.mark.parametrize(
    ("cropping", "normalized", "shape"),
    [
        (5, ((5, 5), (5, 5)), (18, 18, 1)),
        (((5, 5), (5, 5)), ((5, 5), (5, 5)), (18, 18, 1)),
        ((2, 4), ((2, 2), (4, 4)), (24, 20, 1)),
        (((1, 3), (2, 6)), ((1, 3), (2, 6)), (24, 20, 1)),
        (((0, 0), (0, 4)), ((0, 0), (0, 4)), (28, 24, 1)),
    ],
)
def test_cropping_forms(cropping, normalized, shape):
    assert arch.normalize_cropping2d(cropping) == normalized
    assert arch.cropping2d_output_shape((28, 28, 1), cropping) == shape
    assert arch.cropping2d_output_shape((7, 28, 28, 1), cropping) == (7, *shape)


def test_cropping_feature_maps_chain():
    rows = arch.sequential_summary((18, 18, 1), [("conv", 32, 3), ("crop", 2)])
    assert rows[0].shape == (16, 16, 32) and rows[0].params == 320
    assert rows[1].shape == (12, 12, 32) and rows[1].params == 0


def test_cropping_errors():
    with pytest.raises(ValueError):
        arch.cropping2d_output_shape((10, 10, 1), 5)  # nothing left
    with pytest.raises(ValueError):
        arch.normalize_cropping2d((1, 2, 3))
    with pytest.raises(ValueError):
        arch.normalize_cropping2d(-1)
    with pytest.raises(ValueError):
        arch.cropping2d_output_shape((28, 28), 1)


def test_activation_memory():
    shapes = [(28, 28, 1), (26, 26, 32)]
    per_example = 28 * 28 + 26 * 26 * 32
    assert arch.activation_memory_bytes(shapes, 64) == 64 * per_example * 4
    assert arch.activation_memory_bytes(shapes, 64, 2) == 64 * per_example * 2


def test_architecture_does_not_import_frameworks():
    import subprocess
    import sys

    code = (
        "import sys, cnncourse.architecture; "
        "print('tensorflow' in sys.modules or 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- frameworks


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    return keras


@pytest.mark.parametrize(
    ("i", "k", "s", "p", "a"),
    [
        (5, 3, 2, 0, 0),
        (5, 3, 2, 0, 1),
        (5, 3, 2, 1, 1),
        (4, 4, 2, 2, 1),
        (3, 5, 3, 0, 2),
        (4, 3, 1, 1, 0),
    ],
)
def test_transposed_formula_matches_keras_and_torch(keras, i, k, s, p, a):
    torch = pytest.importorskip("torch")
    padding = "valid" if p == 0 else "same"
    assert p in (0, k // 2)  # the two paddings Keras can express
    layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding, output_padding=a)
    out = layer(np.zeros((1, i, i + 1, 1), np.float32))
    expected = arch.transposed_conv_output_size(i, k, p, s, output_padding=a)
    wider = arch.transposed_conv_output_size(i + 1, k, p, s, output_padding=a)
    assert tuple(out.shape[1:3]) == (expected, wider)
    module = torch.nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=a)
    assert module(torch.zeros(1, 1, i, i)).shape[-1] == expected


@pytest.mark.parametrize(
    ("n", "f", "pad", "stride", "dilation"),
    [(28, 3, 0, 1, 2), (13, 3, 0, 2, 3), (10, 2, 0, 1, 4), (9, 3, 0, 1, 1), (12, 3, 4, 1, 2)],
)
def test_conv_output_size_matches_keras_and_torch(keras, n, f, pad, stride, dilation):
    torch = pytest.importorskip("torch")
    expected = arch.conv_output_size(n, f, pad, stride, dilation)
    if stride == 1 or dilation == 1:  # Keras refuses strides > 1 together with dilation > 1
        x = np.zeros((1, n + 2 * pad, n + 1 + 2 * pad, 1), np.float32)  # padded by hand
        layer = keras.layers.Conv2D(1, f, strides=stride, dilation_rate=dilation)
        assert tuple(layer(x).shape[1:3]) == (
            expected,
            arch.conv_output_size(n + 1, f, pad, stride, dilation),
        )
    module = torch.nn.Conv2d(1, 1, f, stride=stride, padding=pad, dilation=dilation)
    assert module(torch.zeros(1, 1, n, n)).shape[-1] == expected


def test_keras_lecture_cnn(keras):
    from cnncourse.models import build_lecture_cnn_keras

    model = build_lecture_cnn_keras(seed=0)
    assert model.count_params() == 93_322
    rows = arch.sequential_summary((28, 28, 1), arch.LECTURE_CNN)
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [r.shape for r in rows]
    assert [layer.count_params() for layer in model.layers] == [r.params for r in rows]
    assert model.optimizer is not None and model.loss == "categorical_crossentropy"
    probs = np.asarray(model.predict(np.zeros((3, 28, 28, 1), np.float32), verbose=0))
    assert probs.shape == (3, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_keras_classifiers(keras):
    from cnncourse.models import build_classic_classifier_keras, build_cropped_classifier_keras

    cropped = build_cropped_classifier_keras(crop=5, seed=0)
    classic = build_classic_classifier_keras(seed=0)
    assert cropped.layers[0].count_params() == 0
    assert tuple(cropped.layers[0].output.shape[1:]) == (18, 18, 1)
    assert tuple(cropped.get_layer("conv1").output.shape[1:]) == (16, 16, 32)
    assert cropped.count_params() == 169_098
    assert classic.count_params() == 431_242
    assert not any(isinstance(layer, keras.layers.Cropping2D) for layer in classic.layers)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in cropped.layers) == 2
    # same seed, same initial weights for the shared convolution
    again = build_cropped_classifier_keras(crop=5, seed=0)
    np.testing.assert_array_equal(
        cropped.get_layer("conv1").get_weights()[0], again.get_layer("conv1").get_weights()[0]
    )
    with pytest.raises(ValueError):
        build_cropped_classifier_keras(crop=0)


def test_torch_lecture_cnn():
    torch = pytest.importorskip("torch")
    from cnncourse.models import LectureCNNTorch

    model = LectureCNNTorch()
    assert isinstance(model, torch.nn.Module)
    assert sum(p.numel() for p in model.parameters()) == 93_322
    out = model(torch.zeros(5, 1, 28, 28))
    assert tuple(out.shape) == (5, 10)
    assert tuple(model.features(torch.zeros(2, 1, 28, 28)).shape) == (2, 64, 3, 3)
    import cnncourse.models as models

    assert models.LectureCNNTorch is LectureCNNTorch  # created once, cached
    with pytest.raises(AttributeError):
        models.NoSuchModel  # noqa: B018
