"""Efficient reasoning: accuracy against tokens for every length control, on the zoo's ``thinking`` model.

Each method of ``rl4lrm.experiments.efficiency.METHODS`` (GRPO on correctness; a plain length penalty; Kimi k1.5's
group length reward; L1's target length; ThinkPrune's falling length caps; AdaptThink's no-thinking bonus) trains
the base model for ``--steps`` steps per seed; every trained model then answers the same held-out problems
(``--eval-problems`` x ``--samples`` at T=1) and is scored on accuracy, mean tokens per answer, and how often it
thinks on the easiest (2-digit) and the hardest (4-digit) sums. Budget forcing (s1) on the base model, with no
training, gives the inference-time curve. Runs go to a process pool (one torch thread each).

The table is printed and written to ``--out`` (CSV); per-seed rows to ``.runs.csv``, per-difficulty profiles to
``.profiles.csv`` and the budget sweep to ``.budget.csv``.

    python benchmarks/efficiency.py [--methods GRPO "Kimi length" ...] [--steps 60] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import run_logged, write_results

from rl4lrm.experiments.efficiency import (
    BASE,
    METHODS,
    EfficiencyRun,
    budget_sweep,
    pareto_front,
    sample_answers,
    summary,
    thinking_profile,
    train_method,
)
from rl4lrm.models.zoo import load_base


def run_one(job: tuple) -> dict:
    """Trains one (method, seed), samples its held-out answers and returns them with the wall time."""
    method, seed, args = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model, tokenizer, task, _ = train_method(METHODS[method], args["steps"], seed, device="cpu")
    wall = time.perf_counter() - t0
    problems = task.problems("test", args["eval_problems"], seed=0)
    answers = sample_answers(model, tokenizer, task, problems, args["samples"], seed=seed)
    return {"method": method, "seed": seed, "answers": answers, "wall (s)": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--eval-problems", type=int, default=256)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/efficiency.csv")
    args = parser.parse_args()
    if unknown := [m for m in args.methods if m not in METHODS]:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    model, tokenizer, task = load_base(BASE)
    problems = task.problems("test", args.eval_problems, seed=0)
    base = {seed: sample_answers(model, tokenizer, task, problems, args.samples, seed=seed) for seed in args.seeds}
    sweep = budget_sweep(model, tokenizer, task, problems, samples=args.samples)
    print("budget forcing on the base model:\n" + sweep.round(3).to_string(index=False), flush=True)
    shared = {"steps": args.steps, "eval_problems": args.eval_problems, "samples": args.samples}
    jobs = [(method, seed, shared) for seed in args.seeds for method in args.methods]
    results, _ = run_logged(
        run_one,
        jobs,
        args.workers,
        f"methods={args.methods} steps={args.steps} seeds={args.seeds} eval={args.eval_problems}x{args.samples}",
        lambda r: (
            f"{r['method']:<15} seed {r['seed']}: acc {r['answers'].correct.mean():.3f}, "
            f"{r['answers'].tokens.mean():.1f} tokens ({r['wall (s)']:.0f} s)"
        ),
    )
    order = {m: i for i, m in enumerate(args.methods)}
    results.sort(key=lambda r: (order[r["method"]], r["seed"]))
    runs = [EfficiencyRun(r["method"], r["seed"], pd.DataFrame(), r["answers"]) for r in results]
    table = summary(runs, base)
    table["pareto"] = pareto_front(table)
    table["wall (s)"] = table.method.map(pd.DataFrame(results).groupby("method")["wall (s)"].mean())
    every = [("base", seed, answers) for seed, answers in base.items()] + [(r.method, r.seed, r.answers) for r in runs]
    per_seed = pd.DataFrame(
        [
            {"method": m, "seed": s, "acc": a.correct.mean(), "tokens": a.tokens.mean(), "p(think)": a.thinks.mean()}
            for m, s, a in every
        ]
    )
    profiles = pd.concat(
        [thinking_profile(a).reset_index().assign(method=m, seed=s) for m, s, a in every], ignore_index=True
    )
    print(table.round(3).to_string(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")
    write_results(args.out, table, per_seed)
    profiles.to_csv(args.out.replace(".csv", ".profiles.csv"), index=False)
    sweep.to_csv(args.out.replace(".csv", ".budget.csv"), index=False)


if __name__ == "__main__":
    main()
