"""GRPO on the tiny VLM (``vision-counting``): held-out greedy accuracy, pass@1 and error kinds, before and after.

    python benchmarks/vision.py [--steps 150] [--lr 1e-4] [--seeds 0 1 2]   (about 6 minutes on one CPU thread)

Writes ``--out`` (one row per model and seed): ``greedy`` (T = 0), ``pass@1`` (T = 1, 4 samples per problem) on
256 held-out problems, the share of greedy answers that are correct / perception errors (a count misread) /
reasoning errors (counts right, sum wrong) / malformed, and the RL wall time.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.vision.studies import rl_before_after
from rl4lrm.vision.train import load_vision_base


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "vision.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        model, tokenizer, task = load_vision_base()
        table, _ = rl_before_after(
            model, tokenizer, task, steps=args.steps, lr=args.lr, n_problems=args.problems, seed=seed
        )
        rows.append(table.assign(seed=seed))
        print(f"seed {seed}:\n{table.round(3).to_string()}\n", flush=True)
    runs = pd.concat(rows, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    numeric = runs.drop(columns=["seed"]).groupby("model", sort=False)
    summary = numeric.mean().round(3).astype(str) + " ± " + numeric.std().round(3).astype(str)
    print(f"GRPO {args.steps} steps, lr {args.lr}, seeds {args.seeds} (mean ± std)")
    print(summary.to_string())
    print(f"device: cpu, 1 thread ({platform.processor() or platform.machine()}); torch {torch.__version__}")


if __name__ == "__main__":
    main()
