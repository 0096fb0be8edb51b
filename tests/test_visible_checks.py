"""Self-study parity: every fixture that loses points when graded also fails a visible check
of the release, and the visible message names its cause.

The visible checks are what a student runs in the notebook (``verify`` in the test cells).
Here they run in this process on each fixture's functions (the fixture's solution cells
executed in a namespace, as in its notebook); each fixture declares, per spec, the key of the
misconception its message must name (``"cause"``), or ``"raised"`` when the function fails
by raising. The grading outcome of the same fixtures is checked by test_fixture_grades.py.
"""

from __future__ import annotations

import contextlib
import io
import time

import build_fixtures
import nbformat
import numpy as np
import pytest

from cnncourse.checks import CheckError, verify
from cnncourse.checks.misconceptions import CATALOGUE
from cnncourse.checks.registry import NOTEBOOKS, TEST_CELLS, get_spec

CASES = build_fixtures.all_cases("cases")
# Assignments whose graded notebooks need no framework: their checks run here in-process.
NUMPY_ASSIGNMENTS = tuple(
    sorted(
        {
            aid
            for (aid, _), case in CASES.items()
            if not NOTEBOOKS[case["notebook"].removesuffix(".ipynb")].libraries
        }
    )
)
LOSING = sorted(
    (aid, name)
    for (aid, name), case in CASES.items()
    if aid in NUMPY_ASSIGNMENTS
    # a notebook with a framework (assignment 6's parts b and c) is checked further down
    and not NOTEBOOKS[case["notebook"].removesuffix(".ipynb")].libraries
    and case.get("expect")
    and not case.get("untouched")
    and case["notebook"].removesuffix(".ipynb") in TEST_CELLS
    # the capstone's network checks have their own message tests (tests/test_capstone.py)
    and case["notebook"] != "02_numpy_cnn.ipynb"
)


def _namespace(aid: str, name: str) -> dict:
    """Run the fixture notebook's given and solution cells, as a student's kernel would."""
    case = CASES[(aid, name)]
    path = build_fixtures.case_path("cases", aid, name, case["notebook"])
    nb = nbformat.read(path, as_version=4)
    ns: dict = {"np": np}
    from numpy.lib.stride_tricks import as_strided, sliding_window_view

    ns.update(as_strided=as_strided, sliding_window_view=sliding_window_view)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and (
            meta.get("solution") or str(meta.get("grade_id", "")).startswith("given_")
        ):
            exec(compile(cell.source, f"<{name}:{meta['grade_id']}>", "exec"), ns)  # noqa: S102
    return ns


def _visible(spec_name: str, ns: dict) -> str | None:
    """The visible check's message, or None when it passes."""
    spec = get_spec(spec_name)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            verify(spec_name, ns.get(spec.target), seed=12345)
    except CheckError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("aid,name", LOSING)
def test_fixture_fails_a_visible_check_naming_its_cause(aid, name):
    case = CASES[(aid, name)]
    notebook = case["notebook"].removesuffix(".ipynb")
    ns = _namespace(aid, name)
    causes = case.get("cause", {})
    for grade_id in case["expect"]:
        for spec_name in TEST_CELLS[notebook][grade_id]:
            message = _visible(spec_name, ns)
            assert message is not None, f"{name}: the visible check of {spec_name} passes"
            cause = causes.get(spec_name)
            assert cause, f"{name}: no expected cause declared for {spec_name}:\n{message}"
            if cause == "raised":
                assert " raised " in message.splitlines()[0], message
            elif cause.startswith("helper:"):  # a graded function it calls fails first
                helper = cause.removeprefix("helper:")
                assert f"it calls your {helper}, which fails" in message.splitlines()[0], message
            else:
                first = message.splitlines()[0]
                assert CATALOGUE[cause].sentence in first, f"{name}/{spec_name}:\n{message}"


@pytest.mark.parametrize("aid,name", LOSING)
def test_other_functions_of_the_fixture_pass(aid, name):
    """A fixture breaks only what it says: its other test cells pass the visible checks."""
    case = CASES[(aid, name)]
    notebook = case["notebook"].removesuffix(".ipynb")
    ns = _namespace(aid, name)
    for grade_id, specs in TEST_CELLS[notebook].items():
        if grade_id not in case["expect"]:
            for spec_name in specs:
                assert _visible(spec_name, ns) is None, f"{name}: {spec_name} fails"


HELPED = sorted((key, case) for key, case in CASES.items() if case.get("helper"))


@pytest.mark.parametrize("key,case", HELPED, ids=[k[1] for k, _ in HELPED])
def test_a_broken_helper_is_named_and_costs_its_points_once(key, case):
    """A function that is right but calls a broken helper (conv_forward with a
    conv_single_step that returns an array) passes, and its message names the helper."""
    aid, name = key
    ns = _namespace(aid, name)
    for spec_name, helper in case["helper"].items():
        spec = get_spec(spec_name)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            verify(spec_name, ns.get(spec.target), seed=12345)  # passes: no CheckError
        text = printed.getvalue()
        assert f"in place of your {helper}" in text and "fails its" in text, text


def test_every_misconception_has_a_fixture():
    declared = {cause for case in CASES.values() for cause in case.get("cause", {}).values()}
    # the other mistakes are proven with the checks called on the reference solution cells
    # with one edit each, the checks the grader runs: assignment 6's in
    # tests/test_modern_checks.py, assignments 2-5's in tests/test_known_mistakes.py
    from test_known_mistakes import PROOFS
    from test_modern_checks import EXTRA_BUGS

    declared |= {name.split("/")[0] for name in EXTRA_BUGS} | set(PROOFS)
    missing = sorted(set(CATALOGUE) - declared)
    assert not missing, f"misconceptions without a fixture that proves them: {missing}"


# ------------------------------------------------------------------ assignments 3-5
# The same parity for the Keras, PyTorch and cropping notebooks (arithmetic.py,
# keras_models.py, accuracy.py and torch_models.py in cnncourse/checks). A fixture's "cause"
# there is a known mistake's key (its sentence must be in the first line of the visible
# message) or, for a check that names no catalogue entry, words that must be there. Checks that
# need a trained model get one trained here on a few digits by the notebook's own training
# cell: enough to tell an untrained model (which
# fails them) but not to pass them, so for those only the failing side is tested.

FRAMEWORK_ASSIGNMENTS = ("03_keras_mnist", "04_pytorch_mnist", "05_cropping")
LOSING_FRAMEWORKS = sorted(
    (aid, name)
    for (aid, name), case in CASES.items()
    if aid in FRAMEWORK_ASSIGNMENTS and case.get("expect") and not case.get("untouched")
)
NEEDS_TRAINING = {
    "keras_accuracy",
    "torch_accuracy",
    "cropped_accuracy",
    "classic_accuracy",
    "cropped_model_crops",
}
TRAINING_CELLS = {"train_model_solution"}  # solution cells that train (run by _train_small)
SMALL = 256  # training digits for the checks that need a trained model


def _framework_namespace(aid: str, name: str, train: bool = False) -> dict:
    """The fixture's solution cells (and the given cells its functions need) executed
    in-process, with the frameworks imported as the notebook's setup cell does."""
    from types import SimpleNamespace

    import keras

    ns: dict = {
        "np": np,
        "numbers": __import__("numbers"),
        "time": time,
        "keras": keras,
        "layers": keras.layers,
        "config": SimpleNamespace(seed=1, fast=True),
        "FAST": True,
        "plot_history": lambda *a, **k: None,
    }
    if aid == "04_pytorch_mnist":
        import torch
        from torch import nn
        from tqdm import tqdm

        ns.update(torch=torch, nn=nn, tqdm=tqdm)
    case = CASES[(aid, name)]
    nb = nbformat.read(build_fixtures.case_path("cases", aid, name, case["notebook"]), as_version=4)
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta:
            cells[meta["grade_id"]] = cell.source
            given = meta["grade_id"] == "keras_model"  # A4: build_keras_lecture_cnn
            if (meta.get("solution") and meta["grade_id"] not in TRAINING_CELLS) or given:
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell.source, f"<{name}:{meta['grade_id']}>", "exec"), ns)  # noqa: S102
    if train:
        _train_small(aid, ns, cells)
    return ns


def _train_small(aid: str, ns: dict, cells: dict) -> None:
    """Run the notebook's own training cell on SMALL digits (one or a few epochs)."""
    from cnncourse.data import load_mnist

    (x, y), (x_test, y_test) = load_mnist(fast=True, verbose=False)
    x, y, x_test, y_test = x[:SMALL], y[:SMALL], x_test[:SMALL], y_test[:SMALL]
    keras = ns["keras"]
    if aid == "03_keras_mnist":
        ns.update(
            x_train=(x.astype("float32") / 255.0)[..., np.newaxis],
            y_train=keras.utils.to_categorical(y, 10),
            num_epochs=1,
            batch_size=64,
        )
        source = cells["train_model_solution"]
    elif aid == "04_pytorch_mnist":
        ns.update(
            x_train=(x.astype(np.float32) / 255.0)[:, np.newaxis],
            y_train=y.astype(np.int64),
            x_test=(x_test.astype(np.float32) / 255.0)[:, np.newaxis],
            y_test=y_test.astype(np.int64),
            num_epochs=1,
            batch_size=32,
            learning_rate=2e-3,
        )
        source = cells["train_and_evaluate"]
    else:
        ns.update(x_train_digits=x, y_train_digits=y)
        source = cells["train_both"].replace("num_epochs = 3 if FAST else 25", "num_epochs = 1")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(source, f"<{aid}: training>", "exec"), ns)  # noqa: S102


def _framework_visible(spec_name: str, ns: dict) -> str | None:
    spec = get_spec(spec_name)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            verify(spec_name, ns.get(spec.target), seed=12345, namespace=ns)
    except CheckError as exc:
        return str(exc)
    return None


# Losing fixtures whose visible messages another test file checks: none may be skipped
# silently (a new assignment's notebook lands in LOSING, LOSING_FRAMEWORKS or here).
ELSEWHERE = {
    "02_numpy_cnn.ipynb": "tests/test_capstone.py: each case's message, by name",
    "06_framework_blocks.ipynb": "tests/test_modern_checks.py: each case's declared cause",
    "06_cluttered_resnet.ipynb": "a trained model's accuracy: graded in test_fixture_grades.py",
}


def test_every_losing_fixture_has_its_visible_message_checked():
    checked = set(LOSING) | set(LOSING_FRAMEWORKS)
    for (aid, name), case in sorted(CASES.items()):
        if not case.get("expect") or case.get("untouched") or (aid, name) in checked:
            continue
        assert case["notebook"] in ELSEWHERE, (
            f"{aid}/{name}: no test compares its visible message with its cause; add its "
            "assignment to FRAMEWORK_ASSIGNMENTS (or its notebook to ELSEWHERE, with the test "
            "that does)"
        )
        if case["notebook"] == "06_framework_blocks.ipynb":
            assert case.get("cause"), f"{aid}/{name}: test_modern_checks needs its cause"


@pytest.mark.parametrize("aid,name", LOSING_FRAMEWORKS)
def test_framework_fixture_fails_a_visible_check_naming_its_cause(aid, name):
    case = CASES[(aid, name)]
    notebook = case["notebook"].removesuffix(".ipynb")
    specs = [s for grade_id in case["expect"] for s in TEST_CELLS[notebook][grade_id]]
    ns = _framework_namespace(aid, name, train=bool(set(specs) & NEEDS_TRAINING))
    causes = case.get("cause", {})
    for spec_name in specs:
        message = _framework_visible(spec_name, ns)
        assert message is not None, f"{name}: the visible check of {spec_name} passes"
        cause = causes.get(spec_name)
        assert cause, f"{name}: no expected cause declared for {spec_name}:\n{message}"
        first = message.splitlines()[0]
        words = CATALOGUE[cause].sentence if cause in CATALOGUE else cause
        assert words in first, f"{name}/{spec_name}: {words!r} not in the first line:\n{message}"


@pytest.mark.parametrize("aid,name", LOSING_FRAMEWORKS)
def test_framework_fixture_other_checks_pass(aid, name):
    """A fixture breaks only what it says (checks that need a fully trained model aside)."""
    case = CASES[(aid, name)]
    notebook = case["notebook"].removesuffix(".ipynb")
    ns = _framework_namespace(aid, name)
    for grade_id, specs in TEST_CELLS[notebook].items():
        if grade_id not in case["expect"]:
            for spec_name in set(specs) - NEEDS_TRAINING:
                message = _framework_visible(spec_name, ns)
                assert message is None, f"{name}: {spec_name} fails:\n{message}"


def _correct_fixture(aid: str, notebook: str) -> str:
    return next(
        n
        for (a, n), c in CASES.items()
        if a == aid
        and c["notebook"] == f"{notebook}.ipynb"
        and not c.get("expect")
        and not c.get("untouched")
    )


@pytest.mark.parametrize("notebook", ["01_conv_forward", "02_conv_backward", "02_efficient_conv"])
def test_reference_passes_every_visible_check(notebook):
    """The correct fixture passes each visible check (how long each test cell takes in the
    notebook is measured by benchmarks/visible_check_times.py, not asserted here)."""
    aid = "02_conv_backward" if notebook.startswith("02_") else notebook
    ns = _namespace(aid, _correct_fixture(aid, notebook))
    for specs in TEST_CELLS[notebook].values():
        for spec_name in specs:
            assert _visible(spec_name, ns) is None, f"the reference fails {spec_name}"


@pytest.mark.parametrize("aid", FRAMEWORK_ASSIGNMENTS)
def test_framework_reference_passes_visible_checks(aid):
    """The correct fixture passes every visible check that needs no trained model."""
    ns = _framework_namespace(aid, _correct_fixture(aid, aid))
    for specs in TEST_CELLS[aid].values():
        for spec_name in set(specs) - NEEDS_TRAINING:
            assert _framework_visible(spec_name, ns) is None, f"the reference fails {spec_name}"
