"""Exercise answers whose outputs stay collapsed when a lecture runs.

An answer code cell (tagged ``answer``) runs its body in ``with answer("Computed answer to
exercise 2"):``. What the block writes (stdout and stderr text, ``display(...)`` outputs,
matplotlib figures) is held back and shown, when it ends, as ONE ``text/html`` output: a closed
``<details>`` toggle that opens on click (JupyterLab, VS Code, Colab, the book). JupyterLab
shows a cell's output again whenever the cell runs, whatever ``outputs_hidden`` says, so only
an output that collapses itself stays closed after *Run All*. Inside: text in ``<pre>``,
markdown rendered by mistune (math as ``\\(x\\)`` and ``\\[x\\]``, which both JupyterLab's
and the book's MathJax typeset), images as base64 ``<img>``. If the block raises, the output so
far is shown in an open toggle and the exception propagates. Outside IPython nothing changes.
"""

from __future__ import annotations

import base64
import html
import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mistune
from IPython.core.displaypub import DisplayPublisher
from IPython.core.getipython import get_ipython

OUTPUT_CLASS = "cnn-answer-output"
STDERR_CLASS = "cnn-answer-stderr"
_STDERR = re.compile(rf'<pre class="{STDERR_CLASS}">.*?</pre>\n?', re.DOTALL)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TOGGLE = re.compile(
    rf'^<details class="{OUTPUT_CLASS}"( open)?><summary>.*?</summary>\n(.*)</details>\s*$',
    re.DOTALL,
)
_markdown = mistune.create_markdown(escape=False, plugins=["table", "math", "strikethrough"])
_markdown.renderer.register(  # type: ignore[union-attr]
    "block_math",
    lambda renderer, text: f'<div class="math">\\[{renderer.escape_attribute(text)}\\]</div>\n',
)

Part = tuple[str, Any, Any]  # ("stdout" | "stderr", text, None) or ("rich", data, metadata)


def render_markdown(text: str) -> str:
    """Markdown as HTML, math kept for MathJax as ``\\(...\\)`` and ``\\[...\\]``."""
    return str(_markdown(text))


class _Stream(io.TextIOBase):
    """A stand-in for ``sys.stdout`` / ``sys.stderr`` that records text in order."""

    encoding = "utf-8"

    def __init__(self, parts: list[Part], name: str) -> None:
        self.parts, self.name = parts, name

    def write(self, text: str) -> int:
        if self.parts and self.parts[-1][0] == self.name:
            self.parts[-1] = (self.name, self.parts[-1][1] + text, None)
        else:
            self.parts.append((self.name, text, None))
        return len(text)


class _Publisher(DisplayPublisher):
    """Records ``display(...)`` bundles in order instead of sending them to the frontend."""

    def __init__(self, parts: list[Part]) -> None:
        super().__init__(shell=None)
        self.parts = parts

    def publish(
        self, data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kw: Any
    ) -> None:
        self.parts.append(("rich", data, metadata or {}))

    def clear_output(self, wait: bool = False) -> None:
        self.parts.clear()


def _image(mime: str, data: str, meta: dict[str, Any]) -> str:
    size = "".join(f' {k}="{int(meta[k])}"' for k in ("width", "height") if k in meta)
    return f'<div><img alt="figure" src="data:{mime};base64,{"".join(data.split())}"{size}></div>'


def _terminal(text: str) -> str:
    """Text as a terminal leaves it: colour codes dropped, a line shows what followed its
    last carriage return (progress bars)."""
    lines = ANSI.sub("", text).split("\n")
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines)


def _part_html(kind: str, data: Any, meta: dict[str, Any]) -> str:
    if kind == "stderr":
        return f'<pre class="{STDERR_CLASS}">{html.escape(_terminal(data))}</pre>'
    if kind != "rich":
        return f"<pre>{html.escape(_terminal(data))}</pre>"
    if "text/html" in data:
        return str(data["text/html"])
    if "text/markdown" in data:
        return f"<div>{render_markdown(data['text/markdown'])}</div>"
    if "image/svg+xml" in data:
        return f"<div>{data['image/svg+xml']}</div>"
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            return _image(mime, data[mime], meta.get(mime, meta))
    return f"<pre>{html.escape(_terminal(str(data.get('text/plain', ''))))}</pre>"


def _plain(parts: list[Part]) -> str:
    """The parts as text, for frontends without HTML (markdown as written)."""
    texts = [
        p[1] if p[0] != "rich" else p[1].get("text/markdown", p[1].get("text/plain")) for p in parts
    ]
    return _terminal("\n".join(str(t).rstrip("\n") for t in texts if t))


def _figures_to_parts(shell: Any, before: set[int], parts: list[Part]) -> None:
    """Show the figures the block created and left open (the inline backend would show them
    after the cell, outside the toggle) as parts, and close them."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for number in [n for n in plt.get_fignums() if n not in before]:
        figure = plt.figure(number)
        data, meta = shell.display_formatter.format(figure)
        if not {"image/png", "image/svg+xml"} & set(data):
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
            data = {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii")}
        parts.append(("rich", data, meta))
        plt.close(figure)


def toggle_html(summary: str, parts: list[Part], open_: bool = False) -> str:
    """The one HTML output of an answer: a ``<details>`` holding ``parts`` in order."""
    body = "\n".join(_part_html(*part) for part in parts)
    opened = " open" if open_ else ""
    head = f'<details class="{OUTPUT_CLASS}"{opened}><summary>{html.escape(summary)}</summary>'
    return f'{head}\n<div class="cnn-answer-body">\n{body}\n</div>\n</details>'


def answer_body(output_html: str, stderr: bool = True) -> str | None:
    """The HTML inside an answer's toggle (for pages that hold it in a toggle already), its
    stderr text (warnings, progress bars) left out unless ``stderr``; ``None`` when
    ``output_html`` is not an answer's output."""
    match = _TOGGLE.match(output_html)
    if match is None:
        return None
    return match.group(2) if stderr else _STDERR.sub("", match.group(2))


@contextmanager
def answer(summary: str = "Computed answer") -> Iterator[None]:
    """Collect what the block outputs and show it as one closed toggle titled ``summary``."""
    shell = get_ipython()
    if shell is None:
        yield
        return
    from IPython.display import display

    parts: list[Part] = []
    plt = sys.modules.get("matplotlib.pyplot")
    before = set(plt.get_fignums()) if plt is not None else set()
    saved = sys.stdout, sys.stderr, shell.display_pub
    sys.stdout, sys.stderr = _Stream(parts, "stdout"), _Stream(parts, "stderr")
    shell.display_pub = _Publisher(parts)
    failed = True
    try:
        yield
        failed = False
    finally:
        try:
            _figures_to_parts(shell, before, parts)
        finally:
            sys.stdout, sys.stderr, shell.display_pub = saved
        title = f"{summary} (stopped by an error, below)" if failed else summary
        text = f"{title}\n{_plain(parts)}".rstrip()
        display({"text/html": toggle_html(title, parts, failed), "text/plain": text}, raw=True)
