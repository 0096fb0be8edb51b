"""The book's preparation of pages, on small synthetic notebooks (no build, no browser).

What ``book/`` decides before Sphinx runs: which code a page hides, where an answer's toggle
closes, how an answer's computed output sits inside it, which links stay, which pages and in
which order, when an executed copy is reused.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from book import execute, notebooks, stage
from cnncourse.answers import toggle_html

REPO = "owner/course"


def _answer_code(source: str = "print(42)", **jupyter) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["answer"]
    if jupyter:
        cell.metadata["jupyter"] = jupyter
    return cell


def _lecture() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lecture 0: a title\n\nIntro."),
        nbformat.v4.new_code_cell("x = 1\nprint(x)"),
        nbformat.v4.new_markdown_cell("## Exercises\n\n1. Why?\n2. How?"),
        nbformat.v4.new_markdown_cell(
            "<details><summary>Answer to exercise 1</summary>\n\nBecause.\n\n</details>"
        ),
        _answer_code("y = 2\ndisplay(Markdown(f'{y}'))", source_hidden=True),
        _answer_code("print(3)", source_hidden=True),
        nbformat.v4.new_markdown_cell(
            "<details><summary>Answer to exercise 2</summary>\n\nLike so.\n\n</details>"
        ),
        nbformat.v4.new_markdown_cell("## Practise"),
    ]
    return nb


# --- notebooks.py: what a page shows ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('display(Markdown(f"{x} digits"))', True),
        ('if FAST:\n    display(Markdown("a"))\nelse:\n    display(Markdown("b"))', True),
        ('markdown_table(["a"], [[1]])\ndisplay(Markdown("b"))', True),
        ('x = 1\ndisplay(Markdown(f"{x}"))', False),
        ("display(fig)", False),
        ('if FAST:\n    x = 1\n    display(Markdown("a"))', False),
        ("%timeit f()", False),
        ("", False),
    ],
)
def test_is_prose_only(source, expected):
    assert notebooks.is_prose_only(source) is expected


def test_strip_prose_statements_keeps_the_teaching_code():
    source = (
        "acc = model.evaluate(x)\n"
        "markdown_table(['run'], [[acc]])\n"
        'print(f"loss {acc}")\n'
        "if FAST:\n"
        '    display(Markdown("short run"))\n'
        "else:\n"
        '    display(Markdown(\n        f"{acc:.2%}"\n    ))\n'
    )
    assert notebooks.strip_prose_statements(source) == (
        "acc = model.evaluate(x)\n"
        f"{notebooks.PROSE_COMMENT}\n"
        'print(f"loss {acc}")\n'
        f"{notebooks.PROSE_COMMENT}"
    )
    # A prose call inside a function stays (the cell is then collapsed instead).
    nested = 'def table(rows):\n    display(Markdown("|a|"))\n'
    assert notebooks.strip_prose_statements(nested) == nested
    # Two statements on one line: left as written.
    shared = 'x = 1; display(Markdown("a"))'
    assert notebooks.strip_prose_statements(shared) == shared


def test_strip_prose_statements_inside_an_answer_block():
    source = (
        'with answer("Computed answer to exercise 1"):\n'
        "    n = 3\n"
        '    display(Markdown(f"{n}"))\n'
        '    markdown_table(["a"], [[n]])'
    )
    assert notebooks.strip_prose_statements(source) == (
        f'with answer("Computed answer to exercise 1"):\n    n = 3\n    {notebooks.PROSE_COMMENT}'
    )


def test_answer_outputs_are_unwrapped_inside_the_answer_toggle():
    nb = _lecture()
    body = "<pre>42</pre>"
    parts = [("stdout", "42", None), ("stderr", "epoch 1: 100%", None)]
    html = toggle_html("Computed answer to exercise 1", parts)
    assert html.startswith('<details class="cnn-answer-output"><summary>') and body in html
    answer, other = nb.cells[4], nb.cells[1]
    for cell in (answer, other):
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "42"})
        ]
    page = notebooks.prepare_lecture(nb, "A note.")
    shown = next(c for c in page.cells if c.get("id") == answer.get("id"))
    inner = shown.outputs[0]["data"]["text/html"]
    assert "<details" not in inner and "<summary>" not in inner and body in inner
    assert "epoch 1" in html and "epoch 1" not in inner  # stderr dropped, as on every page
    kept = next(c for c in page.cells if c.get("id") == other.get("id"))
    assert kept.outputs[0]["data"]["text/html"] == html  # only answer cells are unwrapped
    assert answer.outputs[0]["data"]["text/html"] == html  # the executed copy is untouched


def test_tag_code_cell():
    prose = nbformat.v4.new_code_cell('display(Markdown("All digits."))')
    assert notebooks.tag_code_cell(prose) == "remove-input"
    mixed = nbformat.v4.new_code_cell('n = 3\ndisplay(Markdown(f"{n}"))')
    assert notebooks.tag_code_cell(mixed) is None
    assert "Markdown(" not in mixed.source and mixed.source.startswith("n = 3")
    helper = nbformat.v4.new_code_cell(
        "def markdown_table(h, rows):\n    display(Markdown('|'.join(h)))"
    )
    assert notebooks.tag_code_cell(helper) == "hide-input"
    plain = nbformat.v4.new_code_cell("import numpy as np")
    assert notebooks.tag_code_cell(plain) is None and "tags" not in plain.metadata
    assert notebooks.tag_code_cell(_answer_code()) == "hide-input"


def test_answers_close_after_their_code_cells():
    nb = notebooks.prepare_lecture(_lecture(), "A note.")
    sources = [c.source for c in nb.cells]
    first = next(i for i, s in enumerate(sources) if "Answer to exercise 1" in s)
    assert sources[first].startswith(f'<details class="{notebooks.ANSWER_CLASS}">')
    assert "</details>" not in sources[first]
    assert "answer" in nb.cells[first + 1].metadata["tags"]
    assert "answer" in nb.cells[first + 2].metadata["tags"]
    assert nb.cells[first + 3].cell_type == "markdown"
    assert nb.cells[first + 3].source == "</details>"
    # An answer without code cells keeps its own closing tag.
    second = sources.index(next(s for s in sources if "Answer to exercise 2" in s))
    assert sources[second].rstrip().endswith("</details>")
    assert sum(s.count("</details>") for s in sources) == 2
    # The note sits under the title; the committed notebook is not changed.
    assert sources[0].startswith("# Lecture 0: a title\n\n```{note}\nA note.\n```")
    assert _lecture().cells[3].source.endswith("</details>")


def test_widget_views_are_dropped_and_their_picture_kept():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer()")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                notebooks.WIDGET_MIME: {"model_id": "1"},
                "image/png": "iVBORw0KGgo=",
                "text/plain": "VBox()",
            },
        ),
        nbformat.v4.new_output(
            "display_data", data={notebooks.WIDGET_MIME: {"model_id": "2"}, "text/plain": "x"}
        ),
    ]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {}}
    assert notebooks.drop_widget_views(nb) == 2
    assert [set(o["data"]) for o in nb.cells[0].outputs] == [{"image/png", "text/plain"}]
    assert "widgets" not in nb.metadata


def test_assignments_are_shown_unexecuted_with_prose_code_collapsed():
    nb = nbformat.v4.new_notebook()
    given = nbformat.v4.new_code_cell('rows = []\ndisplay(Markdown("|a|"))')
    given.outputs = [nbformat.v4.new_output("stream", text="old output")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Assignment 9"), given]
    page = notebooks.prepare_assignment(nb, "As released.")
    assert page.cells[1].outputs == [] and "hide-input" in page.cells[1].metadata["tags"]
    assert nb.cells[1].outputs  # the original is untouched


# --- stage.py: pages, order and links -------------------------------------------------------


def _course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    for rel in (
        "lectures/01_a.ipynb",
        "lectures/02_b.ipynb",
        "lectures/05_new.ipynb",
        "lectures/05_old.ipynb",
        "assignments/01_x/01_x.ipynb",
        "assignments/02_y/02_y_two.ipynb",
        "assignments/02_y/02_y_one.ipynb",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), root / rel)
    (root / "docs/figures").mkdir(parents=True)
    for name in ("CONVENTIONS.md", "benchmark_a.md", "reproduction.md"):
        (root / "docs" / name).write_text(f"# {name}\n", encoding="utf-8")
    (root / "docs/figures/curve.png").write_bytes(b"\x89PNG")
    (root / "cnncourse").mkdir()
    (root / "cnncourse/plots.py").write_text("X = 1\n", encoding="utf-8")
    (root / "README.md").write_text(
        f"# Course\n\nBINDER_REPO = `{REPO}` (owner/name)\n\n"
        "## Contents, in order\n\n"
        "| # | lecture | practised in |\n| --- | --- | --- |\n"
        "| 1 | [A](lectures/01_a.ipynb) | [X](assignments/01_x/01_x.ipynb) |\n"
        "| 2 | [Old](lectures/05_old.ipynb) | [one](assignments/02_y/02_y_one.ipynb) |\n"
        "| 3 | [B](lectures/02_b.ipynb) | [two](assignments/02_y/02_y_two.ipynb) |\n\n"
        "See [docs](docs/reproduction.md) and [Binder](#binder).\n\n"
        "## Prerequisites\n\n* numpy\n\n### Details\n\nmore\n\n## Layout\n",
        encoding="utf-8",
    )
    return root


def test_pages_are_discovered_in_readme_order(tmp_path):
    root = _course(tmp_path)
    pages = stage.discover(root)
    assert [p.as_posix() for p in pages.lectures] == [
        "lectures/01_a.ipynb",
        "lectures/05_old.ipynb",
        "lectures/02_b.ipynb",
        "lectures/05_new.ipynb",  # not in the README yet: after the others, by name
    ]
    assert [p.name for p in pages.assignments] == ["01_x.ipynb", "02_y_one.ipynb", "02_y_two.ipynb"]
    assert [p.name for p in pages.docs] == ["reproduction.md", "benchmark_a.md"]


def test_binder_repo_and_readme_sections(tmp_path):
    readme = (_course(tmp_path) / "README.md").read_text(encoding="utf-8")
    assert stage.binder_repo(readme) == REPO
    with pytest.raises(ValueError, match="BINDER_REPO"):
        stage.binder_repo("# no setting here")
    assert stage.binder_url(REPO, "lectures/01_a.ipynb") == (
        f"https://mybinder.org/v2/gh/{REPO}/HEAD?labpath=lectures%2F01_a.ipynb"
    )
    assert stage.section(readme, "Prerequisites") == "* numpy\n\n### Details\n\nmore"
    assert stage.section(readme, "Nothing like this") is None


def test_links_to_pages_stay_and_others_go_to_github(tmp_path):
    root = _course(tmp_path)
    pages = {p.as_posix() for p in stage.discover(root).all()}
    assets: set[str] = set()
    text = (
        "[next](02_b.ipynb) [a1](../assignments/01_x/01_x.ipynb#part-2) "
        "![curve](../docs/figures/curve.png) [code](../cnncourse/plots.py) "
        "[folder](../cnncourse) [web](https://example.org/x) [here](#section) "
        "`[not](a_link.py)`"
    )
    out = stage.rewrite_links(text, "lectures/01_a.ipynb", root, pages, REPO, assets)
    assert "[next](02_b.ipynb)" in out
    assert "[a1](../assignments/01_x/01_x.ipynb#part-2)" in out
    assert "![curve](../docs/figures/curve.png)" in out and assets == {"docs/figures/curve.png"}
    assert f"[code](https://github.com/{REPO}/blob/HEAD/cnncourse/plots.py)" in out
    assert f"[folder](https://github.com/{REPO}/tree/HEAD/cnncourse)" in out
    assert "[web](https://example.org/x)" in out and "[here](#section)" in out
    assert "`[not](a_link.py)`" in out
    # From the README (not a page of the book), an anchor points to the README on GitHub.
    readme = stage.rewrite_links("[Binder](#binder)", "README.md", root, pages, REPO, set())
    assert readme == f"[Binder](https://github.com/{REPO}/blob/HEAD/README.md#binder)"


# --- execute.py: when an executed copy is reused ----------------------------------------------


def test_cache_key_changes_with_notebook_helpers_data_and_mode(tmp_path):
    root = _course(tmp_path)
    notebook = root / "lectures/01_a.ipynb"

    def key(fast: bool = True) -> str:
        return execute.cache_key(notebook, fast, execute.dependencies_digest(root))

    first = key()
    assert key() == first
    assert key(fast=False) != first
    (root / "assignments/01_x/01_x.ipynb").write_text("{}", encoding="utf-8")
    assert key() == first  # not something a lecture reads
    (root / "cnncourse/plots.py").write_text("X = 2\n", encoding="utf-8")
    second = key()
    assert second != first
    (root / "docs/reproduction.json").write_text("{}", encoding="utf-8")
    third = key()
    assert third != second
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("1 + 1"))
    nbformat.write(nb, notebook)
    assert key() != third
    copy = execute.cache_path(tmp_path / "cache", Path("lectures/01_a.ipynb"), "abc")
    assert copy == tmp_path / "cache" / "lectures" / "01_a.abc.ipynb"


def test_longest_notebooks_start_first():
    rels = [Path(f"lectures/0{i}_x.ipynb") for i in range(1, 5)]
    timings = {"lectures/01_x.ipynb": 5.0, "lectures/02_x.ipynb": 900.0}
    assert execute.run_order(rels, timings) == [rels[3], rels[2], rels[1], rels[0]]
    assert execute.run_order(rels, {}) == rels[::-1]
