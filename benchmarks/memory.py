"""Memory-based RL: RL on a fixed pool of Countdown problems with and without an episodic memory of solutions.

Each arm of ``rl4lrm.experiments.memory.ARMS`` trains the zoo's ``countdown`` base (pass@1 about 0.11) for
``--steps`` steps per seed on a pool of ``--pool`` train problems with the ``memory`` sampler: ``flat`` keeps the
books and never injects (the flat sampler's batches), ``memory`` replays a remembered verified solution into the
last row of every group whose G fresh samples are all wrong. Same seeds, pools and steps in both arms. Per run:
held-out pass@1 before and after (the trainer's evaluation), pass@1 on the pool after training, the share of the
pool ever solved by a fresh sample, the mean share of trained (and of fresh) groups with no reward contrast, the
fresh samples' accuracy, and the rows injected. Runs go to a process pool (one torch thread each).

The table (mean ± std over seeds) is printed and written to ``--out``; per-seed rows to ``.runs.csv`` and the
curves (per step) to ``.curves.csv``.

    python benchmarks/memory.py [--steps 60] [--pool 128] [--seeds 0 1 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
import torch
from common import run_logged, write_results

from rl4lrm.experiments.memory import ARMS, MemoryRun, pool_accuracy, run_table, summary, train_arm

CURVE_COLUMNS = ["step", "acc/pass@1", "memory/pool_solved", "reward/frac_zero_std", "memory/injected"]


def run_one(job: tuple) -> dict:
    """Trains one (arm, seed), measures the policy on its pool, and returns its history with the wall time."""
    arm, seed, args = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    trainer, history = train_arm(
        arm, args["steps"], seed, args["pool"], device="cpu", eval_every=args["eval_every"],
        prompts_per_step=args["B"], group_size=args["G"], eval_problems=args["eval_problems"],
    )  # fmt: skip
    wall = time.perf_counter() - t0
    acc = pool_accuracy(trainer.model, trainer.tokenizer, trainer.task, trainer.sampler.source.pool, 4, 16, seed)
    return {"arm": arm, "seed": seed, "history": history, "pool_acc": acc, "wall (s)": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="*", default=list(ARMS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--pool", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--B", type=int, default=16)
    parser.add_argument("--G", type=int, default=8)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/memory.csv")
    args = parser.parse_args()
    if unknown := [a for a in args.arms if a not in ARMS]:
        parser.error(f"unknown arms {unknown}; known: {list(ARMS)}")
    t0 = time.perf_counter()
    shared = {k: getattr(args, k) for k in ("steps", "pool", "B", "G", "eval_every", "eval_problems")}
    jobs = [(arm, seed, shared) for seed in args.seeds for arm in args.arms]
    results, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"arms={args.arms} steps={args.steps} pool={args.pool} B={args.B} G={args.G} seeds={args.seeds} "
        f"device=cpu ({platform.processor() or platform.machine()})",
        lambda r: (
            f"{r['arm']:<7} seed {r['seed']}: pass@1 {r['history']['acc/pass@1'].dropna().iloc[-1]:.3f}, "
            f"pool solved {r['history']['memory/pool_solved'].iloc[-1]:.3f}, "
            f"injected {r['history']['memory/injected'].sum():.0f} ({r['wall (s)']:.0f} s)"
        ),
    )
    order = {a: i for i, a in enumerate(args.arms)}
    results.sort(key=lambda r: (order[r["arm"]], r["seed"]))
    runs = [MemoryRun(r["arm"], r["seed"], r["history"], r["pool_acc"]) for r in results]
    per_seed = run_table(runs).assign(**{"wall (s)": [r["wall (s)"] for r in results]})
    table = summary(runs)
    table["wall (s)"] = table.arm.map(per_seed.groupby("arm")["wall (s)"].mean())
    table["steps"], table["pool"], table["device"] = args.steps, args.pool, "cpu"
    curves = pd.concat(
        [r["history"][CURVE_COLUMNS].assign(arm=r["arm"], seed=r["seed"]) for r in results], ignore_index=True
    )
    show = table[["arm"]].copy()
    for col in ("acc_end", "pool_acc", "pool_solved", "zero_signal"):
        show[col] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(table[col], table[f"{col}_std"])]
    show["acc_start"] = table["acc_start"].round(3)
    show["fresh_zero_signal"] = table["fresh_zero_signal"].round(3)
    show["injected"] = table["injected"].round(1)
    print(show.to_string(index=False))
    print(f"seeds {args.seeds}, device cpu, pool wall {wall:.0f} s, total {time.perf_counter() - t0:.0f} s")
    write_results(args.out, table, per_seed, curves)


if __name__ == "__main__":
    main()
