"""The tricks panel: pick a base model and a set of tricks, Run trains that recipe next to the baseline.

``TricksPanel()`` displays itself in a notebook; ``panel.run()`` does what the Run button does (tests and
quick mode call it) and returns the runs. Every control is read when Run is pressed.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.experiments.tricks import NORMALISATIONS, final_pass_at_1, recipe, recipe_label, tricks_study
from rl4lrm.viz.compare import plot_comparison
from rl4lrm.viz.controls import STYLE, int_slider

TRICK_CURVES = [
    ("acc/pass@1", "held-out pass@1"),
    ("reward/mean", "train reward"),
    ("entropy/mean", "token entropy"),
    ("clip/frac", "clipped fraction"),
    ("length/frac_truncated", "truncated fraction"),
    ("adv/abs_max", "largest |advantage|"),
]
BASES = ("countdown-weak", "countdown", "countdown-strong")


class TricksPanel:
    """Base model, advantage normalisation, four tricks as toggles, steps and seed; Run trains the recipe.

    Args:
        base: zoo entry selected at first (one of ``BASES``).
        steps: training steps at first.
        seed: seed at first.
        **config: ``TrainConfig`` fields for every run (``eval_every``, ``eval_problems``, ...), over
            ``rl4lrm.experiments.tricks.STUDY_CONFIG``.
    """

    def __init__(self, base: str = "countdown-weak", steps: int = 60, seed: int = 0, **config):
        if base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {base!r}")
        self.config, self.runs = dict(config), None
        self.base = W.Dropdown(options=BASES, value=base, description="base model", style=STYLE)
        self.normalisation = W.Dropdown(
            options=list(NORMALISATIONS), value="group", description="advantage norm.", style=STYLE
        )
        self.toggles = {
            name: W.Checkbox(value=False, description=label, indent=False)
            for name, label in [
                ("clip_higher", "clip-higher (ε_high 0.28)"),
                ("token_level", "token-level loss"),
                ("overlong_filter", "overlong filter"),
                ("kl", "KL on (β 0.04, k3)"),
            ]
        }
        self.with_baseline = W.Checkbox(value=True, description="also train the baseline", indent=False)
        self.steps = int_slider(steps, 10, 300, 10, description="steps")
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=STYLE)
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        left = W.VBox([self.base, self.normalisation, self.steps, self.seed])
        right = W.VBox([*self.toggles.values(), self.with_baseline, W.HBox([self.button, self.status])])
        self.widget = W.VBox([W.HBox([left, right]), self.out])
        self.fig, axes = plt.subplots(2, 3, figsize=(12.5, 5.8))
        self.axes = axes.ravel()
        plt.close(self.fig)  # drawn into the Output widget only

    def arms(self) -> dict[str, dict]:
        """The runs the controls ask for now: ``{label: settings}``, the baseline first when it is on."""
        chosen = recipe(self.normalisation.value, **{name: box.value for name, box in self.toggles.items()})
        label = recipe_label(chosen)
        arms = {"baseline": recipe()} if self.with_baseline.value or label == "baseline" else {}
        arms[label] = chosen
        return arms

    def _draw(self, runs: pd.DataFrame) -> None:
        title = f"{self.base.value}: {runs['method'].nunique()} run(s) done"
        plot_comparison(runs, TRICK_CURVES, axes=self.axes, title=title)
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)

    def run(self) -> pd.DataFrame:
        """Trains the chosen recipe (and the baseline) for the chosen steps and seed; returns the runs."""
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            self.runs = tricks_study(
                self.base.value,
                self.arms(),
                seeds=(self.seed.value,),
                on_run_end=self._draw,
                progress=False,
                **{"eval_every": max(1, self.steps.value // 5), **self.config, "steps": self.steps.value},
            )
            final = final_pass_at_1(self.runs)
            self.status.value = "held-out pass@1: " + ", ".join(
                f"{m} <b>{b:.2f} → {a:.2f}</b>" for m, b, a in zip(final["method"], final["before"], final["after"])
            )
        finally:
            self.button.disabled = False
        return self.runs

    def _ipython_display_(self):
        display(self.widget)
