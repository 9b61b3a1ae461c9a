"""Method comparison: mean ± std curves over seeds, and the panel that trains 2–4 presets side by side.

``ComparisonPanel(task="countdown")`` displays itself in a notebook; ``panel.run()`` does what the
Run button does (tests and quick mode call it) and returns the long DataFrame of all runs.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.experiments.compare import compare_presets, final_table
from rl4lrm.presets import PRESETS
from rl4lrm.viz.controls import int_slider
from rl4lrm.viz.plots import finish_panels, panel_grid

X_LABELS = {"tokens/cumulative": "tokens sampled so far"}  # the horizontal axes other than the step

COMPARISON_CURVES = [
    ("acc/pass@1", "held-out pass@1"),
    ("reward/mean", "train reward"),
    ("length/mean", "completion length"),
    ("entropy/mean", "token entropy"),
    ("kl/k3", "KL to reference (k3)"),
    ("clip/frac", "clipped fraction"),
]


def plot_comparison(
    runs: pd.DataFrame,
    curves=COMPARISON_CURVES,
    axes=None,
    title: str | None = None,
    x: str = "step",
    colors: dict[str, str] | None = None,
):
    """One panel per metric; per method the mean over seeds, with a ±1 std band when seeds > 1 (cut at 0 for a
    metric that is never negative in ``runs``).

    Args:
        runs: long DataFrame with ``method``, ``seed``, ``step`` and metric columns
            (``rl4lrm.experiments.compare.compare_presets``).
        curves: ``(metric, title)`` pairs; metrics absent from ``runs`` leave an empty panel.
        axes: existing axes to draw into (at least ``len(curves)``).
        title: figure title.
        x: the horizontal axis: ``"step"`` or another per-step column such as ``"tokens/cumulative"``
            (then each point is the seeds' mean of both coordinates at one step).
        colors: ``{method: color}`` to keep a method's color across figures; by default C0, C1, ... in order.

    Returns:
        The matplotlib figure.
    """
    axes = panel_grid(len(curves)) if axes is None else axes
    for ax, (metric, _) in zip(axes, curves):
        ax.clear()
        if metric in runs:
            never_negative = bool((runs[metric].dropna() >= 0).all())  # a KL, a fraction, a length: no band below 0
            for i, (method, df) in enumerate(runs.groupby("method", sort=False)):
                table = df.pivot_table(index="step", columns="seed", values=metric).dropna(how="all")
                mean, std = table.mean(axis=1), table.std(axis=1)
                low = (mean - std).clip(lower=0) if never_negative else mean - std
                xs = mean.index if x == "step" else df.groupby("step")[x].mean().reindex(mean.index)
                if x != "step" and 0 in xs.index and pd.isna(xs.loc[0]):
                    xs = xs.copy()
                    xs.loc[0] = 0.0  # the evaluation before training: nothing generated yet, so it starts the curve
                color = (colors or {}).get(method, f"C{i}")
                ax.plot(xs, mean, color=color, label=method, marker="o" if len(mean) < 15 else None, ms=3)
                if table.shape[1] > 1:
                    ax.fill_between(xs, low, mean + std, color=color, alpha=0.2, lw=0)
            if never_negative and ax.get_ylim()[0] < 0:
                ax.set_ylim(bottom=0)  # a metric that is 0 throughout (no clipping on-policy) sits on the axis
    fig = finish_panels(axes, curves, title, legend=True)
    if x != "step":
        for ax in axes[: len(curves)]:
            ax.set_xlabel(X_LABELS.get(x, x), fontsize=8)
    return fig


class ComparisonPanel:
    """Pick 2–4 methods, seeds and a step budget; Run trains them all and draws mean ± std curves.

    Args:
        task: zoo entry (``"addition"``, ``"countdown"``, ...).
        presets: methods selected at first.
        seeds: number of seeds per method at first (1–3).
        methods: ``{label: TrainConfig overrides}`` to choose from (e.g. sampling strategies,
            ``rl4lrm.experiments.sampling.SAMPLING_METHODS``); default: every preset by name.
        curves: ``(metric, title)`` panels (six fit the figure); x: their horizontal axis.
        **config: ``TrainConfig`` fields shared by every run (``steps``, ``eval_every``, ``lr``, ...).
    """

    def __init__(
        self,
        task: str = "countdown",
        presets=("grpo", "dr_grpo"),
        seeds: int = 2,
        methods: dict[str, dict] | None = None,
        curves=COMPARISON_CURVES,
        x: str = "step",
        **config,
    ):
        self.methods = {name: {"preset": name} for name in PRESETS} if methods is None else dict(methods)
        unknown = [p for p in presets if p not in self.methods]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {list(self.methods)}")
        self.task, self.config, self.runs, self.curves, self.x = task, dict(config), None, curves, x
        steps = self.config.pop("steps", 60)
        style = {"description_width": "90px"}
        self.presets = W.SelectMultiple(
            options=list(self.methods),
            value=tuple(presets),
            rows=len(self.methods),  # every method in view, so a selected one is never scrolled away
            description="methods",
            style=style,
        )
        hint = W.HTML("<small>Ctrl-click (⌘-click on a Mac) selects several; Shift-click a range.</small>")
        self.seeds = W.IntSlider(value=seeds, min=1, max=max(3, seeds), description="seeds", style=style)
        self.steps = int_slider(steps, 10, 400, 10, description="steps", style=style)
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        self.widget = W.VBox(
            [
                W.HBox(
                    [W.VBox([self.presets, hint]), W.VBox([self.seeds, self.steps, W.HBox([self.button, self.status])])]
                ),
                self.out,
            ]
        )
        self.fig, axes = plt.subplots(2, 3, figsize=(12.5, 5.8))
        self.axes = axes.ravel()
        plt.close(self.fig)  # drawn into the Output widget only

    def _draw(self, runs: pd.DataFrame) -> None:
        done = runs.groupby(["method", "seed"]).ngroups
        plot_comparison(runs, self.curves, axes=self.axes, title=f"{self.task}: {done} run(s) done", x=self.x)
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)

    def run(self) -> pd.DataFrame:
        """Trains every selected preset for every seed, redrawing after each run; returns all runs."""
        chosen = list(self.presets.value)
        if not 1 <= len(chosen) <= 4:
            raise ValueError(f"select 1 to 4 methods, got {len(chosen)}: {chosen}")
        self.button.disabled = True
        self.status.value = "<i>training…</i>"
        try:
            self.runs = compare_presets(
                {m: self.methods[m] for m in chosen},
                seeds=tuple(range(self.seeds.value)),
                on_run_end=self._draw,
                progress=False,
                task=self.task,
                steps=self.steps.value,
                **self.config,
            )
            summary = final_table(self.runs)[("acc/pass@1", "mean")]
            self.status.value = "held-out pass@1: " + ", ".join(f"{m} <b>{v:.2f}</b>" for m, v in summary.items())
        finally:
            self.button.disabled = False
        return self.runs

    def _ipython_display_(self):
        display(self.widget)
