"""The report's plots, as PNG images embedded in the page (no file, no network)."""

from __future__ import annotations

import base64
import io
from html import escape

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .data import ScoreSummary


def png(fig: Figure, alt: str) -> str:
    """An <img> tag holding ``fig`` as a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def histogram(s: ScoreSummary) -> str:
    """Scores of one assignment or notebook, one bar per point where points are few."""
    fig = Figure(figsize=(5.6, 2.8))
    ax = fig.add_subplot()
    top = max(s.max_score, max(s.scores, default=0.0), 1.0)
    bins: list[float] | int = [x - 0.5 for x in range(int(top) + 2)] if top <= 40 else 20
    ax.hist(s.scores, bins=bins, color="#2c7fb8", edgecolor="white")
    name = s.assignment + (f" / {s.notebook}" if s.notebook else "")
    ax.set_title(f"{name}: {len(s.scores)} graded, mean {s.mean:.2f}, median {s.median:g}")
    ax.set_xlabel(f"score (out of {s.max_score:g})")
    ax.set_ylabel("submissions")
    return png(fig, f"histogram of the scores of {name}")


def bars(
    labels: list[str], values: list[float], xlabel: str, alt: str, limit: float, counts: bool
) -> str:
    """Horizontal bars, the first 30 labels from the top (red for counts of students)."""
    labels, values = labels[:30], values[:30]
    fig = Figure(figsize=(6.4, 0.6 + 0.28 * max(1, len(labels))))
    ax = fig.add_subplot()
    ax.barh(range(len(values)), values, color="#c0392b" if counts else "#2c7fb8")
    if counts:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, limit)
    ax.set_xlabel(xlabel)
    return png(fig, alt)
