"""Finding submissions and copying them safely: layout errors, links, odd names, sizes.

Fast unit tests of :mod:`autograder.find` and :mod:`autograder.intake`, plus the CLI's one-line
errors (exit 2) for a folder given at the wrong level or a missing path.
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from autograder.find import LayoutError, check_layout, display_name, find_submissions
from autograder.intake import read_submission
from autograder.limits import Limits

KNOWN = ["01_conv_forward", "02_conv_backward"]
NB = "01_conv_forward.ipynb"


def _notebook(path, cells=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1") for _ in range(cells)]
    nbformat.write(nb, path)


@pytest.fixture
def subs(tmp_path):
    root = tmp_path / "subs"
    _notebook(root / "alice" / "01_conv_forward" / NB)
    _notebook(root / "bob" / "01_conv_forward" / NB)
    (root / "bob" / "01_conv_forward" / ".ipynb_checkpoints").mkdir()
    _notebook(root / "bob" / "01_conv_forward" / ".ipynb_checkpoints" / "x-checkpoint.ipynb")
    (root / ".git").mkdir()
    (root / "notes.txt").write_text("stray file")
    return root


def test_finds_students_and_ignores_hidden_folders_and_stray_files(subs):
    found = find_submissions(subs, KNOWN)
    assert [(s.student, s.assignment) for s in found] == [
        ("alice", "01_conv_forward"),
        ("bob", "01_conv_forward"),
    ]
    intake = read_submission(found[1].folder, ["01_conv_forward"], Limits())
    assert list(intake.files) == [NB] and not intake.problems


@pytest.mark.parametrize(
    "level,words",
    [
        ("alice", "looks like one student's folder or the release folder"),
        ("alice/01_conv_forward", "holds notebooks"),
        ("missing", "not found"),
        ("alice/01_conv_forward/01_conv_forward.ipynb", "is a file"),
    ],
)
def test_wrong_level_says_what_was_expected_and_found(subs, level, words):
    with pytest.raises(LayoutError, match=words) as info:
        check_layout(subs / level, KNOWN)
    assert "<student>/<assignment>" in str(info.value) or "not found" in str(info.value)


def test_release_folder_is_refused(tmp_path):
    release = tmp_path / "assignments"
    _notebook(release / "01_conv_forward" / NB)
    (release / "01_conv_forward" / ".ipynb_checkpoints").mkdir()
    with pytest.raises(LayoutError, match="release folder"):
        find_submissions(release, KNOWN)


@pytest.mark.parametrize("level", ["alice", "alice/01_conv_forward", "nowhere"])
def test_cli_gives_one_line_and_exit_2(subs, tmp_path, level):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            str(subs / level),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_notebook_under_another_name_is_named_and_graded(tmp_path):
    folder = tmp_path / "s" / "01_conv_forward"
    _notebook(folder / "01_conv_forward-Copy1.ipynb")
    intake = read_submission(folder, ["01_conv_forward"], Limits())
    assert list(intake.files) == [NB]
    (problem,) = intake.problems
    assert problem.name == "RenamedNotebook" and "01_conv_forward-Copy1.ipynb" in problem.message


def test_ambiguous_notebooks_are_named_in_the_missing_problem(tmp_path):
    folder = tmp_path / "s" / "01_conv_forward"
    _notebook(folder / "a.ipynb")
    _notebook(folder / "b.ipynb")
    intake = read_submission(folder, ["01_conv_forward"], Limits())
    (problem,) = intake.problems
    assert problem.name == "MissingNotebook" and "'a.ipynb'" in problem.message


@pytest.mark.parametrize("kind", ["notebook_link", "data_link", "fifo", "dir_link"])
def test_links_and_special_files_refuse_the_submission(tmp_path, kind):
    folder = tmp_path / "s" / "01_conv_forward"
    other = tmp_path / "other.ipynb"
    _notebook(other)
    if kind == "notebook_link":
        folder.mkdir(parents=True)
        (folder / NB).symlink_to(other)
    else:
        _notebook(folder / NB)
        if kind == "data_link":
            (folder / "data.csv").symlink_to("/proc/self/environ")
        elif kind == "fifo":
            os.mkfifo(folder / "pipe")
        else:
            (folder / "sub").symlink_to(tmp_path)
    intake = read_submission(folder, ["01_conv_forward"], Limits())
    assert intake.refused and intake.files == {}
    assert intake.problems[0].name == "UnsafeFile"


def test_symlinked_student_and_assignment_folders_are_found_and_flagged(subs, tmp_path):
    (subs / "carol").symlink_to(subs / "alice")
    (subs / "dave").mkdir()
    (subs / "dave" / "01_conv_forward").symlink_to(subs / "alice" / "01_conv_forward")
    found = {s.student: s for s in find_submissions(subs, KNOWN)}
    assert found["carol"].problems[0].name == "UnsafeFile"
    assert found["dave"].problems[0].name == "UnsafeFile"


def test_odd_names_are_shown_escaped(subs):
    odd = os.fsdecode(b"e\xffve\x07")
    _notebook(subs / odd / "01_conv_forward" / NB)
    (sub,) = [s for s in find_submissions(subs, KNOWN) if s.student.startswith("e")]
    assert sub.student.startswith("e\\xffve\\x07~") and sub.student.isprintable()
    assert sub.problems[0].name == "OddName"
    assert display_name("plain") == ("plain", False)


def test_names_that_display_alike_stay_two_students(subs):
    """Identity is the folder's bytes: a name with a control character, one that spells out
    that character's escape, and a ligature next to its letters are four students."""
    names = ["twin\x07", "twin\\x07", "\ufb01le", "file"]
    for name in names:
        _notebook(subs / name / "01_conv_forward" / NB)
    found = [s for s in find_submissions(subs, KNOWN) if "twin" in s.student or "le" in s.student]
    ids = [s.student for s in found]
    assert len(ids) == len(set(ids)) == 4, ids
    assert all(i.isprintable() for i in ids)
    assert {s.student for s in found if s.student.startswith("twin")} != {"twin\\x07"}


def test_too_large_or_too_many_cells_or_broken(tmp_path):
    folder = tmp_path / "s" / "01_conv_forward"
    _notebook(folder / NB, cells=50)
    intake = read_submission(folder, ["01_conv_forward"], Limits(max_cells=10))
    assert intake.problems[0].name == "NotebookTooLarge" and NB not in intake.files
    (folder / NB).write_bytes(b"0" * (2 * 2**20))
    intake = read_submission(folder, ["01_conv_forward"], Limits(notebook_mb=1))
    assert intake.problems[0].name == "NotebookTooLarge"
    (folder / NB).write_text("{not json")
    intake = read_submission(folder, ["01_conv_forward"], Limits())
    assert intake.problems[0].name == "BrokenNotebook"
