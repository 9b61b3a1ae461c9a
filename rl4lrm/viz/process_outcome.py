"""Figures and a panel for process vs outcome rewards (``rl4lrm.experiments.process_outcome`` / ``.process_rl``).

``plot_selection`` draws best-of-N accuracy against N for each verifier, majority vote and the oracle;
``plot_proxy_vs_gold`` draws a PRM-optimised run's proxy and gold rewards against step and against KL.
``ProcessOutcomePanel`` puts the chapter's knobs on widgets; ``panel.run()`` does what its Run button does.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.experiments.process_outcome import VerifierConfig, rerank_study, train_verifiers
from rl4lrm.experiments.process_rl import REWARD_ARMS, reward_arms, rl_study
from rl4lrm.viz.controls import STYLE, int_slider

STYLES = {
    "oracle (pass@N)": dict(color="#9e9e9e", ls="--"),
    "majority vote": dict(color="#2e7d32", lw=2),
    "ORM": dict(color="#c62828", lw=2),
    "PRM (min)": dict(color="#1565c0", lw=2),
    "PRM (prod)": dict(color="#ef6c00", ls=":", lw=1.8, marker="s"),  # each aggregation its own color and marker
    "PRM (last)": dict(color="#6a1b9a", ls="-.", lw=1.5, marker="^"),
}


def plot_selection(curves: pd.DataFrame, ax=None, title: str | None = None):
    """Accuracy against N (log scale) per selection rule; several seeds: the mean, with a ±1 std band.

    Args:
        curves: ``method, N, accuracy`` rows (``selection_curves`` / ``rerank_study``), any number of seeds.
    """
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for method, df in curves.groupby("method", sort=False):
        g = df.groupby("N")["accuracy"]
        mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
        ax.plot(mean.index, mean.values, label=method, **{"marker": "o", "ms": 3.5, **STYLES.get(method, {})})
        ax.fill_between(mean.index, mean - std, mean + std, alpha=0.12, color=STYLES.get(method, {}).get("color"))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples per problem)", fontsize=9)
    ax.set_ylabel("held-out accuracy of the pick", fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "best-of-N: which sample does each rule pick?", fontsize=10)
    return ax.figure


def plot_rl_curves(runs: pd.DataFrame, ax=None, x: str = "tokens"):
    """Held-out pass@1 of each RL arm against sampled tokens (or ``x="step"``), one line per arm and seed."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for i, (method, df) in enumerate(runs.dropna(subset=["acc/pass@1"]).groupby("method", sort=False)):
        for j, (_, d) in enumerate(df.groupby("seed")):
            ax.plot(d[x], d["acc/pass@1"], color=f"C{i}", marker="o", ms=3, label=method if j == 0 else None)
    ax.set_xlabel("completion tokens sampled" if x == "tokens" else x, fontsize=9)
    ax.set_ylabel("held-out pass@1", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("RL at one budget: which reward?", fontsize=10)
    return ax.figure


def plot_proxy_vs_gold(table: pd.DataFrame, axes=None):
    """``proxy_vs_gold`` output: both rewards against step, and against the KL from the start (Gao et al.)."""
    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(12, 3.8))[1]
    for col, color in [("proxy (PRM)", "#1565c0"), ("gold (verifier)", "#2e7d32")]:
        axes[0].plot(table.index, table[col], color=color, label=col)
        axes[1].scatter(table["KL to start"], table[col], color=color, s=8, label=col)
    axes[0].set_xlabel("step", fontsize=9)
    axes[1].set_xlabel(r"KL($\pi \,\|\, \pi_{\mathrm{start}}$) per token (k3, rolling mean)", fontsize=9)
    for ax in axes:
        ax.set_ylabel("train reward (rolling mean)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("optimising the learned PRM: proxy vs gold", fontsize=10)
    return axes[0].figure


class ProcessOutcomePanel:
    """Label noise, training steps of the verifiers, largest N, an RL reward, RL steps and a seed; Run trains the
    verifiers, draws best-of-N curves and trains the chosen reward next to the outcome reward.

    Args:
        n_max: largest N at first. rl_steps: RL steps at first (0 skips the RL part). seed: seed at first.
        verifier_steps: the verifiers' training steps at first.
        **config: ``TrainConfig`` fields for the RL runs (``eval_problems``, ...).
    """

    def __init__(self, n_max: int = 16, rl_steps: int = 30, seed: int = 0, verifier_steps: int = 200, **config):
        self.config, self.result, self._cached = dict(config), None, None
        self.noise = W.Dropdown(options=[0.0, 0.1, 0.3, 0.5], value=0.0, description="PRM label noise", style=STYLE)
        self.verifier_steps = int_slider(verifier_steps, 50, 800, 50, description="verifier steps")
        self.n_max = W.Dropdown(options=[4, 8, 16, 32, 64], value=n_max, description="largest N", style=STYLE)
        self.reward = W.Dropdown(
            options=[a for a in REWARD_ARMS if a != "outcome"], value="process (true steps)", description="RL reward"
        )
        self.reward.style = STYLE
        self.rl_steps = int_slider(rl_steps, 0, 200, 10, description="RL steps")
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=STYLE)
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status = W.HTML()
        self.out = W.Output()
        left = W.VBox([self.noise, self.verifier_steps, self.n_max])
        right = W.VBox([self.reward, self.rl_steps, self.seed, W.HBox([self.button, self.status])])
        self.widget = W.VBox([W.HBox([left, right]), self.out])
        self.fig, self.axes = plt.subplots(1, 2, figsize=(12.5, 4))
        plt.close(self.fig)  # drawn into the Output widget only

    def _draw(self) -> None:
        with self.out:
            self.out.clear_output(wait=True)
            display(self.fig)

    def verifiers(self):
        """The PRM and ORM for the chosen noise, steps and seed (trained once, then cached)."""
        cfg = VerifierConfig(noise=self.noise.value, steps=self.verifier_steps.value, seed=self.seed.value)
        if self._cached is None or self._cached.config != cfg:
            self._cached = train_verifiers(cfg)  # one set at a time: each holds two model copies
        return self._cached

    def run(self) -> dict:
        """Trains (or reuses) the verifiers, reads best-of-N up to the largest N, then trains the chosen reward and
        the outcome reward for the chosen steps; returns ``{"curves": ..., "runs": ...}``."""
        self.button.disabled = True
        self.status.value = "<i>training the verifiers…</i>"
        try:
            verifiers = self.verifiers()
            n = self.n_max.value
            ns = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n]
            curves, _, _ = rerank_study(n_problems=64, m=n, ns=ns, draws=16, verifiers=verifiers)
            for ax in self.axes:
                ax.clear()
            plot_selection(curves, ax=self.axes[0], title=f"best-of-N, PRM label noise {self.noise.value:.0%}")
            self._draw()
            runs = None
            if self.rl_steps.value > 0:
                self.status.value = "<i>training the RL arms…</i>"
                steps = self.rl_steps.value
                arms = reward_arms(["outcome", self.reward.value], prm=verifiers.prm)
                settings = {"eval_every": max(1, steps // 3), **self.config, "steps": steps}
                runs = rl_study(arms, seeds=(self.seed.value,), **settings)
                plot_rl_curves(runs, ax=self.axes[1])
                self._draw()
            at = curves[curves["N"] == n].set_index("method")["accuracy"]
            self.status.value = f"best-of-{n}: " + ", ".join(f"{m} <b>{a:.2f}</b>" for m, a in at.items())
            self.result = {"curves": curves, "runs": runs}
        finally:
            self.button.disabled = False
        return self.result

    def _ipython_display_(self):
        display(self.widget)
