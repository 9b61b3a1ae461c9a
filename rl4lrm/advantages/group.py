"""Group-baseline estimators: each sample's reward against the other samples of its prompt (or the batch).

``reinforce`` (batch-mean baseline), ``grpo`` and ``dr_grpo`` (group mean, with and without the std),
``group_mean_batch_std`` (Lite PPO: group mean, batch std), ``batch_norm`` (batch mean and std),
``rloo`` (leave-one-out), ``remax`` (the greedy completion's reward) and ``passk`` (credit for pass@k);
the papers are cited in ``rl4lrm.advantages`` and on each function.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rl4lrm.advantages.base import (
    _check_singleton,
    _to_tokens,
    advantage_metrics,
    float_rewards,
    group_view,
    register_advantage,
    zero_std_groups,
)


@register_advantage("reinforce")
def reinforce(rewards: Tensor, response_mask: Tensor, group_size: int, **kwargs) -> tuple[Tensor, dict[str, float]]:
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
    rewards = float_rewards(rewards)
    group_view(rewards, group_size)  # validation only: the baseline spans the whole batch
    seq_advantages = rewards - rewards.mean()  # (N,)
    advantages = _to_tokens(seq_advantages, response_mask)  # (N, T)
    return advantages, advantage_metrics(advantages, response_mask)


@register_advantage("grpo", min_group_size=2)
def grpo(
    rewards: Tensor,
    response_mask: Tensor,
    group_size: int,
    *,
    eps: float = 1e-6,
    normalize_std: bool = True,
    singleton: str = "zero",
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """Group-relative advantage: A_i = (r_i - mean_group) / (std_group + eps).

    The std is the *sample* std (Bessel-corrected, divisor G-1), as in DeepSeekMath, TRL, verl and
    OpenRLHF, which call ``torch.std`` with its default. Groups whose rewards are all equal carry no
    learning signal and get exactly 0 (not a rounding residue divided by eps); so does group_size 1,
    where the sample std is undefined, unless ``singleton="reward"``.

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt; N must be a multiple of it.
        eps: Added to the std so that nearly-constant groups do not explode: 1e-6 here and in verl
            (``compute_grpo_outcome_advantage``), 1e-4 in TRL's ``GRPOTrainer``, 1e-9 in OpenRLHF's
            ``group_norm``. It only matters for groups whose std is small but not 0.
        normalize_std: If False, skip the division by the std (Dr.GRPO): the std scaling
            up-weights prompts that are nearly always solved or nearly always failed.
        singleton: One of ``SINGLETONS``; with group_size 1, ``"zero"`` gives 0 and ``"reward"``
            gives verl's r / (1 + eps) (r without ``normalize_std``).
        **kwargs: Ignored; accepted so that every estimator shares one signature.

    Returns:
        advantages: shape (N, T), zero where response_mask is 0.
        metrics: ``adv/mean``, ``adv/std``, ``adv/abs_max`` and ``reward/frac_zero_std``
            (fraction of groups whose rewards are all equal).
    """
    _check_singleton(singleton)
    rewards = float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    if normalize_std:
        # Manual Bessel correction: torch.std of a single element is NaN (group_size 1).
        var = centered.pow(2).sum(dim=1, keepdim=True) / max(group_size - 1, 1)  # (B, 1)
        centered = centered / (var.sqrt() + eps)
    scores = torch.where(zero_std, torch.zeros_like(centered), centered)  # (B, G)
    if group_size == 1 and singleton == "reward":  # verl: mean 0 and std 1 for a lone sample
        scores = grouped / (1 + eps) if normalize_std else grouped
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics


@register_advantage("dr_grpo", min_group_size=2)
def dr_grpo(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, singleton: str = "zero", **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """Dr.GRPO's advantage: A_i = r_i - mean_group, no std scaling.

    Dividing by the group std up-weights prompts that are nearly always solved or nearly always
    failed (a difficulty bias); Dr.GRPO removes it. Same arguments and metrics as ``grpo``.
    """
    return grpo(rewards, response_mask, group_size, normalize_std=False, singleton=singleton)


def _batch_std(rewards: Tensor) -> Tensor:
    """Sample std (Bessel) of the raw rewards of the whole batch, a 0-d tensor; 0 for a batch of one."""
    if rewards.numel() < 2:
        return rewards.new_zeros(())
    return rewards.std()


@register_advantage("group_mean_batch_std", min_group_size=2)
def group_mean_batch_std(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, eps: float = 1e-6, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """Group mean, batch std: A_i = (r_i - mean_group) / (std_batch + eps), Lite PPO's normalisation.

    Liu et al. (2025), "Tricks or Traps? A Deep Dive into RL for LLM Reasoning" (arXiv:2508.08221), find this
    mix the most robust: the group mean keeps GRPO's per-prompt baseline, while one std for the whole batch
    stops a group whose rewards barely differ (an almost-solved or almost-hopeless prompt) from being blown up
    to unit scale, which GRPO's per-group std does. The std is the sample std (Bessel) of the *raw* rewards of
    all N rows, as TRL's ``scale_rewards="batch"``; groups whose rewards are all equal get exactly 0.

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G >= 2, samples per prompt; N must be a multiple of it.
        eps: Added to the batch std (1e-6 here; TRL 1e-4).
        **kwargs: Ignored.

    Returns:
        advantages (N, T) and metrics as ``grpo``, plus ``adv/batch_std``.
    """
    rewards = float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    std = _batch_std(rewards)  # ()
    scores = torch.where(zero_std, torch.zeros_like(centered), centered / (std + eps))  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    metrics["adv/batch_std"] = std.item()
    return advantages, metrics


@register_advantage("batch_norm")
def batch_norm(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, eps: float = 1e-6, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """Batch-level normalisation: A_i = (r_i - mean_batch) / (std_batch + eps), no groups at all.

    The "batch" arm of Liu et al.'s (2025, arXiv:2508.08221) normalisation ablation: ``reinforce``'s batch-mean
    baseline divided by the batch std (sample std of the raw rewards). A prompt that every sample solves still
    gets positive advantages, and one that none solves negative ones: unlike the group estimators, a group with
    equal rewards is not silent. A batch whose rewards are all equal gets exactly 0.

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt (only validated: the statistics span the whole batch).
        eps: Added to the batch std.
        **kwargs: Ignored.

    Returns:
        advantages (N, T) and the ``adv/*`` metrics, plus ``adv/batch_std``.
    """
    rewards = float_rewards(rewards)
    group_view(rewards, group_size)  # validation only
    std = _batch_std(rewards)  # ()
    if (rewards == rewards[:1]).all():  # exact zeros, not a rounding residue over eps
        seq_advantages = torch.zeros_like(rewards)
    else:
        seq_advantages = (rewards - rewards.mean()) / (std + eps)  # (N,)
    advantages = _to_tokens(seq_advantages, response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["adv/batch_std"] = std.item()
    return advantages, metrics


NORMALISATIONS: dict[str, str] = {
    "group": "grpo",
    "batch": "batch_norm",
    "group mean, batch std": "group_mean_batch_std",
    "mean only": "dr_grpo",
}
"""Advantage normalisation → the registered estimator: (r − mean) / std with the mean and std over the group
or the batch, or the group mean alone (Dr.GRPO's advantage)."""


@register_advantage("rloo", min_group_size=2)
def rloo(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, singleton: str = "zero", **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE leave-one-out: A_i = r_i - mean_{j != i} r_j over the sample's group.

    The baseline of each sample excludes the sample itself, so it is independent of the sample's
    action and the estimate stays unbiased. Algebraically A_i = G / (G - 1) * (r_i - mean_group).

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G >= 2, samples per prompt (G = 1 only with ``singleton="reward"``).
        singleton: ``"zero"`` refuses group_size 1; ``"reward"`` gives the raw reward (verl).
        **kwargs: Ignored.

    Returns:
        advantages (N, T) and metrics as ``grpo``.

    Raises:
        ValueError: if group_size < 2 (no other sample to form the baseline) and singleton is "zero".
    """
    _check_singleton(singleton)
    if group_size == 1 and singleton == "reward":
        return grpo(rewards, response_mask, 1, normalize_std=False, singleton="reward")
    if group_size < 2:
        raise ValueError(
            f"rloo needs group_size >= 2 for a leave-one-out baseline, got {group_size} "
            "(singleton='reward' gives a lone sample its raw reward, as verl does)"
        )
    rewards = float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    scores = torch.where(zero_std, torch.zeros_like(grouped), grouped - others_mean)  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics


@register_advantage("remax", requires=("baseline_rewards",))
def remax(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, baseline_rewards: Tensor, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """ReMax: A_i = r_i - r(greedy completion of the same prompt).

    The greedy completion is a cheap, action-independent baseline that needs no critic and no
    group: it works with group_size 1. It costs one extra greedy rollout per prompt.

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt.
        baseline_rewards: Reward of the greedy completion of each row's prompt, shape (N,).
        **kwargs: Ignored.

    Returns:
        advantages (N, T) and the ``adv/*`` metrics plus ``reward/baseline_mean``.
    """
    rewards = float_rewards(rewards)
    group_view(rewards, group_size)
    baseline = float_rewards(baseline_rewards)
    if baseline.shape != rewards.shape:
        raise ValueError(f"baseline_rewards must have shape {tuple(rewards.shape)}, got {tuple(baseline.shape)}")
    advantages = _to_tokens(rewards - baseline, response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/baseline_mean"] = baseline.mean().item()
    return advantages, metrics


def _check_pass_k(preset, group_size: int) -> None:
    if preset.pass_k > group_size:
        raise ValueError(f"advantage 'passk': pass_k={preset.pass_k} exceeds TrainConfig.group_size={group_size}")


@register_advantage("passk", min_group_size=2, check=_check_pass_k)
def passk(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, k: int = 4, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """Pass@k-aligned group advantage for binary rewards.

    The objective is pass@k: the chance that at least one of k samples is correct. Averaging
    max-reward over every k-subset of the group that contains sample i gives its share of the
    credit: 1 if i is correct, and 1 - C(n-1, k-1) / C(G-1, k-1) if it is wrong (n wrong samples
    in the group: the subset still succeeds unless the other k-1 members are all wrong). These
    shares average to the group's unbiased pass@k, 1 - C(n, k) / C(G, k), the baseline. Relative
    to pass@1 the weight moves to hard prompts: a group that already solves the prompt in most
    samples has pass@k near 1 and gets almost no gradient. There is deliberately no division by
    the group std: in a group with at least one right and at least k wrong samples the advantages
    take two values with mean 0, so dividing by their std would give back GRPO's advantages (a group
    with fewer than k wrong samples is solved by every k-subset and gets 0 either way). With k = 1
    this is ``dr_grpo``.

    Args:
        rewards: Binary reward per sample (0 or 1), shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G >= k, samples per prompt.
        k: The k of pass@k, 1 <= k <= G.
        **kwargs: Ignored.

    Returns:
        advantages (N, T) and metrics as ``grpo``.

    Raises:
        ValueError: for k outside [1, G] or rewards other than 0 and 1.
    """
    if not 1 <= k <= group_size:
        raise ValueError(f"passk needs 1 <= k <= group_size={group_size}, got k={k}")
    rewards = float_rewards(rewards)
    if not ((rewards == 0) | (rewards == 1)).all():
        raise ValueError(
            f"passk needs binary rewards (0 or 1); got values {sorted(set(rewards.unique().tolist()) - {0.0, 1.0})[:5]}"
        )
    grouped = group_view(rewards, group_size)  # (B, G)
    wrong = (group_size - grouped.sum(dim=1, keepdim=True)).long()  # (B, 1)
    fail_all = torch.tensor(
        [math.comb(n, k) / math.comb(group_size, k) for n in range(group_size + 1)],
        dtype=rewards.dtype,
        device=rewards.device,
    )  # P(all k wrong | n wrong)
    fail_rest = torch.tensor(
        [
            math.comb(max(n - 1, 0), k - 1) / math.comb(group_size - 1, k - 1) if n else 0.0
            for n in range(group_size + 1)
        ],
        dtype=rewards.dtype,
        device=rewards.device,
    )
    credit = torch.where(grouped == 1, torch.ones_like(grouped), 1 - fail_rest[wrong])  # (B, G)
    centered = credit - (1 - fail_all[wrong])  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    scores = torch.where(zero_std, torch.zeros_like(centered), centered)  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics
