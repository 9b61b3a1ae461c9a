"""Canned studies of RL on a masked diffusion LM (notebook 16, ``benchmarks/diffusion.py``).

* ``estimator_study``: d1's one-step log-likelihood estimator (Zhao et al. 2025, arXiv:2504.12216) against a
  many-sample Monte-Carlo ELBO (LLaDA, Nie et al. 2025, arXiv:2502.09992) on sampled completions: bias,
  per-sequence variance at equal forward-pass cost, correlation across sequences (``estimator_summary``).
* ``steps_study``: held-out accuracy against the number of denoising steps and the remasking strategy.
* ``self_correction_study``: how often a committed answer token is wrong, whether its commit-time
  confidence flags it, and whether an extra remask-and-re-predict pass (not part of LLaDA's sampler,
  which never revisits a committed token) repairs it.
* ``grpo_comparison``: GRPO through ``rl4lrm.trainer.Trainer`` on the diffusion model and on the
  autoregressive zoo model ``addition``, same budget: held-out accuracy before/after, sampler tokens/s.

Exercise checkers for the notebook (``check_diffusion_loss``, ``check_transfer_schedule``) are at the end.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from rl4lrm.diffusion.model import (
    completion_targets,
    load_diffusion_base,
)
from rl4lrm.diffusion.sampling import (
    diffusion_sample,
    finish_completions,
    mc_elbo,
    one_step_estimate,
    remask_refine,
)
from rl4lrm.evaluation import evaluate
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import rollout
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import auroc


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _gen(model, seed: int) -> torch.Generator:
    return torch.Generator(device=_device(model)).manual_seed(seed)


def _prompts(tokenizer, problems, repeat: int = 1, device="cpu"):
    enc = tokenizer([p.prompt for p in problems], padding=True, return_tensors="pt", add_special_tokens=False)
    return (
        enc["input_ids"].repeat_interleave(repeat, 0).to(device),
        enc["attention_mask"].repeat_interleave(repeat, 0).to(device),
    )


@torch.no_grad()
def estimator_study(
    model,
    tokenizer,
    task,
    n_problems: int = 16,
    samples_per_problem: int = 2,
    n_one_step: int = 32,
    n_reference: int = 256,
    p_mask: float = 0.15,
    seed: int = 0,
) -> pd.DataFrame:
    """One-step estimates vs Monte-Carlo ELBO samples of the log-likelihood of sampled completions.

    Both score the full completion window (answer, EOS and the pads after it). The reference is the mean of
    ``n_reference`` ELBO samples; each estimator's spread is that of a single forward pass.

    Returns:
        One row per sequence: ``completion``, ``reference`` (MC ELBO mean), ``reference_se`` (its standard
        error), ``one_step`` (mean over ``n_one_step`` prompt masks), ``one_step_std`` and ``mc_std``
        (standard deviation of a single one-forward estimate of each kind).
    """
    gen = _gen(model, seed)
    problems = task.problems("test", n_problems, seed=seed)
    p_ids, p_mask_ = _prompts(tokenizer, problems, samples_per_problem, _device(model))
    cfg = model.sampling
    sample = diffusion_sample(
        model, p_ids, p_mask_, model.gen_length, cfg.steps, cfg.remasking, cfg.block_length, 1.0, 1.0, gen
    )
    completion = sample.completion  # (N, L)
    ref = mc_elbo(model, p_ids, p_mask_, completion, n_reference, gen).cpu()  # (N, n_reference)
    one = one_step_estimate(model, p_ids, p_mask_, completion, p_mask, n_one_step, gen).cpu()  # (N, n_one_step)
    return pd.DataFrame(
        {
            "completion": finish_completions(tokenizer, completion)[3],
            "reference": ref.mean(1).numpy(),
            "reference_se": (ref.std(1) / n_reference**0.5).numpy(),
            "one_step": one.mean(1).numpy(),
            "one_step_std": one.std(1).numpy(),
            "mc_std": ref.std(1).numpy(),
        }
    )


def estimator_summary(per_sequence: pd.DataFrame) -> pd.DataFrame:
    """Bias, single-forward variance and correlation with the reference, one row per estimator."""
    ref = per_sequence["reference"]
    return pd.DataFrame(
        {
            "estimator": ["one-step (d1)", "MC ELBO, 1 sample"],
            "bias (mean difference, nats)": [(per_sequence["one_step"] - ref).mean(), 0.0],
            "variance per forward (mean over sequences)": [
                (per_sequence["one_step_std"] ** 2).mean(),
                (per_sequence["mc_std"] ** 2).mean(),
            ],
            "correlation with reference": [np.corrcoef(per_sequence["one_step"], ref)[0, 1], 1.0],
        }
    ).set_index("estimator")


def _with_sampling(model, **settings):
    old = model.sampling
    model.sampling = replace(old, **settings)
    return old


def steps_study(
    model,
    tokenizer,
    task,
    steps=(1, 2, 4, 8),
    remasking=("low_confidence", "random"),
    n_problems: int = 128,
    samples: int = 4,
    temperature: float = 1.0,
    block_length: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Held-out sampled accuracy for every (steps, remasking) pair (one row each), with sampler tokens/s."""
    problems, rows = task.problems("test", n_problems, seed=0), []
    for strategy in remasking:
        for n_steps in steps:
            old = _with_sampling(model, steps=n_steps, remasking=strategy, block_length=block_length)
            try:
                gen = _gen(model, seed)
                t0 = time.perf_counter()
                metrics = evaluate(
                    model,
                    tokenizer,
                    task,
                    problems,
                    samples,
                    temperature=temperature,
                    max_new_tokens=model.gen_length,
                    generator=gen,
                )
                wall = time.perf_counter() - t0
            finally:
                model.sampling = old
            rows.append(
                {
                    "steps": n_steps,
                    "remasking": strategy,
                    "accuracy": metrics["acc/pass@1"],
                    "format_ok": metrics["format/ok"],
                    "tokens/s": metrics["length/mean"] * n_problems * samples / wall,
                }
            )
    return pd.DataFrame(rows)


@torch.no_grad()
def self_correction_study(
    model,
    tokenizer,
    task,
    settings=((8, "low_confidence"), (8, "random"), (2, "low_confidence")),
    n_problems: int = 128,
    samples: int = 4,
    n_remask: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Are committed answer tokens wrong, does their confidence say so, and does one remask pass fix them?

    "Answer tokens" are the positions of the reference answer and its EOS; a token there is wrong when it
    differs from the reference (a shorter or longer answer counts as wrong tokens too). The refinement pass
    (``remask_refine``, greedy) remasks the ``n_remask`` lowest-confidence tokens of the whole completion.

    Returns:
        One row per (steps, remasking): accuracy before/after the pass, the share of samples it fixed and
        broke, the wrong-token rate, the mean confidence of right and wrong tokens, and the AUROC of
        (1 - confidence) as a detector of wrong tokens.
    """
    problems = task.problems("test", n_problems, seed=0)
    expanded = [p for p in problems for _ in range(samples)]
    p_ids, p_mask = _prompts(tokenizer, problems, samples, _device(model))
    target = completion_targets(tokenizer, [p.answer for p in expanded], model.gen_length)  # (N, L)
    eos_at = (target == tokenizer.eos_token_id).float().argmax(-1, keepdim=True)  # (N, 1)
    answer_pos = torch.arange(model.gen_length)[None, :] <= eos_at  # (N, L): the answer digits and its EOS
    rows = []
    for n_steps, strategy in settings:
        gen = _gen(model, seed)
        out = diffusion_sample(model, p_ids, p_mask, model.gen_length, n_steps, strategy, None, temperature, 1.0, gen)
        refined = remask_refine(model, p_ids, p_mask, out.completion, out.confidence, n_remask, 0.0, gen).cpu()
        out.completion, out.confidence = out.completion.cpu(), out.confidence.cpu()
        before = torch.tensor(task.reward(expanded, finish_completions(tokenizer, out.completion)[3])) > 0.5
        after = torch.tensor(task.reward(expanded, finish_completions(tokenizer, refined)[3])) > 0.5
        wrong = (out.completion != target)[answer_pos]  # answer-token errors
        conf = out.confidence[answer_pos]
        rows.append(
            {
                "steps": n_steps,
                "remasking": strategy,
                "accuracy": before.float().mean().item(),
                "accuracy after remask pass": after.float().mean().item(),
                "fixed by pass": (~before & after).float().mean().item(),
                "broken by pass": (before & ~after).float().mean().item(),
                "wrong answer tokens": wrong.float().mean().item(),
                "confidence (right tokens)": conf[~wrong].mean().item(),
                "confidence (wrong tokens)": conf[wrong].mean().item() if wrong.any() else float("nan"),
                "AUROC low confidence -> wrong": auroc((1 - conf).numpy(), wrong.float().numpy()),
            }
        )
    return pd.DataFrame(rows)


def sampler_tokens_per_second(
    model,
    tokenizer,
    task,
    prompts: int = 64,
    group_size: int = 8,
    max_new_tokens: int = 8,
    seed: int = 0,
    repeats: int = 3,
) -> float:
    """Generated tokens (up to and including EOS) per second of ``rl4lrm.rollout.rollout`` on test prompts:
    the median of ``repeats`` timed rollouts after one warm-up (this machine is noisy)."""
    texts = [p.prompt for p in task.problems("test", prompts, seed=seed)]
    gen = _gen(model, seed)
    speeds = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        batch = rollout(model, tokenizer, texts, group_size, max_new_tokens, 1.0, 1.0, gen)
        if r:  # the first round warms up
            speeds.append(batch.response_mask.sum().item() / (time.perf_counter() - t0))
    return statistics.median(speeds)


def train_grpo(model, tokenizer, task, steps: int = 30, progress: bool = False, callbacks=(), **overrides):
    """GRPO on ``model`` through ``rl4lrm.trainer.Trainer`` (the model is trained in place).

    ``max_new_tokens`` defaults to the diffusion model's L; other ``TrainConfig`` fields go in ``overrides``.

    Returns:
        ``(trainer, history)``.
    """
    fields = {
        "preset": "grpo",
        "steps": steps,
        "prompts_per_step": 8,
        "group_size": 8,
        "eval_every": steps,
        "eval_problems": 128,
        "eval_samples": 4,
        "lr": 1e-4,
        "device": "cpu",
        "max_new_tokens": getattr(model, "gen_length", 8),
        **overrides,
    }
    trainer = Trainer(
        TrainConfig.build(**fields), model=model, tokenizer=tokenizer, task=task, callbacks=callbacks, progress=progress
    )
    return trainer, trainer.train()


def grpo_comparison(
    steps: int = 30,
    prompts_per_step: int = 8,
    group_size: int = 8,
    seed: int = 0,
    eval_problems: int = 128,
    diffusion_lr: float = 1e-4,
    ar_lr: float = 3e-4,
    max_new_tokens: int = 8,
    models=None,
) -> pd.DataFrame:
    """GRPO on the diffusion model vs the autoregressive zoo model ``addition``, same steps and batch.

    Args:
        diffusion_lr, ar_lr: each model's learning rate (the other settings are shared).
        models: optional ``{"diffusion": (model, tokenizer, task), "autoregressive": (...)}`` to start from
            (deep-copied); default: the shipped checkpoints.

    Returns:
        One row per model: held-out pass@1 before and after, the gain, sampler tokens/s, wall time.
    """
    models = models or {"diffusion": load_diffusion_base(), "autoregressive": load_base("addition")}
    rows = []
    for name, (model, tokenizer, task) in models.items():
        model = copy.deepcopy(model)
        speed = sampler_tokens_per_second(model, tokenizer, task, max_new_tokens=max_new_tokens, seed=seed)
        t0 = time.perf_counter()
        _, history = train_grpo(
            model,
            tokenizer,
            task,
            steps,
            prompts_per_step=prompts_per_step,
            seed=seed,
            group_size=group_size,
            eval_problems=eval_problems,
            max_new_tokens=max_new_tokens,
            lr=diffusion_lr if name == "diffusion" else ar_lr,
        )
        acc = history["acc/pass@1"].dropna()
        rows.append(
            {
                "model": name,
                "pass@1 before": acc.iloc[0],
                "pass@1 after": acc.iloc[-1],
                "gain (points)": 100 * (acc.iloc[-1] - acc.iloc[0]),
                "reward first 5 steps": history["reward/mean"].iloc[1:6].mean(),
                "reward last 5 steps": history["reward/mean"].iloc[-5:].mean(),
                "sampler tokens/s": speed,
                "train wall (s)": time.perf_counter() - t0,
            }
        )
    return pd.DataFrame(rows).set_index("model")
