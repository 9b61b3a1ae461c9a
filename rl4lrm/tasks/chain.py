"""Chain arithmetic: a multi-step task whose every intermediate step can be checked.

``"7;+5;*2;-3="`` → ``"12\\n24\\n21"``: start from the first number and apply the operations left to
right (a running total, not operator precedence), writing the running value after each step on
its own line; the last line is the final answer. Because the ground-truth running values are known,
``step_verdicts`` labels every written step, which is what process rewards need: PRM800K's
human step labels (Lightman et al., 2023, "Let's Verify Step by Step", arXiv:2305.20050) and
Math-Shepherd's Monte-Carlo ones (Wang et al., 2024, arXiv:2312.08935) become exact and free here.

Step semantics ("first error", as in PRM800K and Math-Shepherd): step ``i`` (the ``i``-th line) is
checked against the *true* running value after ``i`` operations, never against the model's own
previous line; so a slip that the model later recovers from shows as one wrong step followed by
correct ones. Rewards that follow the first-error convention (``rl4lrm.rewards.dense``) give credit
only to the prefix before the first wrong step: ``first_error(verdicts)``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, extract_answer

_INTEGER = re.compile(r"-?[0-9]{1,6}")  # ASCII digits only; 6 digits keeps int() away from huge strings
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class StepVerdict:
    """One written line of a completion, checked against the true running value.

    ``start``/``end`` are character offsets in the completion (``completion[start:end]`` is the
    line without its newline), so rewards can map a step onto its tokens.
    """

    index: int  # 0-based step number
    start: int
    end: int
    value: int | None  # the integer the line holds; None if it is not a bare integer
    expected: int | None  # the true running value; None for lines past the last step
    correct: bool
    reason: str  # "ok", "wrong value", "not an integer", "extra step"


def first_error(verdicts: list[StepVerdict]) -> int | None:
    """Index of the first wrong step, or None when every written step is correct."""
    return next((v.index for v in verdicts if not v.correct), None)


def _lines(completion: str, max_lines: int) -> list[tuple[int, int]]:
    """(start, end) of the first ``max_lines`` lines, ignoring trailing whitespace of the completion."""
    text_end = len(completion.rstrip())
    spans, pos = [], 0
    while text_end and pos <= text_end and len(spans) < max_lines:
        nl = completion.find("\n", pos, text_end)
        end = text_end if nl < 0 else nl
        spans.append((pos, end))
        if nl < 0:
            break
        pos = nl + 1
    return spans


def _parse(text: str) -> int | None:
    text = text.strip(" \r\t")
    return int(text) if _INTEGER.fullmatch(text) else None


@TASKS.register("chain")
class Chain(Task):
    """Apply ``min_steps``..``max_steps`` random ops (+ - * with an operand in 1..``max_operand``) to a start."""

    name = "chain"
    alphabet = "0123456789+-*;=\n"
    max_answer_chars = 64

    def __init__(self, min_steps: int = 2, max_steps: int = 3, max_operand: int = 5, max_value: int = 30):
        """Validates and stores the settings.

        Args:
            min_steps: fewest operations per problem, 1..8.
            max_steps: most operations per problem, ``min_steps``..8.
            max_operand: start and operands are uniform in ``1..max_operand``, 2..99.
            max_value: every running value stays in ``0..max_value`` (ops that would leave it are
                redrawn), 9..9999, so a tiny char model only meets short numbers.
        """
        check_int("min_steps", min_steps, 1, 8)
        check_int("max_steps", max_steps, min_steps, 8)
        check_int("max_operand", max_operand, 2, 99)
        check_int("max_value", max_value, max(9, max_operand), 9999)
        self.min_steps, self.max_steps = min_steps, max_steps
        self.max_operand, self.max_value = max_operand, max_value

    def sample(self, rng: random.Random) -> Problem:
        value = rng.randint(1, self.max_operand)
        start, ops, values = value, [], []
        for _ in range(rng.randint(self.min_steps, self.max_steps)):
            while True:  # "+1" from a value < max_value or "-1" from one > 0 always fits
                op, operand = rng.choice("+-*"), rng.randint(1, self.max_operand)
                new = _OPS[op](value, operand)
                if 0 <= new <= self.max_value:
                    break
            ops.append((op, operand))
            values.append(new)
            value = new
        body = ";".join([str(start)] + [f"{op}{n}" for op, n in ops])
        words = ", then ".join(
            {"+": "add {}", "-": "subtract {}", "*": "multiply by {}"}[op].format(n) for op, n in ops
        )
        return Problem(
            question=(
                f"Start from {start}, then {words}. Write the running value after each step on its own "
                "line; the last line is the final answer."
            ),
            prompt=body + "=",
            answer="\n".join(map(str, values)),
            meta={"start": start, "ops": tuple(ops), "values": tuple(values)},
            key=body,
        )

    def num_steps(self, problem: Problem) -> int:
        """How many steps (lines) a full solution of ``problem`` writes."""
        return len(problem.meta["values"])

    def step_verdicts(self, problem: Problem, completion: str) -> list[StepVerdict]:
        """Checks each line of a plain-format completion against the true running values.

        Lines past the last step are "extra step" (wrong, so the first error can be an extra line);
        missing steps get no verdict. At most ``len(values) + 1`` lines are read, so an absurdly
        long input costs one ``find`` per line kept. Never raises on any string.

        Returns:
            One ``StepVerdict`` per line read, in order.
        """
        values = problem.meta["values"]
        out = []
        for i, (start, end) in enumerate(_lines(completion, len(values) + 1)):
            value = _parse(completion[start:end])
            expected = values[i] if i < len(values) else None
            if expected is None:
                correct, reason = False, "extra step"
            elif value is None:
                correct, reason = False, "not an integer"
            else:
                correct = value == expected
                reason = "ok" if correct else "wrong value"
            out.append(StepVerdict(i, start, end, value, expected, correct, reason))
        return out

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Checks the final answer only: the last non-blank line (or the last ``<answer>`` tag).

        Well formed means the answer is a bare integer; intermediate lines do not matter here
        (``step_verdicts`` judges them).
        """
        if "</answer>" in completion:
            parsed = extract_answer(completion, self.max_answer_chars)
        else:
            stripped = completion.rstrip()
            parsed = stripped[stripped.rfind("\n") + 1 :].strip() or None
            if parsed is not None and len(parsed) > self.max_answer_chars:
                parsed = parsed[: self.max_answer_chars] + "…"
        if parsed is None:
            return Verdict(None, False, False, "no answer")
        if len(parsed) > self.max_answer_chars:
            return Verdict(parsed, False, False, "too long")
        value = _parse(parsed)
        if value is None:
            return Verdict(parsed, False, False, "not an integer")
        correct = value == problem.meta["values"][-1]
        return Verdict(parsed, correct, True, "ok" if correct else "wrong value")
