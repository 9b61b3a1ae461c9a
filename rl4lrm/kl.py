"""Sample-based estimators of KL(pi || pi_ref), per token.

From John Schulman, "Approximating KL Divergence" (2020), http://joschu.net/blog/kl-approx.html.
Tokens are sampled from pi; with log r = ref_logprobs - logprobs = log pi_ref(x) - log pi(x):

- ``k1 = -log r``: unbiased, high variance, negative on many tokens.
- ``k2 = (log r)^2 / 2``: biased (exact to second order when pi is close to pi_ref), >= 0, low
  variance.
- ``k3 = (r - 1) - log r``: unbiased, >= 0, low variance; the estimator of GRPO
  (Shao et al., 2024, arXiv:2402.03300).
- ``abs = |log r|``: biased, >= 0; verl offers it (``kl_penalty="abs"``).

Unbiased *values* do not mean unbiased *gradients* when the estimate is used as a loss on
on-policy samples: there the gradient of k2 matches that of KL(pi || pi_ref), while the gradient
of k3 matches that of the reverse direction KL(pi_ref || pi).

Hence verl's *straight-through* variants, named with a trailing ``+`` (``k1+``, ``k3+``, ``abs+``):
the value of the named estimator with the gradient of k2 (verl ``kl_penalty``; ``k2+`` is k2 itself).
OpenRLHF's ``unbiased_gradient`` option does the same with an importance weight on the k2 gradient.

Each estimator maps ``(logprobs (N, T), ref_logprobs (N, T))`` to an elementwise ``(N, T)``
tensor. Masking and reduction are left to the caller (e.g. ``rl4lrm.aggregation.aggregate``), because
the KL can be placed in the reward or in the loss. ``kl_penalty`` adds the ``+`` variants and an
optional clamp of the value (verl clamps k3 to [-10, 10], OpenRLHF every estimator).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rl4lrm.registry import Registry

KL_ESTIMATORS: Registry[Callable[[Tensor, Tensor], Tensor]] = Registry("KL estimator")
register_kl_estimator = KL_ESTIMATORS.register

# exp(20) ~ 4.9e8 is finite in every float dtype, while exp(89) overflows float32 to inf, and
# padding positions can hold arbitrary log-probabilities; inf there would turn the masked sum NaN.
LOG_RATIO_CLAMP = 20.0


@register_kl_estimator("k1")
def kl_k1(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k1 = -log r = logprobs - ref_logprobs, shape (N, T)."""
    return logprobs - ref_logprobs  # (N, T)


@register_kl_estimator("k2")
def kl_k2(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k2 = (log r)^2 / 2, shape (N, T)."""
    return 0.5 * (ref_logprobs - logprobs).pow(2)  # (N, T)


@register_kl_estimator("abs")
def kl_abs(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """abs = |log r|, shape (N, T)."""
    return (logprobs - ref_logprobs).abs()  # (N, T)


@register_kl_estimator("k3")
def kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k3 = (r - 1) - log r, with log r clamped to [-20, 20] before the exp, shape (N, T)."""
    log_ratio = (ref_logprobs - logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    return torch.exp(log_ratio) - 1.0 - log_ratio  # (N, T)


def kl_estimator_names() -> list[str]:
    """Every name ``kl_penalty`` accepts: the registered estimators and their ``+`` variants but ``k2+``."""
    names = KL_ESTIMATORS.names()
    return names + [f"{name}+" for name in names if name != "k2"]


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: str, clamp: float = 0.0) -> Tensor:
    """Per-token KL(pi || pi_ref) estimate with the named estimator.

    Args:
        logprobs: log pi of the sampled tokens, shape (N, T).
        ref_logprobs: log pi_ref of the same tokens, shape (N, T).
        estimator: One of ``kl_estimator_names()``: "k1", "k2", "k3", "abs", or one of them with a
            trailing "+" for its value with k2's gradient (straight-through).
        clamp: If > 0, the value is clamped to [-clamp, clamp] (before the straight-through, as verl
            does); tokens beyond it then get no gradient from a plain estimator. 0 = no clamp.

    Returns:
        Elementwise estimate, shape (N, T); not masked, not reduced.

    Raises:
        ValueError: for an unknown estimator (listing the known ones), a negative clamp or mismatched shapes.
    """
    if estimator not in kl_estimator_names():
        raise ValueError(f"unknown KL estimator {estimator!r}; known: {', '.join(kl_estimator_names())}")
    if clamp < 0:
        raise ValueError(f"KL clamp must be >= 0 (0 = off), got {clamp}")
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)} and ref_logprobs {tuple(ref_logprobs.shape)} must have the same shape"
        )
    straight_through = estimator.endswith("+")
    value = KL_ESTIMATORS.get(estimator.rstrip("+"))(logprobs, ref_logprobs)  # (N, T)
    if clamp > 0:
        value = value.clamp(-clamp, clamp)
    if not straight_through:
        return value
    surrogate = kl_k2(logprobs, ref_logprobs)  # (N, T): carries the gradient only
    return value.detach() + (surrogate - surrogate.detach())
