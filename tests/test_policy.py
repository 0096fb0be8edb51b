"""The library-call policy judges what a graded function uses, not what its cell holds.

:mod:`cnncourse.checks.policy` reads the notebook's code cells (never runs them) and follows
every module-level name the function reaches, in any cell, the cells a student added
included. An unused import or a ``verify(...)`` self-check next to the function costs
nothing; a helper that calls a forbidden library, an alias made in a plain cell, a computed
name and a patched module are all found.
"""

from __future__ import annotations

import nbformat
import pytest

from cnncourse.checks.numpy_forward import IM2COL_POLICY, LOOP_POLICY
from cnncourse.checks.policy import function_uses, reachable


def _cells(*sources: str, solution: int | None = None) -> list:
    cells = []
    for n, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        if n == solution:
            cell.metadata["nbgrader"] = {"solution": True, "grade_id": f"s{n}"}
        cells.append(cell)
    return cells


FAST_WITH_WINDOWS = """def conv_forward_fast(A, W, b, h):
    return np.lib.stride_tricks.sliding_window_view(A, 2)
"""
HELPER_WITH_TORCH = """def helper(x):
    import torch
    return torch.tensor(x)


def zero_pad(X, pad):
    return helper(X)
"""
COMPUTED_NAME = """def conv_forward(A, W, b, h):
    t = getattr(np.lib, 'stride' + '_tricks')
    return t
"""
NDARRAY_STRIDES = """def conv_forward(A, W, b, h):
    return np.ndarray((2,), buffer=A, strides=(8,))
"""
IMPORT_BY_STRING = """def pool_forward(A, h, mode='max'):
    m = __import__('cnncourse.oracles', fromlist=['x'])
    return m.pool_forward(A)
"""
ZERO_PAD = "def zero_pad(X, pad):\n    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))\n"


@pytest.mark.parametrize(
    "cells,function,policy,found",
    [
        # honest students: nothing the function uses is forbidden
        (
            _cells(
                "import numpy as np",
                ZERO_PAD + "from cnncourse.checks import verify\nverify('zero_pad', zero_pad)\n",
            ),
            "zero_pad",
            LOOP_POLICY,
            [],
        ),
        (
            _cells("import numpy as np", "import cnncourse\nimport torch\n" + ZERO_PAD),
            "zero_pad",
            LOOP_POLICY,
            [],
        ),
        (
            _cells(
                "import numpy as np", "f = 3\npad = 2\n", ZERO_PAD
            ),  # globals shadowed by locals
            "zero_pad",
            LOOP_POLICY,
            [],
        ),
        (
            _cells(
                "import numpy as np",
                "def pool_forward(A, h, mode='max'):\n    return getattr(np, 'max')(A)\n",
            ),
            "pool_forward",
            LOOP_POLICY,
            [],
        ),
        (
            _cells(
                "import numpy as np",
                FAST_WITH_WINDOWS,
            ),
            "conv_forward_fast",
            IM2COL_POLICY,
            [],
        ),
        # what a function reaches is judged wherever it is
        (
            _cells(
                "import numpy as np",
                HELPER_WITH_TORCH,
            ),
            "zero_pad",
            LOOP_POLICY,
            ["torch"],
        ),
        (
            _cells(
                "import numpy as np",
                "_sw = np.lib.stride_tricks.sliding_window_view",
                "def conv_forward(A, W, b, h):\n    return _sw(A, 3)\n",
            ),
            "conv_forward",
            LOOP_POLICY,
            ["sliding_window_view", "stride_tricks"],
        ),
        (
            _cells(
                "import numpy as np",
                COMPUTED_NAME,
            ),
            "conv_forward",
            LOOP_POLICY,
            ["getattr with a computed name"],
        ),
        (
            _cells(
                "import numpy as np",
                "import numpy\nnumpy.pad = numpy.lib.stride_tricks.sliding_window_view",
                ZERO_PAD,
            ),
            "zero_pad",
            LOOP_POLICY,
            ["sliding_window_view", "stride_tricks"],
        ),
        (
            _cells(
                "import numpy as np",
                NDARRAY_STRIDES,
            ),
            "conv_forward",
            LOOP_POLICY,
            ["numpy.ndarray(..., strides=...)"],
        ),
        (
            _cells(
                "import numpy as np",
                IMPORT_BY_STRING,
            ),
            "pool_forward",
            LOOP_POLICY,
            ["__import__()", "cnncourse"],
        ),
        (_cells("def broken(:\n", "x = 1"), "broken", LOOP_POLICY, []),
    ],
)
def test_function_uses(cells, function, policy, found):
    assert sorted(function_uses(cells, function, policy)) == sorted(found)


def test_the_last_definition_counts():
    """Cells run in order: a redefinition replaces the old one (as in the kernel)."""
    cells = _cells(
        "import numpy as np",
        "def zero_pad(X, pad):\n    return np.lib.stride_tricks.as_strided(X)\n",
        ZERO_PAD,
    )
    assert function_uses(cells, "zero_pad", LOOP_POLICY) == []
    assert function_uses(cells[:2], "zero_pad", LOOP_POLICY) == ["as_strided", "stride_tricks"]


def test_nothing_reached_when_nothing_defines_it():
    assert reachable(_cells("import torch"), "zero_pad") == []
