"""Policy-gradient losses, loss aggregation, and the per-token log-prob / entropy helpers.

- ``vanilla_pg``: the REINFORCE surrogate -A * log pi (Williams, 1992).
- ``ppo_clip``: the clipped surrogate of PPO (Schulman et al., 2017, arXiv:1707.06347), with
  separate lower and upper clip bounds: DAPO's "clip-higher" (Yu et al., 2025, arXiv:2503.14476).

Aggregation, i.e. how the (N, T) per-token loss becomes one scalar, is an axis of its own:

- ``token_mean``: every valid token in the batch weighs the same (DAPO; verl's default).
- ``seq_mean_token_mean``: mean over tokens within a sequence, then over sequences (original
  GRPO, Shao et al., 2024, arXiv:2402.03300); a token of a short answer weighs more.
- ``seq_mean_token_sum_norm``: sum over tokens divided by the constant N * max_len (Dr.GRPO,
  Liu et al., 2025, arXiv:2503.20783), which removes the length bias of the per-sequence mean.

Every policy loss has one signature::

    fn(logprobs, old_logprobs, advantages, response_mask, *, aggregation, clip_low, clip_high,
       max_len, **kwargs) -> (loss, metrics)
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl4lrm.registry import Registry

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")

POLICY_LOSSES = Registry("policy loss")
register_policy_loss = POLICY_LOSSES.register

# exp(20) ~ 4.9e8 stays finite in every float dtype while exp(89) overflows float32; padding
# positions may hold arbitrary log-probs, and an inf ratio there would poison the sum with NaN.
# Real tokens that far off-policy are clipped anyway whenever the advantage has the clipped sign.
LOG_RATIO_CLAMP = 20.0


def aggregation_denominators(
    response_mask: Tensor, mode: str, max_len: int | None = None
) -> Tensor:
    """The weight each token gets in the aggregated loss, so that aggregate == (loss * w).sum().

    Denominators are clamped to >= 1, so empty rows (or an empty batch) give weight 0, not NaN.

    Args:
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        mode: One of ``AGGREGATIONS``.
        max_len: Constant length of ``seq_mean_token_sum_norm`` (the generation budget);
            defaults to T. Ignored by the other modes.

    Returns:
        Weights, shape (N, T): mask / sum(mask) for ``token_mean``, mask / (N * len_i) for
        ``seq_mean_token_mean`` (every row counts in the mean over sequences, empty ones too),
        mask / (N * max_len) for ``seq_mean_token_sum_norm``.

    Raises:
        ValueError: for an unknown mode (listing ``AGGREGATIONS``) or max_len < 1.
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {mode!r}; known: {', '.join(AGGREGATIONS)}")
    if response_mask.dim() != 2:
        raise ValueError(f"response_mask must have shape (N, T), got {tuple(response_mask.shape)}")
    mask = response_mask if response_mask.is_floating_point() else response_mask.float()  # (N, T)
    n, t = mask.shape
    if mode == "token_mean":
        return mask / mask.sum().clamp(min=1)
    if mode == "seq_mean_token_mean":
        lengths = mask.sum(dim=1, keepdim=True).clamp(min=1)  # (N, 1)
        return mask / (lengths * max(n, 1))
    max_len = t if max_len is None else max_len
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    return mask / (max(n, 1) * max_len)


def aggregate(
    loss_mat: Tensor, response_mask: Tensor, mode: str, max_len: int | None = None
) -> Tensor:
    """Reduces a per-token loss to a scalar with the chosen aggregation.

    Args:
        loss_mat: Per-token loss, shape (N, T).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        mode: One of ``AGGREGATIONS``; see ``aggregation_denominators``.
        max_len: Constant length for ``seq_mean_token_sum_norm``; defaults to T.

    Returns:
        Scalar tensor, differentiable with respect to ``loss_mat``.
    """
    if loss_mat.shape != response_mask.shape:
        raise ValueError(
            f"loss_mat {tuple(loss_mat.shape)} and response_mask {tuple(response_mask.shape)} "
            "must have the same shape"
        )
    weights = aggregation_denominators(response_mask, mode, max_len)  # (N, T)
    # Padding may hold inf/NaN (e.g. -inf log-probs); 0 * inf is NaN, so zero it explicitly.
    loss_mat = loss_mat.masked_fill(~response_mask.bool(), 0.0)  # (N, T)
    return (loss_mat * weights).sum()


def _check_clip(clip_low: float, clip_high: float) -> None:
    if not 0.0 <= clip_low < 1.0:
        raise ValueError(f"clip_low must be in [0, 1) so that 1 - clip_low > 0, got {clip_low}")
    if clip_high < 0.0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high}")


def _masked_mean(x: Tensor, mask: Tensor) -> float:
    return ((x * mask).sum() / mask.sum().clamp(min=1)).item()


@torch.no_grad()
def _drift_metrics(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor) -> dict[str, float]:
    """Ratio statistics over valid tokens: how far the policy moved since sampling."""
    log_ratio = (logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    ratio = torch.exp(log_ratio)  # (N, T)
    valid = mask.bool()
    return {
        "ratio/mean": _masked_mean(ratio, mask),
        "ratio/max": ratio[valid].max().item() if valid.any() else 1.0,
        "kl/old_approx": _masked_mean(-log_ratio, mask),  # k1 of the update drift
    }


@register_policy_loss("vanilla_pg")
def vanilla_pg(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    aggregation: str = "token_mean",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    max_len: int | None = None,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE surrogate: per-token loss -A * log pi; no ratio, no clipping.

    Args:
        logprobs: log pi_theta of the sampled tokens, with grad, shape (N, T).
        old_logprobs: log-probs at sampling time, shape (N, T); only used for drift metrics.
        advantages: Token-level advantages, shape (N, T).
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        aggregation: One of ``AGGREGATIONS``.
        clip_low: Unused; part of the shared signature.
        clip_high: Unused; part of the shared signature.
        max_len: Constant length for ``seq_mean_token_sum_norm``; defaults to T.
        **kwargs: Ignored; part of the shared signature.

    Returns:
        loss: scalar tensor.
        metrics: ``loss/policy``, ``clip/frac`` (always 0), ``ratio/mean``, ``ratio/max``,
            ``kl/old_approx``.
    """
    mask = response_mask.to(logprobs.dtype)  # (N, T)
    loss_mat = -advantages.detach() * logprobs  # (N, T)
    loss = aggregate(loss_mat, response_mask, aggregation, max_len)
    metrics = {"loss/policy": loss.item(), "clip/frac": 0.0}
    metrics.update(_drift_metrics(logprobs, old_logprobs, mask))
    return loss, metrics


@register_policy_loss("ppo_clip")
def ppo_clip(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    aggregation: str = "token_mean",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    max_len: int | None = None,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """PPO clipped surrogate: -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A).

    With ratio = pi_theta / pi_old per token. On-policy (logprobs == old_logprobs) the gradient
    equals that of ``vanilla_pg``; later epochs stop pushing a token once its ratio has left the
    band in the direction its advantage favours. clip_high > clip_low is DAPO's clip-higher.

    Args:
        logprobs: log pi_theta of the sampled tokens, with grad, shape (N, T).
        old_logprobs: log pi_old at sampling time, shape (N, T); treated as a constant.
        advantages: Token-level advantages, shape (N, T); treated as a constant.
        response_mask: 1 on response tokens, 0 on padding, shape (N, T).
        aggregation: One of ``AGGREGATIONS``.
        clip_low: Lower band 1 - clip_low, in [0, 1).
        clip_high: Upper band 1 + clip_high, >= 0.
        max_len: Constant length for ``seq_mean_token_sum_norm``; defaults to T.
        **kwargs: Ignored; part of the shared signature.

    Returns:
        loss: scalar tensor.
        metrics: ``loss/policy``, ``clip/frac`` (fraction of valid tokens where the clipped
            term is strictly smaller, i.e. where the gradient is cut), ``ratio/mean``,
            ``ratio/max``, ``kl/old_approx`` (mean of old_logprobs - logprobs).
    """
    _check_clip(clip_low, clip_high)
    # Detached so that passing the same tensor as logprobs (one on-policy epoch) still gives
    # ratio 1 with the policy gradient, instead of a constant ratio with zero gradient.
    old_logprobs = old_logprobs.detach()
    advantages = advantages.detach()
    mask = response_mask.to(logprobs.dtype)  # (N, T)
    log_ratio = (logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    ratio = torch.exp(log_ratio)  # (N, T)
    unclipped = ratio * advantages  # (N, T)
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages  # (N, T)
    loss_mat = -torch.minimum(unclipped, clipped)  # (N, T)
    loss = aggregate(loss_mat, response_mask, aggregation, max_len)
    with torch.no_grad():
        metrics = {
            "loss/policy": loss.item(),
            "clip/frac": _masked_mean((clipped < unclipped).to(mask.dtype), mask),
        }
    metrics.update(_drift_metrics(logprobs, old_logprobs, mask))
    return loss, metrics


def token_logprobs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log softmax(logits)[token] for each position, without a second (N, T, V) float copy.

    ``log_softmax(logits).gather(...)`` would materialise a full (N, T, V) tensor; gathering the
    logit first and subtracting the logsumexp only keeps (N, T) results. For bf16 logits, cast to
    float32 first if exact log-probs matter (the logsumexp is then in float32).

    Args:
        logits: Unnormalised scores, shape (N, T, V).
        tokens: Token ids, shape (N, T), int64.

    Returns:
        Log-probabilities of ``tokens``, shape (N, T).
    """
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (N, T)
    return picked - torch.logsumexp(logits, dim=-1)  # (N, T)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the categorical distribution at each position.

    H = logsumexp(z) - sum_v softmax(z)_v z_v, which needs one (N, T, V) softmax and no
    log-softmax copy (the formulation verl uses).

    Args:
        logits: Unnormalised scores, shape (N, T, V).

    Returns:
        Entropy in nats, shape (N, T).
    """
    probs = torch.softmax(logits, dim=-1)  # (N, T, V)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)  # (N, T)
