"""One entry of the catalogue of known mistakes (:mod:`cnncourse.checks.misconceptions`).

Its own module so that each assignment's checks can build entries (e.g.
:mod:`cnncourse.checks.modern_mistakes`) that the catalogue then gathers, without a cycle.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

from collections.abc import Callable
from dataclasses import dataclass, field

from .matchers import Mismatch


@dataclass
class Misconception:
    """One known mistake."""

    key: str
    sentence: str
    mutant: Callable | None = None  # (spec, config, args, kwargs) -> matcher or None
    predicate: Callable | None = None  # (spec, config, got, mismatch) -> bool
    variant: Callable | None = None  # (spec, config) -> list of configs, or []
    applies_to: tuple[str, ...] = field(default_factory=tuple)

    def recognises(self, spec, config, args, kwargs, got, mismatch: Mismatch | None) -> bool:
        if self.predicate is not None and self.predicate(spec, config, got, mismatch):
            return True
        if self.mutant is not None:
            expected = self.mutant(spec, config, args, kwargs)
            if expected is not None and expected.mismatch(got, spec.outputs) is None:
                return True
        return False

    def variants(self, spec, config) -> list[dict]:
        return self.variant(spec, config) if self.variant is not None else []
