"""Figures and a panel for masked diffusion LMs (notebook 16): step-by-step unmasking, accuracy against
denoising steps, one-step estimator vs Monte-Carlo ELBO, and a panel that decodes, evaluates and runs GRPO."""

from __future__ import annotations

import copy

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import ListedColormap
from matplotlib.ticker import MaxNLocator

from rl4lrm.diffusion.sampling import diffusion_sample
from rl4lrm.diffusion.studies import train_grpo
from rl4lrm.evaluation import evaluate
from rl4lrm.viz.controls import RunPanel, int_slider, log_slider

MASKED_CELL = "▒"


def unmasking_grid(states: list[torch.Tensor], tokenizer, row: int = 0, mask_token_id: int | None = None):
    """Text and status of every cell of the step-by-step view of one row.

    Returns:
        ``(text, status)``: (steps + 1, L) arrays; status 0 = masked, 1 = committed before, 2 = committed at this step.
    """
    mask_id = tokenizer.mask_token_id if mask_token_id is None else mask_token_id
    grid = torch.stack([s[row] for s in states])  # (S+1, L)
    masked = grid == mask_id  # (S+1, L)
    status = np.where(masked.numpy(), 0, 1)
    status[1:][(~masked[1:] & masked[:-1]).numpy()] = 2
    names = {tokenizer.eos_token_id: "EOS", tokenizer.pad_token_id: "pad"}
    text = np.array(
        [
            [
                MASKED_CELL if m else names.get(t, tokenizer.convert_ids_to_tokens(t))
                for t, m in zip(ids.tolist(), mk.tolist())
            ]
            for ids, mk in zip(grid, masked)
        ]
    )
    return text, status


def plot_unmasking(
    states: list[torch.Tensor],
    tokenizer,
    row: int = 0,
    prompt: str | None = None,
    ax=None,
    confidence: torch.Tensor | None = None,
):
    """Rows = denoising steps (top: all masked), columns = completion positions; new commits highlighted."""
    text, status = unmasking_grid(states, tokenizer, row)
    S, L = text.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(0.7 * L + 1.5, 0.38 * S + 0.8))
    ax.imshow(status, cmap=ListedColormap(["#dddddd", "#ffffff", "#9ecae1"]), vmin=0, vmax=2, aspect="auto")
    for i in range(S):
        for j in range(L):
            ax.text(
                j,
                i,
                text[i, j],
                ha="center",
                va="center",
                fontsize=9,
                color="#888888" if status[i, j] == 0 else "black",
                fontweight="bold" if status[i, j] == 2 else None,
            )
    ax.set_xticks(range(L))
    ax.set_xticklabels(
        [str(j) if confidence is None else f"{j}\np={confidence[row, j]:.2f}" for j in range(L)], fontsize=7
    )
    ax.set_yticks(range(S))
    ax.set_yticklabels(["start"] + [f"step {s}" for s in range(1, S)], fontsize=8)
    ax.set_xticks(np.arange(-0.5, L), minor=True)
    ax.set_yticks(np.arange(-0.5, S), minor=True)
    ax.grid(which="minor", color="#999999", lw=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"{prompt or ''} unmasking, blue = committed at this step", fontsize=9)
    return ax


def plot_steps_study(table: pd.DataFrame, ax=None, title: str | None = None):
    """Accuracy against denoising steps, one line per remasking strategy (``steps_study``'s table)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.2))
    for strategy, df in table.groupby("remasking", sort=False):
        ax.plot(df["steps"], df["accuracy"], marker="o", label=strategy)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(table["steps"].unique()))
    ax.set_xticklabels(sorted(table["steps"].unique()))
    ax.set_xlabel("denoising steps (forward passes)")
    ax.set_ylabel("held-out sampled accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "quality vs steps", fontsize=10)
    return ax


def plot_estimators(per_sequence: pd.DataFrame, ax=None):
    """One-step estimate (mean over prompt masks, ± one single-forward std) against the MC ELBO reference."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    ref, one = per_sequence["reference"], per_sequence["one_step"]
    ax.errorbar(ref, one, yerr=per_sequence["one_step_std"], fmt="o", ms=4, alpha=0.7, label="one-step (d1)")
    lo, hi = min(ref.min(), one.min()), max(ref.max(), one.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel("MC ELBO reference (nats)")
    ax.set_ylabel("one-step estimate (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("sequence log-likelihood estimates", fontsize=10)
    return ax


class DiffusionPanel(RunPanel):
    """Sampler settings (steps, remasking, block length, temperature) and RL settings (GRPO steps, learning
    rate); Run decodes one prompt step by step, measures held-out accuracy with these settings, and, with
    RL steps > 0, trains a copy of the model with GRPO through the trainer and measures it again.

    Args:
        model, tokenizer, task: a ``DiffusionLM`` and its tokenizer and task (the model is never modified).
        eval_problems, eval_samples: size of each held-out evaluation.
    """

    def __init__(
        self,
        model,
        tokenizer,
        task,
        steps: int = 8,
        remasking: str = "low_confidence",
        block_length: int | None = None,
        temperature: float = 1.0,
        rl_steps: int = 0,
        lr: float = 1e-4,
        eval_problems: int = 64,
        eval_samples: int = 2,
    ):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.eval_problems, self.eval_samples, self.result = eval_problems, eval_samples, None
        L, style = model.gen_length, {"description_width": "110px"}
        blocks = [None] + [b for b in range(1, L) if L % b == 0]
        controls = {
            "steps": W.IntSlider(value=steps, min=1, max=L, description="denoising steps", style=style),
            "remasking": W.Dropdown(
                options=["low_confidence", "random"], value=remasking, description="remasking", style=style
            ),
            # 0 stands for "no blocks": a Dropdown cannot select the value None (it means "nothing selected")
            "block_length": W.Dropdown(
                options=[("whole completion", 0)] + [(str(b), b) for b in blocks[1:]],
                value=block_length or 0,
                description="block length",
                style=style,
            ),
            "temperature": W.FloatSlider(
                value=temperature, min=0.0, max=1.5, step=0.1, description="temperature", style=style
            ),
            "rl_steps": int_slider(rl_steps, 0, 100, 5, description="GRPO steps", style=style),
            "lr": log_slider(lr, 1e-5, 1e-3, description="learning rate", style=style),
        }
        self.layout(controls, left=4)

    def settings(self) -> dict:
        """The sampler and RL settings the controls describe (``block_length`` None: the whole completion)."""
        values = super().settings()
        return values | {"block_length": values["block_length"] or None}

    def _accuracy(self, model, temperature: float) -> float:
        gen = torch.Generator(device=next(model.parameters()).device).manual_seed(0)
        problems = self.task.problems("test", self.eval_problems, seed=0)
        return evaluate(
            model,
            self.tokenizer,
            self.task,
            problems,
            self.eval_samples,
            temperature=temperature,
            max_new_tokens=model.gen_length,
            generator=gen,
        )["acc/pass@1"]

    def run(self) -> dict:
        """Decodes, evaluates (and trains) with the current settings; returns the numbers shown."""
        with self.busy():
            s = self.settings()
            model = copy.deepcopy(self.model)
            model.sampling.steps, model.sampling.remasking, model.sampling.block_length = (
                s["steps"],
                s["remasking"],
                s["block_length"],
            )
            problem = self.task.problems("test", 1, seed=1)[0]
            device = next(model.parameters()).device
            enc = self.tokenizer([problem.prompt], return_tensors="pt", add_special_tokens=False).to(device)
            sample = diffusion_sample(
                model,
                enc["input_ids"],
                enc["attention_mask"],
                model.gen_length,
                s["steps"],
                s["remasking"],
                s["block_length"],
                s["temperature"],
                1.0,
                torch.Generator(device=device).manual_seed(0),
                return_states=True,
            )
            sample.states = [x.cpu() for x in sample.states]
            result = {"before": self._accuracy(model, s["temperature"]), "states": sample.states}
            if s["rl_steps"] > 0:
                self.status.value = "<i>training with GRPO…</i>"
                _, history = train_grpo(
                    model,
                    self.tokenizer,
                    self.task,
                    s["rl_steps"],
                    lr=s["lr"],
                    device=str(device),
                    temperature=max(s["temperature"], 0.1),
                    eval_problems=self.eval_problems,
                    eval_samples=self.eval_samples,
                )
                result["history"] = history
                result["after"] = self._accuracy(model, s["temperature"])
            self.result = result
            after = f" → <b>{result['after']:.2f}</b> after {s['rl_steps']} GRPO steps" if "after" in result else ""
            self.status.value = f"held-out accuracy {result['before']:.2f}{after}"
            fig, axes = plt.subplots(1, 2 if "history" in result else 1, figsize=(11, 3.6), squeeze=False)
            plot_unmasking(
                sample.states, self.tokenizer, 0, problem.prompt, ax=axes[0, 0], confidence=sample.confidence.cpu()
            )
            if "history" in result:
                h = result["history"]
                axes[0, 1].plot(h["step"], h["reward/mean"], label="training reward (one batch: noisy)")
                axes[0, 1].plot(  # the status line's two measurements, at the steps they were taken
                    [0, s["rl_steps"]], [result["before"], result["after"]], "o-", label="held-out accuracy"
                )
                axes[0, 1].set_xlabel("GRPO step")
                axes[0, 1].set_ylabel("reward / accuracy")
                axes[0, 1].set_title("GRPO on the diffusion model", fontsize=10)
                axes[0, 1].xaxis.set_major_locator(MaxNLocator(integer=True))
                axes[0, 1].grid(alpha=0.3)
                axes[0, 1].legend(fontsize=8)
            fig.tight_layout()
            plt.close(fig)
            self.show(fig)
        return self.result
