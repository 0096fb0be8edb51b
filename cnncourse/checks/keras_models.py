"""Check descriptions of the Keras model builders of assignments 3 and 5, and of compile_model.

A builder runs in the kernel (adapter ``keras_model``) and its model comes back as its JSON
config; its layer table (kinds, settings, output shapes, parameters) is computed here from
that config alone (:func:`cnncourse.grading_models.layer_table_from_config`: nothing is
built and no framework is imported) and compared with the full ordered layer list of the
exercise. A failure's first line names the first layer that differs and how.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .. import grading_models as gm
from ..layer_spec import LayerSpec
from ..testing import CheckError
from .engine import Anchor, Spec
from .matchers import (
    TYPE,
    VALUES,
    Mismatch,
    mismatch_from_check,
    type_name,
)
from .model_eval import described_differently, probe_images

# ===================================================================== Keras models


def _conv(shape, params, filters, activation="relu") -> LayerSpec:
    return LayerSpec(
        "Conv2D",
        shape,
        params,
        {
            "filters": filters,
            "kernel_size": (3, 3),
            "strides": (1, 1),
            "padding": "valid",
            "activation": activation,
        },
    )


def _pool(shape) -> LayerSpec:
    return LayerSpec(
        "MaxPooling2D", shape, 0, {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    )


def _dense(units, n_in, activation) -> LayerSpec:
    return LayerSpec(
        "Dense", (units,), (n_in + 1) * units, {"units": units, "activation": activation}
    )


def lecture_cnn_layers() -> list[LayerSpec]:
    """Assignment 3's network (lecture 7), layer by layer, without the input."""
    return [
        _conv((26, 26, 32), 320, 32),
        _pool((13, 13, 32)),
        _conv((11, 11, 64), 18_496, 64),
        _pool((5, 5, 64)),
        _conv((3, 3, 64), 36_928, 64),
        LayerSpec("Flatten", (576,), 0),
        _dense(64, 576, "relu"),
        _dense(10, 64, "softmax"),
    ]


def feature_map_cropper_layers() -> list[LayerSpec]:
    """Assignment 5, section 2: 18x18x1 -> Conv2D(32, 3x3) -> Cropping2D(2)."""
    return [
        _conv((16, 16, 32), 320, 32, activation="linear"),
        LayerSpec("Cropping2D", (12, 12, 32), 0, {"cropping": ((2, 2), (2, 2))}),
    ]


def _classifier_tail(n_H: int, n_W: int) -> list[LayerSpec]:
    """The classifiers' layers after the first convolution, for its (n_H, n_W) output."""
    h, w = n_H // 2, n_W // 2
    h2, w2 = (h - 2) // 2, (w - 2) // 2
    dropout = {"rate": 0.25}
    return [
        _pool((h, w, 32)),
        LayerSpec("Dropout", (h, w, 32), 0, dropout),
        _conv((h - 2, w - 2, 64), 18_496, 64),
        _pool((h2, w2, 64)),
        LayerSpec("Dropout", (h2, w2, 64), 0, dropout),
        LayerSpec("Flatten", (h2 * w2 * 64,), 0),
        _dense(256, h2 * w2 * 64, "relu"),
        _dense(10, 256, "softmax"),
    ]


def cropped_classifier_layers() -> list[LayerSpec]:
    """Assignment 5's cropped classifier (lecture 9): 169,098 parameters."""
    return [
        LayerSpec("Cropping2D", (18, 18, 1), 0, {"cropping": ((5, 5), (5, 5))}),
        _conv((16, 16, 32), 320, 32),
        *_classifier_tail(16, 16),
    ]


def classic_classifier_layers() -> list[LayerSpec]:
    """Assignment 5's classic classifier (no cropping): 431,242 parameters."""
    return [_conv((26, 26, 32), 320, 32), *_classifier_tail(26, 26)]


def _model_config(got, target: str, what: str):
    """The JSON config of a model an adapter described, or the Mismatch saying why not."""
    if type(got) is not dict:
        return None, Mismatch(what, TYPE, f"no description of a model, got {type_name(got)}", got)
    if type(got.get("json")) is not np.ndarray:
        if got.get("error"):
            message = (
                f"the {got.get('type')} of {target} cannot be described by a config "
                f"({got['error']}): build it from keras.layers with keras.Sequential"
            )
        else:
            message = (
                f"{target} should give a keras.Model (keras.Sequential), got {got.get('type')}"
            )
        return None, Mismatch(what, TYPE, message, got)
    return got["json"], None


class KerasModelMatches:
    """The model an adapter described equals the expected layer list in ``parts``."""

    def __init__(self, spec: KerasBuilder):
        self.spec = spec

    def mismatch(self, got, what: str) -> Mismatch | None:
        spec = self.spec
        data, problem = _model_config(got, spec.target, what)
        if problem is not None:
            return problem
        if spec.adapter == "keras_model" and got.get("new_each_call") is not True:
            return Mismatch(
                what,
                VALUES,
                f"{spec.target} returns the same model object at every call: create a new "
                "keras.Sequential inside the function each time it is called",
                got,
            )
        expected = spec.layers()
        try:
            kinds = gm.config_layer_kinds(gm.model_config_from_json(data))
            if set(spec.parts) & {"types", "shapes"} or not set(kinds) <= set(gm.CONFIG_KINDS):
                gm.check_layer_kinds(kinds, [s.kind for s in expected])
            shape = gm.config_input_shape(data)
            if shape != spec.input_shape:
                raise CheckError(
                    f"the model's input shape is {shape}, expected {spec.input_shape}: "
                    f"start it with keras.Input({spec.input_shape})"
                )
            table = gm.layer_table_from_config(data)
            gm.check_layer_table(table, expected, spec.parts, spec.total_params)
        except CheckError as exc:
            return mismatch_from_check(exc, what, got)
        why = described_differently(got, table, shape, probe_images(spec.input_shape))
        if why is not None:
            return Mismatch(what, VALUES, why, got)
        return None


class KerasBuilder(Spec):
    """A function that builds a Keras model: one call (twice, to see a new model each time),
    compared with the exercise's layer list in ``parts``."""

    adapter = "keras_model"
    outputs = "the model"
    n_random = 0
    parts: tuple[str, ...] = gm.KERAS_PARTS
    input_shape: tuple[int, ...] = (28, 28, 1)
    total_params: int | None = None
    layers = staticmethod(lecture_cnn_layers)

    def anchors(self):
        probe = {"probe": probe_images(self.input_shape)}
        return [Anchor(f"{self.target}()", lambda: ((), dict(probe)), self._show)]

    def _show(self, value) -> list[str]:
        if "params" not in self.parts or type(value) is not dict:
            return []
        try:
            table = gm.layer_table_from_config(value.get("json"))
        except CheckError:
            return []
        return [f"{self.target}(): {sum(s.params or 0 for s in table):,} parameters"]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return KerasModelMatches(self)

    def describe(self, c):
        return f"{self.target}()"


class BuildModelLayers(KerasBuilder):
    name = "build_model_layers"
    target = family = "build_model"
    parts: tuple[str, ...] = ("types", "config")


class BuildModelShapes(BuildModelLayers):
    name = "build_model_shapes"
    parts = ("shapes",)


class BuildModelParams(BuildModelLayers):
    name = "build_model_params"
    parts = ("params",)
    total_params = 93_322


class FeatureMapCropper(KerasBuilder):
    name = "feature_map_cropper"
    target = family = "build_feature_map_cropper"
    input_shape = (18, 18, 1)
    layers = staticmethod(feature_map_cropper_layers)


class CroppedLayers(KerasBuilder):
    name = "cropped_classifier_layers"
    target = family = "build_cropped_classifier"
    parts: tuple[str, ...] = ("types", "config")
    layers = staticmethod(cropped_classifier_layers)


class CroppedShapes(CroppedLayers):
    name = "cropped_classifier_shapes"
    parts = ("shapes",)


class CroppedParams(CroppedLayers):
    name = "cropped_classifier_params"
    parts = ("params",)
    total_params = 169_098


class ClassicLayers(KerasBuilder):
    name = "classic_classifier_layers"
    target = family = "build_classic_classifier"
    parts: tuple[str, ...] = ("types", "config")
    layers = staticmethod(classic_classifier_layers)


class ClassicShapes(ClassicLayers):
    name = "classic_classifier_shapes"
    parts = ("shapes",)


class ClassicParams(ClassicLayers):
    name = "classic_classifier_params"
    parts = ("params",)
    total_params = 431_242


class StartsWithCropping:
    """A model (described by ``keras_value``) whose first layer is a Cropping2D."""

    def __init__(self, target: str):
        self.target = target

    def mismatch(self, got, what: str) -> Mismatch | None:
        data, problem = _model_config(got, self.target, what)
        if problem is not None:
            return problem
        try:
            kinds = gm.config_layer_kinds(gm.model_config_from_json(data))
            table = gm.layer_table_from_config(data)
            shape = gm.config_input_shape(data)
        except CheckError as exc:
            return mismatch_from_check(exc, what, got)
        why = described_differently(got, table, shape, probe_images(shape))
        if why is not None:
            return Mismatch(what, VALUES, why, got)
        if not kinds or kinds[0] != "Cropping2D":
            first = kinds[0] if kinds else "no layer at all"
            return Mismatch(
                what,
                VALUES,
                f"{self.target} does not start with a Cropping2D layer (its first layer is "
                f"{first}): train the model build_cropped_classifier builds",
                got,
            )
        return None


class CroppedModelCrops(Spec):
    name = "cropped_model_crops"
    target = family = "cropped_model"
    adapter = "keras_value"
    outputs = "cropped_model"
    n_random = 0

    def anchors(self):
        probe = {"probe": probe_images((28, 28, 1))}
        return [Anchor("the trained cropped_model", lambda: ((), dict(probe)))]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return StartsWithCropping(self.target)

    def describe(self, c):
        return "cropped_model"


class CompiledAsAsked:
    """The compile settings ``keras_compile`` reports: RMSprop, categorical cross-entropy
    and an accuracy metric."""

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict:
            return Mismatch(what, TYPE, f"no compile settings, got {type_name(got)}", got)
        if not got.get("compiled"):
            return Mismatch(
                what,
                VALUES,
                "compile_model did not compile the model: call model.compile(optimizer=..., "
                "loss=..., metrics=[...]) on the model it is given",
                got,
            )
        if got.get("optimizer") != "RMSprop":
            return Mismatch(
                what,
                VALUES,
                f"the optimizer is {got.get('optimizer')}, expected RMSprop "
                '(optimizer="rmsprop", with its default learning rate)',
                got,
            )
        wanted = "categorical_crossentropy"
        if wanted not in (got.get("loss"), got.get("loss_name")) and got.get("loss") != (
            "CategoricalCrossentropy"
        ):
            name = got.get("loss_name") or got.get("loss")
            return Mismatch(
                what,
                VALUES,
                f"the loss is {name!r}, expected {wanted!r} (the labels are one-hot vectors "
                "and the last layer outputs probabilities)",
                got,
            )
        found = got.get("metrics")
        metrics: list = found if type(found) is list else []
        if not any("acc" in str(m).lower() for m in metrics):
            return Mismatch(
                what,
                VALUES,
                f'the metrics are {metrics}: add the accuracy, metrics=["accuracy"]',
                got,
            )
        return None


class CompileModel(Spec):
    name = target = family = "compile_model"
    adapter = "keras_compile"
    outputs = "the compiled model"
    n_random = 0

    def anchors(self):
        return [Anchor("compile_model(a small Dense model of the checks)", lambda: ((), {}))]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return CompiledAsAsked()

    def describe(self, c):
        return "compile_model(a small Dense model of the checks)"


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        BuildModelLayers(),
        BuildModelShapes(),
        BuildModelParams(),
        FeatureMapCropper(),
        CroppedLayers(),
        CroppedShapes(),
        CroppedParams(),
        ClassicLayers(),
        ClassicShapes(),
        ClassicParams(),
        CroppedModelCrops(),
        CompileModel(),
    )
}
