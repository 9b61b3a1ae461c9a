"""Sample-based estimators of KL(pi || pi_ref), per token.

From John Schulman, "Approximating KL Divergence" (2020), http://joschu.net/blog/kl-approx.html.
Tokens are sampled from pi; with log r = ref_logprobs - logprobs = log pi_ref(x) - log pi(x):

- ``k1 = -log r``: unbiased, high variance, negative on many tokens.
- ``k2 = (log r)^2 / 2``: biased (exact to second order when pi is close to pi_ref), >= 0, low
  variance.
- ``k3 = (r - 1) - log r``: unbiased, >= 0, low variance; the estimator of GRPO
  (Shao et al., 2024, arXiv:2402.03300).

Unbiased *values* do not mean unbiased *gradients* when the estimate is used as a loss on
on-policy samples: there the gradient of k2 matches that of KL(pi || pi_ref), while the gradient
of k3 matches that of the reverse direction KL(pi_ref || pi).

Each estimator maps ``(logprobs (N, T), ref_logprobs (N, T))`` to an elementwise ``(N, T)``
tensor. Masking and reduction are left to the caller (e.g. ``rl4lrm.aggregation.aggregate``), because
the KL can be placed in the reward or in the loss.
"""

from __future__ import annotations

from typing import Callable

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


@register_kl_estimator("k3")
def kl_k3(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k3 = (r - 1) - log r, with log r clamped to [-20, 20] before the exp, shape (N, T)."""
    log_ratio = (ref_logprobs - logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    return torch.exp(log_ratio) - 1.0 - log_ratio  # (N, T)


def kl_penalty(logprobs: Tensor, ref_logprobs: Tensor, estimator: str) -> Tensor:
    """Per-token KL(pi || pi_ref) estimate with the named estimator.

    Args:
        logprobs: log pi of the sampled tokens, shape (N, T).
        ref_logprobs: log pi_ref of the same tokens, shape (N, T).
        estimator: One of ``KL_ESTIMATORS.names()``: "k1", "k2", "k3".

    Returns:
        Elementwise estimate, shape (N, T); not masked, not reduced.

    Raises:
        ValueError: for an unknown estimator (listing the known ones) or mismatched shapes.
    """
    fn = KL_ESTIMATORS.get(estimator)
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)} and ref_logprobs {tuple(ref_logprobs.shape)} "
            "must have the same shape"
        )
    return fn(logprobs, ref_logprobs)
