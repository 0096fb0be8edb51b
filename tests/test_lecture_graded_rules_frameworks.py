"""One truth for what is graded: lecture 7 and assignment 3 state the graded rules alike.

Assignment 3 grades the lecture CNN's parameter counts (``build_model_params``, from
``cnncourse.checks.keras_models.lecture_cnn_layers``) and the receptive-field recurrence
(``receptive_field``, checked against ``cnncourse.checks.arithmetic.reference_field``). Lecture 7
and assignment 3 both talk about where the parameters sit and about how the receptive field
grows; these tests read what each says (the lecture's text *and* what its code prints) and fail
when either contradicts the graded spec or the other. Lecture 8's RMSprop table is checked
against the two frameworks' own defaults.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnncourse import architecture as arch
from cnncourse.checks.arithmetic import reference_field
from cnncourse.checks.keras_models import lecture_cnn_layers

ROOT = Path(__file__).resolve().parent.parent
LECTURE_7 = ROOT / "lectures" / "07_keras_mnist_cnn.ipynb"
LECTURE_8 = ROOT / "lectures" / "08_pytorch_mnist_cnn.ipynb"
ASSIGNMENT_3 = ROOT / "solutions" / "03_keras_mnist" / "03_keras_mnist.ipynb"

#: (notebook, cell id) of each statement checked here.
L7_PARAMS_CODE = (LECTURE_7, "1ceefbf3")  # prints where the parameters sit
A3_SUMMARY = (ASSIGNMENT_3, "2a547bfe")  # "... 93,322, split ... (36,928 each)"
L7_FIELD_TEXT = (LECTURE_7, "df044720")  # the top-down walk, linked to the bottom-up one
L7_FIELD_CODE = (LECTURE_7, "1c1d1b17")  # prints both walks
A3_FIELD_TEXT = (ASSIGNMENT_3, "e61458e0")  # the bottom-up walk, linked to the top-down one
L8_RMSPROP_CODE = (LECTURE_8, "beac647c")

#: The lecture CNN's (f, stride) stack, input first, as assignment 3's checks describe it.
GRADED_STACK = [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]
LAYER_NAMES = ["conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "dense1", "dense2"]
NUMBERS = r"(\d+(?:, \d+)+)"


def source(where: tuple[Path, str]) -> str:
    path, cell_id = where
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    (cell,) = [c for c in cells if c.get("id") == cell_id]
    return "".join(cell["source"])


def run_cell(where: tuple[Path, str], namespace: dict) -> str:
    """Execute one lecture code cell; returns the markdown it displayed (tables included)."""
    shown: list[str] = []
    namespace.update(
        display=lambda obj: shown.append(str(obj)),
        Markdown=str,
        markdown_table=lambda header, rows: shown.append(
            "\n".join(" | ".join(map(str, r)) for r in [header, *rows])
        ),
    )
    exec(compile(source(where), f"{where[0].name}:{where[1]}", "exec"), namespace)
    return "\n".join(shown)


def sequence_after(text: str, keyword: str) -> list[int]:
    """The first comma-separated run of integers in the sentence that holds ``keyword``."""
    for sentence in re.split(r"(?<=[.;])\s", " ".join(text.split())):
        if keyword in sentence:
            match = re.search(NUMBERS, sentence[sentence.index(keyword) :])
            if match:
                return [int(n) for n in match.group(1).split(", ")]
    raise AssertionError(f"no sequence of numbers after {keyword!r} in: {text[:300]}")


# --------------------------------------------------------------------------- the graded truth


def graded_params() -> dict[str, int]:
    """Parameters per layer of assignment 3's graded architecture, by the lecture's names."""
    return {name: spec.params for name, spec in zip(LAYER_NAMES, lecture_cnn_layers(), strict=True)}


def graded_bottom_up() -> list[int]:
    """Image pixels seen by one neuron of each layer (input pixel first): the graded oracle."""
    return [reference_field(GRADED_STACK[:i]) for i in range(len(GRADED_STACK) + 1)]


def graded_top_down() -> list[int]:
    """One conv3 neuron walked down: positions of each layer's output it depends on."""
    sides, r = [], 1
    for f, stride in reversed(GRADED_STACK):
        r = (r - 1) * stride + f
        sides.append(r)
    return sides


def test_graded_truth_is_the_course_arithmetic():
    """The course's helpers (which the lecture prints) compute what assignment 3 grades."""
    params = graded_params()
    rows = arch.sequential_summary((28, 28, 1), arch.LECTURE_CNN)
    assert [r.params for r in rows] == list(params.values())
    assert arch.receptive_field_sizes(arch.LECTURE_CNN_FIELD_LAYERS) == graded_bottom_up()
    assert arch.receptive_field_table(arch.LECTURE_CNN_FIELD_LAYERS)[1:] == graded_top_down()
    assert graded_top_down()[-1] == graded_bottom_up()[-1] == 18


# --------------------------------------------------------------------------- parameter placement


def placement_claims(text: str) -> dict:
    """What a text says about where the parameters sit: counts named per layer, the total, and
    which layer holds most (``None``: none does)."""
    text = " ".join(text.split())
    claims: dict = {"counts": {}, "most": "unstated", "total": None}
    for a, b, n in re.findall(r"between (\w+) and (\w+) \(([\d,]+) each", text):
        claims["counts"].update({a: int(n.replace(",", "")), b: int(n.replace(",", ""))})
    for name, n in re.findall(r"\b(conv\d|dense\d) (?:has )?([\d,]{3,})\b", text):
        claims["counts"][name] = int(n.replace(",", ""))
    most = re.search(r"most of them in (?:the )?([\w ]+?)[.;,)]", text)
    if most:
        claims["most"] = {"first dense layer": "dense1", "third convolution": "conv3"}.get(
            most.group(1).strip(), most.group(1).strip()
        )
    elif re.search(r"no layer holds most of them|split almost evenly", text):
        claims["most"] = None
    holds = re.search(r"; (\w+) holds most of them", text)
    if holds:
        claims["most"] = holds.group(1)
    total = re.search(r"(?:in total|network has) \*{0,2}([\d,]{5,})", text)
    if total:
        claims["total"] = int(total.group(1).replace(",", ""))
    return claims


def check_placement(claims: dict, where: str) -> None:
    params = graded_params()
    total = sum(params.values())
    largest = max(params, key=params.get)
    truth_most = largest if params[largest] > total / 2 else None
    assert claims["counts"], f"{where} names no layer's parameter count"
    for name, n in claims["counts"].items():
        assert n == params[name], f"{where}: {name} has {params[name]:,} parameters, not {n:,}"
    assert claims["most"] != "unstated", f"{where} does not say whether one layer holds most"
    assert claims["most"] == truth_most, (
        f"{where} says most parameters sit in {claims['most']}; graded: "
        + (f"{truth_most}" if truth_most else f"none ({largest} has {params[largest] / total:.1%})")
    )
    assert claims["total"] is not None, f"{where} does not state the total"
    assert claims["total"] == total, f"{where}: total {claims['total']:,}, graded {total:,}"


def test_assignment_3_summary_places_the_parameters_as_graded():
    check_placement(placement_claims(source(A3_SUMMARY)), "assignment 3's summary")


def test_lecture_7_prints_the_parameter_placement_that_assignment_3_states():
    pytest.importorskip("keras")
    import numpy as np

    from cnncourse.models import build_lecture_cnn_keras

    printed = run_cell(
        L7_PARAMS_CODE,
        {"np": np, "arch": arch, "model": build_lecture_cnn_keras(compile_model=False, seed=0)},
    )
    lecture = placement_claims(printed)
    check_placement(lecture, "lecture 7's parameter cell")
    assignment = placement_claims(source(A3_SUMMARY))
    assert lecture["most"] == assignment["most"], "lecture 7 and assignment 3 disagree"
    shared = set(lecture["counts"]) & set(assignment["counts"])
    assert {"conv3", "dense1"} <= shared, "both should name conv3's and dense1's counts"


# --------------------------------------------------------------------------- receptive fields


def check_walks(text: str, where: str, other: str) -> None:
    """Both walks stated, linked, and equal to the graded ones."""
    flat = " ".join(text.split())
    for word in ("top-down", "bottom-up"):
        assert word in flat, f"{where} does not name the {word} walk"
    assert other.lower() in flat.lower(), f"{where} does not point to {other}"
    assert sequence_after(flat, "bottom-up") == graded_bottom_up(), (
        f"{where}: bottom-up sides {sequence_after(flat, 'bottom-up')}, graded {graded_bottom_up()}"
    )
    assert sequence_after(flat, "top-down") == graded_top_down(), (
        f"{where}: top-down sides {sequence_after(flat, 'top-down')}, graded {graded_top_down()}"
    )
    doubled = [2 * graded_bottom_up()[1], 2 * graded_bottom_up()[3]]
    true = [graded_bottom_up()[2], graded_bottom_up()[4]]
    if re.search(r"\b6 and 16\b|\b4 and 10\b", flat):  # the doubling aside, when made
        assert f"{doubled[0]} and {doubled[1]}" in flat and f"{true[0]} and {true[1]}" in flat, (
            f"{where}: doubling gives {doubled}, the graded recurrence {true}"
        )


def test_lecture_7_text_links_its_top_down_walk_to_assignment_3():
    check_walks(source(L7_FIELD_TEXT), "lecture 7, section 6", "assignment 3")


def test_assignment_3_text_links_its_bottom_up_walk_to_lecture_7():
    check_walks(source(A3_FIELD_TEXT), "assignment 3, section 3", "lecture 7")


def test_lecture_7_code_prints_both_walks_as_graded():
    printed = run_cell(L7_FIELD_CODE, {"arch": arch, "np": None})
    flat = " ".join(printed.split())
    assert sequence_after(flat, "Top-down, the sides are") == graded_top_down()
    assert sequence_after(flat, "bottom-up,") == graded_bottom_up()


# --------------------------------------------------------------------------- RMSprop defaults


def test_lecture_8_rmsprop_table_matches_both_frameworks():
    """The Keras column is typed (lecture 8 does not import Keras): it must be Keras's."""
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    import inspect

    text = source(L8_RMSPROP_CODE)
    typed = re.search(r"KERAS_RMSPROP = (\{[^}]*\})", text)
    assert typed, "lecture 8 no longer states Keras's RMSprop defaults"
    stated = eval(typed.group(1))  # a literal dict of numbers
    keras_defaults = inspect.signature(keras.optimizers.RMSprop).parameters
    torch_defaults = inspect.signature(torch.optim.RMSprop.__init__).parameters
    pairs = [("learning rate", "learning_rate", "lr"), ("decay (rho / alpha)", "rho", "alpha"),
             ("epsilon", "epsilon", "eps")]  # fmt: skip
    for label, keras_name, torch_name in pairs:
        assert stated[label] == keras_defaults[keras_name].default, label
        # the lecture says PyTorch's defaults differ in all three
        assert torch_defaults[torch_name].default != stated[label], label
    assert "lr=1e-3, alpha=0.9, eps=1e-7" in text  # and it passes Keras's values
