"""GRPO's length bias, isolated: a policy whose only choice is how long to keep writing.

Dr.GRPO (Liu et al., 2025, "Understanding R1-Zero-Like Training", arXiv:2503.20783) shows that the
per-answer normalisation 1/|y_i| of GRPO's loss (``seq_mean_token_mean``) weighs each token of a long
answer less: a long *wrong* answer is pushed down less per token than a short one, so wrong answers grow,
while right answers are pushed towards short. A constant denominator (``seq_mean_token_sum_norm``)
removes the bias. The effect needs a policy that can write on differently after a right and after a
wrong answer — real reasoning models can, the lab's tiny char models barely do, and there the drift is
lost in sampling noise.

So this study trains exactly that choice and nothing else. The toy policy answers right with a fixed
probability (the answer is not trained), then writes "." with probability sigmoid(z_right) or
sigmoid(z_wrong) at each position, else EOS. Its completions are token sequences with per-token
log-probs, scored by the verifier reward (right = 1, wrong = 0, independent of length), and trained
with the library's own advantage estimator, policy loss and aggregation. Any change of length comes
from the loss's weighting alone.
"""

from __future__ import annotations

import pandas as pd
import torch

from rl4lrm.advantages import ADVANTAGES
from rl4lrm.aggregation import AGGREGATIONS
from rl4lrm.losses import POLICY_LOSSES


def _sample(z: torch.Tensor, correct: torch.Tensor, answer_len: int, max_dots: int, gen: torch.Generator):
    """Rollouts of the toy policy: per-token log-probs (N, T) with grad, response mask (N, T), lengths (N,)."""
    n = correct.shape[0]
    q = torch.sigmoid(z[correct.long()])  # (N,) probability of writing another dot
    keep_going = torch.rand(n, max_dots, generator=gen) < q.detach()[:, None]  # (N, D)
    dots = torch.cumprod(keep_going.long(), dim=1).sum(1)  # (N,) dots before the first stop
    truncated = dots == max_dots
    T = answer_len + max_dots + 1
    pos = torch.arange(T)[None, :]  # (1, T)
    is_dot = (pos >= answer_len) & (pos < answer_len + dots[:, None])  # (N, T)
    is_eos = (pos == answer_len + dots[:, None]) & ~truncated[:, None]  # (N, T)
    logprobs = torch.where(is_dot, torch.log(q)[:, None], torch.zeros(1))  # answer tokens: not trained
    logprobs = torch.where(is_eos, torch.log1p(-q)[:, None], logprobs)  # (N, T)
    mask = ((pos < answer_len) | is_dot | is_eos).float()  # (N, T)
    return logprobs, mask, mask.sum(1)


def length_bias_study(
    aggregation: str = "seq_mean_token_mean",
    advantage: str = "grpo",
    steps: int = 300,
    prompts: int = 16,
    group_size: int = 8,
    p_correct: float = 0.3,
    answer_len: int = 4,
    max_dots: int = 40,
    init_continue: float = 0.7,
    lr: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Trains the toy length policy and records the length of right and wrong answers per step.

    Args:
        aggregation: one of ``rl4lrm.aggregation.AGGREGATIONS``.
        advantage: a registered advantage estimator (``grpo``, ``dr_grpo``, ``rloo``, ...).
        steps: optimizer steps (Adam on the two logits).
        prompts, group_size: B and G of each batch.
        p_correct: probability that an answer is right (fixed: only the length is learned).
        answer_len: tokens of the answer itself, before the dots.
        max_dots: cap on the dots (a truncated row has no EOS).
        init_continue: initial probability of writing another dot, after right and wrong answers alike.
        lr: Adam learning rate.
        seed: seeds the sampling.

    Returns:
        One row per step: ``step``, ``length/correct_mean``, ``length/wrong_mean`` (tokens, sampled),
        ``expected/correct`` and ``expected/wrong`` (expected lengths under the current policy,
        ignoring the cap), ``p_continue/correct`` and ``p_continue/wrong``.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; known: {', '.join(AGGREGATIONS)}")
    if not 0 < p_correct < 1 or not 0 < init_continue < 1:
        raise ValueError(f"p_correct and init_continue must be in (0, 1), got {p_correct} and {init_continue}")
    advantage_fn, loss_fn = ADVANTAGES.get(advantage), POLICY_LOSSES.get("vanilla_pg")
    z = torch.full((2,), torch.logit(torch.tensor(init_continue)).item(), requires_grad=True)  # [wrong, right]
    opt = torch.optim.Adam([z], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for step in range(steps + 1):
        correct = torch.rand(prompts * group_size, generator=gen) < p_correct  # (N,)
        logprobs, mask, lengths = _sample(z, correct, answer_len, max_dots, gen)
        q = torch.sigmoid(z.detach())
        rows.append(
            {
                "step": step,
                "length/correct_mean": lengths[correct].mean().item() if correct.any() else float("nan"),
                "length/wrong_mean": lengths[~correct].mean().item() if (~correct).any() else float("nan"),
                "expected/correct": answer_len + 1 + (q[1] / (1 - q[1])).item(),
                "expected/wrong": answer_len + 1 + (q[0] / (1 - q[0])).item(),
                "p_continue/correct": q[1].item(),
                "p_continue/wrong": q[0].item(),
            }
        )
        if step == steps:
            break
        advantages, _ = advantage_fn(correct.float(), mask, group_size)  # (N, T)
        loss, _ = loss_fn(logprobs, logprobs.detach(), advantages, mask, aggregation=aggregation, max_len=mask.shape[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return pd.DataFrame(rows)
