"""The networks lecture 10 compares on cluttered MNIST (Keras), and how they are trained.

* :func:`lecture_cnn` - lecture 7's CNN for 40 x 40 inputs: Conv 32 -> MaxPool -> Conv 64 ->
  MaxPool -> Conv 64 -> Flatten -> Dense 64 -> Dense 10 (all 3 x 3, valid, ReLU);
* :func:`deep_cnn` - a deeper network of 3 x 3 convolutions in three stages of 16, 32 and 64
  channels (the 2nd and 3rd stages start with stride 2): a stem convolution with stride 2
  (40 x 40 -> 20 x 20), then ``pairs`` two-convolution units per stage, global average
  pooling and one dense layer (``1 + 2 * pairs * 3`` convolutions: 13 by default, 7 with
  one unit per stage). ``batch_norm`` puts a ``BatchNormalization`` after
  every convolution (which then has no bias: the normalization subtracts the mean, so a bias
  before it would do nothing); ``residual`` adds a shortcut around every unit (the identity,
  or a 1 x 1 convolution with stride 2 where the shape changes: a *projection*). With both
  it is a small ResNet;
* :data:`ARCHITECTURES` - the rows of lecture 10's table (``benchmarks/reproduce_modern.py``
  trains them): name -> :class:`Architecture`;
* :func:`compile_and_fit` - Adam with a cosine decay of the learning rate to 0 over the run,
  sparse cross-entropy on logits, mini-batches of 64, the history per epoch, and the test
  loss and accuracy.

Augmentation resamples with the nearest pixel (:data:`INTERPOLATION`), which keeps the
strokes' edges sharp; bilinear resampling (Keras' default) blurs every augmented training
image a little while the test images stay sharp. The course has not measured the
difference (an :class:`Architecture` takes ``interpolation="bilinear"`` to try it).

Inputs are ``(m, 40, 40, 1)`` float32 in [0, 1] (:func:`cnncourse.cluttered.as_float`); the
outputs are logits (10 scores, no softmax). The numpy layers of assignment 6 are not here.
TensorFlow/Keras is imported when a builder is first used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import keras

NUM_CLASSES = 10
SIDE = 40
WIDTHS = (16, 32, 64)
PAIRS = 2  # units per stage: 1 + 2 * 2 * 3 = 13 convolutions
STEM_STRIDE = 2  # the stem convolution halves the canvas (40 -> 20), as ResNets' stems do
BN_MOMENTUM = 0.9  # Keras' default 0.99 averages over ~100 steps: too slow for short runs
SHIFT = 0.1  # augmentation: shifts of up to a tenth of the side (4 pixels) each way
ROTATION = 10 / 360  # augmentation: rotations of up to 10 degrees each way (a turn's share)
INTERPOLATION = "nearest"  # keeps edges sharp; bilinear blurs the training images only


def lecture_cnn(side: int = SIDE, seed: int | None = None) -> keras.Model:
    """Lecture 7's CNN for ``(m, side, side, 1)`` inputs (Flatten head, logits out)."""
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((side, side, 1)),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(NUM_CLASSES, name="logits"),
        ],
        name="lecture_cnn",
    )


def _conv(x, channels: int, stride: int, batch_norm: bool, name: str):
    """3 x 3 convolution (stride 1 or 2, "same" padding), BatchNormalization if asked."""
    from keras import layers

    if stride == 1:
        x = layers.Conv2D(channels, 3, padding="same", use_bias=not batch_norm, name=name)(x)
    else:  # pad 1 on every side, then "valid": the windows PyTorch's padding=1 uses
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        x = layers.Conv2D(channels, 3, strides=stride, use_bias=not batch_norm, name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return x


def deep_cnn(
    batch_norm: bool = False,
    residual: bool = False,
    pairs: int = PAIRS,
    widths: tuple[int, ...] = WIDTHS,
    side: int = SIDE,
    augment: bool = False,
    seed: int | None = None,
    stem_stride: int = STEM_STRIDE,
    interpolation: str | None = None,
) -> keras.Model:
    """The deep network of the module docstring; ``augment`` puts random shifts and
    rotations in front (Keras' preprocessing layers: active in training only), resampling with
    ``interpolation`` (default :data:`INTERPOLATION`)."""
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input((side, side, 1))
    x = inputs
    interpolation = interpolation or INTERPOLATION
    if augment:
        x = layers.RandomTranslation(
            SHIFT, SHIFT, fill_mode="constant", interpolation=interpolation, seed=seed, name="shift"
        )(x)
        x = layers.RandomRotation(
            ROTATION, fill_mode="constant", interpolation=interpolation, seed=seed, name="rotate"
        )(x)
    x = layers.ReLU(name="stem_relu")(_conv(x, widths[0], stem_stride, batch_norm, "stem"))
    c_in = widths[0]
    for stage, width in enumerate(widths, start=1):
        for unit in range(1, pairs + 1):
            stride = 2 if (stage > 1 and unit == 1) else 1
            name = f"s{stage}u{unit}"
            h = layers.ReLU(name=f"{name}_relu1")(_conv(x, width, stride, batch_norm, f"{name}_a"))
            h = _conv(h, width, 1, batch_norm, f"{name}_b")
            if residual:
                shortcut = x
                if stride != 1 or c_in != width:
                    shortcut = layers.Conv2D(
                        width, 1, strides=stride, use_bias=not batch_norm, name=f"{name}_proj"
                    )(x)
                    if batch_norm:
                        shortcut = layers.BatchNormalization(
                            momentum=BN_MOMENTUM, name=f"{name}_proj_bn"
                        )(shortcut)
                h = layers.Add(name=f"{name}_add")([h, shortcut])
            x = layers.ReLU(name=f"{name}_relu2")(h)
            c_in = width
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(NUM_CLASSES, name="logits")(x)
    kind = ("res" if residual else "plain") + ("_bn" if batch_norm else "")
    return keras.Model(inputs, outputs, name=f"deep_{kind}")


@dataclass(frozen=True)
class Architecture:
    """One row of lecture 10's table: how to build the network."""

    title: str
    deep: bool = True
    batch_norm: bool = False
    residual: bool = False
    augment: bool = False
    pairs: int = PAIRS
    interpolation: str | None = None  # of the augmentation (default INTERPOLATION)

    def build(self, seed: int | None = None) -> keras.Model:
        if not self.deep:
            return lecture_cnn(seed=seed)
        return deep_cnn(
            self.batch_norm,
            self.residual,
            self.pairs,
            augment=self.augment,
            seed=seed,
            interpolation=self.interpolation,
        )


ARCHITECTURES: dict[str, Architecture] = {
    "lecture_cnn": Architecture("lecture CNN (lecture 7: 3 conv, Flatten head)", deep=False),
    "plain_7": Architecture("plain CNN, 7 conv (GAP head)", pairs=1),
    "deep_plain": Architecture("plain CNN, 13 conv (GAP head)"),
    "deep_bn": Architecture("+ batch normalization", batch_norm=True),
    "resnet": Architecture("+ residual shortcuts (a small ResNet)", batch_norm=True, residual=True),
    "resnet_aug": Architecture(
        "+ augmentation (shifts, rotations)", batch_norm=True, residual=True, augment=True
    ),
}


def compile_and_fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    epochs: int,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
    verbose: int = 0,
    callbacks: list | None = None,
    cosine: bool = True,
) -> dict[str, Any]:
    """Adam on sparse cross-entropy (logits), ``epochs`` passes over ``train``; with ``cosine``
    the learning rate falls from ``learning_rate`` to 0 along a half cosine over the run (the
    last epochs take small steps, so the final weights do not jump from epoch to epoch).

    Returns ``{"history": {loss, accuracy, val_loss, val_accuracy}, "test_loss",
    "test_accuracy", "seconds_per_epoch", "params"}`` (test entries None without ``test``).
    A run whose loss becomes NaN stops (Keras' ``TerminateOnNaN``) with its history so far.
    """
    import math

    import keras

    rate = learning_rate
    if cosine:  # from learning_rate down to 0 over the whole run (one half cosine)
        steps = epochs * math.ceil(len(train[0]) / batch_size)
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        train[0],
        train[1],
        batch_size=batch_size,
        epochs=epochs,
        validation_data=val,
        verbose=verbose,
        callbacks=[keras.callbacks.TerminateOnNaN(), *(callbacks or [])],
    )
    seconds = time.perf_counter() - start
    done = max(1, len(history.history.get("loss", [])))
    result: dict[str, Any] = {
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "seconds_per_epoch": seconds / done,
        "params": int(model.count_params()),
        "test_loss": None,
        "test_accuracy": None,
    }
    if test is not None:
        loss, accuracy = model.evaluate(test[0], test[1], batch_size=500, verbose=0)
        result["test_loss"], result["test_accuracy"] = float(loss), float(accuracy)
    return result
