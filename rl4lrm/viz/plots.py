"""Matplotlib figures of training runs (only notebooks, the CLI and the book import ``viz``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

# (metric, panel title) of the standard dashboard, in reading order
CURVES = [
    ("reward/mean", "train reward"),
    ("acc/pass@1", "held-out pass@1"),
    ("length/mean", "completion length (tokens)"),
    ("kl/k3", "KL to reference (k3)"),
    ("entropy/mean", "token entropy"),
    ("reward/frac_zero_std", "groups with zero reward variance"),
]


def plot_curves(history: pd.DataFrame | dict[str, pd.DataFrame], curves=CURVES, axes=None, title: str | None = None):
    """Plots each metric of ``curves`` against step, one panel per metric.

    Args:
        history: one run's DataFrame, or ``{label: DataFrame}`` to overlay runs.
        curves: ``(metric, title)`` pairs; metrics a run lacks are skipped.
        axes: existing axes to draw into (as many as curves), e.g. for a live dashboard.

    Returns:
        The matplotlib figure.
    """
    runs = history if isinstance(history, dict) else {None: history}
    axes = panel_grid(len(curves)) if axes is None else axes
    for ax, (metric, _) in zip(axes, curves):
        ax.clear()
        for name, df in runs.items():
            if metric in df:
                points = df[["step", metric]].dropna()
                ax.plot(points["step"], points[metric], marker="o" if len(points) < 15 else None, ms=3, label=name)
    return finish_panels(axes, curves, title, legend=any(name is not None for name in runs))


def panel_grid(n: int, cols: int = 3):
    """A grid of axes for ``n`` metric panels, three per row; returns the flat array of axes."""
    rows = -(-n // cols)
    _, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    return axes.ravel()


def finish_panels(axes, curves, title: str | None, legend: bool):
    """Titles, grid and small ticks on each metric panel, unused panels hidden; returns the figure. The legend
    goes into the first unused panel of the grid, where it hides no curve, or onto the first panel if none is
    spare."""
    for ax, (_, label) in zip(axes, curves):
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole: no ticks at 1.5, 2.5, ...
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    spare = axes[len(curves) :]
    for ax in spare:
        ax.axis("off")
    if legend:
        handles, labels = max(
            (ax.get_legend_handles_labels() for ax in axes[: len(curves)]), key=lambda h: len(h[1]), default=([], [])
        )
        if len(spare):
            spare[0].legend(handles, labels, loc="upper left", fontsize=9, frameon=False)
        else:
            axes[0].legend(handles, labels, fontsize=8)
    fig = axes[0].figure
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
