"""Weak vs strong priors: the same GRPO recipe on base models that differ in one axis, with the true reward and
with Shao et al.'s spurious rewards (random, format only, incorrect).

The priors are ``rl4lrm.experiments.priors.PRIORS``: ``addition`` (0.65M-parameter Llama), ``addition-nano``
(4x fewer parameters, same data and SFT steps) and ``addition-qwen2`` (Qwen2-style, same size, data and steps).
Every run shares ``STUDY_CONFIG`` (GRPO without KL, 2 minibatch steps per batch so the clip can act, an 8-token
cap) and is scored on held-out problems by the verifier, whatever its training reward. The gain of each
(prior, reward) over its base model is read seed by seed: "up" / "down" only when all seeds agree. The profile of
each prior (greedy accuracy, sampled pass@1 and pass@8) is measured first.

Runs go to a process pool (one torch thread each). The table is printed and written to ``--out`` (CSV), the
per-seed rows to ``.runs.csv``, the evaluation curves to ``.curves.csv`` and the profiles to ``.profile.csv``.

    python benchmarks/priors.py [--bases addition-nano addition addition-qwen2] [--steps 60] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import run_pool

from rl4lrm.experiments.priors import PRIORS, REWARD_ARMS, STUDY_CONFIG, gains_table, prior_profile
from rl4lrm.trainer import TrainConfig


def run_one(job: tuple) -> dict:
    """Trains one (base, reward, seed) and returns its summary and its evaluation curve."""
    base, reward, seed, args = job
    from rl4lrm.trainer import Trainer

    config = TrainConfig.build(
        **{
            **STUDY_CONFIG,
            "task": base,
            "rewards": REWARD_ARMS[reward],
            "steps": args["steps"],
            "seed": seed,
            "eval_every": args["steps"] // 4,
            "eval_problems": args["eval_problems"],
            "eval_samples": args["eval_samples"],
            "device": "cpu",
        }
    )
    t0 = time.perf_counter()
    history = Trainer(config, progress=False).train()
    wall = time.perf_counter() - t0
    tail = history[history["step"] > 0.75 * args["steps"]]
    curve = history.dropna(subset=["acc/pass@1"])[["step", "acc/pass@1"]].assign(base=base, reward=reward, seed=seed)
    return {
        "base": base,
        "reward": reward,
        "seed": seed,
        "base pass@1": history["acc/pass@1"].iloc[0],
        "pass@1": history["acc/pass@1"].iloc[-1],
        "entropy": tail["entropy/mean"].mean(),
        "clip frac": tail["clip/frac"].mean(),
        "wall (s)": wall,
        "curve": curve,
    }


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
    print(
        f"bases={args.bases} rewards={args.rewards} steps={args.steps} seeds={args.seeds} workers={args.workers} "
        f"torch={torch.__version__} jobs={len(jobs)} settings={STUDY_CONFIG}",
        flush=True,
    )
    rows = run_pool(
        run_one,
        jobs,
        args.workers,
        lambda row: print(
            f"  {row['base']:<15} {row['reward']:<10} seed {row['seed']}: pass@1 {row['base pass@1']:.3f} -> "
            f"{row['pass@1']:.3f} ({row['wall (s)']:.0f} s)",
            flush=True,
        ),
    )
    rank = {key: i for i, key in enumerate((b, r) for b in args.bases for r in args.rewards)}

    def ordered(df: pd.DataFrame) -> pd.DataFrame:  # bases and rewards in the order given, then seed and step
        keys = [c for c in ("seed", "step") if c in df]
        df = df.assign(rank=[rank[(b, r)] for b, r in zip(df["base"], df["reward"])])
        return df.sort_values(["rank", *keys], kind="stable").drop(columns="rank").reset_index(drop=True)

    curves = ordered(pd.concat([row.pop("curve") for row in rows], ignore_index=True))
    runs = ordered(pd.DataFrame(rows))
    table = gains_table(curves)
    extra = runs.groupby(["base", "reward"], sort=False)[["entropy", "clip frac", "wall (s)"]].mean()
    table = table.join(extra, on=["base", "reward"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    runs.to_csv(out.with_suffix(".runs.csv"), index=False)
    curves.to_csv(out.with_suffix(".curves.csv"), index=False)
    profile.to_csv(out.with_suffix(".profile.csv"), index=False)
    print(f"\n{args.steps} steps x 16 prompts x 8 samples; seeds {args.seeds}; total {time.perf_counter() - t0:.0f} s")
    print(format_table(table).to_string(index=False))
    print(f"\nwrote {out}")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as printed (and pasted into the README): mean ± std strings."""
    return pd.DataFrame(
        {
            "base": table["base"],
            "reward": table["reward"],
            "pass@1 (base → after)": [
                f"{b:.3f} → {m:.3f} ± {s:.3f}"
                for b, m, s in zip(table["base pass@1"], table["pass@1 mean"], table["pass@1 std"])
            ],
            "gain (points)": [
                f"{m:+.1f} ± {s:.1f}" for m, s in zip(table["gain (points) mean"], table["gain (points) std"])
            ],
            "verdict": table["verdict"],
            "entropy": table["entropy"].map("{:.3f}".format),
            "clip frac": table["clip frac"].map("{:.4f}".format),
            "wall (s)": table["wall (s)"].map("{:.0f}".format),
        }
    )


if __name__ == "__main__":
    main()
