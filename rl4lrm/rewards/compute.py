"""Compute-cost rewards: charge a policy for the latent reasoning steps it uses (adaptive compute).

A ``LatentReasoner`` with a halting head (``rl4lrm.latent.model``; Coconut, Hao et al. 2024,
arXiv:2412.06769, for the continuous thoughts) chooses how many continuous thoughts k to run. Adding
``latent_steps`` with a negative weight to the reward mix, ``{"correct": 1.0, "latent_steps": -cost}``,
gives ``correct - cost * k``, the reward under which GRPO learns to trade accuracy for compute.
"""

from __future__ import annotations

import torch

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.tasks import Problem


@register_reward("latent_steps", requires=("batch",))
def latent_steps(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """k, the number of continuous thoughts each row ran (``batch.aux["n_thoughts"]``); weight it by ``-cost``.

    Args:
        problems: N problems (unused). completions: N strings (unused).
        ctx: needs ``batch`` with ``aux["n_thoughts"]`` (N,), as ``LatentReasoner.sample_rollout`` writes it.

    Returns:
        Float thought counts, shape (N,).
    """
    aux = getattr(ctx.batch, "aux", {})
    if "n_thoughts" not in aux:
        raise ValueError(
            "reward 'latent_steps' reads batch.aux['n_thoughts'], which only a latent-thought policy "
            "(rl4lrm.latent.model.LatentReasoner) writes; this batch has aux keys "
            f"{sorted(aux)}"
        )
    return aux["n_thoughts"].float().cpu()  # (N,)
