"""Addition that may think first: the lab's task for efficient reasoning (notebook 14).

One prompt, two ways to answer. ``"57+68="`` → ``"#125"`` answers at once (no thinking); ``"7+8=15;5+6+1=12#125"``
writes the column additions first (``column_steps``), then ``#``, then the answer. Everything before the first ``#``
is the thinking, everything after the last ``#`` the answer, as ``<think>...</think>`` and the final answer are in
R1-style models. Difficulty is explicit: each problem adds two ``d``-digit numbers with ``d`` uniform in
``min_digits..max_digits``, and the longer the numbers, the harder it is for a tiny model to get every carry right
in one go, while each written column stays a one-digit sum. A worked answer may also go over the columns a second
time after ``|`` (``recheck``), a re-check that changes nothing. A model that re-checks, or thinks where answering at
once is as good, overthinks (tokens spent for nothing); one that answers at once where thinking would have been right
underthinks (accuracy lost). Chen et al. (2024, "Do NOT Think That Much for 2+3=?", arXiv:2412.21187) measured the
first on o1-like models; AdaptThink (Zhang et al., 2025, arXiv:2505.13417) trains the choice between the two modes,
which is what this task lets RL do.

The verifier reads only the answer after the last ``#``; ``thinking`` and ``thinks`` say what came before it.
"""

from __future__ import annotations

import hashlib
import random
import re

from rl4lrm.tasks.addition import column_steps
from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, read_after_mark, read_answer

_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only (\d also matches other scripts' digits)
ANSWER_MARK = "#"
"""Ends the thinking and starts the answer (budget forcing writes it to stop a model thinking)."""
RECHECK_MARK = "|"
"""Starts a second pass over the columns: redundant thinking."""


def thinking(completion: str) -> str:
    """The thinking part of a completion: what precedes the first ``#`` (all of it when there is none)."""
    return completion.partition(ANSWER_MARK)[0]


def thinks(completion: str) -> bool:
    """Whether a completion wrote anything before answering."""
    return bool(thinking(completion).strip())


def rechecks(completion: str) -> bool:
    """Whether a completion's thinking went over the columns again (``|`` before the answer mark)."""
    return RECHECK_MARK in thinking(completion)


@TASKS.register("thinking")
class ThinkingAddition(Task):
    """Add two ``d``-digit numbers, ``d`` uniform in ``min_digits..max_digits``, answering at once (``"#125"``) or
    after the column additions (``"7+8=15;5+6+1=12#125"``)."""

    name = "thinking"
    alphabet = "0123456789+=;#|"

    def __init__(self, min_digits: int = 2, max_digits: int = 4, recheck: float = 0.5):
        """Validates and stores the settings.

        Args:
            min_digits: the easiest problems add two numbers of this many digits, 1..6 (1-digit operands are 0..9,
                ``d``-digit ones ``10**(d-1)..10**d - 1``). There are only 100 one-digit problems, so a pool of
                thousands holds few of them: 2 keeps the easy level as common as the others.
            max_digits: the hardest problems, ``min_digits``..6.
            recheck: the share of problems whose worked solution goes over the columns twice (``worked``), in
                [0, 1]: the redundant thinking a length reward can remove at no cost in accuracy.
        """
        check_int("min_digits", min_digits, 1, 6)
        check_int("max_digits", max_digits, min_digits, 6)
        if isinstance(recheck, bool) or not isinstance(recheck, (int, float)) or not 0 <= recheck <= 1:
            raise ValueError(f"recheck must be a number in [0, 1], got {recheck!r}")
        self.min_digits, self.max_digits, self.recheck = min_digits, max_digits, float(recheck)

    thinks = staticmethod(thinks)

    def sample(self, rng: random.Random) -> Problem:
        digits = rng.randint(self.min_digits, self.max_digits)
        low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
        a, b = rng.randint(low, high), rng.randint(low, high)
        return Problem(
            question=f"What is {a} + {b}?",
            prompt=f"{a}+{b}=",
            answer=f"{ANSWER_MARK}{a + b}",
            meta={"a": a, "b": b, "digits": digits},
            key=f"{a}+{b}",
        )

    def worked(self, problem: Problem) -> tuple[str, str]:
        """The thinking answer: ``"57+68="`` → ``"7+8=15;5+6+1=12#125"`` (``column_steps``, then the answer), or, for a
        ``recheck`` share of problems (chosen by a hash of the key, so always the same ones), the columns twice with
        ``|`` between the passes: ``"7+8=15;5+6+1=12|7+8=15;5+6+1=12#125"``, a re-check that changes nothing.

        Unlike the other tasks' worked solutions its prompt is the plain prompt itself: a model trained on both
        answers (``SFTConfig.traces``) chooses at its first token whether to think.
        """
        a, b = problem.meta["a"], problem.meta["b"]
        columns = ";".join(column_steps(a, b))
        u = int.from_bytes(hashlib.sha256(f"recheck:{problem.key}".encode()).digest()[:8], "big") / 2**64
        thought = f"{columns}{RECHECK_MARK}{columns}" if u < self.recheck else columns
        return problem.prompt, f"{thought}{ANSWER_MARK}{a + b}"

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Checks the answer: the text after the last ``#`` (or in the last ``<answer>`` tags), a bare integer."""
        if "</answer>" in completion:
            parsed, failed = read_answer(completion, self.max_answer_chars)
        else:
            parsed, failed = read_after_mark(completion, ANSWER_MARK, self.max_answer_chars)
        if failed:
            return failed
        if not _DIGITS.fullmatch(parsed):
            return Verdict(parsed, False, False, "not an integer")
        correct = int(parsed) == problem.meta["a"] + problem.meta["b"]
        return Verdict(parsed, correct, True, "ok" if correct else "wrong value")
