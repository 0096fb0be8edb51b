"""One truth for what is graded: the lectures teach the rules the assignments grade.

Where a lecture (or an assignment's prose) states a rule that a graded check enforces, this
module runs the lecture's own code against the graded spec, or compares its numbers with the
course's one home for them, so a lecture that drifts from the graded rule fails here:

* **max-pool ties** (lecture 4, assignment 2): the mask function that lecture 4 defines is
  taken from its cell by id and run through ``verify("create_mask_from_window", ...)``, the
  check that grades assignment 2; the prose of both must state the first-maximum rule;
* **padding coverage** (lecture 2, assignment 1): "same" padding puts a 3x3 filter's windows
  4, 6 and 9 times over a corner, an edge and a central pixel
  (:func:`cnncourse.lecture_numpy.gradient_coverage`, checked against PyTorch's autograd);
  the prose must not claim equal coverage, and assignment 1's counting cell must agree;
* **output size** (lecture 2, assignment 1): the cases of lecture 2's table and assignment
  1's own ``conv_output_size`` agree with :func:`cnncourse.architecture.conv_output_size`,
  the written formula, and the shapes PyTorch produces;
* **moving a digit** (lecture 2): the shift that section 6 uses keeps all the ink of the
  lecture's digit inside the frame in fast and in full mode, so ``np.roll`` would wrap none.

Cells are found by their ``id``; a renamed cell fails with its name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnncourse import architecture, oracles
from cnncourse import lecture_numpy as L
from cnncourse.checks import CheckError, verify

ROOT = Path(__file__).resolve().parent.parent
LECTURE_2 = ROOT / "lectures" / "02_convolution.ipynb"
LECTURE_4 = ROOT / "lectures" / "04_backward_numpy.ipynb"
ASSIGNMENT_1 = ROOT / "solutions" / "01_conv_forward" / "01_conv_forward.ipynb"
ASSIGNMENT_2 = ROOT / "solutions" / "02_conv_backward" / "02_conv_backward.ipynb"
SEED = 2026  # fixed, so a failure here is repeatable


def cell_source(path: Path, cell_id: str) -> str:
    """The source of the cell ``cell_id`` of the notebook ``path``."""
    nb = nbformat.read(path, as_version=4)
    found = [c.source for c in nb.cells if c.get("id") == cell_id]
    assert len(found) == 1, (
        f"{path.name}: expected one cell with id {cell_id!r}, found {len(found)}"
    )
    return found[0]


def markdown_text(path: Path) -> str:
    """All markdown of a notebook, lines joined (a sentence may wrap)."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.sub(r"\s+", " ", text)


def defined_functions(source: str, namespace: dict | None = None) -> dict:
    """The functions a cell defines, built by executing only its ``def`` statements."""
    tree = ast.parse(source)
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    ns = {"np": np} if namespace is None else dict(namespace)
    exec(compile(ast.Module(body=defs, type_ignores=[]), "<cell>", "exec"), ns)  # noqa: S102
    return {node.name: ns[node.name] for node in defs}


def only_function(path: Path, cell_id: str):
    """The one function the cell ``cell_id`` defines."""
    functions = defined_functions(cell_source(path, cell_id))
    assert len(functions) == 1, (
        f"{path.name} {cell_id}: defines {sorted(functions)}, not one function"
    )
    return next(iter(functions.values()))


# --------------------------------------------------------------------------- max-pool ties
def test_lecture_4_mask_passes_the_graded_check() -> None:
    """Lecture 4's mask, run through assignment 2's check (ties, constant and random windows)."""
    mask_fn = only_function(LECTURE_4, "l04-11")
    verify("create_mask_from_window", mask_fn, seed=SEED)
    tie = np.array([[1.0, 4.0], [4.0, 2.0]])
    torch_grad = oracles.pool_backward(tie.reshape(1, 2, 2, 1), 2, 2, np.ones((1, 1, 1, 1)), "max")
    np.testing.assert_array_equal(mask_fn(tie), torch_grad[0, :, :, 0] == 1)


def test_the_graded_check_rejects_the_every_maximum_mask() -> None:
    """The rule lecture 4 used to teach (C4W1's rule) fails the graded check.

    So the test above fails for a lecture that goes back to it.
    """
    with pytest.raises(CheckError, match="every tied maximum"):
        verify("create_mask_from_window", lambda x: x == np.max(x), seed=SEED)


@pytest.mark.parametrize(
    ("path", "cell_id"),
    [(LECTURE_4, "l04-10"), (LECTURE_4, "l04-18"), (ASSIGNMENT_2, "cc21f233")],
)
def test_tie_rule_is_stated_where_max_pool_backward_is_taught(path: Path, cell_id: str) -> None:
    text = re.sub(r"\s+", " ", cell_source(path, cell_id))
    assert re.search(r"first maximum in row-major order", text), (
        f"{path.name} {cell_id}: does not state the graded tie rule "
        "(first maximum in row-major order)"
    )


def test_lecture_4_does_not_teach_the_every_maximum_mask_as_the_rule() -> None:
    text = markdown_text(LECTURE_4)
    wrong = re.search(r"create_mask_from_window`?[^.]*?marks[^.]*?`window == max\(window\)`", text)
    assert not wrong, (
        f"lecture 4 teaches window == max(window) as the graded mask: {wrong.group(0)!r}"
    )


# --------------------------------------------------------------------------- padding coverage
def test_same_padding_coverage_is_4_6_9_and_agrees_with_autograd() -> None:
    counts = L.gradient_coverage(7, 3, pad=architecture.same_pad(3))
    assert (counts[0, 0], counts[0, 3], counts[3, 3]) == (4, 6, 9)
    assert L.gradient_coverage(7, 3)[0, 0] == 1  # no padding: a corner is in one window
    assert np.all(L.gradient_coverage(7, 3, pad=2) == 9)  # only "full" padding equalises
    for n, f, pad, stride in [(7, 3, 1, 1), (8, 3, 1, 2), (6, 5, 2, 1), (9, 3, 2, 3)]:
        n_out = architecture.conv_output_size(n, f, pad, stride)
        dA, _, _ = oracles.conv_backward(
            np.ones((1, n, n, 1)),
            np.ones((f, f, 1, 1)),
            np.zeros((1, 1, 1, 1)),
            stride,
            pad,
            np.ones((1, n_out, n_out, 1)),
        )
        np.testing.assert_array_equal(
            L.gradient_coverage(n, f, stride=stride, pad=pad), dA[0, :, :, 0]
        )


WRONG_COVERAGE_CLAIMS = [
    r"as many windows as central",
    r"as many filter positions as the others",
    r"(border|edge) pixels[^.]*(same|equal) (number of|coverage)",
]


@pytest.mark.parametrize(
    "path", [LECTURE_2, ASSIGNMENT_1, ROOT / "lectures" / "03_forward_numpy.ipynb"]
)
def test_no_notebook_claims_padding_equalises_coverage(path: Path) -> None:
    text = markdown_text(path)
    for claim in WRONG_COVERAGE_CLAIMS:
        found = re.search(claim, text, re.IGNORECASE)
        assert not found, f"{path.name} says padding equalises coverage: {found.group(0)!r}"


@pytest.mark.parametrize(
    ("path", "cell_id", "sentence"),
    [
        (LECTURE_2, "l02-10", r"still in fewer than central ones"),
        (ASSIGNMENT_1, "a7ee92ac", r"still by fewer than the pixels in the middle"),
    ],
)
def test_padding_sentence_says_border_pixels_stay_behind(
    path: Path, cell_id: str, sentence: str
) -> None:
    text = re.sub(r"\s+", " ", cell_source(path, cell_id))
    assert re.search(sentence, text), f"{path.name} {cell_id}: the padding sentence changed"


def test_assignment_1_counting_cell_agrees_with_gradient_coverage() -> None:
    count = defined_functions(cell_source(ASSIGNMENT_1, "a1-coverage"))["windows_per_pixel"]
    for n, f, pad in [(7, 3, 0), (7, 3, 1), (7, 3, 2), (6, 5, 2), (5, 3, 1)]:
        np.testing.assert_array_equal(count(n, f, pad), L.gradient_coverage(n, f, pad=pad))


def test_lecture_2_coverage_cell_reads_gradient_coverage() -> None:
    """The sentence lecture 2 prints is built from gradient_coverage with "same" padding."""
    source = cell_source(LECTURE_2, "l02-coverage")
    assert "gradient_coverage(" in source and "same_pad(" in source
    assert "display(Markdown(" in source


# --------------------------------------------------------------------------- output size
def _formula(n: int, f: int, p: int, s: int) -> int:
    """``floor((n + 2p - f) / s) + 1``, written out as the lectures write it."""
    return (n + 2 * p - f) // s + 1


def test_lecture_2_size_table_agrees_with_architecture_and_pytorch() -> None:
    tree = ast.parse(cell_source(LECTURE_2, "l02-11"))
    (assign,) = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "cases" for t in node.targets)
    ]
    cases = eval(  # noqa: S307 - the lecture's own table, with its one helper
        compile(ast.Expression(assign.value), "<l02-11>", "eval"),
        {"same_pad": architecture.same_pad},
    )
    assert len(cases) >= 5
    for n_in, f, p, s, comment in cases:
        expected = _formula(n_in, f, p, s)
        assert architecture.conv_output_size(n_in, f, p, s) == expected, comment
        if n_in <= 64:  # PyTorch on the small cases (AlexNet's 227x227 is covered by the formula)
            Z = oracles.conv_forward(
                np.zeros((1, n_in, n_in, 1)), np.zeros((f, f, 1, 1)), np.zeros((1, 1, 1, 1)), s, p
            )
            assert Z.shape[1:3] == (expected, expected), comment
            assert (
                L.correlate2d(np.zeros((n_in, n_in)), np.zeros((f, f)), pad=p, stride=s).shape
                == Z.shape[1:3]
            )
    assert "conv_output_size(n_in, f, p, s)" in cell_source(LECTURE_2, "l02-11")


@pytest.mark.parametrize(("path", "cell_id"), [(LECTURE_2, "l02-10"), (ASSIGNMENT_1, "af2eb981")])
def test_written_formula_is_the_graded_one(path: Path, cell_id: str) -> None:
    text = re.sub(r"\s+", "", cell_source(path, cell_id))
    assert r"\left\lfloor\frac{n_{in}+2p-f}{s}\right\rfloor+1" in text, (
        f"{path.name} {cell_id}: formula changed"
    )


def test_assignment_1_size_function_agrees_with_architecture() -> None:
    size = defined_functions(cell_source(ASSIGNMENT_1, "1d7ed601"))["conv_output_size"]
    for n in range(3, 12):
        for f in range(1, 6):
            for p in range(3):
                for s in range(1, 4):
                    if f <= n + 2 * p:
                        assert size(n, f, p, s) == architecture.conv_output_size(n, f, p, s), (
                            n,
                            f,
                            p,
                            s,
                        )


# --------------------------------------------------------------------------- moving a digit
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
def test_lecture_2_shift_keeps_all_ink_in_both_modes(fast: bool) -> None:
    from cnncourse.data import load_mnist

    (x_train, y_train), _ = load_mnist(fast=fast, verbose=False)
    digit = x_train[np.flatnonzero(y_train == 7)[0]].astype(np.float64) / 255.0  # as in l02-01
    dy, dx = L.safe_shift(digit)
    assert (dy, dx) != (0, 0)
    shifted = L.shift_image(digit, dy, dx)
    assert shifted.sum() == pytest.approx(digit.sum()), "ink leaves the frame"
    np.testing.assert_array_equal(np.roll(digit, (dy, dx), axis=(0, 1)), shifted)  # nothing wraps


def test_lecture_2_section_6_uses_the_real_shift_and_claims_only_what_holds() -> None:
    code = cell_source(LECTURE_2, "l02-17")
    assert "safe_shift(digit)" in code and "shift_image(" in code and "np.roll" not in code
    text = markdown_text(LECTURE_2)
    for claim in (
        r"recognised wherever",
        r"nothing falls off",
        r"whole CNN is (exactly )?invariant",
    ):
        assert not re.search(claim, text, re.IGNORECASE), f"lecture 2 over-claims: {claim!r}"
    assert re.search(r"global maximum", re.sub(r"\s+", " ", cell_source(LECTURE_2, "l02-16")))


def test_shift_helpers() -> None:
    image = np.zeros((6, 6))
    image[2:4, 1:3] = 1.0
    np.testing.assert_array_equal(L.shift_image(image, 1, -1)[3:5, 0:2], 1.0)
    assert L.shift_image(image, 0, 0) is not image
    assert L.shift_image(image, 6, 0).sum() == 0  # moved out entirely
    assert L.safe_shift(image, margin=0) == (2, 3)  # wider margin below and to the right
    with pytest.raises(ValueError):
        L.safe_shift(np.zeros((4, 4)))
