"""Figures of training resources and infrastructure (notebook 10): a corpus's curation funnel, an async run's timeline.

``plot_curation_funnel`` draws ``rl4lrm.corpus.curate``'s counts: one bar per stage, the rows a step dropped
stacked on top of what it kept, so the eye follows the corpus shrinking step by step. ``plot_async_timeline`` draws
``rl4lrm.async_rl.AsyncTrainer.timeline_frame()``: the producer's and the learner's intervals on two lanes, so the
synchronous loop's idle halves and the asynchronous overlap show at a glance. ``AsyncPanel`` runs the synchronous
loop and one asynchronous run side by side and draws both. ``plot_token_gaps`` draws how far a lower-precision
sampler's log-probs fall from the learner's, token by token, one distribution per precision; ``PrecisionPanel``
trains with float32 rollouts and with lowered ones (with or without the correction) side by side.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rl4lrm.experiments.infrastructure import precision_study, staleness_study
from rl4lrm.viz.compare import plot_comparison
from rl4lrm.viz.controls import STYLE, RunPanel, int_slider, seed_box

DROP_COLOR, KEEP_COLOR = "#d62728", "#1f77b4"


def plot_curation_funnel(counts: pd.DataFrame, ax=None, title: str | None = None):
    """The corpus before curation and after each step, with what each step dropped.

    Args:
        counts: ``Curated.counts``: one row per step with ``step``, ``before``, ``dropped`` and ``after``.
        ax: an existing axis to draw into.
        title: the axis title (a default names the kept share).

    Returns:
        The matplotlib figure.

    Raises:
        ValueError: when ``counts`` has no rows (no curation step ran) or lacks a column.
    """
    missing = {"step", "before", "dropped", "after"} - set(counts.columns)
    if missing or counts.empty:
        raise ValueError(
            f"counts needs one row per curation step with columns step, before, dropped, after; "
            f"got {len(counts)} rows{f', missing {sorted(missing)}' if missing else ''}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    labels = ["corpus", *counts["step"]]
    kept = [int(counts["before"].iloc[0]), *counts["after"].astype(int)]
    dropped = [0, *counts["dropped"].astype(int)]
    ax.bar(labels, kept, color=KEEP_COLOR, label="kept")
    ax.bar(labels, dropped, bottom=kept, color=DROP_COLOR, alpha=0.6, label="dropped by this step")
    for x, (k, d) in enumerate(zip(kept, dropped)):
        ax.text(x, k / 2, str(k), ha="center", va="center", color="white", fontsize=9, fontweight="bold")
        if d:
            ax.text(x, k + d / 2, f"−{d}", ha="center", va="center", fontsize=9)
    share = kept[-1] / kept[0] if kept[0] else 0.0
    ax.set_title(title or f"curation funnel: {kept[-1]} of {kept[0]} rows kept ({share:.0%})", fontsize=10)
    ax.set_ylabel("rows", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return ax.figure


def plot_token_gaps(gaps: dict[str, torch.Tensor], ax=None, title: str | None = None, floor: float = 1e-8):
    """The distribution of |log pi_learner - log pi_sampler| over the sampled tokens, one outline per sampler.

    Args:
        gaps: ``{label: d}``, each the gaps of one batch's sampled tokens (1-D:
            ``log_ratios(model, batch)[batch.response_mask.bool()]``, ``rl4lrm.real.measure``).
        ax: an existing axis to draw into.
        title: the axis title.
        floor: gaps below it (float32's rounding, or exactly 0) are drawn in the first bin, gaps above 1 nat in
            the last.

    Returns:
        The matplotlib figure.

    Raises:
        ValueError: when ``gaps`` is empty or a sampler has no token.
    """
    empty = [label for label, d in gaps.items() if d.numel() == 0]
    if not gaps or empty:
        raise ValueError(
            f"gaps needs {{label: the gaps of a batch's sampled tokens}} with at least one sampler and one token "
            f"each; {'got none' if not gaps else f'no tokens for {empty}'}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    bins = np.geomspace(floor, 1.0, 41)
    for i, (label, d) in enumerate(gaps.items()):
        values = d.double().abs().clamp(floor, 1.0).numpy()
        ax.hist(values, bins=bins, histtype="step", lw=1.6, color=f"C{i}", label=f"{label} (mean {values.mean():.1e})")
    ax.set_xscale("log")
    ax.set_xlabel(
        r"$|\log \pi_{\mathrm{learner}} - \log \pi_{\mathrm{sampler}}|$ of a sampled token (nats)", fontsize=9
    )
    ax.set_ylabel("tokens", fontsize=9)
    ax.set_title(title or "how far the sampler's log-probs fall from the learner's", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return ax.figure


def plot_async_timeline(timeline: pd.DataFrame, ax=None, title: str | None = None, steps: int | None = None):
    """Who waits on whom: the producer's sampling and the learner's updates on two lanes, against wall time.

    Args:
        timeline: ``AsyncTrainer.timeline_frame()``: per step ``step``, ``version``, ``produce_start``,
            ``produce_end``, ``wait_start``, ``learn_start`` and ``learn_end`` (s since the run started).
        ax: an existing axis to draw into.
        title: the axis title.
        steps: draw only the first ``steps`` steps (None: all).

    Returns:
        The matplotlib figure. Each bar is labelled with its step; a sampling bar also with the policy version that
        sampled it. Grey hatching on the learner's lane is time it waited for a batch; the gaps on the producer's
        lane are time it was held back by the staleness bound.
    """
    needed = {"step", "version", "produce_start", "produce_end", "wait_start", "learn_start", "learn_end"}
    if missing := needed - set(timeline.columns):
        raise ValueError(f"timeline lacks columns {sorted(missing)}; pass AsyncTrainer.timeline_frame()")
    rows = timeline if steps is None else timeline.iloc[:steps]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 2.4))
    colors = plt.get_cmap("tab10")
    for _, r in rows.iterrows():
        color = colors(int(r["step"]) % 10)
        ax.broken_barh([(r["produce_start"], r["produce_end"] - r["produce_start"])], (1.1, 0.8), color=color)
        ax.broken_barh([(r["learn_start"], r["learn_end"] - r["learn_start"])], (0.1, 0.8), color=color)
        if r["learn_start"] > r["wait_start"]:
            ax.broken_barh(
                [(r["wait_start"], r["learn_start"] - r["wait_start"])], (0.1, 0.8), color="0.85", hatch="///"
            )
        ax.text(
            (r["produce_start"] + r["produce_end"]) / 2,
            1.5,
            f"{int(r['step'])}·v{int(r['version'])}",
            ha="center",
            va="center",
            fontsize=7,
        )
        ax.text((r["learn_start"] + r["learn_end"]) / 2, 0.5, str(int(r["step"])), ha="center", va="center", fontsize=7)
    ax.set_yticks([0.5, 1.5], ["learner", "producer"])
    ax.set_xlabel("wall time (s)", fontsize=9)
    ax.set_ylim(0, 2)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "sampling (step·version) and learning (step); hatched: the learner waits", fontsize=10)
    return ax.figure


ASYNC_CURVES = [("acc/pass@1", "held-out pass@1"), ("reward/mean", "training reward"), ("async/staleness", "lag")]


class AsyncPanel(RunPanel):
    """Staleness bound, truncated-IS cap, steps and seed; Run trains the synchronous loop and ``AsyncTrainer`` at that
    bound (``staleness_study``) and draws their curves and the async run's timeline.

    Args:
        staleness: the bound at first. steps: training steps at first. seed: seed at first.
        **config: ``TrainConfig`` fields for both runs, over ``STUDY_CONFIG`` (``eval_problems``, ...).
    """

    def __init__(self, staleness: int = 2, steps: int = 20, seed: int = 0, **config):
        self.config, self.runs, self.timeline = dict(config), None, None
        controls = {
            "staleness": int_slider(staleness, 0, 8, description="staleness bound"),
            "steps": int_slider(steps, 10, 200, 10, description="steps"),
            "tis_cap": W.FloatSlider(value=2.0, min=1.0, max=10.0, step=0.5, description="tis_cap", style=STYLE),
            "seed": seed_box(seed),
        }
        self.layout(controls, left=2)

    def run(self) -> pd.DataFrame:
        """Trains both runs with the chosen settings and draws them; returns the runs."""
        with self.busy("training…"):
            s = self.settings()
            steps = s["steps"]
            self.runs, timelines = staleness_study(
                (s["staleness"],),
                seeds=(s["seed"],),
                steps=steps,
                tis_cap=s["tis_cap"],
                progress=False,
                **{"eval_every": max(1, steps // 4), **self.config},
            )
            (self.timeline,) = timelines.values()
            fig = plt.figure(figsize=(13, 5.6))
            grid = fig.add_gridspec(2, 3, height_ratios=[1.3, 1])
            plot_comparison(self.runs, ASYNC_CURVES, axes=[fig.add_subplot(grid[0, i]) for i in range(3)])
            plot_async_timeline(self.timeline, ax=fig.add_subplot(grid[1, :]), steps=min(steps, 12))
            fig.tight_layout()
            plt.close(fig)
            self.show(fig)
            speed = self.runs.groupby("method", sort=False)["time/step"].sum()
            self.status.value = (
                f"wall time of the steps: sync {speed.iloc[0]:.1f} s, async {speed.iloc[1]:.1f} s; "
                f"mean lag {self.runs['async/staleness'].mean():.2f}"
            )
        return self.runs


PRECISION_CURVES = [
    ("acc/pass@1", "held-out pass@1"),
    ("offpolicy/kl", "KL(sampler ‖ learner) per token"),
    ("is/mean", "mean importance weight"),
]


class PrecisionPanel(RunPanel):
    """The rollouts' precision and the truncated-IS cap; Run trains GRPO with float32 rollouts and with the chosen
    ones (``precision_study``, the same seed) and draws held-out pass@1, the measured gap and the mean weight.

    Args:
        precision: ``"bfloat16"`` or ``"float16"`` at first. tis_cap: the cap at first (0: no correction).
        steps: training steps at first. seed: seed at first.
        **config: ``TrainConfig`` fields for both runs, over ``STUDY_CONFIG`` (``eval_problems``, ...).
    """

    CAPS = (("off", 0.0), ("1.5", 1.5), ("2", 2.0), ("5", 5.0))

    def __init__(self, precision: str = "bfloat16", tis_cap: float = 0.0, steps: int = 20, seed: int = 0, **config):
        self.config, self.runs = dict(config), None
        controls = {
            "precision": W.Dropdown(
                options=["bfloat16", "float16"], value=precision, description="rollouts in", style=STYLE
            ),
            "tis_cap": W.Dropdown(options=self.CAPS, value=tis_cap, description="TIS cap", style=STYLE),
            "steps": int_slider(steps, 10, 200, 10, description="steps"),
            "seed": seed_box(seed),
        }
        self.layout(controls, left=2)

    def run(self) -> pd.DataFrame:
        """Trains both arms with the chosen settings and draws them; returns the runs."""
        with self.busy("training…"):
            s = self.settings()
            label = s["precision"] + (f" + TIS (cap {s['tis_cap']:g})" if s["tis_cap"] else "")
            arms = {"float32": ("float32", 0.0), label: (s["precision"], s["tis_cap"])}
            self.runs = precision_study(
                arms,
                seeds=(s["seed"],),
                steps=s["steps"],
                progress=False,
                **{"eval_every": max(1, s["steps"] // 4), **self.config},
            )
            curves = PRECISION_CURVES if s["tis_cap"] else PRECISION_CURVES[:2]  # weights only with the correction
            fig = plot_comparison(self.runs, curves, title=f"rollouts in float32 vs {label}")
            plt.close(fig)
            self.show(fig)
            final = self.runs.dropna(subset=["acc/pass@1"]).groupby("method", sort=False)["acc/pass@1"].last()
            gap = self.runs.loc[self.runs["method"] == label, "offpolicy/kl"].mean()
            self.status.value = (
                f"held-out pass@1 after: float32 {final['float32']:.3f}, {label} {final[label]:.3f}; "
                f"KL(sampler ‖ learner) {gap:.1e} per token"
            )
        return self.runs
