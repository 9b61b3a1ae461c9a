"""Plots and a panel for latent-space reasoning (Coconut's continuous thoughts; ``rl4lrm.latent.studies``)."""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from matplotlib.ticker import MaxNLocator

from rl4lrm.latent.model import LatentConfig
from rl4lrm.latent.studies import curriculum_table, latent_rl, run_model, thought_distribution
from rl4lrm.viz.controls import int_slider, log_slider


def plot_accuracy_vs_tokens(df: pd.DataFrame, ax=None):
    """Accuracy against generated tokens per method (``compare_reasoning``); marker size grows with the
    number of continuous thoughts (forward passes that emit no token), which is annotated."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    for _, r in df.iterrows():
        ax.scatter(r["generated_tokens"], r["accuracy"], s=60 + 60 * r["thoughts"], alpha=0.8)
        extra = f" (+{r['thoughts']:.1f} thoughts)" if r["thoughts"] > 0 else ""
        ax.annotate(
            f"{r['method']}{extra}",
            (r["generated_tokens"], r["accuracy"]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=9,
        )
    ax.set(
        xlabel="generated tokens per problem (answer + CoT + EOS)",
        ylabel="held-out accuracy (greedy)",
        ylim=(0, 1.05),
        title="Accuracy vs tokens: CoT, no CoT, continuous thoughts",
    )
    ax.grid(alpha=0.3)
    return ax.figure


def plot_thought_heatmap(dist: pd.DataFrame, title: str = "", ax=None):
    """Heatmap of the LM head's reading of each thought (``thought_distribution``), probabilities annotated."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * len(dist)))
    ax.imshow(dist.values, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(dist.shape[1]), dist.columns)
    ax.set_yticks(range(len(dist)), dist.index)
    for i in range(dist.shape[0]):
        for j in range(dist.shape[1]):
            v = dist.values[i, j]
            if v >= 0.05:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v > 0.6 else "black")
    ax.set_title(title or "LM-head reading of each continuous thought")
    return ax.figure


def plot_thoughts_sweep(df: pd.DataFrame, trained_k: int | None = None, ax=None):
    """Accuracy against the number of thoughts at inference (``thoughts_sweep``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.3))
    ax.plot(df["thoughts"], df["accuracy"], "o-")
    if trained_k is not None:
        ax.axvline(trained_k, color="gray", ls="--", lw=1, label=f"trained with k = {trained_k}")
        ax.legend()
    ax.set(xlabel="continuous thoughts k at inference", ylabel="held-out accuracy", ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    return ax.figure


def plot_tradeoff(df: pd.DataFrame):
    """Adaptive compute (``compute_tradeoff``): accuracy and mean thoughts against the cost per thought."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(df["cost"], df["accuracy"], "o-")
    a.set(xlabel="cost per thought", ylabel="held-out accuracy", ylim=(0, 1.05))
    b.plot(df["cost"], df["thoughts"], "o-", color="C1")
    b.set(xlabel="cost per thought", ylabel="mean thoughts used")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


class LatentPanel:
    """Thoughts at inference and RL settings; Run shows the thought decoding of one problem and held-out
    accuracy, and, with GRPO steps > 0, trains a copy with GRPO through the trainer (fixed k, or adaptive k with a
    cost per thought) and measures it again.

    "Before" and "after" are measured the same way: with adaptive k both use the halting head (untrained before,
    trained after), so the change is what GRPO did; the fixed-k accuracy of the shipped model is shown beside them.
    The curriculum's recorded accuracies (``latent_report()``) are shown as a table: only the final stage's
    model ships, so there is no stage to pick.

    Args:
        model, tokenizer, task: a ``LatentReasoner`` and its tokenizer and task (the model is never modified).
        report: the build's record (``latent_report()``) for the curriculum table; None skips that part.
        eval_problems: held-out problems per evaluation.
    """

    def __init__(
        self,
        model,
        tokenizer,
        task,
        report: dict | None = None,
        n_thoughts: int = 2,
        rl_steps: int = 0,
        cost: float = 0.0,
        halting: bool = False,
        noise_std: float = 0.0,
        lr: float = 5e-5,
        eval_problems: int = 64,
    ):
        self.model, self.tokenizer, self.task, self.report = model, tokenizer, task, report
        self.eval_problems, self.result = eval_problems, None
        style = {"description_width": "120px"}
        self.controls = {
            "n_thoughts": W.IntSlider(value=n_thoughts, min=0, max=6, description="thoughts k", style=style),
            "rl_steps": int_slider(rl_steps, 0, 60, 5, description="GRPO steps", style=style),
            "halting": W.Checkbox(
                value=halting, description="adaptive k (halting head)", indent=False, layout=W.Layout(width="400px")
            ),
            "cost": W.FloatSlider(value=cost, min=0.0, max=0.5, step=0.05, description="cost per thought", style=style),
            "noise_std": W.FloatSlider(
                value=noise_std, min=0.0, max=1.0, step=0.1, description="thought noise", style=style
            ),
            "lr": log_slider(lr, 1e-5, 1e-2, description="learning rate", style=style),
        }
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status, self.out, self.table_out = W.HTML(), W.Output(), W.Output()
        values = list(self.controls.values())
        self.widget = W.VBox(
            [
                W.HBox([W.VBox(values[:3]), W.VBox(values[3:])]),
                W.HBox([self.button, self.status]),
                self.table_out,
                self.out,
            ]
        )
        if report:
            with self.table_out:
                display(curriculum_table(report).round(3))

    def settings(self) -> dict:
        """The thoughts and RL settings the controls describe."""
        return {name: c.value for name, c in self.controls.items()}

    def _accuracy(self, model, config: LatentConfig) -> dict:
        saved, model.config = model.config, config
        try:
            df = run_model(model, self.tokenizer, self.task, self.eval_problems)
        finally:
            model.config = saved
        return {"accuracy": df["correct"].mean(), "thoughts": df["thoughts"].mean()}

    def run(self) -> dict:
        """Evaluates (and trains) with the current settings; returns the numbers shown."""
        self.button.disabled = True
        try:
            s = self.settings()
            fixed = LatentConfig(n_thoughts=s["n_thoughts"])
            measured = LatentConfig(n_thoughts=s["n_thoughts"], halting=s["halting"])  # before and after alike
            result = {"settings": s, "fixed k": self._accuracy(self.model, fixed)}
            result["before"] = self._accuracy(self.model, measured) if s["halting"] else result["fixed k"]
            prompt = self.task.problems("test", 1, seed=1)[0]
            saved, self.model.config = self.model.config, fixed
            try:
                result["decoding"] = thought_distribution(self.model, self.tokenizer, prompt.prompt, s["n_thoughts"])
            finally:
                self.model.config = saved
            result["problem"] = prompt
            if s["rl_steps"] > 0:
                self.status.value = "<i>training with GRPO…</i>"
                history, trained = latent_rl(
                    self.model,
                    self.tokenizer,
                    self.task,
                    steps=s["rl_steps"],
                    cost=s["cost"],
                    halting=s["halting"],
                    n_thoughts=s["n_thoughts"],
                    noise_std=s["noise_std"],
                    lr=s["lr"],
                    prompts_per_step=8,
                )
                result["history"], result["after"] = history, self._accuracy(trained, measured)
            self.result = result
            self._show(result)
            return result
        finally:
            self.button.disabled = False

    def _show(self, r: dict) -> None:
        s, before = r["settings"], r["before"]
        text = f"shipped model, fixed k = {s['n_thoughts']}: held-out accuracy {r['fixed k']['accuracy']:.2f}"
        if s["halting"]:
            text += (
                f"<br>adaptive k, halting head before GRPO: {before['accuracy']:.2f} "
                f"(mean thoughts {before['thoughts']:.2f})"
            )
        if "after" in r:
            text += (
                f"<br>{'adaptive' if s['halting'] else 'fixed'} k after {s['rl_steps']} GRPO steps: "
                f"<b>{r['after']['accuracy']:.2f}</b> (mean thoughts {r['after']['thoughts']:.2f})"
            )
        self.status.value = text
        self.out.clear_output(wait=True)
        with self.out:
            p = r["problem"]
            fig = plot_thought_heatmap(r["decoding"], f"{p.prompt}  running values {p.answer.split(chr(10))}")
            display(fig)
            plt.close(fig)
            if "history" in r:
                h = r["history"].dropna(subset=["reward/mean"])
                fig, ax = plt.subplots(figsize=(5, 3))
                ax.plot(h["step"], h["reward/correct"], label="correct")
                if "reward/latent_steps" in h:
                    ax.plot(h["step"], h["reward/latent_steps"], label="thoughts used")
                ax.set(xlabel="GRPO step")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.legend()
                display(fig)
                plt.close(fig)

    def _ipython_display_(self):
        display(self.widget)
