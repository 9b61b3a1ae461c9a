"""Loss aggregation: how a per-token loss (N, T) becomes one scalar, with the denominators visible.

- ``token_mean``: every valid token in the batch weighs the same (DAPO; verl's default).
- ``seq_mean_token_mean``: mean over tokens within a sequence, then over sequences (original
  GRPO, Shao et al., 2024, arXiv:2402.03300); a token of a short answer weighs more.
- ``seq_mean_token_sum_norm``: sum over tokens divided by the constant N * max_len (Dr.GRPO,
  Liu et al., 2025, arXiv:2503.20783), which removes the length bias of the per-sequence mean.
- ``token_sum``: the plain sum over valid tokens (verl ``token-sum``): the loss grows with the batch
  and with the lengths.
- ``seq_mean_token_sum``: sum over tokens, mean over sequences (verl ``seq-mean-token-sum``): longer
  answers weigh more, in proportion to their length.

verl's ``seq-mean-*`` modes count only the sequences with at least one valid token; these count every
row. The two agree unless a row is empty (a completion of length 0).

The denominators decide how much each token, and so each length, weighs in the gradient; they
are the whole difference between these modes.
"""

from __future__ import annotations

from torch import Tensor

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "token_sum", "seq_mean_token_sum")


def aggregation_denominators(response_mask: Tensor, mode: str, max_len: int | None = None) -> Tensor:
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
        mask / (N * max_len) for ``seq_mean_token_sum_norm``, mask for ``token_sum``, mask / N for
        ``seq_mean_token_sum``.

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
    if mode == "token_sum":
        return mask
    if mode == "seq_mean_token_sum":
        return mask / max(n, 1)
    max_len = t if max_len is None else max_len
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    return mask / (max(n, 1) * max_len)


def aggregate(loss_mat: Tensor, response_mask: Tensor, mode: str, max_len: int | None = None) -> Tensor:
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
            f"loss_mat {tuple(loss_mat.shape)} and response_mask {tuple(response_mask.shape)} must have the same shape"
        )
    weights = aggregation_denominators(response_mask, mode, max_len)  # (N, T)
    # Padding may hold inf/NaN (e.g. -inf log-probs); 0 * inf is NaN, so zero it explicitly.
    loss_mat = loss_mat.masked_fill(~response_mask.bool(), 0.0)  # (N, T)
    return (loss_mat * weights).sum()
