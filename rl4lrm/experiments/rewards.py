"""Reward families side by side: the training runs behind notebook 02 and ``benchmarks/rewards.py``.

``REWARD_METHODS`` names each reward mix with the zoo task it trains on; ``train_with_reward`` runs
GRPO with it. Only the reward changes between rows: the preset, budget and held-out metric (the
task's verifier) stay the same, so the rows answer "what does this reward make the policy learn?".
"""

from __future__ import annotations

import pandas as pd

from rl4lrm.trainer import TrainConfig, Trainer

REWARD_METHODS: dict[str, dict] = {
    "verifier (addition)": {"task": "addition", "rewards": {"correct": 1.0}},
    "majority vote (addition)": {"task": "addition", "rewards": {"majority_vote": 1.0}},
    "self-certainty (addition)": {"task": "addition", "rewards": {"self_certainty": 1.0}},
    "neg. entropy (addition)": {"task": "addition", "rewards": {"neg_entropy": 1.0}},
    "verifier (countdown)": {"task": "countdown", "rewards": {"correct": 1.0}},
    "majority vote (countdown)": {"task": "countdown", "rewards": {"majority_vote": 1.0}},
    "verifier + cosine length (countdown)": {"task": "countdown", "rewards": {"cosine_length": 1.0}},
}


def train_with_reward(method: str, progress: bool = False, **config) -> pd.DataFrame:
    """Trains GRPO with the reward mix ``method`` (a key of ``REWARD_METHODS``) and returns the history.

    Args:
        method: which row of ``REWARD_METHODS``.
        **config: other ``TrainConfig`` fields (steps, seed, eval settings, ...).
    """
    if method not in REWARD_METHODS:
        raise ValueError(f"unknown reward method {method!r}; known: {list(REWARD_METHODS)}")
    spec = REWARD_METHODS[method]
    cfg = TrainConfig(task=spec["task"], rewards=spec["rewards"], **{**spec.get("config", {}), **config})
    return Trainer(cfg, progress=progress).train()
