"""Figures and a panel for RL on code with unit-test rewards (chapter 11).

``plot_run`` draws a run's training curves: the reward it trained on, true correctness in the sandbox
(``reward/correct``) and what the naive harness reports (``reward/naive_unit_tests``); a gap between the last two is
reward hacking. ``plot_before_after`` compares runs' held-out numbers. ``CodingPanel`` picks the training reward and
the steps, and Run (or ``panel.run()``) trains from the zoo's ``code`` model and draws both.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from rl4lrm.experiments.coding import REWARD_CHOICES, CodeRun, train_code
from rl4lrm.viz.controls import STYLE, RunPanel, int_slider

CURVES = {
    "reward/correct": ("all tests pass (sandbox)", "#2ca02c"),
    "reward/unit_tests_partial": ("tests passed (sandbox)", "#1f77b4"),
    "reward/naive_unit_tests": ("naive harness says pass", "#d62728"),
}


def plot_run(run: CodeRun, ax=None, smooth: int = 3):
    """A run's batch-mean curves (``CURVES``, rolling mean over ``smooth`` steps) over GRPO steps."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    h = run.history
    for column, (label, color) in CURVES.items():
        if column in h:
            ax.plot(h["step"], h[column].rolling(smooth, min_periods=1).mean(), color=color, label=label)
    ax.set(xlabel="GRPO step", ylabel="share of samples", ylim=(-0.02, 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"trained on {run.reward} (seed {run.seed})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax.figure


def plot_before_after(table: pd.DataFrame, ax=None, metrics=("pass@1", "naive pass@1", "hack rate")):
    """Grouped bars of held-out ``metrics`` before and after RL, one group per training reward (mean over seeds).

    Args:
        table: ``rl4lrm.experiments.coding.summary(runs)``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    means = table.groupby("reward", sort=False).mean(numeric_only=True)
    labels = [f"{m} {stage}" for m in metrics for stage in ("before", "after") if f"{m} {stage}" in means]
    width = 0.8 / len(means)
    for i, (reward, row) in enumerate(means.iterrows()):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(labels))]
        ax.bar(xs, [row[c] for c in labels], width, label=reward)
    ax.set(xticks=list(range(len(labels))), ylim=(0, 1.05), ylabel="share (held-out)")
    ax.set_xticklabels(labels, fontsize=7, rotation=20)
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


class CodingPanel(RunPanel):
    """Training reward (binary, partial, or the unsafe naive harness), GRPO steps and seed; Run trains from the zoo's
    ``code`` model and shows the curves and the held-out pass@1 before and after.

    Args:
        reward, steps, seed: the initial settings.
        eval_problems, eval_samples: size of the held-out evaluation.
    """

    def __init__(
        self, reward: str = "unit_tests_all", steps: int = 20, seed: int = 0, eval_problems=48, eval_samples=2
    ):
        self.eval_problems, self.eval_samples, self.result = eval_problems, eval_samples, None
        self.layout(
            {
                "reward": W.Dropdown(
                    options=list(REWARD_CHOICES), value=reward, description="training reward", style=STYLE
                ),
                "steps": int_slider(steps, 5, 80, 5, description="GRPO steps"),
                "seed": int_slider(seed, 0, 9, 1, description="seed"),
            }
        )

    def run(self) -> CodeRun:
        """Trains with the current settings and shows the result; returns the ``CodeRun``."""
        with self.busy("training…"):
            s = self.settings()
            run = train_code(
                s["reward"], s["steps"], s["seed"], eval_problems=self.eval_problems, eval_samples=self.eval_samples
            )
            self.result = run
            self.status.value = (
                f"held-out pass@1 (sandbox) {run.before['pass@1']:.2f} → <b>{run.after['pass@1']:.2f}</b>; "
                f"naive harness {run.before['naive pass@1']:.2f} → {run.after['naive pass@1']:.2f}; "
                f"{run.wall_s:.0f} s, {run.programs_per_s:.0f} sandbox programs/s"
            )
            fig = plot_run(run)
            plt.close(fig)
            self.show(fig)
        return self.result
