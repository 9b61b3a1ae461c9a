"""Weak vs strong priors: the same GRPO recipe on base models that differ in one axis, with the true reward and
with Shao et al.'s spurious rewards (random, format only, incorrect).

The priors are ``rl4lrm.experiments.priors.PRIORS``: ``addition`` (0.65M-parameter Llama), ``addition-nano``
(about 6x fewer parameters, same data and SFT steps), ``addition-qwen2`` (Qwen2-style, same size, data and steps),
``addition-mid`` (half the SFT problems shown as worked column additions: mid-training on reasoning traces, after
OctoThinker) and ``addition-instruct`` (``addition`` plus 500 SFT steps on clean answers: base vs instruction-tuned).
Every run shares ``STUDY_CONFIG`` (GRPO without KL, 2 minibatch steps per batch so the clip can act, an 8-token
cap) and is scored on held-out problems by the verifier, whatever its training reward. The gain of each
(prior, reward) over its base model is read seed by seed: "up" / "down" only when all seeds agree. The profile of
each prior (greedy accuracy, sampled pass@1 and pass@8) is measured first.

Runs go to a process pool (one torch thread each). The table is printed and written to ``--out`` (CSV), the
per-seed rows to ``.runs.csv``, the evaluation curves to ``.curves.csv`` and the profiles to ``.profile.csv``.

    python benchmarks/priors.py [--bases addition-nano addition ...] [--steps 60] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from common import (
    before_after,
    eval_every,
    in_given_order,
    pass1_change,
    run_logged,
    signed_mean_std,
    train_and_summarise,
    write_results,
)

from rl4lrm.experiments.priors import PRIORS, REWARD_ARMS, STUDY_CONFIG, gains_table, prior_profile


def run_one(job: tuple) -> dict:
    """Trains one (base, reward, seed) and returns its summary and its evaluation curve."""
    base, reward, seed, args = job
    run = {**STUDY_CONFIG, "task": base, "rewards": REWARD_ARMS[reward], "steps": args["steps"], "seed": seed}
    run |= {"eval_every": eval_every(args["steps"], 4), "eval_problems": args["eval_problems"]}
    return train_and_summarise(
        {**run, "eval_samples": args["eval_samples"]},
        {"base": base, "reward": reward, "seed": seed},
        0.75,
        {"entropy": "entropy/mean", "clip frac": "clip/frac"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="*", default=list(PRIORS))
    parser.add_argument("--rewards", nargs="*", default=list(REWARD_ARMS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/priors.csv")
    args = parser.parse_args()
    t0 = time.perf_counter()
    profile = prior_profile(args.bases, n_problems=args.eval_problems, n_samples=8)
    print(profile.round(3).to_string(index=False), flush=True)
    shared = {"steps": args.steps, "eval_problems": args.eval_problems, "eval_samples": args.eval_samples}
    jobs = [(base, reward, seed, shared) for seed in args.seeds for base in args.bases for reward in args.rewards]
    rows, _ = run_logged(
        run_one,
        jobs,
        args.workers,
        f"bases={args.bases} rewards={args.rewards} steps={args.steps} seeds={args.seeds} workers={args.workers} "
        f"settings={STUDY_CONFIG}",
        lambda row: (
            f"{row['base']:<17} {row['reward']:<10} seed {row['seed']}: {pass1_change(row)} ({row['wall (s)']:.0f} s)"
        ),
    )
    order = [(b, r) for b in args.bases for r in args.rewards]

    def ordered(df: pd.DataFrame) -> pd.DataFrame:  # bases and rewards in the order given, then seed and step
        return in_given_order(df, ("base", "reward"), order)

    curves = ordered(pd.concat([row.pop("curve") for row in rows], ignore_index=True))
    runs = ordered(pd.DataFrame(rows))
    table = gains_table(curves)
    extra = runs.groupby(["base", "reward"], sort=False)[["entropy", "clip frac", "wall (s)"]].mean()
    table = table.join(extra, on=["base", "reward"])
    write_results(args.out, table, runs, curves)
    profile.to_csv(Path(args.out).with_suffix(".profile.csv"), index=False)
    print(f"\n{args.steps} steps x 16 prompts x 8 samples; seeds {args.seeds}; total {time.perf_counter() - t0:.0f} s")
    print(format_table(table).to_string(index=False))
    print(f"\nwrote {args.out}")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as printed (and pasted into the README): mean ± std strings."""
    return pd.DataFrame(
        {
            "base": table["base"],
            "reward": table["reward"],
            "pass@1 (base → after)": before_after(table["base pass@1"], table["pass@1 mean"], table["pass@1 std"]),
            "gain (points)": signed_mean_std(table["gain (points) mean"], table["gain (points) std"]),
            "verdict": table["verdict"],
            "entropy": table["entropy"].map("{:.3f}".format),
            "clip frac": table["clip frac"].map("{:.4f}".format),
            "wall (s)": table["wall (s)"].map("{:.0f}".format),
        }
    )


if __name__ == "__main__":
    main()
