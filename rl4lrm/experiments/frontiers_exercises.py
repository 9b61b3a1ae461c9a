"""Checkers for notebook 17's exercises: replay's mixture weights and forgetting (continual RL)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pandas as pd

from rl4lrm.exercises import brief, report_check
from rl4lrm.experiments.continual import forgetting, replay_weights


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
                f"current={current!r}, earlier={earlier}, replay={replay}: expected {brief(want)}, got {brief(got)}"
            )

    return report_check("replay weights", attempt)


def check_forgetting(
    fn: Callable[[list[dict[str, float]], list[str]], dict[str, float]], cases: int = 200, seed: int = 0
) -> bool:
    """Compares ``fn(accuracy, stages)`` with ``rl4lrm.experiments.continual.forgetting`` on random runs:
    ``accuracy[k]`` maps each part to its accuracy after stage k (``accuracy[0]``: the base), ``stages[k - 1]`` is
    the part stage k trained, and ``fn`` returns the change of every part trained before the last stage (its final
    accuracy minus its accuracy right after the last stage that trained it)."""
    rng = random.Random(seed)
    parts = ["add2", "add3", "chain"]

    def attempt():
        for _ in range(cases):
            stages = [rng.choice(parts) for _ in range(rng.randint(1, 4))]
            accuracy = [{p: rng.randint(0, 20) / 20 for p in parts} for _ in range(len(stages) + 1)]
            after = ["base", *stages]
            rows = [
                dict(stage=k, after=after[k], part=p, accuracy=a)
                for k, acc in enumerate(accuracy)
                for p, a in acc.items()
            ]
            table = forgetting(pd.DataFrame(rows).assign(remedy="none", lr=0.0, seed=0))
            want = table[table["role"] == "earlier stage"].set_index("part")["change"].to_dict()
            got = dict(fn([dict(a) for a in accuracy], list(stages)))
            assert set(got) == set(want) and all(math.isclose(got[k], want[k], abs_tol=1e-9) for k in want), (
                f"accuracy={accuracy}, stages={stages}: expected {brief(want)}, got {brief(got)}"
            )

    return report_check("forgetting", attempt)
