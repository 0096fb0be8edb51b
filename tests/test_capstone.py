"""The capstone notebook 02_numpy_cnn: your own numpy layers learn MNIST.

The reference solution passes every spec of :mod:`cnncourse.checks.capstone`; the specs
catch the fixtures' wrong backward passes with messages that say what is wrong; the oracle
(PyTorch autograd) agrees with a numerical gradient of an independent numpy forward pass; the
accuracy check counts labels in the grader; the notebook holds out validation digits, runs the
two sanity checks before training and touches the test digits once; it runs in fast mode, the
loss falls and the accuracy clears the threshold; and its reproduction
(``benchmarks/reproduce_numpy_cnn.py``) still finds what it patches, and ``docs/`` agrees with
``docs/numpy_cnn.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import build_fixtures
import nbformat
import numpy as np
import pytest
from conftest import execute_notebook

from autograder.fixtures import given_namespace, reference_sources
from benchmarks import reproduce_numpy_cnn as reproduction
from cnncourse.checks import CheckError, capstone, verify
from cnncourse.checks.registry import get_spec

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
LECTURE_LINK = "../../lectures/05_training_numpy.ipynb"
#: The order of the training part: data split, the two checks, training, the test digits once.
TRAINING_CELLS = (
    "numpy-cnn-data",
    "numpy-cnn-initial-loss",
    "numpy-cnn-overfit",
    "numpy-cnn-train",
    "numpy-cnn-test-once",
    "numpy-cnn-accuracy-tests",
)


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


def test_points():
    """The test cells and their points (the rules every source notebook follows, and the
    registry's agreement with the test cells, are checked in tests/test_notebook_metadata.py)."""
    nb = nbformat.read(SOURCE, as_version=4)
    points = {_meta(c)["grade_id"]: _meta(c)["points"] for c in nb.cells if _meta(c).get("grade")}
    assert points == POINTS


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
    assert message.splitlines()[0].startswith("network_gradients: every gradient has")
    assert "wrong sign" in message.splitlines()[0]
    message = _message("network_gradient_check", ns["network_gradients"])
    assert message is not None and "wrong sign" in message.splitlines()[0]
    # sgd_step is right: with the checks' gradients in place of the notebook's it passes, and
    # what it prints names network_gradients (one bug costs its own points once)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        verify("sgd_step", ns["sgd_step"], seed=7)
    assert "sgd_step is right when network_gradients answers correctly" in printed.getvalue()
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


def test_accuracy_spec_runs_the_params_through_its_own_forward_pass(ref):
    """Untrained or zero parameters fail with the threshold in the message; the spec reads
    the notebook's ``params``."""
    spec = get_spec("trained_accuracy")
    assert spec.n_random == 0 and spec.target == "params"
    zeros = {k: np.zeros_like(v) for k, v in ref["init_params"](seed=0).items()}
    message = _message("trained_accuracy", zeros)
    assert message is not None and "90%" in message
    assert _message("trained_accuracy", ref["init_params"](seed=0)) is not None


# ------------------------------------------------------- validation split and sanity checks


def _code_cells() -> dict[str, nbformat.NotebookNode]:
    nb = nbformat.read(SOURCE, as_version=4)
    return {cell.get("id"): cell for cell in nb.cells if cell.cell_type == "code"}


def test_checks_before_training_and_the_test_digits_once():
    nb = nbformat.read(SOURCE, as_version=4)
    ids = [cell.get("id") for cell in nb.cells]
    positions = [ids.index(cell_id) for cell_id in TRAINING_CELLS]
    assert positions == sorted(positions), "data, checks, training, test once, graded accuracy"
    code = _code_cells()
    # the test digits: prepared in the data cell, evaluated in one cell after training, never
    # in training, validation, the curves or the figures
    users = [cid for cid, cell in code.items() if re.search(r"\b[Xy]_test\b", cell.source)]
    assert users == ["numpy-cnn-data", "numpy-cnn-test-once"], users
    assert code["numpy-cnn-test-once"].source.count("evaluate(params, X_test, y_test)") == 1
    train = code["numpy-cnn-train"].source
    assert "evaluate(params, X_val, y_val)" in train and "X_train[batch]" in train
    data = code["numpy-cnn-data"].source
    assert "x_train_all[:-n_val]" in data and "x_train_all[-n_val:]" in data
    assert "ln 10" in code["numpy-cnn-initial-loss"].source
    assert "X_train[:50]" in code["numpy-cnn-overfit"].source
    # the trained parameters end in `params`, and the graded cell passes them
    assert re.search(r"^params = init_params\(seed=SEED\)", train, re.MULTILINE)
    accuracy = code["numpy-cnn-accuracy-tests"].source
    assert 'verify("trained_accuracy", params)' in accuracy
    assert 'verify("trained_accuracy", params, seed=92905, hidden=True)' in accuracy
    assert "trained_predictions" not in "".join(c.source for c in code.values())


def test_links_to_the_training_lecture():
    nb = nbformat.read(SOURCE, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert LECTURE_LINK in text
    assert (SOURCE.parent / LECTURE_LINK).resolve().is_file()


def test_sanity_checks_pass_for_the_reference(ref):
    """The reference's initial loss is within 0.3 of ln 10 and it over-fits 50 digits."""
    from cnncourse.data import load_mnist

    (x, y), _ = load_mnist(fast=True, verbose=False)
    X, y = ref["prepare"](x[:500]), y[:500].astype(np.int64)
    params = ref["init_params"](seed=0)
    loss, _ = ref["softmax_cross_entropy"](ref["network_forward"](params, X)[0], y)
    assert abs(loss - np.log(10)) < 0.3
    for _ in range(30):
        params, _ = ref["sgd_step"](params, X[:50], y[:50], 0.2)
    assert np.all(ref["predict"](params, X[:50]) == y[:50])


# ---------------------------------------------------------------------- the reproduction


def test_reproduction_finds_what_it_patches():
    nb = reproduction.prepared_notebook(seed=7, epochs=3)
    cells = {cell.get("id"): cell.source for cell in nb.cells}
    assert "SEED = 7\n" in cells["numpy-cnn-data"]
    assert "EPOCHS = 2 if FAST else 3" in cells["numpy-cnn-train"]
    assert "numpy-cnn-accuracy-tests" not in cells  # the report cell measures it itself
    assert "REPORT" in nb.cells[-1].source


def _fake_result(n_seeds: int = 3) -> dict:
    seeds = {}
    for seed in range(n_seeds):
        acc = [0.97 + 0.002 * k + 0.001 * seed for k in range(5)]
        seeds[str(seed)] = {
            "initial_loss": 2.4 + 0.01 * seed,
            "overfit_steps": 7 + seed,
            "history": {
                "loss": [0.3, 0.1, 0.08, 0.07, 0.06],
                "val_loss": [0.12, 0.09, 0.08, 0.075, 0.07],
                "val_accuracy": acc,
                "epoch_seconds": [60.0] * 5,
            },
            "val_loss": 0.07,
            "val_accuracy": acc[-1],
            "test_loss": 0.075 + 0.001 * seed,
            "test_accuracy": 0.978 - 0.001 * seed,
            "grading_accuracy": 0.977,
            "train_cpu_seconds": 300.0,
            "notebook_wall_seconds": 400.0,
        }
    result = {
        "seeds": seeds,
        "epochs": 5,
        "batch_size": 64,
        "learning_rate": 0.2,
        "train_digits": 54000,
        "validation_digits": 6000,
        "test_digits": 10000,
        "grading_digits": 2000,
        "threads": 2,
        "machine": "x86_64, 2 CPUs",
        "load_average_after": [1.0],
        "date": "2026-12-06",
        "command": "python benchmarks/reproduce_numpy_cnn.py --threads 2 --seeds 0 1 2",
        "figure": "docs/figures/numpy_cnn_curve.png",
    }
    reproduction.summarise(result)
    return result


def test_reproduction_section_reports_seeds_and_mean_sd():
    result = _fake_result()
    assert result["summary"]["test_accuracy"]["mean"] == pytest.approx(0.977)
    assert result["summary"]["test_accuracy"]["sd"] == pytest.approx(0.001)
    text = "\n".join(reproduction.render_section(result))
    assert text.startswith(reproduction.SECTION_TITLE)
    assert "**97.70% ± 0.10 (n = 3)**" in text  # test accuracy, mean ± sample sd
    for seed, accuracy in (("0", "97.80%"), ("1", "97.70%"), ("2", "97.60%")):
        assert re.search(rf"^\| {seed} \|.*\*\*{accuracy}\*\*", text, re.MULTILINE), seed
    assert "100% after 7 steps" in text and "validation loss still falling" in text
    assert "evaluated once, after training" in text and "(figures/numpy_cnn_curve.png)" in text
    assert "shared" not in text  # load 1.0 on 2 CPUs
    assert reproduction.render_section(None) == []


def test_reproduction_replaces_only_its_section():
    section = ["## Your numpy CNN learns MNIST (assignment 2's capstone)", "", "new", ""]
    middle = (
        "# T\n\nintro\n\n## Your numpy CNN learns MNIST (assignment 2's capstone)\n\nold\n\n"
        "## Later\n\nkept\n"
    )
    assert reproduction.replace_section(middle, section) == (
        "# T\n\nintro\n\n## Your numpy CNN learns MNIST (assignment 2's capstone)\n\nnew\n\n"
        "## Later\n\nkept\n"
    )
    assert reproduction.replace_section("# T\n", section).endswith("\n\nnew\n")


def test_docs_agree_with_the_reproduction_json():
    """docs/numpy_cnn.json has at least 3 seeds, and reproduction.md shows exactly them."""
    result = json.loads((ROOT / "docs" / "numpy_cnn.json").read_text("utf-8"))
    if "seeds" not in result:
        pytest.skip("docs/numpy_cnn.json predates the multi-seed reproduction")
    assert len(result["seeds"]) >= 3 and result.get("complete", True)
    markdown = (ROOT / "docs" / "reproduction.md").read_text("utf-8")
    assert reproduction.replace_section(markdown, reproduction.render_section(result)) == markdown
    assert (ROOT / result["figure"]).is_file()


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
    initial = re.search(
        r"initial loss on 500 training digits: ([\d.]+) \(ln 10 = 2.303\): ok", text
    )
    assert initial and abs(float(initial.group(1)) - np.log(10)) < 0.3
    assert re.search(r"over-fitting 50 digits: 100% training accuracy after \d+ steps", text)
    assert "training 7,200 digits, validation 800, test 2,000" in text
    assert len(re.findall(r"validation loss [\d.]+, validation accuracy", text)) == 2  # 2 epochs
    assert len(re.findall(r"test digits \(2,000\), once", text)) == 1
    found = re.search(r"accuracy of params on the 2,000 held-out grading digits: ([\d.]+)%", text)
    assert found and float(found.group(1)) >= 90, text[-2000:]
    # The time is a goal, measured and reported (about 30 s on one thread), not a test.
    assert re.search(r"training took ([\d.]+) s", text)
    figures = sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )
    assert figures >= 3  # training curve, filters, feature maps
    assert peak_mb < MAX_PEAK_MB


def test_an_untouched_exercise_says_it_is_not_done():
    """The release's placeholder raises NotImplementedError() with no text: the message says
    what that means instead of ending in an empty reason."""

    def untouched(params, X, y, learning_rate):
        raise NotImplementedError()

    message = _message("sgd_step", untouched)
    assert message is not None
    assert "raised NotImplementedError: the exercise is not done yet" in message.splitlines()[0]
