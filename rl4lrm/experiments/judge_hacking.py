"""Reward hacking: RL against a weak generative judge raises the judge's reward, not the accuracy.

A learned reward is a proxy of what we want, and optimising a proxy hard enough exploits its errors
(Gao et al., 2023, "Scaling Laws for Reward Model Overoptimization", https://arxiv.org/abs/2210.10760).
Here the proxy is a generative judge (``rl4lrm.rewards.generative``; GenRM, Zhang et al., 2024,
https://arxiv.org/abs/2408.15240). The weak judge ``judge-addition-weak`` learned a spurious cue from its
labels (every answer ending in 7 is accepted): GRPO on the addition base model against it learns to end
answers in 7, so the judge's reward goes up while the verifier's accuracy goes down.

``judge_weight`` is the slider: the training reward is ``w * judge + (1 - w) * verifier``; at w = 0 it is
plain RLVR, and somewhere in between the verifier's signal outweighs the cue.
"""

from __future__ import annotations

import pandas as pd

from rl4lrm.rewards.judges import SHORTCUTS, clean_candidate
from rl4lrm.trainer import Callback, TrainConfig, Trainer


class ShortcutRate(Callback):
    """Logs ``hack/shortcut_rate``: the share of a step's completions that match the judge's shortcut."""

    def __init__(self, shortcut: str = "ends_in_7"):
        self.rule, self.rate = SHORTCUTS[shortcut], float("nan")

    def on_rollout_end(self, trainer, batch, rewards) -> None:
        self.rate = sum(self.rule(clean_candidate(c)) for c in batch.completions) / len(batch.completions)

    def on_step_end(self, trainer, metrics: dict) -> None:
        metrics["hack/shortcut_rate"] = self.rate  # the dict is the history's row


def judge_hacking(
    judge: str = "judge-addition-weak",
    judge_weight: float = 1.0,
    steps: int = 60,
    seed: int = 0,
    shortcut: str = "ends_in_7",
    progress: bool = False,
    **overrides,
) -> pd.DataFrame:
    """Trains the addition base model with GRPO on ``judge_weight * judge + (1 - judge_weight) * verifier``.

    Args:
        judge: a judge name (``rl4lrm.rewards.judges.JUDGES``).
        judge_weight: in [0, 1], the slider between the judge (1) and the verifier (0).
        steps: RL steps (B=16 prompts x G=8 samples each; about 1 s per step on a 2-core CPU).
        shortcut: the ``SHORTCUTS`` rule whose rate is logged as ``hack/shortcut_rate``.
        overrides: further ``TrainConfig`` fields.

    Returns:
        The trainer's history: ``reward/judge`` (what is optimised), ``reward/correct`` (the verifier on the
        same samples), ``acc/pass@1`` (held-out, every ``eval_every`` steps) and ``hack/shortcut_rate``.
    """
    if not 0 <= judge_weight <= 1:
        raise ValueError(f"judge_weight must be in [0, 1], got {judge_weight}")
    config = TrainConfig.build(
        **{
            "task": "addition",
            "steps": steps,
            "seed": seed,
            "eval_every": 20,
            "device": "cpu",
            "rewards": {"judge": (judge_weight, {"judge": judge}), "correct": 1.0 - judge_weight},
            **overrides,
        }
    )
    return Trainer(config, callbacks=[ShortcutRate(shortcut)], progress=progress).train()


def hacking_summary(history: pd.DataFrame, window: int = 10) -> dict[str, float]:
    """Before/after numbers of a ``judge_hacking`` run: means over the first and last ``window`` steps, and
    held-out ``acc/pass@1`` before training and at the end."""
    steps = history.iloc[1:]
    first, last = steps.head(window), steps.tail(window)
    acc = history["acc/pass@1"].dropna()
    out = {"acc/pass@1 before": acc.iloc[0], "acc/pass@1 after": acc.iloc[-1]}
    for col in ("reward/judge", "reward/correct", "hack/shortcut_rate"):
        out[f"{col} first"], out[f"{col} last"] = first[col].mean(), last[col].mean()
    return out
