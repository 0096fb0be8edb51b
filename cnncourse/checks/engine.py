"""Run a function's check cases, shrink a failure, diagnose it, and write the message.

One description per graded function (a :class:`Spec`) serves two paths:

* **visible checks** in the notebook: :func:`cnncourse.checks.verify` calls the student's
  function directly (:class:`DirectRunner`) on the reference example and on configurations
  drawn at run time;
* **trusted verdicts** while autograding: the grader draws its own cases, sends their inputs
  into the kernel and gets back what the function returned (its own runner, same
  interface); everything below runs in the grader's process.

A :class:`Runner` turns a batch of :class:`Case` objects into *outcomes*: the plain-data
dicts of :func:`cnncourse.checks.calls.call`.
"""

from __future__ import annotations

__tracebackhide__ = True  # IPython leaves these frames out of a failing check's traceback

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import calls, channel
from .matchers import Mismatch

MAX_SHRINK_ROUNDS = 25


@dataclass(frozen=True)
class Case:
    """One call of the function under test.

    ``config`` holds small integers and words (shapes, stride, pad, mode); ``seed`` draws the
    input arrays for it. An *anchor* (a published reference example) has ``anchor`` set to
    its index in :meth:`Spec.anchors` and builds its inputs itself.
    """

    config: tuple  # sorted (key, value) pairs, hashable
    seed: int
    label: str = "random"
    anchor: int | None = None

    @property
    def params(self) -> dict:
        return dict(self.config)


def make_case(config: dict, seed: int, label: str = "random") -> Case:
    return Case(tuple(sorted(config.items())), int(seed), label)


def derived_seed(*parts) -> int:
    """A 32-bit seed from any parts (stable across processes and runs)."""
    text = json.dumps([str(p) for p in parts])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


@dataclass
class Anchor:
    """A published example: fixed inputs and a few familiar numbers to print."""

    label: str
    build: Callable[[], tuple[tuple, dict]]  # -> (args, kwargs)
    show: Callable[[object], list[str]] | None = None  # lines printed about the result


def one_smaller(config: dict, floors: tuple[tuple[str, int], ...], valid=None) -> list[dict]:
    """Shrinking candidates: ``config`` with one key lowered by 1, for each ``(key, floor)``
    in order whose value is above its floor (and, if given, that ``valid`` accepts)."""
    out = []
    for key, floor in floors:
        if config[key] > floor:
            smaller = dict(config, **{key: config[key] - 1})
            if valid is None or valid(smaller):
                out.append(smaller)
    return out


class Spec:
    """How to check one graded function. Subclasses fill in the hooks below.

    Attributes:
        name: the spec's name (``"conv_forward"``); ``verify(name, fn)`` uses it.
        target: the name of the function in the notebook.
        forbidden: the library-call policy (see :data:`channel.POLICY_MODULES`).
        family: what it computes, for :mod:`cnncourse.checks.misconceptions`
            (``conv_forward_fast`` is in the ``conv_forward`` family).
        arg_names: the parameters' names, for messages.
        n_random: random configurations per check (on top of the required ones).
    """

    name = ""
    target = ""
    forbidden: tuple[str, ...] = ()
    family = ""  # the function this one computes (conv_forward_fast: "conv_forward")
    arg_names: tuple[str, ...] = ()
    n_random = 10
    outputs = "the output"
    # (configuration, seconds): the function must be at least this fast on it (vectorised
    # versions); the best of three calls counts
    speed: tuple[dict, float] | None = None
    # an adapter of adapters.ADAPTERS for targets that take or return framework objects
    # (the target is then any notebook value, e.g. a trained model, not only a function)
    adapter: str | None = None
    # graded functions of the same notebook this one calls (spec names): when one of them
    # fails its own check, this one is checked again with the checks' answers in its place,
    # so that one bug costs its own points once and the message names it
    helpers: tuple[str, ...] = ()
    # graded functions it calls whose answers cannot be given from a table (their inputs are
    # float intermediate values): when this one fails and one of them fails its own check,
    # the message names it first (the points are not given back)
    calls: tuple[str, ...] = ()

    # -- hooks -------------------------------------------------------------------------
    def anchors(self) -> list[Anchor]:
        return []

    def required(self) -> list[dict]:
        """Configurations checked every time (the cases public versions get wrong)."""
        return []

    def hidden_required(self) -> list[dict]:
        """More configurations for the hidden tests and the grader (larger, rarer ones)."""
        return []

    def draw(self, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def inputs(self, config: dict, rng: np.random.Generator) -> tuple[tuple, dict]:
        raise NotImplementedError

    def expect(self, config: dict, args: tuple, kwargs: dict):
        """A matcher for the correct result (see :mod:`cnncourse.checks.matchers`)."""
        raise NotImplementedError

    def describe(self, config: dict) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))

    def smaller(self, config: dict) -> list[dict]:
        """Candidate configurations one step smaller than ``config`` (for shrinking)."""
        return []

    def helper_table(self, helper: str, args: tuple, kwargs: dict) -> dict:
        """The checks' answers for every call of ``helper`` (a spec name of
        :attr:`helpers`) that this function makes on ``args``: ``{"kind", "keys", "values"}``
        (see :func:`cnncourse.checks.calls.table_helper`)."""
        raise NotImplementedError

    def rule(self) -> str:
        """The library-call policy in words, for messages."""
        if not self.forbidden:
            return ""
        names = [
            "numpy's stride tricks (as_strided, sliding_window_view)"
            if f == "stride_tricks"
            else "the course's helper package (cnncourse)"
            if f == "cnncourse"
            else f
            for f in self.forbidden
        ]
        return "may not use " + ", ".join(names)

    # -- derived -----------------------------------------------------------------------
    def build(self, case: Case) -> tuple[tuple, dict]:
        if case.anchor is not None:
            return self.anchors()[case.anchor].build()
        return self.inputs(case.params, np.random.default_rng(case.seed))

    def cases(self, seed: int, n_random: int | None = None, hidden: bool = False) -> list[Case]:
        """Anchors, the required configurations (with ``hidden``, the hidden ones too), then
        ``n_random`` configurations drawn with ``seed``."""
        found = [Case((), 0, a.label, anchor=i) for i, a in enumerate(self.anchors())]
        required = self.required() + (self.hidden_required() if hidden else [])
        for i, config in enumerate(required):
            found.append(make_case(config, derived_seed(seed, "required", i), "required"))
        rng = np.random.default_rng(seed)
        for i in range(self.n_random if n_random is None else n_random):
            found.append(make_case(self.draw(rng), derived_seed(seed, "random", i)))
        return found


# ----------------------------------------------------------------------- runners


class Runner:
    """Turns cases into outcomes (``calls.call`` dicts, or ``{"status": "missing"}``).

    ``substitutes`` (one dict per case, helper name -> table) makes the named helpers of the
    notebook answer from the checks' tables during those calls."""

    def run(
        self, spec: Spec, cases: Sequence[Case], substitutes: list[dict] | None = None
    ) -> list[dict]:
        raise NotImplementedError

    def timed(self, spec: Spec, case: Case) -> tuple[float, dict]:
        """The wall time, in seconds, of one call on ``case``, and its outcome (judged by
        the caller: a fast wrong answer is not fast)."""
        raise NotImplementedError


class DirectRunner(Runner):
    """Calls the function in this process (the visible checks)."""

    def __init__(self, function, namespace: dict | None = None):
        self.function = function
        self.namespace = namespace or {}

    def run(
        self, spec: Spec, cases: Sequence[Case], substitutes: list[dict] | None = None
    ) -> list[dict]:
        outcomes = []
        # the helpers the function calls live in its module (a notebook's namespace)
        home = getattr(self.function, "__globals__", self.namespace)
        for i, case in enumerate(cases):
            if calls.is_missing(self.function, spec.adapter):
                outcomes.append({"status": "missing"})
                continue
            args, kwargs = spec.build(case)
            with calls.substituted(home, substitutes[i] if substitutes else None):
                outcomes.append(
                    calls.call_target(
                        self.namespace, self.function, spec.adapter, args, kwargs, spec.forbidden
                    )
                )
        return outcomes

    def helper(self, name: str) -> DirectRunner:
        """A runner for the notebook's function ``name`` (a helper of this one)."""
        home = getattr(self.function, "__globals__", self.namespace)
        return DirectRunner(home.get(name), self.namespace)

    def timed(self, spec: Spec, case: Case) -> tuple[float, dict]:
        """This process's CPU time for one call (other jobs on the machine do not count)."""
        import time

        args, kwargs = spec.build(case)
        start = time.process_time()
        outcome = calls.call_target(
            self.namespace, self.function, spec.adapter, args, kwargs, spec.forbidden
        )
        return time.process_time() - start, outcome


# ------------------------------------------------------------------------ verdicts

CHECK_FAILED = "CheckFailed"
FORBIDDEN = "ForbiddenCall"
MISSING = "MissingFunction"


@dataclass
class Failure:
    """One failing case: what went wrong, in plain words."""

    case: Case
    problem: str  # CHECK_FAILED, FORBIDDEN or MISSING
    kind: str  # mismatch kind, "raised", "modified", "missing" or "forbidden"
    message: str
    details: list[str] = field(default_factory=list)
    mismatch: Mismatch | None = None
    value: object = None  # everything the function returned (plain data)


@dataclass
class Verdict:
    """The result of checking one function: passed, or the message saying why not."""

    spec: str
    passed: bool
    problem: str = ""
    message: str = ""
    cases: int = 0
    failed: int = 0
    cause: str = ""  # the key of the recognised misconception, if any
    summary: list[str] = field(default_factory=list)  # familiar numbers of the anchors

    def _ipython_display_(self) -> None:
        """Shown as the last line of a test cell: nothing (verify printed the summary)."""


def _modified(spec: Spec, before, after) -> str | None:
    """Name of the first argument the call changed (before/after are plain data)."""
    from .matchers import _equal

    (args_b, kwargs_b), (args_a, kwargs_a) = before, after
    names = list(getattr(spec, "arg_names", ()))
    for i, (b, a) in enumerate(zip(args_b, args_a, strict=False)):
        if not _equal(b, a):
            return names[i] if i < len(names) else f"argument {i + 1}"
    for key in kwargs_b:
        if not _equal(kwargs_b[key], kwargs_a.get(key)):
            return key
    return None


def judge(spec: Spec, case: Case, outcome: dict) -> Failure | None:
    """Compare one outcome with the oracle; ``None`` when the case passes."""
    status = outcome.get("status")
    if status == "channel":  # the autograder could not read what the kernel returned
        return Failure(case, outcome["problem"], "channel", outcome["message"])
    if status == "missing":
        return Failure(
            case,
            MISSING,
            "missing",
            f"{spec.target} is not defined: run the cell that defines it (and keep its name)",
        )
    if outcome.get("forbidden"):
        used = ", ".join(outcome["forbidden"])
        return Failure(
            case,
            FORBIDDEN,
            "forbidden",
            f"{FORBIDDEN}: {spec.target} used {used}; the graded version {spec.rule()}",
        )
    if status == "raised":
        error = outcome.get("error") or {}
        where = error.get("where") or ""
        kind, text = error.get("type", "an error"), error.get("message", "")
        message = f"{spec.target} raised {kind}: {text}"
        if kind == "NotImplementedError" and not text.strip():
            # the release's placeholder: say so rather than print an empty reason
            message = (
                f"{spec.target} raised NotImplementedError: the exercise is not done yet "
                "(write your code in place of `raise NotImplementedError()`)"
            )
        return Failure(case, CHECK_FAILED, "raised", message, [where] if where else [])
    if status != "returned":
        return Failure(case, CHECK_FAILED, "malformed", f"no result for {spec.target}")
    args, kwargs = spec.build(case)
    found = spec.expect(case.params, args, kwargs).mismatch(outcome.get("value"), spec.outputs)
    if found is not None:
        return Failure(
            case, CHECK_FAILED, found.kind, found.message, found.details, found, outcome["value"]
        )
    before = channel.normalize([list(args), dict(kwargs)])
    after = outcome.get("args_after")
    if type(after) is list and len(after) == 2:
        changed = _modified(spec, before, after)
        if changed is not None:
            return Failure(
                case,
                CHECK_FAILED,
                "modified",
                f"{spec.target} changed its input {changed} in place: work on new arrays "
                "(or a copy)",
            )
    return None


def _size(config: dict) -> tuple:
    return (sum(v for v in config.values() if isinstance(v, int)), sorted(config.items()))


def shrink(spec: Spec, runner: Runner, failure: Failure, base_seed: int) -> Failure:
    """The smallest failing case reachable from ``failure`` by one-step reductions.

    Each round tries every one-step smaller configuration (one batch: one round trip to a
    kernel) and keeps the smallest that fails in the same way.
    """
    if failure.case.anchor is not None or failure.kind in ("missing", "forbidden", "channel"):
        return failure
    current = failure
    for round_ in range(MAX_SHRINK_ROUNDS):
        candidates = sorted(spec.smaller(current.case.params), key=_size)
        if not candidates:
            break
        cases = [
            make_case(c, derived_seed(base_seed, "shrink", round_, i), "shrunk")
            for i, c in enumerate(candidates)
        ]
        outcomes = runner.run(spec, cases)
        smaller = None
        for case, outcome in zip(cases, outcomes, strict=True):
            found = judge(spec, case, outcome)
            if found is not None and found.kind == current.kind:
                smaller = found
                break
        if smaller is None:
            break
        current = smaller
    return current


def _recognised(spec: Spec, failure: Failure) -> list:
    """The catalogue entries whose mutant or predicate matches ``failure``'s value."""
    from . import misconceptions

    if failure.kind == "raised":
        return []
    args, kwargs = spec.build(failure.case)
    params = failure.case.params
    return [
        entry
        for entry in misconceptions.applicable(spec)
        if entry.recognises(spec, params, args, kwargs, failure.value, failure.mismatch)
    ]


def diagnose(
    spec: Spec, runner: Runner, failure: Failure, base_seed: int, others: tuple = ()
) -> list[str]:
    """The keys of the misconceptions that explain ``failure`` (most likely first), or [].

    A small case can make two mistakes give the same value (the shrunk one most of all):
    then the mistakes that also explain the most of the ``others`` (the other failing
    cases of the check) are kept, and when they tie, every one of them is named.
    """
    from . import misconceptions

    if failure.kind in ("missing", "forbidden", "modified", "channel"):
        return []
    found = _recognised(spec, failure)
    if len(found) > 1 and others:
        explained = [{e.key for e in _recognised(spec, other)} for other in others]
        score = {e.key: sum(e.key in keys for keys in explained) for e in found}
        best = max(score.values())
        found = [entry for entry in found if score[entry.key] == best]
    if found:
        return [entry.key for entry in found]
    pending = []  # (misconception, variant cases)
    if failure.case.anchor is None:
        for entry in misconceptions.applicable(spec):
            variants = entry.variants(spec, failure.case.params)
            if variants:
                pending.append((entry, variants))
    if not pending:
        return []
    cases = []
    for j, (_, variants) in enumerate(pending):
        for i, config in enumerate(variants):
            cases.append(make_case(config, derived_seed(base_seed, "diagnose", j, i), "variant"))
    outcomes = iter(runner.run(spec, cases))
    case_iter = iter(cases)
    for entry, variants in pending:
        passes = [judge(spec, next(case_iter), next(outcomes)) is None for _ in variants]
        if all(passes):
            return [entry.key]
    return []


def check(
    spec: Spec,
    runner: Runner,
    seed: int,
    n_random: int | None = None,
    hidden: bool = False,
) -> Verdict:
    """Run every case of ``spec``; on failure shrink, diagnose and explain.

    ``hidden`` adds the spec's hidden configurations (the hidden tests and the grader).
    """
    cases = spec.cases(seed, n_random, hidden)
    outcomes = runner.run(spec, cases)
    summary: list[str] = []
    failures = []
    for case, outcome in zip(cases, outcomes, strict=True):
        found = judge(spec, case, outcome)
        if found is None:
            if case.anchor is not None:
                show = spec.anchors()[case.anchor].show
                if show is not None:
                    summary += show(outcome.get("value"))
        else:
            failures.append(found)
    verdict = Verdict(spec.name, not failures, cases=len(cases), failed=len(failures))
    verdict.summary = summary
    if not failures and spec.speed is not None:
        return _speed(spec, runner, seed, verdict)
    if not failures:
        return verdict
    # Policy and missing functions first; otherwise the smallest failing drawn case.
    first = next((f for f in failures if f.kind in ("forbidden", "missing", "channel")), None)
    if first is None and spec.helpers:
        culprits = _failing_helpers(spec, runner, seed)
        if culprits:
            return _with_helpers_answered(spec, runner, seed, cases, verdict, culprits)
    if first is None:
        drawn = [f for f in failures if f.case.anchor is None]
        first = min(drawn, key=lambda f: _size(f.case.params)) if drawn else failures[0]
    smallest = shrink(spec, runner, first, seed)
    causes = diagnose(spec, runner, smallest, seed, others=tuple(failures))
    verdict.problem = smallest.problem
    verdict.cause = causes[0] if causes else ""
    verdict.message = explain(spec, smallest, causes, len(failures), len(cases), first)
    if spec.calls and first.kind not in ("forbidden", "missing", "channel"):
        culprits = _failing_helpers(spec, runner, seed, spec.calls)
        if culprits:
            names = " and ".join(culprits)
            why = "; ".join(culprits.values())
            verdict.message = (
                f"{spec.target}: it calls your {names}, which fails its own check ({why}); "
                f"fix {names} first, then run this check again.\n" + verdict.message
            )
    return verdict


def _helper_runner(runner: Runner, name: str) -> Runner:
    make = getattr(runner, "helper", None)
    return make(name) if make is not None else runner


def _failing_helpers(
    spec: Spec, runner: Runner, seed: int, names: tuple[str, ...] | None = None
) -> dict[str, str]:
    """The helpers of ``spec`` (or the specs ``names``) that fail their own checks: name ->
    first line of why."""
    from .registry import get_spec

    found = {}
    for name in spec.helpers if names is None else names:
        helper = get_spec(name)
        verdict = check(helper, _helper_runner(runner, helper.target), seed, n_random=3)
        # a helper that is not defined is no culprit: a function that calls it raises
        # NameError, and its own message says so
        if not verdict.passed and verdict.problem != MISSING:
            found[helper.target] = verdict.message.splitlines()[0] if verdict.message else ""
    return found


def _with_helpers_answered(
    spec: Spec,
    runner: Runner,
    seed: int,
    cases: list[Case],
    verdict: Verdict,
    culprits: dict[str, str],
) -> Verdict:
    """Check ``spec`` again with the checks' answers in place of the failing helpers: the
    function earns its points when it is right given correct helpers, and the message names
    the helpers either way."""
    from .registry import get_spec

    specs = {get_spec(n).target: n for n in spec.helpers}
    tables = []
    for case in cases:
        args, kwargs = spec.build(case)
        tables.append(
            {target: spec.helper_table(specs[target], args, kwargs) for target in culprits}
        )
    outcomes = runner.run(spec, cases, substitutes=tables)
    failures = [f for case, o in zip(cases, outcomes, strict=True) if (f := judge(spec, case, o))]
    names = " and ".join(culprits)
    why = "; ".join(
        line if line.startswith(f"{name}:") else f"{name}: {line}"
        for name, line in culprits.items()
    )
    if not failures:
        verdict.passed = True
        verdict.message = (
            f"{spec.target} is right when {names} answers correctly: with the checks' answers "
            f"in place of your {names}, all {len(cases)} checks passed. Your {names} fails its "
            f"own check ({why}); {spec.target} fails in your notebook because of it."
        )
        return verdict
    verdict.failed = len(failures)
    smallest = min(failures, key=lambda f: _size(f.case.params) if f.case.anchor is None else ())
    verdict.problem = smallest.problem
    verdict.message = (
        explain(spec, smallest, [], len(failures), len(cases), smallest)
        + f"\n(this is with the checks' answers in place of your {names}, which fails its own "
        f"check too: {why})"
    )
    return verdict


SPEED_REPEATS = 3


def _speed(spec: Spec, runner: Runner, seed: int, verdict: Verdict) -> Verdict:
    """The speed goal: the best of :data:`SPEED_REPEATS` timed calls, each on fresh inputs
    and each judged like any case (a cache or a shape shortcut that returns a wrong answer
    fails; the same inputs are never timed twice)."""
    assert spec.speed is not None
    config, limit = spec.speed
    best = float("inf")
    for i in range(SPEED_REPEATS):
        case = make_case(config, derived_seed(seed, "speed", i), "speed")
        seconds, outcome = runner.timed(spec, case)
        failure = judge(spec, case, outcome)
        if failure is not None:
            verdict.passed = False
            verdict.problem = failure.problem
            verdict.failed = 1
            verdict.message = (
                f"{spec.target} is wrong on the timed case ({spec.describe(config)}): "
                f"{failure.message}"
            )
            return verdict
        best = min(best, seconds)
    verdict.summary.append(f"{spec.target} took {best:.3f} CPU s on {spec.describe(config)}")
    if best > limit:
        verdict.passed = False
        verdict.problem = CHECK_FAILED
        verdict.message = (
            f"{spec.target} is too slow: {best:.2f} CPU s on {spec.describe(config)}; it "
            f"must take under {limit} s (no Python loop over examples or output positions)"
        )
    return verdict


def explain(
    spec: Spec,
    failure: Failure,
    causes: list[str],
    n_failed: int,
    n_cases: int,
    original: Failure,
) -> str:
    """The message a student reads: cause first, then the case, then a small slice."""
    from . import misconceptions

    if failure.kind in ("forbidden", "missing", "channel"):
        return failure.message
    lines = []
    sentences = [misconceptions.CATALOGUE[key].sentence for key in causes]
    if len(sentences) == 1:
        lines.append(f"{spec.target}: {sentences[0]}")
        lines.append(f"({failure.message})")
    elif sentences:
        lines.append(f"{spec.target}: one of these mistakes: {'; or '.join(sentences)}")
        lines.append(f"({failure.message})")
    else:
        lines.append(f"{spec.target}: {failure.message}")
    where = (
        spec.anchors()[failure.case.anchor].label
        if failure.case.anchor is not None
        else spec.describe(failure.case.params)
    )
    shrunk = " (the smallest failing case found)" if failure is not original else ""
    lines.append(f"case: {where}{shrunk}")
    lines.append(f"{n_failed} of {n_cases} cases failed.")
    lines += [d for d in failure.details if d]
    return "\n".join(lines)
