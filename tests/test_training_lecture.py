"""Lecture 5b (05_training_numpy): the loss gradient, SGD, momentum, Adam, the two sanity checks
and dropout, on the capstone's network.

The teaching functions are taken out of the notebook's cells (their ``def`` statements only) and
tested on their own: the softmax/cross-entropy gradient against centred differences, momentum
and Adam against PyTorch's optimisers, the lecture's network against the capstone's oracle (the
same network), its initial parameters against the capstone's ``init_params``, dropout at
training and at inference. The slow test runs the lecture in fast mode, as a reader would.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import execute_notebook
from test_lecture_exercises import answers_text, assert_answers_ran, exercise_problems
from test_lectures_numpy import GRADED_NAMES

from autograder.fixtures import given_namespace
from cnncourse.checks import capstone
from cnncourse.testing import relative_error

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "lectures" / "05_training_numpy.ipynb"
CAPSTONE_LINK = "../assignments/02_conv_backward/02_numpy_cnn.ipynb"
#: The capstone's graded functions (besides assignment 2's layers in GRADED_NAMES).
CAPSTONE_GRADED = ("pool_backward_fast", "network_forward", "network_gradients", "sgd_step")
TYPED_RESULT = re.compile(r"\d+\.\d+\s*%")  # a result typed into prose, e.g. "97.5%"
CELL_TIMEOUT_S = 300
MAX_PEAK_MB = 2048


def _cells() -> dict[str, nbformat.NotebookNode]:
    nb = nbformat.read(LECTURE, as_version=4)
    return {cell.get("id"): cell for cell in nb.cells}


def _definitions(*cell_ids: str) -> dict:
    """The functions the named cells define (their ``def`` statements only, nothing they run)."""
    import torch

    namespace = {"np": np, "torch": torch, "relative_error": relative_error}
    cells = _cells()
    for cell_id in cell_ids:
        tree = ast.parse(cells[cell_id].source)
        tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        exec(compile(tree, f"<05_training_numpy:{cell_id}>", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module")
def lec() -> dict:
    return _definitions(
        "l05b-net", "l05b-loss", "l05b-grads", "l05b-sgd", "l05b-optimisers", "l05b-dropout"
    )


# ---------------------------------------------------------------------------- the saved notebook


def test_saved_without_outputs_and_with_skeleton():
    nb = nbformat.read(LECTURE, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# Lecture 5b")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "outputs not stripped"
    text = "\n".join(c.source for c in nb.cells)
    for heading in ("## What you will learn", "## Summary", "## Exercises", "## Practise"):
        assert heading in text, heading
    assert "config = setup_notebook(seed=1)" in text and "FAST = config.fast" in text
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count("load_mnist(") == code.count("load_mnist(fast=FAST)") == 1
    assert CAPSTONE_LINK in nb.cells[-1].source
    assert (LECTURE.parent / CAPSTONE_LINK).resolve().is_file()


def test_exercises_have_answers():
    problems = exercise_problems(nbformat.read(LECTURE, as_version=4))
    assert not problems, problems


def test_no_graded_function_is_defined_or_imported():
    """The lecture writes teaching versions under other names; it gives no graded answer away."""
    nb = nbformat.read(LECTURE, as_version=4)
    defined, imported = set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.ImportFrom):
                imported.update(alias.name for alias in node.names)
    forbidden = set(GRADED_NAMES) | set(CAPSTONE_GRADED)
    assert not defined & forbidden, defined & forbidden
    assert not imported & forbidden, imported & forbidden


def test_no_results_typed_into_prose():
    nb = nbformat.read(LECTURE, as_version=4)
    typed = [
        (cell.get("id"), m.group(0))
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for m in TYPED_RESULT.finditer(cell.source)
    ]
    assert not typed, typed


# ------------------------------------------------------------------------ the teaching code


def test_softmax_cross_entropy_and_its_gradient(lec):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 10)) * 4
    y = rng.integers(0, 10, 6)
    loss, dlogits = lec["softmax_xent"](logits, y)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(6), y])), rel=1e-12)
    onehot = np.eye(10)[y]
    np.testing.assert_allclose(dlogits, (probs - onehot) / 6, rtol=1e-10, atol=1e-15)
    numeric = lec["centred_differences"](lambda z: lec["softmax_xent"](z, y)[0], logits.copy())
    assert relative_error(dlogits, numeric) < 1e-7
    # huge logits: finite loss, no overflow or log(0)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        big, _ = lec["softmax_xent"](np.array([[1000.0, -1000.0], [0.0, 2000.0]]), np.array([1, 0]))
    assert big == pytest.approx(2000.0)
    zero, _ = lec["softmax_xent"](np.zeros((4, 10)), np.arange(4))
    assert zero == pytest.approx(np.log(10), rel=1e-12)


def test_the_network_is_the_capstones(lec):
    """Same initial parameters as the capstone's init_params; same loss and gradients as the
    capstone's oracle (PyTorch autograd of the graded network)."""
    given = given_namespace("02_conv_backward", "02_numpy_cnn.ipynb")
    for seed in (0, 3):
        ours, theirs = lec["random_params"](seed), given["init_params"](seed=seed)
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12)
    rng = np.random.default_rng(5)
    params = lec["random_params"](1)
    params["b1"] += 0.1
    params["b2"] += rng.standard_normal((1, 10)) * 0.1
    X = rng.random((7, 28, 28, 1))
    y = rng.integers(0, 10, 7)
    loss, grads = lec["loss_and_grads"](params, X, y)
    ref_loss, ref_grads = capstone.oracle_network(params, X, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for key in capstone.PARAM_NAMES:
        np.testing.assert_allclose(grads[key], ref_grads[key], rtol=1e-9, atol=1e-12)
    assert lec["loss_of"](params, X, y) == pytest.approx(ref_loss, rel=1e-12)


@pytest.mark.parametrize("rule", ["momentum", "adam"])
def test_update_rules_take_pytorchs_steps(lec, rule):
    import torch

    rng = np.random.default_rng(7)
    start = {"w": rng.standard_normal((4, 3)), "b": rng.standard_normal((1, 3))}
    grad_steps = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(6)]
    tensors = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in start.items()}
    if rule == "momentum":
        ours = lec["momentum_update"]
        settings = {"lr": 0.05, "beta": 0.8}
        optimiser = torch.optim.SGD(tensors.values(), lr=0.05, momentum=0.8)
    else:
        ours = lec["adam_update"]
        settings = {"lr": 0.01}
        optimiser = torch.optim.Adam(tensors.values(), lr=0.01)
    kept = {k: v.copy() for k, v in start.items()}
    params, state = dict(start), {}
    for grads in grad_steps:
        params = ours(params, grads, state, **settings)
        optimiser.zero_grad()
        for key, tensor in tensors.items():
            tensor.grad = torch.from_numpy(grads[key].copy())
        optimiser.step()
    for key in start:
        np.testing.assert_allclose(params[key], tensors[key].detach().numpy(), rtol=1e-12)
        np.testing.assert_array_equal(start[key], kept[key])  # the rules return new arrays


def test_sgd_update_steps_downhill(lec):
    new = lec["sgd_update"]({"w": np.ones(2)}, {"w": np.array([1.0, -2.0])}, {}, lr=0.5)
    np.testing.assert_array_equal(new["w"], [0.5, 2.0])


def test_adam_first_step_has_size_lr(lec):
    grads = {"w": np.array([1e-3, -5.0, 300.0])}
    after = lec["adam_update"]({"w": np.zeros(3)}, grads, {}, lr=0.01)
    np.testing.assert_allclose(np.abs(after["w"]), 0.01, rtol=1e-4)


def test_dropout_training_and_inference(lec):
    rng = np.random.default_rng(0)
    A = np.ones((400, 500))
    out = lec["dropout_layer"](A, 0.25, rng, training=True)
    assert abs(np.mean(out == 0) - 0.25) < 0.01
    np.testing.assert_allclose(np.unique(out), [0.0, 4 / 3])
    assert abs(out.mean() - 1) < 0.01
    assert lec["dropout_layer"](A, 0.25, rng, training=False) is A


def test_train_runs_epochs_of_batches(lec):
    """An epoch is ceil(n / B) steps; the loss of every batch is recorded; SGD lowers it."""
    rng = np.random.default_rng(2)
    X = rng.random((23, 28, 28, 1))
    y = rng.integers(0, 10, 23)
    params, losses = lec["train"](
        lec["random_params"](0), lec["sgd_update"], X, y, batch_size=5, epochs=3, lr=0.1
    )
    assert losses.shape == (3 * 5,)
    assert lec["loss_of"](params, X, y) < lec["loss_of"](lec["random_params"](0), X, y)


# ---------------------------------------------------------------------- the lecture, executed


def _outputs(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/markdown", ""))
    return "\n".join(parts) + "\n" + answers_text(nb)  # answers print into their toggles


@pytest.mark.slow
def test_lecture_runs_in_fast_mode():
    nb, seconds, peak_mb = execute_notebook(LECTURE, CELL_TIMEOUT_S)
    print(f"05_training_numpy.ipynb: {seconds:.1f} s in fast mode, peak {peak_mb:.0f} MiB")
    assert peak_mb < MAX_PEAK_MB
    errors = [
        out for cell in nb.cells for out in cell.get("outputs", []) if out.output_type == "error"
    ]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    assert_answers_ran(nb)
    text = _outputs(nb)
    assert "mode: FAST" in text
    assert "gradient check passed: True" in text and ": False" not in text
    assert text.count("gradient check passed: True") == 5  # the loss, then W1, b1, W2, b2
    assert "ln 10 = 2.303" in text
    initial = re.search(r"capstone's \(x1\)\s*: initial loss ([\d.]+)", text)
    assert initial and abs(float(initial.group(1)) - np.log(10)) < 0.3
    assert text.count("same steps: True") == 2  # momentum and Adam against PyTorch
    assert len(re.findall(r"seed \d: 100% training accuracy after \d+ steps", text)) == 3
    assert "Every seed reached 100% training accuracy: True" in text
    assert "inference: unchanged: True" in text
    assert "844 steps per epoch, the last batch has 48 digits" in text
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert figures >= 2  # the optimisers' loss curves, the over-fitting check
