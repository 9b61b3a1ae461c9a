"""Policy-gradient losses: per-token surrogates of the policy gradient, reduced by an aggregation.

- ``vanilla_pg``: the REINFORCE surrogate -A * log pi (Williams, 1992).
- ``ppo_clip``: the clipped surrogate of PPO (Schulman et al., 2017, arXiv:1707.06347), with
  separate lower and upper clip bounds: DAPO's "clip-higher" (Yu et al., 2025, arXiv:2503.14476).
- ``dual_clip``: PPO plus a floor -c*A on tokens with negative advantage, so a token whose ratio
  exploded cannot produce an unbounded loss (Ye et al., 2020, arXiv:1912.09729).
- ``gspo``: one importance ratio per sequence, the geometric mean of its token ratios, clipped
  (Zheng et al., 2025, "Group Sequence Policy Optimization", arXiv:2507.18071).
- ``cispo``: REINFORCE weighted by the clipped, detached importance ratio, so clipped tokens
  still get a gradient (MiniMax, 2025, "MiniMax-M1", arXiv:2506.13585).

Aggregation (how the (N, T) per-token loss becomes a scalar) is its own axis: ``rl4lrm.aggregation``.

Rollouts that came from a different policy than the one the ratio refers to (a stale policy in
a replay buffer, or a sampler with other numerics) are corrected by ``truncated_is_weights``:
every loss takes ``is_weights`` (N, T) that multiply its per-token loss (Yao et al., 2025, "Your
Efficient RL Framework Secretly Brings You Off-Policy RL Training", https://fengyao.notion.site/off-policy-rl;
Espeholt et al., 2018, "IMPALA", arXiv:1802.01561).

Every policy loss has one signature::

    fn(logprobs, old_logprobs, advantages, response_mask, *, aggregation, clip_low, clip_high,
       max_len, is_weights=None, **kwargs) -> (loss, metrics)
"""

from __future__ import annotations

import torch
from torch import Tensor

from rl4lrm.aggregation import aggregate
from rl4lrm.kl import kl_k3
from rl4lrm.registry import Registry

POLICY_LOSSES = Registry("policy loss")
register_policy_loss = POLICY_LOSSES.register

# exp(20) ~ 4.9e8 stays finite in every float dtype while exp(89) overflows float32; padding
# positions may hold arbitrary log-probs, and an inf ratio there would poison the sum with NaN.
# Real tokens that far off-policy are clipped anyway whenever the advantage has the clipped sign.
LOG_RATIO_CLAMP = 20.0


def _check_clip(clip_low: float, clip_high: float) -> None:
    if not 0.0 <= clip_low <= 1.0:
        raise ValueError(f"clip_low must be in [0, 1] (1 = no lower bound), got {clip_low}")
    if clip_high < 0.0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high}")


def _finish(
    loss_mat: Tensor, response_mask: Tensor, aggregation: str, max_len: int | None, is_weights: Tensor | None
) -> Tensor:
    """Applies the (detached) importance weights, then aggregates the per-token loss."""
    if is_weights is not None:
        loss_mat = loss_mat * is_weights.detach()
    return aggregate(loss_mat, response_mask, aggregation, max_len)


def _masked_mean(x: Tensor, mask: Tensor) -> float:
    return ((x * mask).sum() / mask.sum().clamp(min=1)).item()


def _clipped_surrogate(ratio: Tensor, advantages: Tensor, clip_low: float, clip_high: float) -> tuple[Tensor, Tensor]:
    """PPO's per-token loss -min(ratio * A, clip(ratio) * A), and where the clip cuts the gradient."""
    unclipped = ratio * advantages  # (N, T)
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages  # (N, T)
    return -torch.minimum(unclipped, clipped), clipped < unclipped


@torch.no_grad()
def _result(
    loss: Tensor, logprobs: Tensor, old_logprobs: Tensor, response_mask: Tensor, fractions: dict[str, Tensor]
) -> tuple[Tensor, dict[str, float]]:
    """(loss, metrics): ``loss/policy``, each boolean (N, T) map as a fraction of valid tokens, the drift."""
    mask = response_mask.to(logprobs.dtype)  # (N, T)
    metrics = {"loss/policy": loss.item(), **{k: _masked_mean(v.to(mask.dtype), mask) for k, v in fractions.items()}}
    metrics.update(_drift_metrics(logprobs, old_logprobs, mask))
    return loss, metrics


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
    is_weights: Tensor | None = None,
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
        is_weights: Optional detached per-token importance weights (N, T) multiplying the loss.
        **kwargs: Ignored; part of the shared signature.

    Returns:
        loss: scalar tensor.
        metrics: ``loss/policy``, ``clip/frac`` (always 0), ``ratio/mean``, ``ratio/max``,
            ``kl/old_approx``.
    """
    loss_mat = -advantages.detach() * logprobs  # (N, T)
    loss = _finish(loss_mat, response_mask, aggregation, max_len, is_weights)
    return _result(loss, logprobs, old_logprobs, response_mask, {"clip/frac": torch.zeros_like(response_mask)})


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
    is_weights: Tensor | None = None,
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
        is_weights: Optional detached per-token importance weights (N, T) multiplying the loss.
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
    old_logprobs, advantages = old_logprobs.detach(), advantages.detach()
    ratio = torch.exp((logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (N, T)
    loss_mat, clip_active = _clipped_surrogate(ratio, advantages, clip_low, clip_high)  # (N, T) each
    loss = _finish(loss_mat, response_mask, aggregation, max_len, is_weights)
    return _result(loss, logprobs, old_logprobs, response_mask, {"clip/frac": clip_active})


@register_policy_loss("dual_clip")
def dual_clip(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    aggregation: str = "token_mean",
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    max_len: int | None = None,
    is_weights: Tensor | None = None,
    dual_clip_c: float = 3.0,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """Dual-clip PPO: the PPO loss, capped at -c * A where A < 0.

    With A < 0 and a huge ratio (a token the policy now strongly prefers although it was bad),
    PPO's min() keeps the unclipped r * A, an unbounded loss whose gradient dominates the batch.
    The second clip bounds it at c * |A|; such tokens then get no gradient, like clipped ones.

    Args:
        logprobs, old_logprobs, advantages, response_mask, aggregation, clip_low, clip_high,
            max_len, is_weights: as in ``ppo_clip``.
        dual_clip_c: c > 1, the cap on the ratio for negative advantages (3 in Ye et al. and verl).
        **kwargs: Ignored.

    Returns:
        loss and the ``ppo_clip`` metrics plus ``clip/frac_dual`` (fraction of valid tokens
        where the dual clip is active).
    """
    if dual_clip_c <= 1:
        raise ValueError(f"dual_clip_c must be > 1, got {dual_clip_c}")
    _check_clip(clip_low, clip_high)
    old_logprobs, advantages = old_logprobs.detach(), advantages.detach()
    ratio = torch.exp((logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (N, T)
    ppo_mat, clip_active = _clipped_surrogate(ratio, advantages, clip_low, clip_high)  # (N, T) each
    floor = -dual_clip_c * advantages  # (N, T): positive where A < 0
    dual_active = (advantages < 0) & (ppo_mat > floor)  # (N, T)
    loss_mat = torch.where(dual_active, floor, ppo_mat)  # (N, T)
    loss = _finish(loss_mat, response_mask, aggregation, max_len, is_weights)
    return _result(
        loss, logprobs, old_logprobs, response_mask, {"clip/frac": clip_active, "clip/frac_dual": dual_active}
    )


@register_policy_loss("gspo")
def gspo(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    aggregation: str = "seq_mean_token_mean",
    clip_low: float = 3e-4,
    clip_high: float = 4e-4,
    max_len: int | None = None,
    is_weights: Tensor | None = None,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """GSPO: a sequence-level ratio s_i = exp(mean_t log(pi / pi_old)), clipped per sequence.

    Token ratios are noisy, and one outlier token can clip or blow up a whole update; the
    length-normalised sequence ratio is what the sequence-level reward actually refers to. Every
    token of sequence i carries s_i in the forward pass and its own log-prob gradient in the
    backward pass (``s_i,t = sg[s_i] * pi_t / sg[pi_t]``, GSPO-token), so with one advantage per
    sequence this is exactly GSPO. Its clip range is two orders of magnitude narrower than PPO's
    because s_i is an average (the paper uses 3e-4 and 4e-4).

    Args:
        logprobs, old_logprobs, advantages, response_mask, aggregation, clip_low, clip_high,
            max_len, is_weights: as in ``ppo_clip``.
        **kwargs: Ignored.

    Returns:
        loss and the ``ppo_clip`` metrics; ``clip/frac`` counts tokens of clipped sequences.
    """
    _check_clip(clip_low, clip_high)
    old_logprobs, advantages = old_logprobs.detach(), advantages.detach()
    mask = response_mask.to(logprobs.dtype)  # (N, T)
    # padding may hold -inf log-probs; a masked multiply would turn them into NaN for the whole row
    logprobs = logprobs.masked_fill(~response_mask.bool(), 0.0)  # (N, T)
    log_ratio = (logprobs - old_logprobs).masked_fill(~response_mask.bool(), 0.0)  # (N, T)
    seq_log_ratio = log_ratio.sum(-1) / mask.sum(-1).clamp(min=1)  # (N,)
    token_log_ratio = seq_log_ratio.detach()[:, None] + logprobs - logprobs.detach()  # (N, T)
    ratio = torch.exp(token_log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (N, T)
    loss_mat, clip_active = _clipped_surrogate(ratio, advantages, clip_low, clip_high)  # (N, T) each
    loss = _finish(loss_mat, response_mask, aggregation, max_len, is_weights)
    return _result(loss, logprobs, old_logprobs, response_mask, {"clip/frac": clip_active})


@register_policy_loss("cispo")
def cispo(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    response_mask: Tensor,
    *,
    aggregation: str = "token_mean",
    clip_low: float = 1.0,
    clip_high: float = 0.28,
    max_len: int | None = None,
    is_weights: Tensor | None = None,
    **kwargs,
) -> tuple[Tensor, dict[str, float]]:
    """CISPO: per-token loss -sg[clip(ratio, 1 - clip_low, 1 + clip_high)] * A * log pi.

    PPO's clip zeroes the gradient of a token whose ratio left the band, and rare tokens that
    the update favours leave it first. CISPO clips the importance weight instead and keeps every
    token's log-prob gradient. MiniMax-M1 drops the lower bound (``clip_low=1``: weights in
    [0, 1 + clip_high]). On-policy (ratio 1) its gradient is that of ``vanilla_pg``.

    Args:
        logprobs, old_logprobs, advantages, response_mask, aggregation, clip_low, clip_high,
            max_len, is_weights: as in ``ppo_clip``.
        **kwargs: Ignored.

    Returns:
        loss and metrics: ``loss/policy``, ``clip/frac`` (fraction of valid tokens whose weight
        was clipped), ``ratio/mean``, ``ratio/max``, ``kl/old_approx``.
    """
    _check_clip(clip_low, clip_high)
    old_logprobs, advantages = old_logprobs.detach(), advantages.detach()
    with torch.no_grad():
        ratio = torch.exp((logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))  # (N, T)
        weight = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)  # (N, T)
    loss_mat = -weight * advantages * logprobs  # (N, T)
    loss = _finish(loss_mat, response_mask, aggregation, max_len, is_weights)
    return _result(loss, logprobs, old_logprobs, response_mask, {"clip/frac": weight != ratio})


@torch.no_grad()
def truncated_is_weights(
    old_logprobs: Tensor, behavior_logprobs: Tensor, response_mask: Tensor, cap: float = 2.0
) -> tuple[Tensor, dict[str, float]]:
    """Truncated importance weights min(pi_old / mu, cap) for samples drawn from a behaviour policy mu.

    PPO's ratio refers to pi_old, the policy at the start of the update; when the tokens were
    sampled by another policy mu (an older checkpoint in a replay buffer, or an inference engine
    whose numerics differ), the expectation needs the extra factor pi_old / mu. Truncating it at
    ``cap`` bounds the variance at the price of a small bias.

    Args:
        old_logprobs: log pi_old of the tokens (recomputed by the trainer), shape (N, T).
        behavior_logprobs: log mu at sampling time, shape (N, T).
        response_mask: 1 on response tokens, shape (N, T).
        cap: Truncation level C >= 1.

    Returns:
        weights: shape (N, T), 0 on padding; metrics: ``is/mean``, ``is/frac_truncated``,
        ``is/kl`` (how off-policy the samples are: the k3 estimate of KL(mu || pi_old), the mean of
        r - 1 - log r with r = pi_old / mu, each term >= 0, so small gaps do not average out to noise around 0).
    """
    if cap < 1:
        raise ValueError(f"the importance-weight cap must be >= 1, got {cap}")
    mask = response_mask.to(old_logprobs.dtype)  # (N, T)
    log_w = (old_logprobs - behavior_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (N, T)
    raw = torch.exp(log_w)  # (N, T)
    weights = raw.clamp(max=cap) * mask  # (N, T)
    metrics = {
        "is/mean": _masked_mean(weights, mask),
        "is/frac_truncated": _masked_mean((raw > cap).to(mask.dtype), mask),
        "is/kl": _masked_mean(kl_k3(behavior_logprobs, old_logprobs), mask),
    }
    return weights, metrics
