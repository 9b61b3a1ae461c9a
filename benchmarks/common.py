"""What the training benchmarks share: a spawn pool of single-threaded runs that reports as it goes, the
mean ± std summary, the printed table and the CSV files. ``presets.py``, ``sampling.py``, ``rewards.py``,
``tricks.py`` and ``rl_vs_sft.py`` import it (run them from the repository root: ``python benchmarks/NAME.py``,
which puts this folder on the import path)."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import torch


def run_pool(run_one: Callable, jobs: list, workers: int, report: Callable[[object], None]) -> list:
    """Runs ``run_one(job)`` for every job in ``workers`` spawned processes (one torch thread each: tiny
    models run fastest single-threaded and the runs are independent); ``report`` sees each result as it
    arrives. Returns the results in arrival order."""
    results = []
    with mp.get_context("spawn").Pool(workers) as pool:
        for result in pool.imap_unordered(run_one, jobs):
            results.append(result)
            report(result)
    return results


def run_logged(run_one: Callable, jobs: list, workers: int, settings: str, describe: Callable[[object], str]):
    """``run_pool`` that prints ``settings`` (with the torch version and the number of jobs) first and one
    indented ``describe(result)`` line per result as it arrives. Returns the results and the wall time in s."""
    print(f"{settings} torch={torch.__version__} jobs={len(jobs)}", flush=True)
    t0 = time.perf_counter()
    results = run_pool(run_one, jobs, workers, lambda result: print(f"  {describe(result)}", flush=True))
    return results, time.perf_counter() - t0


def eval_every(steps: int, evaluations: int) -> int:
    """Steps between held-out evaluations for about ``evaluations`` of them in a run of ``steps`` (at least 1, so
    that a short run still evaluates before and after training)."""
    return max(1, steps // evaluations)


def hand_stepped_trainer(task: str, preset: str, seed: int, **settings):
    """A CPU ``Trainer`` for a benchmark that steps it by hand (``collect``, then ``learn``) against a clock or to a
    given step: a step count that never stops it, no held-out evaluations of its own, and the history's first row as
    ``train()`` logs it when it does not evaluate. ``settings`` go to ``TrainConfig.build``."""
    from rl4lrm.trainer import TrainConfig, Trainer

    config = TrainConfig.build(
        task=task, preset=preset, steps=100_000, seed=seed, eval_every=0, device="cpu", **settings
    )  # a constant learning rate ignores the step count
    trainer = Trainer(config, progress=False)
    trainer.history.append({"step": 0})
    return trainer


def train_and_summarise(settings: dict, labels: dict, tail_from: float, tail_metrics: dict[str, str]) -> dict:
    """Trains ``TrainConfig.build(**settings)`` on the CPU and summarises it: ``labels``, held-out pass@1 before
    and after, the mean of each ``{name: history column}`` over the steps after ``tail_from`` of the run, the wall
    time, and the evaluation curve (step, pass@1 and the labels) under ``"curve"``."""
    from rl4lrm.trainer import TrainConfig, Trainer

    config = TrainConfig.build(**settings, device="cpu")
    t0 = time.perf_counter()
    history = Trainer(config, progress=False).train()
    wall = time.perf_counter() - t0
    tail = history[history["step"] > tail_from * config.steps]
    curve = history.dropna(subset=["acc/pass@1"])[["step", "acc/pass@1"]].assign(**labels)
    return {
        **labels,
        "base pass@1": history["acc/pass@1"].iloc[0],
        "pass@1": history["acc/pass@1"].iloc[-1],
        **{name: tail[column].mean() for name, column in tail_metrics.items()},
        "wall (s)": wall,
        "curve": curve,
    }


def in_given_order(df: pd.DataFrame, columns: tuple[str, str], order: list[tuple]) -> pd.DataFrame:
    """Rows sorted by the position of their ``columns`` pair in ``order``, then by seed and step where present."""
    rank = {key: i for i, key in enumerate(order)}
    keys = [c for c in ("seed", "step") if c in df]
    df = df.assign(rank=[rank[pair] for pair in zip(df[columns[0]], df[columns[1]])])
    return df.sort_values(["rank", *keys], kind="stable").drop(columns="rank").reset_index(drop=True)


def pass1_change(row) -> str:
    """``"pass@1 0.114 -> 0.260"``: a run's held-out pass@1 before and after training."""
    return f"pass@1 {row['base pass@1']:.3f} -> {row['pass@1']:.3f}"


def before_after(base: pd.Series, mean: pd.Series, std: pd.Series) -> list[str]:
    """``"0.424 → 0.719 ± 0.008"`` per row: pass@1 before training, then the mean ± std over seeds after it."""
    return [f"{b:.3f} → {m:.3f} ± {s:.3f}" for b, m, s in zip(base, mean, std)]


def signed_mean_std(mean: pd.Series, std: pd.Series) -> list[str]:
    """``"+3.1 ± 1.2"`` per row: a change in points, mean ± std over seeds."""
    return [f"{m:+.1f} ± {s:.1f}" for m, s in zip(mean, std)]


def write_results(out: str | Path, table: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame | None = None):
    """Writes the summary to ``out``, the per-run rows to ``*.runs.csv`` and the curves, if any, to ``*.curves.csv``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    runs.to_csv(out.with_suffix(".runs.csv"), index=False)
    if curves is not None:
        curves.to_csv(out.with_suffix(".curves.csv"), index=False)


def in_method_order(runs: pd.DataFrame, methods: Iterable[str]) -> pd.DataFrame:
    """Rows sorted by the given order of methods, then by seed."""
    order = {label: i for i, label in enumerate(methods)}
    return runs.sort_values(["method", "seed"], key=lambda c: c.map(order) if c.name == "method" else c)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method: mean ± std over seeds of every numeric column, and the gain in points."""
    metrics = [c for c in runs.columns if c not in ("method", "seed") and pd.api.types.is_numeric_dtype(runs[c])]
    grouped = runs.groupby("method", sort=False)[metrics]
    mean, std = grouped.mean(), grouped.std(ddof=1).fillna(0.0)
    table = mean.add_suffix(" mean").join(std.add_suffix(" std"))
    table["gain (points) mean"] = 100 * (mean["pass@1"] - mean["base pass@1"])
    table["gain (points) std"] = 100 * runs.assign(g=runs["pass@1"] - runs["base pass@1"]).groupby(
        "method", sort=False
    )["g"].std(ddof=1).fillna(0.0)
    table["seeds"] = grouped.size()
    return table.reset_index()


def mean_std_strings(table: pd.DataFrame, formats: dict[str, str], keep=("method",)) -> pd.DataFrame:
    """The ``summarise`` table as ``"mean ± std"`` strings, one column per entry of ``{column: format}``."""
    show = table[list(keep)].copy()
    for col, fmt in formats.items():
        show[col] = [f"{m:{fmt}} ± {s:{fmt}}" for m, s in zip(table[f"{col} mean"], table[f"{col} std"])]
    return show
