"""Code with unit-test rewards: binary vs partial credit, and the naive harness vs the sandbox (chapter 11).

Each run starts from the zoo's ``code`` model and trains ``--steps`` GRPO steps with one training reward:
``unit_tests_all`` (1 when every hidden test passes), ``unit_tests_partial`` (the fraction passed) or the unsafe
``naive_unit_tests`` (program + asserts in one script, exit status 0 counts). Before and after, ``--eval-problems``
held-out specs x ``--samples`` samples at T=1 are scored in the sandbox (pass@1, tests passed), by the naive harness,
and checked for the planted hack. Also reported: wall time per run and the sandbox's programs per second during
training (distinct programs run / seconds spent in the sandbox). Mean and std over seeds; runs go to a process pool
(one torch thread each).

    python benchmarks/coding.py [--rewards unit_tests_all naive_unit_tests] [--steps 40] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import run_logged, write_results

from rl4lrm.experiments.coding import REWARD_CHOICES, summary, train_code


def run_one(job: tuple) -> dict:
    """Trains one (reward, seed); returns its summary row and its curves."""
    reward, seed, args = job
    torch.set_num_threads(1)
    run = train_code(reward, args["steps"], seed, eval_problems=args["eval_problems"], eval_samples=args["samples"])
    columns = ["step", "reward/mean", "reward/correct", "reward/unit_tests_partial", "reward/naive_unit_tests"]
    curve = run.history[columns].assign(reward=reward, seed=seed)
    return {"row": summary([run]).iloc[0].to_dict(), "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewards", nargs="*", default=list(REWARD_CHOICES))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=96)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/coding.csv")
    args = parser.parse_args()
    if unknown := [r for r in args.rewards if r not in REWARD_CHOICES]:
        parser.error(f"unknown rewards {unknown}; known: {list(REWARD_CHOICES)}")
    t0 = time.perf_counter()
    shared = {"steps": args.steps, "eval_problems": args.eval_problems, "samples": args.samples}
    jobs = [(reward, seed, shared) for seed in args.seeds for reward in args.rewards]
    results, _ = run_logged(
        run_one,
        jobs,
        args.workers,
        f"rewards={args.rewards} steps={args.steps} seeds={args.seeds} eval={args.eval_problems}x{args.samples} "
        "device=cpu",
        lambda r: (
            f"{r['row']['reward']:<18} seed {r['row']['seed']}: pass@1 {r['row']['pass@1 before']:.3f} -> "
            f"{r['row']['pass@1 after']:.3f}, naive {r['row']['naive pass@1 after']:.3f}, "
            f"hack {r['row']['hack rate after']:.3f} ({r['row']['wall s']:.0f} s)"
        ),
    )
    per_seed = pd.DataFrame([r["row"] for r in results])
    order = {name: i for i, name in enumerate(args.rewards)}
    per_seed = per_seed.sort_values(["reward", "seed"], key=lambda c: c.map(order) if c.name == "reward" else c)
    metrics = [c for c in per_seed.columns if c not in ("reward", "seed")]
    grouped = per_seed.groupby("reward", sort=False)[metrics]
    table = grouped.mean().join(grouped.std(ddof=1)[["pass@1 after"]].add_suffix(" std")).reset_index()
    table["steps"], table["seeds"], table["device"] = args.steps, len(args.seeds), "cpu"
    print(table.round(3).to_string(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")
    write_results(args.out, table, per_seed, pd.concat([r["curve"] for r in results], ignore_index=True))


if __name__ == "__main__":
    main()
