"""A sweep of presets x seeds run sequentially and on a local Ray cluster: wall time of each, the speed-up, and
whether the two give the same histories.

The same ``Run`` list goes to ``rl4lrm.sweep.run_sweep`` twice: ``backend="sequential"`` trains the runs one after
another in this process, ``backend="ray"`` as one Ray task each (``num_cpus=1``, one torch thread) on a local
cluster of ``--cpus`` CPUs. The Ray wall time is reported with and without starting the cluster (``ray.init``),
which a notebook or a long-lived cluster pays once; the first Ray sweep also pays for starting the worker
processes (each imports torch and rl4lrm). Histories are compared without the wall-time columns ``time/*``.
The machine's load average is printed with the numbers: on a shared CPU other jobs take cores from both arms.
Needs the extra ``ray`` (``pip install rl4lrm[ray]``). Writes ``--out`` (CSV, one row per backend).

    python benchmarks/sweep.py [--presets grpo dapo rloo] [--seeds 0 1 2] [--steps 30] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.sweep import Run, run_sweep
from rl4lrm.trainer import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="addition")
    parser.add_argument("--presets", nargs="*", default=["grpo", "dapo", "rloo"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (one run per CPU)")
    parser.add_argument("--out", default="benchmarks/results/sweep.csv")
    args = parser.parse_args()
    try:
        import ray
    except ImportError:
        parser.error("this benchmark needs Ray: pip install 'rl4lrm[ray]'")
    runs = [
        Run(
            preset,
            seed,
            TrainConfig.build(
                task=args.task,
                preset=preset,
                steps=args.steps,
                seed=seed,
                eval_every=max(1, args.steps // 3),
                eval_problems=args.eval_problems,
                device="cpu",
            ),
        )
        for preset in args.presets
        for seed in args.seeds
    ]
    print(
        f"task={args.task} presets={args.presets} seeds={args.seeds} steps={args.steps} runs={len(runs)} "
        f"device=cpu torch={torch.__version__} ray={ray.__version__} cores={os.cpu_count()} ray cpus={args.cpus}",
        flush=True,
    )

    load = [os.getloadavg()[0]]
    t0 = time.perf_counter()
    sequential = run_sweep(runs, "sequential", desc="sequential")
    wall_seq = time.perf_counter() - t0
    load.append(os.getloadavg()[0])

    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    wall_init = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        on_ray = run_sweep(runs, "ray", desc="ray")
        wall_ray = time.perf_counter() - t1
    finally:
        ray.shutdown()
    load.append(os.getloadavg()[0])

    def drop_timing(df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=[c for c in df.columns if c.startswith("time/")])

    identical = drop_timing(sequential).equals(drop_timing(on_ray))
    final = sequential.groupby(["method", "seed"], sort=False)["acc/pass@1"].last().groupby("method", sort=False)
    table = pd.DataFrame(
        [
            {"backend": "sequential", "wall (s)": wall_seq, "ray.init (s)": 0.0, "speed-up": 1.0},
            {"backend": "ray", "wall (s)": wall_ray, "ray.init (s)": wall_init, "speed-up": wall_seq / wall_ray},
            {
                "backend": "ray incl. init",
                "wall (s)": wall_ray + wall_init,
                "ray.init (s)": wall_init,
                "speed-up": wall_seq / (wall_ray + wall_init),
            },
        ]
    ).assign(identical=identical, runs=len(runs), steps=args.steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"\nfinal held-out pass@1 per preset, mean ± std over seeds {args.seeds} (same on both backends):")
    print(pd.DataFrame({"mean": final.mean(), "std": final.std()}).round(3).to_string())
    print(f"\n1-minute load average before / after sequential / after ray: {' / '.join(f'{x:.1f}' for x in load)}")
    print(table.round(2).to_string(index=False))
    print(f"histories identical (without time/*): {identical}\nwrote {args.out}")


if __name__ == "__main__":
    main()
