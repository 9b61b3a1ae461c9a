"""Figures and the panels of chapter 02: rewards per group, a policy hacking a weak judge, and training on a
reward mix you choose.

``JudgeHackingPanel()`` trains GRPO on ``w · judge + (1 − w) · verifier`` with the weight ``w`` read from its slider
when Run is pressed (``panel.run()`` does the same), and draws what the policy is paid against the verifier.

``RewardMixPanel(task="addition", rewards=("correct", "majority_vote", ...))`` shows one weight slider per
reward; Run draws how each reward of the mix scores the first batch (one group per row), trains GRPO on the
weighted mix, and adds a row to a table that compares every mix tried so far by held-out pass@1, which the
task's verifier always measures. ``panel.run()`` does what the button does.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from matplotlib.ticker import MaxNLocator

from rl4lrm.experiments.judge_hacking import hacking_summary, judge_hacking
from rl4lrm.rewards import REWARDS
from rl4lrm.trainer import Callback, TrainConfig, Trainer
from rl4lrm.viz.controls import int_slider
from rl4lrm.viz.plots import finish_panels

MIX_CURVES = [
    ("reward/mean", "train reward (the mix)"),
    ("reward/correct", "train reward: verifier"),
    ("acc/pass@1", "held-out pass@1 (verifier)"),
]


def plot_group_rewards(parts: dict[str, torch.Tensor], group_size: int, groups: int = 8, title: str | None = None):
    """One heat map per reward: rows are prompts (groups), columns their G samples.

    Args:
        parts: ``{reward name: (N,) values}`` for the same N = B*G completions.
        group_size: G.
        groups: how many groups to show.

    Returns:
        The matplotlib figure.
    """
    fig, axes = plt.subplots(1, len(parts), figsize=(2.2 + 2.1 * len(parts), 0.45 * groups + 1.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], parts.items()):
        grid = values.float().cpu().view(-1, group_size)[:groups]  # (groups, G)
        image = ax.imshow(grid, cmap="viridis", aspect="auto")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("sample", fontsize=8)
        ax.set_yticks(range(len(grid)))
        ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=ax, fraction=0.05)
    axes[0][0].set_ylabel("prompt", fontsize=8)
    fig.suptitle(title or "rewards of the same completions, one group per row", fontsize=10)
    fig.tight_layout()
    return fig


HACKING_CURVES = [
    ("reward/judge", "judge reward (optimised)"),
    ("reward/correct", "verifier on the same samples"),
    ("hack/shortcut_rate", "answers ending in 7"),
]


def plot_judge_hacking(history: pd.DataFrame, judge_weight: float, ax=None):
    """The judge's reward, the verifier on the same samples and the shortcut's rate against step (5-step means).

    Args:
        history: a ``judge_hacking`` run.
        judge_weight: its ``w``, for the title.
        ax: axes to draw into (default: a new figure).

    Returns:
        The matplotlib figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3))
    ax.clear()
    rows = history[history["step"] > 0]
    for col, label in HACKING_CURVES:
        ax.plot(rows["step"], rows[col].rolling(5, min_periods=1).mean(), label=label)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"GRPO on w·weak judge + (1−w)·verifier, w = {judge_weight:g}", fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


class JudgeHackingPanel:
    """The judge weight ``w`` and the steps; Run trains the addition model with GRPO on
    ``w · judge + (1 − w) · verifier`` and shows the curves and the before/after numbers.

    The controls are read when Run is pressed (or ``run()`` called), never when the panel is built, so moving
    the slider and pressing Run trains with the new weight.

    Args:
        judge: a judge name (``rl4lrm.rewards.judges.JUDGES``).
        judge_weight: the slider's initial ``w`` in [0, 1].
        steps: the steps slider's initial value.
        **study: other ``judge_hacking`` arguments for every run (``eval_every``, ``eval_problems``, ...).
    """

    def __init__(self, judge: str = "judge-addition-weak", judge_weight: float = 1.0, steps: int = 60, **study):
        if not 0 <= judge_weight <= 1:
            raise ValueError(f"judge_weight must be in [0, 1], got {judge_weight}")
        self.judge, self.study = judge, dict(study)
        self.history: pd.DataFrame | None = None
        self.summary: dict[str, float] | None = None
        self.judge_weight: float | None = None  # the last run's w: the slider's value when Run was pressed
        style = {"description_width": "110px"}
        self.weight = W.FloatSlider(
            value=judge_weight,
            min=0.0,
            max=1.0,
            step=0.1,
            description="judge weight w",
            style=style,
            layout=W.Layout(width="420px"),
        )
        self.steps = int_slider(steps, 5, 200, 5, description="steps", style=style, layout=W.Layout(width="420px"))
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status, self.out = W.HTML(), W.Output()
        self.widget = W.VBox([self.weight, self.steps, W.HBox([self.button, self.status]), self.out])
        self.fig, self.ax = plt.subplots(figsize=(7.5, 3))
        plt.close(self.fig)  # drawn into the Output widget only

    def run(self) -> pd.DataFrame:
        """Trains with the slider values of now, draws the curves; returns the history."""
        w, steps = self.weight.value, self.steps.value
        self.button.disabled = True
        self.status.value = f"<i>training {steps} steps with w = {w:g}…</i>"
        try:
            self.history = judge_hacking(self.judge, judge_weight=w, steps=steps, **self.study)
        finally:
            self.button.disabled = False
        self.judge_weight = w
        self.summary = hacking_summary(self.history)
        s = self.summary
        self.status.value = (
            f"w = {w:g}: held-out pass@1 {s['acc/pass@1 before']:.2f} → <b>{s['acc/pass@1 after']:.2f}</b>, "
            f"judge reward {s['reward/judge first']:.2f} → {s['reward/judge last']:.2f}"
        )
        plot_judge_hacking(self.history, w, ax=self.ax)
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)
        return self.history

    def _ipython_display_(self):
        display(self.widget)


class _Live(Callback):
    def __init__(self, panel: RewardMixPanel):
        self.panel = panel

    def on_step_end(self, trainer, metrics):
        if trainer.step % 5 == 0 or trainer.step == trainer.config.steps:
            self.panel._draw(trainer.history_frame())


class RewardMixPanel:
    """Weight sliders for a few rewards, Run, live curves, and a table of every mix tried.

    Args:
        task: zoo entry to train.
        rewards: names (``rl4lrm.rewards.REWARDS``) that get a slider, or ``{name: params}`` for rewards
            that need parameters (e.g. a judge model).
        weights: initial weights (missing names start at 0).
        **config: other ``TrainConfig`` fields for every run (``steps``, ``eval_every``, ...).
    """

    def __init__(
        self,
        task: str = "addition",
        rewards=("correct", "majority_vote", "self_certainty"),
        weights: dict[str, float] | None = None,
        **config,
    ):
        self.params = dict(rewards) if isinstance(rewards, dict) else {name: {} for name in rewards}
        for name in self.params:
            REWARDS.get(name)  # unknown names fail here with the known ones
        weights = {"correct": 1.0} if weights is None else dict(weights)
        unknown = sorted(set(weights) - set(self.params))
        if unknown:
            raise ValueError(f"weights for rewards without a slider: {unknown}; sliders: {list(self.params)}")
        self.task, self.config = task, dict(config)
        steps = self.config.pop("steps", 40)
        style = {"description_width": "120px"}
        self.sliders = {
            name: W.FloatSlider(
                value=weights.get(name, 0.0),
                min=0.0,
                max=max(1.0, weights.get(name, 0.0)),
                step=0.05,
                description=name,
                style=style,
            )
            for name in self.params
        }
        self.steps = int_slider(steps, 5, 200, 5, description="steps", style=style)
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status, self.groups_out, self.out, self.table_out = W.HTML(), W.Output(), W.Output(), W.Output()
        self.widget = W.VBox(
            [
                W.HBox([W.VBox(list(self.sliders.values())), W.VBox([self.steps, self.button, self.status])]),
                self.groups_out,
                self.out,
                self.table_out,
            ]
        )
        self.fig, axes = plt.subplots(1, 3, figsize=(12.5, 2.9))
        self.axes = axes.ravel()
        plt.close(self.fig)
        self.results: list[dict] = []
        self.history: pd.DataFrame | None = None
        self.groups_fig = None  # the last run's per-group reward heat maps

    def mix(self) -> dict:
        """The reward mix the sliders describe: ``{name: (weight, params)}`` for every nonzero weight."""
        mix = {name: (s.value, self.params[name]) for name, s in self.sliders.items() if s.value != 0}
        if not mix:
            raise ValueError("every weight is 0: give at least one reward a weight")
        return mix

    def _label(self) -> str:
        return " + ".join(f"{w:g}·{n}" for n, (w, _) in self.mix().items())

    def _draw(self, history: pd.DataFrame) -> None:
        for ax, (metric, _) in zip(self.axes, MIX_CURVES):
            ax.clear()
            points = history[["step", metric]].dropna()
            ax.plot(points["step"], points[metric], marker="o" if len(points) < 15 else None, ms=3)
        finish_panels(self.axes, MIX_CURVES, f"{self._label()} on {self.task}", legend=False)
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)

    def run(self) -> pd.DataFrame:
        """Trains on the current mix (live curves), records the result and returns the history."""
        config = TrainConfig.build(task=self.task, rewards=self.mix(), steps=self.steps.value, **self.config)
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            trainer = Trainer(config, callbacks=[_Live(self)], progress=False)
            first_batch = trainer.sampler.sample(
                trainer.sampling_context()
            ).scores  # what the first step will see (same seed)
            self.groups_fig = plot_group_rewards(
                {**first_batch.parts, "verifier": first_batch.correct},
                config.group_size,
                title=f"{self._label()}: the first batch, one group per row",
            )
            plt.close(self.groups_fig)
            with self.groups_out:
                self.groups_out.clear_output(wait=True)
                display(self.groups_fig)
            self.history = trainer.train()
        finally:
            self.button.disabled = False
        rows = self.history[self.history["step"] > 0]
        first, last = self.history["acc/pass@1"].iloc[0], self.history["acc/pass@1"].iloc[-1]
        self.results.append(
            {
                "reward mix": self._label(),
                "steps": config.steps,
                "held-out pass@1 before": first,
                "after": last,
                "train reward (last 5)": rows["reward/mean"].tail(5).mean(),
                "train verifier (last 5)": rows["reward/correct"].tail(5).mean(),
            }
        )
        self.status.value = f"held-out pass@1 {first:.2f} → <b>{last:.2f}</b>"
        with self.table_out:
            self.table_out.clear_output(wait=True)
            display(pd.DataFrame(self.results).round(3))
        return self.history

    def _ipython_display_(self):
        display(self.widget)
