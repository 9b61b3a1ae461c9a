"""Continual RL: what two stages of GRPO on the ``generalist`` forget, with no remedy, with replay, with a KL anchor.

Each (remedy, learning rate, seed) trains the zoo's ``generalist`` on ``--stages`` in order (``--steps`` GRPO steps
each; ``rl4lrm.experiments.continual.continual_run``) and measures every part on ``--eval-problems`` x ``--samples``
held-out answers at T=1 after every stage. Two learning rates: a gentle one (the trainer's default) and an aggressive
one, since how far a stage moves the policy is what decides what it forgets. Runs go to a process pool (one torch
thread each).

The summary (mean and std over seeds of each role's change: the earlier stage's part, the last stage's part, the
untrained part) is printed and written to ``--out``; every measurement to ``.runs.csv``.

    python benchmarks/continual.py [--lrs 3e-4 1e-3] [--steps 40] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import run_logged, write_results

from rl4lrm.experiments.continual import REMEDIES, continual_run, summary


def run_one(job: tuple) -> pd.DataFrame:
    """One (remedy, lr, seed): both stages and every measurement, with the wall time."""
    remedy, lr, seed, args = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    table = continual_run(
        remedy, args["stages"], args["steps"], seed, args["eval_problems"], args["samples"], lr=lr, device="cpu"
    )
    return table.assign(wall=time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remedies", nargs="*", default=list(REMEDIES))
    parser.add_argument("--stages", nargs="*", default=["add3", "chain"])
    parser.add_argument("--lrs", type=float, nargs="*", default=[3e-4, 1e-3])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/continual.csv")
    args = parser.parse_args()
    if unknown := [r for r in args.remedies if r not in REMEDIES]:
        parser.error(f"unknown remedies {unknown}; known: {list(REMEDIES)}")
    shared = {"stages": args.stages, "steps": args.steps, "eval_problems": args.eval_problems, "samples": args.samples}
    jobs = [(remedy, lr, seed, shared) for lr in args.lrs for seed in args.seeds for remedy in args.remedies]
    t0 = time.perf_counter()
    results, _ = run_logged(
        run_one,
        jobs,
        args.workers,
        f"remedies={args.remedies} stages={args.stages} lrs={args.lrs} steps={args.steps} seeds={args.seeds} "
        f"eval={args.eval_problems}x{args.samples}",
        lambda t: (
            f"{t.remedy.iloc[0]:<10} lr {t.lr.iloc[0]:g} seed {t.seed.iloc[0]}: final "
            + ", ".join(f"{r.part} {r.accuracy:.3f}" for r in t[t.stage == t.stage.max()].itertuples())
            + f" ({t.wall.iloc[0]:.0f} s)"
        ),
    )
    runs = pd.concat(results, ignore_index=True).sort_values(["lr", "remedy", "seed", "stage"], kind="stable")
    table = summary(runs)
    table["wall (s)"] = table.set_index(["remedy", "lr"]).index.map(runs.groupby(["remedy", "lr"])["wall"].mean())
    print(table.round(3).to_string(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")
    write_results(args.out, table, runs)


if __name__ == "__main__":
    main()
