"""Shape, parameter and receptive-field arithmetic for convolutional networks.

This module is the **one home** of the course's arithmetic: lectures, assignments, the
explorer and the tests all call these pure functions (no TensorFlow or PyTorch import), so
every number a notebook states about a network is recomputed from one formula and can be
cross-checked against the framework's own answer.

**One argument order.** Every output-size function takes ``(n, f, pad=0, stride=1,
dilation=1)``: input side, window side, zeros added on *each* side, step between two
window positions, spacing between the taps of a dilated window. A dilated window of side
``f`` spans ``f + (f - 1) * (dilation - 1)`` input positions (:func:`effective_kernel_size`).
Impossible settings (a window larger than the padded input, ``stride < 1``, ``pad < 0``,
``dilation < 1``, non-integers) raise :class:`ValueError`.

**One receptive-field convention.** Layers are listed input first as ``(f, stride)`` or
``(f, stride, dilation)``. Every receptive-field list has ``len(layers) + 1`` entries and
starts with ``1``:

* :func:`receptive_field_sizes` (bottom-up): entry 0 is one input pixel (the input counts;
  a pixel sees itself), entry ``l`` is the side of the input patch one unit *after layer l*
  sees. For the lecture CNN: ``[1, 3, 4, 8, 10, 18]``.
* :func:`receptive_field_table` (top-down): entry 0 is one unit of the *last* layer, entry
  ``k`` is the side of the patch it covers ``k`` layers further down; the last entry is the
  patch in the image. For the lecture CNN: ``[1, 3, 6, 8, 16, 18]``.

Both end with the same number: the patch of the image that one unit of the last layer sees.

Contents:

* :func:`conv_output_size`, :func:`pool_output_size`, :func:`same_pad`,
  :func:`same_padding_output_size`, :func:`transposed_conv_output_size`,
  :func:`effective_kernel_size`, :func:`im2col_shapes`
* :func:`conv_param_count`, :func:`dense_param_count`, :func:`dense_weights_per_neuron`
* :func:`receptive_field_sizes`, :func:`receptive_field_table`,
  :func:`receptive_field_fraction`
* :func:`normalize_cropping2d`, :func:`cropping2d_output_shape` - the three argument
  forms of ``keras.layers.Cropping2D``
* :func:`sequential_summary` - output shape and parameters of each layer of a plain
  stack (conv / pool / global average pool / crop / dropout / flatten / dense), e.g.
  :data:`LECTURE_CNN`
* :func:`activation_memory_bytes` - memory the activations of one batch need
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

IntPair = tuple[int, int]
Cropping2DArg = int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]
#: A conv or pooling layer for the receptive-field functions: ``(f, stride[, dilation])``.
FieldLayer = tuple[int, int] | tuple[int, int, int]


def _int(value: object, name: str, minimum: int) -> int:
    """``value`` as a Python int, or ValueError if it is not an integer ``>= minimum``.

    Accepts numpy integers; rejects bools, floats and strings (``3.0`` is not a size).
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def _pair(value: int | Sequence[int], name: str) -> IntPair:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; rejects anything else."""
    if isinstance(value, int):
        return (value, value)
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, not {value!r}")
    return (pair[0], pair[1])


# --------------------------------------------------------------------------- output sizes


def effective_kernel_size(f: int, dilation: int = 1) -> int:
    """Input positions a dilated window spans: ``f + (f - 1) * (dilation - 1)``.

    A 3x3 kernel with ``dilation=2`` has its taps two pixels apart and spans 5x5.
    """
    f = _int(f, "f", 1)
    dilation = _int(dilation, "dilation", 1)
    return f + (f - 1) * (dilation - 1)


def conv_output_size(n: int, f: int, pad: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Output side of a convolution (or pooling) window sliding over one axis.

    ``n_out = floor((n + 2 * pad - f_eff) / stride) + 1`` with
    ``f_eff = f + (f - 1) * (dilation - 1)`` (``f_eff = f`` without dilation).

    Args:
        n: input size along the axis (e.g. ``n_H_prev``).
        f: window (kernel) size along the axis.
        pad: zeros added on *each* side.
        stride: step between two window positions.
        dilation: spacing between the window's taps (Keras ``dilation_rate``).

    Raises:
        ValueError: when the window does not fit in the padded input or an argument is
            out of range (``n, f, stride, dilation < 1``, ``pad < 0``, not an integer).

    Examples: ``conv_output_size(28, 5) == 24``; ``conv_output_size(7, 3, 0, 2) == 3``;
    ``conv_output_size(28, 3, dilation=2) == 24``.
    """
    n = _int(n, "n", 1)
    pad = _int(pad, "pad", 0)
    stride = _int(stride, "stride", 1)
    span = effective_kernel_size(f, dilation)
    if n + 2 * pad < span:
        what = f"a window of {f}"
        if span != f:
            what += f" with dilation {dilation} (span {span})"
        raise ValueError(f"{what} does not fit in {n} + 2*{pad} = {n + 2 * pad} positions")
    return (n + 2 * pad - span) // stride + 1


def pool_output_size(
    n: int, f: int, pad: int = 0, stride: int | None = None, dilation: int = 1
) -> int:
    """Output side of a pooling layer; ``stride`` defaults to ``f`` (as in Keras and PyTorch).

    Same argument order and errors as :func:`conv_output_size`:
    ``pool_output_size(26, 2) == 13``, ``pool_output_size(11, 2) == 5`` (rounds down).
    """
    return conv_output_size(n, f, pad, f if stride is None else stride, dilation)


def same_pad(f: int, dilation: int = 1) -> int:
    """Zeros on each side that keep the size at stride 1 ("same"): ``(f_eff - 1) / 2``.

    Raises ValueError when the effective window is even (no symmetric padding exists).
    """
    span = effective_kernel_size(f, dilation)
    if span % 2 == 0:
        raise ValueError(f"'same' padding is symmetric only for odd windows (span {span})")
    return (span - 1) // 2


def same_padding_output_size(n: int, stride: int = 1) -> int:
    """Output side of a Keras ``padding="same"`` convolution: ``ceil(n / stride)``."""
    n = _int(n, "n", 1)
    stride = _int(stride, "stride", 1)
    return -(-n // stride)


def transposed_conv_output_size(
    n: int, f: int, pad: int = 0, stride: int = 1, dilation: int = 1, output_padding: int = 0
) -> int:
    """Output side of a transposed convolution: ``o = s (n - 1) + a + f_eff - 2p``.

    Same argument order as :func:`conv_output_size`, plus ``output_padding`` last.

    Args:
        n: input size along the axis (``i`` in the formula).
        f: kernel size (``k``); ``f_eff = f + (f - 1) * (dilation - 1)``.
        pad: padding removed from each side of the full output (``p``).
        stride: the input is spread out with ``stride - 1`` zeros between entries (``s``).
        dilation: spacing between the kernel's taps.
        output_padding: extra rows/columns added on one side (``a``, ``0 <= a < s``); it
            picks among the input sizes that a stride-``s`` convolution maps to ``n``.

    Keras ``Conv2DTranspose(padding="valid")`` is ``pad = 0``; with ``padding="same"`` and an
    explicit ``output_padding=a`` it is ``pad = f // 2``. PyTorch ``ConvTranspose2d`` takes
    ``padding=pad`` and ``output_padding=a`` directly.
    """
    n = _int(n, "n", 1)
    pad = _int(pad, "pad", 0)
    stride = _int(stride, "stride", 1)
    output_padding = _int(output_padding, "output_padding", 0)
    span = effective_kernel_size(f, dilation)
    if output_padding >= stride and output_padding >= dilation:
        raise ValueError(
            f"output padding {output_padding} must be smaller than the stride {stride} "
            f"(or the dilation {dilation})"
        )
    out = stride * (n - 1) + output_padding + span - 2 * pad
    if out < 1:
        raise ValueError(f"padding {pad} removes the whole output")
    return out


def im2col_shapes(
    n_H_prev: int,
    n_W_prev: int,
    n_C_prev: int,
    f: int,
    n_C: int,
    pad: int = 0,
    stride: int = 1,
    m: int = 1,
) -> dict[str, tuple[int, ...]]:
    """Shapes of every array in an im2col convolution, without allocating anything.

    Args:
        n_H_prev, n_W_prev, n_C_prev: input ``(n_H_prev, n_W_prev, n_C_prev)`` per example.
        f: filter side; n_C: number of filters; pad, stride: as in :func:`conv_output_size`.
        m: examples in the batch (the columns of ``X_col`` cover the whole batch).

    Returns:
        ``"out"`` (n_H, n_W), ``"X_col"`` (f*f*n_C_prev, m*n_H*n_W), ``"W_row"``
        (n_C, f*f*n_C_prev), ``"product"`` (n_C, m*n_H*n_W) and ``"Z"`` (m, n_H, n_W, n_C).
        For a 227x227x3 input and 96 filters of 11x11, stride 4: X_col is 363 x 3025.
    """
    n_H = conv_output_size(n_H_prev, f, pad, stride)
    n_W = conv_output_size(n_W_prev, f, pad, stride)
    n_C_prev = _int(n_C_prev, "n_C_prev", 1)
    n_C = _int(n_C, "n_C", 1)
    m = _int(m, "m", 1)
    patch = f * f * n_C_prev
    return {
        "out": (n_H, n_W),
        "X_col": (patch, m * n_H * n_W),
        "W_row": (n_C, patch),
        "product": (n_C, m * n_H * n_W),
        "Z": (m, n_H, n_W, n_C),
    }


# --------------------------------------------------------------------------- parameter counts


def conv_param_count(f: int | Sequence[int], n_c_prev: int, n_c: int, use_bias: bool = True) -> int:
    """Trainable parameters of a 2-D convolution: ``f_H * f_W * n_C_prev * n_C (+ n_C)``.

    ``f`` is the kernel side (square) or ``(f_H, f_W)``; one bias per filter. The count
    depends neither on the image size (the filters are shared by every position) nor on
    the dilation (a dilated kernel has the same number of taps).
    """
    f_h, f_w = _pair(f, "f")
    return f_h * f_w * n_c_prev * n_c + (n_c if use_bias else 0)


def dense_param_count(n_in: int, n_out: int, use_bias: bool = True) -> int:
    """Trainable parameters of a dense layer: ``n_in * n_out (+ n_out)``."""
    return n_in * n_out + (n_out if use_bias else 0)


def dense_weights_per_neuron(n_H: int, n_W: int, n_C: int) -> int:
    """Weights one fully connected neuron needs to see a whole ``n_H x n_W x n_C`` image.

    ``dense_weights_per_neuron(200, 200, 3) == 120_000``; it grows like ``n**2`` with the
    image side, and a layer of ``n_H * n_W`` such neurons like ``n**4``.
    """
    return n_H * n_W * n_C


# --------------------------------------------------------------------------- receptive fields


def _field_layer(layer: Sequence[int]) -> tuple[int, int]:
    """``(f, stride[, dilation])`` as ``(effective window, stride)``, validated."""
    items = tuple(layer)
    if len(items) not in (2, 3):
        raise ValueError(f"a layer is (f, stride) or (f, stride, dilation), not {layer!r}")
    dilation = items[2] if len(items) == 3 else 1
    return effective_kernel_size(items[0], dilation), _int(items[1], "stride", 1)


def receptive_field_sizes(layers: Sequence[FieldLayer]) -> list[int]:
    """Bottom-up: side of the input patch one unit sees, the input pixel first.

    The recursion ``r_l = r_(l-1) + (f_eff_l - 1) * j_(l-1)``, ``j_l = j_(l-1) * s_l``, with
    ``r_0 = 1`` (an input pixel sees itself) and ``j_0 = 1`` (``j`` is the distance, in input
    pixels, between two neighbouring units of a layer).

    Args:
        layers: ``(f, stride)`` or ``(f, stride, dilation)`` of each conv or pooling layer,
            input first. Padding does not change a receptive field.

    Returns:
        ``len(layers) + 1`` sides: ``[1, after layer 1, ..., after the last layer]``.
        Two 3x3 convolutions: ``[1, 3, 5]``; the lecture CNN
        (:data:`LECTURE_CNN_FIELD_LAYERS`): ``[1, 3, 4, 8, 10, 18]``; a 3x3 convolution
        with dilation 2: ``[1, 5]``.
    """
    field, jump = 1, 1
    sizes = [field]
    for layer in layers:
        span, stride = _field_layer(layer)
        field += (span - 1) * jump
        jump *= stride
        sizes.append(field)
    return sizes


def receptive_field_table(layers: Sequence[FieldLayer]) -> list[int]:
    """Top-down: side of the patch that one unit of the *last* layer covers, layer by layer.

    Walks from the top of the stack down to the input: one unit of the last layer is ``1``
    position; a window of ``r`` positions at the output of a layer with (effective) window
    ``f_eff`` and stride ``s`` covers ``(r - 1) * s + f_eff`` positions of that layer's input.

    Args:
        layers: as for :func:`receptive_field_sizes`, input first.

    Returns:
        ``len(layers) + 1`` sides: ``[1, <in the last layer's input>, ..., <in the image>]``.
        For the lecture CNN this is ``[1, 3, 6, 8, 16, 18]``: an 18x18 patch of the image.
        The last entry equals the last entry of :func:`receptive_field_sizes`.
    """
    sizes = [1]
    for layer in reversed(list(layers)):
        span, stride = _field_layer(layer)
        sizes.append((sizes[-1] - 1) * stride + span)
    return sizes


def receptive_field_fraction(side: int, image_side: int = 28) -> float:
    """Share of a square ``image_side`` image covered by a ``side`` x ``side`` patch."""
    side = min(side, image_side)
    return side * side / (image_side * image_side)


#: The lecture CNN's conv/pool geometry as ``(f, stride)``, input first.
LECTURE_CNN_FIELD_LAYERS: tuple[tuple[int, int], ...] = ((3, 1), (2, 2), (3, 1), (2, 2), (3, 1))
#: The same three 3x3 convolutions without the pooling layers.
LECTURE_CNN_NO_POOL_FIELD_LAYERS: tuple[tuple[int, int], ...] = ((3, 1), (3, 1), (3, 1))


# --------------------------------------------------------------------------- cropping


def normalize_cropping2d(cropping: Cropping2DArg) -> tuple[IntPair, IntPair]:
    """The three ``Cropping2D`` argument forms as ``((top, bottom), (left, right))``.

    * ``c`` (int): ``c`` rows/columns off every side;
    * ``(sym_h, sym_w)``: ``sym_h`` rows off top and bottom, ``sym_w`` columns off left
      and right;
    * ``((top, bottom), (left, right))``: each side on its own.
    """
    if isinstance(cropping, int):
        result = ((cropping, cropping), (cropping, cropping))
    else:
        items: tuple = tuple(cropping)
        if len(items) != 2:
            raise ValueError(f"cropping must have 2 entries (height, width), not {cropping!r}")
        if all(isinstance(v, int) for v in items):
            result = ((items[0], items[0]), (items[1], items[1]))
        else:
            result = (_pair(items[0], "height cropping"), _pair(items[1], "width cropping"))
    if any(v < 0 for pair in result for v in pair):
        raise ValueError(f"cropping must not be negative: {cropping!r}")
    return result


def cropping2d_output_shape(shape: Sequence[int], cropping: Cropping2DArg) -> tuple[int, ...]:
    """Shape after ``keras.layers.Cropping2D(cropping)`` (channels-last).

    Args:
        shape: ``(n_H, n_W, n_C)`` or ``(m, n_H, n_W, n_C)``; the two axes before the
            last are cropped.
        cropping: any of the three forms accepted by :func:`normalize_cropping2d`.

    Example: ``cropping2d_output_shape((28, 28, 1), ((5, 5), (5, 5))) == (18, 18, 1)``.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 3:
        raise ValueError(f"shape must be (n_H, n_W, n_C) or (m, n_H, n_W, n_C), not {shape}")
    (top, bottom), (left, right) = normalize_cropping2d(cropping)
    n_h, n_w = shape[-3], shape[-2]
    new_h, new_w = n_h - top - bottom, n_w - left - right
    if new_h < 1 or new_w < 1:
        raise ValueError(f"cropping {cropping!r} removes all of a {n_h}x{n_w} input")
    return shape[:-3] + (new_h, new_w, shape[-1])


# --------------------------------------------------------------------------- whole stacks


@dataclass(frozen=True)
class LayerInfo:
    """One row of :func:`sequential_summary`: ``shape`` excludes the batch axis."""

    name: str
    shape: tuple[int, ...]
    params: int


#: The lecture CNN (unit 7) as layer specs for :func:`sequential_summary`.
LECTURE_CNN: tuple[tuple, ...] = (
    ("conv", 32, 3),
    ("pool", 2),
    ("conv", 64, 3),
    ("pool", 2),
    ("conv", 64, 3),
    ("flatten",),
    ("dense", 64),
    ("dense", 10),
)

#: The unit-9 classifier without its leading ``("crop", 5)``.
CLASSIC_CLASSIFIER: tuple[tuple, ...] = (
    ("conv", 32, 3),
    ("pool", 2),
    ("dropout",),
    ("conv", 64, 3),
    ("pool", 2),
    ("dropout",),
    ("flatten",),
    ("dense", 256),
    ("dense", 10),
)


def sequential_summary(input_shape: Sequence[int], layers: Sequence[tuple]) -> list[LayerInfo]:
    """Output shape and parameter count of each layer of a plain channels-last stack.

    Args:
        input_shape: ``(n_H, n_W, n_C)`` without the batch axis.
        layers: specs, one per layer; optional arguments follow the one argument order
            of :func:`conv_output_size`:
            ``("conv", n_C, f[, pad[, stride[, dilation]]])`` (valid padding, stride 1),
            ``("pool", f[, pad[, stride]])`` (stride ``f``), ``("global_avg_pool",)``
            (``(n_H, n_W, n_C) -> (n_C,)``, no parameters), ``("crop", cropping)``,
            ``("dropout",)``, ``("flatten",)``, ``("dense", units)``.

    Returns:
        One :class:`LayerInfo` per layer, e.g. for :data:`LECTURE_CNN` on ``(28, 28, 1)``
        the shapes ``(26, 26, 32) ... (10,)`` and parameters summing to 93,322.
    """
    shape = tuple(int(d) for d in input_shape)
    rows: list[LayerInfo] = []
    for spec in layers:
        kind, args = spec[0], spec[1:]
        params = 0
        if kind == "conv":
            n_c, f, *window = args
            n_h, n_w, n_c_prev = shape
            params = conv_param_count(f, n_c_prev, n_c)
            shape = (conv_output_size(n_h, f, *window), conv_output_size(n_w, f, *window), n_c)
        elif kind == "pool":
            f, *window = args
            n_h, n_w, n_c = shape
            shape = (pool_output_size(n_h, f, *window), pool_output_size(n_w, f, *window), n_c)
        elif kind == "global_avg_pool":
            if len(shape) != 3:
                raise ValueError(f"global average pooling needs (n_H, n_W, n_C), got {shape}")
            shape = (shape[-1],)
        elif kind == "crop":
            shape = cropping2d_output_shape(shape, args[0])
        elif kind == "dropout":
            pass
        elif kind == "flatten":
            size = 1
            for d in shape:
                size *= d
            shape = (size,)
        elif kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"dense layer needs a flat input, got {shape}")
            params = dense_param_count(shape[0], args[0])
            shape = (args[0],)
        else:
            raise ValueError(f"unknown layer kind {kind!r}")
        rows.append(LayerInfo(kind, shape, params))
    return rows


def total_params(rows: Sequence[LayerInfo]) -> int:
    """Sum of the ``params`` column of :func:`sequential_summary`."""
    return sum(row.params for row in rows)


def activation_memory_bytes(
    shapes: Sequence[Sequence[int]], batch_size: int, bytes_per_value: int = 4
) -> int:
    """Bytes needed to keep the activations of one batch (per-example ``shapes``).

    Training keeps every layer's output for the backward pass, so this is the part of
    the memory that grows with the batch size: ``batch * sum(prod(shape)) * bytes``
    (``bytes_per_value`` 4 for float32, 2 for float16). Weights, their gradients,
    optimizer state and framework workspace come on top.
    """
    if batch_size < 1 or bytes_per_value < 1:
        raise ValueError("batch_size and bytes_per_value must be positive")
    values = 0
    for shape in shapes:
        size = 1
        for d in shape:
            size *= int(d)
        values += size
    return batch_size * values * bytes_per_value
