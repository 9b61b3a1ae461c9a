"""Spurious rewards: rewards that carry no (or almost no) information about correctness.

Shao et al. (2025), "Spurious Rewards: Rethinking Training Signals in RLVR" (arXiv:2506.10947), train Qwen2.5-Math
with GRPO on a *random* reward (Bernoulli(γ), independent of the answer), a *format* reward (the answer is boxed,
right or wrong) and an *incorrect* reward (only wrong answers score), and see MATH-500 rise for Qwen2.5-Math almost
as much as with the true reward, while Llama and OLMo models gain nothing or lose. Their explanation: PPO's clip
makes the update of a random reward biased toward tokens the model already likes (the clipping bias), so RL
amplifies whatever behaviour dominates the prior; when that behaviour is good (Qwen-Math's code reasoning), accuracy
goes up. ``rl4lrm.experiments.priors`` runs these rewards on base models that differ only in their prior.

The incorrect reward needs no function of its own: ``{"correct": -1.0}`` ranks a group exactly in reverse.
"""

from __future__ import annotations

import torch

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.tasks import Problem


@register_reward("random")
def random_reward(
    problems: list[Problem], completions: list[str], ctx: RewardContext, prob: float = 0.5
) -> torch.Tensor:
    """Shao et al.'s random reward: 1.0 with probability ``prob``, whatever the completion says.

    Draws from torch's global generator, which ``Trainer`` seeds with the run's seed, so a run is reproducible.

    Args:
        problems: N problems (unused). completions: N strings (unused but for their number). ctx: unused.
        prob: the Bernoulli probability γ, in [0, 1] (the paper's default is 0.5).

    Returns:
        Rewards in {0, 1}, shape (N,).
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"random reward: prob must be in [0, 1], got {prob!r}")
    return (torch.rand(len(completions)) < prob).float()


@register_reward("well_formed", requires=("task",))
def well_formed(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """A format-only reward: 1.0 when the task's verifier can parse the answer (a bare integer for addition, an
    expression for Countdown), right or wrong; the lab's counterpart of Shao et al.'s "contains \\boxed{}".

    Returns:
        Rewards in {0, 1}, shape (N,).
    """
    return torch.tensor([float(ctx.task.verify(p, c).well_formed) for p, c in zip(problems, completions)])
