"""Figures for RL for scientific discovery (chapter 17): laws found on data the model never saw.

``plot_discovery`` draws, before and after RL, on the RL laws and on the evaluation laws, the solve rate, the part of
it that is novel (expressions the SFT corpus never showed), the share of laws solved and how often the model recalls
a corpus law instead (always wrong on a novel law), mean and std over seeds. ``plot_law`` puts a law's data next to
the expressions the model wrote for it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from rl4lrm.tasks.discovery import HIDDEN_X, evaluate_at
from rl4lrm.tasks.expression import ExpressionError

METRICS = ("solve rate", "novel solve rate", "laws solved", "recall")
STAGE_COLORS = {"base": "#7f7f7f", "after RL": "#2ca02c"}


def plot_discovery(table: pd.DataFrame, axes=None):
    """Grouped bars, one panel per set of laws (RL laws, evaluation laws): each of ``METRICS`` for the base model and
    after RL, for each reward (hatched: the second reward), with the std over seeds as error bars.

    Args:
        table: ``rl4lrm.experiments.discovery.summary(runs)`` (columns ``reward``, ``laws``, ``stage``, the metrics and
            their ``std``).
        axes: existing axes, one per set of laws.

    Returns:
        The matplotlib figure.
    """
    sets = sorted(dict.fromkeys(table["laws"]), key=lambda laws: laws != "RL laws")  # the searched laws first
    if axes is None:
        _, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 3.4), squeeze=False)
        axes = axes[0]
    first_reward = table.reward.iloc[0]
    for ax, laws in zip(axes, sets):
        rows = [row for _, row in table[table["laws"] == laws].iterrows()]
        width = 0.8 / len(rows)
        for i, row in enumerate(rows):
            means = [row[m] for m in METRICS]
            stds = [row.get(f"{m} std", 0.0) for m in METRICS]
            stds = None if all(pd.isna(v) for v in stds) else [0.0 if pd.isna(v) else v for v in stds]
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(METRICS))]
            label = row["stage"] if table.reward.nunique() == 1 else f"{row['reward']}: {row['stage']}"
            ax.bar(
                xs,
                means,
                width,
                yerr=stds,
                capsize=3 if stds else 0,
                color=STAGE_COLORS.get(row["stage"], "#1f77b4"),
                hatch="" if row["reward"] == first_reward else "//",
                edgecolor="white",
                label=label,
            )
        ax.set(xticks=list(range(len(METRICS))), xticklabels=list(METRICS), ylim=(0, 1.05))
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel("share", fontsize=9)
        ax.set_title(laws, fontsize=10)
        ax.legend(fontsize=7)
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def plot_law(answers: pd.DataFrame, prompt: str, ax=None, top: int = 3):
    """One prompt's data (shown and held-out points) and the ``top`` most frequent expressions sampled for it.

    Args:
        answers: ``rl4lrm.experiments.discovery.sample_laws`` output.
        prompt: one of its prompts, e.g. ``"3:11,4:13,5:15="``.

    Returns:
        The matplotlib figure.
    """
    rows = answers[answers.prompt == prompt]
    if rows.empty:
        raise ValueError(f"prompt {prompt!r} is not in answers; e.g. {list(answers.prompt.unique()[:3])}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    law = rows.law.iloc[0]
    shown = [tuple(map(int, pair.split(":"))) for pair in prompt.rstrip("=").split(",")]
    xs = sorted({x for x, _ in shown} | set(HIDDEN_X))
    ax.scatter(*zip(*shown), color="black", zorder=3, label="shown data")
    held = [(x, evaluate_at(law, x)) for x in HIDDEN_X]
    ax.scatter(*zip(*held), facecolor="white", edgecolor="black", zorder=3, label=f"held-out points of {law}")
    for expr, count in rows.expression.value_counts().head(top).items():
        try:
            ys = [float(evaluate_at(expr, x)) for x in xs]
        except ExpressionError:
            continue
        ok = rows[rows.expression == expr].correct.iloc[0]
        ax.plot(xs, ys, "-" if ok else "--", label=f"{expr}  ({count}/{len(rows)}{', right' if ok else ''})")
    ax.set_xlabel("x", fontsize=9)
    ax.set_ylabel("y", fontsize=9)
    ax.set_title(f"data {prompt.rstrip('=')}: sampled laws", fontsize=10)
    ax.legend(fontsize=7)
    fig = ax.figure
    fig.tight_layout()
    return fig
