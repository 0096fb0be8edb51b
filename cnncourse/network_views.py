"""Looking inside a trained CNN: its mistakes and where it looks.

Used by lectures 7-9. Pure numpy parts (tested without any framework):

* :func:`confusion_matrix`, :func:`most_confused_pairs`, :func:`per_class_accuracy`,
  :func:`misclassified_indices` - what the classifier gets wrong;
* :func:`grad_cam_from_activations`, :func:`upsample_maps`, :func:`map_share_on` - the
  Grad-CAM arithmetic, given a layer's activations and the gradients of a class score;

How training went over several seeds (the over-fitting rule, mean ± sd, the reproduction's
results) is :mod:`cnncourse.training_runs`.

Framework parts (TensorFlow/Keras and PyTorch are imported only inside them):
:func:`grad_cam_keras`, :func:`grad_cam_torch`, :func:`saliency_keras`,
:func:`saliency_torch`, :func:`keras_layer_outputs`.

Figures (matplotlib, imported when drawing): :func:`plot_confusion_matrix`,
:func:`show_misclassified`, :func:`show_layer_maps`, :func:`show_heatmaps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- mistakes


def confusion_matrix(
    y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 10
) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: true labels ``(m,)``, integers in ``[0, n_classes)``.
        y_pred: predicted labels ``(m,)``, same range.
        n_classes: number of classes.

    Returns:
        ``(n_classes, n_classes)`` int64 array ``cm``: ``cm[i, j]`` is the number of examples of
        class ``i`` predicted as ``j`` (rows: truth, columns: prediction). The diagonal holds
        the correct predictions and ``cm.sum() == m``.
    """
    t = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise ValueError(f"{name} has labels outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Share of each true class predicted correctly, ``(n_classes,)``; NaN for empty rows."""
    cm = np.asarray(cm)
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def most_confused_pairs(cm: np.ndarray, k: int = 3) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as ``(true, predicted, count)``, largest first.

    Pairs with a count of 0 are left out; ties are broken by ``(true, predicted)``.
    """
    cm = np.asarray(cm)
    cells = [
        (int(cm[i, j]), i, j)
        for i in range(cm.shape[0])
        for j in range(cm.shape[1])
        if i != j and cm[i, j] > 0
    ]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(i, j, count) for count, i, j in cells[:k]]


def misclassified_indices(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    confidence: Sequence[float] | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """Indices of the wrong predictions.

    Args:
        y_true, y_pred: labels ``(m,)``.
        confidence: optional ``(m,)`` probability the model gave its prediction; when given,
            the most confident mistakes come first, otherwise the original order is kept.
        limit: keep at most this many.
    """
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    wrong = np.flatnonzero(t != p)
    if confidence is not None:
        conf = np.asarray(confidence).ravel()[wrong]
        wrong = wrong[np.argsort(-conf, kind="stable")]
    return wrong[:limit] if limit is not None else wrong


# --------------------------------------------------------------------------- Grad-CAM arithmetic


def grad_cam_from_activations(
    activations: np.ndarray, gradients: np.ndarray, normalize: bool = True
) -> np.ndarray:
    """Grad-CAM maps from a conv layer's activations and the gradients of a class score.

    Each channel ``k`` gets the weight ``alpha_k = mean over positions of dS/dA_k``, and the map
    is ``relu(sum_k alpha_k * A_k)``: positions where channels that raise the score are active.

    Args:
        activations: ``(m, n_H, n_W, n_C)`` channels-last activations ``A`` of the layer.
        gradients: ``(m, n_H, n_W, n_C)`` gradients ``dS/dA`` of each example's class score.
        normalize: divide each map by its maximum (maps that are all zero stay zero).

    Returns:
        ``(m, n_H, n_W)`` non-negative maps, in ``[0, 1]`` when ``normalize``.
    """
    a = np.asarray(activations, dtype=np.float64)
    g = np.asarray(gradients, dtype=np.float64)
    if a.shape != g.shape or a.ndim != 4:
        raise ValueError(
            f"need two (m, n_H, n_W, n_C) arrays of one shape, got {a.shape}, {g.shape}"
        )
    alpha = g.mean(axis=(1, 2), keepdims=True)  # (m, 1, 1, n_C)
    cam = np.maximum((alpha * a).sum(axis=-1), 0.0)  # (m, n_H, n_W)
    if normalize:
        peak = cam.max(axis=(1, 2), keepdims=True)
        cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return cam


def upsample_maps(
    maps: np.ndarray,
    size: tuple[int, int],
    centres: tuple[float, float] | None = None,
    outside: str = "nearest",
) -> np.ndarray:
    """Bilinear resize of ``(m, h, w)`` maps to ``(m, *size)``.

    Args:
        maps: ``(m, h, w)`` maps of a layer, e.g. Grad-CAM maps of an 11x11 conv layer.
        size: ``(H, W)`` of the output, e.g. the input image's.
        centres: ``(start, step)``: cell ``i`` of the map sits at output pixel
            ``start + step * i`` along both axes. For a conv layer this is where the centre
            of each unit's receptive field lies in the image: ``start = (field - 1) / 2`` and
            ``step`` the product of the strides below it (valid padding). Default: the cells
            are stretched evenly over the output (pixel centres aligned).
        outside: what pixels beyond the first and last centres get: ``"nearest"``, the
            nearest cell's value (the edge values carry on to the border, which draws
            stripes), or ``"nan"``: no value, since no cell is centred there (a heat map then
            leaves them out and :func:`map_share_on` ignores them).

    A constant map stays constant (inside the centres, with ``outside="nan"``).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (m, h, w), got {maps.shape}")
    if outside not in ("nearest", "nan"):
        raise ValueError(f"outside must be 'nearest' or 'nan', got {outside!r}")
    m, h, w = maps.shape
    out_h, out_w = size
    beyond = []

    def coords(n_in: int, n_out: int) -> np.ndarray:
        # fractional cell index of every output pixel, clipped to the cells that exist
        if centres is None:
            start, step = 0.5 * n_out / n_in - 0.5, n_out / n_in
        else:
            start, step = centres
        index = (np.arange(n_out) - start) / step
        beyond.append((index < 0) | (index > n_in - 1))
        return np.clip(index, 0, n_in - 1)

    rows, cols = coords(h, out_h), coords(w, out_w)
    r0 = np.floor(rows).astype(int)
    c0 = np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[None, :, None], (cols - c0)[None, None, :]
    top = maps[:, r0][:, :, c0] * (1 - fc) + maps[:, r0][:, :, c1] * fc
    bottom = maps[:, r1][:, :, c0] * (1 - fc) + maps[:, r1][:, :, c1] * fc
    out = top * (1 - fr) + bottom * fr
    assert out.shape == (m, out_h, out_w)
    if outside == "nan":
        out[:, beyond[0], :] = np.nan
        out[:, :, beyond[1]] = np.nan
    return out


def map_share_on(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's total weight that lies inside a boolean mask, ``(m,)``.

    E.g. the share of a Grad-CAM heat map that falls on the digit's ink. ``maps`` and
    ``masks`` are ``(m, H, W)``; NaN pixels of a map (no value there) count for nothing; an
    all-zero map gives NaN.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ")
    maps = np.nan_to_num(maps, nan=0.0)
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


# --------------------------------------------------------------------------- Keras


def _keras_score_model(model: Any, layer_name: str | None) -> Any:
    """A model returning ``(layer activations, class scores before the softmax)``.

    When the last layer is a ``Dense`` with a softmax, the scores are its pre-activation
    (logits): a saturated softmax would give vanishing gradients.
    """
    import keras

    last = model.layers[-1]
    outputs = [model.get_layer(layer_name).output] if layer_name else []
    softmax_dense = (
        isinstance(last, keras.layers.Dense)
        and getattr(last.activation, "__name__", "") == "softmax"
    )
    outputs.append(last.input if softmax_dense else model.outputs[0])
    return keras.Model(model.inputs, outputs), (last if softmax_dense else None)


def _keras_scores(head_input: Any, dense: Any) -> Any:
    import keras

    if dense is None:
        return head_input
    z = keras.ops.matmul(head_input, dense.kernel)
    return z + dense.bias if dense.use_bias else z


def _class_indices(scores: np.ndarray, class_indices: Sequence[int] | None) -> np.ndarray:
    if class_indices is None:
        return np.asarray(scores).argmax(axis=1)
    idx = np.asarray(class_indices, dtype=np.int64).ravel()
    if idx.shape[0] != np.asarray(scores).shape[0]:
        raise ValueError("need one class index per image")
    return idx


def grad_cam_keras(
    model: Any,
    images: np.ndarray,
    layer_name: str,
    class_indices: Sequence[int] | None = None,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of a Keras model at the layer ``layer_name`` (channels-last conv output).

    Args:
        model: a built Keras model (functional or ``Sequential`` with ``keras.Input``).
        images: ``(m, n_H, n_W, n_C)`` float32 inputs.
        layer_name: name of a layer with ``(m, h, w, k)`` output, e.g. ``"conv3"``.
        class_indices: ``(m,)`` class explained for each image; default: the predicted one.
        normalize: scale each map to a maximum of 1.

    Returns:
        ``(maps, classes)``: maps ``(m, h, w)`` at the layer's resolution (stretch them over
        the image with :func:`upsample_maps`) and the ``(m,)`` classes they explain.
    """
    import tensorflow as tf

    probe, dense = _keras_score_model(model, layer_name)
    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        acts, head = probe(x, training=False)
        tape.watch(acts)
        scores = _keras_scores(head, dense)
        classes = _class_indices(scores.numpy(), class_indices)
        chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, acts)
    return grad_cam_from_activations(acts.numpy(), grads.numpy(), normalize), classes


def saliency_keras(
    model: Any, images: np.ndarray, class_indices: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Saliency maps: ``|d score / d pixel|``, the largest over the input channels.

    Args:
        model: a built Keras model; images ``(m, n_H, n_W, n_C)`` float32.
        class_indices: ``(m,)`` class for each image; default: the predicted one.

    Returns:
        ``(maps, classes)``: ``(m, n_H, n_W)`` non-negative maps and the ``(m,)`` classes.
    """
    import tensorflow as tf

    probe, dense = _keras_score_model(model, None)
    x = tf.Variable(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        head = probe(x, training=False)
        head = head[0] if isinstance(head, (list, tuple)) else head
        scores = _keras_scores(head, dense)
        classes = _class_indices(scores.numpy(), class_indices)
        chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, x).numpy()
    return np.abs(grads).max(axis=-1), classes


def keras_layer_outputs(
    model: Any, images: np.ndarray, layer_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """The outputs of the named layers for ``images`` ``(m, n_H, n_W, n_C)``, by name."""
    import keras

    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    outs = probe.predict(np.asarray(images, dtype=np.float32), verbose=0)
    if len(layer_names) == 1:
        outs = [outs]
    return {name: np.asarray(out) for name, out in zip(layer_names, outs, strict=True)}


# --------------------------------------------------------------------------- PyTorch


def _torch_batch(images: Any) -> Any:
    import torch

    if isinstance(images, torch.Tensor):
        return images.detach().to(torch.float32)
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))


def grad_cam_torch(
    model: Any,
    images: Any,
    layer: Any,
    class_indices: Sequence[int] | None = None,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of a PyTorch model at the module ``layer`` (output ``(m, k, h, w)``).

    Args:
        model: an ``nn.Module`` returning class scores (logits) ``(m, n_classes)``.
        images: ``(m, n_C, n_H, n_W)`` channels-first batch (tensor or numpy).
        layer: a sub-module of ``model`` (e.g. the ReLU after the last convolution).
        class_indices: ``(m,)`` class explained for each image; default: the predicted one.
        normalize: scale each map to a maximum of 1.

    Returns:
        ``(maps, classes)``: ``(m, h, w)`` maps and the ``(m,)`` classes they explain.
    """
    import torch

    captured: dict[str, Any] = {}

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        output.retain_grad()
        captured["acts"] = output

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            scores = model(_torch_batch(images))
            classes = _class_indices(scores.detach().numpy(), class_indices)
            chosen = scores[torch.arange(len(classes)), torch.from_numpy(classes)]
            chosen.sum().backward()  # each score depends on its own image only
    finally:
        handle.remove()
        model.train(was_training)
    acts = captured["acts"]
    a = acts.detach().permute(0, 2, 3, 1).numpy()  # channels-last for the pure function
    g = acts.grad.permute(0, 2, 3, 1).numpy()
    model.zero_grad(set_to_none=True)
    return grad_cam_from_activations(a, g, normalize), classes


def saliency_torch(
    model: Any, images: Any, class_indices: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Saliency maps ``|d score / d pixel|`` (largest over channels) of a PyTorch model.

    Args:
        model: an ``nn.Module`` returning logits ``(m, n_classes)``.
        images: ``(m, n_C, n_H, n_W)`` batch (tensor or numpy).
        class_indices: ``(m,)`` class for each image; default: the predicted one.

    Returns:
        ``(maps, classes)``: ``(m, n_H, n_W)`` non-negative maps and the ``(m,)`` classes.
    """
    import torch

    x = _torch_batch(images).clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            scores = model(x)
            classes = _class_indices(scores.detach().numpy(), class_indices)
            scores[torch.arange(len(classes)), torch.from_numpy(classes)].sum().backward()
    finally:
        model.train(was_training)
    model.zero_grad(set_to_none=True)
    return x.grad.abs().amax(dim=1).numpy(), classes


# --------------------------------------------------------------------------- figures


def plot_confusion_matrix(
    cm: np.ndarray, title: str | None = None, ax: Any = None, class_names: Sequence | None = None
) -> Any:
    """The ``(n, n)`` confusion matrix (rows: true, columns: predicted) with its counts.

    Off-diagonal cells (the mistakes) use their own colour scale, so a handful of errors
    shows up next to diagonals of hundreds.
    """
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    n = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(n))]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * n + 2.2, 0.5 * n + 1.6))
    errors = np.where(np.eye(n, dtype=bool), 0, cm)
    ax.imshow(errors, cmap="Reds", vmin=0, vmax=max(1, int(errors.max())))
    for (i, j), v in np.ndenumerate(cm):
        if i == j:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="#cfe3cf"))
        strong = i != j and v > errors.max() / 2
        ax.text(
            j, i, str(v), ha="center", va="center", fontsize=7, color="white" if strong else "black"
        )
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def show_misclassified(
    images: np.ndarray,
    y_true: Sequence[int],
    y_pred: Sequence[int],
    confidence: Sequence[float] | None = None,
    ncols: int = 8,
    size: float = 1.5,
    title: str | None = None,
) -> Any:
    """Digits with ``pred P / true T`` (and the confidence in P) above each.

    ``images`` is ``(m, n_H, n_W)`` or ``(m, n_H, n_W, 1)``; pass only the digits to show.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    m = len(images)
    ncols = max(1, min(ncols, m))
    nrows = max(1, int(np.ceil(m / ncols)))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in zip(range(m), axes.flat, strict=False):
        ax.imshow(images[i], cmap="gray")
        label = f"pred {int(y_pred[i])} / true {int(y_true[i])}"
        if confidence is not None:
            label += f"\np = {float(confidence[i]):.2f}"
        ax.set_title(label, fontsize=8, color="firebrick")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_layer_maps(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    vectors: Mapping[str, np.ndarray] | None = None,
    n_channels: int = 8,
    size: float = 1.2,
) -> Any:
    """One digit and, row by row, the first channels of each layer's output.

    Args:
        image: ``(n_H, n_W)`` or ``(n_H, n_W, 1)`` input digit.
        maps: layer name -> that layer's output for the digit, ``(h, w, k)``.
        vectors: layer name -> a flat output ``(k,)`` (dense layers), drawn as bars, one row
            each, below the maps.
        n_channels: channels shown per map row.
    """
    import matplotlib.pyplot as plt

    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., 0]
    vectors = dict(vectors or {})
    rows = len(maps) + 1
    fig = plt.figure(figsize=(size * n_channels, size * rows + 1.1 * len(vectors)))
    grid = fig.add_gridspec(
        rows + len(vectors), n_channels, height_ratios=[1.0] * rows + [0.9] * len(vectors)
    )
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(n_channels)] for r in range(rows)])
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=8)
    for r, (name, fmap) in enumerate(maps.items(), start=1):
        fmap = np.asarray(fmap)
        for c in range(min(n_channels, fmap.shape[-1])):
            axes[r, c].imshow(fmap[:, :, c], cmap="viridis")
        axes[r, 0].set_title(
            f"{name}: {fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]}", fontsize=8, loc="left"
        )
    for r, (name, vec) in enumerate(vectors.items(), start=rows):
        vec = np.asarray(vec).ravel()
        ax = fig.add_subplot(grid[r, :])
        ax.bar(np.arange(len(vec)), vec, color="tab:blue")
        ax.set_xlim(-0.6, len(vec) - 0.4)
        if len(vec) <= 16:
            ax.set_xticks(np.arange(len(vec)))
        ax.tick_params(labelsize=7)
        ax.set_title(f"{name}: {len(vec)} values", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def show_heatmaps(
    images: np.ndarray,
    rows: Mapping[str, np.ndarray],
    titles: Sequence[str] | None = None,
    size: float = 1.6,
    alpha: float = 0.6,
    cmap: str = "inferno",
    colorbar_label: str = "map / its max",
) -> Any:
    """Digits (top row) and, below, one heat map per digit for each entry of ``rows``.

    Args:
        images: ``(m, n_H, n_W)`` or ``(m, n_H, n_W, 1)`` digits.
        rows: row label -> ``(m, n_H, n_W)`` maps in [0, 1] at the image's resolution, drawn
            over the digit (``cmap``, bright: large) with one colour bar per row. NaN pixels
            (no map value, e.g. :func:`upsample_maps` with ``outside="nan"``) are left out, so
            the grey digit shows through there.
        titles: one title per digit (e.g. ``"pred 7 / true 7"``).
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    m = len(images)
    fig, axes = plt.subplots(
        len(rows) + 1,
        m,
        figsize=(size * m + 1.2, size * (len(rows) + 1) + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for i in range(m):
        axes[0, i].imshow(images[i], cmap="gray")
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=8)
    for r, (name, hmap) in enumerate(rows.items(), start=1):
        hmap = np.asarray(hmap, dtype=np.float64)
        for i in range(m):
            axes[r, i].imshow(images[i], cmap="gray")
            shown = axes[r, i].imshow(
                np.ma.masked_invalid(hmap[i]), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0
            )
        axes[r, 0].set_ylabel(name, fontsize=8)
        bar = fig.colorbar(shown, ax=list(axes[r, :]), shrink=0.9, pad=0.01, aspect=12)
        bar.set_label(colorbar_label, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return fig
