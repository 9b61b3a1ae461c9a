"""Figures and a panel for efficient reasoning (notebook 14): where a model thinks, and accuracy against tokens.

``plot_modes`` draws one model's accuracy when it thinks and when it answers at once, per difficulty, with how
often it thinks: overthinking and underthinking side by side. ``plot_profiles`` compares models (before and after
RL, one method against another) on the same axes. ``plot_pareto`` puts every method on one accuracy-vs-tokens plane,
with budget forcing's curve and the front no method beats. ``BudgetPanel`` sets a thinking budget and shows answers.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from matplotlib.ticker import MaxNLocator

from rl4lrm.experiments.efficiency import METHODS, pareto_front, sample_answers, thinking_profile
from rl4lrm.viz.controls import STYLE, int_slider

THINK_COLOR, QUICK_COLOR = "#1f77b4", "#ff7f0e"
# one color per method in every figure of the chapter (the base black), whichever methods a run has
METHOD_COLORS = {"base": "black", **{name: f"C{i}" for i, name in enumerate(METHODS)}}


def _by_steps(profile: pd.DataFrame) -> pd.DataFrame:
    return profile.drop(index="all", errors="ignore")


def plot_modes(profile: pd.DataFrame, axes=None, title: str = ""):
    """Accuracy of thinking and of answering at once per difficulty, and the share of answers that think.

    Args:
        profile: ``thinking_profile(answers)``.
        axes: two existing axes to draw into.
        title: a prefix for the axes' titles (the model's name).

    Returns:
        The matplotlib figure.
    """
    rows = _by_steps(profile)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    x = range(len(rows))
    acc_ax, think_ax = axes
    acc_ax.bar([i - 0.2 for i in x], rows["acc thinking"], 0.4, color=THINK_COLOR, label="thinks first")
    acc_ax.bar([i + 0.2 for i in x], rows["acc at once"], 0.4, color=QUICK_COLOR, label="answers at once")
    acc_ax.set(xticks=list(x), xticklabels=[str(s) for s in rows.index], ylim=(0, 1.05))
    acc_ax.set_xlabel("digits per number (difficulty)", fontsize=9)
    acc_ax.set_ylabel("accuracy", fontsize=9)
    acc_ax.set_title(f"{title}: accuracy of each mode".lstrip(": "), fontsize=10)
    acc_ax.legend(fontsize=8, loc="upper right")
    think_ax.bar(list(x), rows["p(think)"], 0.6, color=THINK_COLOR, alpha=0.7)
    for i, (p, tokens) in enumerate(zip(rows["p(think)"], rows["tokens"])):
        think_ax.text(i, p + 0.02, f"{tokens:.1f} tok", ha="center", fontsize=8)
    think_ax.set(xticks=list(x), xticklabels=[str(s) for s in rows.index], ylim=(0, 1.1))
    think_ax.set_xlabel("digits per number (difficulty)", fontsize=9)
    think_ax.set_ylabel("share of answers that think", fontsize=9)
    think_ax.set_title(f"{title}: how often it thinks (mean tokens above)".lstrip(": "), fontsize=10)
    fig = acc_ax.figure
    fig.tight_layout()
    return fig


def plot_profiles(profiles: dict[str, pd.DataFrame], axes=None):
    """Several models' share of thinking answers, accuracy and mean tokens per difficulty, one line per model.

    Args:
        profiles: ``{label: thinking_profile(answers)}``.
        axes: three existing axes to draw into.

    Returns:
        The matplotlib figure.
    """
    if not profiles:
        raise ValueError("plot_profiles needs at least one profile")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, profile in profiles.items():
        rows = _by_steps(profile)
        for ax, column in zip(axes, ("p(think)", "acc", "tokens")):
            ax.plot(rows.index.astype(int), rows[column], marker="o", label=label, color=METHOD_COLORS.get(label))
    for ax, name in zip(axes, ("share of answers that think", "accuracy", "mean tokens per answer")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # 2, 3, 4 digits: no tick at 2.25
        ax.set_xlabel("digits per number (difficulty)", fontsize=9)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(-0.05, 1.05)
    axes[1].set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def _checked_axes(frame: pd.DataFrame, needed: tuple[str, ...], what: str, ax, figsize: tuple[float, float]):
    """``ax``, or a new one of ``figsize``, once ``frame`` (named ``what`` in the error) has the ``needed`` columns."""
    if missing := set(needed) - set(frame.columns):
        raise ValueError(f"{what} lacks columns {sorted(missing)}")
    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def _sweep_points(sweep: pd.DataFrame) -> list[tuple[float, float, str]]:
    """``(tokens, acc, label)`` per point of a budget sweep; budgets that land on the same point (a cap the answers
    never reach is no cap) share one label, "B=64, no cap", instead of printing over each other."""
    near_x = 0.02 * (sweep["tokens"].max() - sweep["tokens"].min())
    points: list[tuple[float, float, list[str]]] = []
    for _, r in sweep.iterrows():
        name = "no cap" if pd.isna(r["budget"]) else f"B={int(r['budget'])}"
        same = [p for p in points if abs(p[0] - r["tokens"]) <= near_x and abs(p[1] - r["acc"]) <= 0.01]
        if same:
            same[0][2].append(name)
        else:
            points.append((r["tokens"], r["acc"], [name]))
    return [(x, y, ", ".join(names)) for x, y, names in points]


def plot_budget_sweep(sweep: pd.DataFrame, ax=None, color: str = "C0", fontsize: int = 8, **line):
    """Budget forcing's accuracy against tokens, one point per budget, labelled (``budget_sweep``'s frame:
    ``budget``, ``tokens``, ``acc``); ``line`` goes to ``ax.plot`` (a ``label`` for the legend, say).

    Returns:
        The matplotlib figure.
    """
    ax = _checked_axes(sweep, ("budget", "tokens", "acc"), "sweep", ax, (7, 4))
    ax.plot(sweep["tokens"], sweep["acc"], "--", color=color, marker="o", ms=4, **line)
    points = _sweep_points(sweep)
    last = max(x for x, _, _ in points)
    for x, y, label in points:
        ax.annotate(  # below and right of its point; the last one above and left, inside the axes and clear of the line
            label,
            (x, y),
            xytext=(-4, 5) if x == last else (4, -10),
            textcoords="offset points",
            fontsize=fontsize,
            color=color,
            ha="right" if x == last else "left",
        )
    ax.margins(x=0.06, y=0.1)  # room for the lowest label above the axis
    return ax.figure


def plot_pareto(points: pd.DataFrame, sweep: pd.DataFrame | None = None, ax=None, title: str | None = None):
    """Accuracy against mean tokens per answer: one point per method (with its spread over seeds), budget forcing's
    curve, and the Pareto front (the points no other point beats on both axes, labelled in bold).

    Args:
        points: one row per method: ``method``, ``tokens``, ``acc``, and optionally ``tokens_std``, ``acc_std``.
        sweep: ``budget_sweep``'s frame (``budget``, ``tokens``, ``acc``), drawn as a line labelled by budget.
        ax: an existing axis to draw into.
        title: the axis title.

    Returns:
        The matplotlib figure.
    """
    ax = _checked_axes(points, ("method", "tokens", "acc"), "points", ax, (8, 5))
    if sweep is not None:
        plot_budget_sweep(sweep, ax=ax, color="0.5", fontsize=7, label="base + budget forcing")
    colors = plt.get_cmap("tab10")
    points = points.reset_index(drop=True)
    for i, r in points.iterrows():
        ax.errorbar(
            r["tokens"],
            r["acc"],
            xerr=r.get("tokens_std", None) if pd.notna(r.get("tokens_std", float("nan"))) else None,
            yerr=r.get("acc_std", None) if pd.notna(r.get("acc_std", float("nan"))) else None,
            fmt="o",
            color=METHOD_COLORS.get(r["method"], colors(i % 10)),
            capsize=3,
            label=r["method"],
        )
    front = pareto_front(points)
    ax.set_xlabel("mean tokens per answer", fontsize=9)
    ax.set_ylabel("held-out accuracy", fontsize=9)
    ax.set_title(title or "thinking the right amount: accuracy vs tokens (bold: Pareto front)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig = ax.figure
    fig.tight_layout()
    lo, hi = ax.dataLim.intervalx  # every point and the sweep drawn: a label near the right edge turns leftwards
    for i, r in points.iterrows():
        at_right = r["tokens"] > lo + 0.85 * (hi - lo)
        label = ax.annotate(
            r["method"],
            (r["tokens"], r["acc"]),
            fontsize=8,
            weight="bold" if front.iloc[i] else "normal",
            xytext=(5, 4),
            textcoords="offset points",
        )
        _place_clear(label, left_first=at_right)
    return fig


def _place_clear(label, left_first: bool) -> None:
    """Puts a point's ``label`` at the first offset (above the point or below it, left or right of it) where it stays
    inside the axes and overlaps no text drawn before it (a budget's label, another method's); at the first offset
    if none is clear, or where the canvas cannot measure text."""
    sides = [(-5, "right"), (5, "left")] if left_first else [(5, "left"), (-5, "right")]
    offsets = [(dx, dy, ha) for dy in (4, -12, 14, -22) for dx, ha in sides]

    def put(dx: int, dy: int, ha: str) -> None:
        label.xyann = (dx, dy)
        label.set_horizontalalignment(ha)

    ax, canvas = label.axes, label.axes.figure.canvas
    if hasattr(canvas, "get_renderer"):
        renderer = canvas.get_renderer()
        drawn = [t.get_window_extent(renderer) for t in ax.texts if t is not label]
        inside = ax.get_window_extent(renderer)
        for offset in offsets:
            put(*offset)
            box = label.get_window_extent(renderer)
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if within and not any(box.overlaps(other) for other in drawn):
                return
    put(*offsets[0])


class BudgetPanel:
    """A thinking budget for one model: Run samples answers under budget forcing (``rl4lrm.budget``) and shows the
    accuracy and tokens per difficulty and a few answers, a forced ``#`` marked.

    Args:
        model, tokenizer, task: the model to decode (the thinking task's).
        problems: the held-out problems to answer.
        budget: the budget at first (None: no budget).
        samples: answers per problem.
    """

    def __init__(self, model, tokenizer, task, problems, budget: int | None = 8, samples: int = 2):
        self.model, self.tokenizer, self.task, self.problems, self.answers = model, tokenizer, task, problems, None
        self.budget = int_slider(8 if budget is None else budget, 0, 20, description="thinking budget")
        self.unlimited = W.Checkbox(value=budget is None, description="no budget", style=STYLE)
        self.samples = int_slider(samples, 1, 8, description="samples")
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        self.widget = W.VBox(
            [W.HBox([self.budget, self.unlimited]), self.samples, W.HBox([self.button, self.status]), self.out]
        )

    def run(self) -> pd.DataFrame:
        """Samples the answers under the chosen budget and shows them; returns them (``sample_answers``)."""
        self.button.disabled = True
        self.status.value = "<i>sampling…</i>"
        try:
            budget = None if self.unlimited.value else self.budget.value
            self.answers = sample_answers(
                self.model, self.tokenizer, self.task, self.problems, self.samples.value, budget
            )
            profile = thinking_profile(self.answers)
            shown = self.answers.groupby("digits").head(2).copy()
            shown["completion"] = [
                c.replace("#", "‖#", 1) if forced else c for c, forced in zip(shown.completion, shown.forced)
            ]
            with self.out:
                self.out.clear_output(wait=True)
                display(profile[["p(think)", "acc", "tokens"]].round(3))
                display(shown[["problem", "completion", "correct", "tokens", "forced"]].reset_index(drop=True))
            overall = profile.loc["all"]
            self.status.value = (
                f"accuracy {overall['acc']:.3f} at {overall['tokens']:.1f} tokens per answer; "
                f"{self.answers.forced.mean():.0%} of answers cut by the budget (‖ marks the cut)"
            )
        finally:
            self.button.disabled = False
        return self.answers

    def _ipython_display_(self):
        display(self.widget)
