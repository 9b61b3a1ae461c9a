"""A figure and a panel for continual RL (notebook 17): every part's accuracy after every stage, per remedy.

``plot_continual`` draws one axis per part (a row per learning rate when the table holds several): accuracy before
training and after each stage, a line per remedy, the seeds' mean with their range shaded, and the stages that
trained that part marked. ``ContinualPanel`` runs the stages with the remedy, order and step size chosen.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.experiments.continual import BASE, REMEDIES, continual_run, forgetting
from rl4lrm.models.zoo import ZOO
from rl4lrm.viz.controls import STYLE, WIDTH, int_slider, log_slider

REMEDY_COLORS = {"none": "#d62728", "replay": "#2ca02c", "KL anchor": "#1f77b4"}


def plot_continual(table: pd.DataFrame, axes=None, title: str = ""):
    """Accuracy of every part after every stage: an axis per part (a row per learning rate), a line per remedy.

    Args:
        table: ``continual_run`` tables, concatenated (any remedies, learning rates and seeds).
        axes: a (learning rates, parts) grid of axes to draw on; default a new figure.
    """
    lrs, parts = sorted(table["lr"].unique()), list(dict.fromkeys(table["part"]))
    if axes is None:
        _, axes = plt.subplots(len(lrs), len(parts), figsize=(4 * len(parts), 3 * len(lrs)), squeeze=False)
    stages = table.drop_duplicates("stage").sort_values("stage")
    labels = ["base" if s == 0 else f"after {a}" for s, a in zip(stages["stage"], stages["after"])]
    for row, lr in zip(axes, lrs):
        for ax, part in zip(row, parts):
            ax.clear()
            rows = table[(table["lr"] == lr) & (table["part"] == part)]
            for remedy, runs in rows.groupby("remedy", sort=False):
                acc = runs.groupby("stage")["accuracy"]
                mean, lo, hi = acc.mean(), acc.min(), acc.max()
                color = REMEDY_COLORS.get(remedy)
                ax.plot(mean.index, mean.values, marker="o", color=color, label=remedy)
                ax.fill_between(mean.index, lo.values, hi.values, color=color, alpha=0.15)
            for stage in stages[stages["after"] == part]["stage"]:
                ax.axvspan(stage - 0.5, stage + 0.5, color="#ffd54f", alpha=0.25, lw=0)
            ax.set_xticks(stages["stage"], labels, fontsize=8)
            ax.set_title(f"{part}  (lr {lr:g})", fontsize=10)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
        row[0].set_ylabel("held-out accuracy")
    axes[0][-1].legend(fontsize=8, title="remedy", title_fontsize=8)
    fig = axes[0][0].figure
    fig.suptitle(title or "continual RL: each part after each stage (shaded: the stage that trained it)", fontsize=11)
    fig.tight_layout()
    return fig


class ContinualPanel:
    """Two or more RL stages on the ``generalist``: choose the order, remedy, step size and steps; Run trains every
    stage, plots each part after each stage and tabulates what changed (``forgetting``).

    Args:
        stages, remedy, steps, lr: the controls' first values.
        eval_problems: held-out problems per part for each measurement.
        **train_config: further ``TrainConfig`` fields for every stage (``prompts_per_step``, ``group_size``, ...).
    """

    def __init__(self, stages=("add3", "chain"), remedy="none", steps=20, lr=1e-3, eval_problems=32, **train_config):
        parts = list(ZOO[BASE].task_kwargs["parts"])
        self.eval_problems, self.train_config, self.table = eval_problems, train_config, None
        self.order = W.Dropdown(
            options=[(" → ".join(o), o) for o in _orders(parts)],
            value=tuple(stages),
            description="stages",
            style=STYLE,
            layout=W.Layout(width=WIDTH),
        )
        self.remedy = W.Dropdown(options=list(REMEDIES), value=remedy, description="remedy", style=STYLE)
        self.steps = int_slider(steps, 5, 80, step=5, description="steps per stage")
        self.lr = log_slider(lr, 1e-4, 3e-3, description="learning rate")
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        controls = W.VBox([self.order, self.remedy, self.steps, self.lr])
        self.widget = W.VBox([controls, W.HBox([self.button, self.status]), self.out])

    def run(self) -> pd.DataFrame:
        """Trains the stages with the controls' settings, draws them; returns ``continual_run``'s table."""
        self.button.disabled = True
        try:
            self.table = continual_run(
                self.remedy.value,
                self.order.value,
                self.steps.value,
                eval_problems=self.eval_problems,
                on_stage=lambda message: setattr(self.status, "value", f"<i>{message}…</i>"),
                **{**self.train_config, "lr": self.lr.value},
            )
            change = forgetting(self.table)
            with self.out:
                self.out.clear_output(wait=True)
                plot_continual(self.table)
                plt.show()
                display(change[["part", "role", "before", "final", "change"]].round(3))
            earlier = change[change["role"] == "earlier stage"]["change"]
            self.status.value = (
                f"done: earlier stages' parts changed by {earlier.mean():+.3f}"
                if len(earlier)
                else "done (one stage: nothing earlier to forget)"
            )
        finally:
            self.button.disabled = False
        return self.table

    def _ipython_display_(self):
        display(self.widget)


def _orders(parts: list[str]) -> list[tuple[str, ...]]:
    """Every ordered pair of distinct parts, and the three parts in the generalist's order and reversed."""
    pairs = [(a, b) for a in parts for b in parts if a != b]
    return [*pairs, tuple(parts), tuple(reversed(parts))]
