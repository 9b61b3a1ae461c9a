"""Sampling from a masked diffusion LM, and estimating its log-likelihoods (LLaDA's sampler, d1's estimator).

**Iterative unmasking** (LLaDA, Nie et al. 2025, arXiv:2502.09992): start from L ``<mask>`` tokens; at each
of ``steps`` forward passes, sample a token for every masked position, then *commit* only a few of them
(the most confident ones under ``"low_confidence"`` remasking, random ones under ``"random"``) and leave the
rest masked. A committed token is never changed again. With ``block_length`` the completion is decoded in
blocks, left to right (semi-autoregressive), each block with its share of the steps.

**Why RL needs an estimator.** An autoregressive LM factorises log p(y|x) = sum_k log p(y_k | x, y_<k) and
one forward gives it exactly. A masked diffusion LM has no such factorisation: its likelihood is only
bounded by the ELBO

    log p(y|x) >= E_{l ~ U{1..L}} [ (L / l) * E_{|S| = l} sum_{i in S} log p(y_i | x, y with S masked) ],

(LLaDA's lower-variance form, ``mc_elbo``), which needs many forwards per sequence. d1 (Zhao et al. 2025,
arXiv:2504.12216, diffu-GRPO) uses a **one-step estimator** instead: mask the whole completion, mask each
prompt token with probability p_mask, and take the per-token log-probs of a single forward,
log p(y_k | x', all masked) (``one_step_logits``). It is cheap and biased (it is the l = L term of the ELBO
with a perturbed prompt); ``rl4lrm.diffusion.studies`` measures how much. The random prompt mask is
drawn once per rollout and kept in ``RolloutBatch.aux["prompt_noise"]``, so the trainer's recomputations use
the same mask and the PPO ratio is exactly 1 at the first update.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from rl4lrm.decoding import sample_tokens
from rl4lrm.rollout import RolloutBatch, token_logprobs
from rl4lrm.utils import eval_mode


@dataclass
class DiffusionSample:
    """What the sampler produced for N rows of L completion tokens."""

    completion: torch.Tensor  # (N, L) token ids, no mask left
    confidence: torch.Tensor  # (N, L) probability of each token when it was committed
    commit_step: torch.Tensor  # (N, L) the step (0-based) at which each position was committed
    states: list[torch.Tensor] | None = None  # steps + 1 tensors (N, L): the all-mask start, then after each step


def transfer_schedule(n_tokens: int, steps: int) -> list[int]:
    """How many tokens each of ``steps`` steps commits: as even as possible, the remainder going first."""
    base, extra = divmod(n_tokens, steps)
    return [base + (1 if s < extra else 0) for s in range(steps)]


def check_schedule(gen_length: int, steps: int, block_length: int | None) -> tuple[int, int]:
    """Validates steps and blocks for a completion of ``gen_length``; returns (block_length, steps per block)."""
    block = gen_length if block_length is None else block_length
    if block < 1 or gen_length % block:
        raise ValueError(f"block_length={block_length} must divide the completion length L={gen_length}")
    n_blocks = gen_length // block
    if steps < 1 or steps % n_blocks:
        raise ValueError(
            f"steps={steps} must be a positive multiple of the number of blocks {n_blocks} "
            f"(L={gen_length}, block_length={block})"
        )
    if steps > gen_length:
        raise ValueError(
            f"steps={steps} exceeds the completion length L={gen_length}: some steps would commit "
            f"nothing; use 1..{gen_length}"
        )
    return block, steps // n_blocks


@torch.no_grad()
def diffusion_sample(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    gen_length: int,
    steps: int = 8,
    remasking: str = "low_confidence",
    block_length: int | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    return_states: bool = False,
) -> DiffusionSample:
    """Decodes completions of ``gen_length`` tokens by iterative unmasking.

    Args:
        model: a ``DiffusionLM``. prompt_ids, prompt_mask: (N, P) left-padded prompts (one row per sample).
        gen_length: L. steps: forward passes in all. remasking: ``"low_confidence"`` or ``"random"``.
        block_length: None (one block) or a divisor of L. temperature: 0 is greedy. top_p: nucleus mass.
        generator: for reproducible samples. return_states: also keep the completion after every step.

    Returns:
        A ``DiffusionSample``.
    """
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"remasking must be 'low_confidence' or 'random', got {remasking!r}")
    block, per_block = check_schedule(gen_length, steps, block_length)
    N, L, mask_id = prompt_ids.shape[0], gen_length, model.mask_token_id
    x = torch.full((N, L), mask_id, dtype=torch.long, device=prompt_ids.device)  # (N, L)
    confidence = torch.zeros(N, L, device=x.device)
    commit_step = torch.full((N, L), -1, dtype=torch.long, device=x.device)
    states, step = ([x.clone()] if return_states else None), 0
    for lo in range(0, L, block):
        in_block = torch.zeros(L, dtype=torch.bool, device=x.device)
        in_block[lo : lo + block] = True
        for k in transfer_schedule(block, per_block):
            masked = x == mask_id  # (N, L)
            logits = model(prompt_ids, prompt_mask, x)  # (N, L, V)
            logits[..., mask_id] = float("-inf")  # the sampler never writes a mask
            tokens, logp = sample_tokens(logits.reshape(N * L, -1), temperature, top_p, generator)
            tokens, prob = tokens.view(N, L), logp.view(N, L).exp()  # (N, L) proposals and their probabilities
            if remasking == "low_confidence":
                score = prob.clone()
            else:
                score = torch.rand(N, L, generator=generator, device=x.device)
            score = score.masked_fill(~(masked & in_block), float("-inf"))  # only masked positions of this block
            pick = score.topk(k, dim=-1).indices  # (N, k): every row has the same number of masked slots left
            x.scatter_(1, pick, tokens.gather(1, pick))
            confidence.scatter_(1, pick, prob.gather(1, pick))
            commit_step.scatter_(1, pick, torch.full_like(pick, step))
            step += 1
            if return_states:
                states.append(x.clone())
    return DiffusionSample(x, confidence, commit_step, states)


def finish_completions(tokenizer, completion: torch.Tensor):
    """Cuts each completion after its first EOS (the rest becomes ``<pad>``).

    Returns:
        ``(ids, response_mask, truncated, texts)``: (N, L) ids, (N, L) float mask up to and including EOS,
        (N,) bool rows without EOS, and the decoded texts (special tokens dropped).
    """
    L = completion.shape[1]
    is_eos = completion == tokenizer.eos_token_id  # (N, L)
    truncated = ~is_eos.any(-1)  # (N,)
    first = torch.where(truncated, L - 1, is_eos.float().argmax(-1))  # (N,) index of the first EOS
    keep = torch.arange(L, device=completion.device)[None, :] <= first[:, None]  # (N, L)
    ids = completion.masked_fill(~keep, tokenizer.pad_token_id)
    return ids, keep.float(), truncated, tokenizer.batch_decode(ids, skip_special_tokens=True)


def one_step_logits(
    model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, gen_length: int, prompt_noise: torch.Tensor
) -> torch.Tensor:
    """d1's one-step estimator: logits of every completion position with the whole completion masked.

    Args:
        prompt_ids, prompt_mask: (N, P). gen_length: T. prompt_noise: (N, P) bool, prompt tokens to mask.

    Returns:
        Float32 logits (N, T, V); ``log_softmax`` of them at the sampled tokens is the per-token estimate.
    """
    completion = torch.full(
        (prompt_ids.shape[0], gen_length), model.mask_token_id, dtype=torch.long, device=prompt_ids.device
    )  # (N, T)
    return model(prompt_ids.masked_fill(prompt_noise, model.mask_token_id), prompt_mask, completion)  # (N, T, V)


def prompt_noise(prompt_mask: torch.Tensor, p_mask: float, generator=None) -> torch.Tensor:
    """(N, P) bool: each real prompt token is masked with probability ``p_mask``."""
    u = torch.rand(prompt_mask.shape, generator=generator, device=prompt_mask.device)
    return (u < p_mask) & (prompt_mask > 0)


@torch.no_grad()
def diffusion_rollout(
    model, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
) -> RolloutBatch:
    """The ``sample_rollout`` hook: G completions per prompt (rows of a group contiguous) as a ``RolloutBatch``.

    ``old_logprobs`` are d1's one-step estimates under the prompt mask stored in ``aux["prompt_noise"]``.
    """
    if max_new_tokens != model.gen_length:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} must equal the diffusion model's completion length "
            f"L={model.gen_length} (the length it was pre-trained to fill); set max_new_tokens={model.gen_length}"
        )
    cfg = model.sampling
    with eval_mode(model):
        p_ids = prompt_ids.repeat_interleave(group_size, 0)  # (N, P)
        p_mask = prompt_mask.repeat_interleave(group_size, 0)  # (N, P)
        out = diffusion_sample(
            model,
            p_ids,
            p_mask,
            max_new_tokens,
            cfg.steps,
            cfg.remasking,
            cfg.block_length,
            temperature,
            top_p,
            generator,
        )
        ids, response_mask, truncated, texts = finish_completions(tokenizer, out.completion)
        noise = prompt_noise(p_mask, cfg.p_mask_prompt, generator)  # (N, P)
        logits = one_step_logits(model, p_ids, p_mask, max_new_tokens, noise) / (temperature or 1.0)  # (N, T, V)
        old_logprobs = token_logprobs(logits, ids) * response_mask  # (N, T)
    return RolloutBatch(
        prompt_ids=p_ids,
        prompt_mask=p_mask,
        completion_ids=ids,
        response_mask=response_mask,
        old_logprobs=old_logprobs,
        group_ids=torch.arange(len(prompt_ids), device=ids.device).repeat_interleave(group_size),
        truncated=truncated,
        completions=texts,
        group_size=group_size,
        temperature=temperature,
        aux={"prompt_noise": noise},
    )


@torch.no_grad()
def one_step_estimate(
    model, prompt_ids, prompt_mask, completion, p_mask: float = 0.15, n_samples: int = 1, generator=None
) -> torch.Tensor:
    """Sequence log-likelihood estimates of the full completion window by d1's one-step estimator.

    Returns:
        (N, n_samples): one estimate per independent prompt mask (one forward each).
    """
    out = []
    for _ in range(n_samples):
        logits = one_step_logits(
            model, prompt_ids, prompt_mask, completion.shape[1], prompt_noise(prompt_mask, p_mask, generator)
        )  # (N, L, V)
        out.append(token_logprobs(logits, completion).sum(-1))  # (N,)
    return torch.stack(out, dim=1)  # (N, n_samples)


@torch.no_grad()
def mc_elbo(model, prompt_ids, prompt_mask, completion, n_samples: int = 64, generator=None) -> torch.Tensor:
    """Monte-Carlo samples of the masked-diffusion ELBO of each completion (LLaDA's lower-variance form).

    Each sample draws l ~ U{1..L}, masks l positions chosen uniformly, and returns
    (L / l) * sum over the masked positions of log p(y_i | prompt, masked completion); one forward each.

    Returns:
        (N, n_samples) unbiased samples of the ELBO; their mean is the estimate.
    """
    N, L = completion.shape
    out = []
    for _ in range(n_samples):
        l = torch.randint(1, L + 1, (N, 1), generator=generator, device=completion.device)  # (N, 1)
        rank = torch.rand(N, L, generator=generator, device=completion.device).argsort(-1).argsort(-1)  # (N, L)
        masked = rank < l  # (N, L): exactly l random positions per row
        logits = model(prompt_ids, prompt_mask, completion.masked_fill(masked, model.mask_token_id))  # (N, L, V)
        logp = token_logprobs(logits, completion)  # (N, L)
        out.append((logp * masked).sum(-1) * L / l.squeeze(1))  # (N,)
    return torch.stack(out, dim=1)  # (N, n_samples)


@torch.no_grad()
def exact_elbo(model, prompt_ids, prompt_mask, completion) -> torch.Tensor:
    """The ELBO by enumerating all 2^L - 1 masks (the expectation ``mc_elbo`` samples); for small L only.

    Returns:
        (N,) exact ELBO values.
    """
    N, L = completion.shape
    if L > 12:
        raise ValueError(f"exact_elbo enumerates 2^L masks; L={L} is too long (use L <= 12)")
    total = torch.zeros(N, device=completion.device)
    for l in range(1, L + 1):
        subsets = list(itertools.combinations(range(L), l))
        for subset in subsets:
            masked = torch.zeros(N, L, dtype=torch.bool, device=completion.device)
            masked[:, list(subset)] = True
            logits = model(prompt_ids, prompt_mask, completion.masked_fill(masked, model.mask_token_id))
            logp = (token_logprobs(logits, completion) * masked).sum(-1)  # (N,)
            total += (L / l) * logp / len(subsets) / L  # E_l uniform over 1..L, E_S uniform over C(L, l)
    return total


@torch.no_grad()
def remask_refine(
    model, prompt_ids, prompt_mask, completion, confidence, n_remask: int = 1, temperature: float = 0.0, generator=None
) -> torch.Tensor:
    """An extra pass that standard LLaDA sampling does *not* make: remask the ``n_remask`` committed tokens
    with the lowest commit-time confidence and predict them again in one forward.

    Args:
        completion, confidence: (N, L) from ``diffusion_sample``. temperature: 0 re-predicts greedily.

    Returns:
        (N, L) the refined completion.
    """
    pick = confidence.topk(n_remask, dim=-1, largest=False).indices  # (N, n_remask)
    noisy = completion.scatter(1, pick, model.mask_token_id)  # (N, L)
    logits = model(prompt_ids, prompt_mask, noisy)  # (N, L, V)
    logits[..., model.mask_token_id] = float("-inf")
    N, L = completion.shape
    tokens, _ = sample_tokens(logits.reshape(N * L, -1), temperature, 1.0, generator)
    return completion.scatter(1, pick, tokens.view(N, L).gather(1, pick))
