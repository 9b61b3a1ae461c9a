"""Finding a law in data: symbolic regression as a verifiable task (survey §7, RL for scientific discovery).

The prompt shows three points of a hidden law ``y = a*x + b``: ``"3:11,4:13,5:15="``. The model writes an
expression in ``x`` (``"2*x+5"``), and the verifier evaluates it on the shown points AND on held-out points of the
same law (``x = 0, 10, 20``), so an expression must state the law, not just pass through the data. It is the loop of
FunSearch (Romera-Paredes et al., 2024, Nature 625:468) and LLM-SR (Shojaee et al., 2024, arXiv:2404.18400): a
model proposes programs or equations, a program scores them against data, and only what verifies counts.

Expressions are checked without ``eval``: each ``x`` becomes the parenthesised number ``(v)`` and the result goes
through ``rl4lrm.tasks.expression.evaluate`` (integers, + - * / and parentheses). Writing ``x`` as ``(v)`` also
rejects implicit products: ``"2x"`` reads ``"2(3)"``, which the grammar refuses.

Laws come in two disjoint families, fixed by a hash of the law: ``"seen"`` laws are the SFT corpus of the zoo's
``discovery`` model; ``"novel"`` laws (``novel_fraction`` of them) never appear there. In the novel family the
train/test split is by law too, so RL trains on some unseen laws and is measured on others it never trained on.
"""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, extract_answer, read_answer
from rl4lrm.tasks.expression import ExpressionError, evaluate

FAMILIES = ("seen", "novel")
HIDDEN_X = (0, 10, 20)
"""Held-out points every expression is also checked on: the intercept and two far extrapolations."""
SHOWN = 3
"""Consecutive points shown in a prompt."""


def law_text(a: int, b: int) -> str:
    """The canonical expression of ``y = a*x + b``: ``"2*x+5"``, ``"x+5"``, ``"2*x"``, ``"x"``."""
    slope = "x" if a == 1 else f"{a}*x"
    return slope if b == 0 else f"{slope}+{b}"


def substitute(expr: str, x: int) -> str:
    """``expr`` with every ``x`` replaced by ``(x)``: ``substitute("2*x+1", 3) == "2*(3)+1"``."""
    return expr.replace("x", f"({x})")


def evaluate_at(expr: str, x: int, max_chars: int = 64) -> Fraction:
    """The value of ``expr`` at ``x`` (exact, divisions may be fractional); raises ``ExpressionError``."""
    if len(expr) > max_chars:
        raise ExpressionError(f"too long: {len(expr)} characters, limit {max_chars}")
    text = substitute(expr, x)
    try:
        return evaluate(text, max_chars=max_chars * 4, max_value=10**9, integer_steps=False)[0]
    except ExpressionError as err:  # the position is in the substituted text: show it ("9x" became "9(3)")
        raise ExpressionError(f"{err} in {text!r} (x = {x} substituted)") from None


def _unit(text: str) -> float:
    """A hash of ``text`` mapped to [0, 1) (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


@TASKS.register("discovery")
class Discovery(Task):
    """Write the law ``a*x+b`` behind three points; checked on held-out points too."""

    name = "discovery"
    alphabet = "0123456789x*+-/():,="

    def __init__(self, family: str = "seen", max_slope: int = 9, max_intercept: int = 19, novel_fraction: float = 0.3):
        """Validates and stores the settings.

        Args:
            family: ``"seen"`` (the laws SFT shows) or ``"novel"`` (laws it never shows).
            max_slope: slopes ``a`` are in 1..max_slope (1..20).
            max_intercept: intercepts ``b`` are in 0..max_intercept (1..50).
            novel_fraction: share of all laws in the novel family, in (0, 1).
        """
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        check_int("max_slope", max_slope, 1, 20)
        check_int("max_intercept", max_intercept, 1, 50)
        if isinstance(novel_fraction, bool) or not isinstance(novel_fraction, (int, float)):
            raise ValueError(f"novel_fraction must be a number in (0, 1), got {novel_fraction!r}")
        if not 0 < novel_fraction < 1:
            raise ValueError(f"novel_fraction must be in (0, 1), got {novel_fraction!r}")
        self.family, self.max_slope, self.max_intercept = family, max_slope, max_intercept
        self.novel_fraction = float(novel_fraction)
        # Novel laws: half train RL, half are only ever evaluated. Seen laws: the split is by prompt (which window of
        # x), since SFT sees every seen law.
        self.test_fraction = 0.5 if family == "novel" else 0.2
        self.laws = [
            (a, b) for a in range(1, max_slope + 1) for b in range(max_intercept + 1) if self.family_of(a, b) == family
        ]

    def family_of(self, a: int, b: int) -> str:
        """``"novel"`` or ``"seen"``, a pure function of the law's text."""
        return "novel" if _unit("family:" + law_text(a, b)) < self.novel_fraction else "seen"

    def corpus(self) -> set[str]:
        """Every expression string the seen family ever shows (the SFT corpus of answers)."""
        return {
            law_text(a, b)
            for a in range(1, self.max_slope + 1)
            for b in range(self.max_intercept + 1)
            if self.family_of(a, b) == "seen"
        }

    def sample(self, rng: random.Random) -> Problem:
        a, b = rng.choice(self.laws)
        start = rng.randint(1, 6)
        xs = tuple(range(start, start + SHOWN))
        points = tuple((x, a * x + b) for x in xs + HIDDEN_X)
        prompt = ",".join(f"{x}:{y}" for x, y in points[:SHOWN]) + "="
        law = law_text(a, b)
        return Problem(
            question=f"The points (x, y) = {', '.join(map(str, points[:SHOWN]))} follow a law y = f(x). "
            "Write f(x) as an expression in x using integers and + - * / ( ).",
            prompt=prompt,
            answer=law,
            meta={"a": a, "b": b, "law": law, "points": points},
            key=prompt,
        )

    def split_of(self, problem: Problem) -> str:
        """Novel family: by law (RL laws vs evaluation-only laws). Seen family: by prompt."""
        text = problem.meta["law"] if self.family == "novel" else problem.key
        return "test" if _unit("split:" + text) < self.test_fraction else "train"

    def fit(self, problem: Problem, completion: str) -> float:
        """Partial credit: the share of the law's points (shown and held-out) the answer's expression hits exactly;
        0.0 when it does not parse."""
        parsed = extract_answer(completion, self.max_answer_chars)
        if parsed is None or len(parsed) > self.max_answer_chars:
            return 0.0
        hits = 0
        for x, y in problem.meta["points"]:
            try:
                hits += evaluate_at(parsed, x, self.max_answer_chars) == y
            except ExpressionError:
                return 0.0
        return hits / len(problem.meta["points"])

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Correct when the expression gives the exact y at every shown and held-out point."""
        parsed, failed = read_answer(completion, self.max_answer_chars)
        if failed:
            return failed
        points = problem.meta["points"]
        try:
            values = [evaluate_at(parsed, x, self.max_answer_chars) for x, _ in points]
        except ExpressionError as err:
            return Verdict(parsed, False, False, str(err))
        for (x, y), v in zip(points, values):
            if v != y:
                where = "a shown" if (x, y) in points[:SHOWN] else "a held-out"
                return Verdict(parsed, False, True, f"misses {where} point: f({x}) = {v}, not {y}")
        return Verdict(parsed, True, True, "ok")
