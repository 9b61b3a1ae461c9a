"""Held-out pass@1 of each zoo base model before and after GRPO, with wall time.

For each zoo model named (default: ``addition`` and ``countdown``, the README's table; not ``agentic``, whose
episodes need the tool environment of ``benchmarks/agents.py``): evaluate the base model on held-out problems, run
the ``grpo`` preset for a fixed number of steps (the preset's own hyperparameters, KL included), evaluate again.
Held-out pass@1 is the mean over ``--eval-problems`` test problems x ``--eval-samples`` samples at temperature 1.
Wall time covers the training steps (rollouts, updates, and the periodic evaluations).

    python benchmarks/learning_curve.py [--steps 300] [--seeds 0 1 2] [--device auto] [--engine auto|graph]

``--engine graph`` samples through CUDA graphs (``rl4lrm.cuda_graphs``; a GPU only).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import eval_every

from rl4lrm.models.zoo import ZOO
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=["addition", "countdown"], choices=sorted(ZOO))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--engine", default="auto", help="rollout engine: auto, fast, graph (CUDA) or hf")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(
        f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} steps={args.steps} "
        f"seeds={args.seeds} engine={args.engine}"
    )
    rows = []
    for task in args.tasks:
        for seed in args.seeds:
            config = TrainConfig.build(
                task=task,
                preset="grpo",
                steps=args.steps,
                eval_every=eval_every(args.steps, 4),
                seed=seed,
                eval_problems=args.eval_problems,
                eval_samples=args.eval_samples,
                device=str(device),
                rollout_engine=args.engine,
            )
            t0 = time.perf_counter()
            history = Trainer(config, progress=False).train()
            wall = time.perf_counter() - t0
            curve = history[["step", "acc/pass@1"]].dropna()
            rows.append(
                {
                    "task": task,
                    "seed": seed,
                    "steps": args.steps,
                    "base pass@1": curve["acc/pass@1"].iloc[0],
                    "GRPO pass@1": curve["acc/pass@1"].iloc[-1],
                    "gain (points)": 100 * (curve["acc/pass@1"].iloc[-1] - curve["acc/pass@1"].iloc[0]),
                    "wall (s)": wall,
                    "steps/s": args.steps / wall,
                    "curve": " ".join(f"{v:.2f}" for v in curve["acc/pass@1"]),
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.drop(columns="curve").round(3).to_string(index=False))
    if len(args.seeds) > 1:
        summary = table.groupby("task")[["base pass@1", "GRPO pass@1", "gain (points)", "wall (s)"]].agg(
            ["mean", "std"]
        )
        print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
