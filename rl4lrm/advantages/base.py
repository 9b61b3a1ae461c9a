"""What every advantage estimator shares: the registry and its contract, group views and the metrics.

An estimator maps ``(rewards (N,), response_mask (N, T), group_size, **context)`` to ``(advantages (N, T),
metrics)``; ``register_advantage`` records the context it needs and its own check of the settings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl4lrm.registry import Registry

ADVANTAGES = Registry("advantage estimator")

WHITEN_STDS = ("biased", "unbiased")
"""How ``whiten`` scales: ``biased`` divides by the population std + eps (rl4lrm; OpenRLHF, which uses the same
variance with eps as a floor on it), ``unbiased`` multiplies by rsqrt(Bessel-corrected variance + eps) (verl's
``masked_whiten``, copied from TRL)."""

SINGLETONS = ("zero", "reward")
"""What a group of one sample gets: ``zero`` (rl4lrm: the sample is its own baseline, so there is no signal;
``rloo`` refuses, its leave-one-out baseline being undefined) or ``reward`` (verl: the baseline of a lone sample
is 0, so its raw reward is the advantage, divided by 1 + eps where the std would be)."""


def register_advantage(name: str, requires: tuple[str, ...] = (), min_group_size: int = 1, check=None):
    """Decorator registering an estimator.

    Args:
        name: the registry name.
        requires: the context it needs (``fn.requires``).
        min_group_size: the smallest G it learns from (``fn.min_group_size``): 2 for group baselines, which
            are the sample itself when G = 1, so every advantage is 0 and nothing trains.
        check: ``check(preset, group_size)`` raising ``ValueError`` for settings the estimator cannot use
            (``fn.check``); configs call it through ``check_advantage`` before any work.
    """

    def add(fn):
        fn.requires, fn.min_group_size, fn.check = frozenset(requires), min_group_size, check
        return ADVANTAGES.register(name)(fn)

    return add


def check_advantage(name: str, preset, group_size: int) -> None:
    """Runs the estimator ``name``'s checks of a preset and group size (see ``register_advantage``)."""
    estimator = ADVANTAGES.get(name)
    if group_size < estimator.min_group_size:
        raise ValueError(
            f"advantage {name!r} needs TrainConfig.group_size >= {estimator.min_group_size} (its baseline "
            f"is the group, so G={group_size} trains nothing); got group_size={group_size}"
        )
    if estimator.check is not None:
        estimator.check(preset, group_size)


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


def _check_singleton(singleton: str) -> None:
    if singleton not in SINGLETONS:
        raise ValueError(f"singleton must be one of {SINGLETONS}, got {singleton!r}")


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
            f"response_mask must have shape (N, T) with N={seq_advantages.shape[0]}, got {tuple(response_mask.shape)}"
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
