"""Memory-based RL, measured: RL on a fixed pool of hard problems with and without an episodic memory (chapter 17).

The survey (arXiv:2509.08827, §7) sees memory in RL for reasoning models growing from task-specific replay
buffers toward reusable knowledge. The study takes its simplest form, the ``memory`` sampler
(``rl4lrm.sampling.memory``): one verified solution per problem, replayed into a group whose fresh samples are
all wrong (replay of successes as in ExGRPO, arXiv:2510.02245, and RePO, arXiv:2506.09340; off-policy
guidance in all-wrong groups as in LUFFY, arXiv:2504.14945). The base is the zoo's ``countdown`` (pass@1
about 0.11): most of its groups on a pool of train problems have no correct sample, and a problem solved
once is often failed on the next visit.

Both arms use the memory sampler on the same pool, seed and steps; the control arm has ``inject=0``, so it
samples exactly what the flat sampler does and only keeps the books (which problems were ever solved). Per run:
held-out accuracy (the trainer's ``acc/pass@1``), the share of the pool ever solved by a fresh sample, the
share of trained groups with no reward contrast (``reward/frac_zero_std``), the rows the memory injected, and
at the end the policy's pass@1 on the pool itself (what it learnt of the problems it trained on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from tqdm.auto import tqdm

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.models.zoo import load_base
from rl4lrm.trainer import TrainConfig, Trainer

BASE = "countdown"
"""The zoo model every run starts from (Countdown with 3 numbers, base pass@1 about 0.11)."""
ARMS: dict[str, dict] = {
    "flat": {"inject": 0},
    "memory": {"inject": 1},
}
"""Each arm's ``MemoryConfig`` settings: ``flat`` keeps the books and never injects (the flat sampler's batches)."""


@dataclass
class MemoryRun:
    """One arm and seed: its training history and the trained policy's pass@1 on its own pool."""

    arm: str
    seed: int
    history: pd.DataFrame
    pool_acc: float
    model: torch.nn.Module | None = field(default=None, repr=False)


def pool_accuracy(model, tokenizer, task, problems, samples: int = 4, max_new_tokens: int = 16, seed: int = 0) -> float:
    """pass@1 of ``model`` on ``problems`` (the training pool): ``samples`` samples each at temperature 1."""
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    out = sample_and_verify(model, tokenizer, task, problems, samples, max_new_tokens=max_new_tokens, generator=gen)
    return sum(out["correct"]) / (samples * len(problems))


def train_arm(
    arm: str | dict, steps: int = 48, seed: int = 0, pool_size: int = 128, progress: bool = False, **config
) -> tuple[Trainer, pd.DataFrame]:
    """RL from the zoo's ``countdown`` with the memory sampler: ``arm`` names ``ARMS`` or gives its settings.

    Args:
        arm: ``"flat"``, ``"memory"`` or a dict of ``MemoryConfig`` fields.
        steps: RL steps. seed: the run's seed (the pool, sampling and minibatch order). pool_size: train problems.
        progress: the trainer's bar. **config: other ``TrainConfig`` fields (lr, prompts_per_step, eval_every, ...).

    Returns:
        The trainer (its ``sampler`` holds the memory) and the history.
    """
    settings = ARMS[arm] if isinstance(arm, str) and arm in ARMS else arm
    if not isinstance(settings, dict):
        raise ValueError(f"unknown arm {arm!r}; known: {list(ARMS)} (or a dict of MemoryConfig fields)")
    model, tokenizer, task = load_base(BASE, device=config.get("device", "cpu"))
    run = TrainConfig.build(
        **{"task": BASE, "eval_every": 8, **config},
        steps=steps,
        seed=seed,
        sampler="memory",
        sampling={"pool_size": pool_size, **settings},
    )
    trainer = Trainer(run, model, tokenizer, task, progress=progress)
    return trainer, trainer.train()


def memory_runs(
    arms: Sequence[str] | dict[str, dict] = tuple(ARMS),
    seeds: Sequence[int] = (0,),
    steps: int = 48,
    pool_size: int = 128,
    pool_samples: int = 4,
    keep_models: bool = False,
    on_run_end: Callable[[list[MemoryRun]], None] | None = None,
    progress: bool = True,
    **config,
) -> list[MemoryRun]:
    """Trains each arm for each seed on the same pool and measures the trained policy on that pool.

    Args:
        arms: names of ``ARMS`` or ``{label: MemoryConfig settings}``. seeds: one run per seed.
        steps, pool_size: RL steps and train problems per run. pool_samples: samples per pool problem at the end.
        keep_models: keep each trained policy on its run. on_run_end: called with the runs so far (live plots).
        progress: a bar over runs. **config: ``TrainConfig`` fields shared by every run.

    Returns:
        One ``MemoryRun`` per (arm, seed).
    """
    if not isinstance(arms, dict):
        unknown = [a for a in arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arms {unknown}; known: {list(ARMS)}")
        arms = {a: ARMS[a] for a in arms}
    if not arms or not seeds:
        raise ValueError("memory_runs needs at least one arm and one seed")
    runs: list[MemoryRun] = []
    jobs = [(label, settings, seed) for label, settings in arms.items() for seed in seeds]
    for label, settings, seed in tqdm(jobs, desc="memory arms", disable=not progress):
        trainer, history = train_arm(settings, steps, seed, pool_size, **config)
        acc = pool_accuracy(
            trainer.model, trainer.tokenizer, trainer.task, trainer.sampler.source.pool, pool_samples,
            trainer.config.max_new_tokens, seed,
        )  # fmt: skip
        runs.append(MemoryRun(label, seed, history, acc, trainer.model if keep_models else None))
        if on_run_end is not None:
            on_run_end(runs)
    return runs


def training_curves(runs: Sequence[MemoryRun]) -> pd.DataFrame:
    """The runs' histories in one long frame with ``arm`` and ``seed`` columns."""
    return pd.concat([r.history.assign(arm=r.arm, seed=r.seed) for r in runs], ignore_index=True)


def run_table(runs: Sequence[MemoryRun]) -> pd.DataFrame:
    """One row per run: held-out pass@1 before and after, pool pass@1 after, pool share ever solved, mean share of
    trained and of fresh groups with no reward contrast, fresh-sample accuracy, and rows injected in all."""
    rows = []
    for r in runs:
        h = r.history
        evals = h.dropna(subset=["acc/pass@1"])
        steps = h[h.step > 0]
        rows.append(
            {
                "arm": r.arm,
                "seed": r.seed,
                "acc_start": evals["acc/pass@1"].iloc[0],
                "acc_end": evals["acc/pass@1"].iloc[-1],
                "pool_acc": r.pool_acc,
                "pool_solved": steps["memory/pool_solved"].iloc[-1],
                "zero_signal": steps["reward/frac_zero_std"].mean(),
                "fresh_zero_signal": steps["memory/fresh_frac_zero_std"].mean(),
                "fresh_correct": steps["memory/fresh_correct"].mean(),
                "injected": int(steps["memory/injected"].sum()),
            }
        )
    return pd.DataFrame(rows)


def summary(runs: Sequence[MemoryRun]) -> pd.DataFrame:
    """Per arm: the mean of ``run_table``'s columns over seeds, ``<column>_std`` for the held-out and pool
    accuracies and the zero-signal share, and the number of seeds."""
    if not runs:
        raise ValueError("summary needs at least one run")
    table = run_table(runs).drop(columns="seed")
    grouped = table.groupby("arm", sort=False)
    out = grouped.mean()
    for column in ("acc_end", "pool_acc", "pool_solved", "zero_signal"):
        out[f"{column}_std"] = grouped[column].std()
    out["seeds"] = grouped.size()
    return out.reset_index()
