"""Figures for model-based RL with a learned verifier (notebook 17): planning with the model, and exploiting it.

``plot_proxy_vs_true`` draws, per training mode, the learned model's reward (the proxy being optimised) and the
verifier's verdict on the same samples over the steps: overoptimisation (Gao et al., 2022, arXiv:2210.10760) is the
space between them. ``plot_best_of_n`` draws best-of-n accuracy against n for a random pick, the learned model and
the verifier as an oracle (Cobbe et al., 2021, arXiv:2110.14168).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from rl4lrm.viz.process_outcome import plot_selection

COLORS = {"verifier": "#2ca02c", "fixed": "#d62728", "dyna": "#1f77b4"}
PICKERS = ["random", "learned", "oracle"]


def _smooth(series: pd.Series, window: int) -> pd.Series:
    return series.rolling(window, min_periods=1).mean()


def plot_proxy_vs_true(
    curves: pd.DataFrame,
    window: int = 5,
    ax=None,
    title: str = "the learned model's reward (dashed) vs the true reward",
):
    """Proxy reward (dashed) and true reward (solid) over the steps, one color per mode, averaged over seeds.

    Args:
        curves: rows with ``mode``, ``step``, ``reward/correct`` and, for learned-reward modes,
            ``reward/learned_verifier`` (``model_based_run`` histories concatenated, or the benchmark's curves).
        window: steps of the moving average.
        title: the panel's title (it describes the run, so it is the caller's to state a finding).

    Returns:
        The matplotlib figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    rows = curves.dropna(subset=["reward/correct"])
    for mode, df in rows.groupby("mode", sort=False):
        mean = df.groupby("step").mean(numeric_only=True)
        color = COLORS.get(mode)
        ax.plot(mean.index, _smooth(mean["reward/correct"], window), color=color, label=f"{mode}: true")
        if "reward/learned_verifier" in mean and mean["reward/learned_verifier"].notna().any():
            proxy = _smooth(mean["reward/learned_verifier"], window)
            ax.plot(mean.index, proxy, color=color, ls="--", label=f"{mode}: learned model's reward")
    ax.set(xlabel="RL step", ylabel="reward on the step's samples", ylim=(0, 1))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return ax.figure


def plot_best_of_n(rerank: pd.DataFrame, ax=None, title: str = "best-of-n on held-out problems"):
    """Best-of-n accuracy against n for each picker (random, learned model, oracle), mean ± std over seeds, drawn
    by chapter 09's ``plot_selection``.

    Args:
        rerank: ``rerank_curve`` output (columns ``n``, ``random``, ``learned``, ``oracle``), possibly several seeds.

    Returns:
        The matplotlib figure.
    """
    keys = [c for c in ("n", "seed", "view") if c in rerank]
    long = rerank.melt(id_vars=keys, value_vars=PICKERS, var_name="method", value_name="accuracy")
    return plot_selection(long.rename(columns={"n": "N"}), ax=ax, title=title)
