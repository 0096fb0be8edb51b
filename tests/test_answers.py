"""``cnncourse.answers``: an answer's outputs become one closed toggle, in a real kernel.

One small notebook runs in an IPython kernel (nbclient, the inline matplotlib backend, as a
lecture runs): prints, markdown with math, figures shown and left open, a table, stderr, an
exception inside the block, and cells after the blocks that must print as usual.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from cnncourse import answers

SETUP = """\
import sys
import matplotlib.pyplot as plt
from IPython.display import Markdown, display, clear_output
from cnncourse.answers import answer
"""
EVERYTHING = """\
with answer("Computed answer to exercise 1"):
    print("first <b>line</b>")
    table = "| k | v |\\n|---|---|\\n| 1 | 2 |"
    display(Markdown("Loss $a_b < 3$ is **low**\\n\\n$$\\\\sum_i x_i$$\\n\\n" + table))
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    plt.show()
    print("between the figures")
    plt.figure()
    plt.plot([3, 1])
    print("a warning", file=sys.stderr)
"""
RAISES = """\
with answer("Computed answer to exercise 2"):
    print("so far")
    1 / 0
"""
CLEARED = """\
with answer("Computed answer to exercise 3"):
    print("gone")
    clear_output()
    print("kept")
"""
AFTER = 'print("outside")\ndisplay(Markdown("plain *markdown*"))'
IMAGE = re.compile(r'<img alt="figure" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"')


@pytest.fixture(scope="module")
def ran(root) -> list[nbformat.NotebookNode]:
    """The notebook's code cells after one run in a fresh kernel."""
    from benchmarks.notebook_exec import run_notebook
    from book.execute import kernel_env

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (SETUP, EVERYTHING, RAISES, CLEARED, AFTER)]
    run = run_notebook(nb, root, kernel_env(root, True, 1), cell_timeout_s=120, allow_errors=True)
    return run.nb.cells


def _toggle(cell: nbformat.NotebookNode) -> str:
    assert [o.output_type for o in cell.outputs][0] == "display_data", cell.outputs
    return cell.outputs[0]["data"]["text/html"]


def test_everything_a_block_outputs_is_one_closed_toggle(ran):
    cell = ran[1]
    assert [o.output_type for o in cell.outputs] == ["display_data"], cell.outputs
    html = _toggle(cell)
    head = '<details class="cnn-answer-output"><summary>Computed answer to exercise 1</summary>'
    assert html.startswith(head) and html.rstrip().endswith("</details>")
    assert " open" not in html.split("\n", 1)[0]
    assert "<pre>first &lt;b&gt;line&lt;/b&gt;\n</pre>" in html  # text escaped, in <pre>
    # markdown rendered, math kept for MathJax in the delimiters the book's MathJax reads
    assert r'<span class="math">\(a_b &lt; 3\)</span>' in html and "<strong>low</strong>" in html
    assert r'<div class="math">\[\sum_i x_i\]</div>' in html and "<td>2</td>" in html
    # both figures: the one shown by plt.show() and the one left open, in order
    assert len(IMAGE.findall(html)) == 2
    order = [html.index(s) for s in ("first", "math", "between the figures", "a warning")]
    assert order == sorted(order)
    between = html.index("between the figures")
    assert IMAGE.search(html[:between]) and IMAGE.search(html[between:])
    plain = cell.outputs[0]["data"]["text/plain"]
    assert plain.startswith("Computed answer to exercise 1\nfirst <b>line</b>")


def test_an_exception_propagates_after_the_output_so_far(ran):
    cell = ran[2]
    assert [o.output_type for o in cell.outputs] == ["display_data", "error"]
    assert cell.outputs[1]["ename"] == "ZeroDivisionError"
    html = _toggle(cell)
    assert html.startswith('<details class="cnn-answer-output" open><summary>')
    assert "stopped by an error" in html and "<pre>so far\n</pre>" in html


def test_clear_output_inside_the_block_clears_the_answer(ran):
    html = _toggle(ran[3])
    assert "kept" in html and "gone" not in html


def test_output_after_the_blocks_is_shown_as_usual(ran):
    kinds = [(o.output_type, o.get("name") or sorted(o.get("data", {}))) for o in ran[4].outputs]
    assert kinds == [("stream", "stdout"), ("display_data", ["text/markdown", "text/plain"])]
    assert ran[4].outputs[0]["text"] == "outside\n"


def test_outside_ipython_the_block_prints_as_usual(capsys):
    with answers.answer("Computed answer to exercise 9"):
        print("plain python")
    assert capsys.readouterr().out == "plain python\n"


def test_answer_body_unwraps_only_answer_toggles():
    parts = [("stdout", "42 <", None), ("rich", {"text/markdown": "$x$"}, {})]
    html = answers.toggle_html("Computed answer", parts)
    body = answers.answer_body(html)
    assert body is not None and "<pre>42 &lt;</pre>" in body and r"\(x\)" in body
    assert "<details" not in body and "<summary>" not in body
    assert answers.answer_body(answers.toggle_html("Computed answer", parts, open_=True))
    assert answers.answer_body("<details><summary>Other</summary>\nx</details>") is None
    assert answers.answer_body("<p>text</p>") is None


def test_text_is_shown_as_a_terminal_leaves_it():
    html = answers.toggle_html("A", [("stderr", "\x1b[31mbar 0%\rbar 100%\r\n", None)])
    assert '<pre class="cnn-answer-stderr">bar 100%\n</pre>' in html
