"""Assignment 6's checks (cnncourse.checks.modern, modern_models and modern_mistakes): the
reference solutions pass every spec, every known mistake is caught and named, and the oracles
agree with each other.

The specs are called directly (``engine.check(spec, DirectRunner(fn), seed)``). The buggy
functions are the reference solution cells of ``solutions/06_modern_cnn/06_batchnorm_residual``
and ``06_framework_blocks`` with one line changed: the grading fixtures' edits
(``tests/fixtures/cases/06_modern_cnn.py``) and the ones below.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.fixtures import given_namespace, load_cases, reference_sources
from cnncourse.checks import (
    engine,
    misconceptions,
    modern,
    modern_mistakes,
    modern_models,
    registry,
)
from cnncourse.checks import modern_oracles as mo

ROOT = Path(__file__).resolve().parent.parent
AID = "06_modern_cnn"
NOTEBOOK = "06_batchnorm_residual.ipynb"
FRAMEWORKS = "06_framework_blocks.ipynb"
RESNET = "06_cluttered_resnet.ipynb"
CASES = load_cases(ROOT / "tests" / "fixtures" / "cases" / f"{AID}.py")
SEED = 424242
SPECS = {**modern.SPECS, **modern_models.SPECS}


def _edit(grade_id: str, old: str, new: str) -> dict:
    def make(sources: dict) -> str:
        assert old in sources[grade_id], f"{grade_id} no longer contains {old!r}"
        return sources[grade_id].replace(old, new)

    return {grade_id: make}


#: Mistakes without a grading fixture: (solution cell edit, spec, misconception).
EXTRA_BUGS = {
    "bn_unbiased_variance": (
        _edit(
            "batchnorm_forward_solution", "X.var(axis=(0, 1, 2))", "X.var(axis=(0, 1, 2), ddof=1)"
        ),
        "batchnorm_forward",
    ),
    "bn_per_position": (
        {
            "batchnorm_forward_solution": lambda s: (
                s["batchnorm_forward_solution"]
                .replace("mean = X.mean(axis=(0, 1, 2))", "mean = X.mean(axis=0)")
                .replace("var = X.var(axis=(0, 1, 2))", "var = X.var(axis=0)")
            )
        },
        "batchnorm_forward",
    ),
    "bn_eps_outside_sqrt": (
        _edit(
            "batchnorm_forward_solution",
            "X_hat = (X - mean) / np.sqrt(var + eps)",
            "X_hat = (X - mean) / (np.sqrt(var) + eps)",
        ),
        "batchnorm_forward",
    ),
    "bn_sums_over_examples_only": (
        _edit(
            "batchnorm_backward_solution",
            "dbeta = dout.sum(axis=axes)\n    dgamma = (dout * X_hat).sum(axis=axes)",
            "dbeta = dout.sum(axis=0)\n    dgamma = (dout * X_hat).sum(axis=0)",
        ),
        "batchnorm_backward",
    ),
    "block_relu_before_add": (
        _edit(
            "residual_block_forward_solution",
            "summed = B2 + shortcut",
            "summed = np.maximum(B2, 0.0) + shortcut",
        ),
        "residual_block_forward",
    ),
    "keras_default_epsilon": (
        _edit(
            "keras_residual_block_solution",
            "layers.BatchNormalization(epsilon=1e-5, name=name)",
            "layers.BatchNormalization(name=name)",
        ),
        "keras_residual_block",
    ),
    "framework_inference_mode": (
        _edit("torch_residual_block_solution", "block.train()", "block.eval()"),
        "torch_residual_block",
    ),
    "framework_inference_mode/keras": (
        _edit("keras_residual_block_solution", "block(X, training=True)", "block(X)"),
        "keras_residual_block",
    ),
}


def _namespace(replace: dict | None = None) -> dict:
    """Part a's given cells and parts a and b's solution cells (some edited), in order."""
    sources = reference_sources(AID, NOTEBOOK) | reference_sources(AID, FRAMEWORKS)
    for grade_id, make in (replace or {}).items():
        sources[grade_id] = make(sources)
    ns = given_namespace(AID, NOTEBOOK)
    with contextlib.redirect_stdout(io.StringIO()):
        for grade_id, source in sources.items():
            exec(compile(source, f"<{grade_id}>", "exec"), ns)  # noqa: S102
    return ns


@pytest.fixture(scope="module")
def reference():
    return _namespace()


def _check(spec_name: str, ns: dict, hidden: bool = False) -> engine.Verdict:
    spec = SPECS[spec_name]
    with contextlib.redirect_stdout(io.StringIO()):
        return engine.check(spec, engine.DirectRunner(ns[spec.target], ns), SEED, hidden=hidden)


NUMPY_SPECS = [
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_gradient_check",
    "residual_block_forward",
    "residual_block_gradients",
    "residual_block_gradient_check",
]


@pytest.mark.parametrize(
    "spec_name", NUMPY_SPECS + ["keras_residual_block", "torch_residual_block"]
)
def test_reference_passes(spec_name, reference):
    verdict = _check(spec_name, reference, hidden=True)
    assert verdict.passed, verdict.message


def test_block_gradient_check_draws_only_well_conditioned_blocks():
    """With one output channel the second normalization leaves W1, gamma1 and beta1
    gradients of about 1e-5, whose centred differences are noise: a right block lost its
    points on 1 draw in 400. The check draws (and shrinks to) two channels each way."""
    spec = SPECS["residual_block_gradient_check"]
    rng = np.random.default_rng(0)
    for _ in range(300):
        c = spec.draw(rng)
        assert c["n_C"] >= 2 and c["n_C_prev"] >= 2, c
        for smaller in spec.smaller(c):
            assert smaller["n_C"] >= 2 and smaller["n_C_prev"] >= 2, (c, smaller)
    assert all(c["n_C"] >= 2 for c in spec.required() + spec.hidden_required())


@pytest.mark.parametrize("seed", range(3))
def test_block_gradient_check_is_not_flaky(reference, seed):
    spec = SPECS["residual_block_gradient_check"]
    runner = engine.DirectRunner(reference[spec.target], reference)
    with contextlib.redirect_stdout(io.StringIO()):
        verdict = engine.check(spec, runner, seed, n_random=20, hidden=True)
    assert verdict.passed, verdict.message


def _fixture_bugs():
    for name, case in CASES.items():
        if case["notebook"] == RESNET or not case.get("cause"):
            continue
        for spec_name, cause in case["cause"].items():
            yield pytest.param(
                case.get("replace_with", {}), spec_name, cause, id=f"{name}-{spec_name}"
            )


def _extra_bugs():
    for name, (replace, spec_name) in EXTRA_BUGS.items():
        yield pytest.param(replace, spec_name, name.split("/")[0], id=name)


@pytest.mark.parametrize("replace,spec_name,cause", [*_fixture_bugs(), *_extra_bugs()])
def test_mistake_is_caught_and_named(replace, spec_name, cause):
    verdict = _check(spec_name, _namespace(replace))
    assert not verdict.passed, f"{spec_name} passes a function with the mistake {cause}"
    if cause.startswith("helper:"):  # the graded function it calls is named first
        helper = cause.removeprefix("helper:")
        assert f"it calls your {helper}, which fails" in verdict.message.splitlines()[0]
        return
    assert verdict.cause == cause, verdict.message
    first = verdict.message.splitlines()[0]
    assert misconceptions.CATALOGUE[cause].sentence in first, verdict.message


def test_every_misconception_is_exercised():
    fixture_causes = {
        c
        for case in CASES.values()
        for c in case.get("cause", {}).values()
        if not c.startswith("helper:")
    }
    extra = {name.split("/")[0] for name in EXTRA_BUGS}
    keys = {m.key for m in modern_mistakes.MISCONCEPTIONS}
    assert keys <= fixture_causes | extra, sorted(keys - fixture_causes - extra)
    assert fixture_causes <= keys, sorted(fixture_causes - keys)
    assert len(keys) == len(modern_mistakes.MISCONCEPTIONS), "two misconceptions share a key"


def test_misconception_keys_are_new(monkeypatch):
    """No key names another mistake of the catalogue (once registered, the entries are these)."""
    monkeypatch.undo()  # the catalogue without the autouse fixture's additions
    for entry in modern_mistakes.MISCONCEPTIONS:
        other = misconceptions.CATALOGUE.get(entry.key)
        assert other is None or other.sentence == entry.sentence, entry.key


# ------------------------------------------------------------------------------ the oracles


def test_bn_forward_matches_torch_and_its_own_backward():
    import torch

    rng = np.random.default_rng(0)
    X = 2.0 + 3.0 * rng.standard_normal((3, 4, 5, 2))
    gamma, beta = rng.normal(1, 0.5, 2), rng.normal(0, 0.5, 2)
    out, new, cache = mo.bn_forward(X, gamma, beta, {"mean": np.zeros(2), "var": np.ones(2)}, True)
    expected = torch.nn.functional.batch_norm(
        torch.from_numpy(mo._nchw(X)), None, None, torch.from_numpy(gamma),
        torch.from_numpy(beta), training=True, eps=mo.EPS,
    )  # fmt: skip
    assert np.allclose(out, mo._nhwc(expected.numpy()), rtol=1e-12, atol=1e-12)
    assert np.allclose(new["mean"], 0.1 * X.mean(axis=(0, 1, 2)))
    dout = rng.standard_normal(X.shape)
    for mine, theirs in zip(
        mo.bn_backward(dout, cache), mo.bn_backward_torch(dout, X, gamma, beta, mo.EPS), strict=True
    ):
        assert np.allclose(mine, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stride,proj", [(1, 0), (2, 1), (1, 1)])
def test_block_oracles_agree(stride, proj):
    c = dict(m=2, n_H=6, n_W=5, n_C_prev=2, n_C=2 if not proj else 3, stride=stride, proj=proj)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((c["m"], c["n_H"], c["n_W"], c["n_C_prev"]))
    params = modern.block_params(c, rng)
    out = mo.block_numpy(X, params, stride)
    assert np.allclose(out, mo.block_torch(X, params, stride), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    _, grads = mo.block_torch(X, params, stride, dout)
    numerical = mo.centred_block_gradients(X, params, stride, dout)
    for key in grads:
        assert np.allclose(grads[key], numerical[key], rtol=1e-5, atol=1e-7), key


def test_keras_same_padding_mutant_differs_only_for_even_sizes():
    rng = np.random.default_rng(2)
    c = dict(m=2, n_H=5, n_W=5, n_C_prev=1, n_C=2, stride=2, proj=1)
    X = rng.standard_normal((2, 5, 5, 1))
    params = modern.block_params(c, rng)
    odd = mo.block_torch(X, params, 2) - mo.block_torch(X, params, 2, same_padding=True)
    assert np.abs(odd).max() == 0.0  # odd sizes: TensorFlow pads 1 on each side as well
    X6 = rng.standard_normal((2, 6, 6, 1))
    even = mo.block_torch(X6, params, 2) - mo.block_torch(X6, params, 2, same_padding=True)
    assert np.abs(even).max() > 1e-3


# -------------------------------------------------------------------------- trained network


def test_cluttered_accuracy_threshold_and_messages():
    spec = SPECS["cluttered_accuracy"]
    labels = modern_models.grading_labels()
    matcher = spec.expect({}, (), {})
    assert matcher.mismatch(labels.copy(), "labels") is None
    wrong = labels.copy()
    n_wrong = int(len(labels) * (1 - modern_models.CLUTTERED_THRESHOLD)) + 10
    wrong[:n_wrong] = (wrong[:n_wrong] + 1) % 10
    found = matcher.mismatch(wrong, "labels")
    assert found is not None and "must reach" in found.message
    scores = np.eye(10)[labels].astype(np.float32)
    found = matcher.mismatch(scores, "labels")
    assert found is not None and "integer array of shape" in found.message


def test_threshold_separates_the_fast_mode_measurements():
    """docs/modern.json's fast-mode runs: every ResNet seed above, every lecture CNN seed below."""
    path = ROOT / "docs" / "modern.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    fast = report.get("fast_mode")
    if not fast:
        pytest.skip("no fast-mode measurements in docs/modern.json")
    lowest_resnet = min(s["test_accuracy"] for s in fast["resnet"]["seeds"].values())
    highest_lecture = max(s["test_accuracy"] for s in fast["lecture_cnn"]["seeds"].values())
    assert highest_lecture + 0.03 < modern_models.CLUTTERED_THRESHOLD < lowest_resnet - 0.03


# ---------------------------------------------------------------------------- the notebooks


def _verify_calls(source: str) -> list[tuple[str, str]]:
    """(spec name, function name) of each verify(...) call of a cell."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "verify":
            calls.append((node.args[0].value, node.args[1].id))
    return calls


@pytest.mark.parametrize("notebook", [NOTEBOOK, FRAMEWORKS, RESNET])
def test_test_cells_call_the_registered_specs(notebook):
    nb = nbformat.read(ROOT / "solutions" / AID / notebook, as_version=4)
    registered = registry.TEST_CELLS[notebook.removesuffix(".ipynb")]
    found = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            calls = _verify_calls(cell.source)
            assert calls, f"{meta['grade_id']} calls no verify"
            names = tuple(dict.fromkeys(name for name, _ in calls))
            found[meta["grade_id"]] = names
            for name, function in calls:
                assert SPECS[name].target == function, (meta["grade_id"], name, function)
    assert found == registered
