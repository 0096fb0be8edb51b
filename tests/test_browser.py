"""JupyterLab in a real browser: what a student and an instructor see.

JupyterLab runs from the venv (not activated: its ``bin/`` is not on PATH) on a free local
port with a token, in a temporary copy of the course with assignment 1 released to the
course's exchange and no gradebook yet (as in a fresh clone). Playwright drives Debian's
Chromium (never a browser of its own). Screenshots go to the test's temporary folder;
assertions are on text.

Skips, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import BIN, CHROMIUM, CHROMIUM_ARGS, jupyter_lab, need_chromium

from autograder.fixtures import build_case, write_notebook
from autograder.release import COURSE_PYTHON

pytestmark = pytest.mark.slow

AID = "01_conv_forward"
ASSIGNMENT_NB = f"assignments/{AID}/{AID}.ipynb"
LECTURE_NB = "lectures/02_convolution.ipynb"
TIMEOUT_MS = 120_000


def _cell_index(path: Path, predicate) -> int | None:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return next((i for i, cell in enumerate(cells) if predicate(cell)), None)


@pytest.fixture(scope="module")
def lab(root, tmp_path_factory):
    """(base URL, token, course copy, screenshot folder) of a running JupyterLab."""
    need_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    course, home, shots = tmp / "course", tmp / "home", tmp / "screenshots"
    for folder in (course, home, shots):
        folder.mkdir()
    shutil.copy2(root / "nbgrader_config.py", course)
    for name in ("solutions", "assignments", "lectures"):
        shutil.copytree(root / name, course / name, ignore=shutil.ignore_patterns(".ipynb_*"))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # the venv is not activated
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CNN_COURSE_ROOT": str(course),
        "CNN_COURSE_FAST": "1",
        "CNN_COURSE_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    # Released to the course's exchange; no gradebook yet (a fresh clone): the Formgrader
    # creates it, which needs `alembic` on PATH (nbgrader_config.py puts it there).
    done = subprocess.run(
        [str(BIN / "nbgrader"), "release_assignment", AID],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (course / "gradebook.db").exists()
    # The student has answered every question (as the reference solution does).
    write_notebook(build_case(AID, {"notebook": f"{AID}.ipynb"}), course / ASSIGNMENT_NB)

    try:
        with jupyter_lab(course, env, tmp / "jupyter.log") as (base, token):
            yield base, token, course, shots
    finally:
        print(f"screenshots: {shots}")


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab):
    base, token, _, _ = lab
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/lab?reset&token={token}")  # sets the login cookie; no old tabs
    page.wait_for_selector(".lm-MenuBar-item")
    yield page
    context.close()


def _open_notebook(page, lab, path: str):
    base, token, _, _ = lab
    page.goto(f"{base}/lab/tree/{path}?reset&token={token}")
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Cell").first.wait_for()
    # The kernel is ready once the toolbar names it and reports it idle.
    page.wait_for_selector(".jp-NotebookPanel-toolbar >> text=Python 3 (ipykernel)")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return panel.locator(".jp-Notebook .jp-Cell")


def _run_up_to(page, cells, index: int) -> None:
    """Run every cell above ``index`` and then that cell, from Lab's menus and keys."""
    cell = cells.nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")  # command mode
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item", has_text="Run All Above Selected Cell").click()
    page.keyboard.press("Control+Enter")  # the selected cell itself


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=top).click()
    page.locator(".lm-Menu-item", has_text=item).first.click()


def test_assignment_visible_test_and_validate(page, lab):
    _, _, course, shots = lab
    cells = _open_notebook(page, lab, ASSIGNMENT_NB)
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    time.sleep(2)  # Lab rewrites kernelspec and language_info from the kernel by now
    page.screenshot(path=str(shots / "01_assignment_opened.png"))
    if sys.version.split()[0] == COURSE_PYTHON:
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or ""), (
            "the notebook is marked unsaved as soon as it opens: its kernelspec or "
            "language_info differ from what JupyterLab writes"
        )

    first_test = _cell_index(
        course / ASSIGNMENT_NB,
        lambda c: c.get("metadata", {}).get("nbgrader", {}).get("grade", False),
    )
    assert first_test is not None
    _run_up_to(page, cells, first_test)
    output = cells.nth(first_test).locator(".jp-OutputArea")
    output.locator(".jp-OutputArea-output").first.wait_for()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    message = output.inner_text()
    cells.nth(first_test).screenshot(path=str(shots / "02_first_test_cell.png"))
    assert "zero_pad" in message and "passed" in message.lower(), message
    assert "Traceback" not in message and "Error" not in message, message

    # nbgrader's Validate button (a toolbar button): it saves, validates on the server, and
    # shows the result in a dialog.
    page.locator(".jp-NotebookPanel-toolbar jp-button.validate-button").click()
    dialog = page.locator(".jp-Dialog-content")
    dialog.wait_for(timeout=240_000)
    text = dialog.inner_text()
    page.screenshot(path=str(shots / "03_validate_dialog.png"))
    assert "Success" in text and "passes all the tests" in text, text


def test_assignment_list_shows_the_course(page, lab):
    _, _, _, shots = lab
    _menu(page, "Nbgrader", "Assignment List")
    course_button = page.locator("#course_list_default")
    page.wait_for_function(
        "() => { const b = document.querySelector('#course_list_default');"
        " return b && !b.innerText.includes('Loading'); }"
    )
    released = page.locator("#released_assignments_list")
    released.locator(f"text={AID}").first.wait_for()
    page.screenshot(path=str(shots / "04_assignment_list.png"))
    text = page.locator("#assignments").inner_text()
    assert course_button.inner_text().strip() == "cnn-course", text
    assert "Error fetching courses!" not in text, text
    assert "exchange directory does not exist" not in text, text
    assert AID in released.inner_text()


def test_formgrader_shows_the_course(page, lab):
    _, _, course, shots = lab
    _menu(page, "Nbgrader", "Formgrader")
    frame = page.frame_locator("iframe").first
    row = frame.locator("tr", has_text=AID).first
    row.wait_for()
    page.screenshot(path=str(shots / "05_formgrader.png"))
    text = frame.locator("body").inner_text()
    assert "Manage Assignments" in text, text
    for problem in ("Error fetching courses!", "Loading, please wait", "500", "Traceback"):
        assert problem not in text, f"{problem!r} on the Formgrader page:\n{text}"
    assert "released" in row.inner_text().lower(), row.inner_text()
    # The Formgrader made the gradebook itself, alembic version included.
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()


def test_lecture_explorer_slider_changes_output_size(page, lab):
    _, _, course, shots = lab
    lecture = course / LECTURE_NB
    explorer_cell = _cell_index(
        lecture, lambda c: c["cell_type"] == "code" and "explorer(" in "".join(c["source"])
    )
    if explorer_cell is None:
        pytest.skip(f"{LECTURE_NB} has no ipywidgets explorer yet")
    setup_cell = _cell_index(
        lecture, lambda c: c["cell_type"] == "code" and "setup_notebook" in "".join(c["source"])
    )
    cells = _open_notebook(page, lab, LECTURE_NB)
    for index in (setup_cell, explorer_cell):
        cell = cells.nth(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    box = cells.nth(explorer_cell).locator(".cnn-explorer")
    box.wait_for()
    nout = box.locator(".cnn-explorer-nout")
    before = nout.inner_text().strip()
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "06_explorer_before.png"))
    handle = box.locator(".cnn-explorer-pad .noUi-handle, .cnn-explorer-pad [role=slider]").first
    handle.focus()
    page.keyboard.press("ArrowRight")  # pad 0 -> 1
    page.wait_for_function(
        "(old) => { const e = document.querySelector('.cnn-explorer .cnn-explorer-nout');"
        " return e && e.innerText.trim() !== old; }",
        arg=before,
    )
    after = nout.inner_text().strip()
    formula = box.locator(".cnn-explorer-formula").inner_text()
    page.screenshot(path=str(shots / "07_explorer_after.png"))
    assert re.fullmatch(r"\d+", before) and re.fullmatch(r"\d+", after), (before, after)
    assert int(after) == int(before) + 1, (before, after, formula)
    assert "n_out" in formula and formula.strip().endswith(after), formula


# --- answers that stay collapsed (issue 22, item 3) ----------------------------------------
ANSWERS_NB = "lectures/01_matrices_images.ipynb"
ANSWER_TOGGLE = (
    ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output details.cnn-answer-output"
)


def _run_all_until_toggles(page, lab, path: str, count: int):
    """Open ``path``, Run All Cells, wait for ``count`` answer toggles and an idle kernel."""
    _open_notebook(page, lab, path)
    _menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length >= n", arg=[ANSWER_TOGGLE, count]
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return page.locator(ANSWER_TOGGLE)


def test_lecture_answers_stay_closed_after_run_all(page, lab):
    _, _, course, shots = lab
    cells = json.loads((course / ANSWERS_NB).read_text(encoding="utf-8"))["cells"]
    count = sum("answer" in c.get("metadata", {}).get("tags", []) for c in cells)
    toggles = _run_all_until_toggles(page, lab, ANSWERS_NB, count)
    assert toggles.count() == count
    for i in range(count):
        assert toggles.nth(i).get_attribute("open") is None, f"answer {i + 1} is open"
        assert not toggles.nth(i).locator(".cnn-answer-body").is_visible()
    first = toggles.first
    first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "08_answers_closed_after_run_all.png"))
    first.locator("summary").click()
    first.locator(".cnn-answer-body").wait_for(state="visible")
    assert first.get_attribute("open") is not None
    assert "w.T @ x.T == (x @ w).T: True" in first.inner_text()
    first.screenshot(path=str(shots / "09_answer_opened.png"))


def test_answer_math_is_typeset_in_lab(page, lab):
    import nbformat

    _, _, course, shots = lab
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from IPython.display import Markdown, display\n"
            "from cnncourse.answers import answer\n"
            'with answer("Computed answer to exercise 1"):\n'
            '    display(Markdown("inline $\\\\frac{a}{b}$\\n\\n$$\\\\sum_i x_i^2$$"))'
        )
    ]
    nbformat.write(nb, course / "lectures" / "answer_math.ipynb")
    toggle = _run_all_until_toggles(page, lab, "lectures/answer_math.ipynb", 1).first
    toggle.locator("summary").click()
    toggle.locator("mjx-container").nth(1).wait_for(state="visible")  # inline and display
    toggle.screenshot(path=str(shots / "10_answer_math.png"))
