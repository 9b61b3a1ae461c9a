"""RL for scientific discovery: does GRPO make the zoo's ``discovery`` model find laws it was never shown?

The base model (``discovery`` in the zoo) learned ``y = a*x + b`` laws of the "seen" family only. Each run trains it
with GRPO on half of the "novel" laws (the RL laws) for ``--steps`` steps, rewarded by the verifier (``correct``) or by
partial credit (``law_fit``: the share of shown and held-out points an expression hits), then samples
``--samples`` expressions per problem at T=1 on ``--eval-problems`` problems of the other half (evaluation laws:
never in SFT, never in RL) and on as many problems of the RL laws. Reported per stage (base, after RL), mean and std
over seeds: solve rate, share of laws solved, novelty (share of correct expressions that are not strings of the SFT
corpus), novel solve rate, recall (share of answers that repeat a corpus law) and fit. Runs go to a process pool
(one torch thread each).

    python benchmarks/discovery.py [--rewards correct law_fit] [--steps 80] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import run_logged, write_results

from rl4lrm.experiments.discovery import (
    BASE,
    REWARD_CHOICES,
    discoveries,
    discovery_profile,
    sample_laws,
    train_discovery,
)
from rl4lrm.models.zoo import load_base
from rl4lrm.tasks.discovery import Discovery


def run_one(job: tuple) -> dict:
    """Trains one (reward, seed) and profiles the base and the trained model on both sets of novel laws."""
    reward, seed, args = job
    torch.set_num_threads(1)
    task = Discovery(family="novel")
    sets = {split: task.problems(split, args["eval_problems"], seed=0) for split in ("test", "train")}
    base, tokenizer, _ = load_base(BASE)
    rows = []
    for split, problems in sets.items():
        answers = sample_laws(base, tokenizer, task, problems, args["samples"], seed=seed)
        rows.append({"laws": split, "stage": "base", **discovery_profile(answers)})
    t0 = time.perf_counter()
    model, _, _, history = train_discovery(args["steps"], seed, reward, lr=args["lr"])
    wall = time.perf_counter() - t0
    found = None
    for split, problems in sets.items():
        answers = sample_laws(model, tokenizer, task, problems, args["samples"], seed=seed)
        rows.append({"laws": split, "stage": "after RL", **discovery_profile(answers)})
        if split == "test":
            found = discoveries(answers, n=6)
    for row in rows:
        row.update(reward=reward, seed=seed)
    curve = history[["step", "reward/mean", "reward/correct"]].assign(reward=reward, seed=seed)
    return {"reward": reward, "seed": seed, "rows": rows, "curve": curve, "found": found, "wall (s)": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewards", nargs="*", default=list(REWARD_CHOICES))
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=96)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/discovery.csv")
    args = parser.parse_args()
    if unknown := [r for r in args.rewards if r not in REWARD_CHOICES]:
        parser.error(f"unknown rewards {unknown}; known: {list(REWARD_CHOICES)}")
    t0 = time.perf_counter()
    shared = {"steps": args.steps, "lr": args.lr, "eval_problems": args.eval_problems, "samples": args.samples}
    jobs = [(reward, seed, shared) for seed in args.seeds for reward in args.rewards]
    results, _ = run_logged(
        run_one,
        jobs,
        args.workers,
        f"rewards={args.rewards} steps={args.steps} lr={args.lr} seeds={args.seeds} "
        f"eval={args.eval_problems}x{args.samples} device=cpu",
        lambda r: (
            f"{r['reward']:<8} seed {r['seed']}: evaluation laws solve rate "
            f"{r['rows'][0]['solve rate']:.3f} -> {r['rows'][2]['solve rate']:.3f} ({r['wall (s)']:.0f} s)"
        ),
    )
    per_seed = pd.DataFrame([row for r in results for row in r["rows"]])
    order = {name: i for i, name in enumerate(args.rewards)}
    per_seed = per_seed.sort_values(
        ["reward", "laws", "stage", "seed"], key=lambda c: c.map(order) if c.name == "reward" else c
    )
    metrics = ["solve rate", "laws solved", "novelty", "novel solve rate", "recall", "fit"]
    grouped = per_seed.groupby(["reward", "laws", "stage"], sort=False)[metrics]
    table = grouped.mean().join(grouped.std(ddof=1).add_suffix(" std")).reset_index()
    table["laws"] = table["laws"].map({"test": "evaluation laws", "train": "RL laws"})
    walls = pd.DataFrame(results).groupby("reward")["wall (s)"].mean()
    table["train wall (s)"] = table.reward.map(walls)
    table["seeds"] = len(args.seeds)
    table["device"] = "cpu"
    table = table.sort_values(
        ["reward", "laws", "stage"],
        key=lambda c: c.map(order) if c.name == "reward" else c,
        ascending=[True, False, False],
        kind="stable",
    )
    print(table.round(3).to_string(index=False))
    found = pd.concat([r["found"].assign(reward=r["reward"], seed=r["seed"]) for r in results], ignore_index=True)
    print("laws found on evaluation laws (first seed, first reward):")
    print(found[(found.seed == args.seeds[0]) & (found.reward == args.rewards[0])].to_string(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")
    curves = pd.concat([r["curve"] for r in results], ignore_index=True)
    write_results(args.out, table, per_seed, curves)
    found.to_csv(args.out.replace(".csv", ".found.csv"), index=False)


if __name__ == "__main__":
    main()
