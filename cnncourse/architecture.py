"""Shape, parameter and receptive-field arithmetic for convolutional networks.

Pure functions (no TensorFlow or PyTorch import) shared by lectures, assignments and
tests, so that every number a notebook states about a network can be recomputed from
the formulas and cross-checked against the framework's own answer:

* :func:`conv_output_size`, :func:`pool_output_size` - ``floor((n + 2p - f) / s) + 1``
* :func:`transposed_conv_output_size` - ``o = s (i - 1) + a + k - 2p``
* :func:`conv_param_count`, :func:`dense_param_count`
* :func:`receptive_field_table`, :func:`receptive_field_sizes`,
  :func:`receptive_field_fraction` - how much of the image one neuron sees
* :func:`normalize_cropping2d`, :func:`cropping2d_output_shape` - the three argument
  forms of ``keras.layers.Cropping2D``
* :func:`sequential_summary` - output shape and parameters of each layer of a plain
  stack (conv / pool / crop / dropout / flatten / dense), e.g. :data:`LECTURE_CNN`
* :func:`activation_memory_bytes` - memory the activations of one batch need
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

IntPair = tuple[int, int]
Cropping2DArg = int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]


def _pair(value: int | Sequence[int], name: str) -> IntPair:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; rejects anything else."""
    if isinstance(value, int):
        return (value, value)
    pair = tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, not {value!r}")
    return (pair[0], pair[1])


def conv_output_size(n: int, f: int, pad: int = 0, stride: int = 1) -> int:
    """Output side of a convolution (or pooling) window sliding over one axis.

    ``n_out = floor((n + 2 * pad - f) / stride) + 1``

    Args:
        n: input size along the axis (e.g. ``n_H_prev``).
        f: window (kernel) size along the axis.
        pad: zeros added on *each* side.
        stride: step between two window positions.

    Raises:
        ValueError: when the window does not fit in the padded input or an argument is
            out of range.
    """
    if n < 1 or f < 1 or stride < 1 or pad < 0:
        raise ValueError(
            f"need n >= 1, f >= 1, stride >= 1, pad >= 0 (got {n}, {f}, {stride}, {pad})"
        )
    if n + 2 * pad < f:
        raise ValueError(f"a window of {f} does not fit in {n} + 2*{pad} positions")
    return (n + 2 * pad - f) // stride + 1


def pool_output_size(n: int, f: int, stride: int | None = None) -> int:
    """Output side of a pooling layer without padding; ``stride`` defaults to ``f``."""
    return conv_output_size(n, f, 0, f if stride is None else stride)


def same_padding_output_size(n: int, stride: int = 1) -> int:
    """Output side of a Keras ``padding="same"`` convolution: ``ceil(n / stride)``."""
    if n < 1 or stride < 1:
        raise ValueError("n and stride must be positive")
    return -(-n // stride)


def transposed_conv_output_size(i: int, k: int, s: int = 1, p: int = 0, a: int = 0) -> int:
    """Output side of a transposed convolution: ``o = s (i - 1) + a + k - 2p``.

    Args:
        i: input size along the axis.
        k: kernel size.
        s: stride (the input is spread out with ``s - 1`` zeros between entries).
        p: padding removed from each side of the full output.
        a: output padding, extra rows/columns added on one side (``0 <= a < s``);
            it picks among the input sizes that a stride-``s`` convolution maps to ``i``.

    Keras ``Conv2DTranspose(padding="valid")`` is ``p = 0``; with ``padding="same"`` and an
    explicit ``output_padding=a`` it is ``p = k // 2``. PyTorch ``ConvTranspose2d`` takes
    ``padding=p`` and ``output_padding=a`` directly.
    """
    if i < 1 or k < 1 or s < 1 or p < 0 or a < 0:
        raise ValueError(f"need i, k, s >= 1 and p, a >= 0 (got {i}, {k}, {s}, {p}, {a})")
    if a >= s:
        raise ValueError(f"output padding a={a} must be smaller than the stride s={s}")
    out = s * (i - 1) + a + k - 2 * p
    if out < 1:
        raise ValueError(f"padding p={p} removes the whole output")
    return out


def conv_param_count(f: int | Sequence[int], n_c_prev: int, n_c: int, use_bias: bool = True) -> int:
    """Trainable parameters of a 2-D convolution: ``f_H * f_W * n_C_prev * n_C (+ n_C)``.

    ``f`` is the kernel side (square) or ``(f_H, f_W)``; one bias per filter.
    """
    f_h, f_w = _pair(f, "f")
    return f_h * f_w * n_c_prev * n_c + (n_c if use_bias else 0)


def dense_param_count(n_in: int, n_out: int, use_bias: bool = True) -> int:
    """Trainable parameters of a dense layer: ``n_in * n_out (+ n_out)``."""
    return n_in * n_out + (n_out if use_bias else 0)


# --------------------------------------------------------------------------- receptive fields


def receptive_field_table(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Side of the patch that one neuron of the *last* layer sees, layer by layer.

    Walks from the top of the stack down to the input: one neuron of the last layer is
    ``1`` position; a window of ``r`` positions at the output of a layer with kernel
    ``k`` and stride ``s`` covers ``(r - 1) * s + k`` positions of that layer's input.

    Args:
        layers: ``(kernel, stride)`` of each conv or pooling layer, input first.

    Returns:
        ``len(layers) + 1`` sides: ``[1, <in last layer's input>, ..., <in the image>]``.
        For the lecture CNN ``[(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]`` this is
        ``[1, 3, 6, 8, 16, 18]``: an 18x18 patch of the image.
    """
    sizes = [1]
    for kernel, stride in reversed(list(layers)):
        if kernel < 1 or stride < 1:
            raise ValueError(f"kernel and stride must be positive, not {(kernel, stride)}")
        sizes.append((sizes[-1] - 1) * stride + kernel)
    return sizes


def receptive_field_sizes(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Receptive field in the input image of one neuron after each layer (bottom-up).

    The classic recursion ``r_l = r_(l-1) + (k_l - 1) * j_(l-1)``, ``j_l = j_(l-1) * s_l``
    (``j`` is the distance, in input pixels, between neighbouring neurons). The last
    entry equals the last entry of :func:`receptive_field_table`.
    """
    field, jump = 1, 1
    sizes = []
    for kernel, stride in layers:
        if kernel < 1 or stride < 1:
            raise ValueError(f"kernel and stride must be positive, not {(kernel, stride)}")
        field += (kernel - 1) * jump
        jump *= stride
        sizes.append(field)
    return sizes


def receptive_field_fraction(side: int, image_side: int = 28) -> float:
    """Share of a square ``image_side`` image covered by a ``side`` x ``side`` patch."""
    side = min(side, image_side)
    return side * side / (image_side * image_side)


#: The lecture CNN's conv/pool geometry as ``(kernel, stride)``, input first.
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
        items = tuple(cropping)
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
        layers: specs, one per layer:
            ``("conv", n_C, f[, stride[, pad]])`` (valid padding unless ``pad`` given),
            ``("pool", f[, stride])``, ``("crop", cropping)``, ``("dropout",)``,
            ``("flatten",)``, ``("dense", units)``.

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
            n_c, f = args[0], args[1]
            stride = args[2] if len(args) > 2 else 1
            pad = args[3] if len(args) > 3 else 0
            n_h, n_w, n_c_prev = shape
            params = conv_param_count(f, n_c_prev, n_c)
            shape = (
                conv_output_size(n_h, f, pad, stride),
                conv_output_size(n_w, f, pad, stride),
                n_c,
            )
        elif kind == "pool":
            f = args[0]
            stride = args[1] if len(args) > 1 else f
            n_h, n_w, n_c = shape
            shape = (pool_output_size(n_h, f, stride), pool_output_size(n_w, f, stride), n_c)
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
