"""Latent-space reasoning (Coconut) on 3-step chain arithmetic: accuracy against generated tokens.

Explicit CoT, no CoT and the last Coconut curriculum stage (continuous thoughts), all shipped in the zoo
(``python -m rl4lrm.models.latent --rebuild``), are evaluated greedily on held-out problems; then GRPO runs
on the latent model through ``rl4lrm.trainer.Trainer`` with the thoughts in the graph (fixed k), and with
adaptive compute (a halting head; reward ``correct - cost * thoughts``) for several costs, one run per seed.
Continuous thoughts are reported apart from tokens: each is one forward pass that emits no token.

    python benchmarks/latent.py [--steps 40] [--seeds 0 1] [--costs 0 0.2] [--problems 256]

Writes ``--out`` (one row per method and seed) and prints the mean over seeds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.experiments.latent import compare_reasoning, latent_rl, run_model
from rl4lrm.models.latent import LatentConfig
from rl4lrm.models.latent_train import load_latent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--costs", type=float, nargs="*", default=[0.0, 0.2])
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="benchmarks/results/latent.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    print(f"steps={args.steps} seeds={args.seeds} costs={args.costs} problems={args.problems} lr={args.lr} "
          f"device=cpu (1 thread), greedy evaluation on the chain task's test split")
    latent, tok, task = load_latent("latent")
    cot, _, _ = load_latent("cot")
    nocot, _, _ = load_latent("nocot")
    t0 = time.perf_counter()
    base = compare_reasoning({"CoT": cot, "no CoT": nocot, "latent (Coconut)": latent}, tok, task, args.problems)
    base["seed"], base["wall (s)"] = "-", (time.perf_counter() - t0) / 3
    rows = [base]
    for seed in args.seeds:
        runs = [("latent + GRPO (k fixed)", {"halting": False, "cost": 0.0})]
        runs += [(f"latent + GRPO adaptive, cost {c:g}", {"halting": True, "cost": c}) for c in args.costs]
        for label, kw in runs:
            t0 = time.perf_counter()
            _, trained = latent_rl(latent, tok, task, steps=args.steps, lr=args.lr, seed=seed,
                                   n_thoughts=latent.config.n_thoughts, **kw)
            trained.config = LatentConfig(n_thoughts=latent.config.n_thoughts, halting=kw["halting"])
            df = run_model(trained, tok, task, args.problems)
            rows.append(pd.DataFrame([{"method": label, "accuracy": df["correct"].mean(),
                                       "generated_tokens": df["generated_tokens"].mean(),
                                       "cot_tokens": df["cot_tokens"].mean(), "answer_tokens": df["answer_tokens"].mean(),
                                       "thoughts": df["thoughts"].mean(), "seed": seed,
                                       "wall (s)": time.perf_counter() - t0}]))
            print(f"  {label} seed {seed}: accuracy {rows[-1]['accuracy'].iloc[0]:.3f}, thoughts "
                  f"{rows[-1]['thoughts'].iloc[0]:.2f} ({rows[-1]['wall (s)'].iloc[0]:.0f} s)", flush=True)
    runs = pd.concat(rows, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    cols = ["accuracy", "generated_tokens", "cot_tokens", "answer_tokens", "thoughts", "wall (s)"]
    table = runs.groupby("method", sort=False)[cols].agg(["mean", "std"])
    show = pd.DataFrame(index=table.index)
    for c in cols:
        m, s = table[(c, "mean")], table[(c, "std")].fillna(0.0)
        show[c] = [f"{a:.3f} ± {b:.3f}" if c == "accuracy" else f"{a:.2f} ± {b:.2f}" for a, b in zip(m, s)]
    show["seeds"] = runs.groupby("method", sort=False).size()
    print(show.to_string())
    print(f"wrote {args.out}; total wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
