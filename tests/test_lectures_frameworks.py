"""Execute the framework lectures (units 6-9) in fast mode, as a reader would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import execute_notebook
from test_lecture_exercises import assert_answers_ran, count_figures

from cnncourse import training_runs as tr

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "lectures"
REPRODUCTION = ROOT / "docs" / "reproduction.json"
MODERN = ROOT / "docs" / "modern.json"  # lecture 10's architecture table (reproduce_modern.py)
TRAINING_CURVES = ROOT / "docs" / "figures" / "training_curves.png"
NOTEBOOKS = [
    "06_framework_layers.ipynb",
    "07_keras_mnist_cnn.ipynb",
    "08_pytorch_mnist_cnn.ipynb",
    "09_cropping.ipynb",
    "10_modern_cnns.ipynb",
]
CELL_TIMEOUT_S = 300

#: Figures each lecture draws in fast mode (the reproduction's curves come on top).
MIN_FIGURES = {
    "06_framework_layers.ipynb": 7,  # incl. dilated taps, dilated receptive fields
    "07_keras_mnist_cnn.ipynb": 10,  # incl. layer maps, confusion matrix, mistakes, Grad-CAM, GAP
    "08_pytorch_mnist_cnn.ipynb": 6,  # incl. saliency / Grad-CAM
    "09_cropping.ipynb": 6,
    "10_modern_cnns.ipynb": 4,  # cluttered digits, BN histograms, augmented digits, training
}
#: Computed figures the lectures state: they must come out of the code, as in the lecture.
COMPUTED = {
    "06_framework_layers.ipynb": ["spans 9x9", "see 15x15", "formula, Keras and PyTorch agree"],
    "07_keras_mnist_cnn.ipynb": ["**93,322**", "**41.3%**", "**6.25%**", "60,554", "18x18"],
    "08_pytorch_mnist_cnn.ipynb": ["**93,322**"],
    "09_cropping.ipynb": ["169,098", "431,242", "18x18x1"],
    "10_modern_cnns.ipynb": ["1,179,648", "69,632", "16.9 times fewer parameters", "18,560"],
}
#: The run of docs/reproduction.json each lecture quotes.
QUOTED_RUNS = {
    "07_keras_mnist_cnn.ipynb": ["keras_cnn"],
    "08_pytorch_mnist_cnn.ipynb": ["torch_cnn", "keras_cnn"],
    "09_cropping.ipynb": ["cropped", "classic"],
}
#: The runs whose curves each lecture judges with the course's over-fitting rule.
JUDGED_RUNS = {
    "07_keras_mnist_cnn.ipynb": ["keras_cnn"],
    "08_pytorch_mnist_cnn.ipynb": ["torch_cnn"],
    "09_cropping.ipynb": ["cropped", "classic"],
}
#: A result typed into prose, e.g. "99.08%": such numbers must be computed.
TYPED_RESULT = re.compile(r"\d+\.\d+\s*%")


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            data = out.get("data", {})
            parts.append(data.get("text/markdown", ""))
            parts.append(data.get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_results_typed_into_prose(name):
    """Accuracies and other results in markdown are built by code, never typed by hand."""
    nbformat = pytest.importorskip("nbformat")

    nb = nbformat.read(LECTURES / name, as_version=4)
    typed = [
        (cell.get("id"), match.group(0))
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for match in TYPED_RESULT.finditer(cell.source)
    ]
    assert not typed, f"{name}: results typed into markdown: {typed}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_lecture_runs_in_fast_mode(name):
    nbformat = pytest.importorskip("nbformat")

    path = LECTURES / name
    nb = nbformat.read(path, as_version=4)
    # saved without outputs, so the repository stays diffable
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name} has outputs"

    nb, elapsed, peak_mb = execute_notebook(path, CELL_TIMEOUT_S)
    print(f"{name}: {elapsed:.0f} s in fast mode, peak {peak_mb:.0f} MiB")
    assert peak_mb < 2048, f"{name} peaked at {peak_mb:.0f} MiB (Binder allows 2 GB)"

    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, [f"{e.get('ename')}: {e.get('evalue')}" for e in errors]
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    first = "".join(out.get("text", "") for out in code_cells[0].outputs)
    assert "FAST" in first, "setup_notebook did not report fast mode"
    assert_answers_ran(nb)

    text = _outputs_text(nb)
    for expected in COMPUTED[name]:
        assert expected in text, f"{name}: the computed figure {expected!r} is missing"

    images = count_figures(nb)  # answers' figures are inside their toggles
    wanted = MIN_FIGURES[name]
    runs = QUOTED_RUNS.get(name, [])
    if runs and REPRODUCTION.is_file() and TRAINING_CURVES.is_file():
        wanted += 1  # the reproduction's training curves
        results = json.loads(REPRODUCTION.read_text())["runs"]
        for run in runs:
            accuracy = tr.seed_values(results[run], "test_accuracy")
            quoted = tr.format_mean_sd(accuracy, percent=True)
            assert quoted in text, f"{name} does not quote the full run's {run} accuracy {quoted}"
            each = tr.format_per_seed(accuracy, percent=True)
            assert each in text, f"{name} does not quote {run}'s accuracy per seed ({each})"
        assert "The course's rule: " + tr.RULE_TEXT in text, f"{name} does not state the rule"
        for run in JUDGED_RUNS[name]:  # the over-fitting verdict of every seed, by the rule
            for seed, summary in tr.seed_verdicts(results[run]).items():
                verdict = tr.VERDICTS[summary.verdict]
                assert verdict in text, f"{name}: {run} seed {seed}'s verdict {verdict!r} missing"
    elif runs:
        assert "no full-length reproduction yet" in text
    table = json.loads(MODERN.read_text()).get("table") if MODERN.is_file() else None
    if name == "10_modern_cnns.ipynb" and table:
        wanted += 3  # the table's bars; the curves with and without BN, and with shortcuts
        for arch, summary in table.items():  # every row's mean ± sd, as the lecture formats it
            s = summary["test_accuracy"]
            quoted = f"{100 * s['mean']:.1f}% ± {100 * s['sd']:.1f}"
            assert quoted in text, f"{name} does not quote {arch}'s accuracy {quoted}"
    elif name == "10_modern_cnns.ipynb":
        assert "no architecture table in `docs/modern.json`" in text
    assert images >= wanted, f"{name} drew only {images} figures, expected {wanted}"
