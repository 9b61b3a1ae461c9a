"""Notebook 18's widgets and plots: a panel that runs a few GRPO steps on a real model (full or LoRA) and shows what
they cost, and a bar chart of LoRA against full fine-tuning."""

from __future__ import annotations

import copy

import ipywidgets as W
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from rl4lrm.real.lora import LoRAConfig
from rl4lrm.real.studies import real_config, run_grpo
from rl4lrm.viz.controls import RunPanel, int_slider, log_slider


def plot_state_memory(table: pd.DataFrame, ax=None):
    """Bars of the training state (weights, gradients, AdamW moments) in MiB per fine-tuning method.

    Args:
        table: one row per method (the index), columns ``weights``, ``grads``, ``adam`` in bytes.
    """
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    (table[["weights", "grads", "adam"]] / 2**20).plot.barh(stacked=True, ax=ax)
    ax.set_xlabel("MiB (float32)")
    ax.set_title("training state before activations")
    ax.grid(alpha=0.3, axis="x")
    return ax


class RealPanel(RunPanel):
    """GRPO settings for a real chat model; Run trains a copy of the model for a few steps through the course's
    trainer (full fine-tuning or LoRA) and shows the batch reward and what the run cost.

    Args:
        model, tokenizer, task: a causal LM with a chat template and a task in chat form (the model is never
            modified: each run trains a copy).
        device: where the copy trains.
    """

    def __init__(
        self,
        model,
        tokenizer,
        task,
        steps: int = 2,
        lora: bool = True,
        rank: int = 16,
        lr: float = 2e-5,
        prompts: int = 2,
        group_size: int = 4,
        max_new_tokens: int = 32,
        device: str = "auto",
    ):
        self.model, self.tokenizer, self.task, self.device, self.result = model, tokenizer, task, device, None
        style = {"description_width": "120px"}
        controls = {
            "steps": int_slider(steps, 1, 50, 1, description="GRPO steps", style=style),
            "lora": W.Checkbox(value=lora, description="LoRA (else full)", style=style),
            "rank": int_slider(rank, 1, 64, 1, description="LoRA rank", style=style),
            "lr": log_slider(lr, 1e-7, 1e-3, description="learning rate", style=style),
            "prompts": int_slider(prompts, 1, 16, 1, description="prompts / step", style=style),
            "group_size": int_slider(group_size, 2, 16, 1, description="samples / prompt", style=style),
            "max_new_tokens": int_slider(max_new_tokens, 8, 256, 8, description="max new tokens", style=style),
        }
        # the rank means nothing for full fine-tuning: greyed out while LoRA is off
        rank = controls["rank"]
        rank.disabled = not lora
        controls["lora"].observe(lambda change: setattr(rank, "disabled", not change.new), "value")
        self.layout(controls, left=4)

    def run(self):
        """Trains a copy with the current settings; returns the ``RealRun`` shown."""
        with self.busy("training with GRPO…"):
            s = self.settings()
            config = real_config(
                "quick",
                lora=s["lora"],
                device=self.device,
                steps=s["steps"],
                lr=s["lr"],
                prompts_per_step=s["prompts"],
                group_size=s["group_size"],
                max_new_tokens=s["max_new_tokens"],
            )
            lora = LoRAConfig(rank=s["rank"], alpha=2.0 * s["rank"]) if s["lora"] else None
            self.result = run = run_grpo(copy.deepcopy(self.model), self.tokenizer, self.task, config, lora=lora)
            self.status.value = (
                f"{run.rollout_tokens_per_s:.0f} rollout tokens/s, {run.seconds_per_step:.1f} s/step, "
                f"{run.params['trained']:,} parameters trained"
            )
            fig, ax = plt.subplots(figsize=(5, 2.8))
            h = run.history[run.history["step"] > 0]
            ax.plot(h["step"], h["reward/mean"], marker="o", label="batch reward")
            ax.plot(h["step"], h["reward/frac_zero_std"], marker="x", label="groups without signal")
            ax.set_xlabel("GRPO step")
            ax.set_ylim(-0.05, 1.05)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            plt.close(fig)
            self.show(fig, run.table())
        return self.result
