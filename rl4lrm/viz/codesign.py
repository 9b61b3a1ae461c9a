"""Figures for architecture-algorithm co-design: the same GRPO run from bases of the same size and different shape.

``plot_codesign`` draws, for one learning rate, the training curves of every architecture (mean over seeds with a
±1 std band: held-out pass@1, KL to the base, token entropy, gradient norm) and, over every learning rate, bars of
the gain and of the largest drift (``rl4lrm.experiments.codesign.stability_table``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from rl4lrm.experiments.codesign import stability_table
from rl4lrm.viz.compare import plot_comparison

CODESIGN_CURVES = [
    ("acc/pass@1", "held-out pass@1"),
    ("kl/k3", "KL to the base (k3)"),
    ("entropy/mean", "token entropy"),
    ("grad/norm", "gradient norm (before clipping)"),
]


def _bars(ax, table: pd.DataFrame, metric: str, ylabel: str) -> None:
    bases = list(dict.fromkeys(table["base"]))
    lrs = sorted(table["lr"].unique())
    width = 0.8 / len(lrs)
    for j, lr in enumerate(lrs):
        rows = table[table["lr"] == lr].set_index("base").reindex(bases)
        xs = [i + (j - (len(lrs) - 1) / 2) * width for i in range(len(bases))]
        mean, std = rows[f"{metric} mean"], rows[f"{metric} std"]
        below = std if metric == "gain" else std.clip(upper=mean)  # a KL's error bar stops at 0
        ax.bar(xs, mean, width, yerr=[below, std], capsize=3, label=f"lr {lr:g}")
        if metric == "gain" and "collapse rate" in rows:
            for x, rate in zip(xs, rows["collapse rate"]):
                if rate > 0:  # along the top of the panel, clear of the bars and their error bars
                    ax.text(
                        x,
                        0.97,
                        f"{rate:.0%}\ncollapsed",
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        va="top",
                        fontsize=7,
                        color="C3",
                    )
    if metric == "gain":
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.25 * (high - low))  # room for the collapse notes above the bars
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(bases)), [b.replace("addition-", "") for b in bases], fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)


def plot_codesign(runs: pd.DataFrame, lr: float | None = None, title: str | None = None):
    """Curves per architecture at one learning rate, and gain and drift bars over every learning rate.

    Args:
        runs: ``rl4lrm.experiments.codesign.codesign_study``'s DataFrame.
        lr: the learning rate whose curves to draw (default: the largest in ``runs``).
        title: figure title.

    Returns:
        The matplotlib figure: four curve panels, then the gain (points, mean ± std over seeds, with the share
        of seeds that collapsed written on the bar) and the largest KL to the base.
    """
    lrs = sorted(runs["lr"].unique())
    lr = lrs[-1] if lr is None else lr
    if lr not in lrs:
        raise ValueError(f"lr={lr} was not run; runs has {lrs}")
    fig, axes = plt.subplots(2, 3, figsize=(12.6, 5.8))
    axes = axes.ravel()
    curve_axes = [axes[0], axes[1], axes[3], axes[4]]
    at_lr = runs[runs["lr"] == lr].assign(method=lambda df: df["base"])
    plot_comparison(at_lr, CODESIGN_CURVES, axes=curve_axes)
    for ax in curve_axes:
        ax.set_title(f"{ax.get_title()}, lr {lr:g}", fontsize=10)
    table = stability_table(runs)
    _bars(axes[2], table, "gain", "pass@1 gain (points)")
    axes[2].set_title("gain over the base", fontsize=10)
    _bars(axes[5], table, "max kl", "largest kl/k3 to the base")
    axes[5].set_title("drift: the largest KL of the run", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
