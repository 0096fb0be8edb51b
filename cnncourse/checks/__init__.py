"""Checks of the graded functions: what students run in the notebook, and what the grader
decides with, from one description per function.

In a notebook's test cell::

    from cnncourse.checks import verify
    verify("conv_forward", conv_forward)

runs the reference example, the configurations public versions of the assignment get wrong
(stride 2 and 3, pad 0, non-square inputs, ties), and random configurations drawn now, and
compares with the oracle (PyTorch in float64, or a direct formula). When something is
wrong it shrinks the failure to the smallest case it can find, names the likely cause when
it is a known mistake (:mod:`cnncourse.checks.misconceptions`) and shows expected vs got on
a small slice.
"""

from __future__ import annotations

import secrets

from ..testing import CheckError
from .engine import DirectRunner, Verdict, check
from .registry import get_spec


def verify(
    name: str,
    function,
    *,
    seed: int | None = None,
    n_random: int | None = None,
    hidden: bool = False,
    namespace: dict | None = None,
) -> Verdict:
    """Check ``function`` against the spec ``name``; raise :class:`CheckError` if it fails.

    ``seed`` draws the random cases (a new one each call unless given: the message says
    which, so a failure can be repeated with ``verify(name, function, seed=...)``).
    ``hidden`` adds the spec's hidden configurations (used by the hidden tests).
    ``namespace`` (usually ``globals()``) is where adapters find other notebook names, e.g.
    the module class a weight-copying function fills.
    """
    __tracebackhide__ = True  # IPython shows the student's line and the message only
    spec = get_spec(name)
    used = _policy_violation(spec)
    if used:
        raise CheckError(
            f"ForbiddenCall: {spec.target} uses {used}; the graded version {spec.rule()} "
            "(judged from the code it can reach in this notebook, as the grader judges it)"
        )
    if seed is None:
        seed = secrets.randbelow(2**31)
    verdict = check(spec, DirectRunner(function, namespace), seed, n_random, hidden)
    for line in verdict.summary:
        print(line)
    if not verdict.passed:
        raise CheckError(
            f"{verdict.message}\n(random cases drawn with seed {seed}; "
            f"verify({name!r}, {spec.target}, seed={seed}) repeats them)"
        )
    if verdict.message:  # passed, with something to say (a helper that fails its own check)
        print(verdict.message)
    print(f"{spec.target}: all {verdict.cases} checks passed (seed {seed})")
    return verdict


def _policy_violation(spec) -> str:
    """What the function uses against its policy, read from the cells this IPython session
    ran (the grader reads the notebook's cells the same way); "" outside IPython."""
    if not spec.forbidden:
        return ""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return ""
    history = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    if not isinstance(history, list):
        return ""
    from .policy import function_uses

    cells = [{"cell_type": "code", "source": source} for source in history if source]
    return ", ".join(function_uses(cells, spec.target, spec.forbidden))


__all__ = ["CheckError", "verify"]
