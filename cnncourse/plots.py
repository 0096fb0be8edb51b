"""Figures shared by lectures and assignments: images, kernels, feature maps, curves.

Every function draws on a new (or given) matplotlib figure and returns it, so notebooks
show it inline and tests can check it was drawn without a screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

if matplotlib.get_backend().lower() in {"", "agg"}:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def show_images(
    images: np.ndarray,
    labels: Sequence | None = None,
    ncols: int = 8,
    size: float = 1.4,
    cmap: str = "gray",
    title: str | None = None,
):
    """A grid of images. ``images`` is ``(m, n_H, n_W)`` or ``(m, n_H, n_W, n_C)``."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    m = len(images)
    ncols = min(ncols, m)
    nrows = int(np.ceil(m / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < m:
            ax.imshow(images[i], cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_matrix(
    matrix: np.ndarray,
    title: str | None = None,
    ax=None,
    cmap: str = "gray",
    annotate: bool = True,
    fmt: str = "{:.0f}",
    highlight: tuple[int, int, int, int] | None = None,
):
    """A 2-D array as an image with its values written in the cells.

    ``highlight=(row, col, height, width)`` outlines a window (e.g. the one a filter sees).
    """
    matrix = np.asarray(matrix)
    if ax is None:
        side = max(2.5, 0.45 * max(matrix.shape))
        _, ax = plt.subplots(figsize=(side, side))
    ax.imshow(matrix, cmap=cmap)
    if annotate:
        lo, hi = float(np.min(matrix)), float(np.max(matrix))
        mid = (lo + hi) / 2
        for (r, c), v in np.ndenumerate(matrix):
            color = "black" if v > mid else "white"
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7, color=color)
    if highlight is not None:
        r, c, h, w = highlight
        ax.add_patch(
            plt.Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="red", linewidth=2.5)
        )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax.figure


def show_kernels(kernels: np.ndarray | Mapping[str, np.ndarray], ncols: int = 8, size: float = 1.5):
    """Filters side by side: ``(f, f, n_C_prev, n_C)`` (first input channel) or a dict."""
    if isinstance(kernels, Mapping):
        names, mats = list(kernels), [np.asarray(k) for k in kernels.values()]
    else:
        k = np.asarray(kernels)
        mats = [k[:, :, 0, c] for c in range(k.shape[-1])]
        names = [f"filter {c}" for c in range(k.shape[-1])]
    n = len(mats)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name, mat in zip(axes.flat, names, mats, strict=False):
        ax.imshow(mat, cmap="RdBu_r", vmin=-np.abs(mat).max(), vmax=np.abs(mat).max())
        ax.set_title(name, fontsize=8)
    fig.tight_layout()
    return fig


def show_feature_maps(
    maps: np.ndarray, ncols: int = 8, size: float = 1.4, title: str | None = None
):
    """The channels of one example's activations ``(n_H, n_W, n_C)`` as a grid."""
    maps = np.asarray(maps)
    if maps.ndim == 4:
        maps = maps[0]
    channels = [maps[:, :, c] for c in range(maps.shape[-1])]
    fig = show_images(np.stack(channels), ncols=ncols, size=size, cmap="viridis")
    if title:
        fig.suptitle(title)
    return fig


def show_before_after(
    pairs: Mapping[str, np.ndarray],
    cmap: str = "gray",
    size: float = 2.6,
    true_scale: bool = False,
    offsets: Mapping[str, tuple[int, int]] | None = None,
):
    """Images side by side with titles, e.g. ``{"input": x, "after Sobel": y}``.

    Args:
        pairs: title -> image ``(n_H, n_W)`` or ``(n_H, n_W, 1)``.
        size: inches per panel (per largest image with ``true_scale``).
        true_scale: draw every image at the same size per pixel, so an 18x18 crop of a 28x28
            digit looks smaller instead of zoomed; each panel then spans the largest image,
            with that frame outlined (dotted).
        offsets: with ``true_scale``, title -> ``(top, left)``: where the image's first pixel
            sat in the largest one (e.g. a crop's top and left margins), so it is drawn in
            place; default ``(0, 0)``.
    """
    images = {}
    for name, img in pairs.items():
        img = np.asarray(img)
        images[name] = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
    fig, axes = plt.subplots(1, len(pairs), figsize=(size * len(pairs), size), squeeze=False)
    frame_h = max(img.shape[0] for img in images.values())
    frame_w = max(img.shape[1] for img in images.values())
    for ax, (name, img) in zip(axes.flat, images.items(), strict=True):
        if true_scale:
            top, left = (offsets or {}).get(name, (0, 0))
            extent = (left - 0.5, left + img.shape[1] - 0.5, top + img.shape[0] - 0.5, top - 0.5)
            ax.imshow(img, cmap=cmap, extent=extent)
            ax.add_patch(plt.Rectangle((-0.5, -0.5), frame_w, frame_h, fill=False,
                                       edgecolor="0.6", linestyle=":", linewidth=1))  # fmt: skip
            ax.set_xlim(-1, frame_w)
            ax.set_ylim(frame_h, -1)
        else:
            ax.imshow(img, cmap=cmap)
        ax.set_title(f"{name}\n{img.shape[0]}x{img.shape[1]}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_history(
    histories: Mapping[str, Mapping[str, Sequence[float]]], metrics: Sequence[str] = ("loss",)
):
    """Training curves. ``histories`` maps a run name to a Keras-style history dict.

    Each metric gets a panel; ``val_<metric>`` is drawn dashed when present.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        for name, hist in histories.items():
            if metric in hist:
                epochs = np.arange(1, len(hist[metric]) + 1)
                (line,) = ax.plot(epochs, hist[metric], marker="o", label=f"{name} train")
                if f"val_{metric}" in hist:
                    ax.plot(
                        epochs,
                        hist[f"val_{metric}"],
                        linestyle="--",
                        marker="x",
                        color=line.get_color(),
                        label=f"{name} validation",
                    )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        n_epochs = max((len(h.get(metric, [])) for h in histories.values()), default=1)
        if n_epochs <= 10:  # one tick per epoch: epochs are whole numbers
            ax.set_xticks(np.arange(1, n_epochs + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, n_epochs + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Show ``rows`` under ``header`` as a markdown table in the notebook (the lectures'
    computed tables: their numbers come from code, never typed into prose)."""
    from IPython.display import Markdown, display

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    display(Markdown("\n".join(lines)))
