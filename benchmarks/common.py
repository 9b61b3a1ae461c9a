"""What the training benchmarks share: a spawn pool of single-threaded runs, the mean ± std summary, and
the printed table. ``presets.py``, ``sampling.py`` and ``rewards.py`` import it (run them from the
repository root: ``python benchmarks/NAME.py``, which puts this folder on the import path)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable

import pandas as pd


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
