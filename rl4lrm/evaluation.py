"""Held-out evaluation: sampled accuracy (pass@1), unbiased pass@k, completion length.

Every number is measured on the task's test split, whose problems never appear in training.
pass@k uses the unbiased estimator of Chen et al. (2021) from ``rl4lrm.passk``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rl4lrm.passk import pass_at_k, pass_at_k_curve
from rl4lrm.rollout import rollout
from rl4lrm.tasks import Problem, Task


@torch.no_grad()
def sample_and_verify(
    model,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    n_samples: int = 1,
    temperature: float = 1.0,
    max_new_tokens: int = 32,
    top_p: float = 1.0,
    prompts_per_batch: int = 64,
    style: str = "plain",
    generator: torch.Generator | None = None,
) -> dict:
    """Samples ``n_samples`` completions per problem and verifies them.

    Returns:
        ``{"correct": list[int] per problem (count of correct samples), "lengths": list[float] per
        sample, "well_formed": list[bool] per sample, "completions": list[str] per sample}``.
    """
    correct, lengths, formed, texts = [], [], [], []
    for start in range(0, len(problems), prompts_per_batch):
        chunk = list(problems[start : start + prompts_per_batch])
        prompts = [task.format_prompt(p, style, tokenizer) for p in chunk]
        batch = rollout(model, tokenizer, prompts, n_samples, max_new_tokens, temperature, top_p, generator)
        verdicts = [task.verify(chunk[i // n_samples], c) for i, c in enumerate(batch.completions)]
        ok = torch.tensor([v.correct for v in verdicts]).view(len(chunk), n_samples)
        correct += ok.sum(1).tolist()
        lengths += batch.lengths.tolist()
        formed += [v.well_formed for v in verdicts]
        texts += batch.completions
    return {"correct": correct, "lengths": lengths, "well_formed": formed, "completions": texts}


def evaluate(
    model,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    n_samples: int = 1,
    ks: Sequence[int] = (1,),
    temperature: float = 1.0,
    max_new_tokens: int = 32,
    top_p: float = 1.0,
    style: str = "plain",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Held-out metrics with stable names.

    Args:
        ks: the k of each reported pass@k (each must be <= ``n_samples``).
        temperature: 0 gives greedy accuracy (then use ``n_samples=1``).

    Returns:
        ``acc/pass@k`` for every k, ``length/mean`` (tokens, EOS included) and ``format/ok``
        (fraction of well-formed answers).
    """
    if any(k > n_samples for k in ks):
        raise ValueError(f"every k in ks={list(ks)} must be <= n_samples={n_samples}")
    out = sample_and_verify(
        model,
        tokenizer,
        task,
        problems,
        n_samples,
        temperature,
        max_new_tokens,
        top_p,
        style=style,
        generator=generator,
    )
    metrics = {f"acc/pass@{k}": v for k, v in pass_at_k_curve(n_samples, out["correct"], ks).items()}
    metrics["length/mean"] = sum(out["lengths"]) / len(out["lengths"])
    metrics["format/ok"] = sum(out["well_formed"]) / len(out["well_formed"])
    return metrics


__all__ = ["evaluate", "pass_at_k", "pass_at_k_curve", "sample_and_verify"]
