"""Checkers for notebook 09's exercises: a PRM's solution score from its step scores, and one best-of-N pick."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rl4lrm.exercises import report_check
from rl4lrm.rewards.rerank import STEP_AGGREGATIONS, aggregate_steps


def check_solution_score(fn: Callable[[list[float], str], float], cases: int = 200, seed: int = 0) -> bool:
    """Compares ``fn(step_scores, how)`` with ``aggregate_steps`` for every ``how`` in ``STEP_AGGREGATIONS``, on random
    step-score lists of 0 to 6 steps (an empty list scores 0)."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for case in range(cases):
            steps = torch.rand(case % 7, generator=gen).tolist()
            for how in STEP_AGGREGATIONS:
                got, want = float(fn(list(steps), how)), aggregate_steps([steps], how).item()
                assert abs(got - want) < 1e-6, (
                    f"how={how!r}, step scores {[round(s, 3) for s in steps]}: got {got:.6f}, expected {want:.6f}"
                )

    return report_check("solution score from step scores", attempt)


def check_best_of_n_pick(fn: Callable[[torch.Tensor, torch.Tensor], float], cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(scores (P, N), correct (P, N)) -> accuracy`` with the rule ``best_of_n`` applies to one subset:
    per problem, answer with the highest-scored sample; the accuracy is the share of problems whose pick is right."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            P, N = (int(torch.randint(1, 9, (1,), generator=gen)) for _ in range(2))
            scores = torch.rand(P, N, generator=gen)
            correct = torch.randint(0, 2, (P, N), generator=gen).float()
            want = correct.gather(1, scores.argmax(1, keepdim=True)).mean().item()
            got = float(fn(scores.clone(), correct.clone()))
            assert abs(got - want) < 1e-6, f"P={P}, N={N}: got {got:.4f}, expected {want:.4f}"

    return report_check("best-of-N pick", attempt)
