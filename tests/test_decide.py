"""The trusted side of a verdict: seeds, registry, recording and reporting.

Fast unit tests of :mod:`autograder.decide`, the case engine, :mod:`autograder.record` and
:mod:`autograder.report` (the library-call policy has its own file, test_policy.py); the
notebook-level fixtures are in test_fixture_grades.py and test_hardening.py.
"""

from __future__ import annotations

import csv
import os

import nbformat
import numpy as np

from autograder.decide import decide_cell, static_violation
from autograder.problems import Problem
from autograder.record import GradebookWriter
from autograder.report import summary_table, write_csv
from autograder.worker import CellResult, SubmissionResult
from cnncourse.checks.engine import DirectRunner, Runner, check, derived_seed
from cnncourse.checks.registry import get_spec


def _cells(*sources):
    cells = []
    for n, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"solution": True, "grade_id": f"s{n}"}
        cells.append(cell)
    return cells


def test_static_violation_reads_what_the_function_uses():
    cells = _cells(
        "import torch\ndef helper():\n    pass\n", "def zero_pad(X, pad):\n    return X\n"
    )
    assert static_violation(get_spec("zero_pad"), cells) == ""
    cells = _cells("import scipy\ndef zero_pad(X, pad):\n    return scipy.fft(X)\n")
    assert static_violation(get_spec("zero_pad"), cells) == "scipy"


class NeverRun(Runner):
    def run(self, spec, cases):
        raise AssertionError("a statically forbidden function must not be run")


def test_forbidden_source_scores_zero_without_running():
    cells = _cells("import torch\ndef zero_pad(X, pad):\n    return torch.nn.functional.pad(X)\n")
    verdict = decide_cell("01_conv_forward", "zero_pad_tests", cells, NeverRun(), "s", "alice")
    assert not verdict.passed and verdict.problem == "ForbiddenCall"
    assert "zero_pad uses torch" in verdict.message


def test_unregistered_test_cell_is_named():
    verdict = decide_cell("01_conv_forward", "made_up_tests", [], NeverRun(), "s", "alice")
    assert verdict.problem == "NoTrustedCheck" and not verdict.passed


def _zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def test_reference_passes_and_seeds_depend_on_the_secret():
    spec = get_spec("zero_pad")
    cases_a = spec.cases(derived_seed("secret-a", "alice"), hidden=True)
    cases_b = spec.cases(derived_seed("secret-b", "alice"), hidden=True)
    assert [c.params for c in cases_a] != [c.params for c in cases_b]
    verdict = decide_cell(
        "01_conv_forward", "zero_pad_tests", _cells(), DirectRunner(_zero_pad), "s", "alice"
    )
    assert verdict.passed and "decided by the grader" in verdict.message


def test_shrinking_finds_a_small_case_and_names_the_cause():
    def conv_forward(A_prev, W, b, hp):  # ignores the stride
        from cnncourse import oracles

        n_H = (A_prev.shape[1] + 2 * hp["pad"] - W.shape[0]) // hp["stride"] + 1
        n_W = (A_prev.shape[2] + 2 * hp["pad"] - W.shape[0]) // hp["stride"] + 1
        Z = oracles.conv_forward(A_prev, W, b, 1, hp["pad"])[:, :n_H, :n_W]
        return Z, (A_prev, W, b, hp)

    spec = get_spec("conv_forward")
    spec_free = type(spec)()
    spec_free.forbidden = ()  # this test's stand-in uses the oracle itself
    verdict = check(spec_free, DirectRunner(conv_forward), seed=3)
    assert not verdict.passed and verdict.cause == "ignores_stride"
    first, case_line = verdict.message.splitlines()[:2][0], verdict.message
    assert first.startswith("conv_forward: the window does not move by the stride")
    assert "smallest failing case" in case_line and "stride 2" in case_line


def test_journal_names_are_short_and_csv_survives_odd_names(tmp_path):
    writer = GradebookWriter("", tmp_path)
    odd = os.fsdecode(b"\xff\xfe") + "x" * 240
    path = writer.journal_path(odd, "01_conv_forward")
    assert len(path.name) < 100
    result = SubmissionResult(
        "e\\xffv",
        "01_conv_forward",
        "graded",
        1,
        7,
        cells=[CellResult("01_conv_forward", "zero_pad_tests", 1, 1)],
        problems=[Problem("OddName", "line one\nline two")],
    )
    csv_path = write_csv(
        [result, SubmissionResult(odd, "01_conv_forward", "failed")], tmp_path / "grades.csv"
    )
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # whole messages, on one line, never cut
    assert len(rows) == 2 and rows[0]["problems"] == "OddName: line one / line two"
    assert "OddName" in summary_table([result])
    (writer.results_dir / "torn.json").write_text("{")
    assert writer.load_results() == []
