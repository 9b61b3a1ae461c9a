"""Countdown that searches out loud: a written search trace, a symbolic searcher that writes it, and its checker.

Stream of Search (Gandhi et al., 2024, arXiv:2404.03683) trains a small LM on written Countdown searches, dead ends
included, and then improves it by RL; TinyZero's R1-Zero-style model writes a search of its own. Here a trace is a
sequence of steps over the prompt's numbers, each ``a op b=c`` consuming ``a`` and ``b`` and adding ``c``; ``,``
goes one level deeper, ``^`` undoes the last step (a backtrack), and ``#`` ends the search with the answer
expression, the only part the verifier reads (an empty answer gives up)::

    3 5 7>22:  3+5=8,8+7=15^8*7=56^^5*3=15,15+7=22#5*3+7

``search`` writes traces with a configurable strategy (``SearchConfig``): depth-first in a fixed order, breadth
first (iterative deepening), a heuristic order (closest to the target first), a random order, or only the shortest
correct path; ``budget``, ``give_up`` and ``miss`` make it deliberately imperfect (it gives up after ``budget``
steps, or at each dead end with probability ``give_up``; each candidate step is overlooked with probability
``miss``), so that a model trained on its traces has room to improve, and ``max_value`` keeps its arithmetic small.
``check_trace`` replays a trace (each step legal, its numbers available) for analysis; ``CountdownSearch`` is the
task whose worked solutions are these traces.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, replace
from fractions import Fraction

from rl4lrm.tasks.base import TASKS, Problem, Verdict, read_after_mark
from rl4lrm.tasks.countdown import Countdown, Item, _combine, _leaf
from rl4lrm.tasks.expression import OPERATORS
from rl4lrm.validation import NON_NEGATIVE, Range, check_fields, named_keywords

ANSWER_MARK = "#"
"""Ends the search; the answer expression follows it."""
BACKTRACK = "^"
"""Undoes the last step."""
DEEPER = ","
"""Separates a step from the next one, one level deeper."""
STRATEGIES = ("dfs", "bfs", "heuristic", "random", "optimal")
_STEP = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)")


@named_keywords()
@dataclass(frozen=True)
class SearchConfig:
    """How ``search`` explores and how imperfect it is."""

    strategy: str = "heuristic"
    """Order of the candidate steps: ``dfs`` (pairs in prompt order, then ``+ - * /``), ``bfs`` (iterative
    deepening: every one-step path before any two-step one), ``heuristic`` (the result closest to the target first),
    ``random`` (a random order per problem) or ``optimal`` (only the shortest correct path, no dead ends)."""
    budget: int = 0
    """Steps written before giving up (an empty answer); 0 = no limit."""
    miss: float = 0.0
    """Probability that a candidate step is overlooked (pruning that sometimes misses), in [0, 1)."""
    give_up: float = 0.0
    """Probability of giving up at each dead end (after each backtrack), in [0, 1): a searcher that loses patience
    at random times, so that persisting is one decision, taken again at every dead end, that RL can strengthen."""
    max_value: int = 0
    """Steps whose result exceeds this are never tried (0 = no limit): products such as ``17*19=323`` are arithmetic
    that a tiny model gets wrong, and a target of at most ``max_target`` rarely needs them."""

    def __post_init__(self):
        unit = Range(0, 1, high_open=True)
        check_fields(
            self,
            {
                "strategy": STRATEGIES,
                "budget": NON_NEGATIVE,
                "miss": unit,
                "give_up": unit,
                "max_value": NON_NEGATIVE,
            },
        )


def candidates(
    items: list[Item], integer_steps: bool, use_all: bool, max_value: int = 0
) -> list[tuple[str, list[Item]]]:
    """Every step from the state ``items``: ``(written step, state after it)``, the new number last.

    The larger number goes first and results stay positive; ``x*1``, ``x/1`` and results of 0 are left out unless
    ``use_all`` needs them (they never help otherwise), and so are results above ``max_value`` when it is not 0.
    """
    out = []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            big, small = (items[i], items[j]) if items[i][0] >= items[j][0] else (items[j], items[i])
            rest = [item for k, item in enumerate(items) if k not in (i, j)]
            for op in "+-*/":
                if not use_all and (small[0] == 1 and op in "*/" or op == "-" and big[0] == small[0]):
                    continue
                item = _combine(big, op, small, integer_steps)
                if item is None or item[0] < 0 or (op == "/" and small[0] == 0):
                    continue
                if max_value and item[0] > max_value:
                    continue
                out.append((f"{big[0]}{op}{small[0]}={item[0]}", rest + [item]))
    return out


def _reached(items: list[Item], goal: Fraction, use_all: bool) -> Item | None:
    """The item worth ``goal`` in a state where one can stop, else None."""
    if use_all:
        return items[0] if len(items) == 1 and items[0][0] == goal else None
    return next((item for item in items if item[0] == goal), None)


def search(
    numbers: list[int], target: int, config: SearchConfig, rng: random.Random, *, integer_steps=True, use_all=False
) -> str:
    """A written search for ``target`` from ``numbers`` (module docstring), ending in ``#`` and the answer, or in a
    bare ``#`` where the search gave up or found nothing.

    Args:
        numbers: the given numbers.
        target: the value to reach.
        config: strategy and imperfections.
        rng: draws the ``random`` order and the overlooked steps.
        integer_steps: only exact divisions, as the task's rule.
        use_all: a solution must use every number.
    """
    goal, start = Fraction(target), [_leaf(n) for n in numbers]
    if (hit := _reached(start, goal, use_all)) is not None:
        return ANSWER_MARK + hit[1]
    if config.strategy == "optimal":
        for depth in range(1, len(numbers)):
            if (path := _shortest(start, goal, depth, config.max_value, integer_steps, use_all)) is not None:
                steps, item = path
                return DEEPER.join(steps) + ANSWER_MARK + item[1]
        return ANSWER_MARK
    out: list[str] = []
    steps = 0

    def dfs(items: list[Item], depth: int) -> Item | None:  # depth: levels left below this state
        nonlocal steps
        children = candidates(items, integer_steps, use_all, config.max_value)
        if config.strategy == "random":
            rng.shuffle(children)
        elif config.strategy == "heuristic":
            children.sort(key=lambda c: abs(c[1][-1][0] - goal))
        for step, after in children:
            if config.miss and rng.random() < config.miss:
                continue
            if config.budget and steps >= config.budget:
                raise _GiveUp
            if out and out[-1] not in (BACKTRACK,):
                out.append(DEEPER)
            out.append(step)
            steps += 1
            if (hit := _reached(after, goal, use_all)) is not None:
                return hit
            if depth > 1 and len(after) > 1 and (hit := dfs(after, depth - 1)) is not None:
                return hit
            out.append(BACKTRACK)
            if config.give_up and rng.random() < config.give_up:
                raise _GiveUp
        return None

    limits = range(1, len(numbers)) if config.strategy == "bfs" else [len(numbers) - 1]
    try:
        for limit in limits:
            if (hit := dfs(start, limit)) is not None:
                return "".join(out) + ANSWER_MARK + hit[1]
    except _GiveUp:
        pass
    return "".join(out).rstrip(BACKTRACK) + ANSWER_MARK


class _GiveUp(Exception):
    """The step budget ran out."""


def _shortest(items, goal, depth, max_value, integer_steps, use_all) -> tuple[list[str], Item] | None:
    """A path of exactly ``depth`` steps (in ``dfs`` order, results at most ``max_value``) that reaches ``goal``,
    or None."""
    for step, after in candidates(items, integer_steps, use_all, max_value):
        if depth == 1:
            if (hit := _reached(after, goal, use_all)) is not None:
                return [step], hit
        elif len(after) > 1 and (path := _shortest(after, goal, depth - 1, max_value, integer_steps, use_all)):
            return [step, *path[0]], path[1]
    return None


@dataclass(frozen=True)
class TraceReport:
    """What ``check_trace`` found in a trace."""

    valid: bool
    """Every step legal with numbers available, every backtrack undoing a step, and an answer mark."""
    reason: str
    """``"ok"`` or the first problem found."""
    steps: int
    """Steps written (up to the first problem)."""
    backtracks: int
    """``^`` marks (up to the first problem)."""
    found: bool
    """Some step's result is the target."""


def check_trace(problem: Problem, completion: str, integer_steps: bool = True) -> TraceReport:
    """Replays a trace against the problem's numbers: a checker for analysis (the reward reads only the answer).

    Args:
        problem: a Countdown problem (``meta["numbers"]``, ``meta["target"]``).
        completion: the trace, ``#`` and the answer.
        integer_steps: divisions must be exact.

    Returns:
        A ``TraceReport``.
    """
    pool = list(problem.meta["numbers"])
    target, undo = problem.meta["target"], []
    steps = backtracks = pos = 0
    found = False

    def report(valid: bool, reason: str) -> TraceReport:
        return TraceReport(valid, reason, steps, backtracks, found)

    while pos < len(completion):
        char = completion[pos]
        if char == ANSWER_MARK:
            return report(True, "ok")
        if char == DEEPER:
            pos += 1
            continue
        if char == BACKTRACK:
            if not undo:
                return report(False, f"backtrack with no step to undo at {pos}")
            a, b, c = undo.pop()
            pool.remove(c)
            pool += [a, b]
            backtracks, pos = backtracks + 1, pos + 1
            continue
        match = _STEP.match(completion, pos)
        if match is None:
            return report(False, f"unreadable step at {pos}")
        a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
        for n in (a, b):
            if n not in pool:
                return report(False, f"number {n} not available at {pos}")
            pool.remove(n)
        if op == "/" and b == 0:
            return report(False, f"division by zero at {pos}")
        value = OPERATORS[op](Fraction(a), Fraction(b))
        if integer_steps and value.denominator != 1 or value != c:
            return report(False, f"{match[0]} is wrong at {pos}")
        pool.append(c)
        undo.append((a, b, c))
        steps, pos, found = steps + 1, match.end(), found or c == target
    return report(False, "no answer mark")


def trace_valid(problem: Problem, trace: str, integer_steps: bool = True) -> bool:
    """Whether ``trace`` is a valid search for ``problem`` (``check_trace``)."""
    return check_trace(problem, trace, integer_steps).valid


def backtracks(completion: str) -> int:
    """Backtrack marks before the answer."""
    return completion.partition(ANSWER_MARK)[0].count(BACKTRACK)


@TASKS.register("countdown-search")
class CountdownSearch(Countdown):
    """Countdown answered after a written search (``"3 5 7>22:"`` -> ``"3+5=8^5*3=15,15+7=22#5*3+7"``); the worked
    solutions come from ``search`` with this task's ``SearchConfig``, and the verifier reads the answer after the
    last ``#``. Its targets are never one of the given numbers by default (``distinct_target``)."""

    name = "countdown-search"
    alphabet = Countdown.alphabet + ",^#="

    def __init__(
        self,
        n_numbers: int = 3,
        max_number: int = 20,
        max_target: int = 100,
        integer_steps: bool = True,
        use_all: bool = False,
        distinct_target: bool = True,
        strategy: str = "heuristic",
        budget: int = 0,
        miss: float = 0.0,
        give_up: float = 0.0,
        max_value: int = 0,
    ):
        """Countdown's settings (``Countdown.__init__``) plus the searcher's (``SearchConfig``) for ``worked``."""
        super().__init__(n_numbers, max_number, max_target, integer_steps, use_all, distinct_target)
        self.searcher = SearchConfig(strategy, budget, miss, give_up, max_value)
        self.strategy, self.budget, self.miss = strategy, budget, miss
        self.give_up, self.max_value = give_up, max_value

    def sample(self, rng: random.Random) -> Problem:
        problem = super().sample(rng)
        return replace(problem, answer=ANSWER_MARK + problem.answer)  # the direct answer in the form verify reads

    def worked(self, problem: Problem) -> tuple[str, str]:
        """The plain prompt and a written search from ``search``; the random draws (order, overlooked steps) come
        from a hash of the problem's key, so a problem always gets the same trace."""
        seed = int.from_bytes(hashlib.sha256(f"search:{problem.key}".encode()).digest()[:8], "big")
        numbers, target = list(problem.meta["numbers"]), problem.meta["target"]
        trace = search(
            numbers, target, self.searcher, random.Random(seed), integer_steps=self.integer_steps, use_all=self.use_all
        )
        return problem.prompt, trace

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Checks the answer after the last ``#`` as Countdown does (numbers used, then value)."""
        parsed, failed = read_after_mark(completion, ANSWER_MARK, self.max_answer_chars)
        return failed or self.check_expression(problem, parsed)
