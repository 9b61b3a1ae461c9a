"""A live training dashboard: widgets for the main knobs, a Run button, curves that grow as it trains.

``TrainingDashboard(task="addition")`` displays itself in a notebook; ``panel.run()`` does exactly
what the button does (tests and quick mode call it), and ``panel.history`` holds the last run.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.presets import PRESETS
from rl4lrm.trainer import Callback, TrainConfig, Trainer
from rl4lrm.viz.controls import int_slider, log_slider
from rl4lrm.viz.plots import CURVES, plot_curves


class _LivePlot(Callback):
    def __init__(self, panel: TrainingDashboard):
        self.panel = panel

    def on_step_end(self, trainer, metrics):
        if trainer.step % self.panel.plot_every == 0 or trainer.step == trainer.config.steps:
            self.panel._draw(trainer.history_frame(), f"step {trainer.step}/{trainer.config.steps}")


class TrainingDashboard:
    """Preset, learning rate, group size, temperature, KL coefficient and steps; Run; live curves.

    Args:
        task: zoo entry to train (``"addition"`` or ``"countdown"``).
        plot_every: redraw the curves every this many steps.
        **defaults: initial values of the controls and any other ``TrainConfig`` field
            (e.g. ``eval_every=5``), passed to every run.
    """

    def __init__(self, task: str = "addition", plot_every: int = 2, **defaults):
        base = TrainConfig.build(task=task, **defaults)
        self.task, self.plot_every, self.history = task, plot_every, None
        self.extra = {
            k: v
            for k, v in defaults.items()
            if k not in ("preset", "lr", "group_size", "temperature", "kl_coef", "steps")
        }
        style = {"description_width": "110px"}
        algo = base.algorithm

        # slider ranges widen to include the given values: a widget must never clamp or round what you passed
        def slider(value, lo, hi, **kw):
            return W.FloatSlider(value=value, min=min(lo, value), max=max(hi, value), style=style, **kw)

        self.controls = {
            "preset": W.Dropdown(options=sorted(PRESETS), value=base.preset, description="preset", style=style),
            "lr": log_slider(base.lr, 1e-5, 10**-1.5, description="learning rate", style=style),
            "group_size": int_slider(base.group_size, 2, 32, description="group size G", style=style),
            "temperature": slider(base.temperature, 0.3, 1.5, step=0.05, description="temperature"),
            "kl_coef": slider(algo.kl_coef, 0.0, 0.5, step=0.01, description="KL coef β"),
            "steps": int_slider(base.steps, 5, 400, 5, description="steps", style=style),
        }
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        self.widget = W.VBox(
            [
                W.HBox([W.VBox(list(self.controls.values())[:3]), W.VBox(list(self.controls.values())[3:])]),
                W.HBox([self.button, self.status]),
                self.out,
            ]
        )
        self.fig, axes = plt.subplots(2, 3, figsize=(12.5, 5.6))
        self.axes = axes.ravel()
        plt.close(self.fig)  # drawn into the Output widget only

    def config(self) -> TrainConfig:
        """The ``TrainConfig`` the controls describe (raises a clear error for bad values)."""
        values = {name: c.value for name, c in self.controls.items()}
        return TrainConfig.build(task=self.task, **values, **self.extra)

    def _draw(self, history: pd.DataFrame, note: str) -> None:
        plot_curves(history, CURVES, axes=self.axes, title=f"{self.controls['preset'].value} on {self.task} — {note}")
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)

    def run(self) -> pd.DataFrame:
        """Trains with the current settings, drawing the curves live; returns the history."""
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            trainer = Trainer(self.config(), callbacks=[_LivePlot(self)], progress=False)
            self.history = trainer.train()
            first, last = self.history["acc/pass@1"].iloc[0], self.history["acc/pass@1"].iloc[-1]
            self.status.value = f"done: held-out pass@1 {first:.2f} → <b>{last:.2f}</b>"
        finally:
            self.button.disabled = False
        return self.history

    def _ipython_display_(self):
        display(self.widget)
