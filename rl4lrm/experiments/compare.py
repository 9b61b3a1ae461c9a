"""Train several presets (× seeds) under one budget and collect their histories side by side; ``staged_comparison``
does it once per starting model (or any other stage) and labels each stage's runs."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from rl4lrm.presets import PRESETS
from rl4lrm.sweep import Run, run_sweep
from rl4lrm.trainer import TrainConfig


def compare_presets(
    presets: list[str] | dict[str, dict],
    seeds: tuple[int, ...] = (0,),
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = True,
    backend: str = "sequential",
    ray_address: str | None = None,
    **config,
) -> pd.DataFrame:
    """Runs every (method, seed) with the same ``TrainConfig`` fields and returns one long DataFrame.

    Args:
        presets: preset names, or ``{label: settings}`` where settings include ``preset`` and any
            preset axis or ``TrainConfig`` field (``TrainConfig.build``),
            e.g. ``{"dapo": {"preset": "dapo"}, "dapo sym": {"preset": "dapo", "clip_high": 0.2}}``.
        seeds: seeds per method (mean ± std needs at least 2).
        on_run_end: called with the runs so far after each run (live plots).
        progress: show a bar over runs.
        backend: ``"sequential"`` (this process) or ``"ray"`` (one Ray task per run, ``rl4lrm.sweep``); the same
            DataFrame either way.
        ray_address: with ``backend="ray"``, the cluster to join (``ray.init(address=...)``); None starts a local
            one unless Ray is already initialised.
        **config: ``TrainConfig`` fields shared by every run (task, steps, lr, ...).

    Returns:
        The concatenated histories with ``method`` and ``seed`` columns, one row per (run, step).
    """
    methods = {name: {"preset": name} for name in presets} if not isinstance(presets, dict) else dict(presets)
    if not methods or not seeds:
        raise ValueError("compare_presets needs at least one preset and one seed")
    for label, overrides in methods.items():
        if overrides.get("preset") not in PRESETS:
            raise ValueError(f"method {label!r}: unknown preset {overrides.get('preset')!r}; known: {sorted(PRESETS)}")
    runs = [
        Run(label, seed, TrainConfig.build(**{**config, **overrides, "seed": seed}))  # validates before any run
        for label, overrides in methods.items()
        for seed in seeds
    ]
    return run_sweep(runs, backend, ray_address=ray_address, on_run_end=on_run_end, progress=progress)


def staged_comparison(
    stages: list[tuple[str, dict[str, dict], Callable[[pd.DataFrame], pd.DataFrame]]],
    seeds: tuple[int, ...] = (0,),
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """``compare_presets`` once per stage, the stages' runs labelled and concatenated.

    Args:
        stages: ``(task, arms, label)`` each: the zoo entry the stage starts from, its ``{label: settings}`` arms
            (``compare_presets``'s ``presets``), and ``label(runs) -> runs`` adding the stage's columns.
        seeds: seeds of every arm.
        on_run_end: called after each run with every run so far, labelled (live plots).
        progress: a bar over each stage's runs.

    Returns:
        The labelled runs of every stage, in order.
    """
    done: list[pd.DataFrame] = []
    for task, arms, label in stages:

        def relay(runs: pd.DataFrame, label=label) -> None:
            if on_run_end is not None:
                on_run_end(pd.concat([*done, label(runs)], ignore_index=True))

        done.append(label(compare_presets(arms, seeds=seeds, on_run_end=relay, progress=progress, task=task)))
    return pd.concat(done, ignore_index=True)


def seed_verdict(changes: pd.Series, up: str = "up", down: str = "down") -> str:
    """What the seeds say of an effect: ``up`` (``down``) when at least 3 seeds' ``changes`` are all above (below)
    0, "no clear effect" when they disagree, and "1 seed" or "2 seeds" below 3."""
    n = len(changes)
    if n < 3:
        return f"{n} seed{'s' if n > 1 else ''}"
    if (changes > 0).all():
        return up
    if (changes < 0).all():
        return down
    return "no clear effect"


def final_table(runs: pd.DataFrame, metrics=("acc/pass@1",)) -> pd.DataFrame:
    """Last logged value of each metric per (method, seed), then mean and std over seeds per method."""
    last = runs.groupby(["method", "seed"], sort=False)[list(metrics)].agg(lambda s: s.dropna().iloc[-1])
    return last.groupby("method", sort=False).agg(["mean", "std"])
