"""Figures and a panel for the RL-versus-SFT study (``rl4lrm.experiments.rl_vs_sft``).

``plot_rl_vs_sft`` draws accuracy per arm on each held-out part (in distribution, out of distribution, the other
task) next to the KL of each arm to the base model; ``plot_razor`` puts forgetting against KL, one point per
arm and seed (RL's Razor). ``RLvsSFTPanel`` puts the study's knobs on widgets; ``panel.run()`` does what its Run
button does and returns the result.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from rl4lrm.experiments.rl_vs_sft import ARMS, RLvsSFTResult, rl_vs_sft_study
from rl4lrm.viz.controls import STYLE, int_slider, log_slider

ARM_COLORS = {"base": "#9e9e9e", "sft": "#c62828", "rl": "#1565c0", "sft+rl": "#6a1b9a"}


def _table(result: RLvsSFTResult | pd.DataFrame) -> pd.DataFrame:
    return result.table if isinstance(result, RLvsSFTResult) else result


def _bars(ax, table: pd.DataFrame, value: str, arms: list[str], roles: list[str]) -> None:
    """Grouped bars of ``value`` (mean over seeds, std as error bars when several) per role and arm."""
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        rows = table[table["arm"] == arm].groupby("role", sort=False)[value]
        mean, std = rows.mean().reindex(roles), rows.std(ddof=1).reindex(roles).fillna(0.0)
        x = np.arange(len(roles)) + (i - (len(arms) - 1) / 2) * width
        ax.bar(x, mean, width, yerr=std if (std > 0).any() else None, color=ARM_COLORS.get(arm), label=arm, capsize=2)
    ax.set_xticks(range(len(roles)), roles, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_rl_vs_sft(result: RLvsSFTResult | pd.DataFrame, title: str | None = None, fig=None):
    """Accuracy (T = 1) on each part and KL(π ‖ π_base) per answer, one bar per arm.

    Args:
        result: an ``RLvsSFTResult``, or a table with ``arm, role, accuracy, kl`` (several seeds: the bars are
            means, the error bars standard deviations).
        title: the figure's title.
        fig: a figure to draw into (cleared first; default: a new one).

    Returns:
        The matplotlib figure.
    """
    table = _table(result)
    arms, roles = list(dict.fromkeys(table["arm"])), list(dict.fromkeys(table["role"]))
    fig = fig or plt.figure(figsize=(13, 4))
    fig.clear()
    acc_ax, kl_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _bars(acc_ax, table, "accuracy", arms, roles)
    acc_ax.set_ylabel("held-out accuracy (T = 1)", fontsize=9)
    acc_ax.set_ylim(0, 1)
    acc_ax.legend(fontsize=8, ncol=len(arms), loc="upper right")
    acc_ax.set_title("what each arm does on each part", fontsize=10)
    tuned = [a for a in arms if a != "base"]
    _bars(kl_ax, table, "kl", tuned, roles)
    kl_ax.set_ylabel(r"KL($\pi \,\|\, \pi_{\mathrm{base}}$), nats per answer", fontsize=9)
    kl_ax.set_title("how far each arm moved from the base", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_razor(result: RLvsSFTResult | pd.DataFrame, kl_role: str, forget_role: str, ax=None, title: str | None = None):
    """Forgetting against KL: the accuracy change on ``forget_role`` (points, vs the base of the same seed)
    against the KL to the base measured on ``kl_role``, one point per arm and seed.

    Args:
        result: an ``RLvsSFTResult``, or a table with ``arm, role, accuracy, kl`` and optionally ``seed``.
        kl_role, forget_role: roles of the table (e.g. "in distribution" and "other task").
        ax: axes to draw into (default: a new figure).
        title: axes title.

    Returns:
        The matplotlib figure.
    """
    table = _table(result)
    if "seed" not in table:
        table = table.assign(seed=0)
    for role in (kl_role, forget_role):
        if role not in set(table["role"]):
            raise ValueError(f"unknown role {role!r}; the table has {sorted(set(table['role']))}")
    acc = table[table["role"] == forget_role].pivot(index="seed", columns="arm", values="accuracy")
    kl = table[table["role"] == kl_role].pivot(index="seed", columns="arm", values="kl")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for arm in [a for a in dict.fromkeys(table["arm"]) if a != "base"]:
        ax.scatter(kl[arm], 100 * (acc[arm] - acc["base"]), color=ARM_COLORS.get(arm), label=arm, s=40)
    ax.axhline(0, color="black", lw=1, ls="--")
    ax.set_xlabel(f"KL to the base on '{kl_role}' (nats per answer)", fontsize=9)
    ax.set_ylabel(f"accuracy change on '{forget_role}' (points)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "RL's Razor: forgetting against distance moved", fontsize=10)
    return ax.figure


class RLvsSFTPanel:
    """Arms, steps, learning rate, RL's KL coefficient and seed; Run, with a progress bar over the stages; the
    figure and the table.

    Args:
        arms, steps, lr, kl_coef, seed: initial values of the controls (``lr`` is both arms' learning rate).
        **study: other ``rl_vs_sft_study`` arguments used by every run (``eval_problems``, ``prompts_per_step``, ...).
    """

    def __init__(
        self,
        arms=ARMS,
        steps: int = 100,
        lr: float = 3e-4,
        kl_coef: float = 0.0,
        seed: int = 0,
        **study,
    ):
        arms = tuple(arms)
        if not arms or any(a not in ARMS for a in arms):
            raise ValueError(f"arms must be a non-empty selection of {ARMS}, got {arms}")
        self.study, self.result = dict(study), None
        self.controls = {
            "arms": W.SelectMultiple(options=ARMS, value=arms, rows=3, description="arms", style=STYLE),
            "steps": int_slider(steps, 10, 400, 10, description="steps per arm"),
            "lr": log_slider(lr, 3e-5, 3e-3, description="learning rate"),
            "kl_coef": W.FloatSlider(
                value=kl_coef, min=0.0, max=max(0.2, kl_coef), step=0.01, description="RL's KL coef β", style=STYLE
            ),
            "seed": W.BoundedIntText(
                value=seed, min=0, max=10**6, description="seed", style=STYLE, layout=W.Layout(width="220px")
            ),
        }
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.progress = W.IntProgress(
            value=0, min=0, max=1, description="progress", layout=W.Layout(width="400px", visibility="hidden")
        )
        self.out = W.Output()
        values = list(self.controls.values())
        self.widget = W.VBox(
            [
                W.HBox([W.VBox(values[:1]), W.VBox(values[1:])]),
                W.HBox([self.button, self.progress]),
                self.status,
                self.out,
            ]
        )
        self.fig = plt.figure(figsize=(13, 4))
        plt.close(self.fig)  # drawn into the Output widget only

    def settings(self) -> dict:
        """The ``rl_vs_sft_study`` arguments the controls describe (read when Run is pressed)."""
        values = {name: c.value for name, c in self.controls.items()}
        values["arms"] = [a for a in ARMS if a in values["arms"]]  # the study's order, whatever the clicks
        return {**self.study, **values}

    def _stage(self, message: str) -> None:
        self.status.value = f"<i>{message}…</i>"
        self.progress.value = min(self.progress.value + 1, self.progress.max)

    def run(self) -> RLvsSFTResult | None:
        """Trains and measures with the current settings, draws the figure and the table; returns the result."""
        settings = self.settings()
        if not settings["arms"]:
            self.status.value = "<b>select at least one arm</b> (ctrl/cmd-click to select several)"
            return None
        self.button.disabled = True
        try:
            # one unit per arm trained and per part measured (three parts in the generalist base)
            self.progress.max, self.progress.value = len(settings["arms"]) + 3, 0
            self.progress.bar_style, self.progress.layout.visibility = "info", "visible"
            self.result = rl_vs_sft_study(progress=False, on_stage=self._stage, **settings)
            self.progress.value, self.progress.bar_style = self.progress.max, "success"
            delta = self.result.delta()
            self.status.value = "accuracy vs base (points): " + "; ".join(
                f"<b>{arm}</b> " + ", ".join(f"{col[5:]} {v:+.1f}" for col, v in row.items())
                for arm, row in delta.iterrows()
            )
            title = (
                f"{settings['steps']} steps per arm, lr {settings['lr']:.1e}, RL's β = {settings['kl_coef']}, "
                f"seed {settings['seed']}"
            )
            plot_rl_vs_sft(self.result, title=title, fig=self.fig)
            with self.out:
                self.out.clear_output(wait=True)
                display(self.fig)
                display(self.result.summary().round(3))
        finally:
            self.button.disabled = False
        return self.result

    def _ipython_display_(self):
        display(self.widget)
