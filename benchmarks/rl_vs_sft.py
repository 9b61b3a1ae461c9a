"""RL vs SFT from one base model at an equal budget: in-distribution and out-of-distribution accuracy, the other
task's accuracy (forgetting) and the KL to the base, over seeds.

Each seed runs ``rl4lrm.experiments.rl_vs_sft.rl_vs_sft_study`` once: the zoo's ``generalist`` base model
(2-digit addition, 3-digit addition, chain arithmetic) fine-tuned on 2-digit addition by SFT on clean answers,
by RL on the verifier (GRPO, no KL term) and by SFT then RL, each for ``--steps`` optimizer steps of B·G = 128
sequences; then every model is sampled on the held-out problems of every part.

    python benchmarks/rl_vs_sft.py [--steps 200] [--seeds 0 1 2] [--workers 2]
    python benchmarks/rl_vs_sft.py --show       # prints the stored table again

Writes ``--out`` (one row per arm: mean ± std over seeds) and ``*.runs.csv`` (arm × part × seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from common import run_logged, write_results

from rl4lrm.experiments.rl_vs_sft import ARMS, ROLES


def run_one(job: tuple) -> pd.DataFrame:
    """Runs the study for one seed; returns its long table with the seed and each arm's wall time."""
    seed, args = job
    from rl4lrm.experiments.rl_vs_sft import rl_vs_sft_study

    result = rl_vs_sft_study(
        arms=args["arms"],
        steps=args["steps"],
        eval_problems=args["eval_problems"],
        eval_samples=args["eval_samples"],
        lr=args["lr"],
        kl_coef=args["kl_coef"],
        seed=seed,
        device=args["device"],
    )
    wall = result.runs.set_index("arm")["wall (s)"]
    return result.table.assign(seed=seed, **{"wall (s)": result.table["arm"].map(wall).fillna(0.0)})


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm: mean and std over seeds of the accuracy on each role, of the change against the base of
    the same seed (points), of the KL on each role, and of the training wall time."""
    base = runs[runs["arm"] == "base"].set_index(["seed", "role"])["accuracy"]
    runs = runs.assign(delta=100 * (runs["accuracy"] - runs.set_index(["seed", "role"]).index.map(base)))
    wide = runs.pivot_table(index=["arm", "seed"], columns="role", values=["accuracy", "delta", "kl"])
    wide.columns = [f"{dict(accuracy='acc', delta='Δ', kl='KL')[v]}: {role}" for v, role in wide.columns]
    wide["wall (s)"] = runs.groupby(["arm", "seed"])["wall (s)"].first()
    grouped = wide.groupby(level="arm", sort=False)
    table = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=1).fillna(0.0).add_suffix(" std"))
    table["seeds"] = grouped.size()
    order = [a for a in ("base", *ARMS) if a in table.index]
    return table.reindex(order).reset_index()


def markdown(table: pd.DataFrame) -> str:
    """The README's table: accuracy per role with its change in points, and the KL on each role."""
    roles = list(ROLES.values())
    head = ["arm", *[f"{r} (Δ points)" for r in roles], *[f"KL on {r}" for r in roles], "train wall (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in table.iterrows():
        cells = [row["arm"]]
        for r in roles:
            acc = f"{row[f'acc: {r} mean']:.3f} ± {row[f'acc: {r} std']:.3f}"
            cells.append(
                acc if row["arm"] == "base" else f"{acc} ({row[f'Δ: {r} mean']:+.1f} ± {row[f'Δ: {r} std']:.1f})"
            )
        for r in roles:
            cells.append("0" if row["arm"] == "base" else f"{row[f'KL: {r} mean']:.3f} ± {row[f'KL: {r} std']:.3f}")
        cells.append("—" if row["arm"] == "base" else f"{row['wall (s) mean']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--kl-coef", type=float, default=0.0)
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/rl_vs_sft.csv")
    parser.add_argument("--show", action="store_true", help="print the stored table and exit")
    args = parser.parse_args()
    out = Path(args.out)
    if args.show:
        print(markdown(pd.read_csv(out)))
        return
    shared = {
        k: getattr(args, k) for k in ("arms", "steps", "eval_problems", "eval_samples", "lr", "kl_coef", "device")
    }
    results, wall = run_logged(
        run_one,
        [(seed, shared) for seed in args.seeds],
        args.workers,
        f"steps={args.steps} seeds={args.seeds} arms={args.arms} lr={args.lr} kl_coef={args.kl_coef} "
        f"workers={args.workers} device={args.device}",
        lambda df: (
            f"seed {df['seed'].iloc[0]}: "
            + "; ".join(
                f"{arm} " + ", ".join(f"{r.part} {r.accuracy:.3f}" for r in g.itertuples())
                for arm, g in df.groupby("arm", sort=False)
            )
        ),
    )
    runs = pd.concat(results, ignore_index=True).sort_values(["seed"], kind="stable")
    table = summary(runs)
    write_results(out, table, runs)
    print(
        f"\n{args.steps} steps per arm x 128 sequences; held-out: {args.eval_problems} problems x "
        f"{args.eval_samples} samples per part at T = 1; mean ± std over seeds {args.seeds}; "
        f"total {wall:.0f} s\n"
    )
    print(markdown(table))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
