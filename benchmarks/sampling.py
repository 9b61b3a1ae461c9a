"""Sampling strategies under one step budget: held-out pass@1 against the tokens each one generated.

Flat GRPO, DAPO's dynamic sampling, the difficulty curriculum and tree rollouts (with leaf-level GRPO
advantages, and with TreeRL-style segment advantages) each take ``--steps`` RL steps of
``prompts_per_step`` groups on the same task from the same base model, 3 seeds. They do not spend
the same tokens per step (dynamic sampling draws extra rounds, trees share prefixes), so the table
reports both what they reached and what it cost: final pass@1, the completion tokens generated,
the pass@1 gain per 100k generated tokens, and pass@1 at the token budget of the cheapest method
(linear interpolation between evaluations). It also reports the share of groups that carried a
signal (non-zero reward variance) in the trained batches.

    python benchmarks/sampling.py [--task countdown] [--steps 200] [--seeds 0 1 2] [--workers 2]

Writes ``--out`` (summary), ``*.runs.csv`` (one row per run) and ``*.curves.csv`` (pass@1 against
cumulative tokens, for notebook 04).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common import eval_every, in_method_order, mean_std_strings, pass1_change, run_logged, summarise, write_results

from rl4lrm.experiments.sampling import SAMPLING_METHODS
from rl4lrm.trainer import TrainConfig


def run_one(job: tuple) -> tuple[dict, pd.DataFrame]:
    """Trains one (label, overrides, seed) and returns its summary row and its pass@1-vs-tokens curve."""
    label, seed, args = job
    overrides = SAMPLING_METHODS[label]
    from rl4lrm.trainer import Trainer

    config = TrainConfig.build(
        task=args["task"],
        steps=args["steps"],
        seed=seed,
        eval_every=eval_every(args["steps"], 10),
        eval_problems=args["eval_problems"],
        eval_samples=args["eval_samples"],
        device=args["device"],
        **overrides,
    )
    t0 = time.perf_counter()
    history = Trainer(config, progress=False).train()
    wall = time.perf_counter() - t0
    history["tokens/cumulative"] = history["tokens/cumulative"].fillna(0.0)  # row 0: before training
    curve = history[["step", "tokens/cumulative", "acc/pass@1"]].dropna().assign(method=label, seed=seed)
    row = {
        "method": label,
        "seed": seed,
        "base pass@1": history["acc/pass@1"].iloc[0],
        "pass@1": history["acc/pass@1"].iloc[-1],
        "tokens (k)": history["tokens/cumulative"].iloc[-1] / 1e3,
        "signal groups": 1 - history["reward/frac_zero_std"].iloc[1:].mean(),
        "wall (s)": wall,
    }
    row["gain per 100k tokens"] = 100 * (row["pass@1"] - row["base pass@1"]) / (row["tokens (k)"] / 100)
    return row, curve


def at_budget(curve: pd.DataFrame, tokens: float) -> float:
    """pass@1 of one run after ``tokens`` generated tokens (linear between evaluations)."""
    return float(np.interp(tokens, curve["tokens/cumulative"], curve["acc/pass@1"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="countdown")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="*", default=list(SAMPLING_METHODS))
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/sampling_countdown.csv")
    args = parser.parse_args()
    unknown = sorted(set(args.methods) - set(SAMPLING_METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(SAMPLING_METHODS)}")
    shared = {k: getattr(args, k) for k in ("task", "steps", "eval_problems", "eval_samples", "device")}
    jobs = [(label, seed, shared) for label in args.methods for seed in args.seeds]
    results, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"task={args.task} steps={args.steps} seeds={args.seeds} workers={args.workers} device={args.device}",
        lambda result: (
            f"{result[0]['method']:<20} seed {result[0]['seed']}: {pass1_change(result[0])}, "
            f"{result[0]['tokens (k)']:.0f}k tokens ({result[0]['wall (s)']:.0f} s)"
        ),
    )
    rows, curves = [row for row, _ in results], [curve for _, curve in results]
    runs, curves = pd.DataFrame(rows), pd.concat(curves, ignore_index=True)
    budget = runs.groupby("method")["tokens (k)"].mean().min() * 1e3
    runs["pass@1 at budget"] = [
        at_budget(curves[(curves.method == r.method) & (curves.seed == r.seed)], budget) for r in runs.itertuples()
    ]
    runs = in_method_order(runs, args.methods)
    table = summarise(runs)
    write_results(args.out, table, runs, curves)
    show = mean_std_strings(
        table,
        {
            "pass@1": ".3f",
            "pass@1 at budget": ".3f",
            "gain (points)": ".1f",
            "tokens (k)": ".0f",
            "gain per 100k tokens": ".2f",
            "signal groups": ".2f",
            "wall (s)": ".0f",
        },
    )
    print(
        f"\nbase pass@1 {table['base pass@1 mean'].iloc[0]:.3f}; {args.steps} steps x "
        f"{TrainConfig.prompts_per_step} groups of {TrainConfig.group_size}; budget for 'pass@1 at budget': "
        f"{budget / 1e3:.0f}k tokens; mean ± std over seeds {args.seeds}; total {wall:.0f} s"
    )
    print(show.to_string(index=False))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
