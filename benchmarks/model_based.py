"""Model-based RL with a learned verifier: best-of-n planning with it, GRPO on it (fixed, or refit Dyna-style).

The model of the verifier (``rl4lrm.rewards.learned.VerifierModel``, ``--view``) is fit on a budget of base-model
answers labelled by the task's verifier. Per seed: best-of-n accuracy on held-out problems for a random pick, the
learned model and the verifier (oracle), for both views; then GRPO on ``addition`` for ``--steps`` steps with the
reward of each mode of ``rl4lrm.experiments.model_based.MODES``: the verifier itself, the learned model fit once,
and the learned model refit every ``--every`` steps on ``--refit-labels`` fresh policy samples (Dyna), the two
learned runs with the same number of true-verifier calls. Reported: the proxy (the model's reward) and the true
reward on the last 10 steps' samples, their gap, held-out pass@1 before and after.

The table is printed and written to ``--out``; per-seed rows to ``.runs.csv``, curves to ``.curves.csv`` and the
best-of-n curves to ``.rerank.csv``.

    python benchmarks/model_based.py [--steps 40] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from common import run_logged, summarise, write_results

from rl4lrm.experiments.model_based import BASE, MODES, fit_verifier, model_based_run, rerank_curve, run_summary
from rl4lrm.models.zoo import load_base


def run_one(job: tuple) -> dict:
    """One (mode, seed) training run, or one seed's best-of-n curves (mode ``"rerank"``)."""
    mode, seed, args = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if mode == "rerank":
        model, tokenizer, task = load_base(BASE, device="cpu")
        curves = []
        for view in ("hidden", "logprob"):
            vm, _, _ = fit_verifier(model, tokenizer, task, args["labels"], view, seed=seed)
            curves.append(rerank_curve(model, tokenizer, task, vm, seed=seed).assign(view=view, seed=seed))
        return {"mode": mode, "seed": seed, "rerank": pd.concat(curves), "wall (s)": time.perf_counter() - t0}
    history = model_based_run(mode, seed=seed, **args)
    curve = history[["step", "reward/correct", "acc/pass@1"]].assign(mode=mode, seed=seed)
    if "reward/learned_verifier" in history:
        curve["reward/learned_verifier"] = history["reward/learned_verifier"]
    return {"mode": mode, "seed": seed, **run_summary(history), "curve": curve, "wall (s)": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--labels", type=int, default=128)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--refit-labels", type=int, default=16)
    parser.add_argument("--view", default="hidden")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/model_based.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    shared = {k: getattr(args, k) for k in ("steps", "labels", "every", "refit_labels", "view")}
    jobs = [(mode, seed, shared) for seed in args.seeds for mode in (*MODES, "rerank")]
    results, wall = run_logged(
        run_one,
        jobs,
        args.workers,
        f"{shared} seeds={args.seeds} device=cpu",
        lambda r: (
            f"{r['mode']:<8} seed {r['seed']}: "
            + (
                "best-of-n done"
                if r["mode"] == "rerank"
                else f"proxy {r['proxy']:.3f} true {r['true']:.3f} pass@1 {r['acc before']:.3f} -> {r['acc after']:.3f}"
            )
            + f" ({r['wall (s)']:.0f} s)"
        ),
    )
    rerank = pd.concat([r["rerank"] for r in results if r["mode"] == "rerank"], ignore_index=True)
    train = [r for r in results if r["mode"] != "rerank"]
    runs = pd.DataFrame([{k: v for k, v in r.items() if k != "curve"} for r in train]).rename(
        columns={"mode": "method", "acc before": "base pass@1", "acc after": "pass@1"}
    )
    runs["method"] = pd.Categorical(runs["method"], list(MODES))
    runs = runs.sort_values(["method", "seed"]).reset_index(drop=True)
    runs["method"] = runs["method"].astype(str)
    table = summarise(runs)
    bon = rerank.groupby(["view", "n"])[["random", "learned", "oracle"]].agg(["mean", "std"]).round(3)
    print(bon.to_string())
    print(table.round(3).to_string(index=False))
    table["seed list"], table["device"], table["total wall (s)"] = str(args.seeds), "cpu", time.perf_counter() - t0
    print(f"total {time.perf_counter() - t0:.0f} s (pool {wall:.0f} s)")
    write_results(args.out, table, runs, pd.concat([r["curve"] for r in train], ignore_index=True))
    rerank.to_csv(args.out.replace(".csv", ".rerank.csv"), index=False)


if __name__ == "__main__":
    main()
