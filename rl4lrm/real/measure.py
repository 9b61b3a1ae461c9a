"""What a real model costs: peak memory, rollout throughput, the update's model-FLOPs utilisation (MFU), and
whether the sampler agrees with the model's own forward (the fast engine's rounding, a lower sampling precision).

MFU (PaLM, Chowdhery et al., 2022, https://arxiv.org/abs/2204.02311, appendix B) is the FLOPs a step needs
divided by the FLOPs the chip could do in the step's time. A forward and backward pass of a dense decoder costs
about ``6 * params * tokens`` FLOPs (attention's share is small at these lengths and left out); a LoRA update
still runs the full forward and backward through the activations, only the weight gradients of the frozen
matrices are skipped (about ``4 * params * tokens``).
"""

from __future__ import annotations

import resource
import time

import torch

from rl4lrm.rollout import RolloutBatch, compute_logprobs, rollout

# dense peak FLOP/s of one chip by (device-name substring, dtype) from the vendors' data sheets (no sparsity);
# float32 matmuls run on TF32 tensor cores only when torch.backends.cuda.matmul.allow_tf32 is set
PEAK_FLOPS = {
    ("H100", torch.bfloat16): 989e12,
    ("H100", torch.float16): 989e12,
    ("H100", torch.float32): 67e12,
    ("H200", torch.bfloat16): 989e12,
    ("H200", torch.float16): 989e12,
    ("H200", torch.float32): 67e12,
    ("A100", torch.bfloat16): 312e12,
    ("A100", torch.float16): 312e12,
    ("A100", torch.float32): 19.5e12,
}


def peak_flops(device: torch.device | str, dtype: torch.dtype) -> float | None:
    """The chip's dense peak FLOP/s for ``dtype`` when it is in ``PEAK_FLOPS``, else None (the CPU, other GPUs)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for (chip, dt), v in PEAK_FLOPS.items() if chip in name and dt == dtype), None)


def update_flops(n_params: int, tokens: int, lora: bool = False) -> float:
    """FLOPs of one forward + backward over ``tokens`` tokens of a dense decoder with ``n_params`` parameters."""
    return (4 if lora else 6) * n_params * tokens


def mfu(flops: float, seconds: float, peak: float | None) -> float | None:
    """Model-FLOPs utilisation in [0, 1], or None when the chip's peak is unknown."""
    return None if peak is None or seconds <= 0 else flops / seconds / peak


def reset_peak_memory(device: torch.device | str) -> None:
    """Starts a fresh peak-memory window on a GPU (the CPU's peak RSS cannot be reset)."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device | str) -> float:
    """Peak memory in GiB: allocated tensors on a GPU since the last reset, the process's peak RSS on the CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def rollout_speed(
    model,
    tokenizer,
    prompts: list[str],
    group_size: int,
    max_new_tokens: int,
    engine: str = "auto",
    temperature: float = 1.0,
    seed: int = 0,
    precision: str = "auto",
) -> tuple[dict[str, float], RolloutBatch]:
    """One timed rollout: ``{"seconds", "tokens", "tokens_per_s", "mean_length"}`` (tokens = generated ones), and
    the batch. ``engine`` and ``precision`` are ``rl4lrm.rollout.rollout``'s."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    _sync(device)
    start = time.perf_counter()
    batch = rollout(
        model, tokenizer, prompts, group_size, max_new_tokens, temperature, 1.0, gen, engine, precision=precision
    )
    _sync(device)
    seconds = time.perf_counter() - start
    tokens = float(batch.response_mask.sum())
    speed = {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "mean_length": tokens / batch.response_mask.shape[0],
    }
    return speed, batch


@torch.no_grad()
def log_ratios(model, batch: RolloutBatch) -> torch.Tensor:
    """d = log pi_learner - log pi_sampler of every sampled token, (N, T) and 0 on padding: ``model``'s
    training-mode forward against the log-probs the sampler recorded."""
    learner, _ = compute_logprobs(model, batch)  # (N, T)
    return (learner - batch.old_logprobs) * batch.response_mask


def sampler_gap(model, batch: RolloutBatch) -> dict[str, float]:
    """How far the policy that sampled ``batch`` is from ``model``'s training-mode forward, on the sampled tokens.

    With d = ``log_ratios``: ``kl`` is the k3 estimate of KL(sampler || learner), mean(exp(d) - 1 - d) (>= 0,
    unbiased on the sampler's tokens); ``mean_abs`` and ``max_abs`` are |d|'s mean and maximum; ``seq_ratio_range``
    is the range of exp(sum of d) over the rows, the whole-completion importance ratio that a sequence-level
    correction would apply (its gap from 1 grows with the length).
    """
    mask = batch.response_mask
    d = log_ratios(model, batch)  # (N, T)
    tokens = mask.sum()
    seq_ratio = d.sum(-1).exp()  # (N,)
    return {
        "kl": float(((d.exp() - 1 - d) * mask).sum() / tokens),
        "mean_abs": float(d.abs().sum() / tokens),
        "max_abs": float(d.abs().max()),
        "seq_ratio_range": float(seq_ratio.max() - seq_ratio.min()),
    }


def engine_check(
    model, tokenizer, prompts: list[str], group_size: int = 2, max_new_tokens: int = 24, seed: int = 0
) -> dict[str, float]:
    """The fast static-cache engine (and on a GPU its CUDA-graph form) against the model's own forward on one model.

    Returns:
        ``max_abs_diff``: the largest gap between the fast engine's sampling log-probs and a training-mode
        recomputation (``compute_logprobs``), which on-policy training relies on; ``fast_tokens_per_s``,
        ``hf_tokens_per_s`` and ``speedup`` from one rollout each (the same seed, the same prompts). On a CUDA
        device also ``graph_tokens_per_s``, ``graph_speedup`` (against ``hf``) and ``graph_max_abs_diff``, timed
        after one rollout that captures the graphs.
    """
    out = {}
    engines = ("fast", "hf", "graph") if next(model.parameters()).device.type == "cuda" else ("fast", "hf")
    for engine in engines:
        if engine == "graph":  # capture first: a training run pays it once
            rollout_speed(model, tokenizer, prompts, group_size, max_new_tokens, engine, seed=seed)
        speed, batch = rollout_speed(model, tokenizer, prompts, group_size, max_new_tokens, engine, seed=seed)
        out[f"{engine}_tokens_per_s"] = speed["tokens_per_s"]
        if engine != "hf":
            key = "max_abs_diff" if engine == "fast" else "graph_max_abs_diff"
            out[key] = sampler_gap(model, batch)["max_abs"]
    out["speedup"] = out["fast_tokens_per_s"] / out["hf_tokens_per_s"]
    if "graph" in engines:
        out["graph_speedup"] = out["graph_tokens_per_s"] / out["hf_tokens_per_s"]
    return out
