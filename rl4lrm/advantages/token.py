"""Token-level estimators: returns over the completion's tokens, with per-token rewards (a KL, dense rewards).

``reinforce_pp`` and ``reinforce_pp_baseline`` (REINFORCE++: discounted returns normalised over the batch)
and ``gae`` (generalized advantage estimation from a critic's values, Schulman et al., 2016,
arXiv:1506.02438):

    δ_t = r_t + γ V(s_{t+1}) − V(s_t),    A_t = Σ_l (γλ)^l δ_{t+l},    return_t = A_t + V(s_t).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl4lrm.advantages.base import (
    WHITEN_STDS,
    _check_singleton,
    advantage_metrics,
    float_rewards,
    group_view,
    register_advantage,
    zero_std_groups,
)


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


def whiten(x: Tensor, response_mask: Tensor, std: str = "biased", eps: float = 1e-8) -> Tensor:
    """(x - mean) / scale over the valid tokens of the whole batch, zero on padding.

    ``std="biased"``: scale = sqrt(mean((x - mean)^2)) + eps (rl4lrm; OpenRLHF's advantage normalisation
    uses the same variance with ``var.clamp(min=eps).rsqrt()``). ``std="unbiased"``: scale =
    sqrt(var * n / (n - 1) + eps) over the n valid tokens (verl's ``masked_whiten``, TRL's PPO). The two
    differ by a factor sqrt(n / (n - 1)), about 0.3% at n = 170 tokens.

    Args:
        x: Per-token values, shape (N, T).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        std: One of ``WHITEN_STDS``.
        eps: Keeps the scale positive.

    Returns:
        Shape (N, T); exactly 0 everywhere if the valid values are all equal (or there are none).
    """
    if std not in WHITEN_STDS:
        raise ValueError(f"whiten std must be one of {WHITEN_STDS}, got {std!r}")
    valid = response_mask.bool()
    values = x[valid]
    if values.numel() == 0 or (values == values[0]).all():
        return torch.zeros_like(x)
    centered = x - values.mean()
    if std == "biased":
        scaled = centered / (values.std(unbiased=False) + eps)
    else:
        scaled = centered * torch.rsqrt(values.var(unbiased=True) + eps)
    return scaled * response_mask.to(x.dtype)


def _group_baseline(rewards: Tensor, group_size: int, group_ids: Tensor | None, singleton: str) -> Tensor:
    """r_i - mean of r_i's group, shape (N,): exactly 0 for constant groups; singletons per ``singleton``.

    Groups are contiguous blocks of ``group_size`` rows, or, if ``group_ids`` (N,) is given, the rows that
    share an id (any order, any sizes, as verl's ``index``).
    """
    if group_ids is None:
        grouped = group_view(rewards, group_size)  # (B, G)
        centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
        constant = zero_std_groups(rewards, group_size)[:, None]  # (B, 1)
        centered = torch.where(constant, torch.zeros_like(centered), centered).reshape(-1)  # (N,)
        sizes = torch.full_like(rewards, group_size)  # (N,)
    else:
        if group_ids.shape != rewards.shape:
            raise ValueError(f"group_ids must have shape {tuple(rewards.shape)}, got {tuple(group_ids.shape)}")
        _, row_group, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)  # (N,), (K,)
        k = len(counts)
        sums = rewards.new_zeros(k).index_add_(0, row_group, rewards)  # (K,)
        low = rewards.new_full((k,), float("inf")).scatter_reduce_(0, row_group, rewards, "amin")  # (K,)
        high = rewards.new_full((k,), -float("inf")).scatter_reduce_(0, row_group, rewards, "amax")  # (K,)
        centered = rewards - (sums / counts)[row_group]  # (N,)
        centered = torch.where((low == high)[row_group], torch.zeros_like(centered), centered)  # (N,)
        sizes = counts[row_group].to(rewards.dtype)  # (N,)
    if singleton == "reward":
        centered = torch.where(sizes == 1, rewards, centered)
    return centered  # (N,)


@register_advantage("reinforce_pp", requires=("token_rewards",))
def reinforce_pp(
    rewards: Tensor,
    response_mask: Tensor,
    group_size: int,
    *,
    token_rewards: Tensor | None = None,
    subtract_group_mean: bool = False,
    gamma: float = 1.0,
    whiten_std: str = "biased",
    group_ids: Tensor | None = None,
    singleton: str = "zero",
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE++: token returns-to-go normalised with the mean and std of the whole batch.

    Each token's return is the outcome reward plus the per-token rewards (the KL penalty when it
    is placed in the reward) from that token on, discounted by ``gamma``; the batch-wide
    normalisation replaces a learned critic and, unlike GRPO's per-group std, does not inflate
    nearly-constant groups. This is OpenRLHF's ``reinforce`` / ``reinforce_baseline`` (the paper's
    code). verl's ``reinforce_plus_plus`` is the same up to ``whiten_std``; its
    ``reinforce_plus_plus_baseline`` instead centres each row's *summed* token rewards on the group
    and gives that one number to every token (no returns-to-go, no gamma).

    Args:
        rewards: Scalar outcome reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        group_size: G, samples per prompt (validated; used by the baseline variant).
        token_rewards: Optional per-token rewards, shape (N, T).
        subtract_group_mean: Subtract each group's mean outcome first (``reinforce_pp_baseline``).
        gamma: Discount in [0, 1] of the returns-to-go (verl ``algorithm.gamma``, OpenRLHF ``--gamma``).
        whiten_std: One of ``WHITEN_STDS``: ``"biased"`` (the paper's code, OpenRLHF) or ``"unbiased"``
            (verl).
        group_ids: Optional prompt id per row, shape (N,): the baseline variant then groups rows by id,
            so groups may differ in size and need not be contiguous (``group_size`` is then ignored).
        singleton: One of ``SINGLETONS``: what the baseline variant does with a group of one.
        **kwargs: Ignored.

    Returns:
        advantages (N, T), zero on padding, and the ``adv/*`` metrics.
    """
    if not 0 <= gamma <= 1:
        raise ValueError(f"reinforce_pp needs gamma in [0, 1], got {gamma}")
    _check_singleton(singleton)
    rewards = float_rewards(rewards)
    if group_ids is None:
        group_view(rewards, group_size)  # validation
    if subtract_group_mean:
        # constant groups: exactly 0, not a rounding residue that the whitening would blow up
        rewards = _group_baseline(rewards, group_size, group_ids, singleton)  # (N,)
    dense = token_level_rewards(rewards, response_mask, token_rewards)  # (N, T)
    returns = returns_to_go(dense, response_mask, gamma)  # (N, T)
    advantages = whiten(returns, response_mask, whiten_std)  # (N, T)
    return advantages, advantage_metrics(advantages, response_mask)


@register_advantage("reinforce_pp_baseline", requires=("token_rewards",), min_group_size=2)
def reinforce_pp_baseline(
    rewards: Tensor, response_mask: Tensor, group_size: int, *, token_rewards: Tensor | None = None, **kwargs
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE++ with a group-mean baseline before the batch normalisation (Hu, 2025, v2).

    Takes ``reinforce_pp``'s keyword arguments (``gamma``, ``whiten_std``, ``group_ids``, ``singleton``).
    """
    kwargs.pop("subtract_group_mean", None)
    return reinforce_pp(
        rewards, response_mask, group_size, token_rewards=token_rewards, subtract_group_mean=True, **kwargs
    )


@register_advantage("gae", requires=("values", "token_rewards"))
def gae(
    rewards: Tensor,
    response_mask: Tensor,
    group_size: int,
    *,
    values: Tensor,
    token_rewards: Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """Generalized advantage estimation from a critic's values.

    The outcome reward sits on each row's last valid token (plus ``token_rewards``, e.g. a
    per-token KL penalty); the value after the last token is 0 (the episode ends).

    Args:
        rewards: Scalar outcome reward per sample, shape (N,).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T); rows right-padded.
        group_size: G, samples per prompt (validated only: the critic is the baseline).
        values: V(s_t) from the critic, shape (N, T); treated as constants.
        token_rewards: Optional per-token rewards, shape (N, T).
        gamma: Discount γ in [0, 1]; 1 is usual for LLM episodes of a few hundred tokens.
        lam: GAE λ in [0, 1]: the bias (0) / variance (1) trade-off.
        **kwargs: Ignored.

    Returns:
        advantages: shape (N, T), zero on padding; ``advantages + values`` are the critic's
            regression targets (the λ-returns).
        metrics: the ``adv/*`` statistics and ``critic/value_mean``.
    """
    if not (0 <= gamma <= 1 and 0 <= lam <= 1):
        raise ValueError(f"gae needs gamma and lam in [0, 1], got gamma={gamma}, lam={lam}")
    rewards = float_rewards(rewards)
    group_view(rewards, group_size)
    if values.shape != response_mask.shape:
        raise ValueError(
            f"values must have the shape of response_mask {tuple(response_mask.shape)}, got {tuple(values.shape)}"
        )
    mask = response_mask.to(rewards.dtype)  # (N, T)
    values = values.detach().to(rewards.dtype) * mask  # (N, T)
    dense = token_level_rewards(rewards, response_mask, token_rewards)  # (N, T)
    T = dense.shape[1]
    advantages = torch.zeros_like(dense)  # (N, T)
    next_value = torch.zeros_like(rewards)  # (N,)
    running = torch.zeros_like(rewards)  # (N,)
    for t in reversed(range(T)):
        # padding after the last token has mask 0: the state after the last token is terminal
        delta = dense[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
        next_value = values[:, t]
    metrics = advantage_metrics(advantages, response_mask)
    metrics["critic/value_mean"] = (values.sum() / mask.sum().clamp(min=1)).item()
    return advantages, metrics
