"""Rollout engine vs ``model.generate``: completion tokens/s, side by side in one run.

Same model, prompts, group size, length cap and sampling settings (temperature 1, no top-k, no
top-p) for both; both stop a row at EOS and stop the batch when every row has. Completion tokens
are counted the same way for both (up to and including EOS). The engines alternate over several
repeats and the median is reported, since this machine is noisy. Also prints the largest
difference between the engine's sampling log-probs and a training-mode recomputation, and how much
of the engine's time its matrix products alone take: every GEMM of one rollout is recorded, replayed
on its own and timed (warm, so a lower bound). Those products are work ``generate`` does as well, so
``generate`` time / GEMM time bounds the ratio any engine doing the same arithmetic could reach. On a GPU the
CUDA-graph engine (``engine="graph"``) runs in the same rounds, with its own ratio and log-prob check.

    python benchmarks/rollout_throughput.py [--repeats 5] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import compute_logprobs, rollout
from rl4lrm.utils import resolve_device


def generate_tokens(model, tok, prompts, G, T, seed) -> int:
    enc = tok([p for p in prompts for _ in range(G)], return_tensors="pt", padding=True).to(model.device)
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=T,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    new = out[:, enc["input_ids"].shape[1] :]
    # tokens up to and including the first EOS (generate pads after it)
    after_eos = (new == tok.eos_token_id).long().cumsum(-1) - (new == tok.eos_token_id).long()
    return int((after_eos == 0).sum())


class GemmRecorder(TorchDispatchMode):
    """Records the matrix products (mm, addmm, bmm) run under it, with copies of their operands."""

    GEMMS = (
        torch.ops.aten.mm.default,
        torch.ops.aten.addmm.default,
        torch.ops.aten.bmm.default,
        torch.ops.aten.baddbmm.default,
    )

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.GEMMS:
            self.calls.append((func, [a.clone() if isinstance(a, torch.Tensor) else a for a in args], kwargs or {}))
        return func(*args, **(kwargs or {}))


def gemm_seconds(model, tok, prompts, G, T, device, repeats=3) -> float:
    """Time of one rollout's matrix products replayed back to back (median of ``repeats``)."""
    with GemmRecorder() as recorder:
        rollout(model, tok, prompts, G, T, 1.0, generator=torch.Generator(device=device).manual_seed(0))
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for func, args, kwargs in recorder.calls:
            func(*args, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name, model, tok, prompts, G, T, repeats, device) -> dict:
    # on a GPU also the CUDA-graph engine; its graphs are captured in the warm-up round
    engines = ("rollout", "graph", "generate") if device.type == "cuda" else ("rollout", "generate")
    speeds = {engine: [] for engine in engines}
    for r in range(repeats + 1):  # the first round warms up and is dropped
        for engine in engines:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            if engine != "generate":
                gen = torch.Generator(device=device).manual_seed(r)
                kind = "graph" if engine == "graph" else "fast"
                n = int(rollout(model, tok, prompts, G, T, 1.0, generator=gen, engine=kind).response_mask.sum())
            else:
                n = generate_tokens(model, tok, prompts, G, T, r)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if r:
                speeds[engine].append(n / (time.perf_counter() - t0))
    batch = rollout(model, tok, prompts, G, T, 1.0, generator=torch.Generator(device=device).manual_seed(0))
    with torch.no_grad():
        lp, _ = compute_logprobs(model.train(), batch)
    model.eval()
    fast, slow = statistics.median(speeds["rollout"]), statistics.median(speeds["generate"])
    tokens = int(batch.response_mask.sum())  # the seed-0 rollout whose GEMMs are replayed
    gemm = gemm_seconds(model, tok, prompts, G, T, device)
    row = {
        "model": name,
        "rows": len(prompts) * G,
        "max_new": T,
        "rollout tok/s": round(fast),
        "generate tok/s": round(slow),
        "ratio": round(fast / slow, 2),
        "GEMM share": round(gemm * fast / tokens, 2),
        "ratio bound": round(tokens / gemm / slow, 1),
        "max |logprob diff|": f"{(lp - batch.old_logprobs).abs().max().item():.1e}",
    }
    if "graph" in speeds:
        graphed = rollout(
            model, tok, prompts, G, T, 1.0, generator=torch.Generator(device).manual_seed(0), engine="graph"
        )
        with torch.no_grad():
            lp, _ = compute_logprobs(model.train(), graphed)
        model.eval()
        row["graph tok/s"] = round(statistics.median(speeds["graph"]))
        row["graph ratio"] = round(row["graph tok/s"] / slow, 2)
        row["graph max |logprob diff|"] = f"{(lp - graphed.old_logprobs).abs().max().item():.1e}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    t_start = time.time()
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} repeats={args.repeats}")
    rows = []
    for task_name, B, G, T in [
        ("addition", 16, 8, 16),
        ("countdown", 16, 8, 24),
        ("countdown", 4, 4, 24),
        ("countdown", 64, 8, 24),
    ]:
        model, tok, task = load_base(task_name, device=device)
        prompts = [task.format_prompt(p) for p in task.problems("test", B, seed=0)]
        rows.append(bench(f"zoo/{task_name}", model, tok, prompts, G, T, args.repeats, device))
        print(rows[-1], flush=True)
    # a bigger random-init model: no EOS is ever sampled, every row runs to the cap
    model = tiny_model("small", tok).to(device)
    rows.append(bench("small (random init)", model, tok, prompts[:16], 8, 32, args.repeats, device))
    print(rows[-1], flush=True)
    try:
        import pandas as pd

        print(pd.DataFrame(rows).to_string(index=False))
    except ImportError:
        pass
    print(f"wall time {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
