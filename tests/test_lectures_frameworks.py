"""Execute the framework lectures (units 6-9) in fast mode, as a reader would."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import execute_notebook

LECTURES = Path(__file__).resolve().parent.parent / "lectures"
NOTEBOOKS = [
    "06_framework_layers.ipynb",
    "07_keras_mnist_cnn.ipynb",
    "08_pytorch_mnist_cnn.ipynb",
    "09_cropping.ipynb",
]
CELL_TIMEOUT_S = 300
FAST_BUDGET_S = 120  # fast mode targets well under 60 s; allow for a loaded CI machine


@pytest.mark.slow
@pytest.mark.xdist_group("lectures")
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
    assert peak_mb < 2048, f"{name} peaked at {peak_mb:.0f} MiB (Binder allows 2 GB)"

    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    first = "".join(out.get("text", "") for out in code_cells[0].outputs)
    assert "FAST" in first, "setup_notebook did not report fast mode"
    images = sum("image/png" in out.get("data", {}) for cell in code_cells for out in cell.outputs)
    assert images >= 3, f"{name} drew only {images} figures"
    assert elapsed < FAST_BUDGET_S, f"{name} took {elapsed:.0f} s in fast mode"
