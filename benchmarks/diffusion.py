"""GRPO on a masked diffusion LM vs an autoregressive LM of similar size, same budget (notebook 16).

The diffusion model (``rl4lrm.diffusion.model``, 0.5M parameters, d1's one-step log-prob estimator) and the
autoregressive zoo model ``addition`` (0.65M-parameter Llama) both train with GRPO through
``rl4lrm.trainer.Trainer`` on 2-digit addition for ``--steps`` steps of ``prompts_per_step`` x ``group_size``
rollouts, each at its own learning rate. The table gives held-out pass@1 before and after (128 test
problems x 4 samples, T = 1), and the sampler's generated tokens per second (tokens up to and including EOS,
one rollout of 64 prompts x 8 samples; the diffusion sampler makes ``steps`` full forwards over prompt +
L = 8 positions, the AR engine one cached forward per token).

    python benchmarks/diffusion.py [--steps 200] [--seeds 0 1 2]   (about 4 minutes on one CPU thread)

Writes ``--out`` (one row per model and seed).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.diffusion.studies import grpo_comparison


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--diffusion-lr", type=float, default=1e-4)
    parser.add_argument("--ar-lr", type=float, default=3e-4)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "diffusion.csv"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for seed in args.seeds:
        table = grpo_comparison(
            steps=args.steps,
            prompts_per_step=args.prompts_per_step,
            group_size=args.group_size,
            seed=seed,
            diffusion_lr=args.diffusion_lr,
            ar_lr=args.ar_lr,
        )
        rows.append(table.reset_index().assign(seed=seed))
        print(f"seed {seed}:\n{table.round(3).to_string()}\n", flush=True)
    runs = pd.concat(rows, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    numeric = runs.drop(columns=["seed"]).groupby("model", sort=False)
    mean, std = numeric.mean(), numeric.std(ddof=1).fillna(0.0)
    show = pd.DataFrame(index=mean.index)
    for col, fmt in [
        ("pass@1 before", ".3f"),
        ("pass@1 after", ".3f"),
        ("gain (points)", ".1f"),
        ("sampler tokens/s", ".0f"),
        ("train wall (s)", ".0f"),
    ]:
        show[col] = [f"{m:{fmt}} ± {s:{fmt}}" for m, s in zip(mean[col], std[col])]
    speed = mean.loc["diffusion", "sampler tokens/s"] / mean.loc["autoregressive", "sampler tokens/s"]
    print(
        f"GRPO, {args.steps} steps x {args.prompts_per_step} prompts x {args.group_size} samples, "
        f"lr diffusion {args.diffusion_lr} / AR {args.ar_lr}, seeds {args.seeds} (mean ± std)"
    )
    print(show.to_string())
    print(f"diffusion / AR sampler speed: {speed:.2f}x")
    print(
        f"device: cpu, 1 thread ({platform.processor() or platform.machine()}); torch {torch.__version__}; "
        f"wall {time.perf_counter() - t0:.0f} s; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
