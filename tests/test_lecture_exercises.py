"""Every lecture's exercises have worked answers a self-study reader can open.

The format (docs/CONVENTIONS.md, "Lecture exercises and answers"): the lecture's
``## Exercises`` markdown cell numbers its exercises ``1.``, ``2.``, ...; after it, for each
exercise N, one markdown cell ``<details><summary>Answer to exercise N</summary>`` ...
``</details>``; numbers in an answer are computed by code cells right after that markdown
cell, tagged ``answer`` and collapsed (``jupyter.source_hidden``), which the prose announces as
"the (hidden) cell below".

The static checks run here for all lectures. That the answer cells *run* is checked on the
fast-mode executions the lecture tests already do (``tests/test_lectures_numpy.py`` and
``tests/test_lectures_frameworks.py`` call :func:`assert_answers_ran`), so no lecture runs twice.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
README = ROOT / "README.md"
LECTURE_NAMES = sorted(p.name for p in LECTURES.glob("[0-9][0-9]_*.ipynb"))
#: The tests that execute the lectures in fast mode, and so must check the answers ran.
# Every test module may execute lectures (each lecture names the module that runs it).
EXECUTING_TESTS = tuple(sorted(p.name for p in (ROOT / "tests").glob("test_*.py")))

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


def assert_answers_ran(nb: nbformat.NotebookNode) -> None:
    """For an executed lecture: every answer code cell ran, printed something, raised nothing."""
    answers = [c for c in nb.cells if is_answer_code(c)]
    assert answers, "no answer code cells: were the exercises' answers removed?"
    for cell in answers:
        assert cell.get("execution_count") is not None, f"answer cell {cell.get('id')} did not run"
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"answer cell {cell.get('id')} raised {errors[0].get('ename')}"
        assert cell.outputs, f"answer cell {cell.get('id')} computes nothing visible"


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


def test_assert_answers_ran_detects_failures() -> None:
    ran = _code()
    ran.execution_count = 3
    ran.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    assert_answers_ran(_notebook(ran))
    not_run = _code()
    with pytest.raises(AssertionError, match="did not run"):
        assert_answers_ran(_notebook(ran, not_run))
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
