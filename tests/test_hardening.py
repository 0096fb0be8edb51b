"""Attacks and faults: each fixture gets exactly the outcome it should, in one batch.

Notebook attacks are in tests/fixtures/attacks/<assignment>.py (built like the grading
fixtures; an attack on one notebook of assignment 2 is submitted with the correct versions
of the other two); attacks on the file system (links, FIFOs, odd and look-alike folder
names, a huge notebook, text no UTF-8 file can hold) are made here. All are graded in one
batch with honest students, whose grades must not change. The grader runs with a secret and
a database-like URL in its environment, which no kernel may see, and a folder of the host
(the "trap") that attacks try to make the grader write into.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
from pathlib import Path
from unittest import mock

import build_fixtures
import nbformat
import pytest

from autograder.cli import SAMPLES_DIR
from autograder.grading import grade_submissions
from autograder.limits import Limits
from autograder.record import state_dir

pytestmark = pytest.mark.slow

ATTACKS = build_fixtures.all_cases("attacks")
AID = "01_conv_forward"
NB = "01_conv_forward.ipynb"
HONEST = "zz_honest"
TWIN = "twin\x07"  # an honest student whose name holds a control character
TWIN_LOOKALIKE = "twin\\x07"  # a classmate whose name spells that character's escape
HOST_TRAP = Path("/tmp/cnn-host-trap")
FULL_MARKS = {"01_conv_forward": 7, "02_conv_backward": 30, "03_keras_mnist": 12}
LONG_NAME = "s" * 240
ODD_NAME = os.fsdecode(b"student-\xff\xfe-\x07bell")
SECRETS = {"CNN_GRADER_SECRET": "grader-secret-42", "CNN_COURSE_TEST_SECRET": "postgresql://u:pw@x"}
# Attacks on assignments 2-5 need a framework's import and some training time per cell.
FRAMEWORK_LIMITS = Limits(cell_timeout_s=300, notebook_timeout_s=1200, max_restarts=4)
# Limits small enough to hit quickly; everything else as in production.
TEST_LIMITS = Limits(
    cell_timeout_s=15,
    notebook_timeout_s=240,
    memory_mb=1500,
    max_processes=40,
    max_cells=5000,
    max_restarts=4,
)


def _copy_sample(target: Path) -> None:
    target.mkdir(parents=True)
    shutil.copy(SAMPLES_DIR / "alice_correct" / AID / NB, target / NB)


def _odd_text_notebook(target: Path) -> None:
    """The honest notebook with a markdown cell and an output that hold a lone surrogate
    and a NUL, written as JSON escapes (the only way a file can hold them)."""
    target.mkdir(parents=True)
    text = (SAMPLES_DIR / "alice_correct" / AID / NB).read_text(encoding="utf-8")
    raw = json.loads(text)
    raw["cells"].insert(
        1,
        {
            "cell_type": "markdown",
            "id": "odd-text",
            "metadata": {},
            "source": "surrogate \ud800 and NUL \u0000 and <b>bold</b>",
        },
    )
    (target / NB).write_text(json.dumps(raw), encoding="ascii")  # \ud800 as a JSON escape


def _file_attacks(subs: Path) -> dict[str, str]:
    """Make the file-system attacks; returns student -> expected problem name."""
    honest_nb = subs / HONEST / AID / NB
    made = {}
    folder = subs / "link_notebook" / AID
    folder.mkdir(parents=True)
    (folder / NB).symlink_to(honest_nb)
    made["link_notebook"] = "UnsafeFile"
    (subs / "link_folder").mkdir()
    (subs / "link_folder" / AID).symlink_to(subs / HONEST / AID)
    made["link_folder"] = "UnsafeFile"
    for name, target in [
        ("link_solutions", "/proc/self/cwd/solutions/01_conv_forward/01_conv_forward.ipynb"),
        ("link_environ", "/proc/self/environ"),
        ("link_mem", "/proc/self/mem"),
    ]:
        folder = subs / name / AID
        _copy_sample(folder)
        (folder / "data.txt").symlink_to(target)
        made[name] = "UnsafeFile"
    folder = subs / "fifo" / AID
    _copy_sample(folder)
    os.mkfifo(folder / "pipe")
    made["fifo"] = "UnsafeFile"
    folder = subs / "huge_notebook" / AID
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1  # " + "y" * 150) for _ in range(130_000)]
    nbformat.write(nb, folder / NB)
    made["huge_notebook"] = "NotebookTooLarge"
    _copy_sample(subs / LONG_NAME / AID)
    _copy_sample(subs / ODD_NAME / AID)
    _copy_sample(subs / TWIN / AID)
    folder = subs / TWIN_LOOKALIKE / AID
    folder.mkdir(parents=True)
    shutil.copy(build_fixtures.case_path("cases", AID, "untouched", NB), folder / NB)
    _odd_text_notebook(subs / "odd_text_file" / AID)
    return made


@pytest.fixture(scope="module")
def framework_batch(tmp_path_factory):
    """The attacks on assignments 2-5, graded with limits their frameworks need."""
    root = tmp_path_factory.mktemp("framework_attacks")
    subs = root / "subs"
    for (aid, name), case in ATTACKS.items():
        if aid == AID:
            continue
        src = build_fixtures.case_path("attacks", aid, name, case["notebook"])
        (subs / name / aid).mkdir(parents=True)
        shutil.copy(src, subs / name / aid / src.name)
    with mock.patch.dict(os.environ, SECRETS):
        run = grade_submissions(subs, root / "out", jobs=2, limits=FRAMEWORK_LIMITS, progress=False)
    return {"run": run}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    subs = root / "subs"
    for (aid, name), case in ATTACKS.items():
        if aid != AID:
            continue
        src = build_fixtures.case_path("attacks", aid, name, case["notebook"])
        (subs / name / aid).mkdir(parents=True)
        shutil.copy(src, subs / name / aid / src.name)
    _copy_sample(subs / HONEST / AID)
    files = _file_attacks(subs)
    shutil.rmtree(HOST_TRAP, ignore_errors=True)
    HOST_TRAP.mkdir()
    (HOST_TRAP / "keep.txt").write_text("the host's own file")
    with mock.patch.dict(os.environ, SECRETS):  # secrets the sandbox must not show
        run = grade_submissions(subs, root / "out", jobs=2, limits=TEST_LIMITS, progress=False)
        trap = sorted(p.name for p in HOST_TRAP.iterdir())
        csv_before = run.csv_path.read_bytes()
        again = grade_submissions(subs, root / "out", jobs=2, limits=TEST_LIMITS, progress=False)
    shutil.rmtree(HOST_TRAP, ignore_errors=True)
    return {"run": run, "again": again, "files": files, "trap": trap, "csv": csv_before}


def _result(batch, name):
    return next(r for r in batch["run"].results if r.student == name)


def _folder(batch, kind: str, name: str) -> Path:
    result = _result(batch, name)
    return batch["run"].out_dir / kind / name / result.assignment


def _autograded_text(batch, name) -> str:
    folder = _folder(batch, "autograded", name)
    return "".join(p.read_text(encoding="utf-8") for p in folder.glob("*.ipynb"))


def _outputs_text(batch, name) -> str:
    """Only what the cells printed (not their source)."""
    folder = _folder(batch, "autograded", name)
    outputs = []
    for path in folder.glob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        outputs += [cell.get("outputs", []) for cell in nb["cells"]]
    return json.dumps(outputs)


def _feedback_text(batch, name) -> str:
    folder = _folder(batch, "feedback", name)
    return "".join(p.read_text(encoding="utf-8") for p in folder.glob("*.html"))


@pytest.mark.parametrize("case_name", sorted(n for a, n in ATTACKS if a == AID))
def test_attack_outcome(batch, case_name):
    _check_attack(batch, case_name)


class TestOtherAssignments:
    """The attacks on assignments 2-5: a class, so that ``--dist loadscope`` can grade this
    batch on one worker while the other grades assignment 1's."""

    @pytest.mark.parametrize("case_name", sorted(n for a, n in ATTACKS if a != AID))
    def test_attack_outcome(self, framework_batch, case_name):
        _check_attack(framework_batch, case_name)


def _check_attack(batch, case_name: str) -> None:
    """The attack ``case_name`` scored what its case says, with the problems it names."""
    case = next(c for (_, n), c in ATTACKS.items() if n == case_name)
    run = batch["run"]
    if (case_name == "read_hidden_tests" or case.get("isolated_only")) and not run.isolated:
        pytest.skip("bubblewrap is not available: this attack needs the sandbox to hold")
    result = _result(batch, case_name)
    assert result.status == "graded", f"{case_name} was not graded: {result.problems}"
    if result.assignment in FULL_MARKS:
        assert result.max_score == FULL_MARKS[result.assignment], "points must not change"
    expect = dict(case.get("expect", {}))
    # an attack submits one notebook: the other notebooks of its assignment are missing
    # (0 points, MissingNotebook), and grading them would only cost time
    notebook = case["notebook"].removesuffix(".ipynb")
    for cell in (c for c in result.cells if c.notebook == notebook):
        wanted = expect.pop(cell.grade_id, cell.max_score)
        assert cell.score == wanted, (
            f"{case_name}: {cell.grade_id} {cell.score} != {wanted} ({cell.problem}: "
            f"{cell.message})"
        )
    assert not expect
    names = [p.name for p in result.problems] + [c.problem for c in result.cells]
    if "problem" in case:
        assert case["problem"] in names, result.problems
    if case.get("sole_problem"):
        assert [p.name for p in result.problems] == [case["problem"]], result.problems
    autograded = _autograded_text(batch, case_name)
    if "output_contains" in case:
        assert case["output_contains"] in autograded
    printed = _outputs_text(batch, case_name)
    for text in case.get("output_lacks", []):
        assert text not in printed, f"{case_name}: {text!r} reached the notebook's outputs"
    for text in case.get("feedback_lacks", []):
        assert text not in _feedback_text(batch, case_name), f"{text!r} reached the feedback"
    if "max_notebook_mb" in case:
        assert len(autograded) < case["max_notebook_mb"] * 2**20


def test_feedback_never_shows_hidden_tests(batch):
    for result in batch["run"].results:
        if result.status == "graded":
            text = _feedback_text(batch, result.student)
            assert "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text


def test_no_grader_environment_anywhere(batch):
    for result in batch["run"].results:
        text = _outputs_text(batch, result.student) if result.status == "graded" else ""
        for value in SECRETS.values():
            assert value not in text, f"{result.student} saw the grader's environment"


@pytest.mark.parametrize(
    "student",
    [
        "link_notebook",
        "link_folder",
        "link_solutions",
        "link_environ",
        "link_mem",
        "fifo",
        "huge_notebook",
    ],
)
def test_file_attacks_score_zero_with_a_named_problem(batch, student):
    result = _result(batch, student)
    assert result.status == "graded", result.problems
    assert result.score == 0 and result.max_score == 7
    assert batch["files"][student] in [p.name for p in result.problems], result.problems
    # nothing of the honest student's notebook (the link's target) was graded or shown
    assert "all 16 checks passed" not in _autograded_text(batch, student)


def test_huge_notebook_is_refused_before_any_processing(batch):
    """Refused at intake (its size), so nbgrader never parses, executes or renders it: no
    autograded copy and no feedback exist for it."""
    assert not _autograded_text(batch, "huge_notebook")
    feedback = batch["run"].out_dir / "feedback" / "huge_notebook"
    assert not list(feedback.rglob("*.html"))


def test_odd_folder_names_are_graded_and_reported(batch):
    long = _result(batch, LONG_NAME)
    assert long.score == long.max_score == 7
    odd = next(r for r in batch["run"].results if r.student.startswith("student-"))
    assert odd.score == 7 and "OddName" in [p.name for p in odd.problems]
    assert odd.student.isprintable() and "\\xff" in odd.student


def test_grades_csv_complete_and_resume_changes_nothing(batch):
    run, again = batch["run"], batch["again"]
    with open(run.csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    a1_attacks = sum(1 for aid, _ in ATTACKS if aid == AID)
    assert len(rows) == len(run.results) == a1_attacks + len(batch["files"]) + 6
    assert len(again.skipped) == len(run.results)  # the second run resumed: nothing regraded
    assert again.csv_path.read_bytes() == batch["csv"]  # byte for byte


def test_the_grader_never_writes_where_a_kernel_points(batch):
    """Attacks replaced request folders by links to a folder of the host: it holds exactly
    what it held before grading."""
    assert batch["trap"] == ["keep.txt"]


def test_look_alike_names_keep_their_own_grades(batch):
    results = {r.student: r for r in batch["run"].results if r.student.startswith("twin")}
    assert len(results) == 2, sorted(results)
    assert sorted(r.score for r in results.values()) == [0, 7]
    honest = next(r for r in results.values() if r.score == 7)
    assert honest.student.startswith("twin\\x07~")  # escaped, with its fingerprint
    assert all(s.isprintable() for s in results)


def test_text_no_file_can_hold_is_graded(batch):
    result = _result(batch, "odd_text_file")
    assert result.status == "graded" and result.score == 7, result.problems
    assert "\ufffd" in _autograded_text(batch, "odd_text_file")


def test_escapes_never_reach_a_terminal_or_a_spreadsheet(batch):
    text = batch["run"].csv_path.read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x07" not in text
    for line in text.splitlines():
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "@")), cell
    from autograder.report import failures, summary_table

    shown = summary_table(batch["run"].results) + failures(batch["run"].results)
    assert "\x1b" not in shown and "\x07" not in shown


def test_grader_memory_is_bounded(batch):
    """The grader's own process (not the kernel) stays small whatever a kernel sends: a 56 MB
    result, a flood of output while the checks run."""
    peaks = {r.student: r.grader_peak_mb for r in batch["run"].results}
    normal = peaks[HONEST]
    for name in ("huge_result", "print_in_checks", "huge_output", "display_flood"):
        assert peaks[name] < 2 * normal, (name, peaks[name], normal)


def test_honest_student_unaffected(batch):
    honest = _result(batch, HONEST)
    assert honest.score == honest.max_score > 0


def test_gradebook_not_poisoned(batch):
    con = sqlite3.connect(batch["run"].out_dir / "gradebook.db")
    assert (
        con.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone()[0] == 0
    )


def test_batch_completed(batch):
    assert all(r.status == "graded" for r in batch["run"].results), [
        (r.student, r.problems) for r in batch["run"].results if r.status != "graded"
    ]
    journal = state_dir(batch["run"].out_dir) / "results"
    assert sorted(journal.glob("*.json")), "no journal"
    assert all(len(p.name) < 100 for p in journal.iterdir())
    assert all(json.loads(p.read_text())["status"] for p in journal.glob("*.json"))


DAEMON = """import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(PIDFILE, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(600)
    os._exit(0)
"""


def test_daemon_does_not_outlive_its_notebook_without_sandbox(tmp_path, monkeypatch):
    """Without bubblewrap a kernel can fork a daemon; the grader kills it with the kernel."""
    monkeypatch.setenv("CNN_GRADER_NO_BWRAP", "1")
    pidfile = tmp_path / "daemon.pid"
    nb = nbformat.read(SAMPLES_DIR / "alice_correct" / AID / NB, as_version=4)
    cell = nbformat.v4.new_code_cell(DAEMON.replace("PIDFILE", repr(str(pidfile))))
    cell["id"] = "daemon"
    nb.cells.insert(3, cell)
    folder = tmp_path / "subs" / "daemon" / AID
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NB)
    run = grade_submissions(tmp_path / "subs", tmp_path / "out", jobs=1, progress=False)
    assert run.results[0].score == 7
    pid = int(pidfile.read_text())
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    ), "a process started by the kernel outlived the notebook"
