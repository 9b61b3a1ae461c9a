"""Multi-digit addition: the smallest task where a char-level model has to learn to carry.

``"12+34="`` → ``"46"``. It trains in minutes on a CPU, which makes it the lab's "hello world"
for watching RL move a reward curve before moving on to Countdown.
"""

from __future__ import annotations

import random
import re

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, extract_answer

# [0-9], not \d: \d also matches non-ASCII digits such as "٤٦", which int() would accept.
_INTEGER = re.compile(r"[+-]?[0-9]+")


@TASKS.register("addition")
class Addition(Task):
    """Add two uniformly random non-negative integers of up to ``digits`` digits each."""

    name = "addition"
    alphabet = "0123456789+="

    def __init__(self, digits: int = 2):
        check_int("digits", digits, 1, 9)
        self.digits = digits

    def sample(self, rng: random.Random) -> Problem:
        high = 10**self.digits - 1
        a, b = rng.randint(0, high), rng.randint(0, high)
        return Problem(
            question=f"What is {a} + {b}?",
            prompt=f"{a}+{b}=",
            answer=str(a + b),
            meta={"a": a, "b": b},
            key=f"{a}+{b}",
        )

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Strict check: the answer must be a bare integer ("46 is it" is not well formed)."""
        parsed = extract_answer(completion, self.max_answer_chars)
        if parsed is None:
            return Verdict(None, False, False, "no answer")
        if len(parsed) > self.max_answer_chars:
            return Verdict(parsed, False, False, "too long")
        if not _INTEGER.fullmatch(parsed):
            return Verdict(parsed, False, False, "not an integer")
        correct = int(parsed) == problem.meta["a"] + problem.meta["b"]
        return Verdict(parsed, correct, True, "ok" if correct else "wrong value")
