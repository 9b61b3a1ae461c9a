"""Tricks or traps: one trick at a time from one baseline, plus Lite PPO and DAPO, on a weak and a strong base.

Liu et al. (2025), "Tricks or Traps? A Deep Dive into RL for LLM Reasoning" (arXiv:2508.08221). The arms are
``rl4lrm.experiments.tricks.ablation_arms()``: the baseline (GRPO's axes without its KL term), the baseline plus
one trick each (batch normalisation, group mean with batch std, mean only, clip-higher, token-level loss,
overlong filter, KL on), and the ``lite_ppo`` and ``dapo`` presets. Every run shares the study's settings
(``STUDY_CONFIG``: 2 minibatches per batch, an 8-token cap) and starts from the zoo's ``countdown-weak`` or
``countdown-strong``. Each arm is compared with the baseline seed by seed (same problems, same sampling seeds):
"helps" / "hurts" only when every seed agrees.

Runs go to a process pool (one torch thread each). The table is printed and written to ``--out`` (CSV), the
per-seed rows to ``.runs.csv`` and the evaluation curves to ``.curves.csv`` for the notebook.

    python benchmarks/tricks.py [--bases countdown-weak countdown-strong] [--steps 100] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

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

from rl4lrm.experiments.tricks import STUDY_CONFIG, ablation_arms, tricks_table


def run_one(job: tuple) -> dict:
    """Trains one (base, label, settings, seed) and returns its summary and its evaluation curve."""
    base, label, settings, seed, args = job
    run = {**STUDY_CONFIG, "task": base, "steps": args["steps"], "seed": seed, **settings}
    run |= {"eval_every": eval_every(args["steps"], 5), "eval_problems": args["eval_problems"]}
    return train_and_summarise(
        {**run, "eval_samples": args["eval_samples"]},
        {"base": base, "method": label, "seed": seed},
        0.8,
        {"entropy": "entropy/mean", "clip frac": "clip/frac", "truncated": "length/frac_truncated"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="*", default=["countdown-weak", "countdown-strong"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/tricks.csv")
    args = parser.parse_args()
    shared = {"steps": args.steps, "eval_problems": args.eval_problems, "eval_samples": args.eval_samples}
    arms = ablation_arms()
    # the longest runs first, so that the pool does not end on one long run
    jobs = [
        (base, label, settings, seed, shared)
        for seed in args.seeds
        for base in args.bases
        for label, settings in arms.items()
    ]
    jobs.sort(key=lambda job: job[1] != "dapo")
    rows, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"bases={args.bases} arms={len(arms)} steps={args.steps} seeds={args.seeds} workers={args.workers} "
        f"settings={STUDY_CONFIG}",
        lambda row: (
            f"{row['base']:<17} {row['method']:<24} seed {row['seed']}: {pass1_change(row)} ({row['wall (s)']:.0f} s)"
        ),
    )
    order = [(b, m) for b in args.bases for m in arms]

    def ordered(df: pd.DataFrame) -> pd.DataFrame:  # bases and arms in the order given, then seed and step
        return in_given_order(df, ("base", "method"), order)

    curves = ordered(pd.concat([row.pop("curve") for row in rows], ignore_index=True))
    runs = ordered(pd.DataFrame(rows))
    table = tricks_table(curves)
    extra = runs.groupby(["base", "method"], sort=False)[["entropy", "clip frac", "truncated", "wall (s)"]].mean()
    table = table.join(extra, on=["base", "method"])
    write_results(args.out, table, runs, curves)
    print(f"\n{args.steps} steps x 16 prompts x 8 samples; seeds {args.seeds}; total {wall:.0f} s")
    print(format_table(table).to_string(index=False))
    print(f"\nwrote {args.out}")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as printed (and pasted into the README): mean ± std strings."""
    return pd.DataFrame(
        {
            "base": table["base"],
            "method": table["method"],
            "pass@1 (base → after)": before_after(table["base pass@1"], table["pass@1 mean"], table["pass@1 std"]),
            "vs baseline (points)": signed_mean_std(
                table["vs baseline (points) mean"], table["vs baseline (points) std"]
            ),
            "verdict": table["verdict"],
            "entropy": table["entropy"].map("{:.3f}".format),
            "clip frac": table["clip frac"].map("{:.4f}".format),
            "truncated": table["truncated"].map("{:.3f}".format),
            "wall (s)": table["wall (s)"].map("{:.0f}".format),
        }
    )


if __name__ == "__main__":
    main()
