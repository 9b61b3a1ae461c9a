"""Dense (process) rewards: one reward per reasoning step, placed on the step's last token.

An outcome reward says whether the final answer is right; a process reward says *where* a chain
went wrong, which is finer credit assignment for long reasoning. Three sources of step rewards:

- ``step_correct``: ground-truth step labels from a task that can check its steps
  (``rl4lrm.tasks.chain``), in the spirit of PRM800K's human step labels (Lightman et al., 2023,
  "Let's Verify Step by Step", arXiv:2305.20050): each step before the first error earns
  ``1 / num_steps``; the first wrong step earns ``-error_penalty`` (0 by default); later steps
  earn nothing ("first error" semantics: a chain is as good as its first mistake).
- ``prm``: a learned process reward model trained on Math-Shepherd's Monte-Carlo labels (Wang
  et al., 2024, arXiv:2312.08935; ``rl4lrm.rewards.prm``): each step earns ``PRM(step) / num_steps``,
  the reward Math-Shepherd gives at the end of each step in step-by-step PPO.
- ``implicit_prm``: PRIME's implicit process reward (Cui et al., 2025, "Process Reinforcement
  through Implicit Rewards", arXiv:2502.01456): ``r_t = β · log π_φ(y_t|y_<t) / π_ref(y_t|y_<t)``
  on every response token, no step segmentation needed. By default ``π_φ`` is ``ctx.model`` (the
  policy itself, the simplest version); pass ``implicit_model=`` for a separately trained implicit
  PRM (PRIME trains it with the outcome cross-entropy of ``implicit_prm_loss``;
  ``rl4lrm.rewards.implicit.train_implicit_prm`` does that).

Every reward here is registered with ``dense=True`` and returns (N, T) aligned with
``ctx.batch.completion_ids``. A step's character span is mapped to tokens by decoding each row's
token prefixes (``token_char_ends``), so the mapping is right for any tokenizer, not only the char
one. How step rewards become token advantages: ``step_returns`` (γ = 1 returns-to-go: a token's
return is its step's reward plus those of every later step) and ``compare_step_and_outcome``.

Step rewards need a task with ``step_verdicts(problem, completion)`` (objects with ``start``,
``end``, ``correct``) and ``num_steps(problem)``. This module must be imported (``import
rl4lrm.rewards.dense``) for the names to be registered.
"""

from __future__ import annotations

from bisect import bisect_right

import pandas as pd
import torch
from torch import Tensor

from rl4lrm.advantages import ADVANTAGES, returns_to_go, token_level_rewards
from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.rollout import compute_logprobs
from rl4lrm.tasks import Problem, Task
from rl4lrm.tasks.chain import first_error


def token_char_ends(tokenizer, ids: list[int]) -> list[int]:
    """``ends[t]``: length of the text decoded from ``ids[:t + 1]`` (special tokens skipped).

    Token ``t`` covers characters ``ends[t-1]:ends[t]`` of the decoded completion. Decoding
    prefixes (one batched call) instead of single tokens keeps this right for tokenizers whose
    tokens decode differently alone (SentencePiece's leading spaces, byte-level pieces); the
    running max guards against a prefix that ends inside a multi-byte character.
    """
    if not ids:
        return []
    texts = tokenizer.batch_decode([ids[: t + 1] for t in range(len(ids))], skip_special_tokens=True)
    ends, best = [], 0
    for text in texts:
        best = max(best, len(text))
        ends.append(best)
    return ends


def char_to_token(ends: list[int], char: int) -> int:
    """Index of the token that holds character ``char`` (the last token if ``char`` is past the text)."""
    return min(bisect_right(ends, char), len(ends) - 1)


def place_on_tokens(tokenizer, batch, char_rewards: list[list[tuple[int, float]]]) -> Tensor:
    """Adds each ``(char_index, reward)`` of row ``i`` onto the token holding that character.

    Args:
        tokenizer: the tokenizer that produced ``batch.completion_ids``.
        batch: a ``RolloutBatch``; ``completion_ids`` (N, T) and ``response_mask`` (N, T).
        char_rewards: per row, ``(character index in the decoded completion, reward)`` pairs.

    Returns:
        Token rewards, shape (N, T), zero off the response.
    """
    out = torch.zeros(batch.completion_ids.shape, dtype=torch.float32)  # (N, T)
    lengths = batch.response_mask.sum(-1).long().tolist()  # (N,)
    for i, pairs in enumerate(char_rewards):
        if not pairs or lengths[i] == 0:
            continue
        ends = token_char_ends(tokenizer, batch.completion_ids[i, : lengths[i]].tolist())
        for char, reward in pairs:
            out[i, char_to_token(ends, char)] += reward
    return out.to(batch.response_mask.device)


def step_last_char(step) -> int:
    """Character index of a step's last character; an empty line uses its newline."""
    return max(step.end, step.start + 1) - 1


def _check_step_task(task: Task, problems=()) -> None:
    if not hasattr(task, "step_verdicts") or not hasattr(task, "num_steps"):
        raise ValueError(
            f"step rewards need a task with step_verdicts and num_steps (e.g. 'chain'), got {type(task).__name__}"
        )


def _step_task(ctx: RewardContext) -> Task:
    _check_step_task(ctx.task)
    return ctx.task


@register_reward("step_correct", requires=("task", "tokenizer"), dense=True, check_task=_check_step_task)
def step_correct(
    problems: list[Problem], completions: list[str], ctx: RewardContext, error_penalty: float = 0.0
) -> Tensor:
    """Ground-truth step rewards with first-error semantics (PRM800K-style labels).

    Each step before the first wrong one earns ``1 / num_steps`` on its last token (a fully
    correct chain sums to 1); the first wrong step (wrong value, malformed line, or a line past the
    last step) earns ``-error_penalty``; later steps earn nothing. Missing steps earn nothing.

    Args:
        problems, completions: N rows.
        ctx: needs ``task`` (with ``step_verdicts``), ``tokenizer`` and ``batch``.
        error_penalty: magnitude of the penalty on the first wrong step, >= 0.

    Returns:
        Token rewards, shape (N, T).
    """
    if error_penalty < 0:
        raise ValueError(f"error_penalty must be >= 0, got {error_penalty}")
    task = _step_task(ctx)
    char_rewards = []
    for problem, completion in zip(problems, completions):
        verdicts = task.step_verdicts(problem, completion)
        stop = first_error(verdicts)
        stop = len(verdicts) if stop is None else stop
        pairs = [(step_last_char(v), 1.0 / task.num_steps(problem)) for v in verdicts[:stop]]
        if stop < len(verdicts) and error_penalty:
            pairs.append((step_last_char(verdicts[stop]), -error_penalty))
        char_rewards.append(pairs)
    return place_on_tokens(ctx.tokenizer, ctx.batch, char_rewards)


@register_reward("prm", requires=("task", "tokenizer"), dense=True, check_task=_check_step_task)
def prm_reward(problems: list[Problem], completions: list[str], ctx: RewardContext, prm=None) -> Tensor:
    """A learned PRM's step scores (Math-Shepherd's step-by-step reward), ``PRM(step) / num_steps``.

    Args:
        ctx: needs ``task`` (for the step segmentation only, not its labels), ``tokenizer``, ``batch``.
        prm: a ``rl4lrm.rewards.prm.ProcessRewardModel`` (or any module mapping ``(input_ids,
            attention_mask)`` (N, L) to step-correctness logits (N, L)); required.

    Returns:
        Token rewards, shape (N, T): each step's probability of being on a right track, on its last token.
    """
    if prm is None:
        raise ValueError(
            "reward 'prm' needs params {'prm': <ProcessRewardModel>}; build one with rl4lrm.rewards.prm.train_prm"
        )
    task, batch = _step_task(ctx), ctx.batch
    with torch.no_grad():
        logits = prm(batch.input_ids, batch.attention_mask)  # (N, P+T)
    probs = torch.sigmoid(logits[:, batch.prompt_ids.shape[1] :].float()).cpu()  # (N, T): read after token t
    char_rewards = []
    lengths = batch.response_mask.sum(-1).long().tolist()
    for i, (problem, completion) in enumerate(zip(problems, completions)):
        steps = task.step_verdicts(problem, completion)
        if not steps or lengths[i] == 0:
            char_rewards.append([])
            continue
        ends = token_char_ends(ctx.tokenizer, batch.completion_ids[i, : lengths[i]].tolist())
        scale = 1.0 / task.num_steps(problem)
        char_rewards.append(
            [(step_last_char(v), scale * probs[i, char_to_token(ends, step_last_char(v))].item()) for v in steps]
        )
    return place_on_tokens(ctx.tokenizer, batch, char_rewards)


@register_reward("implicit_prm", requires=("model", "ref_model"), dense=True)
def implicit_prm(
    problems: list[Problem], completions: list[str], ctx: RewardContext, beta: float = 0.05, implicit_model=None
) -> Tensor:
    """PRIME's implicit process reward: ``β · (log π_φ(y_t|y_<t) − log π_ref(y_t|y_<t))`` per token.

    Log-probs are taken at temperature 1 (the models' own likelihoods, whatever the sampling
    temperature). ``π_φ`` is ``implicit_model`` if given (a separately trained implicit PRM), else
    ``ctx.model`` (the policy: then the reward is the per-token log-ratio the KL penalty also uses,
    with the opposite sign). β = 0.05 is PRIME's value.

    Returns:
        Token rewards, shape (N, T), zero off the response.
    """
    batch = ctx.batch
    with torch.no_grad():
        logprobs, _ = compute_logprobs(implicit_model if implicit_model is not None else ctx.model, batch, 1.0)
        ref_logprobs, _ = compute_logprobs(ctx.ref_model, batch, 1.0)
    return beta * (logprobs - ref_logprobs).float() * batch.response_mask  # (N, T)


def implicit_prm_loss(
    logprobs: Tensor, ref_logprobs: Tensor, response_mask: Tensor, outcomes: Tensor, beta: float = 0.05
) -> tuple[Tensor, dict[str, float]]:
    """PRIME's outcome cross-entropy that trains an implicit PRM ``π_φ`` from outcome labels only.

    The sequence reward ``β Σ_t log π_φ/π_ref`` is read as a logit of correctness; fitting it to
    the outcomes makes its per-token terms (``implicit_prm``) a process reward.

    Args:
        logprobs: log π_φ of the response tokens, with grad, shape (N, T).
        ref_logprobs: log π_ref of the same tokens, shape (N, T).
        response_mask: 1 on response tokens, shape (N, T).
        outcomes: 0/1 outcome labels, shape (N,).
        beta: β > 0.

    Returns:
        The mean binary cross-entropy (scalar) and ``{"implicit_prm/loss", "implicit_prm/acc"}``.
    """
    mask = response_mask.to(logprobs.dtype)  # (N, T)
    seq = beta * ((logprobs - ref_logprobs.detach()) * mask).sum(-1)  # (N,)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(seq, outcomes.to(seq.dtype))
    acc = ((seq > 0) == outcomes.bool()).float().mean().item()
    return loss, {"implicit_prm/loss": loss.item(), "implicit_prm/acc": acc}


def step_returns(step_rewards: Tensor, response_mask: Tensor, outcome_rewards: Tensor | None = None) -> Tensor:
    """Per-token returns of step rewards with γ = 1: ``G_t = Σ_{s ≥ t} r_s``.

    A token's return is its own step's reward plus those of every later step (plus the outcome on
    the last token if given), so the tokens of a step before the first error carry that step's and
    the later steps' credit while tokens after it carry none: credit is local, unlike an outcome
    reward that every token shares. This is what ``reinforce_pp`` does with ``token_rewards``
    before its batch whitening.

    Args:
        step_rewards: dense rewards, shape (N, T).
        response_mask: 1 on response tokens, shape (N, T).
        outcome_rewards: optional outcome reward per row, shape (N,), put on the last token.

    Returns:
        Returns-to-go, shape (N, T), zero off the response.
    """
    outcome = torch.zeros(step_rewards.shape[0]) if outcome_rewards is None else outcome_rewards.float()
    dense = token_level_rewards(outcome, response_mask, step_rewards)  # (N, T)
    return returns_to_go(dense, response_mask, gamma=1.0)


def compare_step_and_outcome(
    step_rewards: Tensor,
    outcome_rewards: Tensor,
    response_mask: Tensor,
    group_size: int,
    tokens: list[list[str]] | None = None,
) -> pd.DataFrame:
    """One row per response token: step reward, step return-to-go, and GRPO's outcome advantage.

    Shows side by side how the same completions are credited by dense step rewards (each token
    gets what its step and the later ones earned) and by an outcome-only GRPO advantage (every
    token of a row gets the same number), for the notebook.

    Args:
        step_rewards: dense step rewards, shape (N, T).
        outcome_rewards: outcome reward per row, shape (N,).
        response_mask: shape (N, T).
        group_size: G, for GRPO's groups.
        tokens: optional decoded token strings per row, for display.

    Returns:
        A DataFrame with columns ``row, t, token, step_reward, step_return, grpo_advantage``.
    """
    returns = step_returns(step_rewards, response_mask)  # (N, T)
    grpo, _ = ADVANTAGES.get("grpo")(outcome_rewards.float(), response_mask, group_size)  # (N, T)
    rows = []
    for i, j in response_mask.nonzero().tolist():
        rows.append(
            {
                "row": i,
                "t": j,
                "token": tokens[i][j] if tokens is not None else None,
                "step_reward": step_rewards[i, j].item(),
                "step_return": returns[i, j].item(),
                "grpo_advantage": grpo[i, j].item(),
            }
        )
    return pd.DataFrame(rows)
