"""One entry of the catalogue of known mistakes (:mod:`cnncourse.checks.misconceptions`).

Its own module so that each assignment's checks can build entries next to the checks that
recognise them (a module's ``MISCONCEPTIONS`` list, e.g. :mod:`cnncourse.checks.capstone`
or :mod:`cnncourse.checks.modern_mistakes`), which the catalogue then gathers, without a
cycle.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

from collections.abc import Callable
from dataclasses import dataclass, field

from .matchers import Mismatch


@dataclass
class Misconception:
    """One known mistake: what a student reads, how it is recognised, where it is taught.

    ``lecture`` is ``(lecture notebook, heading)`` of the section that teaches the rule the
    mistake breaks (the class report links each mistake there).
    """

    key: str
    sentence: str
    lecture: tuple[str, str]
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
