"""The course for a class on JupyterHub (``classroom/``, ``make classroom``).

Fast checks: the roster, the demo passwords, the hub's and the students' configuration.

The class in a real browser (slow; as root, where accounts can be made): a classroom of its own
(its own prefix under /tmp, its own accounts with a random tag, its own ports) is built with
``python -m classroom``'s functions, its environment cloned from the course's .venv. Students A
and B log in, fetch assignment 1, fill it (A the reference answers, B the same with one mistake:
average pooling takes the maximum, tests/fixtures/01_conv_forward/pool_average_wrong), run a
test cell, Validate and submit. B then tries the instructor's solutions, A's home, A's server
and the Formgrader, and is refused each time. The instructor collects, autogrades and
releases feedback from the Formgrader; A and B fetch it and read their scores and the grader's
messages, no hidden tests. At the end the accounts, the processes and the folder are gone.

Screenshots of every step: ``$CNN_COURSE_SCREENSHOTS`` (default: the test's temporary folder).
"""

from __future__ import annotations

import html
import json
import os
import pwd
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import CHROMIUM, CHROMIUM_ARGS
from traitlets.config.loader import PyFileConfigLoader

from classroom import accounts, environment, hub, lifecycle
from classroom.layout import Layout
from classroom.passwords import check_password, hash_password

AID = "01_conv_forward"
NOTEBOOK = f"{AID}/{AID}.ipynb"
FIXTURE = "tests/fixtures/01_conv_forward/{case}/01_conv_forward.ipynb"
# B's named mistake: cnncourse/checks/misconceptions.py, "average_is_max"
B_MISTAKE = "returns the maximum of each window"
TIMEOUT_MS = 240_000


# -- fast checks --------------------------------------------------------------------------


def test_demo_roster_reads(root):
    people = accounts.read_roster(root / "classroom" / "roster.csv")
    roles = [p.role for p in people]
    assert roles.count("instructor") == 1 and roles.count("student") >= 2
    assert all(accounts.USERNAME.match(p.username) for p in people)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("name,role\nx,student\n", "header"),
        ("username,role\nBad Name,student\n", "lower-case"),
        ("username,role\nt1,teacher\n", "role"),
        ("username,role\nt1,instructor\nt1,student\n", "twice"),
        ("username,role\nt1,student\n", "no instructor"),
    ],
)
def test_roster_errors_say_what_is_wrong(tmp_path, text, problem):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(accounts.RosterError, match=problem):
        accounts.read_roster(path)


def test_passwords_are_stored_hashed_and_checked():
    record = hash_password("correct horse")
    assert "correct horse" not in json.dumps(record)
    assert check_password("correct horse", record)
    assert not check_password("correct hors", record)
    assert not check_password("correct horse", {"salt": "zz", "scrypt": "00"})
    assert hash_password("a")["salt"] != hash_password("a")["salt"]


def _hub_config(root: Path, tmp_path: Path, **changes):
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    shutil.copy2(root / "classroom" / "jupyterhub_config.py", hub_dir)
    state = {
        "prefix": str(tmp_path),
        "port": 8000,
        "hub_port": 8081,
        "proxy_api_port": 8001,
        "service_port": 8002,
        "service": "cnn-course",
        "service_token": "t" * 64,
        "formgrade_group": "formgrade-cnn-course",
        "grader": {"username": "g", "uid": 1},
        "people": [
            {"username": "prof", "role": "instructor"},
            {"username": "s1", "role": "student"},
            {"username": "s2", "role": "student"},
        ],
        "environment": {"CNN_COURSE_THREADS": "1"},
        **changes,
    }
    (hub_dir / "classroom.json").write_text(json.dumps(state))
    return PyFileConfigLoader("jupyterhub_config.py", path=str(hub_dir)).load_config()


def test_hub_config_wires_people_servers_and_formgrader(root, tmp_path):
    config = _hub_config(root, tmp_path)
    assert config.JupyterHub.authenticator_class == "roster_authenticator.RosterAuthenticator"
    assert config.Authenticator.allowed_users == {"prof", "s1", "s2"}
    assert config.Spawner.cmd == [str(tmp_path / "env" / "bin" / "jupyterhub-singleuser")]
    assert config.Spawner.environment == {"CNN_COURSE_THREADS": "1"}
    (service,) = config.JupyterHub.services
    assert service["name"] == "cnn-course" and service["url"].endswith(":8002")
    # only the instructors' group may open the Formgrader
    assert config.JupyterHub.load_groups == {"formgrade-cnn-course": {"users": ["prof"]}}
    (role,) = config.JupyterHub.load_roles
    assert role["groups"] == ["formgrade-cnn-course"]
    assert "access:services!service=cnn-course" in role["scopes"]
    assert str(tmp_path / "proxy") in config.ConfigurableHTTPProxy.command[0]
    # the university's login instead of the demo's
    other = tmp_path / "other"
    other.mkdir()
    assert _hub_config(root, other, authenticator="pam").JupyterHub.authenticator_class == "pam"


def test_formgrader_runs_as_grader_in_course_folder(tmp_path):
    state = {
        "service": "cnn-course",
        "service_token": "x",
        "hub_port": 9,
        "service_port": 10,
        "grader": {"username": "g"},
    }
    layout = Layout(tmp_path)
    env = hub.formgrader_env(layout, state)
    # the course folder's own packages first, so its nbgrader_config.py's classes import
    assert env["PYTHONPATH"] == str(layout.course)
    assert env["JUPYTER_CONFIG_DIR"] == str(layout.grader_home / ".jupyter")
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == "/services/cnn-course/"
    assert json.loads(env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"]) == [
        "access:services!service=cnn-course"
    ]


def test_student_config_names_course_and_exchange(root, tmp_path, monkeypatch):
    etc = tmp_path / "prefix" / "env" / "etc" / "jupyter"
    etc.mkdir(parents=True)
    shutil.copy2(root / "classroom" / "student_nbgrader_config.py", etc / "nbgrader_config.py")
    monkeypatch.delenv("CNN_COURSE_EXCHANGE", raising=False)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(etc)).load_config()
    assert config.CourseDirectory.course_id == "cnn-course"
    assert config.Exchange.root == str(tmp_path / "prefix" / "exchange")
    monkeypatch.setenv("CNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(etc)).load_config()
    assert config.Exchange.root == "/srv/nbgrader/exchange"


def test_make_classroom_targets(root):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    up = subprocess.run(["make", "-n", "classroom"], cwd=root, capture_output=True, text=True)
    down = subprocess.run(
        ["make", "-n", "classroom-clean"], cwd=root, capture_output=True, text=True
    )
    assert "-m classroom up" in up.stdout, up.stdout + up.stderr
    assert "-m classroom down" in down.stdout, down.stdout + down.stderr


# -- the class in a browser ---------------------------------------------------------------


@dataclass
class Class:
    """A running classroom of the test."""

    layout: Layout
    base: str
    passwords: dict[str, str]
    instructor: str
    a: str
    b: str
    shots: Path
    times: dict[str, float]


def _snapshot_accounts() -> set[str]:
    return {entry.pw_name for entry in pwd.getpwall()}


@pytest.fixture(scope="module")
def klass(root, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the classroom creates Linux accounts: run the tests as root")
    for tool in ("useradd", "userdel", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing: cannot build a classroom here")
    if shutil.which("patchelf") is None and not environment.runs_for_everyone(
        Path(sys.base_prefix) / "bin" / environment.PY
    ):
        pytest.skip("the course's Python is private to root and patchelf is missing to share it")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    tag = secrets.token_hex(2)
    names = {role: f"cnnt{tag}-{role}" for role in ("instructor", "a", "b", "grader")}
    taken = [n for n in names.values() if accounts.user_exists(n)]
    if taken:
        pytest.skip(f"accounts {taken} exist already")
    tmp = tmp_path_factory.mktemp("classroom")
    shots = Path(os.environ.get("CNN_COURSE_SCREENSHOTS", tmp / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    roster = tmp / "roster.csv"
    roster.write_text(
        "username,role,name\n"
        f"{names['instructor']},instructor,Test Instructor\n"
        f"{names['a']},student,Student A\n{names['b']},student,Student B\n"
    )
    # Not under pytest's temporary folders (mode 0700): students must enter the prefix.
    prefix = Path(f"/tmp/cnn-classroom-test-{tag}")
    accounts_before = _snapshot_accounts()
    options = lifecycle.Options(
        prefix=prefix,
        roster=roster,
        port=hub.free_port(),
        grader=names["grader"],
        environment={
            "CNN_COURSE_FAST": "1",
            "CNN_COURSE_THREADS": "1",
            # the course's opt-in to nbgrader's in-kernel grading, passed on when set
            **{k: v for k, v in os.environ.items() if k == "CNN_COURSE_IN_KERNEL_GRADING"},
        },
        gradebook_all=False,  # assignment 1 is enough here (the demo records all five)
    )
    times: dict[str, float] = {}
    start = time.monotonic()
    try:
        try:
            state = lifecycle.up(options)
        except (accounts.RosterError, subprocess.CalledProcessError) as err:
            if isinstance(err, subprocess.CalledProcessError) and "useradd" in str(err.cmd):
                pytest.skip(f"cannot create accounts here: {err.stderr}")
            raise
        times["up"] = time.monotonic() - start
        yield Class(
            layout=Layout(prefix),
            base=f"http://127.0.0.1:{state['port']}",
            passwords=state["passwords"],
            instructor=names["instructor"],
            a=names["a"],
            b=names["b"],
            shots=shots,
            times=times,
        )
    finally:
        made = lifecycle.read_state(Layout(prefix)).get("created_users", {})
        start_down = time.monotonic()
        lifecycle.down(prefix)
        times["down"] = time.monotonic() - start_down
        print(f"\nclassroom times (s): {json.dumps({k: round(v) for k, v in times.items()})}")
        print(f"screenshots: {shots}")
        # The machine as the test found it: no account, process or folder of the classroom.
        assert _snapshot_accounts() == accounts_before
        assert not [uid for uid in made.values() if accounts.processes_of(uid)]
        assert not prefix.exists()


@pytest.fixture(scope="module")
def browser(klass):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _login(browser, klass: Class, user: str, next_url: str = ""):
    """A page logged in as ``user`` (a browser context of its own: its own cookies)."""
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{klass.base}/hub/login" + (f"?next={next_url}" if next_url else ""))
    page.fill("#username_input", user)
    page.fill("#password_input", klass.passwords[user])
    page.click("#login_submit")
    return page


def _lab(browser, klass: Class, user: str):
    page = _login(browser, klass, user)
    page.wait_for_selector(".lm-MenuBar-item")  # the user's own JupyterLab has started
    return page


def _assignment_list(page) -> None:
    page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
    page.locator(".lm-Menu-item", has_text="Assignment List").click()
    page.wait_for_function(
        "() => { const b = document.querySelector('#course_list_default');"
        " return b && !b.innerText.includes('Loading'); }"
    )


def _kernel_ready(page):
    """The visible notebook, once its kernel is named in the toolbar and reported idle
    (keys pressed before that run nothing)."""
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Cell").first.wait_for()
    page.wait_for_selector(".jp-NotebookPanel-toolbar >> text=Python 3 (ipykernel)")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
        ".some(e => /[|] Idle/.test(e.textContent))"
    )
    return panel


def _open_notebook(page, klass: Class, user: str, path: str):
    page.goto(f"{klass.base}/user/{user}/lab/tree/{path}?reset")
    return _kernel_ready(page).locator(".jp-Notebook .jp-Cell")


def _answers(root: Path, case: str) -> dict[str, str]:
    nb = json.loads((root / FIXTURE.format(case=case)).read_text())
    return {
        c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def _grade_ids(path: Path) -> list[str | None]:
    cells = json.loads(path.read_text())["cells"]
    return [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells]


def _hidden_lines(root: Path) -> list[str]:
    """Distinctive lines of assignment 1's hidden tests (not also in the release)."""
    source = (root / "solutions" / NOTEBOOK).read_text()
    release = (root / "assignments" / NOTEBOOK).read_text()
    lines = []
    for cell in json.loads(source)["cells"]:
        text = "".join(cell["source"])
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
            lines += [
                ln.strip()
                for ln in block.splitlines()
                if len(ln.strip()) >= 20 and json.dumps(ln.strip())[1:-1] not in release
            ]
    assert len(lines) >= 4, "assignment 1 should have hidden tests"
    return lines


def _student_submits(browser, klass: Class, root: Path, user: str, case: str, tag: str) -> None:
    """Log in, fetch, fill the answers of ``case``, run a test cell, Validate, submit."""
    t0 = time.monotonic()
    page = _lab(browser, klass, user)
    page.screenshot(path=str(klass.shots / f"{tag}1_lab.png"))
    klass.times[f"{tag} login and server start"] = time.monotonic() - t0

    _assignment_list(page)
    released = page.locator("#released_assignments_list")
    released.locator(".list_item", has_text=AID).locator("button", has_text="Fetch").click()
    page.locator("#fetched_assignments_list").locator(f"text={AID}").first.wait_for()
    page.screenshot(path=str(klass.shots / f"{tag}2_fetched.png"))
    path = klass.layout.home_of(user) / NOTEBOOK
    assert path.is_file() and path.stat().st_uid == pwd.getpwnam(user).pw_uid

    cells = _open_notebook(page, klass, user, NOTEBOOK)
    answers, ids = _answers(root, case), _grade_ids(path)
    for index, grade_id in enumerate(ids):
        if grade_id in answers:
            cell = cells.nth(index)
            cell.scroll_into_view_if_needed()
            cell.locator(".cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(answers[grade_id])  # as pasted: no auto-indent
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.lm-TabBar-tab.lm-mod-current.jp-mod-dirty')"
    )
    saved = json.loads(path.read_text())["cells"]
    for cell in saved:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            assert "".join(cell["source"]) == answers[grade_id], f"{grade_id} not as typed"

    # The first test cell (zero_pad, right in both cases), after every cell above it.
    first_test = ids.index("zero_pad_tests")
    cell = cells.nth(first_test)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item", has_text="Run All Above Selected Cell").click()
    page.keyboard.press("Control+Enter")
    output = cell.locator(".jp-OutputArea")
    output.locator(".jp-OutputArea-output").first.wait_for()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    message = output.inner_text()
    cell.screenshot(path=str(klass.shots / f"{tag}3_test_cell.png"))
    assert "zero_pad" in message and "passed" in message.lower(), message

    t1 = time.monotonic()
    page.locator(".jp-NotebookPanel-toolbar jp-button.validate-button").click()
    dialog = page.locator(".jp-Dialog-content")
    dialog.wait_for()
    text = dialog.inner_text()
    page.screenshot(path=str(klass.shots / f"{tag}4_validate.png"))
    klass.times[f"{tag} validate"] = time.monotonic() - t1
    if case == "correct":
        assert "Success" in text and "passes all the tests" in text, text
    else:
        assert "Success" not in text and "pool_forward" in text, text
    dialog.locator("button", has_text=re.compile("OK|Close|Dismiss", re.I)).first.click()

    _assignment_list(page)
    fetched = page.locator("#fetched_assignments_list")
    fetched.locator(".list_item", has_text=AID).locator("button", has_text="Submit").click()
    page.locator("#submitted_assignments_list").locator(f"text={AID}").first.wait_for()
    page.screenshot(path=str(klass.shots / f"{tag}5_submitted.png"))
    page.context.close()


def _probe_notebook(page, klass: Class, user: str, code: str) -> str:
    """Run ``code`` in a new notebook of ``user``'s JupyterLab; returns the output's text."""
    page.goto(f"{klass.base}/user/{user}/lab?reset")
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    cell = _kernel_ready(page).locator(".jp-Notebook .jp-Cell").first
    cell.locator(".cm-content").click()
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    output = cell.locator(".jp-OutputArea-output").first
    output.wait_for()
    return output.inner_text()


PROBE = """import os
for name, path in [("solutions", {solutions!r}), ("A's home", {home!r})]:
    try:
        print(name, "->", sorted(os.listdir(path))[:3])
    except OSError as err:
        print(name, "->", type(err).__name__)
"""


@pytest.mark.slow
def test_a_student_cannot_reach_solutions_or_another_student(browser, klass):
    """B's own kernel, B's browser: the course folder, A's home, A's server, the Formgrader."""
    solutions = klass.layout.course / "solutions"
    assert solutions.is_dir() and klass.layout.home_of(klass.a).is_dir()
    _lab(browser, klass, klass.a).context.close()  # A's server runs: B tries to reach it
    page = _lab(browser, klass, klass.b)
    code = PROBE.format(solutions=str(solutions), home=str(klass.layout.home_of(klass.a)))
    text = _probe_notebook(page, klass, klass.b, code)
    page.screenshot(path=str(klass.shots / "x1_probe_files.png"))
    assert text.splitlines() == [
        "solutions -> PermissionError",
        "A's home -> PermissionError",
    ], text
    for what, url in [
        ("a_server", f"{klass.base}/user/{klass.a}/lab"),
        ("formgrader", f"{klass.base}/services/cnn-course/formgrader"),
    ]:
        response = page.goto(url)
        page.screenshot(path=str(klass.shots / f"x2_{what}.png"))
        assert response.status == 403, (url, response.status)
        assert "Manage Assignments" not in page.locator("body").inner_text()
    page.context.close()


@pytest.mark.slow
def test_class_round_trip(browser, klass, root):
    """Submit (A right, B with one mistake), grade in the Formgrader, read the feedback."""
    t0 = time.monotonic()
    _student_submits(browser, klass, root, klass.a, "correct", "a")
    _student_submits(browser, klass, root, klass.b, "pool_average_wrong", "b")
    klass.times["two students submit"] = time.monotonic() - t0

    t1 = time.monotonic()
    page = _login(browser, klass, klass.instructor, "/services/cnn-course/formgrader")
    row = page.locator("tr", has_text=AID).first
    row.wait_for()
    page.screenshot(path=str(klass.shots / "i1_formgrader.png"))

    def click_and_confirm(locator, expect: str) -> None:
        locator.click()
        modal = page.locator("#success-modal, #error-modal").first
        modal.wait_for(timeout=TIMEOUT_MS)
        text = modal.inner_text()
        assert page.locator("#success-modal").count() == 1 and expect in text, text
        modal.locator(".modal-footer button").click()
        modal.wait_for(state="detached")

    click_and_confirm(row.locator("td.collect a"), "Successfully collected")
    page.reload()
    row = page.locator("tr", has_text=AID).first
    row.locator("td.num-submissions a", has_text="2").wait_for()
    page.screenshot(path=str(klass.shots / "i2_collected.png"))
    row.locator("td.num-submissions a").click()
    for student in (klass.a, klass.b):
        line = page.locator("tr", has_text=student).first
        line.wait_for()
        click_and_confirm(line.locator("td.autograde a"), "Successfully autograded")
    page.reload()
    page.locator("tr", has_text=klass.b).locator("td.score").first.wait_for()
    scores = {
        s: page.locator("tr", has_text=s).locator("td.score").first.inner_text().strip()
        for s in (klass.a, klass.b)
    }
    page.screenshot(path=str(klass.shots / "i3_autograded.png"))
    assert scores == {klass.a: "7 / 7", klass.b: "5 / 7"}, scores
    page.goto(f"{klass.base}/services/cnn-course/formgrader/manage_assignments")
    row = page.locator("tr", has_text=AID).first
    click_and_confirm(row.locator("td.generate-feedback a"), "Successfully generated feedback")
    click_and_confirm(row.locator("td.release-feedback a"), "Successfully released feedback")
    page.screenshot(path=str(klass.shots / "i4_feedback_released.png"))
    page.context.close()
    klass.times["instructor collects, grades, releases"] = time.monotonic() - t1

    hidden = _hidden_lines(root)
    for student, tag, score in ((klass.a, "a", "7.0 / 7.0"), (klass.b, "b", "5.0 / 7.0")):
        page = _lab(browser, klass, student)
        _assignment_list(page)
        submitted = page.locator("#submitted_assignments_list")
        submitted.locator("button", has_text="Fetch Feedback").first.click()
        submitted.locator("text=view feedback").first.wait_for()
        page.screenshot(path=str(klass.shots / f"{tag}6_feedback_fetched.png"))
        (html_file,) = klass.layout.home_of(student).glob(f"{AID}/feedback/*/{AID}.html")
        relative = html_file.relative_to(klass.layout.home_of(student))
        page.goto(f"{klass.base}/user/{student}/files/{relative}")
        page.screenshot(path=str(klass.shots / f"{tag}7_feedback_score.png"))
        page.locator("a", has_text="Test cell").nth(3).click()  # the summary's link: pooling
        page.screenshot(path=str(klass.shots / f"{tag}8_feedback_pool_forward.png"))
        text = html.unescape(page.locator("body").inner_text())
        assert f"Score: {score}" in text, text[:2000]
        assert "BEGIN HIDDEN TESTS" not in text
        assert not [line for line in hidden if line in text], f"{student} sees hidden tests"
        if student == klass.b:
            assert B_MISTAKE in text, text[-3000:]
        page.context.close()
    # What the gradebook recorded (the course folder's, as the instructor's export reads it).
    assert _gradebook_totals(klass.layout.course / "gradebook.db") == {klass.a: 7.0, klass.b: 5.0}


def _gradebook_totals(path: Path) -> dict[str, float]:
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT submitted_assignment.student_id, SUM(grade.auto_score) FROM grade"
            " JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id"
            " JOIN submitted_assignment"
            " ON submitted_notebook.assignment_id = submitted_assignment.id"
            " GROUP BY submitted_assignment.student_id"
        ).fetchall()
    return {student: float(score) for student, score in rows}
