"""Every lecture's exercises have worked answers a self-study reader can open.

The format (docs/CONVENTIONS.md, "Lecture exercises and answers"): the lecture's
``## Exercises`` markdown cell numbers its exercises ``1.``, ``2.``, ...; after it, for each
exercise N, one markdown cell ``<details><summary>Answer to exercise N</summary>`` ...
``</details>``; numbers in an answer are computed by code cells right after that markdown
cell, tagged ``answer`` and collapsed (``jupyter.source_hidden``), which the prose announces as
"the (hidden) cell below". Each answer code cell runs its body inside
``with answer("Computed answer to exercise N"):`` (``cnncourse.answers``), so that what it prints
or draws is one closed toggle when the lecture runs, not a spoiler under the exercises.

The static checks run here for all lectures. That the answer cells *run* is checked on the
fast-mode executions the lecture tests already do (``tests/test_lectures_numpy.py`` and
``tests/test_lectures_frameworks.py`` call :func:`assert_answers_ran`), so no lecture runs twice.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
README = ROOT / "README.md"
LECTURE_NAMES = sorted(p.name for p in LECTURES.glob("[0-9][0-9]_*.ipynb"))
#: The tests that execute lectures in fast mode (``execute_notebook`` on a notebook of
#: ``lectures/``), and so must check the answers ran.
EXECUTING_TESTS = tuple(
    sorted(
        p.name
        for p in (ROOT / "tests").glob("test_*.py")
        if re.search(r"^from conftest import execute_notebook$", text := p.read_text(), re.M)
        and '/ "lectures"' in text
    )
)
#: Lectures whose answer cells do not run inside ``with answer(...)`` yet. The lead empties it
#: once lecture 10 is converted (``test_unconverted_set_is_current`` says when).
TOGGLE_HEAD = re.compile(
    r'^<details class="cnn-answer-output"><summary>Computed answer to exercise (\d+)</summary>'
)

SUMMARY = "<details><summary>Answer to exercise {n}</summary>"
ANNOUNCE = re.compile(r"\(hidden\)\s+cells?\s+below")
ITEM = re.compile(r"^(\d+)\.\s", re.MULTILINE)  # "1. ..." at the start of a line


def is_answer_code(cell: nbformat.NotebookNode) -> bool:
    """A code cell tagged ``answer``."""
    return cell.cell_type == "code" and "answer" in cell.metadata.get("tags", [])


def exercise_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Everything that breaks the exercise-and-answer format, as readable messages."""
    problems: list[str] = []
    cells = nb.cells
    starts = [
        i
        for i, c in enumerate(cells)
        if c.cell_type == "markdown" and re.search(r"^## Exercises\s*$", c.source, re.MULTILINE)
    ]
    if len(starts) != 1:
        return [f"expected one markdown cell with '## Exercises', found {len(starts)}"]
    start = starts[0]
    if not cells[start].source.startswith("## Exercises"):
        problems.append("'## Exercises' must open its own cell (split it from the summary)")
    numbers = [int(n) for n in ITEM.findall(cells[start].source)]
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"exercises must be numbered 1., 2., ...; found {numbers}")
        return problems

    i = start + 1
    for n in numbers:
        if i >= len(cells) or cells[i].cell_type != "markdown":
            problems.append(f"exercise {n}: no answer cell right after the previous one")
            return problems
        text = cells[i].source
        head = SUMMARY.format(n=n)
        if not text.startswith(head + "\n\n"):
            problems.append(f"exercise {n}: answer must start with {head!r} and a blank line")
        if not text.endswith("\n\n</details>") or text.count("</details>") != 1:
            problems.append(f"exercise {n}: answer must end with a blank line and '</details>'")
        body = text[len(head) : -len("</details>")].strip()
        if len(body) < 80:
            problems.append(f"exercise {n}: the worked answer is too short ({len(body)} chars)")
        i += 1
        codes = []
        while i < len(cells) and cells[i].cell_type == "code":
            codes.append(cells[i])
            i += 1
        for code in codes:
            if not is_answer_code(code):
                problems.append(f"exercise {n}: code cell {code.get('id')} lacks the 'answer' tag")
            if code.metadata.get("jupyter", {}).get("source_hidden") is not True:
                problems.append(f"exercise {n}: code cell {code.get('id')} is not collapsed")
            try:
                compile(code.source, f"answer {n}", "exec")
            except SyntaxError as err:
                problems.append(f"exercise {n}: answer code does not compile: {err}")
        announced = bool(ANNOUNCE.search(body))
        if codes and not announced:
            problems.append(f"exercise {n}: say 'the (hidden) cell below computes ...'")
        if announced and not codes:
            problems.append(f"exercise {n}: the prose announces a hidden cell that is missing")
    placed = sum(1 for c in cells[start:i] if is_answer_code(c))
    stray = sum(1 for c in cells if is_answer_code(c)) - placed
    if stray:
        problems.append(f"{stray} 'answer' code cell(s) outside the answer blocks")
    return problems


def answer_block_exercise(source: str) -> int | None:
    """N when the cell is one ``with answer("Computed answer to exercise N"):`` block."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return None
    if len(body) != 1 or not isinstance(body[0], ast.With) or len(body[0].items) != 1:
        return None
    call = body[0].items[0].context_expr
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        return None
    if call.func.id != "answer" or len(call.args) != 1 or call.keywords:
        return None
    title = call.args[0]
    if not (isinstance(title, ast.Constant) and isinstance(title.value, str)):
        return None
    match = re.fullmatch(r"Computed answer to exercise (\d+)", title.value)
    return int(match.group(1)) if match else None


def toggle_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Answer code cells that do not run their body inside their exercise's ``answer`` block."""
    problems, exercise = [], None
    for cell in nb.cells:
        found = re.match(r"<details><summary>Answer to exercise (\d+)</summary>", cell.source)
        if cell.cell_type == "markdown" and found:
            exercise = int(found.group(1))
        elif is_answer_code(cell):
            n = answer_block_exercise(cell.source)
            if n is None:
                problems.append(
                    f"answer cell {cell.get('id')}: run its body inside "
                    f'with answer("Computed answer to exercise {exercise}"):'
                )
            elif n != exercise:
                problems.append(f"answer cell {cell.get('id')}: says exercise {n}, not {exercise}")
    return problems


def is_answer_toggle(output: nbformat.NotebookNode) -> bool:
    """An output written by ``with answer(...)``: one closed or open toggle."""
    html = output.get("data", {}).get("text/html", "")
    return isinstance(html, str) and html.startswith('<details class="cnn-answer-output"')


def answers_text(nb: nbformat.NotebookNode) -> str:
    """The text inside an executed lecture's answer toggles (their ``text/plain`` copy)."""
    return "\n".join(
        out["data"].get("text/plain", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if is_answer_toggle(out)
    )


def count_figures(nb: nbformat.NotebookNode) -> int:
    """PNG figures in an executed notebook: outputs, and the figures inside answer toggles."""
    count = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            count += "image/png" in data
            if is_answer_toggle(out):
                count += data["text/html"].count('src="data:image/png;base64,')
    return count


def assert_answers_ran(nb: nbformat.NotebookNode) -> None:
    """For an executed lecture: every answer code cell ran, printed something, raised nothing;
    one that runs inside ``with answer(...)`` has one output, a closed toggle."""
    answers = [c for c in nb.cells if is_answer_code(c)]
    assert answers, "no answer code cells: were the exercises' answers removed?"
    for cell in answers:
        name = f"answer cell {cell.get('id')}"
        assert cell.get("execution_count") is not None, f"{name} did not run"
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"{name} raised {errors[0].get('ename')}"
        assert cell.outputs, f"{name} computes nothing visible"
        exercise = answer_block_exercise(cell.source)
        assert exercise is not None, f"{name} does not run inside `with answer(...)`"
        kinds = [o.get("output_type") for o in cell.outputs]
        assert kinds == ["display_data"], f"{name}: outputs {kinds}, not one toggle"
        html = cell.outputs[0].get("data", {}).get("text/html", "")
        head = TOGGLE_HEAD.match(html)
        assert head, f"{name}: its output is not a closed 'Computed answer' toggle: {html[:80]!r}"
        assert int(head.group(1)) == exercise and html.rstrip().endswith("</details>"), name


# --------------------------------------------------------------------------- the lectures


def test_every_lecture_is_in_the_readme_and_back() -> None:
    """The README's contents table lists exactly the lectures in lectures/."""
    import re

    listed = set(re.findall(r"\(lectures/([0-9]{2}_[a-z0-9_]+\.ipynb)\)", README.read_text()))
    assert listed == set(LECTURE_NAMES), (sorted(listed), LECTURE_NAMES)


@pytest.mark.parametrize("name", LECTURE_NAMES)
def test_every_exercise_has_an_answer(name: str) -> None:
    nb = nbformat.read(LECTURES / name, as_version=4)
    problems = exercise_problems(nb)
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", LECTURE_NAMES)
def test_answers_close_the_lecture(name: str) -> None:
    """The link to the assignment follows the answers; answers have numbers computed by code."""
    nb = nbformat.read(LECTURES / name, as_version=4)
    tail = "\n".join(c.source for c in nb.cells[-2:] if c.cell_type == "markdown")
    assert "../assignments/" in tail, f"{name}: the assignment link should follow the answers"
    assert any(is_answer_code(c) for c in nb.cells), f"{name}: no answer computes anything"


@pytest.mark.parametrize("name", LECTURE_NAMES)
def test_answers_run_in_toggles(name: str) -> None:
    """Every answer code cell runs inside ``with answer(...)``, so its output stays closed."""
    nb = nbformat.read(LECTURES / name, as_version=4)
    problems = toggle_problems(nb)
    assert not problems, f"{name}:\n" + "\n".join(problems)
    setup = next(c.source for c in nb.cells if "setup_notebook(" in c.source)
    assert "from cnncourse.answers import answer" in setup, f"{name}: import answer in setup"


def test_executing_tests_check_the_answers() -> None:
    """Each lecture is executed by a test that also calls assert_answers_ran."""
    sources = {name: (ROOT / "tests" / name).read_text() for name in EXECUTING_TESTS}
    for name, text in sources.items():
        assert "assert_answers_ran(" in text, f"{name} executes lectures without checking answers"
    covered = "\n".join(sources.values())
    for lecture in LECTURE_NAMES:
        assert lecture in covered, f"{lecture} is executed by none of {EXECUTING_TESTS}"


# --------------------------------------------------------------------------- the checker itself


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _answer(n: int, body: str = "A worked answer that is long enough to count. " * 3) -> str:
    return f"{SUMMARY.format(n=n)}\n\n{body}\n\n</details>"


def _code(source: str = "print(1)", tags=("answer",), hidden: bool = True):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata = {"tags": list(tags), "jupyter": {"source_hidden": hidden}}
    return cell


EXERCISES = "## Exercises\n1. **One.** Do it.\n2. **Two.** Do more.\n   continued line"
ANNOUNCED = "Worked out in words first. The (hidden) cell below computes the number." * 2


def test_checker_accepts_the_format() -> None:
    md = nbformat.v4.new_markdown_cell
    nb = _notebook(md(EXERCISES), md(_answer(1, ANNOUNCED)), _code(), md(_answer(2)), md("## Go"))
    assert exercise_problems(nb) == []


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["ex", "a1"], "exercise 2: no answer"),
        (["ex", "a2", "a1"], "exercise 1: answer must start"),
        (["ex", "a1", "untagged", "a2"], "lacks the 'answer' tag"),
        (["ex", "a1", "visible", "a2"], "is not collapsed"),
        (["ex", "a1", "broken", "a2"], "does not compile"),
        (["ex", "a1-announced", "a2"], "announces a hidden cell that is missing"),
        (["ex", "a1", "code", "a2"], "say 'the (hidden) cell below"),
        (["ex", "a1", "a2", "other", "code"], "outside the answer blocks"),
        (["summary+ex", "a1", "a2"], "must open its own cell"),
        (["ex", "a1-short", "a2"], "too short"),
        (["ex", "a1-unclosed", "a2"], "must end with"),
        (["ex-bad-numbers", "a1"], "numbered"),
    ],
)
def test_checker_rejects(cells: list[str], message: str) -> None:
    md = nbformat.v4.new_markdown_cell
    make = {
        "ex": lambda: md(EXERCISES),
        "ex-bad-numbers": lambda: md("## Exercises\n1. One\n3. Three"),
        "summary+ex": lambda: md("## Summary\n- a point\n\n" + EXERCISES),
        "a1": lambda: md(_answer(1)),
        "a2": lambda: md(_answer(2)),
        "a1-announced": lambda: md(_answer(1, ANNOUNCED)),
        "a1-short": lambda: md(_answer(1, "Yes.")),
        "a1-unclosed": lambda: md(_answer(1).removesuffix("\n\n</details>")),
        "code": lambda: _code(),
        "other": lambda: md("## Practise"),
        "untagged": lambda: _code(tags=()),
        "visible": lambda: _code(hidden=False),
        "broken": lambda: _code("print(("),
    }
    problems = exercise_problems(_notebook(*(make[c]() for c in cells)))
    assert any(message in p for p in problems), problems


def test_toggle_checker() -> None:
    md = nbformat.v4.new_markdown_cell
    wrapped = _code('with answer("Computed answer to exercise 1"):\n    print(1)')
    assert toggle_problems(_notebook(md(_answer(1)), wrapped)) == []
    assert "run its body inside" in toggle_problems(_notebook(md(_answer(1)), _code()))[0]
    assert "says exercise 1, not 2" in toggle_problems(_notebook(md(_answer(2)), wrapped))[0]
    half = _code('with answer("Computed answer to exercise 1"):\n    x = 1\nprint(x)')
    assert toggle_problems(_notebook(md(_answer(1)), half))


def _ran(source: str, *outputs: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = _code(source)
    cell.execution_count = 1
    cell.outputs = list(outputs)
    return cell


def test_assert_answers_ran_wants_one_closed_toggle() -> None:
    source = 'with answer("Computed answer to exercise 2"):\n    print(1)'
    html = '<details class="cnn-answer-output"><summary>Computed answer to exercise 2</summary>'
    toggle = nbformat.v4.new_output("display_data", data={"text/html": html + "1</details>"})
    assert_answers_ran(_notebook(_ran(source, toggle)))
    opened = nbformat.v4.new_output(
        "display_data", data={"text/html": html.replace('"><summary>', '" open><summary>')}
    )
    stream = nbformat.v4.new_output("stream", name="stdout", text="spoiler\n")
    for outputs, message in [
        ((toggle, stream), "not one toggle"),
        ((stream,), "not one toggle"),
        ((opened,), "not a closed"),
    ]:
        with pytest.raises(AssertionError, match=message):
            assert_answers_ran(_notebook(_ran(source, *outputs)))
    with pytest.raises(AssertionError):  # the toggle of another exercise
        assert_answers_ran(_notebook(_ran(source.replace("2", "3"), toggle)))
    figure = '<img alt="figure" src="data:image/png;base64,iVBORw0KGgo=">'
    drawn = nbformat.v4.new_output(
        "display_data", data={"text/html": html + figure * 2, "text/plain": "answer: 7"}
    )
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    nb = _notebook(_ran(source, drawn), _ran("plot()", png, stream))
    assert count_figures(nb) == 3 and answers_text(nb) == "answer: 7"


def test_assert_answers_ran_detects_failures() -> None:
    source = 'with answer("Computed answer to exercise 1"):\n    print(42)'
    html = '<details class="cnn-answer-output"><summary>Computed answer to exercise 1</summary>'
    toggle = nbformat.v4.new_output("display_data", data={"text/html": html + "42</details>"})
    ran = _ran(source, toggle)
    assert_answers_ran(_notebook(ran))
    not_run = _code()
    with pytest.raises(AssertionError, match="did not run"):
        assert_answers_ran(_notebook(ran, not_run))
    bare = _ran("print(42)", nbformat.v4.new_output("stream", name="stdout", text="42\n"))
    with pytest.raises(AssertionError, match="does not run inside"):
        assert_answers_ran(_notebook(bare))
    failed = _code()
    failed.execution_count = 4
    failed.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="x", traceback=[])]
    with pytest.raises(AssertionError, match="raised NameError"):
        assert_answers_ran(_notebook(failed))
    silent = _code()
    silent.execution_count = 5
    with pytest.raises(AssertionError, match="nothing visible"):
        assert_answers_ran(_notebook(silent))
    with pytest.raises(AssertionError, match="no answer code cells"):
        assert_answers_ran(_notebook(nbformat.v4.new_markdown_cell("text")))
