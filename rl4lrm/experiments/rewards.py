"""Reward families side by side: the training runs behind notebook 02 and ``benchmarks/rewards.py``.

``REWARD_METHODS`` names each reward mix with the zoo task it trains on; ``train_with_reward`` runs
GRPO with it. Only the reward changes between rows: the preset, budget and held-out metric (the
task's verifier) stay the same, so the rows answer "what does this reward make the policy learn?".
"""

from __future__ import annotations

import pandas as pd

from rl4lrm.models.zoo import load_base
from rl4lrm.rewards.implicit import build_implicit_prm
from rl4lrm.rewards.prm import build_prm
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import resolve_device

REWARD_METHODS: dict[str, dict] = {
    "verifier (addition)": {"task": "addition", "rewards": {"correct": 1.0}},
    "majority vote (addition)": {"task": "addition", "rewards": {"majority_vote": 1.0}},
    "self-certainty (addition)": {"task": "addition", "rewards": {"self_certainty": 1.0}},
    "neg. entropy (addition)": {"task": "addition", "rewards": {"neg_entropy": 1.0}},
    "judge (addition)": {"task": "addition", "rewards": {"judge": (1.0, {"judge": "judge-addition"})}},
    "weak judge (addition)": {"task": "addition", "rewards": {"judge": (1.0, {"judge": "judge-addition-weak"})}},
    "verifier + weak judge (addition)": {
        "task": "addition",
        "rewards": {"correct": 0.5, "judge": (0.5, {"judge": "judge-addition-weak"})},
    },
    "verifier (countdown)": {"task": "countdown", "rewards": {"correct": 1.0}},
    "majority vote (countdown)": {"task": "countdown", "rewards": {"majority_vote": 1.0}},
    "verifier + cosine length (countdown)": {"task": "countdown", "rewards": {"cosine_length": 1.0}},
    "verifier (chain)": {"task": "chain", "rewards": {"correct": 1.0}},
    "verifier + step rewards (chain)": {"task": "chain", "rewards": {"correct": 1.0, "step_correct": 1.0}},
    "verifier + learned PRM (chain)": {"task": "chain", "rewards": {"correct": 1.0, "prm": 1.0}, "build_prm": True},
    "verifier + implicit PRM (chain)": {"task": "chain", "rewards": {"correct": 1.0, "implicit_prm": 1.0}},
    "verifier + trained implicit PRM (chain)": {
        "task": "chain",
        "rewards": {"correct": 1.0, "implicit_prm": 1.0},
        "train_implicit": True,
    },
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
    rewards = dict(spec["rewards"])
    if spec.get("build_prm"):  # a process reward model trained from Monte-Carlo labels of the base policy
        model, tokenizer, task = load_base(spec["task"])
        prm, _ = build_prm(model, tokenizer, task, seed=config.get("seed", 0))
        rewards["prm"] = (rewards["prm"], {"prm": prm})
    if spec.get("train_implicit"):  # PRIME's π_φ trained on outcome labels of the base policy's rollouts
        model, tokenizer, task = load_base(spec["task"])
        phi, _ = build_implicit_prm(model, tokenizer, task, seed=config.get("seed", 0))
        # π_ref is the trainer's ctx.ref_model: a frozen copy of the same zoo model π_φ was trained against
        rewards["implicit_prm"] = (
            rewards["implicit_prm"],
            {"implicit_model": phi.to(resolve_device(config.get("device", "auto")))},
        )
    cfg = TrainConfig.build(task=spec["task"], rewards=rewards, **{**spec.get("config", {}), **config})
    return Trainer(cfg, progress=progress).train()
