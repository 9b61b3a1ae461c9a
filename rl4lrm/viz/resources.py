"""Figures of training resources and infrastructure (notebook 10): the curation funnel of a static corpus.

``plot_curation_funnel`` draws ``rl4lrm.corpus.curate``'s counts: one bar per stage, the rows a step dropped
stacked on top of what it kept, so the eye follows the corpus shrinking step by step.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

DROP_COLOR, KEEP_COLOR = "#d62728", "#1f77b4"


def plot_curation_funnel(counts: pd.DataFrame, ax=None, title: str | None = None):
    """The corpus before curation and after each step, with what each step dropped.

    Args:
        counts: ``Curated.counts``: one row per step with ``step``, ``before``, ``dropped`` and ``after``.
        ax: an existing axis to draw into.
        title: the axis title (a default names the kept share).

    Returns:
        The matplotlib figure.

    Raises:
        ValueError: when ``counts`` has no rows (no curation step ran) or lacks a column.
    """
    missing = {"step", "before", "dropped", "after"} - set(counts.columns)
    if missing or counts.empty:
        raise ValueError(
            f"counts needs one row per curation step with columns step, before, dropped, after; "
            f"got {len(counts)} rows{f', missing {sorted(missing)}' if missing else ''}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    labels = ["corpus", *counts["step"]]
    kept = [int(counts["before"].iloc[0]), *counts["after"].astype(int)]
    dropped = [0, *counts["dropped"].astype(int)]
    ax.bar(labels, kept, color=KEEP_COLOR, label="kept")
    ax.bar(labels, dropped, bottom=kept, color=DROP_COLOR, alpha=0.6, label="dropped by this step")
    for x, (k, d) in enumerate(zip(kept, dropped)):
        ax.text(x, k / 2, str(k), ha="center", va="center", color="white", fontsize=9, fontweight="bold")
        if d:
            ax.text(x, k + d / 2, f"−{d}", ha="center", va="center", fontsize=9)
    share = kept[-1] / kept[0] if kept[0] else 0.0
    ax.set_title(title or f"curation funnel: {kept[-1]} of {kept[0]} rows kept ({share:.0%})", fontsize=10)
    ax.set_ylabel("rows", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return ax.figure
