"""What a notebook page of the book shows: cell tags for prose, answers and widgets.

Applied to the book's copies only (executed lectures, released assignments); the committed
notebooks are never changed. myst-nb reads the cell tags:

* a *prose statement* prints prose: ``display(Markdown(...))``, ``markdown_table(...)``, or an
  ``if`` (``if FAST: ... else: ...``) made only of them. A cell made only of prose statements
  gets ``remove-input``: the page shows the sentence, not the code that wrote it. In any other
  cell, the page's copy of the code shows each run of top-level prose statements as one comment
  line, ``# ... (writes the text or table below)``, so the teaching code stays visible while
  the sentence appears once, as prose, under it (the outputs are those of the full cell, as
  run); an answer cell's statements are those inside its ``with answer(...):`` block;
* a cell that still writes prose after that (a helper that calls ``display(Markdown(...))``
  defined in a cell, or a ``display(Markdown(...))`` inside a loop) gets ``hide-input``: its code is
  in a collapsed "Show code cell source" toggle;
* an exercise's answer (a ``<details>`` markdown cell) is closed after the ``answer``-tagged
  code cells that follow it, so the answer's prose, code and outputs are all inside one
  collapsed toggle, as in JupyterLab; the answer cells' code is collapsed inside it too. An
  answer cell's output is its own closed toggle (``cnncourse.answers``: it stays closed when
  a lecture runs in JupyterLab); on the page, already inside the answer's toggle, it is
  unwrapped to its contents, so one click on "Answer to exercise N" shows the prose and the
  computed numbers and figures together, not a second "Computed answer" toggle;
* in a released assignment (shown as released, not run), a cell that writes prose when run
  gets ``hide-input`` too;
* widget views (ipywidgets) are dropped: the course's widgets carry a static PNG of their
  first state in the same output, which the page shows, so the site needs no widget
  JavaScript (and nothing from the network).
"""

from __future__ import annotations

import ast
import copy
import re

import nbformat

from cnncourse.answers import answer_body

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PROSE_CALLS = {"display", "markdown_table"}
PROSE_MARKERS = ("Markdown(", "markdown_table(")
ANSWER_TAG = "answer"
ANSWER_OPEN = re.compile(r"<details>(\s*<summary>\s*Answer)", re.IGNORECASE)
ANSWER_CLASS = "cnn-answer"
PROSE_COMMENT = "# ... (writes the text or table below)"


def _python_source(source: str) -> str:
    """The cell's source with IPython magics and shell escapes blanked out."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n")
    )


def _is_prose_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    if node.func.id == "markdown_table":
        return True
    if node.func.id != "display" or not node.args:
        return False
    return all(
        isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "Markdown"
        for arg in node.args
    )


def _is_prose_statement(node: ast.stmt) -> bool:
    if isinstance(node, ast.Expr):
        return _is_prose_call(node.value)
    if isinstance(node, ast.If):
        return bool(node.body) and all(map(_is_prose_statement, node.body + node.orelse))
    return isinstance(node, ast.Pass)


def _statements(source: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(_python_source(source)).body
    except SyntaxError:
        return None


def _is_answer_block(node: ast.With) -> bool:
    """``with answer(...):`` (``cnncourse.answers``), the block of an exercise's answer."""
    return any(
        isinstance(item.context_expr, ast.Call)
        and isinstance(item.context_expr.func, ast.Name)
        and item.context_expr.func.id == "answer"
        for item in node.items
    )


def is_prose_only(source: str) -> bool:
    """True when every statement of the cell prints prose (``display(Markdown(...))``)."""
    body = _statements(source)
    return bool(body) and all(_is_prose_statement(node) for node in body or [])


def writes_prose(source: str) -> bool:
    """True when the cell writes prose with ``Markdown(...)`` or ``markdown_table(...)``."""
    return any(marker in source for marker in PROSE_MARKERS)


def strip_prose_statements(source: str) -> str:
    """The cell's code with each run of top-level prose statements shown as one comment.

    The source is returned unchanged when it does not parse, has no top-level prose
    statement, or shares a line between a prose statement and other code.
    """
    body = _statements(source)
    if body and len(body) == 1 and isinstance(body[0], ast.With) and _is_answer_block(body[0]):
        body = body[0].body
    if not body:
        return source
    lines = source.split("\n")
    prose_lines: set[int] = set()
    other_lines: set[int] = set()
    for node in body:
        span = set(range(node.lineno - 1, node.end_lineno or node.lineno))
        (prose_lines if _is_prose_statement(node) else other_lines).update(span)
    if not prose_lines or prose_lines & other_lines:
        return source
    out: list[str] = []
    for i, line in enumerate(lines):
        if i not in prose_lines:
            out.append(line)
        elif i - 1 not in prose_lines:
            out.append(line[: len(line) - len(line.lstrip())] + PROSE_COMMENT)
    return "\n".join(out).rstrip("\n")


def _add_tag(cell: nbformat.NotebookNode, tag: str) -> None:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def tag_code_cell(cell: nbformat.NotebookNode) -> str | None:
    """Prepare a code cell for the page (see the module docstring); return the tag added."""
    if cell.get("cell_type") != "code":
        return None
    source = cell.get("source", "")
    tag = None
    if is_prose_only(source):
        tag = "remove-input"
    else:
        cell["source"] = source = strip_prose_statements(source)
        if writes_prose(source) or ANSWER_TAG in cell.get("metadata", {}).get("tags", []):
            tag = "hide-input"
    if tag:
        _add_tag(cell, tag)
    return tag


def drop_widget_views(nb: nbformat.NotebookNode) -> int:
    """Remove widget views from the outputs (their static PNG stays); return how many."""
    removed = 0
    for cell in nb.cells:
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None and WIDGET_MIME in data:
                del data[WIDGET_MIME]
                removed += 1
                if not set(data) - {"text/plain"}:
                    continue  # nothing left to show but the widget's repr
            outputs.append(output)
        if cell.get("cell_type") == "code":
            cell["outputs"] = outputs
    nb.metadata.pop("widgets", None)
    return removed


def enclose_answers(nb: nbformat.NotebookNode) -> int:
    """Move each answer's ``</details>`` below the answer cells that follow it.

    An answer is a markdown cell opening ``<details><summary>Answer ...`` and closing
    ``</details>``, followed by code cells tagged ``answer``. The book's copy closes the
    toggle after the last of those code cells, so their code and outputs are collapsed with
    the prose. Returns the number of answers changed.
    """
    cells = nb.cells
    changed = 0
    i = 0
    while i < len(cells):
        cell = cells[i]
        source = cell.get("source", "")
        if cell.get("cell_type") == "markdown" and ANSWER_OPEN.search(source):
            cell["source"] = ANSWER_OPEN.sub(rf'<details class="{ANSWER_CLASS}">\1', source, 1)
            j = i + 1
            while (
                j < len(cells)
                and cells[j].get("cell_type") == "code"
                and ANSWER_TAG in cells[j].get("metadata", {}).get("tags", [])
            ):
                j += 1
            closing = cell["source"].rstrip()
            if j > i + 1 and closing.endswith("</details>"):
                cell["source"] = closing[: -len("</details>")].rstrip() + "\n"
                cells.insert(j, nbformat.v4.new_markdown_cell("</details>"))
                changed += 1
            i = j
        else:
            i += 1
    return changed


def unwrap_answer_outputs(nb: nbformat.NotebookNode) -> int:
    """Replace each answer cell's output toggle by its contents; return how many.

    The page holds the answer cells inside the answer's own toggle (:func:`enclose_answers`),
    so the output's "Computed answer" toggle would be a second click for the same answer.
    Its stderr text (warnings, progress bars) is dropped, as everywhere in the book.
    """
    unwrapped = 0
    for cell in nb.cells:
        if ANSWER_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            html = str(output.get("data", {}).get("text/html", ""))
            body = answer_body(html, stderr=False)  # as conf.py's nb_output_stderr = "remove"
            if body is not None:
                output["data"]["text/html"] = body
                unwrapped += 1
    return unwrapped


def insert_note(nb: nbformat.NotebookNode, note: str) -> None:
    """Put a MyST ``{note}`` admonition right under the notebook's ``# title`` line."""
    admonition = f"```{{note}}\n{note}\n```\n"
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{admonition}\n{rest.lstrip(chr(10))}"
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(admonition))


def prepare_lecture(nb: nbformat.NotebookNode, note: str) -> nbformat.NotebookNode:
    """A copy of an executed lecture, tagged for the book."""
    nb = copy.deepcopy(nb)
    drop_widget_views(nb)
    for cell in nb.cells:
        tag_code_cell(cell)
    unwrap_answer_outputs(nb)
    enclose_answers(nb)
    insert_note(nb, note)
    return nb


def prepare_assignment(nb: nbformat.NotebookNode, note: str) -> nbformat.NotebookNode:
    """A copy of a released assignment for the book: shown as released, not executed."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            if writes_prose(cell.get("source", "")):  # its text appears only when run
                _add_tag(cell, "hide-input")
    insert_note(nb, note)
    return nb
