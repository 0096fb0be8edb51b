"""The capstone notebook 02_numpy_cnn: your own numpy layers learn MNIST.

The reference solution passes every spec of :mod:`cnncourse.checks.capstone`; the specs
catch the fixtures' wrong backward passes with messages that say what is wrong; the oracle
(PyTorch autograd) agrees with a numerical gradient of an independent numpy forward pass; the
accuracy check counts labels in the grader and refuses a predictor that reads the labels;
and the notebook runs in fast mode, the loss falls and the accuracy clears the threshold.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import build_fixtures
import nbformat
import numpy as np
import pytest
from conftest import execute_notebook

from autograder.fixtures import given_namespace, reference_sources
from cnncourse.checks import CheckError, capstone, verify
from cnncourse.checks.registry import TEST_CELLS, get_spec

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "02_conv_backward"
NOTEBOOK = "02_numpy_cnn.ipynb"
SOURCE = ROOT / "solutions" / ASSIGNMENT / NOTEBOOK
POINTS = {
    "pool_backward_fast_tests": 2,
    "network_gradients_tests": 3,
    "network_gradient_check": 2,
    "sgd_step_tests": 3,
    "trained_accuracy_tests": 2,
}
SOLUTION_CELLS = (
    "capstone_conv_layers",
    "capstone_pool_forward",
    "pool_backward_fast_solution",
    "network_solution",
    "sgd_step_solution",
)
CASES = build_fixtures.all_cases("cases")
MAX_PEAK_MB = 2048


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _namespace(network_source: str | None = None) -> dict:
    """The given definitions and the reference solutions (or another network cell)."""
    ns = given_namespace(ASSIGNMENT, NOTEBOOK)
    sources = reference_sources(ASSIGNMENT, NOTEBOOK)
    if network_source is not None:
        sources["network_solution"] = network_source
    # The network cell is defined before the given pieces run, as in the notebook's order;
    # names are looked up at call time, so the order of definitions does not matter.
    for grade_id in SOLUTION_CELLS:
        exec(compile(sources[grade_id], f"<{NOTEBOOK}:{grade_id}>", "exec"), ns)  # noqa: S102
    return ns


@pytest.fixture(scope="module")
def ref() -> dict:
    return _namespace()


def _case_network(name: str) -> str:
    make = CASES[(ASSIGNMENT, name)]["replace_with"]["network_solution"]
    return make(reference_sources(ASSIGNMENT, NOTEBOOK))


def _message(spec_name: str, function, seed: int = 7) -> str | None:
    """The visible check's message, or None when it passes."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            verify(spec_name, function, seed=seed)
    except CheckError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------------ metadata


def test_metadata_points_and_registry():
    nb = nbformat.read(SOURCE, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "**What you will learn**" in nb.cells[0].source
    assert "## Summary" in nb.cells[-1].source
    points, verified = {}, {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs not stripped"
        meta = _meta(cell)
        if not meta:
            continue
        assert meta["schema_version"] == 3
        if meta["solution"]:
            assert not meta["grade"] and not meta["locked"]
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        if meta["grade"]:
            assert meta["locked"] and not meta["solution"]
            visible, hidden = cell.source.split("### BEGIN HIDDEN TESTS")
            assert "### END HIDDEN TESTS" in hidden
            names = [re.findall(r'verify\("(\w+)"', part) for part in (visible, hidden)]
            assert names[0] and names[0] == names[1], cell.source
            points[meta["grade_id"]] = meta["points"]
            verified[meta["grade_id"]] = tuple(names[0])
    assert points == POINTS
    assert verified == TEST_CELLS["02_numpy_cnn"]
    # grade_ids are unique across the three notebooks of the assignment
    grade_ids = [
        _meta(cell)["grade_id"]
        for path in sorted((ROOT / "solutions" / ASSIGNMENT).glob("*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if _meta(cell)
    ]
    assert len(grade_ids) == len(set(grade_ids))


def test_given_pieces_match_the_oracle(ref):
    assert ref["CONV_HP"] == capstone.CONV_HPARAMETERS
    assert ref["POOL_HP"] == capstone.POOL_HPARAMETERS
    params = ref["init_params"](seed=0)
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (3, 3, 1, 8),
        "b1": (1, 1, 1, 8),
        "W2": (capstone.pooled_size(28, 3) ** 2 * 8, 10),
        "b2": (1, 10),
    }
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 10)) * 30  # large logits: the softmax must not overflow
    y = rng.integers(0, 10, 5)
    loss, dlogits = ref["softmax_cross_entropy"](logits, y)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    assert type(loss) is float
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(5), y])), rel=1e-12)
    expected = probs.copy()
    expected[np.arange(5), y] -= 1
    np.testing.assert_allclose(dlogits, expected / 5, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------- the reference solution


@pytest.mark.parametrize(
    ("spec_name", "target"),
    [
        ("pool_backward_fast", "pool_backward_fast"),
        ("network_gradients", "network_gradients"),
        ("network_gradient_check", "network_gradients"),
        ("sgd_step", "sgd_step"),
    ],
)
def test_reference_passes_every_spec(ref, spec_name, target):
    with contextlib.redirect_stdout(io.StringIO()):
        verdict = verify(spec_name, ref[target], seed=2024, n_random=10, hidden=True)
    assert verdict.passed and verdict.cases >= 10


@pytest.mark.parametrize("seed", range(4))
def test_gradient_check_is_not_flaky(ref, seed):
    """ReLU and max pooling have kinks; random cases must not land on one."""
    with contextlib.redirect_stdout(io.StringIO()):
        verify("network_gradient_check", ref["network_gradients"], seed=seed, n_random=10)


def test_oracle_matches_numerical_gradients_of_the_numpy_forward():
    rng = np.random.default_rng(3)
    for config in (
        dict(m=2, n_H=6, n_W=7, n_C=2, f=3, n_F=2, n_classes=3),
        dict(m=3, n_H=5, n_W=5, n_C=1, f=2, n_F=3, n_classes=4),
    ):
        params, X, y = capstone._net_inputs(config, rng)
        loss, grads = capstone.oracle_network(params, X, y)
        assert loss == pytest.approx(capstone.numpy_loss(params, X, y), rel=1e-12)
        numeric = capstone.numerical_network_gradients(params, X, y)
        for key in capstone.PARAM_NAMES:
            error = np.linalg.norm(grads[key] - numeric[key]) / (
                np.linalg.norm(grads[key]) + np.linalg.norm(numeric[key])
            )
            assert error < 1e-8, (key, error)


# -------------------------------------------------------------- wrong backward passes


def test_wrong_sign_is_caught_with_a_clear_message():
    ns = _namespace(_case_network("capstone_wrong_backward"))
    message = _message("network_gradients", ns["network_gradients"])
    assert message is not None
    assert message.splitlines()[0].startswith("network_gradients: grads: every gradient has")
    assert "wrong sign" in message.splitlines()[0]
    message = _message("network_gradient_check", ns["network_gradients"])
    assert message is not None and "wrong sign" in message.splitlines()[0]
    message = _message("sgd_step", ns["sgd_step"])
    assert message is not None and "the step goes uphill" in message.splitlines()[0]
    assert _message("pool_backward_fast", ns["pool_backward_fast"]) is None


def test_missing_relu_backward_names_the_first_layer():
    ns = _namespace(_case_network("capstone_no_relu_backward"))
    message = _message("network_gradients", ns["network_gradients"])
    assert message is not None
    assert "grads['W1']" in message.splitlines()[0]
    assert "wrong: W1, b1; right: W2, b2" in message
    assert "the ReLU" in message
    message = _message("network_gradient_check", ns["network_gradients"])
    assert message is not None and "numerical gradient" in message.splitlines()[0]


def test_sgd_step_in_place_and_missing_learning_rate_are_named(ref):
    def in_place(params, X, y, learning_rate):
        loss, grads = ref["network_gradients"](params, X, y)
        for key in params:
            params[key] -= learning_rate * grads[key]
        return params, loss

    def no_rate(params, X, y, learning_rate):
        loss, grads = ref["network_gradients"](params, X, y)
        return {k: params[k] - grads[k] for k in params}, loss

    assert "changed its input params in place" in _message("sgd_step", in_place)
    assert "the learning rate is not used" in _message("sgd_step", no_rate)


def test_grads_with_wrong_keys_are_named(ref):
    def renamed(params, X, y):
        loss, grads = ref["network_gradients"](params, X, y)
        return loss, {"d" + k: g for k, g in grads.items()}

    message = _message("network_gradients", renamed)
    assert "should have exactly the keys W1, b1, W2, b2" in message
    assert "missing W1, b1, W2, b2" in message


# ----------------------------------------------------------------- graded accuracy


def test_accuracy_spec_counts_labels_in_the_grader():
    from cnncourse.data import grading_digits

    x, labels = grading_digits()
    lookup = {x[i].tobytes(): int(labels[i]) for i in range(len(x))}

    def perfect(X):  # a stand-in for a trained network: looks the digits up
        return np.array([lookup[img.tobytes()] for img in X], dtype=np.int64)

    def constant(X):
        return np.zeros(len(X), dtype=np.int64)

    def cheat(X):  # reads the grader's labels from the course's data at run time
        return grading_digits()[1].astype(np.int64)

    assert _message("trained_accuracy", perfect) is None
    message = _message("trained_accuracy", constant)
    assert "it must reach 90%" in message and "held-out digits" in message
    message = _message("trained_accuracy", lambda X: constant(X).astype(np.float64))
    assert "labels are integers" in message
    assert "ForbiddenCall" in _message("trained_accuracy", cheat)
    spec = get_spec("trained_accuracy")
    assert spec.n_random == 0 and spec.target == "trained_predictions"


# ------------------------------------------------------------------- the notebook


@pytest.mark.slow
def test_notebook_runs_in_fast_mode():
    nb, seconds, peak_mb = execute_notebook(SOURCE, cell_timeout_s=300)
    text = ""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{out.get('ename')}: {out.get('evalue')}"
            text += out.get("text", "") + out.get("data", {}).get("text/markdown", "")
    print(f"{NOTEBOOK}: {seconds:.1f} s, peak {peak_mb:.0f} MiB")
    assert "loss fell: True" in text
    found = re.search(r"accuracy on the 2,000 held-out grading digits: ([\d.]+)%", text)
    assert found and float(found.group(1)) >= 90, text[-2000:]
    # The time is a goal, measured and reported (about 30 s on one thread), not a test.
    assert re.search(r"training took ([\d.]+) s", text)
    figures = sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )
    assert figures >= 3  # training curve, filters, feature maps
    assert peak_mb < MAX_PEAK_MB
