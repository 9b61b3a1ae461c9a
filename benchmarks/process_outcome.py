"""Process vs outcome rewards on ``chain``: verifiers for best-of-N, label noise, RL arms, and PRM hacking; 3 seeds.

Per seed, from the zoo's ``chain`` base model (``rl4lrm.experiments.process_outcome`` and ``.process_rl``):
* a PRM (true "no error so far" step labels) and an ORM (final-answer labels) trained on the same 256 × 4 sampled
  solutions; best-of-N accuracy for N = 1..32 on a pool of 32 samples for each of 128 held-out problems, against
  majority vote and the oracle (Lightman et al., 2023, arXiv:2305.20050);
* the PRM retrained with 10% and 30% of its step labels flipped: step AUC against the true labels, best-of-16;
* GRPO (no KL) with each reward of ``REWARD_ARMS`` at one budget (``--steps`` × 16 prompts × 8 samples);
* GRPO against the PRM alone under pressure (``HACK_CONFIG``): proxy vs gold reward (Gao et al., 2023).

Jobs (seed × part) go to a process pool, one torch thread each. Writes ``--out`` (the RL table) and, beside it,
``process_outcome_rerank.csv``, ``process_outcome_noise.csv``, ``process_outcome_hacking.csv`` and
``process_outcome.curves.csv`` (held-out accuracy per step), and prints every table.

    python benchmarks/process_outcome.py [--steps 60] [--hack-steps 100] [--seeds 0 1 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import run_pool

NS = (1, 2, 4, 8, 16, 32)


def run_one(job: tuple) -> dict:
    """One seed's verifier part (rerank + noise) or RL part (arms + hacking)."""
    part, seed, args = job
    from rl4lrm.experiments.process_outcome import VerifierConfig, noise_study, rerank_study, train_verifiers
    from rl4lrm.experiments.process_rl import hacking_study, proxy_vs_gold, reward_arms, rl_study

    t0 = time.perf_counter()
    config = VerifierConfig(seed=seed)
    out = {"part": part, "seed": seed}
    if part == "verifiers":
        curves, verifiers, _ = rerank_study(config, n_problems=128, m=32, ns=NS)
        out["rerank"] = curves
        out["noise"] = noise_study((0.0, 0.1, 0.3), n_problems=128, m=16, clean=verifiers).assign(seed=seed)
    else:
        prm = train_verifiers(config).prm
        runs = rl_study(reward_arms(prm=prm), seeds=(seed,), steps=args["steps"], eval_every=args["steps"] // 3)
        out["rl"] = runs
        history, _ = hacking_study(prm, steps=args["hack_steps"], seed=seed, eval_every=args["hack_steps"] // 5)
        hack = proxy_vs_gold(history).reset_index()
        held = history.dropna(subset=["acc/pass@1"])[["step", "acc/pass@1"]]
        out["hacking"] = hack.merge(held, on="step", how="left").assign(seed=seed)
    out["wall (s)"] = time.perf_counter() - t0
    return out


def rl_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arm: held-out pass@1 before and after (mean ± std over seeds), train gold reward at the end, tokens."""
    evals = runs.dropna(subset=["acc/pass@1"]).sort_values("step", kind="stable")
    per = evals.groupby(["method", "seed"], sort=False)["acc/pass@1"].agg(["first", "last"])
    per["tokens"] = runs.groupby(["method", "seed"], sort=False)["tokens"].max()
    tail = runs[runs["step"] > 0.8 * runs["step"].max()]
    per["train correct"] = tail.groupby(["method", "seed"], sort=False)["reward/correct"].mean()
    g = per.groupby("method", sort=False)
    return pd.DataFrame(
        {
            "base pass@1": g["first"].mean(),
            "pass@1 mean": g["last"].mean(),
            "pass@1 std": g["last"].std(ddof=1),
            "train correct": g["train correct"].mean(),
            "tokens": g["tokens"].mean(),
            "seeds": g.size(),
        }
    ).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--hack-steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/process_outcome.csv")
    args = parser.parse_args()
    shared = {"steps": args.steps, "hack_steps": args.hack_steps}
    jobs = [(part, seed, shared) for seed in args.seeds for part in ("rl", "verifiers")]
    print(f"steps={args.steps} hack_steps={args.hack_steps} seeds={args.seeds} workers={args.workers} "
          f"torch={torch.__version__} jobs={len(jobs)}", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    rows = run_pool(
        run_one, jobs, args.workers, lambda r: print(f"  {r['part']} seed {r['seed']}: {r['wall (s)']:.0f} s")
    )
    cat = lambda key: pd.concat([r[key] for r in rows if key in r], ignore_index=True)  # noqa: E731
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rerank = cat("rerank").groupby(["method", "N"], sort=False)["accuracy"].agg(["mean", "std"]).reset_index()
    noise = cat("noise").drop(columns="seed").groupby("noise").agg(["mean", "std"])
    runs = cat("rl").sort_values(["method", "seed", "step"], kind="stable")
    table = rl_table(runs)
    hacking = cat("hacking").sort_values(["seed", "step"])
    table.to_csv(out, index=False)
    runs.dropna(subset=["acc/pass@1"])[["method", "seed", "step", "acc/pass@1", "tokens"]].to_csv(
        out.with_suffix(".curves.csv"), index=False
    )
    rerank.to_csv(out.with_name("process_outcome_rerank.csv"), index=False)
    noise.to_csv(out.with_name("process_outcome_noise.csv"))
    hacking.to_csv(out.with_name("process_outcome_hacking.csv"), index=False)
    print(f"\nseeds {args.seeds}; total {time.perf_counter() - t0:.0f} s")
    print("\nbest-of-N accuracy on 128 held-out problems (mean ± std over seeds):")
    show = rerank.assign(acc=[f"{m:.3f} ± {s:.3f}" for m, s in zip(rerank["mean"], rerank["std"])])
    print(show.pivot(index="N", columns="method", values="acc").to_string())
    print("\nPRM label noise (best-of-16; mean over seeds):")
    print(noise.xs("mean", axis=1, level=1).round(3).to_string())
    print(f"\nRL arms, {args.steps} GRPO steps x 16 prompts x 8 samples, no KL:")
    print(table.round(3).to_string(index=False))
    print(f"\nPRM hacking ({args.hack_steps} steps, lr 1e-3, no KL; rolling mean of 10 steps, mean over seeds):")
    print(hacking.groupby("step")[["proxy (PRM)", "gold (verifier)", "KL to start", "acc/pass@1"]].mean()
          .iloc[:: max(1, args.hack_steps // 10)].round(3).to_string())  # fmt: skip
    print(f"\nwrote {out} and its siblings")


if __name__ == "__main__":
    main()
