"""Unsupervised rewards: scores computed without the ground-truth answer.

Three label-free signals that recent work trains reasoning models on:

- ``majority_vote`` (TTRL: Zuo et al., 2025, "TTRL: Test-Time Reinforcement Learning",
  arXiv:2504.16084): the G answers of a group vote; the most common well-formed answer is the
  pseudo-label, and a completion earns 1.0 when its answer matches it, else 0.0. Only the task's
  answer *parser* is used (``task.verify(...).parsed`` and ``.well_formed``), never ``.correct``.
- ``self_certainty`` (Intuitor: Zhao et al., 2025, "Learning to Reason without External Rewards",
  arXiv:2505.19590, its definition of Self-certainty(o|q)): the mean over the response tokens of
  KL(U || p_θ(·|q, o_<i)), U uniform over the vocabulary. Per token that is
  ``-log V - (1/V) Σ_v log p(v) = logsumexp(z) - mean_v(z) - log V`` for logits z, which needs no
  (N, T, V) log-softmax copy. It is 0 for a uniform distribution and grows as p concentrates; unlike
  the entropy it is unbounded, driven by how small the tail probabilities are.
- ``neg_entropy`` (EM-RL: Agarwal et al., 2025, "The Unreasonable Effectiveness of Entropy
  Minimization in LLM Reasoning", arXiv:2505.15134): minus the mean per-token entropy of the policy
  over the response (the paper's token-level variant; it also has a trajectory-level one).

The model-based rewards run one no-grad forward of ``ctx.model`` over ``ctx.batch`` (prompt +
completion), at the batch's sampling temperature, with the same call as
``rl4lrm.rollout.compute_logprobs``; padding (left of prompts, right of completions) never counts.
All three reward agreement with the model itself, so all three can reinforce a confident mistake:
``rl4lrm.experiments.unsupervised`` measures how often, on the zoo models.

This module must be imported (``import rl4lrm.rewards.unsupervised``) for the names to be registered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable
from fractions import Fraction

import torch
from torch import Tensor

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.rollout import completion_logits, entropy_from_logits
from rl4lrm.tasks import Problem
from rl4lrm.utils import eval_mode

# A plain decimal literal: "46", "+046", "-3.50", "1e3". Fractions such as "8/2" are left as text on
# purpose: in Countdown "8/2" is an expression, a different answer from "4". Exponents are capped so
# that "1e999999999" (10 characters) cannot make Fraction build a billion-digit integer.
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
STATS = ("self_certainty", "entropy")


# ----------------------------------------------------------------------------- majority vote


def canonical_answer(answer: str | None) -> Hashable | None:
    """The key answers are compared by: numbers by value, anything else as text without whitespace.

    ``"46"``, ``" 046"``, ``"+46"`` and ``"46.0"`` all give ``Fraction(46)`` (exact, so no float
    rounding merges distinct answers); ``"3 + 4"`` gives ``"3+4"``. Expressions are not simplified
    (``"3+4"`` and ``"4+3"`` stay different answers).

    Args:
        answer: a parsed answer (``Verdict.parsed``), or None.

    Returns:
        A ``Fraction`` or a ``str``; None when the answer is None or blank.
    """
    if answer is None:
        return None
    text = "".join(answer.split())
    if not text:
        return None
    return Fraction(text) if _NUMBER.fullmatch(text) else text


def group_majority(keys: list[Hashable | None], group_size: int) -> list[tuple[Hashable | None, int]]:
    """Per group of ``group_size`` consecutive keys: the most common non-None key and its count.

    Ties go to the tied key that appears first in the group (lowest row index): deterministic
    given the row order, and independent of how keys hash or sort. A group with no key gives
    ``(None, 0)``.

    Args:
        keys: N = B*G answer keys (None for an unparsable answer), groups contiguous.
        group_size: G.

    Returns:
        B pairs ``(majority key, votes)``.
    """
    if group_size < 1 or len(keys) % group_size:
        raise ValueError(f"need N divisible by group_size >= 1, got N={len(keys)} and group_size={group_size}")
    out = []
    for start in range(0, len(keys), group_size):
        counts: dict[Hashable, int] = {}
        for key in keys[start : start + group_size]:
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
        # max() keeps the first maximum, and dicts keep first-insertion order: ties -> earliest row
        best = max(counts, key=counts.__getitem__, default=None)
        out.append((best, counts.get(best, 0)))
    return out


def answer_keys(
    problems: list[Problem],
    completions: list[str],
    task,
    canonical: Callable[[str | None], Hashable | None] = canonical_answer,
) -> list[Hashable | None]:
    """The voting key of each completion: ``canonical(parsed)`` if well formed, else None."""
    keys = []
    for problem, completion in zip(problems, completions):
        verdict = task.verify(problem, completion)
        keys.append(canonical(verdict.parsed) if verdict.well_formed else None)
    return keys


@register_reward("majority_vote", requires=("task",))
def majority_vote(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    canonical: Callable[[str | None], Hashable | None] = canonical_answer,
) -> Tensor:
    """TTRL's majority-vote reward: 1.0 when a completion's answer is the group's most common one.

    Answers are parsed by ``ctx.task.verify`` (only ``parsed`` and ``well_formed`` are read: the
    ground truth is never used) and compared through ``canonical``. Malformed answers do not vote
    and earn 0; a group without any well-formed answer earns 0 everywhere; ties go to the answer
    seen first in the group. With ``group_size = 1`` every well-formed answer wins its own vote.

    Args:
        problems, completions: N rows, the G rows of a prompt contiguous.
        ctx: needs ``task`` and ``group_size``.
        canonical: maps a parsed answer to the key votes are counted on (``canonical_answer``:
            numbers by value, text without whitespace).

    Returns:
        Rewards in {0, 1}, shape (N,).
    """
    keys = answer_keys(problems, completions, ctx.task, canonical)
    winners = group_majority(keys, ctx.group_size)
    G = ctx.group_size
    return torch.tensor([float(key is not None and key == winners[i // G][0]) for i, key in enumerate(keys)])


# ----------------------------------------------------------------------------- the policy's own confidence


def token_self_certainty(logits: Tensor, lse: Tensor | None = None) -> Tensor:
    """KL(U || softmax(logits)) at each position, U uniform over the V logits.

    KL = Σ_v (1/V) log((1/V) / p_v) = -log V - mean_v log p_v = logsumexp(z) - mean_v(z) - log V.
    Infinite if some logit is -inf (a zero-probability token), as the KL itself is.

    Args:
        logits: Unnormalised scores, shape (N, T, V) (already divided by the temperature).
        lse: ``logsumexp(logits, -1)`` if the caller has it, shape (N, T).

    Returns:
        Self-certainty in nats, shape (N, T): 0 for a flat distribution, unbounded above (unlike
        KL(p || U) = log V - H(p), it weighs every tail token's log-probability equally).
    """
    lse = torch.logsumexp(logits, dim=-1) if lse is None else lse  # (N, T)
    return lse - logits.mean(dim=-1) - math.log(logits.shape[-1])  # (N, T)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` (N, T) over the positions where ``mask`` (N, T) is 1; 0 for an empty row. Returns (N,)."""
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)  # (N,)


@torch.no_grad()
def response_token_stats(
    model, batch, stats: tuple[str, ...] = STATS, temperature: float | None = None, chunk_rows: int | None = None
) -> dict[str, Tensor]:
    """Per-token self-certainty and/or entropy of ``model`` over the batch's completion tokens.

    The forward is ``rl4lrm.rollout.completion_logits`` (the one ``compute_logprobs`` uses), in eval mode
    (restored afterwards) and without gradients: these are rewards, not losses.

    Args:
        model: a causal LM (the policy).
        batch: a ``RolloutBatch``: ``input_ids`` (N, P+T), ``attention_mask`` (N, P+T),
            ``response_mask`` (N, T).
        stats: which of ``"self_certainty"`` and ``"entropy"`` to compute.
        temperature: divides the logits; defaults to the batch's sampling temperature (0 counts as 1).
        chunk_rows: forward this many rows at a time to bound the (rows, T, V) logits (None: all N).

    Returns:
        ``{stat: (N, T) tensor}``, zero where ``response_mask`` is 0.
    """
    unknown = sorted(set(stats) - set(STATS))
    if unknown or not stats:
        raise ValueError(f"stats must be a non-empty subset of {STATS}, got {stats!r}")
    temperature = (batch.temperature if temperature is None else temperature) or 1.0
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    N = batch.completion_ids.shape[0]
    step = N if chunk_rows is None else int(chunk_rows)
    if step < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    mask = batch.response_mask  # (N, T)
    out: dict[str, list[Tensor]] = {name: [] for name in stats}
    with eval_mode(model):
        for s in range(0, N, step):
            rows = slice(s, s + step)
            logits, lse = completion_logits(model, batch.select(torch.arange(N)[rows]), temperature)  # (n, T, V)
            if "self_certainty" in out:
                out["self_certainty"].append(token_self_certainty(logits, lse) * mask[rows])  # (n, T)
            if "entropy" in out:
                out["entropy"].append(entropy_from_logits(logits, lse) * mask[rows])  # (n, T)
            del logits
    return {name: torch.cat(parts) for name, parts in out.items()}


def _sequence_stat(stat: str, completions: list[str], ctx: RewardContext, temperature, chunk_rows) -> Tensor:
    """Mean over each row's response tokens of one statistic of ``response_token_stats``, on the CPU, (N,)."""
    rows = ctx.batch.completion_ids.shape[0]
    if rows != len(completions):
        raise ValueError(f"ctx.batch has {rows} rows but there are {len(completions)} completions")
    values = response_token_stats(ctx.model, ctx.batch, (stat,), temperature, chunk_rows)[stat]  # (N, T)
    # on the CPU like the text rewards, so a RewardMix can add them whatever the model's device
    return masked_mean(values, ctx.batch.response_mask).cpu()  # (N,)


@register_reward("self_certainty", requires=("batch", "model"))
def self_certainty(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    temperature: float | None = None,
    chunk_rows: int | None = None,
) -> Tensor:
    """Intuitor's self-certainty: mean over response tokens of KL(U || p_θ(·|prompt, earlier tokens)).

    Args:
        problems, completions: N rows (the text is not read; ``ctx.batch`` holds the tokens).
        ctx: needs ``model`` (the policy) and ``batch`` (the ``RolloutBatch`` of the completions).
        temperature: defaults to the batch's sampling temperature (0 counts as 1).
        chunk_rows: rows per forward (None: the whole batch at once).

    Returns:
        Rewards in nats, shape (N,), >= 0; higher means more confident.
    """
    return _sequence_stat("self_certainty", completions, ctx, temperature, chunk_rows)


@register_reward("neg_entropy", requires=("batch", "model"))
def neg_entropy(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    temperature: float | None = None,
    chunk_rows: int | None = None,
) -> Tensor:
    """EM-RL's token-level reward: minus the mean over response tokens of the policy's entropy.

    Args: as ``self_certainty``.

    Returns:
        Rewards in nats, shape (N,), in [-log V, 0]; higher means more confident.
    """
    return -_sequence_stat("entropy", completions, ctx, temperature, chunk_rows)
