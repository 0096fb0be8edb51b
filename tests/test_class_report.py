"""The class report: its data from made-up results, its similarity check on fixture students,
a graded batch of assignment 1, and the page in a real browser.

Students for the similarity check are in ``tests/fixtures/class_report/similarity_cases.py``
(built from the current release at test time, so they never go stale).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shutil
from enum import StrEnum
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import course
from autograder.class_report import build_report, similarity, summarise
from autograder.class_report import main as report_main
from autograder.class_report.build import add_parser, load_results
from autograder.class_report.data import heading_anchor
from autograder.fixtures import build_case, load_cases, write_notebook
from autograder.problems import Problem
from autograder.worker import CellResult, SubmissionResult
from cnncourse.checks.misconceptions import CATALOGUE

AID = "01_conv_forward"
NB = f"{AID}.ipynb"
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CHROMIUM = os.environ.get("CNN_COURSE_CHROMIUM", "/usr/bin/chromium")


def _cases():
    path = FIXTURES / "class_report" / "similarity_cases.py"
    spec = importlib.util.spec_from_file_location("similarity_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _cases()


def _release() -> dict:
    return json.loads((course.assignments_dir() / AID / NB).read_text(encoding="utf-8"))


def student_notebook(name: str) -> nbformat.NotebookNode:
    """A fixture student of similarity_cases.py, as they would submit assignment 1."""
    stubs = {
        c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
        for c in _release()["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution")
    }
    cells = CASES.STUDENTS[name]
    replace = {gid: CASES.fill(stubs[gid], *cells[gid]) for gid in cells}
    return build_case(AID, {"notebook": NB, "replace": replace})


def _fixture_notebook(case: str) -> dict:
    return json.loads((FIXTURES / AID / case / NB).read_text(encoding="utf-8"))


def _documents(notebooks: dict[str, dict]) -> list[similarity.Document]:
    release = _release()
    docs = [
        similarity.Document(name, AID, similarity.student_code(nb, release))
        for name, nb in notebooks.items()
    ]
    similarity.fingerprint_documents(docs, similarity.release_code(release))
    return docs


# ----------------------------------------------------------------- lecture references


def test_every_misconception_has_a_lecture_section(root):
    """Each catalogue entry's ``lecture`` is a heading of that lecture (the report links it)."""
    for key, entry in CATALOGUE.items():
        lecture, heading = entry.lecture
        nb = nbformat.read(root / "lectures" / lecture, as_version=4)
        headings = {
            line.lstrip("#").strip()
            for cell in nb.cells
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("#")
        }
        assert heading in headings, f"{key}: no heading {heading!r} in lectures/{lecture}"


def test_heading_anchor_is_jupyterlab_s():
    assert heading_anchor("1. `zero_pad`: a frame") == "1.-zero_pad:-a-frame"


# ----------------------------------------------------------------- data from results


class Name(StrEnum):  # problems.py's names may become an enum
    CellTimeLimit = "CellTimeLimit"


def _cell(grade_id, score, points, problem="", cause="", message=""):
    return CellResult(AID, grade_id, score, points, problem, message, cause=cause)


def _made_up_results() -> list[SubmissionResult]:
    full = [_cell("zero_pad_tests", 1, 1), _cell("conv_forward_tests", 3, 3)]
    pads = _cell("zero_pad_tests", 0, 1, "CheckFailed", "pads_wrong_axes", "zero_pad: ...")
    slow = Problem(Name.CellTimeLimit, "cell ran 60 s", "conv_forward_tests", AID)
    return [
        SubmissionResult("amy", AID, "graded", 4, 4, full),
        SubmissionResult("bo", AID, "graded", 3, 4, [pads, full[1]]),
        SubmissionResult("cy", AID, "graded", 3, 4, [pads, full[1]]),
        SubmissionResult(
            "di",
            AID,
            "graded",
            1,
            4,
            [full[0], _cell("conv_forward_tests", 0, 3, "CellTimeLimit", "", "too slow")],
            [slow],
        ),
        SubmissionResult("ed", AID, "failed", 0, 0, [], [Problem("GraderError", "boom")]),
    ]


def test_summary_counts_scores_cells_causes_and_problems():
    data = summarise(_made_up_results())
    (summary,) = data.summaries
    assert summary.submissions == 5 and summary.failed == 1
    assert sorted(summary.scores) == [1, 3, 3, 4]  # the failed one is not a 0
    assert (summary.full, summary.zero, summary.median) == (1, 0, 3)
    cells = {c.grade_id: c for c in data.cells}
    assert (cells["zero_pad_tests"].passed, cells["zero_pad_tests"].graded) == (2, 4)
    assert cells["conv_forward_tests"].pass_rate == pytest.approx(0.75)
    assert data.cells[0].grade_id == "zero_pad_tests"  # worst first
    assert [(c.key, c.students) for c in data.causes] == [("pads_wrong_axes", ["bo", "cy"])]
    assert data.causes[0].lecture == (
        "03_forward_numpy.ipynb",
        "1. `zero_pad`: a frame of zeros around each image",
    )
    # the journal's problem and the cell's verdict are one problem, not two
    assert [(h.student, h.cell) for h in data.problems["CellTimeLimit"]] == [
        ("di", "conv_forward_tests")
    ]
    assert [h.student for h in data.problems["GraderError"]] == ["ed"]
    rows = {s.student: s for s in data.students}
    assert rows["bo"].lost == ["zero_pad_tests"] and rows["bo"].causes == ["pads_wrong_axes"]
    assert rows["di"].problems == ["CellTimeLimit"]


def test_page_escapes_submission_text_and_loads_nothing(tmp_path):
    evil = '<script>alert("x")</script>'
    results = _made_up_results()
    results[1].student = evil
    results[1].cells[0].message = '<img src=x onerror="alert(1)">'
    results[3].problems[0] = Problem("CellTimeLimit", "<b>bold</b>", "conv_forward_tests", AID)
    path = build_report(results, tmp_path, course.project_root())
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert {p.name for p in path.parent.glob("*.csv")} == {
        "scores.csv",
        "checks.csv",
        "misconceptions.csv",
        "problems.csv",
        "students.csv",
        "similar_pairs.csv",
    }


# ----------------------------------------------------------------- similarity, ungraded


def test_copy_with_renamed_names_and_reordered_helpers_is_flagged():
    nbs = {n: json.loads(nbformat.writes(student_notebook(n))) for n in ("ana", "ben", "chen")}
    nbs["correct"] = _fixture_notebook("correct")
    docs = _documents(nbs)
    pairs = similarity.find_similar(docs)
    assert {(p.student_a, p.student_b) for p in pairs} == {("ana", "ben")}
    (pair,) = pairs
    assert pair.similarity >= similarity.THRESHOLD
    # independent solutions stay well below the threshold, both ways
    names = [d.student for d in docs]
    shares = similarity.share_matrix(docs)
    for a, b in itertools.permutations(["ana", "chen", "correct"], 2):
        assert shares[names.index(a), names.index(b)] < similarity.THRESHOLD / 2, (a, b)


def test_share_matrix_is_copydetects_similarity():
    from copydetect import compare_files

    nbs = {n: json.loads(nbformat.writes(student_notebook(n))) for n in ("ana", "ben", "chen")}
    nbs["conv_no_bias"] = _fixture_notebook("conv_no_bias")
    nbs["correct"] = _fixture_notebook("correct")
    docs = _documents(nbs)
    shares = similarity.share_matrix(docs)
    for (i, a), (j, b) in itertools.combinations(enumerate(docs), 2):
        _, (sim_a, sim_b), _ = compare_files(a.fingerprint, b.fingerprint)
        assert shares[i, j] == pytest.approx(sim_a, abs=1e-12), (a.student, b.student)
        assert shares[j, i] == pytest.approx(sim_b, abs=1e-12), (a.student, b.student)
    assert np.allclose(np.diag(shares), 1.0)


def test_the_release_alone_is_no_similarity():
    release = _release()
    untouched = _fixture_notebook("untouched")
    assert similarity.student_code(untouched, release).strip() == ""
    docs = _documents({"u1": untouched, "u2": json.loads(json.dumps(untouched)), "r": release})
    assert [d.size for d in docs] == [0, 0, 0]
    assert similarity.find_similar(docs) == []


def test_own_code_is_the_solution_lines_and_added_cells_only():
    release = _release()
    nb = json.loads(nbformat.writes(student_notebook("ana")))
    nb["cells"].append(
        {"cell_type": "code", "metadata": {}, "source": "extra = 42\n", "outputs": []}
    )
    code = similarity.student_code(nb, release)
    assert "def _window(image, row, col, f, stride):" in code
    assert "extra = 42" in code
    assert "def zero_pad(X, pad):" not in code  # the stub's line
    assert "verify(" not in code and "import numpy" not in code  # test and given cells


# ----------------------------------------------------------------- a graded batch

GRADED_CASES = ["correct", "untouched", "zero_pad_wrong_axes", "conv_no_bias", "pool_average_wrong"]
REFERENCE_BASED = ["correct", "zero_pad_wrong_axes", "conv_no_bias", "pool_average_wrong"]
FIXTURE_CASES = load_cases(FIXTURES / "cases" / "01_conv_forward.py")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(graded folder, results, report path) of a batch of nine assignment-1 submissions."""
    from autograder.grading import grade_submissions

    tmp = tmp_path_factory.mktemp("class-report")
    subs = tmp / "subs"
    for case in GRADED_CASES:
        folder = subs / case / AID
        folder.mkdir(parents=True)
        shutil.copy(FIXTURES / AID / case / NB, folder / NB)
    (subs / "untouched_too" / AID).mkdir(parents=True)
    shutil.copy(FIXTURES / AID / "untouched" / NB, subs / "untouched_too" / AID / NB)
    for name in ("ana", "ben", "chen"):
        write_notebook(student_notebook(name), subs / name / AID / NB)
    run = grade_submissions(subs, tmp / "graded", jobs=2, progress=False)
    path = build_report(run.results, tmp / "graded", course.project_root())
    return tmp / "graded", run.results, path


@pytest.mark.slow
class TestGradedBatch:
    """One graded batch (its tests stay on one xdist worker with --dist loadscope)."""

    def test_scores_and_pass_rates(self, graded):
        out, results, _ = graded
        scores = {r.student: r.score for r in results}
        assert scores["ana"] == scores["ben"] == scores["chen"] == scores["correct"] == 7
        data = summarise(results)
        rates = {c.grade_id: (c.passed, c.graded) for c in data.cells}
        # the two untouched notebooks fail every cell; each buggy fixture loses exactly the
        # cells its case lists (a broken helper costs its own points only)
        cells = ("conv_forward_tests", "conv_single_step_tests", "pool_forward_tests")
        lost = {g: 2 for g in (*cells, "zero_pad_tests")}
        for case in GRADED_CASES:
            for grade_id in FIXTURE_CASES[case].get("expect", {}):
                lost[grade_id] += case != "untouched"
        assert rates == {g: (9 - n, 9) for g, n in lost.items()}
        assert rates["conv_forward_tests"] == (7, 9)  # conv_no_bias and zero_pad: helpers
        assert data.cells[0].grade_id == "conv_single_step_tests"  # the most failed first
        (summary,) = data.summaries
        assert (summary.full, summary.zero, summary.failed) == (4, 2, 0)

    def test_misconceptions_by_count(self, graded):
        data = summarise(graded[1])
        counts = {c.key: (c.students, c.cells) for c in data.causes}
        assert counts == {
            "average_is_max": (["pool_average_wrong"], {"pool_forward_tests": 1}),
            "bias_missing": (["conv_no_bias"], {"conv_single_step_tests": 1}),
            "pads_wrong_axes": (["zero_pad_wrong_axes"], {"zero_pad_tests": 1}),
        }

    def test_flagged_pairs(self, graded):
        out, _, path = graded
        rows = (path.parent / "similar_pairs.csv").read_text(encoding="utf-8").splitlines()[1:]
        flagged = {tuple(sorted(row.split(",")[1:3])) for row in rows}
        # ana and ben; and the fixtures that are all the reference solution but one function
        expected = {("ana", "ben")} | set(itertools.combinations(sorted(REFERENCE_BASED), 2))
        assert flagged == expected
        assert not any("untouched" in name for pair in flagged for name in pair)

    def test_report_reads_no_gradebook(self, graded, monkeypatch, tmp_path):
        out, results, _ = graded

        def refuse(*args, **kwargs):
            raise AssertionError("the class report opened a gradebook")

        monkeypatch.setattr("nbgrader.api.Gradebook.__init__", refuse)
        copy = tmp_path / "graded"
        shutil.copytree(out, copy, ignore=shutil.ignore_patterns("class-report", "*.db"))
        parser = argparse.ArgumentParser()
        add_parser(parser.add_subparsers())
        args = parser.parse_args(["report", str(copy)])
        assert report_main(args) == 0
        assert (copy / "class-report" / "index.html").is_file()
        assert len(load_results(copy)) == len(results)

    def test_report_in_a_browser(self, graded):
        if not Path(CHROMIUM).exists():
            pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
        sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
        _, _, path = graded
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            try:
                page = browser.new_page()
                requested = []
                page.on("request", lambda request: requested.append(request.url))
                page.goto(path.as_uri())
                widths = page.eval_on_selector_all(
                    "img.plot", "els => els.map(e => e.naturalWidth)"
                )
                assert len(widths) >= 3 and all(w > 100 for w in widths), widths
                assert page.locator("#checks-table tbody tr").count() == 4
                assert page.locator("#students-table tbody tr").count() == 9
                assert page.locator("#misconceptions article.cause").count() == 3
                assert "zero_pad: the wrong axes are padded: 1 student" in page.inner_text(
                    "#misconceptions"
                )
                assert page.locator("a.lecture").first.get_attribute("href").startswith("../")
                page.locator("details.pair summary").first.click()
                assert page.locator("details.pair[open] mark.shared").count() > 0
                page.screenshot(path=str(path.parent / "screenshot.png"), full_page=True)
                assert all(url.startswith(("file:", "data:")) for url in requested), requested
            finally:
                browser.close()
