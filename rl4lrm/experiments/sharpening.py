"""Sharpening versus discovery: does RL teach new solutions, or re-weight what the base model samples?

Yue et al. (2025, "Does Reinforcement Learning Really Incentivize Reasoning Capacity in LLMs Beyond the
Base Model?", arXiv:2504.13837) compare pass@k of base and RLVR models for k up to 256 and more: RL
wins at small k, the base model catches up and passes it at large k, and the problems the RL model
solves are mostly a subset of those its base already solves at some k. RL *sharpens* the sampling
distribution towards paths the base model had. ProRL (Liu et al., 2025, arXiv:2505.24864) counters
that prolonged, stable RL (KL control, reference resets, diverse tasks) *expands* the boundary, most
where the base model is weakest.

Both claims are statements about curves and sets that this module measures on the lab's models, with the
math of ``rl4lrm.passk`` (``passk_table``'s bootstrap bands and paired gaps, ``coverage_table``, ``crossover_k``):
* ``passk_curves``: samples every model on the same held-out problems and tabulates its pass@k curve;
* ``sharpening_study``: one RL run that snapshots the policy along the way, then all of the above.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.models.zoo import ZOO, load_base
from rl4lrm.passk import coverage_sets, coverage_table, crossover_k, passk_table
from rl4lrm.tasks import Task, get_task
from rl4lrm.trainer import Callback, TrainConfig, Trainer

SPLITS = ("standard", "hard")
HARD_SPLITS: dict[str, dict] = {
    # 4 numbers up to 50 for a model that saw 3 up to 20. The `countdown` base on 128 test problems x 256
    # samples at T=1: pass@1 0.005, pass@256 0.14 (18 problems solvable); -weak and -strong alike.
    "countdown": {"n_numbers": 4, "max_number": 50, "max_target": 300},
    # 3 digits for a 2-digit model: pass@1 0.013, pass@256 0.047 (6 of 128 solvable), same measurement.
    "addition": {"digits": 3},
}
"""Task settings where the zoo's base model almost never succeeds (pass@1 near 0), per task name."""


# ------------------------------------------------------------------------------------------ curves
def passk_curves(
    models: Mapping[str, torch.nn.Module],
    tokenizer,
    task: Task,
    problems: Sequence,
    n_samples: int = 256,
    ks: Sequence[int] | None = None,
    temperature: float | Mapping[str, float] = 1.0,
    max_new_tokens: int = 16,
    reference: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    style: str = "plain",
    on_model: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[int]]]:
    """Samples ``n_samples`` answers per problem from each model, verifies them, and tabulates pass@k.

    Args:
        models: ``{label: causal LM}`` sharing ``tokenizer``; the same model may appear under several
            labels with different temperatures.
        task, problems: the verifier and the (P,) held-out problems.
        n_samples: n of the estimator (the largest k).
        ks: budgets (default ``default_ks(n_samples)``).
        temperature: one sampling temperature, or ``{label: temperature}``.
        max_new_tokens: length cap of an answer.
        reference, n_boot, seed: as in ``passk_table``; ``seed`` also seeds the sampling (the same
            noise for every model).
        style: prompt style (``"plain"`` or ``"chat"``).
        on_model: called with each label before it is sampled (progress messages).

    Returns:
        ``(curves, gaps, counts)`` as in ``passk_table``, plus ``{label: (P,) correct counts}``.
    """
    counts = {}
    for label, model in models.items():
        if on_model is not None:
            on_model(label)
        temp = temperature[label] if isinstance(temperature, Mapping) else temperature
        device = next(model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed + 1)
        out = sample_and_verify(
            model.eval(), tokenizer, task, problems, n_samples, temp, max_new_tokens, style=style, generator=gen
        )
        counts[label] = out["correct"]
    curves, gaps = passk_table(counts, n_samples, ks, reference=reference, n_boot=n_boot, seed=seed)
    return curves, gaps, counts


# ------------------------------------------------------------------------------------------- study
@dataclass
class SharpeningResult:
    """What ``sharpening_study`` measured; every table covers the base and each RL checkpoint."""

    curves: pd.DataFrame
    """``label, step, k, pass@k, lo, hi``: pass@k with its bootstrap band over problems."""
    gaps: pd.DataFrame
    """``label, step, k, gap, lo, hi``: checkpoint minus base, paired bootstrap over problems."""
    coverage: pd.DataFrame
    """Per label: problems solved at k = n_samples, gained and lost relative to the base."""
    counts: dict[str, list[int]]
    """Per label: correct samples out of ``n_samples`` for each held-out problem."""
    history: pd.DataFrame
    """The RL run's metrics (``Trainer.history_frame``)."""
    n_samples: int
    """n: samples per problem, the largest k."""
    settings: dict = field(default_factory=dict)
    """The study's arguments and the resolved preset axes (kl_coef, entropy_coef, ...), device included."""
    base_resample: list[int] | None = None
    """The base model's counts from a second, independent sample: the coverage changes chance alone makes."""

    def crossovers(self, tol: float = 0.0) -> dict[str, int | None]:
        """``crossover_k(base, checkpoint)`` for each checkpoint label."""
        table = self.curves.pivot(index="k", columns="label", values="pass@k")
        return {label: crossover_k(table["base"], table[label], tol) for label in self.counts if label != "base"}

    def summary(self, ks: Sequence[int] = (1, 16, 256)) -> pd.DataFrame:
        """Per label: pass@k at the given ks (those <= n_samples), coverage and the crossover k."""
        ks = [k for k in ks if k <= self.n_samples]
        wide = self.curves[self.curves["k"].isin(ks)].pivot(index="label", columns="k", values="pass@k")
        wide = wide.rename(columns=lambda k: f"pass@{k}").reindex(list(self.counts))
        crossings = self.crossovers()
        wide["crossover k"] = pd.array([crossings.get(label) for label in wide.index], dtype="Int64")
        return wide.join(self.coverage[["solved", "gained", "lost"]])

    def report(self) -> str:
        """One line per checkpoint: the paired gap to the base at the smallest and largest k (95% intervals),
        the crossover and coverage, with a verdict that only calls a gap when its interval excludes 0."""

        def gap(label: str, k: int) -> str:
            row = self.gaps[(self.gaps["label"] == label) & (self.gaps["k"] == k)].iloc[0]
            verdict = "RL ahead" if row["lo"] > 0 else "base ahead" if row["hi"] < 0 else "no clear difference"
            return f"{row['gap']:+.3f} [{row['lo']:+.3f}, {row['hi']:+.3f}] ({verdict})"

        (k_min, k_max), lines = self.gaps["k"].agg(["min", "max"]), []
        chance = ""
        if self.base_resample is not None:
            flips = coverage_sets({"base": self.counts["base"], "again": self.base_resample})["again"]
            chance = f"; a 2nd base sample: gained {len(flips['gained'])}, lost {len(flips['lost'])} by chance"
        for label, k in self.crossovers().items():
            cov = self.coverage.loc[label, ["solved", "problems", "gained", "lost"]].astype(int)
            if not (self.gaps.loc[self.gaps["label"] == label, "lo"] > 0).any():
                crossing = "RL never clearly ahead"
            else:
                crossing = f"base catches up at k = {k}" if k is not None else "no crossing up to k = n"
            lines.append(
                f"{label}: RL − base at k={k_min} {gap(label, k_min)}; at k={k_max} {gap(label, k_max)}; "
                f"{crossing}; "
                f"solved {cov['solved']}/{cov['problems']} "
                f"(gained {cov['gained']}, lost {cov['lost']}{chance})"
            )
        return "\n".join(lines)


class _Snapshots(Callback):
    """Keeps a copy of the policy's weights after the chosen steps."""

    def __init__(self, steps: Sequence[int]):
        self.steps, self.states = set(steps), {}

    def on_step_end(self, trainer, metrics) -> None:
        if trainer.step in self.steps:
            self.states[trainer.step] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def study_task(base: str, split: str) -> Task:
    """The task of zoo entry ``base`` on ``split`` (``"standard"``: its own settings; ``"hard"``: HARD_SPLITS)."""
    if base not in ZOO:
        raise ValueError(f"unknown base model {base!r}; known: {sorted(ZOO)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    entry = ZOO[base]
    if split == "hard" and entry.task not in HARD_SPLITS:
        raise ValueError(
            f"no hard split for task {entry.task!r} (base {base!r}); tasks with one: {sorted(HARD_SPLITS)}"
        )
    return get_task(entry.task, **(entry.task_kwargs if split == "standard" else HARD_SPLITS[entry.task]))


def default_checkpoints(steps: int) -> list[int]:
    """The steps a study evaluates unless told: a quarter, half and all of the run."""
    return sorted({max(1, steps // 4), max(1, steps // 2), steps})


def sharpening_study(
    base: str = "countdown",
    split: str = "standard",
    steps: int = 100,
    checkpoints: Sequence[int] | None = None,
    n_samples: int = 256,
    eval_problems: int = 128,
    ks: Sequence[int] | None = None,
    eval_temperature: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    on_stage: Callable[[str], None] | None = None,
    callbacks: Sequence = (),
    **train_config,
) -> SharpeningResult:
    """Trains one RL run from a zoo base model and compares pass@k of the base and of checkpoints.

    Args:
        base: zoo entry to start from (``countdown``, ``countdown-weak``, ``countdown-strong``, ``addition``).
        split: ``"standard"`` (the base model's task) or ``"hard"`` (``HARD_SPLITS``): training and
            evaluation both use it.
        steps: RL steps.
        checkpoints: steps whose policy is evaluated (default: steps/4, steps/2 and steps).
        n_samples: samples per held-out problem (n of the estimator; the largest k).
        eval_problems: held-out problems (the test split, seed 0).
        ks: budgets of the curves (default ``default_ks(n_samples)``).
        eval_temperature: sampling temperature of the pass@k evaluation (training uses ``temperature``).
        n_boot: bootstrap resamples over problems.
        seed: seeds training, evaluation sampling and the bootstrap.
        progress: show the trainer's progress bar.
        on_stage: called with a short message before each stage (widgets show it).
        callbacks: extra trainer callbacks (``rl4lrm.trainer.Callback``; a progress bar, live plots).
        **train_config: other ``TrainConfig`` fields: ``preset``, ``kl_coef``, ``entropy_coef``,
            ``temperature``, ``lr``, ``max_new_tokens``, ...

    Returns:
        A ``SharpeningResult`` with labels ``"base"`` and ``"step <s>"`` per checkpoint.
    """
    checkpoints = sorted(set(checkpoints)) if checkpoints else default_checkpoints(steps)
    if not all(isinstance(s, int) and 1 <= s <= steps for s in checkpoints):
        raise ValueError(f"checkpoints must be steps in 1..steps={steps}, got {list(checkpoints)}")
    if not (isinstance(n_samples, int) and n_samples >= 1 and eval_temperature > 0):
        raise ValueError(f"need n_samples >= 1 and eval_temperature > 0, got {n_samples} and {eval_temperature}")
    task = study_task(base, split)
    defaults = dict(eval_every=steps, eval_problems=64, eval_samples=4)  # held-out pass@1 before and after
    config = TrainConfig.build(task=base, steps=steps, seed=seed, **{**defaults, **train_config})  # validates first
    stage = on_stage or (lambda message: None)
    model, tokenizer, _ = load_base(base)
    problems = task.problems("test", eval_problems, seed=0)
    models = {"base": copy.deepcopy(model)}

    stage(f"training {steps} steps")
    snapshots = _Snapshots(checkpoints)
    trainer = Trainer(
        config, model=model, tokenizer=tokenizer, task=task, callbacks=[snapshots, *callbacks], progress=progress
    )
    history = trainer.train()
    models["base"].to(trainer.device)
    for step in checkpoints:
        models[f"step {step}"] = copy.deepcopy(trainer.model)
        models[f"step {step}"].load_state_dict(snapshots.states[step])

    stage(f"sampling {n_samples} answers x {eval_problems} problems per model")
    curves, gaps, counts = passk_curves(
        models,
        tokenizer,
        task,
        problems,
        n_samples,
        ks,
        eval_temperature,
        config.max_new_tokens,
        reference="base",
        n_boot=n_boot,
        seed=seed,
        style=config.prompt_style,
        on_model=lambda label: stage(f"sampling: {label}"),
    )
    step_of = {label: 0 if label == "base" else int(label.split()[1]) for label in counts}
    curves.insert(1, "step", curves["label"].map(step_of))
    gaps.insert(1, "step", gaps["label"].map(step_of))
    settings = dict(
        base=base,
        split=split,
        task_kwargs=vars(task).copy(),
        steps=steps,
        checkpoints=checkpoints,
        n_samples=n_samples,
        eval_problems=eval_problems,
        eval_temperature=eval_temperature,
        seed=seed,
        kl_coef=config.algorithm.kl_coef,
        entropy_coef=config.algorithm.entropy_coef,
        preset=config.preset,
        temperature=config.temperature,
        device=str(trainer.device),
    )
    stage("sampling the base model a second time (the chance level of coverage changes)")
    resample = passk_curves(
        {"base": models["base"]},
        tokenizer,
        task,
        problems,
        n_samples,
        [1],
        eval_temperature,
        config.max_new_tokens,
        n_boot=1,
        seed=seed + 1,
        style=config.prompt_style,
    )[2]["base"]
    return SharpeningResult(
        curves, gaps, coverage_table(counts, "base"), counts, history, n_samples, settings, resample
    )
