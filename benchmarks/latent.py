"""Latent-space reasoning (Coconut) on 3-step chain arithmetic: accuracy against generated tokens.

Explicit CoT, no CoT and the last Coconut curriculum stage (continuous thoughts), all shipped in the zoo
(``python -m rl4lrm.latent.train --rebuild``), are evaluated greedily on held-out problems; then GRPO runs
on the latent model through ``rl4lrm.trainer.Trainer`` with the thoughts in the graph (fixed k), and with
adaptive compute (a halting head; reward ``correct - cost * thoughts``) for several costs, one run per seed.
Continuous thoughts are reported apart from tokens: each is one forward pass that emits no token. Fixed-k GRPO
updates the whole model at a small rate; adaptive GRPO trains the halting head alone (``latent_rl``).

    python benchmarks/latent.py [--steps 100] [--seeds 0 1 2] [--costs 0 0.1 0.3] [--problems 256]

Writes ``--out`` (one row per method and seed) and prints the mean over seeds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from rl4lrm.latent.model import LatentConfig
from rl4lrm.latent.studies import compare_reasoning, latent_rl, run_model
from rl4lrm.latent.train import load_latent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--costs", type=float, nargs="*", default=[0.0, 0.1, 0.3])
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-5, help="GRPO learning rate, fixed k (whole model)")
    parser.add_argument("--halting-lr", type=float, default=3e-3, help="GRPO learning rate, adaptive k (halting head)")
    parser.add_argument("--out", default="benchmarks/results/latent.csv")
    args = parser.parse_args()
    t_start = time.perf_counter()
    print(
        f"steps={args.steps} seeds={args.seeds} costs={args.costs} problems={args.problems} lr={args.lr} "
        f"halting_lr={args.halting_lr} device=cpu (1 thread); held-out chain problems, greedy and T=1 accuracy"
    )
    latent, tok, task = load_latent("latent")
    cot, _, _ = load_latent("cot")
    nocot, _, _ = load_latent("nocot")
    t0 = time.perf_counter()
    models = {"CoT": cot, "no CoT": nocot, "latent (Coconut)": latent}
    base = compare_reasoning(models, tok, task, args.problems)
    base["accuracy T=1"] = [
        run_model(m, tok, task, args.problems, temperature=1.0)["correct"].mean() for m in models.values()
    ]
    base["seed"], base["wall (s)"] = "-", (time.perf_counter() - t0) / 3
    rows = [base]
    for seed in args.seeds:
        runs = [("latent + GRPO (k fixed)", {"halting": False, "cost": 0.0})]
        runs += [(f"latent + GRPO adaptive, cost {c:g}", {"halting": True, "cost": c}) for c in args.costs]
        for label, kw in runs:
            t0 = time.perf_counter()
            _, trained = latent_rl(
                latent,
                tok,
                task,
                steps=args.steps,
                seed=seed,
                n_thoughts=latent.config.n_thoughts,
                lr=args.halting_lr if kw["halting"] else args.lr,
                **kw,
            )
            trained.config = LatentConfig(n_thoughts=latent.config.n_thoughts, halting=kw["halting"])
            df = run_model(trained, tok, task, args.problems)
            sampled = run_model(trained, tok, task, args.problems, temperature=1.0)["correct"].mean()
            rows.append(
                pd.DataFrame(
                    [
                        {
                            "method": label,
                            "accuracy": df["correct"].mean(),
                            "accuracy T=1": sampled,
                            "generated_tokens": df["generated_tokens"].mean(),
                            "cot_tokens": df["cot_tokens"].mean(),
                            "answer_tokens": df["answer_tokens"].mean(),
                            "thoughts": df["thoughts"].mean(),
                            "seed": seed,
                            "wall (s)": time.perf_counter() - t0,
                        }
                    ]
                )
            )
            print(
                f"  {label} seed {seed}: accuracy {rows[-1]['accuracy'].iloc[0]:.3f} (T=1 {sampled:.3f}), thoughts "
                f"{rows[-1]['thoughts'].iloc[0]:.2f} ({rows[-1]['wall (s)'].iloc[0]:.0f} s)",
                flush=True,
            )
    runs = pd.concat(rows, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    cols = ["accuracy", "accuracy T=1", "generated_tokens", "cot_tokens", "answer_tokens", "thoughts", "wall (s)"]
    table = runs.groupby("method", sort=False)[cols].agg(["mean", "std"])
    show = pd.DataFrame(index=table.index)
    for c in cols:
        m, s = table[(c, "mean")], table[(c, "std")].fillna(0.0)
        show[c] = [f"{a:.3f} ± {b:.3f}" if c.startswith("accuracy") else f"{a:.2f} ± {b:.2f}" for a, b in zip(m, s)]
    show["seeds"] = runs.groupby("method", sort=False).size()
    print(show.to_string())
    print(f"wrote {args.out}; total wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
