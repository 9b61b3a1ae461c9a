"""Multi-digit addition: the smallest task where a char-level model has to learn to carry.

``"12+34="`` → ``"46"``. It trains in minutes on a CPU, which makes it the lab's "hello world"
for watching RL move a reward curve before moving on to Countdown. ``min_digits`` makes a variant with
longer operands only (``Addition(digits=3, min_digits=3)``: 100..999), the out-of-distribution test of a
model fine-tuned on 2 digits (notebook 06).
"""

from __future__ import annotations

import random
import re

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, read_answer

# [0-9], not \d: \d also matches non-ASCII digits such as "٤٦", which int() would accept.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def column_steps(a: int, b: int) -> list[str]:
    """The columns of ``a + b`` written out, units first, each ``digit+digit(+carry)=sum``: ``(57, 68)`` →
    ``["7+8=15", "5+6+1=12"]``. The written reasoning of the addition tasks."""
    steps, carry = [], 0
    for i in range(max(len(str(a)), len(str(b)))):
        da, db = a // 10**i % 10, b // 10**i % 10
        total = da + db + carry
        steps.append(f"{da}+{db}" + (f"+{carry}" if carry else "") + f"={total}")
        carry = total // 10
    return steps


@TASKS.register("addition")
class Addition(Task):
    """Add two non-negative integers, each uniform among those with ``min_digits``..``digits`` digits."""

    name = "addition"
    alphabet = "0123456789+="

    def __init__(self, digits: int = 2, min_digits: int = 1):
        """Validates and stores the settings.

        Args:
            digits: most digits of an operand, 1..9.
            min_digits: fewest digits of an operand, 1..``digits`` (1 counts 0..9 as one-digit numbers, so
                the default draws uniformly from 0..10**digits - 1).
        """
        check_int("digits", digits, 1, 9)
        check_int("min_digits", min_digits, 1, digits)
        self.digits, self.min_digits = digits, min_digits

    def sample(self, rng: random.Random) -> Problem:
        low, high = (0 if self.min_digits == 1 else 10 ** (self.min_digits - 1)), 10**self.digits - 1
        a, b = rng.randint(low, high), rng.randint(low, high)
        return Problem(
            question=f"What is {a} + {b}?",
            prompt=f"{a}+{b}=",
            answer=str(a + b),
            meta={"a": a, "b": b},
            key=f"{a}+{b}",
        )

    def worked(self, problem: Problem) -> tuple[str, str]:
        """Column addition written out, units first, with the carry: ``"57+68:"`` → ``"7+8=15;5+6+1=12;125"``.

        Each column is ``digit+digit(+carry)=sum`` (``column_steps``); the last field is the answer. The prompt ends
        in ``":"``, not ``"="``, so the plain prompt still asks for the bare answer.
        """
        a, b = problem.meta["a"], problem.meta["b"]
        return f"{a}+{b}:", ";".join([*column_steps(a, b), str(a + b)])

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Strict check: the answer must be a bare integer ("46 is it" is not well formed)."""
        parsed, failed = read_answer(completion, self.max_answer_chars)
        if failed:
            return failed
        if not _INTEGER.fullmatch(parsed):
            return Verdict(parsed, False, False, "not an integer")
        correct = int(parsed) == problem.meta["a"] + problem.meta["b"]
        return Verdict(parsed, correct, True, "ok" if correct else "wrong value")
