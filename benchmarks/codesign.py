"""Architecture-algorithm co-design: the same GRPO run from four bases of the same size and SFT recipe, different
shape (``rl4lrm.experiments.codesign.ARCH_BASES``: Llama 3x128, Qwen2 3x128, Llama 8x80, GPT-2 3x128), at
``TrainConfig``'s default learning rate and at a stress rate, over seeds.

Every run shares ``CODESIGN_CONFIG`` (notebook 07's GRPO settings plus a frozen reference that logs ``kl/k3``) and
is scored on the same held-out problems. Per (base, lr) the table gives held-out pass@1 before and after, the gain,
the largest KL to the base, the largest gradient-norm spike (x the run's median), the final entropy, the share of
seeds that collapsed (pass@1 ended 10 points below the base's) and the wall time per step (one torch thread each,
on a CPU shared with other jobs: compare ratios, not absolute seconds).

Runs go to a process pool. The table is printed and written to ``--out`` (CSV), the per-step histories to
``.runs.csv`` and the shapes to ``.shapes.csv``.

    python benchmarks/codesign.py [--bases addition addition-deep ...] [--lrs 3e-4 1e-3] [--steps 40] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import eval_every, run_logged, write_results

from rl4lrm.experiments.codesign import ARCH_BASES, CODESIGN_CONFIG, LRS, shape_table, stability_table

KEEP = ["base", "lr", "seed", "step", "acc/pass@1", "reward/mean", "kl/k3", "entropy/mean", "grad/norm", "clip/frac"]
KEEP += ["length/mean", "time/step"]
"""History columns written to ``.runs.csv`` (what ``stability_table`` and ``plot_codesign`` read, and a few more)."""


def run_one(job: tuple) -> pd.DataFrame:
    """Trains one (base, lr, seed) on the CPU and returns its history with ``base``, ``lr`` and ``seed`` columns."""
    from rl4lrm.trainer import TrainConfig, Trainer

    base, lr, seed, args = job
    settings = {**CODESIGN_CONFIG, "task": base, "lr": lr, "steps": args["steps"], "seed": seed}
    settings |= {"eval_every": eval_every(args["steps"], 3), "eval_problems": args["eval_problems"]}
    t0 = time.perf_counter()
    history = Trainer(TrainConfig.build(**settings, device="cpu"), progress=False).train()
    return history.assign(base=base, lr=lr, seed=seed, wall=time.perf_counter() - t0)


def describe(h: pd.DataFrame) -> str:
    evals = h["acc/pass@1"].dropna()
    return (
        f"{h['base'].iloc[0]:<15} lr {h['lr'].iloc[0]:<7g} seed {h['seed'].iloc[0]}: pass@1 {evals.iloc[0]:.3f} -> "
        f"{evals.iloc[-1]:.3f}, max kl {h['kl/k3'].max():.3f} ({h['wall'].iloc[0]:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="*", default=list(ARCH_BASES))
    parser.add_argument("--lrs", type=float, nargs="*", default=list(LRS))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/codesign.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    shapes = shape_table(args.bases)
    print(shapes.round(3).to_string(index=False), flush=True)
    shared = {"steps": args.steps, "eval_problems": args.eval_problems}
    # the slow deep model first, so that the pool is not left waiting on it at the end
    jobs = [
        (b, lr, s, shared)
        for b in sorted(args.bases, key=lambda b: b != "addition-deep")
        for lr in args.lrs
        for s in args.seeds
    ]
    histories, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"bases={args.bases} lrs={args.lrs} steps={args.steps} seeds={args.seeds} workers={args.workers} "
        f"settings={CODESIGN_CONFIG}",
        describe,
    )
    order = {(b, lr): i for i, (b, lr) in enumerate((b, lr) for lr in args.lrs for b in args.bases)}
    runs = pd.concat(histories, ignore_index=True)
    runs["arm"] = [order[key] for key in zip(runs["base"], runs["lr"])]  # lrs, then bases, in the order given
    runs = runs.sort_values(["arm", "seed", "step"], kind="stable")[KEEP]
    table = stability_table(runs)
    table = table.merge(shapes[["base", "arch", "layers", "width", "params"]], on="base")
    table["seed list"] = " ".join(map(str, args.seeds))
    table["steps"] = args.steps
    table["device"] = f"cpu, 1 torch thread per run, {args.workers} workers"
    table["benchmark wall (s)"] = round(wall, 1)
    write_results(args.out, table, runs)
    shapes.to_csv(args.out.replace(".csv", ".shapes.csv"), index=False)
    print(f"\n{args.steps} steps x 16 prompts x 8 samples; seeds {args.seeds}; total {time.perf_counter() - t0:.0f} s")
    print(format_table(table).to_string(index=False))
    print(f"\nwrote {args.out}")


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as printed: mean ± std strings over seeds."""

    def pm(metric: str, fmt: str) -> list[str]:
        std_fmt = fmt.lstrip("+")
        return [f"{m:{fmt}} ± {s:{std_fmt}}" for m, s in zip(table[f"{metric} mean"], table[f"{metric} std"])]

    return pd.DataFrame(
        {
            "base": table["base"],
            "lr": table["lr"].map("{:g}".format),
            "pass@1 base → after": [f"{b:.3f} → {a}" for b, a in zip(table["base pass@1"], pm("pass@1", ".3f"))],
            "gain (points)": pm("gain", "+.1f"),
            "max KL": pm("max kl", ".3f"),
            "max grad/median": pm("max grad/median", ".1f"),
            "entropy end": pm("entropy end", ".3f"),
            "collapsed": table["collapse rate"].map("{:.0%}".format),
            "s/step": pm("s/step", ".2f"),
        }
    )


if __name__ == "__main__":
    main()
