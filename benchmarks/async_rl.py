"""Asynchronous vs synchronous RL: throughput and learning at staleness 0, 1, 2 and 4, over seeds.

The synchronous loop (``Trainer``) against ``rl4lrm.async_rl.AsyncTrainer`` (a producer thread sampling beside
the learner, at most ``staleness`` policy versions behind it), with one config for every arm: GRPO on the zoo's
``addition`` base model, 16 prompts x 8 samples per step, truncated importance weights ``tis_cap=2`` (a no-op on
fresh batches, the correction on stale ones). Measured per run: samples/s (B·G·steps over the training wall
time, evaluations and a 2-step warm-up excluded), the learner's total wait for data, the producer's total
blocked time, the mean lag, the cores the process used (CPU time / wall time), held-out pass@1 before and
after (``--eval-problems`` test problems x ``--eval-samples`` samples), and the mean training reward over the
last quarter of the steps.

Runs go one at a time to a spawned process (``--threads`` torch threads per side; async runs need two cores of
their own, so nothing runs beside them). The table is printed and written to ``--out`` (CSV), the per-seed rows
to ``.runs.csv`` and the reward curves (per step, with the learner's elapsed time) to ``.curves.csv``.

    python benchmarks/async_rl.py [--steps 40] [--seeds 0 1 2] [--staleness 0 1 2 4] [--threads 1] [--producer ray]

``--producer ray`` samples in a Ray actor (``rl4lrm.async_rl.RayProducer``), a process of its own, so the two sides
share no interpreter lock; *cores used* then counts the learner's process only.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
from common import before_after, run_logged, write_results


def method_name(staleness: int | None, producer: str = "thread") -> str:
    if staleness is None:
        return "sync"
    return f"async, staleness {staleness}" + (", Ray actor" if producer == "ray" else "")


def run_one(job: tuple) -> dict:
    """Trains one (method, seed) and returns its summary and its reward curve."""
    staleness, seed, args = job
    import torch

    from rl4lrm.async_rl import AsyncTrainer, RayProducer
    from rl4lrm.trainer import TrainConfig, Trainer

    torch.set_num_threads(args["threads"])
    settings = dict(
        task="addition",
        steps=args["steps"],
        seed=seed,
        eval_every=0,  # evaluated before and after, outside the timed loop
        eval_problems=args["eval_problems"],
        eval_samples=args["eval_samples"],
        tis_cap=2.0,
        device="cpu",
    )
    config = TrainConfig.build(**settings)
    method = method_name(staleness, args["producer"])
    if staleness is None:
        trainer = Trainer(config, progress=False)
    elif args["producer"] == "ray":
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # shut down after the run, below
        producer = RayProducer(config, threads=args["threads"])
        trainer = AsyncTrainer(config, staleness, threads=args["threads"], producer=producer, progress=False)
        producer.set_weights(trainer.model.state_dict(), 0)  # the actor's start (imports) stays out of the timed loop
    else:
        trainer = AsyncTrainer(config, staleness, threads=args["threads"], progress=False)
    base = trainer.evaluate()["acc/pass@1"]
    # warm-up, untimed: a process's first updates pay for lazy initialisation (allocator, autograd, AdamW state)
    Trainer(TrainConfig.build(**{**settings, "steps": 2}), progress=False).train()
    t0, cpu0 = time.perf_counter(), time.process_time()
    history = trainer.train().iloc[1:]
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    after = trainer.evaluate()["acc/pass@1"]
    if staleness is not None and args["producer"] == "ray":
        import ray

        ray.shutdown()  # before the pool ends this process, whose SIGTERM would catch Ray mid-call
    has = {c: c in history for c in ("async/wait", "async/blocked", "async/staleness")}
    tail = history[history["step"] > 0.75 * config.steps]
    curve = pd.DataFrame(
        {
            "method": method,
            "seed": seed,
            "step": history["step"],
            "reward/mean": history["reward/mean"],
            "elapsed (s)": history["time/step"].cumsum(),
            "staleness": history["async/staleness"] if has["async/staleness"] else 0.0,
        }
    )
    return {
        "method": method,
        "seed": seed,
        "samples/s": config.steps * config.prompts_per_step * config.group_size / wall,
        "wall (s)": wall,
        "cores used": cpu / wall,  # CPU time of all the process's threads over wall time: did a second core help?
        "learner wait (s)": history["async/wait"].sum() if has["async/wait"] else float("nan"),
        "producer blocked (s)": history["async/blocked"].sum() if has["async/blocked"] else float("nan"),
        "mean lag": history["async/staleness"].mean() if has["async/staleness"] else 0.0,
        # the share of a step spent sampling; a 2-stage pipeline is at most 1 / max(share, 1 - share) times faster
        "rollout share": history["time/rollout"].sum() / history["time/step"].sum(),
        "base pass@1": base,
        "pass@1": after,
        "reward (last quarter)": tail["reward/mean"].mean(),
        "load": os.getloadavg()[0],
        "curve": curve,
    }


def summary(runs: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """One row per method: mean and std over seeds, and the samples/s ratio to the synchronous run of each seed."""
    sync = runs[runs["method"] == "sync"].set_index("seed")["samples/s"]
    runs = runs.assign(**{"x sync": runs["samples/s"] / runs["seed"].map(sync)})
    numeric = [c for c in runs.columns if c not in ("method", "seed")]
    grouped = runs.groupby("method", sort=False)[numeric]
    table = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=1).fillna(0.0).add_suffix(" std"))
    table["seeds"] = grouped.size()
    return table.reindex(methods).reset_index()


def printable(table: pd.DataFrame) -> pd.DataFrame:
    """The table as printed (and pasted into the README): mean ± std strings."""

    def pm(col, fmt):
        return [f"{m:{fmt}} ± {s:{fmt}}" for m, s in zip(table[f"{col} mean"], table[f"{col} std"])]

    return pd.DataFrame(
        {
            "method": table["method"],
            "samples/s": pm("samples/s", ".0f"),
            "× sync": pm("x sync", ".2f"),
            "learner wait (s)": pm("learner wait (s)", ".1f"),
            "producer blocked (s)": pm("producer blocked (s)", ".1f"),
            "mean lag": table["mean lag mean"].map("{:.2f}".format),
            "cores used": table["cores used mean"].map("{:.2f}".format),
            "pass@1 (base → after)": before_after(table["base pass@1 mean"], table["pass@1 mean"], table["pass@1 std"]),
            "reward (last quarter)": pm("reward (last quarter)", ".3f"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--staleness", type=int, nargs="*", default=[0, 1, 2, 4])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per side")
    parser.add_argument(
        "--producer",
        choices=("thread", "ray"),
        default="thread",
        help="the async arms' rollout worker: a thread of the learner's process, or a Ray actor (another process)",
    )
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/async_rl.csv")
    args = parser.parse_args()
    shared = {k: getattr(args, k) for k in ("steps", "threads", "eval_problems", "eval_samples", "producer")}
    arms = [None, *args.staleness]
    jobs = [(s, seed, shared) for seed in args.seeds for s in arms]  # seeds outermost: drift in load hits every arm
    rows, wall = run_logged(
        run_one,
        jobs,
        1,
        f"device=cpu cores={os.cpu_count()} threads/side={args.threads} producer={args.producer} OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')} steps={args.steps} seeds={args.seeds}",
        lambda r: (
            f"{r['method']:<20} seed {r['seed']}: {r['samples/s']:.0f} samples/s, lag {r['mean lag']:.2f}, "
            f"pass@1 {r['base pass@1']:.3f} -> {r['pass@1']:.3f} ({r['wall (s)']:.1f} s, load {r['load']:.1f})"
        ),
    )
    methods = [method_name(s, args.producer) for s in arms]
    curves = pd.concat([row.pop("curve") for row in rows], ignore_index=True)
    order = {m: i for i, m in enumerate(methods)}
    runs = pd.DataFrame(rows).sort_values(["seed", "method"], key=lambda c: c.map(order) if c.name == "method" else c)
    table = summary(runs, methods)
    write_results(args.out, table, runs, curves)
    print(f"\n{args.steps} steps x 16 prompts x 8 samples; seeds {args.seeds}; total {wall:.0f} s")
    print(printable(table).to_string(index=False))
    share = table.set_index("method").loc["sync", "rollout share mean"]
    print(
        f"sync: sampling takes {share:.0%} of a step, so overlapping it with learning can make a step at most "
        f"{1 / max(share, 1 - share):.2f}x faster (2 free cores, no other cost)"
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
