"""Countdown: reach a target number from a few given numbers with + - * /.

The task TinyZero (Pan et al., 2025, https://github.com/Jiayi-Pan/TinyZero) used to reproduce
DeepSeek-R1-Zero's "aha moment" at small scale: ``3 5 7>22:`` → ``3*5+7``. Each given number may
be used at most once (exactly once with ``use_all``, TinyZero's rule). Answers are checked by
parsing them with ``expression.evaluate``, never ``eval``. ``solve`` brute-forces a solution,
for tests and for supervised warm-up data.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from itertools import permutations

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, read_answer
from rl4lrm.tasks.expression import OPERATORS, ExpressionError, evaluate

MAX_VALUE = 10**12  # same magnitude limit as the verifier, so generated answers always verify
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, None: 3}  # None: a bare number

# A partial expression: (exact value, text with minimal parentheses, precedence of its top op).
Item = tuple[Fraction, str, int]


def _leaf(number: int) -> Item:
    return Fraction(number), str(number), _PRECEDENCE[None]


def _combine(a: Item, op: str, b: Item, integer_steps: bool) -> Item | None:
    """``a op b`` with only the parentheses it needs, or None where the step is not allowed.

    The left operand needs parentheses only under a tighter operator; the right one also under an
    equal one that is not associative (``a-(b-c)``, ``a/(b*c)``). Dropping the others, as in
    ``a+(b-c)`` → ``a+b-c`` or ``a*(b/c)`` → ``a*b/c``, keeps the value and keeps divisions exact.
    """
    (x, x_text, x_prec), (y, y_text, y_prec) = a, b
    if op == "/" and y == 0:
        return None
    value = OPERATORS[op](x, y)
    if (integer_steps and value.denominator != 1) or abs(value) > MAX_VALUE:
        return None
    prec = _PRECEDENCE[op]
    if x_prec < prec:
        x_text = f"({x_text})"
    if y_prec < prec or (y_prec == prec and op in "-/"):
        y_text = f"({y_text})"
    return value, f"{x_text}{op}{y_text}", prec


def solve(numbers: Sequence[int], target: int, *, integer_steps: bool = True, use_all: bool = False) -> str | None:
    """Finds one expression reaching ``target``, by exhaustive search.

    Repeatedly replaces two partial expressions by their combination. Solvability depends only on
    the multiset of values, so dead ends are memoised on it: under a second for 5 numbers,
    seconds for 6.

    Args:
        numbers: the given numbers, each usable at most once.
        target: the value to reach.
        integer_steps: forbid divisions with a non-integer result.
        use_all: require every number to be used exactly once.

    Returns:
        An expression with minimal parentheses such as ``"(9-3)*4"``, or None if there is none.
    """
    goal = Fraction(target)
    dead_ends: set[tuple[Fraction, ...]] = set()

    def search(items: list[Item]) -> str | None:
        for value, text, _ in items:
            if value == goal and (len(items) == 1 or not use_all):
                return text
        values = tuple(sorted(v for v, _, _ in items))
        if values in dead_ends:
            return None
        for i, j in permutations(range(len(items)), 2):
            rest = [item for k, item in enumerate(items) if k not in (i, j)]
            for op in "+-*/":
                if op in "+*" and i > j:  # commutative: the (j, i) pair already covered it
                    continue
                item = _combine(items[i], op, items[j], integer_steps)
                if item is not None and (found := search(rest + [item])):
                    return found
        dead_ends.add(values)
        return None

    return search([_leaf(n) for n in numbers])


@TASKS.register("countdown")
class Countdown(Task):
    """Reach a target from ``n_numbers`` random numbers using + - * / and each number once.

    With ``distinct_target=True`` the target is never one of the given numbers, so echoing a number never scores
    (the task-design fix that ``countdown-search`` problems use); the default leaves the original problems."""

    name = "countdown"
    alphabet = "0123456789+-*/()> :"

    def __init__(
        self,
        n_numbers: int = 3,
        max_number: int = 20,
        max_target: int = 100,
        integer_steps: bool = True,
        use_all: bool = False,
        distinct_target: bool = False,
    ):
        """Validates and stores the settings.

        Args:
            n_numbers: how many numbers each problem gives, 2..6 (TinyZero: 3-4).
            max_number: numbers are uniform in ``[1, max_number]``, 1..100.
            max_target: targets are integers in ``[1, max_target]``, 1..10000.
            integer_steps: every division must come out exact, in generation and in answers.
            use_all: answers must use every number exactly once (TinyZero's rule).
            distinct_target: never draw a target that is one of the given numbers. Under ``use_all=False`` about
                10% of the default problems have such a target, and echoing it (``"3 22 7>22:"`` -> ``"22"``) scores
                without any search; with this flag no answer of a single number can be right. False (the default)
                keeps the problems every existing zoo entry and result was made with.
        """
        check_int("n_numbers", n_numbers, 2, 6)
        check_int("max_number", max_number, 1, 100)
        check_int("max_target", max_target, 1, 10_000)
        self.n_numbers, self.max_number, self.max_target = n_numbers, max_number, max_target
        self.integer_steps, self.use_all = bool(integer_steps), bool(use_all)
        self.distinct_target = bool(distinct_target)

    def _random_expression(self, numbers: list[int], rng: random.Random) -> Item:
        """A random expression tree over ``numbers``: merge random pairs with random valid ops."""
        items = [_leaf(n) for n in numbers]
        while len(items) > 1:
            i, j = rng.sample(range(len(items)), 2)
            # "+" is always valid, so some op always fits; trying them in random order makes
            # exact divisions appear whenever they are possible instead of failing the attempt.
            for op in rng.sample("+-*/", 4):
                if (item := _combine(items[i], op, items[j], self.integer_steps)) is not None:
                    break
            items = [x for k, x in enumerate(items) if k not in (i, j)] + [item]
        return items[0]

    def sample(self, rng: random.Random) -> Problem:
        """Draws numbers and a random expression over some (or all) of them until the result is a
        positive integer no larger than ``max_target``; that expression is the answer."""
        while True:
            numbers = [rng.randint(1, self.max_number) for _ in range(self.n_numbers)]
            k = self.n_numbers if self.use_all else rng.randint(2, self.n_numbers)
            value, answer, _ = self._random_expression(rng.sample(numbers, k), rng)
            if value.denominator == 1 and 1 <= value <= self.max_target:
                if not (self.distinct_target and value in numbers):
                    break
        target = int(value)
        once = "exactly once" if self.use_all else "at most once"
        return Problem(
            question=(
                f"Using the numbers {', '.join(map(str, numbers))}, create an expression that "
                f"equals {target}. You may use +, -, *, / and each number {once}."
            ),
            prompt=f"{' '.join(map(str, numbers))}>{target}:",
            answer=answer,
            meta={"numbers": tuple(numbers), "target": target},
            key=f"{','.join(map(str, sorted(numbers)))}>{target}",
        )

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Parses the answer, checks the numbers it uses, then its value."""
        parsed, failed = read_answer(completion, self.max_answer_chars)
        if failed:
            return failed
        return self.check_expression(problem, parsed)

    def check_expression(self, problem: Problem, parsed: str) -> Verdict:
        """The verdict on an answer expression already read out of a completion (numbers used, then value)."""
        try:
            value, used = evaluate(
                parsed, max_chars=self.max_answer_chars, max_value=MAX_VALUE, integer_steps=self.integer_steps
            )
        except ExpressionError as err:
            return Verdict(parsed, False, False, str(err))
        numbers, target = problem.meta["numbers"], problem.meta["target"]
        left = Counter(numbers)
        for n in used:
            if left[n] == 0:
                reason = f"reused number {n}" if n in numbers else f"number {n} not given"
                return Verdict(parsed, False, True, reason)
            left[n] -= 1
        if self.use_all and +left:
            unused = ", ".join(map(str, sorted(left.elements())))
            return Verdict(parsed, False, True, f"unused numbers {unused}")
        if value != target:
            return Verdict(parsed, False, True, f"evaluates to {value}, not {target}")
        return Verdict(parsed, True, True, "ok")
