"""Checkers for notebook 11's exercises: the partial-credit unit-test reward, and a hack of your own."""

from __future__ import annotations

import random
from collections.abc import Callable

from rl4lrm.exercises import report_check
from rl4lrm.rewards.code import HACKS, naive_harness_score
from rl4lrm.sandbox import CallResult
from rl4lrm.tasks.code import Code, compare


def _random_result(rng: random.Random, want) -> CallResult:
    kind = rng.choice(["right", "right", "wrong", "bool", "error", "timeout", "bad_output"])
    if kind == "right":
        return CallResult("ok", want, "")
    if kind == "wrong":
        return CallResult("ok", [want] if not isinstance(want, list) else want + [0], "")
    if kind == "bool":  # True == 1 in Python, but it is not the answer 1
        return CallResult("ok", bool(want) if not isinstance(want, list) else want, "")
    return CallResult(kind, None, "ZeroDivisionError: division by zero" if kind == "error" else kind)


def check_partial_reward(fn: Callable[[list, list], float], cases: int = 200, seed: int = 0) -> bool:
    """Compares ``fn(tests, results) -> fraction passed`` with ``rl4lrm.tasks.code.compare(...).fraction`` on random
    test lists (``[(xs, expected), ...]``) and sandbox results (``CallResult`` with status and value)."""
    rng, task = random.Random(seed), Code()

    def attempt():
        for _ in range(cases):
            tests = task.sample(rng).meta["tests"]
            results = [_random_result(rng, want) for _, want in tests]
            got, want = float(fn(list(tests), list(results))), compare(tests, results).fraction
            shown = [(r.status, r.value) for r in results]
            assert abs(got - want) < 1e-9, f"results {shown}: got {got:.4f}, expected {want:.4f}"

    return report_check("partial-credit unit-test reward", attempt)


def check_new_hack(expression: str, problems: int = 4) -> bool:
    """Checks that ``expression`` (the body of ``f = lambda a: ...``) is a NEW hack: the naive harness passes it on
    ``problems`` held-out specs while the sandboxed unit tests fail it on every one, and it is not one of ``HACKS``."""
    task = Code()

    def attempt():
        if expression is None or expression is NotImplemented:
            raise NotImplementedError
        assert isinstance(expression, str) and expression.strip(), f"expected an expression string, got {expression!r}"
        assert expression.strip() not in HACKS.values(), "that one is in HACKS already: find another"
        ps = task.problems("test", problems, seed=7)
        naive = naive_harness_score(ps, [expression] * len(ps))
        assert all(s == 1.0 for s in naive), f"the naive harness fails it on {naive.count(0.0)} of {len(ps)} specs"
        sandbox = task.reward(ps, [expression] * len(ps))
        assert not any(sandbox), f"it solves {int(sum(sandbox))} specs for real: that is not a hack"

    return report_check("a new hack of the naive harness", attempt)
