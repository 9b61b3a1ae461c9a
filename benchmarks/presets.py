"""Every algorithm preset on one task under the same rollout budget: held-out pass@1, mean ± std over seeds.

Each run starts from the zoo base model and takes ``--steps`` RL steps of ``prompts_per_step`` x
``group_size`` rollouts (the same budget of sampled completions for every preset; presets differ in
how many gradient steps they take on them, which the wall time shows). Besides accuracy the table
reports the quantities the published findings are about: entropy, the length of wrong answers, the
KL to the reference and the clip fraction, all averaged over the last 20% of steps. Controlled
ablations (one axis changed) are run next to the presets to test findings in isolation.

Runs go to a process pool (one torch thread each: tiny models run fastest single-threaded and the
runs are independent). The table is printed and written to ``--out`` (CSV) for the notebook.

    python benchmarks/presets.py [--task countdown] [--steps 200] [--seeds 0 1 2] [--workers 2]
    python benchmarks/presets.py --presets --ablations "dapo, 4 minibatches" --append   # add or redo rows
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from common import eval_every, in_method_order, mean_std_strings, pass1_change, run_logged, summarise, write_results

from rl4lrm.presets import PRESETS
from rl4lrm.trainer import TrainConfig

# (row label, preset, overrides): one axis changed, to test a finding in isolation
ABLATIONS = [
    ("dapo, clip_high=0.2", "dapo", {"clip_high": 0.2}),  # clip-higher vs a symmetric clip
    ("grpo, token_sum_norm", "grpo", {"aggregation": "seq_mean_token_sum_norm"}),  # length normalisation only
    # clip-higher where clipping happens: 2 epochs x 4 minibatches = 8 updates per rollout batch
    ("dapo, 4 minibatches", "dapo", {"minibatches": 4}),
    ("dapo, clip_high=0.2, 4 minibatches", "dapo", {"clip_high": 0.2, "minibatches": 4}),
]


def run_one(job: tuple) -> dict:
    """Trains one (label, preset, overrides, seed) and summarises it (runs in a worker process)."""
    label, preset, overrides, seed, args = job
    from rl4lrm.trainer import Trainer

    config = TrainConfig.build(
        task=args["task"],
        preset=preset,
        steps=args["steps"],
        seed=seed,
        eval_every=eval_every(args["steps"], 4),
        track_kl=True,  # the KL column, also for presets without a KL term
        eval_problems=args["eval_problems"],
        eval_samples=args["eval_samples"],
        device=args["device"],
        **overrides,
    )
    t0 = time.perf_counter()
    history = Trainer(config, progress=False).train()
    wall = time.perf_counter() - t0
    tail = history[history["step"] > 0.8 * args["steps"]]
    return {
        "method": label,
        "seed": seed,
        "base pass@1": history["acc/pass@1"].iloc[0],
        "pass@1": history["acc/pass@1"].iloc[-1],
        "entropy": tail["entropy/mean"].mean(),
        "wrong length": tail["length/wrong_mean"].mean(),
        "correct length": tail["length/correct_mean"].mean(),
        "kl (k3)": tail["kl/k3"].mean(),
        "clip frac": tail["clip/frac"].mean(),
        "wall (s)": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="countdown")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    parser.add_argument(
        "--ablations",
        nargs="*",
        default=[label for label, _, _ in ABLATIONS],
        help="labels of the ablation rows to run (none: only the presets)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the other rows of an existing --out table, replacing the rows run now",
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/presets_countdown.csv")
    args = parser.parse_args()
    shared = {k: getattr(args, k) for k in ("task", "steps", "eval_problems", "eval_samples", "device")}
    unknown = sorted(set(args.ablations) - {label for label, _, _ in ABLATIONS})
    if unknown:
        parser.error(f"unknown ablations {unknown}; known: {[label for label, _, _ in ABLATIONS]}")
    specs = [(name, name, {}) for name in args.presets] + [a for a in ABLATIONS if a[0] in args.ablations]
    jobs = [(label, preset, overrides, seed, shared) for label, preset, overrides in specs for seed in args.seeds]
    rows, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"task={args.task} steps={args.steps} seeds={args.seeds} workers={args.workers} device={args.device}",
        lambda row: f"{row['method']:<24} seed {row['seed']}: {pass1_change(row)} ({row['wall (s)']:.0f} s)",
    )
    runs = in_method_order(pd.DataFrame(rows), [label for label, _, _ in specs])
    runs_path = Path(args.out).with_suffix(".runs.csv")
    if args.append and runs_path.exists():  # rows of other methods stay; rerun methods keep their place
        old = pd.read_csv(runs_path)
        merged = pd.concat([old[~old["method"].isin(runs["method"])], runs], ignore_index=True)
        runs = in_method_order(merged, dict.fromkeys([*old["method"], *runs["method"]]))
    table = summarise(runs)
    write_results(args.out, table, runs)
    show = mean_std_strings(
        table,
        {
            "pass@1": ".3f",
            "gain (points)": ".1f",
            "entropy": ".3f",
            "wrong length": ".3f",
            "kl (k3)": ".3f",
            "clip frac": ".3f",
            "wall (s)": ".1f",
        },
    )
    print(
        f"\nbase pass@1 {table['base pass@1 mean'].iloc[0]:.3f}; {args.steps} steps x "
        f"{TrainConfig.prompts_per_step * TrainConfig.group_size} rollouts; mean ± std over seeds {args.seeds}; "
        f"total {wall:.0f} s"
    )
    print(show.to_string(index=False))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
