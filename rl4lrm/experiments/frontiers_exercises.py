"""Checkers for notebook 17's exercises: replay's mixture weights (continual RL)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from rl4lrm.exercises import report_check
from rl4lrm.experiments.continual import replay_weights


def check_replay_weights(fn: Callable[[str, list[str], float], dict], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(current, earlier, replay)`` (each part's share of a stage's prompts) with
    ``rl4lrm.experiments.continual.replay_weights`` on random stage histories, repeats and the current part
    among the earlier ones included."""
    rng = random.Random(seed)
    parts = ["add2", "add3", "chain", "count"]

    def attempt():
        for _ in range(cases):
            current = rng.choice(parts)
            earlier = [rng.choice(parts) for _ in range(rng.randint(0, 4))]
            replay = rng.choice([0.0, 0.25, 0.5, round(rng.random() * 0.9, 2)])
            want = replay_weights(current, list(earlier), replay)
            got = dict(fn(current, list(earlier), replay))
            assert set(got) == set(want) and all(math.isclose(got[k], want[k], abs_tol=1e-9) for k in want), (
                f"current={current!r}, earlier={earlier}, replay={replay}: expected {want}, got {got}"
            )

    return report_check("replay weights", attempt)
