"""GRPO on a real instruct model with the course's own trainer: the settings that change from the tiny zoo models,
the base model's accuracy, and one measured run (throughput, step time, peak memory, MFU), with or without LoRA.

Nothing here is specific to SmolLM2: ``run_grpo`` takes any causal LM and tokenizer (``rl4lrm.models.loaders``:
``load_smollm2`` or ``load_hf(path)``) and any task wrapped in chat form (``rl4lrm.real.chat.ChatTask``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from rl4lrm.evaluation import evaluate
from rl4lrm.real.lora import LoRAConfig, add_lora, parameter_counts, training_state_bytes
from rl4lrm.real.measure import mfu, peak_flops, peak_memory_gib, reset_peak_memory, update_flops
from rl4lrm.tasks.base import Task
from rl4lrm.trainer import Callback, TrainConfig, Trainer
from rl4lrm.utils import resolve_device

# what changes from the tiny zoo models (chapters 1-17) to a 135M instruct model, and why
TINY_VS_REAL = pd.DataFrame(
    [
        ("parameters", "~0.1-0.8M", "135M", "1000x more compute per token: rollouts dominate less, updates more"),
        ("tokenizer", "characters (~20 ids)", "BPE, 49,152 ids", "a completion of 10 words is ~15 tokens, not ~50"),
        ("prompt", "'12+34='", "chat template + system turn (~70 tokens)", "the model was tuned on chats"),
        ("max_new_tokens", "8-16", "32 (CPU) / 256 (GPU)", "a real model explains before answering"),
        (
            "lr (full fine-tuning)",
            "3e-4",
            "1e-6",
            "large steps erase what pretraining taught (RL recipes for 1B+ models: 1e-6 to 3e-6)",
        ),
        ("lr (LoRA)", "-", "2e-5", "the low-rank update is scaled by alpha/r and starts at 0"),
        ("KL to the reference", "0 (tiny runs drift freely)", "0.001-0.04", "keeps the chat skills while RL moves"),
        ("verifier", "exact match of '46'", "tagged answer, else last number", "untagged right answers count"),
    ],
    columns=["setting", "tiny zoo model", "real model (SmolLM2-135M)", "why"],
)


def real_config(mode: str = "quick", lora: bool = False, device: str = "auto", **changes) -> TrainConfig:
    """GRPO settings for a 135M chat model: ``"quick"`` a few CPU steps (the loop runs, figures are printed),
    ``"full"`` a run meant for a GPU (hours on a CPU).

    Args:
        mode: ``"quick"`` or ``"full"``.
        lora: LoRA's learning rate (2e-5) instead of full fine-tuning's (1e-6).
        device: the trainer's device.
        changes: any ``TrainConfig`` field or preset axis, applied last.
    """
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    quick = mode == "quick"
    settings = dict(
        preset="grpo",
        prompt_style="chat",
        steps=2 if quick else 200,
        prompts_per_step=2 if quick else 32,
        group_size=4 if quick else 8,
        max_new_tokens=32 if quick else 256,
        temperature=1.0,
        lr=(2e-5 if lora else 1e-6),
        warmup_steps=0 if quick else 10,
        kl_coef=0.0 if quick else 0.001,  # no reference copy on the CPU; a small KL on the GPU
        eval_every=0 if quick else 25,
        eval_problems=64,
        eval_samples=4,
        device=device,
    )
    return TrainConfig.build(**{**settings, **changes})


def base_accuracy(
    model,
    tokenizer,
    task: Task,
    n: int = 8,
    samples: int = 2,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """pass@1 (``acc/pass@1``), mean length and format rate of ``model`` on ``n`` test problems in chat form."""
    device = next(model.parameters()).device
    return evaluate(
        model,
        tokenizer,
        task,
        task.problems("test", n, seed=seed),
        samples,
        ks=(1,),
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        style="chat",
        generator=torch.Generator(device=device).manual_seed(seed),
    )


class _Meter(Callback):
    """Records each step's batch size in tokens, for the update's FLOPs."""

    def __init__(self):
        self.update_tokens: list[int] = []

    def on_rollout_end(self, trainer, batch, rewards):
        self.update_tokens.append(int(batch.attention_mask.sum()) * trainer.algo.update_epochs)


@dataclass
class RealRun:
    """What ``run_grpo`` measured."""

    history: pd.DataFrame  # the trainer's metrics, one row per step (row 0: before training)
    params: dict[str, int]  # {"total", "trained"}
    state_gib: float  # weights + gradients + AdamW moments (training_state_bytes), GiB
    peak_memory_gib: float  # GPU: peak allocated; CPU: the process's peak RSS
    rollout_tokens_per_s: float  # generated tokens / rollout seconds, over all steps
    seconds_per_step: float  # mean wall time of a step (rollout, scoring, update)
    update_mfu: float | None  # update FLOPs / update seconds / the chip's peak; None on the CPU
    lora: bool
    device: str
    summary: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The figures as one printable table."""
        rows = {
            "device": self.device,
            "fine-tuning": "LoRA" if self.lora else "full",
            "parameters trained": f"{self.params['trained']:,} of {self.params['total']:,}",
            "training state (GiB)": f"{self.state_gib:.3f}",
            "peak memory (GiB)": f"{self.peak_memory_gib:.2f}",
            "rollout tokens/s": f"{self.rollout_tokens_per_s:.1f}",
            "seconds/step": f"{self.seconds_per_step:.2f}",
            "update MFU": "n/a (CPU)" if self.update_mfu is None else f"{self.update_mfu:.1%}",
        }
        return pd.DataFrame({"figure": list(rows), "value": list(rows.values())})


def run_grpo(model, tokenizer, task: Task, config: TrainConfig, lora: LoRAConfig | bool | None = None) -> RealRun:
    """GRPO with the course's ``Trainer`` on a real model, measured.

    Args:
        model, tokenizer: a causal LM with a chat template (``rl4lrm.models.loaders``).
        task: a task in chat form (``ChatTask``), used with ``config.prompt_style="chat"``.
        config: e.g. ``real_config("quick")``.
        lora: a ``LoRAConfig`` (or True for the default one) trains adapters only; None/False trains every weight.

    Returns:
        A ``RealRun``. ``model`` itself is trained in place (wrapped in adapters when ``lora``).
    """
    if lora:
        model = add_lora(model, lora if isinstance(lora, LoRAConfig) else LoRAConfig())
    device = resolve_device(config.device)
    reset_peak_memory(device)
    meter = _Meter()
    trainer = Trainer(config, model=model, tokenizer=tokenizer, task=task, callbacks=[meter], progress=False)
    start = time.perf_counter()
    history = trainer.train()
    wall = time.perf_counter() - start
    steps = history[history["step"] > 0]
    generated = float(steps["tokens/generated"].sum())
    rollout_s = float(steps["time/rollout"].sum())
    update_s = float((steps["time/step"] - steps["time/rollout"]).sum())
    params = parameter_counts(trainer.model)
    dtype = next(trainer.model.parameters()).dtype
    flops = update_flops(params["total"], sum(meter.update_tokens), lora=bool(lora))
    return RealRun(
        history=history,
        params=params,
        state_gib=training_state_bytes(trainer.model)["total"] / 2**30,
        peak_memory_gib=peak_memory_gib(device),
        rollout_tokens_per_s=generated / rollout_s,
        seconds_per_step=float(steps["time/step"].mean()),
        update_mfu=mfu(flops, update_s, peak_flops(device, dtype)),
        lora=bool(lora),
        device=str(device),
        summary={"wall_s": wall, "update_s": update_s, "rollout_s": rollout_s, "update_flops": flops},
    )
