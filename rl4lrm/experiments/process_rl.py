"""RL with outcome vs process rewards on ``chain`` at an equal budget, and a learned PRM under optimisation pressure.

The arms (``REWARD_ARMS``) share one GRPO run's budget: the same steps, prompts, samples per prompt and length cap,
so the same number of sampled tokens up to the lengths the policies choose (the ``tokens`` column counts them);
only ``TrainConfig.rewards`` changes. A PRM arm pays extra compute outside that budget: sampling and labelling its
training solutions and training it (``rl4lrm.experiments.process_outcome.train_verifiers``). Held-out accuracy is
always the task's verifier.

``hacking_study`` optimises the policy against the learned PRM alone with no KL term and a larger learning rate:
the proxy reward (the PRM's score, ``reward/prm``) and the gold one (``reward/correct``) are logged side by side
with the KL from the start, the framing of Gao et al. (2023), "Scaling Laws for Reward Model Overoptimization"
(arXiv:2210.10760): past some KL, a learned reward keeps rising while the true one stalls or falls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.experiments.compare import compare_presets
from rl4lrm.rewards.prm import prm_scores, step_record
from rl4lrm.trainer import TrainConfig, Trainer

REWARD_ARMS: dict[str, dict] = {
    "outcome": {"correct": 1.0},
    "process (true steps)": {"step_correct": 1.0},
    "process (PRM)": {"prm": 1.0},
    "outcome + PRM": {"correct": 0.5, "prm": 0.5},
}
"""Training rewards by name. ``step_correct`` gives each step before the first error 1/num_steps (PRM800K-style
labels, exact on ``chain``); ``prm`` gives each step PRM(step)/num_steps; the mix weighs outcome and PRM equally."""

STUDY_CONFIG: dict = {"task": "chain", "preset": "grpo", "kl_coef": 0.0, "eval_problems": 128}
"""Settings shared by every arm: the zoo's ``chain`` base, GRPO without its KL term (so the arms differ in the
reward only), 16 prompts × 8 samples per step (``TrainConfig``'s defaults)."""

HACK_CONFIG: dict = {"lr": 1e-3, "kl_coef": 0.0, "track_kl": True}
"""``hacking_study``'s pressure: three times the usual learning rate, no KL term, the KL to the start logged."""


def reward_arms(names: Sequence[str] | None = None, prm=None) -> dict[str, dict]:
    """``{label: settings}`` for ``compare_presets``: each arm's ``rewards``, the PRM bound where an arm needs it.

    Args:
        names: keys of ``REWARD_ARMS`` (default: all).
        prm: a trained ``ProcessRewardModel``; required when an arm uses ``prm``.
    """
    names = list(REWARD_ARMS) if names is None else list(names)
    unknown = [n for n in names if n not in REWARD_ARMS]
    if unknown:
        raise ValueError(f"unknown reward arms {unknown}; known: {list(REWARD_ARMS)}")
    arms = {}
    for name in names:
        rewards = dict(REWARD_ARMS[name])
        if "prm" in rewards:
            if prm is None:
                raise ValueError(f"arm {name!r} needs a trained PRM: pass prm=train_verifiers(...).prm")
            rewards["prm"] = (rewards["prm"], {"prm": prm})
        arms[name] = {"preset": STUDY_CONFIG["preset"], "rewards": rewards}
    return arms


def with_tokens(runs: pd.DataFrame, prompts_per_step: int = 16, group_size: int = 8) -> pd.DataFrame:
    """Adds ``tokens``: the completion tokens sampled so far in each run (``length/mean`` × N per step)."""
    sampled = runs["length/mean"].fillna(0) * prompts_per_step * group_size
    return runs.assign(tokens=sampled.groupby([runs["method"], runs["seed"]]).cumsum())


def rl_study(
    arms: dict[str, dict],
    seeds: tuple[int, ...] = (0,),
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = False,
    **config,
) -> pd.DataFrame:
    """Trains every arm for every seed on ``chain`` at one budget; one row per run and step, with ``tokens``.

    Args:
        arms: ``reward_arms(...)``.
        seeds, on_run_end, progress: as ``compare_presets``.
        **config: ``TrainConfig`` fields over ``STUDY_CONFIG`` (``steps``, ``eval_every``, ...).
    """
    settings = {**STUDY_CONFIG, **config}
    runs = compare_presets(arms, seeds=seeds, on_run_end=on_run_end, progress=progress, **settings)
    return with_tokens(runs, settings.get("prompts_per_step", 16), settings.get("group_size", 8))


def hacking_study(prm, steps: int = 150, seed: int = 0, **config) -> tuple[pd.DataFrame, Trainer]:
    """Optimises the ``chain`` policy against the PRM alone under ``HACK_CONFIG``'s pressure.

    Returns:
        The history (``reward/prm``: the proxy, ``reward/correct``: the gold reward on the same samples,
        ``acc/pass@1`` held out, ``kl/k3`` from the start) and the trainer (its ``model`` is the optimised policy).
    """
    settings = {**STUDY_CONFIG, **HACK_CONFIG, "steps": steps, "seed": seed, **config}
    settings["rewards"] = {"prm": (1.0, {"prm": prm})}
    trainer = Trainer(TrainConfig.build(**settings), progress=False)
    return trainer.train(), trainer


def proxy_vs_gold(history: pd.DataFrame, window: int = 10) -> pd.DataFrame:
    """Rolling means of the proxy (PRM) and gold (verifier) training rewards and of the KL, per step.

    Both rewards are on one scale: a fully right chain earns 1 from either (the PRM's step scores are divided by the
    number of steps), so their gap is how much of the PRM's reward is not earned by right answers.
    """
    cols = {"reward/prm": "proxy (PRM)", "reward/correct": "gold (verifier)", "kl/k3": "KL to start"}
    train = history[history["step"] > 0].set_index("step")[[c for c in cols if c in history]]
    return train.rolling(window, min_periods=1).mean().rename(columns=cols)


def policy_examples(model, tokenizer, task, prm, n: int = 8, seed: int = 0) -> pd.DataFrame:
    """One sampled solution (T = 1) per held-out problem from ``model``, with the PRM's step scores and the truth.

    Returns:
        One row per problem: ``prompt``, ``answer`` (the true running values), ``completion``, ``PRM step scores``,
        ``PRM reward`` (their sum / number of steps, the training reward) and ``correct`` (the verifier).
    """
    problems = task.problems("test", n, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    texts = sample_and_verify(model, tokenizer, task, problems, 1, max_new_tokens=16, generator=gen)["completions"]
    records = [step_record(task, p, c) for p, c in zip(problems, texts)]
    scores = prm_scores(prm, tokenizer, task, records)
    return pd.DataFrame(
        {
            "prompt": [p.prompt for p in problems],
            "answer": [p.answer.replace("\n", " | ") for p in problems],
            "completion": [c.replace("\n", " | ") for c in texts],
            "PRM step scores": [[round(s, 2) for s in row] for row in scores],
            "PRM reward": [sum(row) / task.num_steps(p) for row, p in zip(scores, problems)],
            "correct": [task.verify(p, c).correct for p, c in zip(problems, texts)],
        }
    )
