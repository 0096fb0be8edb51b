"""The networks the lectures build, in Keras and PyTorch.

* :func:`build_lecture_cnn_keras` - unit 7: Conv2D 32 -> MaxPool -> Conv2D 64 -> MaxPool
  -> Conv2D 64 -> Flatten -> Dense 64 -> Dense 10 (93,322 parameters), channels-last.
* :func:`build_lecture_cnn_gap_keras` - unit 7's variant with global average pooling in
  place of ``Flatten`` (60,554 parameters).
* :class:`LectureCNNTorch` - unit 8: the same network as a ``torch.nn.Module``,
  channels-first ``(m, 1, 28, 28)`` in, logits ``(m, 10)`` out.
* :func:`build_cropped_classifier_keras` / :func:`build_classic_classifier_keras` -
  unit 9: the classifier with and without a leading ``Cropping2D``.

TensorFlow/Keras and PyTorch are imported only when a builder (or ``LectureCNNTorch``)
is first used, so a Keras notebook never pays for PyTorch and vice versa.

:data:`LECTURE_REPORTED` holds the test results the original lecture reported for these
networks on the full MNIST, the figures the course's reproduction is compared with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import keras

INPUT_SHAPE = (28, 28, 1)  # channels-last MNIST digit
NUM_CLASSES = 10

#: Test results reported by the original lecture (full MNIST; accuracy as a fraction, loss
#: where it was given, and the epochs trained), keyed like the runs of
#: ``docs/reproduction.json``. Quoted by lectures 7-9 as "reported", never recomputed.
LECTURE_REPORTED: dict[str, dict[str, float | int | None]] = {
    "keras_cnn": {"accuracy": 0.9908, "loss": None, "epochs": 5},
    "cropped": {"accuracy": 0.9905, "loss": 0.0304, "epochs": 25},
    "classic": {"accuracy": 0.9927, "loss": 0.0290, "epochs": 25},
}


def _seed_keras(seed: int | None) -> None:
    if seed is not None:
        import keras

        keras.utils.set_random_seed(seed)


def build_lecture_cnn_keras(
    compile_model: bool = True, seed: int | None = None, num_classes: int = NUM_CLASSES
) -> keras.Sequential:
    """The unit-7 CNN for ``(m, 28, 28, 1)`` inputs in [0, 1].

    Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu) -> MaxPooling2D(2)
    -> Conv2D(64, 3x3, relu) -> Flatten -> Dense(64, relu) -> Dense(10, softmax).

    Args:
        compile_model: compile with rmsprop and categorical cross-entropy (one-hot labels)
            and the ``accuracy`` metric, as in the lecture.
        seed: if given, ``keras.utils.set_random_seed(seed)`` first (same initial weights).
        num_classes: units of the softmax layer.
    """
    from keras import layers

    head = layers.Flatten(name="flatten")
    return _lecture_cnn(head, "lecture_cnn", compile_model, seed, num_classes)


def build_lecture_cnn_gap_keras(
    compile_model: bool = True, seed: int | None = None, num_classes: int = NUM_CLASSES
) -> keras.Sequential:
    """The unit-7 CNN with ``GlobalAveragePooling2D`` in place of ``Flatten``.

    Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu) -> MaxPooling2D(2)
    -> Conv2D(64, 3x3, relu) -> GlobalAveragePooling2D -> Dense(64, relu) -> Dense(10, softmax).

    The last feature maps ``(m, 3, 3, 64)`` are averaged over their 3x3 positions into
    ``(m, 64)`` instead of being flattened into ``(m, 576)``, so the first dense layer has
    ``64*64 + 64`` weights instead of ``576*64 + 64``. Same layer names as
    :func:`build_lecture_cnn_keras` (the pooling layer is ``"gap"``), same compile.
    """
    from keras import layers

    head = layers.GlobalAveragePooling2D(name="gap")
    return _lecture_cnn(head, "lecture_cnn_gap", compile_model, seed, num_classes)


def _lecture_cnn(head, name: str, compile_model: bool, seed: int | None, num_classes: int):
    """The unit-7 CNN with ``head`` (Flatten or global average pooling) between the last
    convolution and the dense layers; compiled as in the lecture when ``compile_model``."""
    import keras
    from keras import layers

    # Seed before the first layer is made: layers draw their initial weights when built.
    _seed_keras(seed)
    model = keras.Sequential(
        [
            keras.Input(INPUT_SHAPE),
            layers.Conv2D(32, (3, 3), activation="relu", name="conv1"),
            layers.MaxPooling2D((2, 2), name="pool1"),
            layers.Conv2D(64, (3, 3), activation="relu", name="conv2"),
            layers.MaxPooling2D((2, 2), name="pool2"),
            layers.Conv2D(64, (3, 3), activation="relu", name="conv3"),
            head,
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(num_classes, activation="softmax", name="dense2"),
        ],
        name=name,
    )
    if compile_model:
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _classifier_keras(
    crop: int | None, compile_model: bool, seed: int | None, name: str
) -> keras.Sequential:
    import keras
    from keras import layers

    _seed_keras(seed)
    stack: list[Any] = [keras.Input(INPUT_SHAPE)]
    if crop:
        stack.append(layers.Cropping2D(crop, name="crop"))
    stack += [
        layers.Conv2D(32, (3, 3), activation="relu", name="conv1"),
        layers.MaxPooling2D((2, 2), name="pool1"),
        layers.Dropout(0.25, name="dropout1"),
        layers.Conv2D(64, (3, 3), activation="relu", name="conv2"),
        layers.MaxPooling2D((2, 2), name="pool2"),
        layers.Dropout(0.25, name="dropout2"),
        layers.Flatten(name="flatten"),
        layers.Dense(256, activation="relu", name="dense1"),
        layers.Dense(NUM_CLASSES, activation="softmax", name="dense2"),
    ]
    model = keras.Sequential(stack, name=name)
    if compile_model:
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def build_cropped_classifier_keras(
    crop: int = 5, compile_model: bool = True, seed: int | None = None
) -> keras.Sequential:
    """The unit-9 classifier with a leading ``Cropping2D(crop)``.

    Cropping2D(crop) -> Conv2D(32, 3, relu) -> MaxPool(2) -> Dropout(0.25) ->
    Conv2D(64, 3, relu) -> MaxPool(2) -> Dropout(0.25) -> Flatten -> Dense(256, relu) ->
    Dense(10, softmax); compiled with Adam and categorical cross-entropy (one-hot labels).
    With ``crop=5`` a 28x28 digit becomes 18x18 before the first convolution.
    """
    if crop < 1:
        raise ValueError("crop must be positive; use build_classic_classifier_keras()")
    return _classifier_keras(crop, compile_model, seed, f"cropped_classifier_{crop}")


def build_classic_classifier_keras(
    compile_model: bool = True, seed: int | None = None
) -> keras.Sequential:
    """The unit-9 classifier without cropping (the "classic" baseline), same compile."""
    return _classifier_keras(None, compile_model, seed, "classic_classifier")


_TORCH_CLASSES: dict[str, type] = {}


def _lecture_cnn_torch_class() -> type:
    """Create (once) the ``nn.Module`` subclass; torch is imported here, not at import."""
    if "LectureCNNTorch" in _TORCH_CLASSES:
        return _TORCH_CLASSES["LectureCNNTorch"]
    import torch
    from torch import nn

    class LectureCNNTorch(nn.Module):
        """The unit-7 CNN in PyTorch, channels-first.

        ``forward(x)``: ``x`` is ``(m, 1, 28, 28)`` float32 in [0, 1]; returns logits
        ``(m, 10)`` (no softmax: ``nn.CrossEntropyLoss`` applies log-softmax itself).
        93,322 parameters, like the Keras model. ``Flatten`` sees ``(m, 64, 3, 3)``, so
        the 576 features are ordered channel-first (Keras orders them channel-last).
        The weights start as Keras' do (Glorot-uniform kernels, zero biases; PyTorch's own
        default is Kaiming-uniform with small random biases), so that both frameworks train
        the same network from the same kind of start.
        """

        def __init__(self, num_classes: int = NUM_CLASSES) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 32, kernel_size=3),  # (m, 32, 26, 26)
                nn.ReLU(),
                nn.MaxPool2d(2),  # (m, 32, 13, 13)
                nn.Conv2d(32, 64, kernel_size=3),  # (m, 64, 11, 11)
                nn.ReLU(),
                nn.MaxPool2d(2),  # (m, 64, 5, 5)
                nn.Conv2d(64, 64, kernel_size=3),  # (m, 64, 3, 3)
                nn.ReLU(),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(),  # (m, 576)
                nn.Linear(64 * 3 * 3, 64),
                nn.ReLU(),
                nn.Linear(64, num_classes),
            )

            for layer in self.modules():
                if isinstance(layer, nn.Conv2d | nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.features(x))

    LectureCNNTorch.__module__ = __name__
    LectureCNNTorch.__qualname__ = "LectureCNNTorch"
    _TORCH_CLASSES["LectureCNNTorch"] = LectureCNNTorch
    return LectureCNNTorch


def __getattr__(name: str) -> Any:
    # PEP 562: ``from cnncourse.models import LectureCNNTorch`` imports torch on demand.
    if name == "LectureCNNTorch":
        return _lecture_cnn_torch_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "INPUT_SHAPE",
    "LECTURE_REPORTED",
    "NUM_CLASSES",
    "LectureCNNTorch",  # noqa: F822 - provided lazily by __getattr__
    "build_classic_classifier_keras",
    "build_cropped_classifier_keras",
    "build_lecture_cnn_gap_keras",
    "build_lecture_cnn_keras",
]
