"""Plots and the panel of notebook 13: images with the model's answers, error kinds, GRPO curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from rl4lrm.vision.studies import answer_table, summarize, vision_rl
from rl4lrm.vision.task import ERROR_KINDS, to_rgb
from rl4lrm.viz.controls import RunPanel, int_slider, log_slider

KIND_COLOURS = {"correct": "tab:green", "perception": "tab:red", "reasoning": "tab:orange", "format": "tab:gray"}


def plot_answers(task, problems, table: pd.DataFrame, n: int = 8, title: str = ""):
    """The first ``n`` images with the question, the model's completion and the truth, titled in the kind's colour
    (an ``answer_table`` with one completion per problem), under ``title`` if given."""
    n = min(n, len(problems))
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 2.1), squeeze=False)
    for ax, p, (_, row) in zip(axes[0], problems[:n], table.head(n).iterrows()):
        ax.imshow(to_rgb(task.pixels(p)), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        truth = p.meta["target"]
        ax.set_title(
            f"{row['asked']}?\n{row['completion'] or '∅'}\n(true {truth})", fontsize=8, color=KIND_COLOURS[row["kind"]]
        )
    if title:
        fig.suptitle(title, fontsize=10, fontweight="bold")
    fig.tight_layout()  # after the title, so that the images' titles make room for it
    return fig


def plot_error_kinds(frame: pd.DataFrame, ax=None):
    """Stacked bars of the greedy answers' kinds, one bar per row of a ``rl_before_after``-style frame."""
    ax = ax or plt.subplots(figsize=(4, 3))[1]
    bottom = [0.0] * len(frame)
    for kind in ERROR_KINDS:
        values = frame[f"greedy/{kind}"].tolist()
        ax.bar(frame["model"], values, bottom=bottom, color=KIND_COLOURS[kind], label=kind)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set(ylabel="share of greedy answers", ylim=(0, 1))
    ax.legend(fontsize=8, loc="upper right")
    return ax.figure


def plot_rl_curves(history: pd.DataFrame, ax=None):
    """Training reward and held-out pass@1 against the GRPO step."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    h = history.dropna(subset=["reward/mean"])
    ax.plot(h["step"], h["reward/mean"].rolling(5, min_periods=1).mean(), label="reward (rolling mean of 5)")
    ev = history.dropna(subset=["acc/pass@1"])
    ax.plot(ev["step"], ev["acc/pass@1"], "o-", label="held-out pass@1")
    ax.set(xlabel="GRPO step", ylim=(0, 1))
    ax.legend(fontsize=8)
    return ax.figure


class VisionPanel(RunPanel):
    """GRPO steps and learning rate; Run shows images with the base model's answers, then trains a copy with
    GRPO through the trainer and shows its answers, the error kinds before and after, and the curves.

    Args:
        model, tokenizer, task: the base ``VisionLM`` (never modified), its tokenizer and ``CountingTask``.
        eval_problems: held-out problems per ``summarize``.
    """

    def __init__(self, model, tokenizer, task, rl_steps: int = 60, lr: float = 1e-4, eval_problems: int = 128):
        self.model, self.tokenizer, self.task, self.eval_problems, self.result = (
            model,
            tokenizer,
            task,
            eval_problems,
            None,
        )
        self.layout(
            {
                "rl_steps": int_slider(rl_steps, 0, 300, 10, description="GRPO steps"),
                "lr": log_slider(lr, 1e-5, 1e-3, description="learning rate"),
            }
        )

    def run(self) -> dict:
        """Measures the base, trains a copy with the current settings, measures it; returns the numbers shown."""
        with self.busy():
            s = self.settings()
            rows = [{"model": "base", **summarize(self.model, self.tokenizer, self.task, self.eval_problems)}]
            result = {"settings": s, "models": {"base": self.model}}
            if s["rl_steps"] > 0:
                self.status.value = "<i>training with GRPO…</i>"
                history, trained = vision_rl(self.model, self.tokenizer, self.task, steps=s["rl_steps"], lr=s["lr"])
                rows.append({"model": "GRPO", **summarize(trained, self.tokenizer, self.task, self.eval_problems)})
                result["history"], result["models"]["GRPO"] = history, trained
            result["frame"] = pd.DataFrame(rows)
            self.result = result
            self._show(result)
            return result

    def _show(self, r: dict) -> None:
        frame = r["frame"]
        self.status.value = " · ".join(
            f"{m}: greedy {g:.2f}, pass@1 {p:.2f}" for m, g, p in frame[["model", "greedy", "pass@1"]].values
        )
        self.out.clear_output(wait=True)
        problems = self.task.problems("test", 8, seed=0)
        with self.out:
            for name, model in r["models"].items():
                table = answer_table(model, self.tokenizer, self.task, problems)
                fig = plot_answers(self.task, problems, table, title=name)
                display(fig)
                plt.close(fig)
            fig, axes = plt.subplots(1, 2, figsize=(9, 3))
            plot_error_kinds(frame, axes[0])
            if "history" in r:
                plot_rl_curves(r["history"], axes[1])
            fig.tight_layout()
            display(fig)
            plt.close(fig)
