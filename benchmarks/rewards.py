"""Reward families under one GRPO budget: held-out pass@1, always measured by the true verifier.

Each row trains the zoo base model of its task with the ``grpo`` preset for ``--steps`` steps, changing
only ``TrainConfig.rewards``, 3 seeds. Held-out pass@1 uses the task's verifier whatever the training
reward, so a reward that can be satisfied without solving the task shows up as a gap between its own
train reward and ``reward/correct``. The table also reports those two, averaged over the last 20% of
steps.

    python benchmarks/rewards.py [--steps 100] [--seeds 0 1 2] [--workers 2] [--methods ...]

Writes ``--out`` (summary) and ``*.runs.csv`` (one row per run) for notebook 02.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
from common import eval_every, in_method_order, mean_std_strings, pass1_change, run_logged, summarise, write_results

from rl4lrm.experiments.rewards import REWARD_METHODS


def run_one(job: tuple) -> dict:
    """Trains one (label, seed) and summarises it (runs in a worker process)."""
    label, seed, args = job
    from rl4lrm.experiments.rewards import train_with_reward

    t0 = time.perf_counter()
    history = train_with_reward(
        label,
        steps=args["steps"],
        seed=seed,
        eval_every=eval_every(args["steps"], 4),
        eval_problems=args["eval_problems"],
        eval_samples=args["eval_samples"],
        device=args["device"],
    )
    tail = history[history["step"] > 0.8 * args["steps"]]
    return {
        "method": label,
        "seed": seed,
        "task": REWARD_METHODS[label]["task"],
        "base pass@1": history["acc/pass@1"].iloc[0],
        "pass@1": history["acc/pass@1"].iloc[-1],
        "train reward": tail["reward/mean"].mean(),
        "train correct": tail["reward/correct"].mean(),
        "wall (s)": time.perf_counter() - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=list(REWARD_METHODS))
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/rewards.csv")
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(REWARD_METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(REWARD_METHODS)}")
    shared = {k: getattr(args, k) for k in ("steps", "eval_problems", "eval_samples", "device")}
    jobs = [(label, seed, shared) for label in args.methods for seed in args.seeds]
    rows, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"steps={args.steps} seeds={args.seeds} workers={args.workers} device={args.device}",
        lambda row: (
            f"{row['method']:<28} seed {row['seed']}: {pass1_change(row)} "
            f"(train reward {row['train reward']:.3f}, train correct {row['train correct']:.3f}; "
            f"{row['wall (s)']:.0f} s)"
        ),
    )
    runs = in_method_order(pd.DataFrame(rows), args.methods)
    table = summarise(runs)
    table.insert(1, "task", [REWARD_METHODS[m]["task"] for m in table["method"]])
    write_results(args.out, table, runs)
    show = mean_std_strings(
        table,
        {
            "base pass@1": ".3f",
            "pass@1": ".3f",
            "gain (points)": ".1f",
            "train reward": ".3f",
            "train correct": ".3f",
            "wall (s)": ".0f",
        },
        keep=("method", "task"),
    )
    print(
        f"\n{args.steps} GRPO steps x 16 prompts x 8 samples; held-out pass@1 by the true verifier; mean ± std over "
        f"seeds {args.seeds}; total {wall:.0f} s"
    )
    print(show.to_string(index=False))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
