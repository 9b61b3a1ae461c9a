"""The priors panel: pick base models and a training reward, Run trains the same recipe on each prior.

``PriorsPanel()`` displays itself in a notebook; ``panel.run()`` does what the Run button does (tests and quick
mode call it) and returns the runs. Every control is read when Run is pressed.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.experiments.priors import PRIORS, REWARD_ARMS, gains_table, priors_study
from rl4lrm.viz.compare import plot_comparison
from rl4lrm.viz.controls import STYLE, int_slider

PRIOR_CURVES = [
    ("acc/pass@1", "held-out pass@1 (verifier)"),
    ("reward/mean", "training reward"),
    ("entropy/mean", "token entropy"),
    ("clip/frac", "clipped fraction"),
]
BASES = (*PRIORS, "countdown-weak", "countdown-strong")


class PriorsPanel:
    """Base models (several), training reward, steps and seed; Run trains one run per base model.

    Args:
        bases: zoo entries selected at first (from ``BASES``).
        reward: training reward at first (a key of ``REWARD_ARMS``).
        steps: training steps at first. seed: seed at first.
        **config: ``TrainConfig`` fields for every run (``eval_every``, ``eval_problems``, ...), over
            ``rl4lrm.experiments.priors.STUDY_CONFIG``.
    """

    def __init__(
        self, bases=("addition-nano", "addition"), reward: str = "true", steps: int = 60, seed: int = 0, **config
    ):
        bad = [b for b in bases if b not in BASES]
        if bad or not bases:
            raise ValueError(f"bases must be a non-empty subset of {BASES}, got {list(bases)}")
        if reward not in REWARD_ARMS:
            raise ValueError(f"reward must be one of {list(REWARD_ARMS)}, got {reward!r}")
        self.config, self.runs = dict(config), None
        self.bases = W.SelectMultiple(
            options=BASES, value=tuple(bases), rows=len(BASES), description="base models", style=STYLE
        )
        self.reward = W.Dropdown(options=list(REWARD_ARMS), value=reward, description="training reward", style=STYLE)
        self.steps = int_slider(steps, 10, 300, 10, description="steps")
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=STYLE)
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        right = W.VBox([self.reward, self.steps, self.seed, W.HBox([self.button, self.status])])
        self.widget = W.VBox([W.HBox([self.bases, right]), self.out])
        self.fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
        self.axes = axes.ravel()
        plt.close(self.fig)  # drawn into the Output widget only

    def _draw(self, runs: pd.DataFrame) -> None:
        title = f"reward: {self.reward.value}; {runs['base'].nunique()} of {len(self.bases.value)} base model(s) done"
        plot_comparison(runs, PRIOR_CURVES, axes=self.axes, title=title)
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)

    def run(self) -> pd.DataFrame:
        """Trains every chosen base model with the chosen reward, steps and seed; returns the runs."""
        if not self.bases.value:
            self.status.value = "<b>choose at least one base model</b>"
            return self.runs
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            self.runs = priors_study(
                self.bases.value,
                (self.reward.value,),
                seeds=(self.seed.value,),
                on_run_end=self._draw,
                progress=False,
                **{"eval_every": max(1, self.steps.value // 5), **self.config, "steps": self.steps.value},
            )
            table = gains_table(self.runs)
            self.status.value = "held-out pass@1: " + ", ".join(
                f"{b} <b>{x:.2f} → {y:.2f}</b>"
                for b, x, y in zip(table["base"], table["base pass@1"], table["pass@1 mean"])
            )
        finally:
            self.button.disabled = False
        return self.runs

    def _ipython_display_(self):
        display(self.widget)
