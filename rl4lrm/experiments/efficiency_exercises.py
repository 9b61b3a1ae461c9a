"""Checkers for notebook 14's exercises: Kimi k1.5's group length reward and the Pareto front."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pandas as pd
import torch

from rl4lrm.exercises import brief, report_check
from rl4lrm.experiments.efficiency import pareto_front
from rl4lrm.rewards.efficiency import kimi_length_reward


def check_kimi_length(fn: Callable[[list[int], list[bool]], list[float]], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(lengths, correct)`` (Kimi's length reward of one group's completions) with
    ``rl4lrm.rewards.efficiency.kimi_length_reward`` on random groups, some whose lengths are all equal."""
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            g = rng.randint(1, 8)
            lengths = [rng.randint(1, 6) if rng.random() < 0.2 else rng.randint(1, 24) for _ in range(g)]
            if rng.random() < 0.1:
                lengths = [lengths[0]] * g
            correct = [rng.random() < 0.5 for _ in range(g)]
            want = kimi_length_reward(torch.tensor(lengths), torch.tensor(correct), torch.zeros(g, dtype=torch.long))
            got = list(fn(list(lengths), list(correct)))
            assert len(got) == g and all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(got, want.tolist())), (
                f"lengths {lengths}, correct {correct}: expected {brief(want)}, got {brief(got)}"
            )

    return report_check("Kimi length reward", attempt)


def check_pareto(fn: Callable[[list[tuple[float, float]]], list[bool]], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(points)`` (which ``(tokens, accuracy)`` points are on the Pareto front?) with
    ``rl4lrm.experiments.efficiency.pareto_front`` on random point sets, ties included."""
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            points = [(float(rng.randint(1, 8)), rng.randint(0, 5) / 5) for _ in range(rng.randint(1, 6))]
            want = pareto_front(pd.DataFrame(points, columns=["tokens", "acc"])).tolist()
            got = [bool(x) for x in fn(list(points))]
            assert got == want, f"points {points}: expected {want}, got {got}"

    return report_check("Pareto front", attempt)
