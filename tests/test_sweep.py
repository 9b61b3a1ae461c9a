"""Sweeps: the sequential backend, the Ray backend on a local 2-CPU cluster (same histories), and the errors."""

import sys

import pandas as pd
import pytest

from rl4lrm.experiments.compare import compare_presets
from rl4lrm.sweep import BACKENDS, Run, run_sweep
from rl4lrm.trainer import TrainConfig

TINY = dict(
    task="addition",
    steps=2,
    prompts_per_step=2,
    group_size=2,
    eval_problems=4,
    eval_samples=2,
    eval_every=1,
    max_new_tokens=6,
    device="cpu",
)
PRESETS = {"grpo": {"preset": "grpo"}, "dapo sym": {"preset": "dapo", "clip_high": 0.2}}


def _runs(seeds=(0, 1)) -> list[Run]:
    return [
        Run(label, seed, TrainConfig.build(**TINY, **settings, seed=seed))
        for label, settings in PRESETS.items()
        for seed in seeds
    ]


def _without_timing(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if c.startswith("time/")])


def test_sequential_sweep_is_compare_presets_in_the_given_order():
    seen = []
    runs = run_sweep(_runs(), progress=False, on_run_end=lambda df: seen.append(df.groupby(["method", "seed"]).ngroups))
    assert list(runs.drop_duplicates(["method", "seed"])[["method", "seed"]].itertuples(index=False, name=None)) == [
        ("grpo", 0),
        ("grpo", 1),
        ("dapo sym", 0),
        ("dapo sym", 1),
    ]
    assert seen == [1, 2, 3, 4] and len(runs) == 4 * (TINY["steps"] + 1)
    same = compare_presets(PRESETS, seeds=(0, 1), progress=False, **{k: v for k, v in TINY.items()})
    pd.testing.assert_frame_equal(_without_timing(runs), _without_timing(same))


def test_unknown_backend_and_missing_ray_are_explained(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown backend 'dask'.*sequential.*ray"):
        run_sweep(_runs(seeds=(0,)), backend="dask")
    with pytest.raises(ValueError, match="unknown backend"):  # compare_presets passes the backend through
        compare_presets(["grpo"], backend="threads", progress=False, **TINY)
    with pytest.raises(ValueError, match="at least one run"):
        run_sweep([])
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'rl4lrm\[ray\]'"):
        run_sweep(_runs(seeds=(0,)), backend="ray", progress=False)
    assert BACKENDS == ("sequential", "ray")
