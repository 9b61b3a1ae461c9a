"""Figures for memory-based RL (chapter 17): RL on a fixed pool with and without an episodic memory of solutions.

``plot_memory`` draws, per arm over training steps: held-out pass@1, the share of the pool ever solved by a fresh
sample, and the share of trained groups with no reward contrast (smoothed), each the mean over seeds with the
seeds' range shaded. It reads ``rl4lrm.experiments.memory.training_curves(runs)`` or the benchmark's
``benchmarks/results/memory.curves.csv``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

COLORS = {"flat": "#7f7f7f", "memory": "#d62728"}
PANELS = (
    ("acc/pass@1", "held-out pass@1"),
    ("memory/pool_solved", "share of the pool ever solved"),
    ("reward/frac_zero_std", "groups with no reward contrast"),
)


def plot_memory(curves: pd.DataFrame, smooth: int = 5, axes=None):
    """Held-out pass@1, the pool ever solved and the zero-signal share of trained groups, per arm over steps.

    Args:
        curves: one row per (arm, seed, step) with ``arm``, ``seed``, ``step`` and the columns of ``PANELS``.
        smooth: rolling-mean window (steps) of the per-step zero-signal share.
        axes: three existing axes to draw into.

    Returns:
        The matplotlib figure.
    """
    missing = {"arm", "seed", "step", *(c for c, _ in PANELS)} - set(curves.columns)
    if missing:
        raise ValueError(f"plot_memory needs the columns {sorted(missing)}; pass training_curves(runs)")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, (column, label) in zip(axes, PANELS):
        for i, (arm, df) in enumerate(curves.groupby("arm", sort=False)):
            per_seed = df.dropna(subset=[column]).pivot_table(index="step", columns="seed", values=column)
            if column == "reward/frac_zero_std":
                per_seed = per_seed.rolling(smooth, min_periods=1).mean()
            color = COLORS.get(arm, f"C{i}")
            mean = per_seed.mean(axis=1)
            ax.plot(mean.index, mean, color=color, marker="o" if column == "acc/pass@1" else None, ms=3, label=arm)
            if per_seed.shape[1] > 1:
                ax.fill_between(per_seed.index, per_seed.min(axis=1), per_seed.max(axis=1), color=color, alpha=0.15)
        ax.set_xlabel("RL step", fontsize=9)
        ax.set_title(label + (f" ({smooth}-step mean)" if column == "reward/frac_zero_std" else ""), fontsize=10)
        ax.grid(alpha=0.3)
    seeds = curves["seed"].nunique()
    axes[0].legend(fontsize=8, title=f"mean of {seeds} seed{'s' * (seeds > 1)}", title_fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return fig
