"""Reward shaping by completion length, and why a per-prompt constant cannot shape anything.

- ``length_penalty``: ``-|y| / max_new_tokens``, a plain pressure towards short completions.
- ``soft_overlong``: DAPO's soft overlong punishment (Yu et al., 2025, "DAPO: An Open-Source LLM
  Reinforcement Learning System at Scale", arXiv:2503.14476, Eq. 13)::

      R(y) = 0                              if |y| <= L_max - L_cache
             ((L_max - L_cache) - |y|) / L_cache   if L_max - L_cache < |y| <= L_max
             -1                             if |y| > L_max

  a penalty that ramps linearly from 0 to -1 over the last ``L_cache`` tokens, added to the
  correctness reward, so that truncated answers are not punished as harshly (and as noisily) as by
  a flat penalty.
- ``cosine_length``: the cosine length-scaling reward of Yeo et al. (2025, "Demystifying Long
  Chain-of-Thought Reasoning in LLMs", arXiv:2502.03373, §4.2). The paper's schedule is
  ``CosFn(t, T, eta_min, eta_max) = eta_min + (eta_max - eta_min) (1 + cos(t pi / T)) / 2``, which is
  ``eta_max`` at ``t = 0`` and ``eta_min`` at ``t = T``. Here the endpoints are named by length: a
  completion of ``L`` tokens gets ``r_cL + (r_c0 - r_cL) (1 + cos(pi L / L_max)) / 2`` if correct
  (``r_c0`` at length 0, ``r_cL`` at ``L_max``), the same with ``r_w0``, ``r_wL`` if wrong, and
  ``r_exceed`` when it reaches ``L_max``. With the
  paper's values (r_c0=2, r_cL=1, r_w0=-10, r_wL=0, r_exceed=-10), short correct answers earn most
  and wrong answers are punished less the longer they think, which stabilised CoT length growth.

These rewards read token counts from ``ctx.batch.lengths`` (N,) and truncation from
``ctx.batch.truncated`` (N,): they declare ``requires=("batch",)``.

``group_baseline_view`` is not a reward but a demonstration: group baselines (GRPO, RLOO) subtract the
group's mean, so adding the same constant to every completion of a prompt changes no advantage,
whereas a per-completion term such as a length penalty does (reward shaping that depends only on the
prompt is a potential-based shaping with zero effect; Ng et al., 1999).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.tasks.base import Problem


def _length_cap(param: str, value: int | None, ctx: RewardContext) -> int:
    """``value``, else ``ctx.max_new_tokens``; a ValueError names the parameter when neither is a positive int."""
    cap = ctx.max_new_tokens if value is None else value
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(
            f"{param} must be an int >= 1 (or None to use ctx.max_new_tokens), got {value!r} "
            f"with ctx.max_new_tokens={ctx.max_new_tokens!r}"
        )
    return cap


def completion_lengths(ctx: RewardContext, n: int) -> torch.Tensor:
    """The token counts of the batch's ``n`` completions, ``ctx.batch.lengths`` as floats (N,); a ValueError when the
    batch holds another number of rows."""
    lengths = torch.as_tensor(ctx.batch.lengths, dtype=torch.float32)  # (N,)
    if lengths.shape != (n,):
        raise ValueError(f"ctx.batch.lengths has shape {tuple(lengths.shape)}, expected ({n},)")
    return lengths


@register_reward("length_penalty", requires=("batch",))
def length_penalty(
    problems: list[Problem], completions: list[str], ctx: RewardContext, max_new_tokens: int | None = None
) -> torch.Tensor:
    """``-|y| / max_new_tokens``: 0 for an empty completion, -1 for one that uses the whole budget.

    Args:
        problems: N problems (unused). completions: N strings (their token counts come from the batch).
        ctx: needs ``batch`` (``lengths`` (N,)).
        max_new_tokens: the normaliser; defaults to ``ctx.max_new_tokens``.

    Returns:
        Penalties in [-1, 0] for lengths within the budget, shape (N,).
    """
    cap = _length_cap("max_new_tokens", max_new_tokens, ctx)
    return -completion_lengths(ctx, len(completions)) / cap  # (N,)


def soft_overlong_penalty(lengths: torch.Tensor, max_len: int, cache_len: int) -> torch.Tensor:
    """DAPO Eq. 13 on token counts: 0, then a linear ramp to -1 over the last ``cache_len`` tokens, then -1.

    Args:
        lengths: token counts |y|, shape (N,).
        max_len: L_max. cache_len: L_cache, in 1..max_len.

    Returns:
        Penalties in [-1, 0], shape (N,).
    """
    lengths = lengths.float()  # (N,)
    ramp = ((max_len - cache_len) - lengths) / cache_len  # (N,)
    out = torch.where(lengths <= max_len - cache_len, torch.zeros_like(ramp), ramp)
    return torch.where(lengths > max_len, torch.full_like(ramp, -1.0), out)


@register_reward("soft_overlong", requires=("batch",))
def soft_overlong(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    max_len: int | None = None,
    cache_len: int | None = None,
) -> torch.Tensor:
    """DAPO's soft overlong punishment (module docstring, Eq. 13), to be added to the correctness reward.

    Args:
        problems: N problems (unused). completions: N strings. ctx: needs ``batch`` (``lengths``).
        max_len: L_max, defaults to ``ctx.max_new_tokens``.
        cache_len: L_cache, the punishment buffer, in 1..max_len; defaults to ``max_len // 5`` (at
            least 1), DAPO's ratio (L_max = 20480 with a 4096-token buffer).

    Returns:
        Penalties in [-1, 0], shape (N,).
    """
    cap = _length_cap("max_len", max_len, ctx)
    buffer = max(1, cap // 5) if cache_len is None else cache_len
    if isinstance(buffer, bool) or not isinstance(buffer, int) or not 1 <= buffer <= cap:
        raise ValueError(f"cache_len must be an int in 1..max_len={cap}, got {cache_len!r}")
    return soft_overlong_penalty(completion_lengths(ctx, len(completions)), cap, buffer)


def cosine_schedule(lengths: torch.Tensor, max_len: int, start: float, end: float) -> torch.Tensor:
    """Yeo et al.'s CosFn: ``end + (start - end) (1 + cos(pi L / max_len)) / 2``, ``start`` at length 0
    and ``end`` at ``max_len`` (lengths beyond are clamped).

    Args:
        lengths: token counts, shape (N,). max_len: L_max >= 1. start, end: the values at 0 and L_max.

    Returns:
        Shape (N,).
    """
    progress = lengths.float().clamp(0, max_len) / max_len  # (N,)
    return end + (start - end) * 0.5 * (1 + torch.cos(math.pi * progress))


@register_reward("cosine_length", requires=("task", "batch"))
def cosine_length(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    max_len: int | None = None,
    r_c0: float = 2.0,
    r_cL: float = 1.0,
    r_w0: float = -10.0,
    r_wL: float = 0.0,
    r_exceed: float = -10.0,
) -> torch.Tensor:
    """Cosine length-scaled correctness reward (Yeo et al., 2025, Eq. 1; defaults are the paper's values).

    It replaces the binary correctness reward (correctness is the task's verifier). A completion that
    reaches ``max_len`` tokens or was truncated by the rollout gets ``r_exceed`` whatever its answer.

    Args:
        problems: N problems. completions: N strings.
        ctx: needs ``task`` (the verifier) and ``batch`` (``lengths``, ``truncated``).
        max_len: L_max, defaults to ``ctx.max_new_tokens``.
        r_c0, r_cL: reward of a correct answer at length 0 and at L_max.
        r_w0, r_wL: reward of a wrong answer at length 0 and at L_max.
        r_exceed: reward at or beyond L_max.

    Returns:
        Rewards, shape (N,).
    """
    cap = _length_cap("max_len", max_len, ctx)
    for name, value in {"r_c0": r_c0, "r_cL": r_cL, "r_w0": r_w0, "r_wL": r_wL, "r_exceed": r_exceed}.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    lengths = completion_lengths(ctx, len(completions))  # (N,)
    correct = torch.tensor(ctx.task.reward(problems, completions)) > 0.5  # (N,)
    reward = torch.where(correct, cosine_schedule(lengths, cap, r_c0, r_cL), cosine_schedule(lengths, cap, r_w0, r_wL))
    exceeded = lengths >= cap  # (N,)
    if getattr(ctx.batch, "truncated", None) is not None:
        exceeded = exceeded | torch.as_tensor(ctx.batch.truncated, dtype=torch.bool)
    return torch.where(exceeded, torch.full_like(reward, float(r_exceed)), reward)


def group_baseline_view(
    rewards: torch.Tensor,
    group_size: int,
    prompt_shift: torch.Tensor | None = None,
    completion_shift: torch.Tensor | None = None,
    estimators: tuple[str, ...] = ("grpo", "rloo"),
) -> pd.DataFrame:
    """Advantages of the same rewards, shifted by a per-prompt constant and by a per-completion term.

    Args:
        rewards: scalar rewards, shape (N,) with N = B*G, groups contiguous.
        group_size: G.
        prompt_shift: one constant per prompt, shape (B,), added to all its completions; default
            ``0, 1, 2, ...`` (very different offsets, to make the point).
        completion_shift: one term per completion, shape (N,); default ``-0.1 * (position in group)``,
            like a length penalty on completions that grow longer along the group.
        estimators: registered advantage estimators to apply.

    Returns:
        One row per completion: ``prompt``, ``sample``, ``reward``, ``prompt_shift``,
        ``completion_shift``, and per estimator ``{est}``, ``{est}+prompt_shift``,
        ``{est}+completion_shift``: the sequence advantage (N,) of each reward variant. The first two
        are equal (up to float rounding); the third differs.
    """
    from rl4lrm.advantages import ADVANTAGES, group_view

    rewards = torch.as_tensor(rewards, dtype=torch.float32)  # (N,)
    grouped = group_view(rewards, group_size)  # (B, G): validates N against G
    n_prompts = grouped.shape[0]
    if prompt_shift is None:
        prompt_shift = torch.arange(n_prompts, dtype=torch.float32)  # (B,)
    if completion_shift is None:
        completion_shift = -0.1 * torch.arange(group_size, dtype=torch.float32).repeat(n_prompts)  # (N,)
    prompt_shift = torch.as_tensor(prompt_shift, dtype=torch.float32)
    completion_shift = torch.as_tensor(completion_shift, dtype=torch.float32)
    if prompt_shift.shape != (n_prompts,):
        raise ValueError(f"prompt_shift must have shape ({n_prompts},), got {tuple(prompt_shift.shape)}")
    if completion_shift.shape != rewards.shape:
        raise ValueError(
            f"completion_shift must have shape {tuple(rewards.shape)}, got {tuple(completion_shift.shape)}"
        )
    per_row_prompt = prompt_shift.repeat_interleave(group_size)  # (N,)
    table = pd.DataFrame(
        {
            "prompt": torch.arange(n_prompts).repeat_interleave(group_size).tolist(),
            "sample": torch.arange(group_size).repeat(n_prompts).tolist(),
            "reward": rewards.tolist(),
            "prompt_shift": per_row_prompt.tolist(),
            "completion_shift": completion_shift.tolist(),
        }
    )
    mask = torch.ones(len(rewards), 1)  # (N, 1): one token per completion gives the sequence advantage
    variants = {"": rewards, "+prompt_shift": rewards + per_row_prompt, "+completion_shift": rewards + completion_shift}
    for est in estimators:
        fn = ADVANTAGES.get(est)
        for suffix, r in variants.items():
            advantages, _ = fn(r, mask, group_size)  # (N, 1)
            table[est + suffix] = advantages[:, 0].tolist()
    return table
