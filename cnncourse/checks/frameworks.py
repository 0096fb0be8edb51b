"""Check descriptions of the graded code of assignments 3-5 (Keras, PyTorch, cropping).

The same :class:`~cnncourse.checks.engine.Spec` objects serve the visible checks in the
notebooks and the autograder's verdicts. Functions that take or return framework objects go
through an adapter of :data:`cnncourse.checks.adapters.ADAPTERS`, which runs in the kernel and
hands back plain data; everything that decides is recomputed here, in the checking process:

* **Keras builders** (``keras_model``): the model comes back as its JSON config; its layer
  table (kinds, settings, output shapes, parameters) is computed here from that config alone
  (:func:`cnncourse.grading_models.layer_table_from_config`: nothing is built and no
  framework is imported, so the checking process stays small and fast) and compared with the
  full ordered layer list of the exercise. A failure's first line names the first layer that
  differs and how.
* **Trained models** (``predict``): the model labels the held-out grading digits
  (:func:`cnncourse.data.grading_digits`); only the images go to the kernel, the accuracy is
  computed here.
* **The PyTorch module** (``torch_module``): it is loaded with weights drawn here and its
  logits are compared with a float64 numpy forward pass of the lecture network, so the
  forward pass is checked, flatten order included, not only the shapes.
* **The Keras-to-PyTorch weight copy** (``keras_to_torch``): a Keras model holding weights
  drawn here (random biases too) is copied into the student's module; the expected logits
  come from the same weights.
* **evaluate** (``torch_evaluate``): a linear model of weights drawn here; the expected
  accuracy, the batch sizes and gradients off are checked.
* **Pure functions** (``conv_output_size``, ``conv_param_count``, ``receptive_field``,
  ``cropping_output_shape``): independent references; their policy forbids the course's
  helper package and the frameworks.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import numpy as np

from .. import grading_models as gm
from ..grading_models import LayerSpec
from ..testing import CheckError
from .channel import NumpyScalar
from .engine import Anchor, Spec
from .matchers import TYPE, VALUES, Array, Mismatch, Number, type_name

# What the pure functions may not use: they are a few lines of arithmetic.
PURE_POLICY = ("cnncourse", "keras", "tensorflow", "torch")

# Accuracy thresholds on the 2,000 held-out grading digits after fast-mode training
# (how they were chosen: the notebooks' markdown and benchmarks/fast_mode_thresholds.py).
KERAS_CNN_THRESHOLD = 0.93
TORCH_CNN_THRESHOLD = 0.90
CROPPED_THRESHOLD = 0.85
CLASSIC_THRESHOLD = 0.90
N_GRADING_DIGITS = 2_000


class Diagnosed:
    """A matcher that, when ``inner`` fails, says which known mistake the value matches.

    ``mistakes`` lists ``(sentence, matcher)`` pairs: the matcher describes what a function
    with that mistake returns (``None``: the mistake cannot show on this case). The sentence
    of the mistake that matches goes first; when several match (small cases can make two
    mistakes give the same value), all of them are named.
    """

    def __init__(self, inner, mistakes):
        self.inner, self.mistakes = inner, list(mistakes)

    def mismatch(self, got, what: str) -> Mismatch | None:
        found = self.inner.mismatch(got, what)
        if found is None:
            return None
        matching = [
            sentence
            for sentence, mutant in self.mistakes
            if mutant is not None and mutant.mismatch(got, what) is None
        ]
        if len(matching) == 1:
            found.message = f"{matching[0]} ({found.message})"
        elif matching:
            found.message = f"one of these mistakes: {'; or '.join(matching)} ({found.message})"
        return found


def _exact(value) -> Number:
    return Number(value, rtol=0, atol=0, integral=True)


def _is_int(value) -> bool:
    if type(value) is NumpyScalar:
        return value.dtype.startswith(("int", "uint"))
    return type(value) is int


def _plain_int(value) -> int:
    return value.value if type(value) is NumpyScalar else value


# ============================================================ A3: pure functions


def _positions(n: int, f: int, pad: int, stride: int) -> int:
    """Where a window of side f fits in a padded side, counted one by one."""
    return len(range(0, n + 2 * pad - f + 1, stride))


class ConvOutputSize(Spec):
    name = target = family = "conv_output_size"
    forbidden = PURE_POLICY
    arg_names = ("n", "f", "pad", "stride")
    outputs = "the output side"
    n_random = 10

    def required(self):
        return [
            dict(n=28, f=3, pad=0, stride=1),  # first Conv2D of the lecture network
            dict(n=26, f=2, pad=0, stride=2),  # first MaxPooling2D
            dict(n=13, f=3, pad=0, stride=1),
            dict(n=11, f=2, pad=0, stride=2),  # the last row and column are dropped
            dict(n=5, f=3, pad=0, stride=1),
            dict(n=28, f=5, pad=0, stride=1),  # 24 x 24 = 576 positions
            dict(n=7, f=3, pad=0, stride=2),  # the lecture's stride-2 example
            dict(n=5, f=3, pad=1, stride=1),  # "same" padding keeps the side
        ]

    def hidden_required(self):
        return [
            dict(n=63, f=9, pad=3, stride=4),
            dict(n=4, f=6, pad=1, stride=1),
            dict(n=10, f=1, pad=2, stride=3),
        ]

    def draw(self, rng):
        pad = int(rng.integers(0, 4))
        n = int(rng.integers(4, 64))
        f = int(rng.integers(1, min(n + 2 * pad, 9) + 1))
        return dict(n=n, f=f, pad=pad, stride=int(rng.integers(1, 5)))

    def inputs(self, c, rng):
        return (c["n"], c["f"], c["pad"], c["stride"]), {}

    def expect(self, c, args, kwargs):
        n, f, pad, stride = args
        right = _positions(n, f, pad, stride)
        return Diagnosed(
            _exact(right),
            [
                (
                    "the division is not floored: use // so that the positions where the "
                    "filter does not fit are dropped and the result is an int",
                    Number((n + 2 * pad - f) / stride + 1),
                ),
                (
                    "the + 1 is missing: the filter's first position (at 0) counts too",
                    _exact((n + 2 * pad - f) // stride) if right else None,
                ),
                (
                    "the padding is added on one side only: pad zeros go on each side, so "
                    "the padded side is n + 2 * pad",
                    _exact((n + pad - f) // stride + 1) if pad else None,
                ),
            ],
        )

    def describe(self, c):
        return f"conv_output_size({c['n']}, {c['f']}, {c['pad']}, {c['stride']})"

    def smaller(self, c):
        out = []
        for key, floor in (("n", 1), ("f", 1), ("pad", 0), ("stride", 1)):
            if c[key] > floor:
                small = dict(c, **{key: c[key] - 1})
                if small["n"] + 2 * small["pad"] >= small["f"]:
                    out.append(small)
        return out


class ConvParamCount(Spec):
    name = target = family = "conv_param_count"
    forbidden = PURE_POLICY
    arg_names = ("f", "n_c_prev", "n_c")
    outputs = "the parameter count"
    n_random = 10

    def required(self):
        return [dict(f=3, n_c_prev=1, n_c=32), dict(f=3, n_c_prev=32, n_c=64)]

    def hidden_required(self):
        return [dict(f=3, n_c_prev=64, n_c=64), dict(f=1, n_c_prev=1, n_c=1)]

    def draw(self, rng):
        return dict(
            f=int(rng.integers(1, 8)),
            n_c_prev=int(rng.integers(1, 50)),
            n_c=int(rng.integers(1, 70)),
        )

    def inputs(self, c, rng):
        return (c["f"], c["n_c_prev"], c["n_c"]), {}

    def expect(self, c, args, kwargs):
        f, n_c_prev, n_c = args
        kernel = int(np.prod((f, f, n_c_prev, n_c)))  # the weights of the n_c filters
        return Diagnosed(
            _exact(kernel + n_c),  # plus one bias per filter
            [
                (
                    "the biases are not counted: every filter has one bias, so add n_c",
                    _exact(kernel),
                ),
                (
                    "one bias per layer is counted: every filter has its own bias "
                    "(n_c biases in all)",
                    _exact(kernel + 1) if n_c > 1 else None,
                ),
                (
                    "the input channels are missing: each filter has f * f * n_c_prev "
                    "weights, one f x f kernel per input channel",
                    _exact(f * f * n_c + n_c) if n_c_prev > 1 else None,
                ),
            ],
        )

    def describe(self, c):
        return f"conv_param_count({c['f']}, {c['n_c_prev']}, {c['n_c']})"

    def smaller(self, c):
        return [dict(c, **{k: c[k] - 1}) for k in ("f", "n_c_prev", "n_c") if c[k] > 1]


def _parse_stack(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.split("/")) for item in text.split()]  # type: ignore[misc]


def _stack_text(stack) -> str:
    return " ".join(f"{f}/{s}" for f, s in stack)


def reference_field(stack) -> int:
    """Receptive field side by walking back from one output neuron: a window of f neurons
    at stride s over the index range [a, b] covers [a * s, b * s + f - 1] one layer down."""
    first, last = 0, 0
    for f, stride in reversed(list(stack)):
        first, last = first * stride, last * stride + f - 1
    return last - first + 1


class ReceptiveField(Spec):
    name = target = family = "receptive_field"
    forbidden = PURE_POLICY
    arg_names = ("layers",)
    outputs = "the receptive field"
    n_random = 10

    def required(self):
        return [
            dict(stack="3/1 2/2 3/1 2/2 3/1", as_tuple=0),  # the lecture network: 18
            dict(stack="3/1 3/1 3/1", as_tuple=0),  # without pooling: 7
            dict(stack="3/1", as_tuple=0),
            dict(stack="", as_tuple=0),  # no layer: one pixel
        ]

    def hidden_required(self):
        return [dict(stack="5/2 3/1 2/2", as_tuple=1), dict(stack="7/3 1/2 4/3 2/1", as_tuple=0)]

    def draw(self, rng):
        n = int(rng.integers(1, 7))
        stack = [(int(rng.integers(1, 8)), int(rng.integers(1, 4))) for _ in range(n)]
        return dict(stack=_stack_text(stack), as_tuple=int(rng.integers(0, 2)))

    def inputs(self, c, rng):
        stack = _parse_stack(c["stack"])
        return (tuple(stack) if c["as_tuple"] else stack,), {}

    def expect(self, c, args, kwargs):
        stack = list(args[0])
        swapped_side, swapped_jump = 1, 1
        for f, stride in stack:
            swapped_jump *= stride
            swapped_side += (f - 1) * swapped_jump
        return Diagnosed(
            _exact(reference_field(stack)),
            [
                (
                    "the jump is missing: each layer adds (f - 1) times the distance, in "
                    "input pixels, between neighbouring neurons below it, and every stride "
                    "multiplies that distance",
                    _exact(1 + sum(f - 1 for f, _ in stack)),
                ),
                (
                    "a layer's own stride is applied before its window: a layer grows the "
                    "field by (f - 1) * jump with the jump of the layers below it; multiply "
                    "the jump by its stride after that",
                    _exact(swapped_side),
                ),
            ],
        )

    def describe(self, c):
        stack = _parse_stack(c["stack"])
        shown = tuple(stack) if c["as_tuple"] else stack
        return f"receptive_field({shown})"

    def smaller(self, c):
        stack = _parse_stack(c["stack"])
        out = []
        for i in range(len(stack)):
            out.append(dict(c, stack=_stack_text(stack[:i] + stack[i + 1 :])))
        for i, (f, s) in enumerate(stack):
            if f > 1:
                out.append(dict(c, stack=_stack_text(stack[:i] + [(f - 1, s)] + stack[i + 1 :])))
            if s > 1:
                out.append(dict(c, stack=_stack_text(stack[:i] + [(f, s - 1)] + stack[i + 1 :])))
        return out


# ====================================================== A5: cropping_output_shape


class ShapeTuple:
    """A tuple of ints (Python or numpy integers) equal to ``expected``."""

    def __init__(self, expected: tuple[int, ...]):
        self.expected = tuple(int(v) for v in expected)

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not tuple:
            hint = " (return a tuple, e.g. (n_H, n_W, n_C))" if type(got) is list else ""
            return Mismatch(what, TYPE, f"{what} should be a tuple, got {type_name(got)}{hint}")
        if len(got) != len(self.expected) or not all(_is_int(v) for v in got):
            return Mismatch(
                what,
                TYPE,
                f"{what} should be a tuple of {len(self.expected)} ints, got "
                f"({', '.join(type_name(v) for v in got)})",
                got,
            )
        values = tuple(_plain_int(v) for v in got)
        if values != self.expected:
            return Mismatch(what, VALUES, f"{what} is {values}, expected {self.expected}", got)
        return None


def _edges(c: dict) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for a cropping configuration."""
    a, b, cc, d = c["a"], c["b"], c["c"], c["d"]
    if c["form"] in ("int", "numpy"):
        return a, a, a, a
    if c["form"] == "pair":
        return a, a, b, b
    return a, b, cc, d


def _crop_valid(c: dict) -> bool:
    top, bottom, left, right = _edges(c)
    return min(c["n_H"], c["n_W"], c["n_C"]) >= 1 and (
        c["n_H"] - top - bottom >= 1 and c["n_W"] - left - right >= 1
    )


def _crop(**kw) -> dict:
    return dict(dict(a=0, b=0, c=0, d=0), **kw)


class CroppingOutputShape(Spec):
    """``cropping_output_shape`` with the int and ``(sym_h, sym_w)`` forms (numpy ints too)."""

    name = "cropping_int_pair"
    target = "cropping_output_shape"
    family = "cropping_output_shape"
    forbidden = PURE_POLICY
    arg_names = ("input_shape", "cropping")
    outputs = "the output shape"
    n_random = 10
    forms = ("int", "pair", "numpy")

    def required(self):
        return [
            _crop(n_H=28, n_W=28, n_C=1, form="int", a=5),  # the lecture's digit crop
            _crop(n_H=16, n_W=16, n_C=32, form="int", a=2),  # a feature map
            _crop(n_H=28, n_W=28, n_C=1, form="pair", a=2, b=4),
            _crop(n_H=10, n_W=12, n_C=3, form="pair", a=0, b=1),
            _crop(n_H=20, n_W=30, n_C=2, form="numpy", a=3),  # numpy integers are ints too
        ]

    def hidden_required(self):
        return [_crop(n_H=7, n_W=39, n_C=8, form="pair", a=3, b=0)]

    def draw(self, rng):
        n_H, n_W, n_C = (
            int(rng.integers(6, 40)),
            int(rng.integers(6, 40)),
            int(rng.integers(1, 9)),
        )
        form = self.forms[int(rng.integers(0, len(self.forms)))]
        if form == "nested":
            return _crop(
                n_H=n_H,
                n_W=n_W,
                n_C=n_C,
                form=form,
                a=int(rng.integers(0, n_H // 2)),
                b=int(rng.integers(0, n_H // 2)),
                c=int(rng.integers(0, n_W // 2)),
                d=int(rng.integers(0, n_W // 2)),
            )
        if form == "pair":
            return _crop(
                n_H=n_H,
                n_W=n_W,
                n_C=n_C,
                form=form,
                a=int(rng.integers(0, n_H // 2)),
                b=int(rng.integers(0, n_W // 2)),
            )
        return _crop(
            n_H=n_H, n_W=n_W, n_C=n_C, form=form, a=int(rng.integers(0, min(n_H, n_W) // 2))
        )

    def _cropping(self, c: dict):
        if c["form"] == "int":
            return c["a"]
        if c["form"] == "numpy":
            return np.int64(c["a"])
        if c["form"] == "pair":
            return (c["a"], c["b"])
        return ((c["a"], c["b"]), (c["c"], c["d"]))

    def inputs(self, c, rng):
        return ((c["n_H"], c["n_W"], c["n_C"]), self._cropping(c)), {}

    def expect(self, c, args, kwargs):
        (n_H, n_W, n_C), _ = args
        top, bottom, left, right = _edges(c)
        # Independent reference: cut a block of zeros and look at what is left.
        right_shape = np.zeros((n_H, n_W, n_C))[top : n_H - bottom, left : n_W - right].shape
        mistakes = [
            (
                "the channels are cropped too: Cropping2D cuts rows and columns only",
                ShapeTuple((n_H - top - bottom, n_W - left - right, n_C - top - bottom))
                if top + bottom
                else None,
            )
        ]
        if c["form"] in ("int", "numpy"):
            mistakes.append(
                (
                    "an int c crops c rows off the top and c off the bottom (and c columns "
                    "off each side): the height loses 2 * c",
                    ShapeTuple((n_H - top, n_W - left, n_C)) if top else None,
                )
            )
        if c["form"] == "pair":
            mistakes.append(
                (
                    "(sym_h, sym_w) is read the wrong way round: the first number crops the "
                    "height (rows off the top and the bottom), the second the width",
                    ShapeTuple((n_H - 2 * c["b"], n_W - 2 * c["a"], n_C))
                    if c["a"] != c["b"]
                    else None,
                )
            )
        if c["form"] == "nested":
            mistakes.append(
                (
                    "the nested form is read as ((top, left), (bottom, right)): it is "
                    "((top, bottom), (left, right)), the first pair for the rows",
                    ShapeTuple((n_H - c["a"] - c["c"], n_W - c["b"] - c["d"], n_C))
                    if c["b"] != c["c"]
                    else None,
                )
            )
        return Diagnosed(ShapeTuple(right_shape), mistakes)

    def describe(self, c):
        cropping = self._cropping(c)
        shown = f"np.int64({c['a']})" if c["form"] == "numpy" else repr(cropping)
        return f"cropping_output_shape({(c['n_H'], c['n_W'], c['n_C'])}, {shown})"

    def smaller(self, c):
        out = []
        for key, floor in (
            ("n_C", 1),
            ("n_H", 1),
            ("n_W", 1),
            ("a", 0),
            ("b", 0),
            ("c", 0),
            ("d", 0),
        ):
            if c[key] > floor:
                small = dict(c, **{key: c[key] - 1})
                if _crop_valid(small):
                    out.append(small)
        return out


class CroppingNested(CroppingOutputShape):
    """``cropping_output_shape`` with the ``((top, bottom), (left, right))`` form."""

    name = "cropping_nested"
    forms = ("nested",)

    def required(self):
        return [
            _crop(n_H=28, n_W=28, n_C=1, form="nested", a=5, b=5, c=5, d=5),
            _crop(n_H=28, n_W=28, n_C=1, form="nested", a=1, b=2, c=3, d=4),
            _crop(n_H=16, n_W=20, n_C=8, form="nested", a=0, b=6, c=2, d=0),
        ]

    def hidden_required(self):
        return [_crop(n_H=9, n_W=31, n_C=3, form="nested", a=4, b=0, c=1, d=13)]


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


def _check_error(error: CheckError, what: str, got) -> Mismatch:
    first, _, rest = str(error).partition("\n")
    return Mismatch(what, VALUES, first.rstrip("."), got, details=rest.splitlines())


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
            return _check_error(exc, what, got)
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
        return [Anchor(f"{self.target}()", lambda: ((), {}), self._show)]

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
    parts = ("types", "config")


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
    parts = ("types", "config")
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
    parts = ("types", "config")
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
        except CheckError as exc:
            return _check_error(exc, what, got)
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
        return [Anchor("the trained cropped_model", lambda: ((), {}))]

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
        metrics = got.get("metrics") if type(got.get("metrics")) is list else []
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


# ================================================================ trained accuracy


def grading_images(layout: str, n: int = N_GRADING_DIGITS) -> np.ndarray:
    """The held-out grading digits as a model takes them: float32 in [0, 1], channels last
    (``"nhwc"``) or first (``"nchw"``)."""
    from ..data import grading_digits

    x, _ = grading_digits(n)
    x = x.astype(np.float32) / 255.0
    return x[..., np.newaxis] if layout == "nhwc" else x[:, np.newaxis]


def grading_labels(n: int = N_GRADING_DIGITS) -> np.ndarray:
    from ..data import grading_digits

    return np.asarray(grading_digits(n)[1], dtype=np.int64)


class AccuracyAtLeast:
    """Model outputs ``(n, n_classes)`` whose arg-max matches ``labels`` often enough."""

    def __init__(self, labels: np.ndarray, threshold: float, hint: str):
        self.labels, self.threshold, self.hint = labels, threshold, hint

    def accuracy(self, got) -> float | None:
        n = len(self.labels)
        if type(got) is not np.ndarray or got.ndim != 2 or got.shape[0] != n:
            return None
        if got.shape[1] < 2 or got.dtype.kind not in "fiu" or not np.isfinite(got).all():
            return None
        return float(np.mean(got.argmax(axis=1) == self.labels))

    def mismatch(self, got, what: str) -> Mismatch | None:
        n = len(self.labels)
        accuracy = self.accuracy(got)
        if accuracy is None:
            shape = getattr(got, "shape", None)
            return Mismatch(
                what,
                TYPE,
                f"the model should map the {n:,} digits to finite scores of shape ({n}, 10), "
                f"got {type_name(got)}{'' if shape is None else f' of shape {shape}'}",
                got,
            )
        if accuracy < self.threshold:
            return Mismatch(
                what,
                VALUES,
                f"the trained model labels {accuracy:.2%} of the {n:,} held-out digits "
                f"correctly; it must reach {self.threshold:.0%}: {self.hint}",
                got,
            )
        return None


class TrainedAccuracy(Spec):
    """The accuracy of a trained model (a notebook variable) on the held-out grading digits:
    the images go to the kernel, the labels stay here."""

    adapter = "predict"
    outputs = "the model's scores"
    n_random = 0
    layout = "nhwc"
    threshold = KERAS_CNN_THRESHOLD
    hint = (
        "is it trained (fit called with epochs > 0, after every cell above) and are the "
        "images scaled to [0, 1]?"
    )

    def anchors(self):
        def build():
            return (grading_images(self.layout),), {}

        def show(value):
            accuracy = AccuracyAtLeast(grading_labels(), self.threshold, "").accuracy(value)
            if accuracy is None:
                return []
            return [
                f"{self.target}: {accuracy:.2%} of the {N_GRADING_DIGITS:,} held-out grading "
                f"digits (at least {self.threshold:.0%} needed)"
            ]

        return [Anchor(f"the {N_GRADING_DIGITS:,} held-out grading digits", build, show)]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return AccuracyAtLeast(grading_labels(), self.threshold, self.hint)

    def describe(self, c):
        return f"{self.target} on the {N_GRADING_DIGITS:,} held-out grading digits"


class KerasAccuracy(TrainedAccuracy):
    name = "keras_accuracy"
    target = family = "model"


class CroppedAccuracy(TrainedAccuracy):
    name = "cropped_accuracy"
    target = family = "cropped_model"
    threshold = CROPPED_THRESHOLD


class ClassicAccuracy(TrainedAccuracy):
    name = "classic_accuracy"
    target = family = "classic_model"
    threshold = CLASSIC_THRESHOLD


class TorchAccuracy(TrainedAccuracy):
    name = "torch_accuracy"
    target = family = "model"
    layout = "nchw"
    threshold = TORCH_CNN_THRESHOLD
    hint = (
        "is it trained (train runs its epochs and calls optimizer.step() for every batch) "
        "and are the images scaled to [0, 1]?"
    )


# ================================================================= A4: PyTorch

# The parameters of the lecture CNN in PyTorch, by the names the exercise asks for.
TORCH_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1.weight": (32, 1, 3, 3),
    "conv1.bias": (32,),
    "conv2.weight": (64, 32, 3, 3),
    "conv2.bias": (64,),
    "conv3.weight": (64, 64, 3, 3),
    "conv3.bias": (64,),
    "fc1.weight": (64, 576),
    "fc1.bias": (64,),
    "fc2.weight": (10, 64),
    "fc2.bias": (10,),
}
TORCH_KINDS = ["Conv2d", "Conv2d", "Conv2d", "Linear", "Linear"]
TORCH_PARAMS = sum(int(np.prod(s)) for s in TORCH_SHAPES.values())  # 93,322
# The Keras lecture CNN's weights, in get_weights() order.
KERAS_SHAPES: list[tuple[int, ...]] = [
    (3, 3, 1, 32),
    (32,),
    (3, 3, 32, 64),
    (64,),
    (3, 3, 64, 64),
    (64,),
    (576, 64),
    (64,),
    (64, 10),
    (10,),
]


def _conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross-correlation of x (m, C, H, W) with w (F, C, k, k), stride 1, no padding."""
    k = w.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return np.einsum("mchwij,fcij->mfhw", windows, w, optimize=True) + b[None, :, None, None]


def _max_pool2(x: np.ndarray) -> np.ndarray:
    m, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :, : 2 * h2, : 2 * w2].reshape(m, c, h2, 2, w2, 2).max(axis=(3, 5))


def lecture_cnn_logits(state: dict, x: np.ndarray, flatten: str = "chw") -> np.ndarray:
    """The lecture CNN's logits in float64 numpy, for PyTorch-layout weights ``state``
    (names of :data:`TORCH_SHAPES`) and channels-first images ``x`` (m, 1, 28, 28).

    ``flatten="hwc"`` flattens the last feature maps in Keras' (row, column, channel) order
    instead of PyTorch's (channel, row, column): what a forward pass with that mistake gives.
    """
    p = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    a = _max_pool2(
        relu(_conv2d(np.asarray(x, dtype=np.float64), p["conv1.weight"], p["conv1.bias"]))
    )
    a = _max_pool2(relu(_conv2d(a, p["conv2.weight"], p["conv2.bias"])))
    a = relu(_conv2d(a, p["conv3.weight"], p["conv3.bias"]))
    flat = (
        a.reshape(len(a), -1) if flatten == "chw" else a.transpose(0, 2, 3, 1).reshape(len(a), -1)
    )
    hidden = relu(flat @ p["fc1.weight"].T + p["fc1.bias"])
    return hidden @ p["fc2.weight"].T + p["fc2.bias"]


def keras_to_torch_state(weights: list, permute_fc1: bool = True, conv_axes=(3, 2, 0, 1)) -> dict:
    """The PyTorch state of the lecture CNN that computes what a Keras lecture CNN with
    ``weights`` (get_weights() order) computes.

    ``permute_fc1=False`` and ``conv_axes=(3, 2, 1, 0)`` give the states of two mistakes:
    forgetting the flatten order, and swapping the kernels' height and width.
    """
    names = ["conv1", "conv2", "conv3", "fc1", "fc2"]
    state = {}
    for i, name in enumerate(names):
        kernel, bias = np.asarray(weights[2 * i]), np.asarray(weights[2 * i + 1])
        if name.startswith("conv"):
            kernel = kernel.transpose(conv_axes)
        else:
            if name == "fc1" and permute_fc1:
                # rows in Keras' (row, column, channel) order -> PyTorch's (channel, row, column)
                kernel = kernel.reshape(3, 3, 64, -1).transpose(2, 0, 1, 3).reshape(576, -1)
            kernel = kernel.T
        state[f"{name}.weight"], state[f"{name}.bias"] = kernel, bias
    return state


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _params_difference(shapes: dict) -> str | None:
    """How a module's named parameter shapes differ from TORCH_SHAPES, in words."""
    got = {k: tuple(v) for k, v in shapes.items()}
    detail = None
    for name, shape in TORCH_SHAPES.items():
        if name not in got:
            detail = (
                f"it has no parameter {name} (name the layers conv1, conv2, conv3, fc1 and "
                "fc2, as the exercise asks)"
            )
        elif got[name] != shape:
            detail = f"{name} has shape {got[name]}, expected {shape}"
        if detail:
            break
    if detail is None:
        extra = [k for k in got if k not in TORCH_SHAPES]
        if not extra:
            return None
        detail = f"it has parameters the lecture network does not: {', '.join(extra[:5])}"
    total = sum(int(np.prod(s)) for s in got.values())
    count = f"{total:,} parameters, expected {TORCH_PARAMS:,}: " if total != TORCH_PARAMS else ""
    return f"LectureCNN has {count}{detail}"


class TorchParameters:
    """``torch_module``'s description: the exercise's named parameters and layer kinds."""

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict or type(got.get("shapes")) is not dict:
            return Mismatch(what, TYPE, f"no description of a module, got {type_name(got)}", got)
        difference = _params_difference(got["shapes"])
        if difference is not None:
            return Mismatch(what, VALUES, difference, got)
        try:
            kinds = got.get("kinds") if type(got.get("kinds")) is list else []
            gm.check_layer_kinds(kinds, TORCH_KINDS, what="module")
        except CheckError as exc:
            return _check_error(exc, what, got)
        return None


class TorchForward:
    """``torch_module``'s run: the grader's weights loaded, logits as expected."""

    def __init__(self, expected: np.ndarray, mistakes):
        self.expected, self.mistakes = expected, mistakes

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict or type(got.get("shapes")) is not dict:
            return Mismatch(what, TYPE, f"no description of a module, got {type_name(got)}", got)
        if not got.get("loaded"):
            difference = _params_difference(got["shapes"]) or "the parameters do not match"
            return Mismatch(
                what, VALUES, f"the checks cannot load their weights into it: {difference}", got
            )
        out = got.get("output")
        m = len(self.expected)
        if type(out) is not np.ndarray:
            return Mismatch(
                what, TYPE, f"forward should return a torch.Tensor, got {type_name(out)}", got
            )
        if out.shape != self.expected.shape:
            return Mismatch(
                what,
                VALUES,
                f"for input of shape ({m}, 1, 28, 28) forward returns shape {out.shape}, "
                f"expected {self.expected.shape}",
                got,
            )
        if not got.get("requires_grad"):
            return Mismatch(
                what,
                VALUES,
                "the output does not depend on the weights: keep the whole computation in "
                "torch (no .detach(), .numpy() or torch.no_grad() inside forward)",
                got,
            )
        found = Diagnosed(Array(self.expected, rtol=1e-4, atol=1e-4), self.mistakes).mismatch(
            out, "the output"
        )
        if found is not None:
            found.message = f"with the checks' weights, {found.message}"
        return found


def random_torch_state(rng: np.random.Generator) -> dict:
    """Weights for the lecture CNN in PyTorch layout (He-scaled; random biases), float32."""
    state = {}
    for name, shape in TORCH_SHAPES.items():
        if name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            values = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        else:
            values = rng.standard_normal(shape) * 0.2
        state[name] = values.astype(np.float32)
    return state


def random_keras_weights(rng: np.random.Generator) -> list[np.ndarray]:
    """Weights for the Keras lecture CNN (get_weights() order): He-scaled kernels and random
    biases (Keras starts biases at zero, which would hide a bias that is not copied)."""
    weights = []
    for shape in KERAS_SHAPES:
        if len(shape) > 1:
            values = rng.standard_normal(shape) * np.sqrt(2.0 / int(np.prod(shape[:-1])))
        else:
            values = rng.standard_normal(shape) * 0.2
        weights.append(values.astype(np.float32))
    return weights


def _images(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.random((m, 1, 28, 28), dtype=np.float32)


class LectureCnnParams(Spec):
    name = "lecture_cnn_params"
    target = family = "LectureCNN"
    adapter = "torch_module"
    outputs = "LectureCNN()"
    n_random = 0

    def anchors(self):
        def show(value):
            if type(value) is not dict or type(value.get("shapes")) is not dict:
                return []
            total = sum(int(np.prod(s)) for s in value["shapes"].values())
            return [f"LectureCNN has {total:,} parameters, as the Keras model"]

        return [Anchor("LectureCNN()", lambda: ((None, None), {}), show)]

    def draw(self, rng):
        return {}

    def expect(self, c, args, kwargs):
        return TorchParameters()

    def describe(self, c):
        return "LectureCNN()"


class LectureCnnForward(Spec):
    name = "lecture_cnn_forward"
    target = family = "LectureCNN"
    adapter = "torch_module"
    arg_names = ("state", "x")
    outputs = "LectureCNN()(x)"
    n_random = 1

    def required(self):
        return [dict(m=5), dict(m=1)]

    def hidden_required(self):
        return [dict(m=7), dict(m=16)]

    def draw(self, rng):
        return dict(m=int(rng.integers(1, 13)))

    def inputs(self, c, rng):
        return (random_torch_state(rng), _images(rng, c["m"])), {}

    def expect(self, c, args, kwargs):
        state, x = args
        logits = lecture_cnn_logits(state, x)
        return TorchForward(
            logits,
            [
                (
                    "forward returns probabilities (a softmax): return the logits, "
                    "nn.CrossEntropyLoss applies the softmax itself",
                    Array(_softmax(logits), rtol=1e-4, atol=1e-5),
                ),
                (
                    "the feature maps are flattened in (row, column, channel) order: flatten "
                    "the (m, 64, 3, 3) block as it is, torch.flatten(x, 1)",
                    Array(lecture_cnn_logits(state, x, flatten="hwc"), rtol=1e-4, atol=1e-4),
                ),
            ],
        )

    def describe(self, c):
        return f"LectureCNN with the checks' random weights on x of shape ({c['m']}, 1, 28, 28)"

    def smaller(self, c):
        return [dict(m=c["m"] - 1)] if c["m"] > 1 else []


class EvaluateResult:
    """What ``torch_evaluate`` recorded: batches of at most ``batch_size`` covering every
    example once, no gradients, and the right accuracy."""

    def __init__(self, n: int, batch_size: int, accuracy: float):
        self.n, self.batch_size, self.accuracy = n, batch_size, accuracy

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict:
            return Mismatch(what, TYPE, f"no record of the evaluation, got {type_name(got)}", got)
        batches = got.get("batches") if type(got.get("batches")) is list else []
        grads = got.get("grad_enabled") if type(got.get("grad_enabled")) is list else []
        if any(grads):
            return Mismatch(
                what,
                VALUES,
                "evaluate records gradients: run the forward passes under torch.no_grad()",
                got,
            )
        if not batches or max(batches) > self.batch_size or sum(batches) != self.n:
            shown = batches if len(batches) <= 12 else batches[:12] + ["..."]
            return Mismatch(
                what,
                VALUES,
                f"evaluate should see each of the {self.n} examples once, in batches of at "
                f"most {self.batch_size}; it used batches {shown}",
                got,
            )
        found = Number(self.accuracy, rtol=0, atol=1e-9).mismatch(got.get("accuracy"), "accuracy")
        if found is not None and _close_to(got.get("accuracy"), 1 - self.accuracy):
            found.message += " (that is the share of wrong answers)"
        return found


def _close_to(value, target: float) -> bool:
    value = value.value if type(value) is NumpyScalar else value
    return type(value) in (int, float) and abs(value - target) < 1e-9 and target != 0.5


class Evaluate(Spec):
    name = target = family = "evaluate"
    adapter = "torch_evaluate"
    arg_names = ("weight", "bias", "x", "y", "batch_size")
    outputs = "evaluate's result"
    n_random = 3

    def required(self):
        return [dict(n=437, batch_size=100), dict(n=300, batch_size=64), dict(n=5, batch_size=500)]

    def hidden_required(self):
        return [dict(n=1000, batch_size=256), dict(n=64, batch_size=64), dict(n=7, batch_size=1)]

    def draw(self, rng):
        return dict(n=int(rng.integers(1, 301)), batch_size=int(rng.integers(1, 129)))

    def inputs(self, c, rng):
        n = c["n"]
        weight = (rng.standard_normal((10, 784)) * 0.05).astype(np.float32)
        bias = (rng.standard_normal(10) * 0.1).astype(np.float32)
        x = rng.random((n, 1, 28, 28), dtype=np.float32)
        # No near ties between the two largest logits: float32 and float64 agree on argmax.
        for _ in range(20):
            scores = self._scores(weight, bias, x)
            top2 = np.sort(scores, axis=1)[:, -2:]
            close = (top2[:, 1] - top2[:, 0]) < 1e-3
            if not close.any():
                break
            x[close] = rng.random((int(close.sum()), 1, 28, 28), dtype=np.float32)
        predicted = self._scores(weight, bias, x).argmax(axis=1)
        # About 60% of the labels are what the model predicts, the rest random.
        y = np.where(rng.random(n) < 0.6, predicted, rng.integers(0, 10, n)).astype(np.int64)
        return (weight, bias, x, y, c["batch_size"]), {}

    @staticmethod
    def _scores(weight, bias, x) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float64) @ weight.T.astype(np.float64) + bias

    def expect(self, c, args, kwargs):
        weight, bias, x, y, batch_size = args
        accuracy = float(np.mean(self._scores(weight, bias, x).argmax(axis=1) == y))
        return EvaluateResult(len(x), batch_size, accuracy)

    def describe(self, c):
        return (
            f"evaluate on a linear model of the checks' weights, {c['n']} examples, "
            f"batch_size={c['batch_size']}"
        )

    def smaller(self, c):
        out = []
        if c["n"] > 1:
            out.append(dict(c, n=max(1, c["n"] // 2)))
        if c["batch_size"] > 1:
            out.append(dict(c, batch_size=max(1, c["batch_size"] // 2)))
        return out


class CopiedLogits:
    """``keras_to_torch``'s result: the Keras model untouched, the expected logits."""

    def __init__(self, expected: np.ndarray, mistakes):
        self.expected, self.mistakes = expected, mistakes

    def mismatch(self, got, what: str) -> Mismatch | None:
        if type(got) is not dict:
            return Mismatch(what, TYPE, f"no result of the copy, got {type_name(got)}", got)
        if got.get("keras_unchanged") is not True:
            return Mismatch(
                what,
                VALUES,
                "copy_keras_weights_to_torch changed the Keras model's weights: read them "
                "with get_weights() and leave the Keras model as it is",
                got,
            )
        return Diagnosed(Array(self.expected, rtol=1e-4, atol=1e-4), self.mistakes).mismatch(
            got.get("logits"), "the PyTorch copy's output"
        )


class CopyKerasWeights(Spec):
    name = "copy_keras_weights"
    target = family = "copy_keras_weights_to_torch"
    adapter = "keras_to_torch"
    arg_names = ("keras weights", "x")
    outputs = "the PyTorch copy's logits"
    # Every case draws new random weights and images (from the check's seed): one case per
    # visible check, two when grading, each building a Keras model in the kernel.
    n_random = 0

    def required(self):
        return [dict(m=4)]

    def hidden_required(self):
        return [dict(m=9)]

    def draw(self, rng):
        return dict(m=int(rng.integers(1, 13)))

    def inputs(self, c, rng):
        return (random_keras_weights(rng), _images(rng, c["m"])), {}

    def expect(self, c, args, kwargs):
        weights, x = args
        logits = lecture_cnn_logits(keras_to_torch_state(weights), x)
        no_permutation = lecture_cnn_logits(keras_to_torch_state(weights, permute_fc1=False), x)
        swapped = lecture_cnn_logits(keras_to_torch_state(weights, conv_axes=(3, 2, 1, 0)), x)
        return CopiedLogits(
            logits,
            [
                (
                    "the weights of fc1 are not in PyTorch's (channel, row, column) flatten "
                    "order: the 576 rows of Keras' first dense kernel follow its (row, "
                    "column, channel) order; reshape them to (3, 3, 64), move the channel "
                    "axis first and flatten again before transposing",
                    Array(no_permutation, rtol=1e-4, atol=1e-4),
                ),
                (
                    "the convolution kernels have their height and width swapped: Keras' "
                    "(f_H, f_W, n_C_prev, n_C) becomes PyTorch's (n_C, n_C_prev, f_H, f_W) "
                    "with transpose(3, 2, 0, 1)",
                    Array(swapped, rtol=1e-4, atol=1e-4),
                ),
            ],
        )

    def describe(self, c):
        return (
            "a Keras lecture CNN with the checks' random weights (biases too), copied into "
            f"LectureCNN(), on x of shape ({c['m']}, 1, 28, 28)"
        )

    def smaller(self, c):
        return [dict(m=c["m"] - 1)] if c["m"] > 1 else []


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        ConvOutputSize(),
        ConvParamCount(),
        ReceptiveField(),
        BuildModelLayers(),
        BuildModelShapes(),
        BuildModelParams(),
        CompileModel(),
        KerasAccuracy(),
        LectureCnnParams(),
        LectureCnnForward(),
        Evaluate(),
        TorchAccuracy(),
        CopyKerasWeights(),
        CroppingOutputShape(),
        CroppingNested(),
        FeatureMapCropper(),
        CroppedLayers(),
        CroppedShapes(),
        CroppedParams(),
        ClassicLayers(),
        ClassicShapes(),
        ClassicParams(),
        CroppedAccuracy(),
        CroppedModelCrops(),
        ClassicAccuracy(),
    )
}
