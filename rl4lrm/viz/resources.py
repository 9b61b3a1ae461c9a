"""Figures of training resources and infrastructure (notebook 10): a corpus's curation funnel, an async run's timeline.

``plot_curation_funnel`` draws ``rl4lrm.corpus.curate``'s counts: one bar per stage, the rows a step dropped
stacked on top of what it kept, so the eye follows the corpus shrinking step by step. ``plot_async_timeline`` draws
``rl4lrm.async_rl.AsyncTrainer.timeline_frame()``: the producer's and the learner's intervals on two lanes, so the
synchronous loop's idle halves and the asynchronous overlap show at a glance.
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


def plot_async_timeline(timeline: pd.DataFrame, ax=None, title: str | None = None, steps: int | None = None):
    """Who waits on whom: the producer's sampling and the learner's updates on two lanes, against wall time.

    Args:
        timeline: ``AsyncTrainer.timeline_frame()``: per step ``step``, ``version``, ``produce_start``,
            ``produce_end``, ``wait_start``, ``learn_start`` and ``learn_end`` (s since the run started).
        ax: an existing axis to draw into.
        title: the axis title.
        steps: draw only the first ``steps`` steps (None: all).

    Returns:
        The matplotlib figure. Each bar is labelled with its step; a sampling bar also with the policy version that
        sampled it. Grey hatching on the learner's lane is time it waited for a batch; the gaps on the producer's
        lane are time it was held back by the staleness bound.
    """
    needed = {"step", "version", "produce_start", "produce_end", "wait_start", "learn_start", "learn_end"}
    if missing := needed - set(timeline.columns):
        raise ValueError(f"timeline lacks columns {sorted(missing)}; pass AsyncTrainer.timeline_frame()")
    rows = timeline if steps is None else timeline.iloc[:steps]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.4))
    colors = plt.get_cmap("tab10")
    for _, r in rows.iterrows():
        color = colors(int(r["step"]) % 10)
        ax.broken_barh([(r["produce_start"], r["produce_end"] - r["produce_start"])], (1.1, 0.8), color=color)
        ax.broken_barh([(r["learn_start"], r["learn_end"] - r["learn_start"])], (0.1, 0.8), color=color)
        if r["learn_start"] > r["wait_start"]:
            ax.broken_barh(
                [(r["wait_start"], r["learn_start"] - r["wait_start"])], (0.1, 0.8), color="0.85", hatch="///"
            )
        ax.text(
            (r["produce_start"] + r["produce_end"]) / 2,
            1.5,
            f"{int(r['step'])}·v{int(r['version'])}",
            ha="center",
            va="center",
            fontsize=7,
        )
        ax.text((r["learn_start"] + r["learn_end"]) / 2, 0.5, str(int(r["step"])), ha="center", va="center", fontsize=7)
    ax.set_yticks([0.5, 1.5], ["learner", "producer"])
    ax.set_xlabel("wall time (s)", fontsize=9)
    ax.set_ylim(0, 2)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "sampling (step·version) and learning (step); hatched: the learner waits", fontsize=10)
    return ax.figure
