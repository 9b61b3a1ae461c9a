"""Figures and a panel for the sharpening-versus-discovery study (``rl4lrm.experiments.sharpening``).

``plot_passk_curves`` draws pass@k against k on a log2 axis (base dashed, each checkpoint with its
bootstrap band, crossovers marked), ``plot_gaps`` the paired difference checkpoint minus base,
``plot_coverage`` which problems each model solves, gains or loses. ``SharpeningPanel`` puts the
study's knobs on widgets; ``panel.run()`` does what its Run button does and returns the result.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.colors import ListedColormap

from rl4lrm.experiments.sharpening import SPLITS, SharpeningResult, default_checkpoints, sharpening_study
from rl4lrm.models.zoo import ZOO
from rl4lrm.passk import coverage_sets, crossover_k
from rl4lrm.trainer import Callback
from rl4lrm.viz.controls import int_slider

COVERAGE_COLORS = ["#f2f2f2", "#9e9e9e", "#2e7d32", "#c62828"]  # unsolved, solved, gained, lost
COVERAGE_NAMES = ["unsolved", "solved", "gained (base: 0 of n)", "lost (base solved it)"]


def _colors(labels: list[str]) -> dict[str, str]:
    """Base black, checkpoints along a colour map in training order."""
    others = [label for label in labels if label != "base"]
    cmap = plt.get_cmap("viridis")
    shades = {label: cmap(0.15 + 0.7 * i / max(1, len(others) - 1)) for i, label in enumerate(others)}
    return {"base": "black", **shades}


def _log2_axis(ax, ks) -> None:
    ax.set_xscale("log", base=2)
    ticks = [k for k in ks if k & (k - 1) == 0]  # powers of two
    ax.set_xticks(ticks, [str(k) for k in ticks], fontsize=8)
    ax.set_xlabel("k (samples per problem)", fontsize=9)
    ax.grid(alpha=0.3)


def plot_passk_curves(
    result: SharpeningResult | pd.DataFrame, ax=None, title: str | None = None, mark_crossovers: bool = True
):
    """pass@k against k (log2 axis): one line and bootstrap band per label, the base dashed.

    Args:
        result: a ``SharpeningResult`` or a curves DataFrame with ``label, k, pass@k, lo, hi``
            (a ``"base"`` label is drawn dashed and is the reference of the crossovers).
        ax: axes to draw into (default: a new figure).
        title: axes title.
        mark_crossovers: mark where the base catches up with each checkpoint (``crossover_k``).

    Returns:
        The matplotlib figure.
    """
    curves = result.curves if isinstance(result, SharpeningResult) else result
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    labels = list(dict.fromkeys(curves["label"]))
    colors = _colors(labels)
    base = curves[curves["label"] == "base"].set_index("k")["pass@k"] if "base" in labels else None
    for label in labels:
        df = curves[curves["label"] == label].sort_values("k")
        dashed = label == "base"
        ax.plot(
            df["k"],
            df["pass@k"],
            color=colors[label],
            ls="--" if dashed else "-",
            lw=2 if dashed else 1.6,
            label=label,
            zorder=3 if dashed else 2,
        )
        ax.fill_between(df["k"], df["lo"], df["hi"], color=colors[label], alpha=0.12 if dashed else 0.18, lw=0)
        if mark_crossovers and base is not None and not dashed:
            k = crossover_k(base, df.set_index("k")["pass@k"])
            if k is not None:
                ax.plot([k], [base[k]], marker="o", ms=8, mfc="none", mec=colors[label], mew=2, zorder=4)
    _log2_axis(ax, sorted(curves["k"].unique()))
    ax.set_ylabel("pass@k", fontsize=9)
    top = float(curves["hi"].max())
    ax.set_ylim(0, 1.02 if top > 0.6 else 1.25 * top + 0.01)  # low curves (a hard split) get the whole height
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or "pass@k (bands: 95% bootstrap over problems; o: base catches up)", fontsize=10)
    return ax.figure


def plot_gaps(result: SharpeningResult | pd.DataFrame, ax=None, title: str | None = None):
    """Checkpoint minus base pass@k against k, with paired bootstrap bands; above 0 the RL model leads.

    Args:
        result: a ``SharpeningResult`` or a gaps DataFrame with ``label, k, gap, lo, hi``.
        ax: axes to draw into (default: a new figure).
        title: axes title.

    Returns:
        The matplotlib figure.
    """
    gaps = result.gaps if isinstance(result, SharpeningResult) else result
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    labels = list(dict.fromkeys(gaps["label"]))
    colors = _colors(["base", *labels])
    for label in labels:
        df = gaps[gaps["label"] == label].sort_values("k")
        ax.plot(df["k"], df["gap"], color=colors[label], label=label)
        ax.fill_between(df["k"], df["lo"], df["hi"], color=colors[label], alpha=0.18, lw=0)
    ax.axhline(0, color="black", ls="--", lw=1)
    _log2_axis(ax, sorted(gaps["k"].unique()))
    ax.set_ylabel("pass@k(RL) − pass@k(base)", fontsize=9)
    ax.legend(fontsize=8)
    ax.set_title(title or "RL minus base (paired 95% bootstrap)", fontsize=10)
    return ax.figure


def coverage_grid(counts: dict[str, list[int]], reference: str = "base") -> tuple[np.ndarray, list[str], np.ndarray]:
    """Category of every (label, problem): 0 unsolved, 1 solved by both, 2 gained, 3 lost.

    Returns:
        ``(grid (L, P), labels, order (P,))``: problems sorted by the reference's correct count, then by
        the last label's, so the gained and lost ones gather at the edges.
    """
    sets = coverage_sets(counts, reference)
    labels = list(counts)
    ref, last = np.asarray(counts[reference]), np.asarray(counts[labels[-1]])
    order = np.lexsort((-last, -ref))  # (P,) reference count descending, ties by the last label
    grid = np.zeros((len(labels), len(ref)), dtype=int)
    for row, label in enumerate(labels):
        for key, value in (("solved", 1), ("gained", 2), ("lost", 3)):
            grid[row, list(sets[label][key])] = value
    return grid[:, order], labels, order


def plot_coverage(
    result: SharpeningResult | dict[str, list[int]], ax=None, reference: str = "base", title: str | None = None
):
    """Which held-out problems each model solves at k = n: one row per model, one column per problem.

    A ``SharpeningResult`` adds a second, independent sample of the base model as the second row: the
    problems it gains or loses do so by chance alone, the yardstick for the checkpoints' rows.

    Args:
        result: a ``SharpeningResult`` or ``{label: per-problem correct counts}``.
        ax: axes to draw into (default: a new figure).
        reference: the row the others are compared with.
        title: axes title.

    Returns:
        The matplotlib figure.
    """
    counts = result.counts if isinstance(result, SharpeningResult) else result
    if isinstance(result, SharpeningResult) and result.base_resample is not None:  # the chance level, second row
        counts = {
            reference: counts[reference],
            f"{reference}, 2nd sample": result.base_resample,
            **{label: c for label, c in counts.items() if label != reference},
        }
    grid, labels, _ = coverage_grid(counts, reference)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.2))
    ax.imshow(grid, aspect="auto", cmap=ListedColormap(COVERAGE_COLORS), vmin=-0.5, vmax=3.5, interpolation="nearest")
    sets = coverage_sets(counts, reference)
    ax.set_yticks(
        range(len(labels)),
        [f"{label}  (+{len(sets[label]['gained'])} / −{len(sets[label]['lost'])})" for label in labels],
        fontsize=8,
    )
    ax.set_xticks([])
    ax.set_xlabel(f"{grid.shape[1]} held-out problems (sorted by the base model's correct count)", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COVERAGE_COLORS]
    ax.legend(
        handles, COVERAGE_NAMES, fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False
    )
    ax.set_title(title or "coverage: a correct answer among n samples", fontsize=10)
    return ax.figure


def plot_sharpening(result: SharpeningResult, title: str | None = None, fig=None):
    """The study on one figure: pass@k curves, RL minus base, and coverage."""
    fig = fig or plt.figure(figsize=(13, 6.4))
    fig.clear()
    grid = fig.add_gridspec(2, 2, height_ratios=[2.2, 1])
    plot_passk_curves(result, ax=fig.add_subplot(grid[0, 0]))
    plot_gaps(result, ax=fig.add_subplot(grid[0, 1]))
    plot_coverage(result, ax=fig.add_subplot(grid[1, :]))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class _StepProgress(Callback):
    def __init__(self, bar: W.IntProgress):
        self.bar = bar

    def on_step_end(self, trainer, metrics):
        self.bar.value = trainer.step


class SharpeningPanel:
    """Steps, KL coefficient, entropy bonus, sampling temperature, base model, split and seed; Run, with a
    progress bar over the training steps and the models sampled; the figures.

    Args:
        base: zoo entry selected at first; the dropdown lists the entries of the same task.
        steps, kl_coef, entropy_coef, temperature, split, seed: initial values of the controls
            (``temperature`` is the evaluation's sampling temperature; ``seed`` seeds training, sampling and
            the bootstrap).
        **study: other ``sharpening_study`` arguments used by every run (``n_samples``,
            ``eval_problems``, ``checkpoints``, ``lr``, ...).
    """

    def __init__(
        self,
        base: str = "countdown",
        steps: int = 100,
        kl_coef: float = 0.04,
        entropy_coef: float = 0.0,
        temperature: float = 1.0,
        split: str = "standard",
        seed: int = 0,
        **study,
    ):
        if base not in ZOO:
            raise ValueError(f"unknown base model {base!r}; known: {sorted(ZOO)}")
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        self.study, self.result = dict(study), None
        style = {"description_width": "120px"}
        same_task = [name for name in ZOO if ZOO[name].task == ZOO[base].task]
        self.controls = {
            "steps": int_slider(steps, 5, 400, 5, description="RL steps", style=style),
            "kl_coef": W.FloatSlider(
                value=kl_coef, min=0.0, max=max(0.5, kl_coef), step=0.01, description="KL coef β", style=style
            ),
            "entropy_coef": W.FloatSlider(
                value=entropy_coef,
                min=0.0,
                max=max(0.05, entropy_coef),
                step=0.001,
                readout_format=".3f",
                description="entropy bonus",
                style=style,
            ),
            "eval_temperature": W.FloatSlider(
                value=temperature,
                min=min(0.3, temperature),
                max=max(1.5, temperature),
                step=0.05,
                description="eval temperature",
                style=style,
            ),
            "base": W.Dropdown(options=same_task, value=base, description="base model", style=style),
            "split": W.Dropdown(options=list(SPLITS), value=split, description="split", style=style),
            "seed": W.BoundedIntText(
                value=seed, min=0, max=10**6, description="seed", style=style, layout=W.Layout(width="220px")
            ),
        }
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.progress = W.IntProgress(
            value=0,
            min=0,
            max=1,
            description="progress",
            bar_style="info",
            layout=W.Layout(width="400px", visibility="hidden"),
        )
        self.out = W.Output()
        values = list(self.controls.values())
        self.widget = W.VBox(
            [
                W.HBox([W.VBox(values[:3]), W.VBox(values[3:])]),
                W.HBox([self.button, self.progress]),
                self.status,
                self.out,
            ]
        )
        self.fig = plt.figure(figsize=(13, 6.4))
        plt.close(self.fig)  # drawn into the Output widget only

    def settings(self) -> dict:
        """The ``sharpening_study`` arguments the controls describe."""
        return {**self.study, **{name: c.value for name, c in self.controls.items()}}

    def _stage(self, message: str) -> None:
        self.status.value = f"<i>{message}…</i>"
        if message.startswith("sampling:"):  # one unit per model sampled, after one per training step
            self.progress.value = min(self.progress.value + 1, self.progress.max)

    def run(self) -> SharpeningResult:
        """Trains and evaluates with the current settings, draws the figures; returns the result."""
        self.button.disabled = True
        try:
            settings = self.settings()
            models = len(settings.get("checkpoints") or default_checkpoints(settings["steps"])) + 1
            # units: training steps, then the base and each checkpoint, then the base's second sample
            self.progress.max, self.progress.value = settings["steps"] + models + 1, 0
            self.progress.bar_style, self.progress.layout.visibility = "info", "visible"
            self.result = sharpening_study(
                progress=False, on_stage=self._stage, callbacks=[_StepProgress(self.progress)], **settings
            )
            self.progress.value, self.progress.bar_style = self.progress.max, "success"
            n = self.result.n_samples
            summary = self.result.summary(ks=(1, n))
            first, last = summary.index[0], summary.index[-1]
            k = self.result.crossovers()[last]
            self.status.value = (
                f"{first} → {last}: "
                + ", ".join(
                    f"pass@{j} {summary.loc[first, f'pass@{j}']:.2f} → <b>{summary.loc[last, f'pass@{j}']:.2f}</b>"
                    for j in (1, n)
                )
                + ("; the curves do not cross" if k is None else f"; base catches up at k = {k}")
            )
            title = (
                f"{settings['base']} ({settings['split']}): {settings['steps']} steps, β={settings['kl_coef']}, "
                f"entropy {settings['entropy_coef']}, eval T={settings['eval_temperature']}, seed {settings['seed']}"
            )
            plot_sharpening(self.result, title=title, fig=self.fig)
            with self.out:
                self.out.clear_output(wait=True)
                display(self.fig)
        finally:
            self.button.disabled = False
        return self.result

    def _ipython_display_(self):
        display(self.widget)
