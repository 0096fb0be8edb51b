"""Lecture 2's explorer: slide a window over a padded input and watch the output size change.

:func:`explorer` builds sliders for the input size ``n``, the kernel size ``f``, the
``stride``, the padding ``pad`` and the ``dilation`` (plus ``position``, the output cell
whose window is drawn). Every change redraws, at once, the padded input with the window, the
output grid, and the output-size formula with the numbers substituted. The arithmetic is
:func:`cnncourse.architecture.conv_output_size`, the module's one home.

Where widgets cannot run, the explorer degrades to a static figure of the same drawing:

* without ``ipywidgets`` or outside an IPython kernel, :func:`explorer` returns a
  :class:`StaticExplorer`, which notebooks show as a PNG;
* the widget's own display data carry the same PNG next to the widget view, so a reader
  without a widget frontend (nbconvert, nbviewer, GitHub, a notebook executed by nbclient
  in the tests) sees the drawing for the initial setting, and JupyterLab or Binder shows
  the live widget.

Stable hooks for browser tests: the container has the CSS class ``cnn-explorer``; each
slider has the class ``cnn-explorer-<name>`` and ``description=<name>`` (``n``, ``f``,
``stride``, ``pad``, ``dilation``, ``position``); the formula is an HTML widget with class
``cnn-explorer-formula`` whose text contains ``n_out = `` and ends with the result, which
also sits alone in ``<span class="cnn-explorer-nout">``.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .architecture import conv_output_size, effective_kernel_size

__all__ = [
    "Geometry",
    "SLIDER_RANGES",
    "StaticExplorer",
    "draw_explorer",
    "explorer",
    "formula_text",
    "geometry",
    "widgets_available",
    "window_cells",
]

#: ``(min, max)`` of each slider; ``position`` follows the output size.
SLIDER_RANGES: dict[str, tuple[int, int]] = {
    "n": (2, 16),
    "f": (1, 7),
    "stride": (1, 4),
    "pad": (0, 3),
    "dilation": (1, 3),
}


@dataclass(frozen=True)
class Geometry:
    """Where the windows of one axis fall (square input and kernel: rows = columns).

    Attributes:
        n, f, pad, stride, dilation: the setting.
        span: input positions one window covers, ``f + (f - 1) * (dilation - 1)``.
        n_padded: ``n + 2 * pad``.
        n_out: output side (0 when the window does not fit).
        starts: first padded index of each window, ``(0, stride, 2 * stride, ...)``.
        read: for each padded index, whether some window tap reads it; ``False`` at the far
            border shows the floor of the formula (and the gaps of a dilated kernel).
    """

    n: int
    f: int
    pad: int
    stride: int
    dilation: int
    span: int
    n_padded: int
    n_out: int
    starts: tuple[int, ...]
    read: tuple[bool, ...]

    @property
    def fits(self) -> bool:
        """Whether at least one window fits in the padded input."""
        return self.n_out > 0


def geometry(n: int, f: int, pad: int = 0, stride: int = 1, dilation: int = 1) -> Geometry:
    """The windows of a setting, in :mod:`cnncourse.architecture`'s argument order.

    A window that does not fit gives ``n_out == 0`` (and no starts) instead of an error, so
    the explorer can draw the reason; other impossible values (``stride < 1`` ...) raise
    ``ValueError``.
    """
    span = effective_kernel_size(f, dilation)
    try:
        n_out = conv_output_size(n, f, pad, stride, dilation)
    except ValueError:
        # Only "the window does not fit" becomes n_out = 0: the same setting with an input
        # as large as the window must be valid, else the error is a real one.
        conv_output_size(n if n < 1 else max(n, span), f, pad, stride, dilation)
        n_out = 0
    n_padded = n + 2 * pad
    starts = tuple(k * stride for k in range(n_out))
    read = np.zeros(n_padded, dtype=bool)
    for start in starts:
        read[start : start + span : dilation] = True
    return Geometry(
        n, f, pad, stride, dilation, span, n_padded, n_out, starts, tuple(bool(r) for r in read)
    )


def window_cells(geom: Geometry, i: int, j: int) -> list[tuple[int, int]]:
    """``(row, column)`` in the padded input of every tap of output cell ``(i, j)``."""
    if not (0 <= i < geom.n_out and 0 <= j < geom.n_out):
        raise ValueError(f"output cell ({i}, {j}) outside a {geom.n_out}x{geom.n_out} output")
    taps = [k * geom.dilation for k in range(geom.f)]
    top, left = geom.starts[i], geom.starts[j]
    return [(top + r, left + c) for r in taps for c in taps]


def formula_text(n: int, f: int, pad: int = 0, stride: int = 1, dilation: int = 1) -> str:
    """The output-size formula with the numbers substituted, ending with the result.

    ``formula_text(7, 3, 0, 2) ==
    "n_out = floor((n + 2p - f) / s) + 1 = floor((7 + 2*0 - 3) / 2) + 1 = 3"``; with a
    dilation the text starts with the effective kernel size ``f_eff = ...; `` and the
    formula uses it. A window that does not fit ends with ``= none``.
    """
    geom = geometry(n, f, pad, stride, dilation)
    prefix, k = "", "f"
    if dilation != 1:
        prefix = f"f_eff = f + (f - 1)(d - 1) = {f} + {f - 1}*{dilation - 1} = {geom.span}; "
        k = "f_eff"
    symbolic = f"floor((n + 2p - {k}) / s) + 1"
    if not geom.fits:
        return (
            f"{prefix}n_out = {symbolic}: the window spans {geom.span} > n + 2p = "
            f"{geom.n_padded}, it does not fit = none"
        )
    numbers = f"floor(({n} + 2*{pad} - {geom.span}) / {stride}) + 1"
    return f"{prefix}n_out = {symbolic} = {numbers} = {geom.n_out}"


def draw_explorer(
    n: int = 7,
    f: int = 3,
    pad: int = 0,
    stride: int = 2,
    dilation: int = 1,
    position: int = 0,
) -> Figure:
    """The explorer's drawing for one setting, as a matplotlib ``Figure`` (no pyplot state).

    Left: the padded input (padding grey, input pale blue, cells no window reads hatched),
    a dot where each window starts and, in red, the window of output cell ``position``
    (row-major). Right: the output grid with that cell in red. Title: :func:`formula_text`.
    """
    geom = geometry(n, f, pad, stride, dilation)
    n_cells = geom.n_out * geom.n_out
    position = min(max(int(position), 0), max(n_cells - 1, 0))
    i, j = divmod(position, geom.n_out) if geom.fits else (0, 0)

    fig = Figure(figsize=(9.5, 4.9), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    size = geom.n_padded
    for r in range(size):
        for c in range(size):
            inside = pad <= r < pad + n and pad <= c < pad + n
            unread = geom.fits and not (geom.read[r] and geom.read[c])
            ax_in.add_patch(
                Rectangle(
                    (c, r),
                    1,
                    1,
                    facecolor="#dbe9f6" if inside else "#d9d9d9",
                    edgecolor="#8c8c8c" if unread else "white",
                    hatch="///" if unread else None,
                    linewidth=0.6 if unread else 1,
                )
            )
    for top in geom.starts:
        for left in geom.starts:
            ax_in.plot(left + 0.5, top + 0.5, "o", color="black", markersize=3)
    if geom.fits:
        for r, c in window_cells(geom, i, j):
            ax_in.add_patch(Rectangle((c, r), 1, 1, facecolor="#e41a1c", alpha=0.55))
        top, left = geom.starts[i], geom.starts[j]
        ax_in.add_patch(
            Rectangle(
                (left, top), geom.span, geom.span, fill=False, edgecolor="#e41a1c", linewidth=2.5
            )
        )
    ax_in.set_title(
        f"padded input {size}x{size} (n = {n} blue, pad = {pad} grey)\n"
        f"dots: window starts (stride {stride}); hatched: read by no window",
        fontsize=9,
    )

    if geom.fits:
        for r in range(geom.n_out):
            for c in range(geom.n_out):
                chosen = (r, c) == (i, j)
                ax_out.add_patch(
                    Rectangle(
                        (c, r),
                        1,
                        1,
                        facecolor="#e41a1c" if chosen else "#fde0c5",
                        edgecolor="white",
                        linewidth=1,
                    )
                )
        ax_out.set_title(
            f"output {geom.n_out}x{geom.n_out}; red: cell ({i}, {j}) = the red window",
            fontsize=9,
        )
    else:
        ax_out.text(0.5, 0.5, "no output:\nthe window does not fit", ha="center", va="center")
        ax_out.set_title("output: none", fontsize=9)
    side_out = max(geom.n_out, 1)
    for ax, side in ((ax_in, size), (ax_out, side_out)):
        ax.set_xlim(0, max(side, 1))
        ax.set_ylim(max(side, 1), 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    if not geom.fits:
        ax_out.set_xlim(0, 1)
        ax_out.set_ylim(1, 0)
    fig.suptitle(formula_text(n, f, pad, stride, dilation), fontsize=10)
    return fig


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class StaticExplorer:
    """The explorer's drawing for one setting, shown as a PNG (the fallback without widgets).

    Attributes:
        settings: the keyword arguments of :func:`draw_explorer`.
        figure: the drawn ``Figure``; ``formula``: :func:`formula_text` for the setting.
    """

    def __init__(self, **settings: int) -> None:
        self.settings = settings
        self.figure = draw_explorer(**settings)
        keys = ("n", "f", "pad", "stride", "dilation")
        self.formula = formula_text(**{k: settings[k] for k in keys if k in settings})

    def png(self) -> bytes:
        """The drawing as PNG bytes."""
        return _png(self.figure)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        return {
            "image/png": base64.b64encode(self.png()).decode("ascii"),
            "text/plain": f"Static explorer (widgets unavailable): {self.formula}",
        }


def widgets_available() -> bool:
    """True when ``ipywidgets`` imports and code runs in an IPython kernel (a frontend may
    be attached); False in plain Python, e.g. under pytest."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _formula_html(settings: dict[str, int]) -> str:
    text = formula_text(**{k: settings[k] for k in ("n", "f", "pad", "stride", "dilation")})
    head, _, result = text.rpartition(" = ")
    return (
        f'<code class="cnn-explorer-formula-text">{html.escape(head)} = '
        f'<span class="cnn-explorer-nout">{html.escape(result)}</span></code>'
    )


def explorer(
    n: int = 7,
    f: int = 3,
    pad: int = 0,
    stride: int = 2,
    dilation: int = 1,
    position: int = 0,
    use_widgets: bool | None = None,
):
    """Sliders for ``n``, ``f``, ``stride``, ``pad``, ``dilation`` and ``position``.

    Args:
        n, f, pad, stride, dilation, position: the initial setting (see :func:`draw_explorer`).
        use_widgets: ``None`` (default) builds the widget when :func:`widgets_available`;
            ``False`` forces the static figure; ``True`` requires ``ipywidgets``.

    Returns:
        An ``ipywidgets.VBox`` (class ``cnn-explorer``) whose display data also carry the
        static PNG, or a :class:`StaticExplorer`. Either shows itself when it is the last
        expression of a cell.
    """
    settings = {"n": n, "f": f, "pad": pad, "stride": stride, "dilation": dilation}
    geometry(**settings)  # ValueError now for values no slider can show
    if use_widgets is None:
        use_widgets = widgets_available()
    if not use_widgets:
        return StaticExplorer(**settings, position=position)

    import ipywidgets as widgets

    class _ExplorerBox(widgets.VBox):
        """A VBox whose display data include the static PNG as a fallback."""

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            if isinstance(data, tuple):  # (data, metadata)
                data, metadata = data
            else:
                metadata = None
            current = dict(self.explorer_settings)
            data["image/png"] = base64.b64encode(_png(draw_explorer(**current))).decode("ascii")
            data["text/plain"] = "Explorer: " + formula_text(
                **{k: current[k] for k in ("n", "f", "pad", "stride", "dilation")}
            )
            return (data, metadata) if metadata is not None else data

    sliders = {}
    for name, (low, high) in SLIDER_RANGES.items():
        value = settings[name]
        slider = widgets.IntSlider(
            value=min(max(value, low), high),
            min=min(low, value),
            max=max(high, value),
            step=1,
            description=name,
            continuous_update=True,
        )
        slider.add_class(f"cnn-explorer-{name}")
        sliders[name] = slider
    geom = geometry(**settings)
    sliders["position"] = widgets.IntSlider(
        value=min(position, max(geom.n_out**2 - 1, 0)),
        min=0,
        max=max(geom.n_out**2 - 1, 0),
        description="position",
        continuous_update=True,
    )
    sliders["position"].add_class("cnn-explorer-position")
    formula = widgets.HTML(value=_formula_html(settings))
    formula.add_class("cnn-explorer-formula")
    image = widgets.Image(value=_png(draw_explorer(**settings, position=position)), format="png")
    image.add_class("cnn-explorer-figure")
    controls = widgets.HBox(
        [
            widgets.VBox([sliders["n"], sliders["f"], sliders["stride"]]),
            widgets.VBox([sliders["pad"], sliders["dilation"], sliders["position"]]),
        ]
    )
    box = _ExplorerBox([controls, formula, image])
    box.add_class("cnn-explorer")
    box.explorer_settings = {**settings, "position": position}

    def redraw(_change=None) -> None:
        current = {name: sliders[name].value for name in SLIDER_RANGES}
        geom = geometry(**current)
        sliders["position"].max = max(geom.n_out**2 - 1, 0)  # clamps the value too
        current["position"] = sliders["position"].value
        box.explorer_settings = current
        # The drawing first, the formula last: once a reader (or a browser test) sees the
        # new number, the new drawing has already been sent.
        image.value = _png(draw_explorer(**current))
        formula.value = _formula_html(current)

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    box.redraw = redraw
    box.sliders = sliders
    box.formula = formula
    box.image = image
    return box
