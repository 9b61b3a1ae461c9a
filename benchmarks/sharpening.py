"""Sharpening or discovery? pass@1, pass@16 and pass@256 of zoo base models and their GRPO checkpoints.

For every zoo base model (default: ``addition`` and ``countdown``) and seed: train the ``grpo`` preset,
keep the policy at a few steps, sample ``--n-samples`` answers to each of ``--eval-problems`` held-out
problems with the base model and with every checkpoint, and report pass@k (unbiased estimator, 95%
bootstrap interval over problems), the RL/base ratio, coverage (problems with a correct answer among
the n samples: solved, gained and lost relative to the base) and the crossover: the smallest k at which
the base model catches up with the checkpoint (Yue et al., 2025, arXiv:2504.13837), if it does.

    python benchmarks/sharpening.py [--bases addition countdown] [--steps 200] [--seeds 0] [--quick]

The knob sweep of notebook 05 (``results/sharpening_knobs.csv``; about 2 minutes per line on a 2-core CPU):

    K="--out benchmarks/results/sharpening_knobs.csv --append --checkpoints 200"
    python benchmarks/sharpening.py $K --bases countdown-weak countdown countdown-strong
    python benchmarks/sharpening.py $K --bases countdown --split hard
    python benchmarks/sharpening.py $K --bases countdown --kl-coef 0
    python benchmarks/sharpening.py $K --bases countdown --entropy-coef 0.01
    python benchmarks/sharpening.py $K --bases countdown --eval-temperature 0.7
    python benchmarks/sharpening.py --out benchmarks/results/sharpening_knobs.csv --append --bases countdown \
        --steps 400 --checkpoints 400

A model that writes its search (``results/sharpening_search.csv``; the three seeds ran as three processes,
their CSVs concatenated):

    python benchmarks/sharpening.py --out benchmarks/results/sharpening_search.csv --bases countdown-search \
        --steps 100 --checkpoints 100 --max-new-tokens 192 --seeds 0 1 2

``--quick`` (30 steps, 32 problems, still n = 256) checks that the script runs in about a minute; its
CSV goes to ``benchmarks/results/sharpening_quick.csv`` so it never overwrites a full run's table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.experiments.sharpening import SPLITS, sharpening_study
from rl4lrm.models.zoo import ZOO
from rl4lrm.utils import resolve_device

RESULTS = Path(__file__).parent / "results"
REPORT_KS = (1, 16, 256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="*", default=["addition", "countdown"], choices=sorted(ZOO))
    parser.add_argument("--split", default="standard", choices=SPLITS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--checkpoints", type=int, nargs="*", default=None, help="default: steps/4, steps/2, steps")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--eval-temperature", type=float, default=1.0)
    parser.add_argument("--kl-coef", type=float, default=None, help="default: the preset's (0.04)")
    parser.add_argument("--entropy-coef", type=float, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: TrainConfig's; searches: 192")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="30 steps, 32 problems: a check that it runs")
    parser.add_argument("--out", default=None, help="CSV path (default benchmarks/results/sharpening[_quick].csv)")
    parser.add_argument("--append", action="store_true", help="add rows to --out instead of replacing it (knob sweeps)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.eval_problems, args.checkpoints = 30, 32, [30]
    device = resolve_device(args.device)
    print(
        f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} split={args.split} "
        f"steps={args.steps} n_samples={args.n_samples} eval_problems={args.eval_problems} "
        f"eval_temperature={args.eval_temperature} seeds={args.seeds} quick={args.quick}",
        flush=True,
    )
    knobs = (("kl_coef", args.kl_coef), ("entropy_coef", args.entropy_coef), ("max_new_tokens", args.max_new_tokens))
    overrides = {k: v for k, v in knobs if v is not None}
    rows, curves = [], []
    t_all = time.perf_counter()
    for base in args.bases:
        for seed in args.seeds:
            t0 = time.perf_counter()
            result = sharpening_study(
                base=base,
                split=args.split,
                steps=args.steps,
                checkpoints=args.checkpoints,
                n_samples=args.n_samples,
                eval_problems=args.eval_problems,
                eval_temperature=args.eval_temperature,
                n_boot=args.n_boot,
                seed=seed,
                progress=False,
                device=str(device),
                **overrides,
            )
            wall = time.perf_counter() - t0
            table = result.curves.set_index(["label", "k"])
            crossings = result.crossovers()
            for label in result.counts:
                row = {
                    "base model": base,
                    "split": args.split,
                    "steps": args.steps,
                    "seed": seed,
                    "label": label,
                    "step": 0 if label == "base" else int(label.split()[1]),
                }
                for k in REPORT_KS:
                    if k <= args.n_samples:
                        value, lo, hi = table.loc[(label, k), ["pass@k", "lo", "hi"]]
                        row |= {
                            f"pass@{k}": value,
                            f"pass@{k} lo": lo,
                            f"pass@{k} hi": hi,
                            f"ratio@{k}": value / max(table.loc[("base", k), "pass@k"], 1e-12),
                        }
                row |= result.coverage.loc[label, ["solved", "gained", "lost"]].to_dict()
                row |= {
                    "crossover k": crossings.get(label),
                    "kl_coef": result.settings["kl_coef"],
                    "entropy_coef": result.settings["entropy_coef"],
                    "eval_temperature": args.eval_temperature,
                    "n_samples": args.n_samples,
                    "eval_problems": args.eval_problems,
                    "wall (s)": wall,
                }
                rows.append(row)
            curves.append(
                result.curves.assign(
                    **{
                        "base model": base,
                        "split": args.split,
                        "steps": args.steps,
                        "seed": seed,
                        "kl_coef": result.settings["kl_coef"],
                        "entropy_coef": result.settings["entropy_coef"],
                        "eval_temperature": args.eval_temperature,
                    }
                )
            )
            print(f"\n{base} (seed {seed}, {wall:.0f} s; train {result.history['time/step'].sum():.0f} s)", flush=True)
            print(_pretty(pd.DataFrame([r for r in rows if r["base model"] == base and r["seed"] == seed])), flush=True)
            for label, k in crossings.items():
                where = f"the base catches up at k = {k}" if k is not None else ("the curves do not cross up to k = n")
                print(f"  {label}: {where}")
    out = Path(args.out) if args.out else RESULTS / ("sharpening_quick.csv" if args.quick else "sharpening.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = {out: pd.DataFrame(rows), out.with_suffix(".curves.csv"): pd.concat(curves, ignore_index=True)}
    for path, frame in frames.items():
        if args.append and path.exists():
            frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
        frame.to_csv(path, index=False)
    print(
        f"\ntotal wall time {time.perf_counter() - t_all:.0f} s on {device}; wrote {out} and "
        f"{out.with_suffix('.curves.csv')}"
    )


def _pretty(frame: pd.DataFrame) -> str:
    """pass@k as 'value [lo, hi]', the ratio to the base, coverage and the crossover, one row per model."""
    shown = pd.DataFrame({"model": frame["label"]})
    for k in REPORT_KS:
        if f"pass@{k}" in frame:
            shown[f"pass@{k} [95% CI]"] = [
                f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                for v, lo, hi in zip(frame[f"pass@{k}"], frame[f"pass@{k} lo"], frame[f"pass@{k} hi"])
            ]
            shown[f"RL/base@{k}"] = frame[f"ratio@{k}"].map("{:.2f}".format)
    shown["solved/gained/lost"] = [f"{s}/{g}/{lo}" for s, g, lo in zip(frame["solved"], frame["gained"], frame["lost"])]
    shown["crossover k"] = frame["crossover k"].map(lambda k: "-" if k is None or pd.isna(k) else str(int(k)))
    return shown.to_string(index=False)


if __name__ == "__main__":
    main()
