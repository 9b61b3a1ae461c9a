"""Advantage estimators: one scalar reward per sample in, token-level advantages out.

- ``reinforce``: REINFORCE with a batch-mean baseline (Williams, 1992, "Simple statistical
  gradient-following algorithms for connectionist reinforcement learning").
- ``grpo``: the group-relative advantage of GRPO (Shao et al., 2024, "DeepSeekMath",
  arXiv:2402.03300). ``normalize_std=False`` drops the division by the group std, as Dr.GRPO
  recommends (Liu et al., 2025, "Understanding R1-Zero-Like Training", arXiv:2503.20783).

Every estimator has the same signature::

    fn(rewards (N,), response_mask (N, T), group_size, **kwargs) -> (advantages (N, T), metrics)

The G samples of one prompt are contiguous rows ``g*G .. g*G+G-1``. Rewards are outcome
rewards, so each sample's advantage is broadcast over its response tokens and zeroed on padding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl4lrm.registry import Registry

ADVANTAGES = Registry("advantage estimator")
register_advantage = ADVANTAGES.register


def group_view(x: Tensor, group_size: int) -> Tensor:
    """Reshapes per-sample values into one row per prompt.

    Args:
        x: Per-sample values, shape (N, ...) with N = B * G.
        group_size: G, the number of samples per prompt.

    Returns:
        A view of shape (B, G, ...).

    Raises:
        ValueError: if group_size < 1 or N is not a multiple of group_size.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    n = x.shape[0]
    if n % group_size != 0:
        raise ValueError(
            f"batch size N={n} is not a multiple of group_size={group_size}; "
            "samples of one prompt must fill a whole group"
        )
    return x.reshape(n // group_size, group_size, *x.shape[1:])


def zero_std_groups(rewards: Tensor, group_size: int) -> Tensor:
    """Which groups carry no learning signal: all G rewards equal, shape (B,).

    Exact equality, not std == 0: the mean of equal floats can differ from them by one ulp.
    """
    grouped = group_view(rewards, group_size)  # (B, G)
    return (grouped == grouped[:, :1]).all(dim=1)


def _to_tokens(seq_advantages: Tensor, response_mask: Tensor) -> Tensor:
    """Broadcasts (N,) sequence advantages over the (N, T) response tokens, zero on padding."""
    if response_mask.dim() != 2 or response_mask.shape[0] != seq_advantages.shape[0]:
        raise ValueError(
            f"response_mask must have shape (N, T) with N={seq_advantages.shape[0]}, "
            f"got {tuple(response_mask.shape)}"
        )
    return seq_advantages[:, None] * response_mask.to(seq_advantages.dtype)  # (N, T)


@torch.no_grad()
def _advantage_metrics(advantages: Tensor, response_mask: Tensor) -> dict[str, float]:
    # Statistics over valid tokens, i.e. weighted as the loss sees them (as verl logs them).
    valid = advantages[response_mask.bool()]
    if valid.numel() == 0:
        return {"adv/mean": 0.0, "adv/std": 0.0, "adv/abs_max": 0.0}
    return {
        "adv/mean": valid.mean().item(),
        "adv/std": valid.std(unbiased=False).item(),
        "adv/abs_max": valid.abs().max().item(),
    }


def _float_rewards(rewards: Tensor) -> Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape (N,), got {tuple(rewards.shape)}")
    # Verifier rewards often arrive as bool or int; the baselines need real division.
    return rewards if rewards.is_floating_point() else rewards.float()


@register_advantage("reinforce")
def reinforce(
    rewards: Tensor, response_mask: Tensor, group_size: int, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE with a batch-mean baseline: A_i = r_i - mean_j r_j.

    The baseline ignores the groups: it is the mean over the whole batch, so a prompt that is
    easy for every sample still yields positive advantages. ``group_size`` is only validated.

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt; N must be a multiple of it.
        **kwargs: Ignored; accepted so that every estimator shares one signature.

    Returns:
        advantages: shape (N, T), zero where response_mask is 0.
        metrics: ``adv/mean``, ``adv/std``, ``adv/abs_max``.
    """
    rewards = _float_rewards(rewards)
    group_view(rewards, group_size)  # validation only: the baseline spans the whole batch
    seq_advantages = rewards - rewards.mean()  # (N,)
    advantages = _to_tokens(seq_advantages, response_mask)  # (N, T)
    return advantages, _advantage_metrics(advantages, response_mask)


@register_advantage("grpo")
def grpo(
    rewards: Tensor,
    response_mask: Tensor,
    group_size: int,
    *,
    eps: float = 1e-6,
    normalize_std: bool = True,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """Group-relative advantage: A_i = (r_i - mean_group) / (std_group + eps).

    The std is the *sample* std (Bessel-corrected, divisor G-1), as in DeepSeekMath and in
    TRL, which call ``torch.std`` with its default. Groups whose rewards are all equal carry no
    learning signal and get exactly 0 (not a rounding residue divided by eps), which also covers
    group_size 1, where the sample std is undefined.

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt; N must be a multiple of it.
        eps: Added to the std so that nearly-constant groups do not explode.
        normalize_std: If False, skip the division by the std (Dr.GRPO): the std scaling
            up-weights prompts that are nearly always solved or nearly always failed.
        **kwargs: Ignored; accepted so that every estimator shares one signature.

    Returns:
        advantages: shape (N, T), zero where response_mask is 0.
        metrics: ``adv/mean``, ``adv/std``, ``adv/abs_max`` and ``reward/frac_zero_std``
            (fraction of groups whose rewards are all equal).
    """
    rewards = _float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    if normalize_std:
        # Manual Bessel correction: torch.std of a single element is NaN (group_size 1).
        var = centered.pow(2).sum(dim=1, keepdim=True) / max(group_size - 1, 1)  # (B, 1)
        centered = centered / (var.sqrt() + eps)
    scores = torch.where(zero_std, torch.zeros_like(centered), centered)  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = _advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics
