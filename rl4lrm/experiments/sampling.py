"""Canned studies of the sampling strategies: where the signal is, what it costs, what the curriculum picks.

``SAMPLING_METHODS`` names the strategies compared in notebook 04 and ``benchmarks/sampling.py``
(all on the GRPO preset, so that only the sampling differs). ``signal_summary`` turns their runs into
the numbers the chapter is about: the share of groups with a learning signal and the tokens spent per
such group. ``curriculum_study`` measures the base model's pass rate on every problem of the pool and
follows which of them the curriculum picks as training goes on.
"""

from __future__ import annotations

import pandas as pd
import torch

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.trainer import Callback, TrainConfig, Trainer

TREE_SHAPE = {"segment_len": 4, "branching": (4, 2)}
SAMPLING_METHODS: dict[str, dict] = {
    "flat": {"preset": "grpo"},
    "dynamic": {"preset": "grpo", "sampler": "dynamic"},
    "curriculum": {"preset": "grpo", "sampler": "curriculum", "sampling": {"pool_size": 1024}},
    "tree, leaf GRPO": {"preset": "grpo", "sampler": "tree", "sampling": TREE_SHAPE},
    "tree, segment adv.": {"preset": "grpo", "sampler": "tree", "sampling": TREE_SHAPE, "advantage": "tree"},
}


def signal_summary(runs: pd.DataFrame, prompts_per_step: int) -> pd.DataFrame:
    """Per method: share of trained groups with a signal, share among all drawn groups, and token costs.

    Args:
        runs: long DataFrame of training histories with a ``method`` column
            (``rl4lrm.experiments.compare.compare_presets``).
        prompts_per_step: B, the groups trained on per step.

    Returns:
        One row per method: ``signal (trained)``, ``signal (drawn)`` (dynamic sampling discards the
        groups without one), ``tokens/step`` and ``tokens per signal group``.
    """
    steps = runs[runs["step"] > 0]
    rows = []
    for method, df in steps.groupby("method", sort=False):
        trained = 1 - df["reward/frac_zero_std"]
        drawn = 1 - df["sampling/drawn_frac_zero_std"] if "sampling/drawn_frac_zero_std" in df else trained
        drawn = drawn.fillna(trained)
        tokens = df["tokens/generated"].sum()
        rows.append(
            {
                "method": method,
                "signal (trained)": trained.mean(),
                "signal (drawn)": drawn.mean(),
                "tokens/step": df["tokens/generated"].mean(),
                "tokens per signal group": tokens / (trained * prompts_per_step).sum(),
            }
        )
    return pd.DataFrame(rows).set_index("method")


class _RecordPicks(Callback):
    """Keeps the pool indices the curriculum sampler chose at every step."""

    def __init__(self):
        self.picks: list[torch.Tensor] = []

    def on_rollout_end(self, trainer, batch, rewards) -> None:
        self.picks.append(trainer.sampler.last_index.clone())


def curriculum_study(
    task: str = "countdown",
    steps: int = 60,
    pool_size: int = 256,
    base_samples: int = 16,
    progress: bool = False,
    **config,
) -> tuple[pd.DataFrame, torch.Tensor, pd.DataFrame]:
    """Trains with the curriculum sampler and relates its picks to the base model's pass rates.

    Args:
        task: zoo entry to start from.
        steps: RL steps.
        pool_size: problems in the curriculum's pool.
        base_samples: samples per pool problem to measure the base model's pass rate on it.
        **config: other ``TrainConfig`` fields (``sampling`` entries are merged with the pool size).

    Returns:
        ``(per_step, base_rate, history)``: per step the base pass rate of the picked problems
        (their intrinsic difficulty for the starting model), the curriculum's own estimate and the
        batch reward; the base pass rate of each pool problem (pool_size,); the training history.
    """
    sampling = {**config.pop("sampling", {}), "pool_size": pool_size}
    cfg = TrainConfig.build(task=task, steps=steps, sampler="curriculum", sampling=sampling, **config)
    recorder = _RecordPicks()
    trainer = Trainer(cfg, callbacks=[recorder], progress=progress)
    pool = trainer.sampler.source.pool
    gen = torch.Generator(device=trainer.device).manual_seed(cfg.seed)
    counts = sample_and_verify(
        trainer.model,
        trainer.tokenizer,
        trainer.task,
        pool,
        base_samples,
        cfg.temperature,
        cfg.max_new_tokens,
        style=cfg.prompt_style,
        generator=gen,
    )["correct"]
    base_rate = torch.tensor(counts, dtype=torch.float64) / base_samples  # (pool,)
    history = trainer.train()
    rows = history[history["step"] > 0].reset_index(drop=True)
    per_step = pd.DataFrame(
        {
            "step": rows["step"],
            "picked base pass rate": [base_rate[p].mean().item() for p in recorder.picks],
            "picked estimate": rows["curriculum/selected_pass_rate"],
            "batch reward": rows["reward/mean"],
        }
    )
    return per_step, base_rate, history
