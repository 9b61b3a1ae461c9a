"""Advantage estimators: one scalar reward per sample in, token-level advantages out.

- ``reinforce``: REINFORCE with a batch-mean baseline (Williams, 1992, "Simple statistical
  gradient-following algorithms for connectionist reinforcement learning").
- ``grpo``: the group-relative advantage of GRPO (Shao et al., 2024, "DeepSeekMath",
  arXiv:2402.03300).
- ``dr_grpo``: GRPO without the division by the group std (Liu et al., 2025, "Understanding
  R1-Zero-Like Training", arXiv:2503.20783).
- ``rloo``: leave-one-out baseline (Kool et al., 2019; Ahmadian et al., 2024, "Back to Basics",
  arXiv:2402.14740).
- ``reinforce_pp``: REINFORCE++ (Hu, 2025, arXiv:2501.03262): token-level returns (outcome plus
  per-token penalties such as the KL) normalised over the whole batch; ``reinforce_pp_baseline``
  subtracts the group mean first.
- ``remax``: the reward of the greedy completion as baseline (Li et al., 2023, "ReMax",
  arXiv:2310.10505).
- ``passk``: a group advantage whose expectation is the gradient of pass@k instead of pass@1
  (Chen et al., 2025, "Pass@k Training", arXiv:2508.10751; Walder & Karkhanis, 2025, "Pass@K
  Policy Optimization", arXiv:2505.15201).
- ``gae`` (with a learned critic) lives in ``rl4lrm.critic``.

Every estimator has the same signature::

    fn(rewards (N,), response_mask (N, T), group_size, **context) -> (advantages (N, T), metrics)

The G samples of one prompt are contiguous rows ``g*G .. g*G+G-1``. Rewards are outcome
rewards, so each sample's advantage is broadcast over its response tokens and zeroed on padding.
``context`` carries what some estimators need and the others ignore; an estimator declares it with
``@register_advantage(name, requires=...)`` so the trainer knows what to compute:

- ``baseline_rewards`` (N,): reward of the greedy completion of each row's prompt (ReMax);
- ``values`` (N, T): the critic's value of the state before each token (GAE);
- ``token_rewards`` (N, T): per-token rewards such as ``-beta * k1`` when the KL is placed in the
  reward. Estimators that do not require it receive them already summed into ``rewards``;
- plain scalars: ``gamma``, ``lam`` (GAE), ``k`` (pass@k).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rl4lrm.registry import Registry

ADVANTAGES = Registry("advantage estimator")


def register_advantage(name: str, requires: tuple[str, ...] = (), min_group_size: int = 1):
    """Decorator registering an estimator; ``requires`` names the context it needs (``fn.requires``) and
    ``min_group_size`` the smallest G it learns from (``fn.min_group_size``: 2 for group baselines, which
    are the sample itself when G = 1, so every advantage is 0 and nothing trains)."""

    def add(fn):
        fn.requires, fn.min_group_size = frozenset(requires), min_group_size
        return ADVANTAGES.register(name)(fn)

    return add


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
def advantage_metrics(advantages: Tensor, response_mask: Tensor) -> dict[str, float]:
    # Statistics over valid tokens, i.e. weighted as the loss sees them (as verl logs them).
    valid = advantages[response_mask.bool()]
    if valid.numel() == 0:
        return {"adv/mean": 0.0, "adv/std": 0.0, "adv/abs_max": 0.0}
    return {
        "adv/mean": valid.mean().item(),
        "adv/std": valid.std(unbiased=False).item(),
        "adv/abs_max": valid.abs().max().item(),
    }


def float_rewards(rewards: Tensor) -> Tensor:
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
    rewards = float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    if normalize_std:
        # Manual Bessel correction: torch.std of a single element is NaN (group_size 1).
        var = centered.pow(2).sum(dim=1, keepdim=True) / max(group_size - 1, 1)  # (B, 1)
        centered = centered / (var.sqrt() + eps)
    scores = torch.where(zero_std, torch.zeros_like(centered), centered)  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics


@register_advantage("dr_grpo", min_group_size=2)
def dr_grpo(rewards: Tensor, response_mask: Tensor, group_size: int, **kwargs) -> tuple[Tensor, dict[str, float]]:
    """Dr.GRPO's advantage: A_i = r_i - mean_group, no std scaling.

    Dividing by the group std up-weights prompts that are nearly always solved or nearly always
    failed (a difficulty bias); Dr.GRPO removes it. Same arguments and metrics as ``grpo``.
    """
    return grpo(rewards, response_mask, group_size, normalize_std=False)


@register_advantage("rloo", min_group_size=2)
def rloo(rewards: Tensor, response_mask: Tensor, group_size: int, **kwargs) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE leave-one-out: A_i = r_i - mean_{j != i} r_j over the sample's group.

    The baseline of each sample excludes the sample itself, so it is independent of the sample's
    action and the estimate stays unbiased. Algebraically A_i = G / (G - 1) * (r_i - mean_group).

    Args:
        rewards: Scalar reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G >= 2, samples per prompt.
        **kwargs: Ignored.

    Returns:
        advantages (N, T) and metrics as ``grpo``.

    Raises:
        ValueError: if group_size < 2 (no other sample to form the baseline).
    """
    if group_size < 2:
        raise ValueError(f"rloo needs group_size >= 2 for a leave-one-out baseline, got {group_size}")
    rewards = float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    scores = torch.where(zero_std, torch.zeros_like(grouped), grouped - others_mean)  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics


def token_level_rewards(rewards: Tensor, response_mask: Tensor, token_rewards: Tensor | None = None) -> Tensor:
    """Dense rewards: the outcome reward on each row's last valid token, plus ``token_rewards``.

    Args:
        rewards: Scalar outcome reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T); rows are right-padded.
        token_rewards: Optional per-token rewards (e.g. ``-beta * k1``), shape (N, T).

    Returns:
        Shape (N, T), zero on padding. An empty row has nowhere to put its outcome and stays 0.
    """
    mask = response_mask.to(rewards.dtype)  # (N, T)
    lengths = mask.sum(dim=1).long()  # (N,)
    last = (lengths - 1).clamp(min=0)  # (N,)
    dense = torch.zeros_like(mask)  # (N, T)
    if dense.shape[1] > 0:
        dense.scatter_(1, last[:, None], (rewards * (lengths > 0))[:, None])
    if token_rewards is not None:
        dense = dense + token_rewards.detach() * mask  # rewards are constants of the update
    return dense  # (N, T)


def returns_to_go(dense_rewards: Tensor, response_mask: Tensor, gamma: float = 1.0) -> Tensor:
    """G_t = sum_{s >= t} gamma^(s - t) r_s over valid tokens, shape (N, T)."""
    mask = response_mask.to(dense_rewards.dtype)  # (N, T)
    returns = torch.zeros_like(dense_rewards)  # (N, T)
    running = torch.zeros_like(dense_rewards[:, 0]) if dense_rewards.shape[1] else None  # (N,)
    for t in reversed(range(dense_rewards.shape[1])):
        running = (dense_rewards[:, t] + gamma * running) * mask[:, t]
        returns[:, t] = running
    return returns


def _whiten(x: Tensor, response_mask: Tensor, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over the valid tokens of the whole batch; exactly 0 if they are all equal."""
    valid = response_mask.bool()
    values = x[valid]
    if values.numel() == 0 or (values == values[0]).all():
        return torch.zeros_like(x)
    centered = x - values.mean()
    return centered / (values.std(unbiased=False) + eps) * response_mask.to(x.dtype)


@register_advantage("reinforce_pp", requires=("token_rewards",))
def reinforce_pp(
    rewards: Tensor,
    response_mask: Tensor,
    group_size: int,
    *,
    token_rewards: Tensor | None = None,
    subtract_group_mean: bool = False,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE++: token returns-to-go normalised with the mean and std of the whole batch.

    Each token's return is the outcome reward plus the per-token rewards (the KL penalty when it
    is placed in the reward) from that token on; the batch-wide normalisation replaces a learned
    critic and, unlike GRPO's per-group std, does not inflate nearly-constant groups.

    Args:
        rewards: Scalar outcome reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt (validated; used by the baseline variant).
        token_rewards: Optional per-token rewards, shape (N, T).
        subtract_group_mean: Subtract each group's mean outcome first (``reinforce_pp_baseline``).
        **kwargs: Ignored.

    Returns:
        advantages (N, T), zero on padding, and the ``adv/*`` metrics.
    """
    rewards = float_rewards(rewards)
    grouped = group_view(rewards, group_size)  # (B, G)
    if subtract_group_mean:
        centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
        # constant groups: exactly 0, not a rounding residue that the whitening would blow up
        zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
        rewards = torch.where(zero_std, torch.zeros_like(centered), centered).reshape(-1)  # (N,)
    returns = returns_to_go(token_level_rewards(rewards, response_mask, token_rewards), response_mask)  # (N, T)
    advantages = _whiten(returns, response_mask)  # (N, T)
    return advantages, advantage_metrics(advantages, response_mask)


@register_advantage("reinforce_pp_baseline", requires=("token_rewards",), min_group_size=2)
def reinforce_pp_baseline(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, token_rewards: Tensor | None = None, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE++ with a group-mean baseline before the batch normalisation (Hu, 2025, v2)."""
    return reinforce_pp(rewards, response_mask, group_size, token_rewards=token_rewards, subtract_group_mean=True)


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


@register_advantage("passk", min_group_size=2)
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
    the group std: within a group the advantages take two values with mean 0, so dividing by
    their std would give back GRPO's advantages for every k. With k = 1 this is ``dr_grpo``.

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
        raise ValueError("passk needs binary rewards (0 or 1); got values "
                         f"{sorted(set(rewards.unique().tolist()) - {0.0, 1.0})[:5]}")
    grouped = group_view(rewards, group_size)  # (B, G)
    wrong = (group_size - grouped.sum(dim=1, keepdim=True)).long()  # (B, 1)
    fail_all = torch.tensor([math.comb(n, k) / math.comb(group_size, k) for n in range(group_size + 1)],
                            dtype=rewards.dtype, device=rewards.device)  # P(all k wrong | n wrong)
    fail_rest = torch.tensor([math.comb(max(n - 1, 0), k - 1) / math.comb(group_size - 1, k - 1) if n else 0.0
                              for n in range(group_size + 1)], dtype=rewards.dtype, device=rewards.device)
    credit = torch.where(grouped == 1, torch.ones_like(grouped), 1 - fail_rest[wrong])  # (B, G)
    centered = credit - (1 - fail_all[wrong])  # (B, G)
    zero_std = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
    scores = torch.where(zero_std, torch.zeros_like(centered), centered)  # (B, G)
    advantages = _to_tokens(scores.reshape(-1), response_mask)  # (N, T)
    metrics = advantage_metrics(advantages, response_mask)
    metrics["reward/frac_zero_std"] = zero_std.float().mean().item()
    return advantages, metrics
