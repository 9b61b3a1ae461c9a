"""RL on code with unit-test rewards (chapter 11; survey §3.1.1 and §6.1 on coding tasks).

The zoo's ``code`` model writes one line of Python from a spec (``rl4lrm.tasks.code``); its answers run in
``rl4lrm.sandbox`` on hidden tests. The studies:

- ``sample_programs``: per-sample verdicts of a model on held-out specs (tests passed, all passed, what the unsafe
  naive harness would have said, whether the answer is the planted hack);
- ``train_code``: GRPO with one training reward (``"unit_tests_all"``, ``"unit_tests_partial"`` or the unsafe
  ``"naive_unit_tests"``), held-out pass@1 in the sandbox before and after, sandbox programs per second;
- ``reward_runs``: binary vs partial-credit reward, same steps and seeds;
- ``hacking_runs``: the naive harness vs the sandbox as the reward. The zoo model's SFT corpus holds 10% of a
  test-gaming answer (``__import__('sys').exit()``, ``Code.corpus_hacks``), so the hack is in the model's reach:
  the naive reward pays it 1, the sandboxed reward 0. In our CPU runs GRPO did not amplify it even under the naive
  reward (correct programs were as reachable and paid the same; the hack only beats wrong samples), while the
  sandboxed reward removed it faster. Frontier models find such hacks on their own when the honest solution is
  harder than the hack (Baker et al., 2025, arXiv:2503.11926).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from rl4lrm.models.zoo import load_base
from rl4lrm.rewards.code import naive_harness_score
from rl4lrm.rollout import rollout
from rl4lrm.tasks.base import Problem, extract_answer
from rl4lrm.tasks.code import HACK, Code
from rl4lrm.trainer import Callback, TrainConfig, Trainer

BASE = "code"
"""The zoo model every study starts from."""
MAX_NEW_TOKENS = 40
"""Room for the longest canonical answer (35 characters) and the planted hack (24)."""
REWARD_CHOICES = ("unit_tests_all", "unit_tests_partial", "naive_unit_tests")
"""Training rewards: all tests pass (binary), fraction passed (partial), and the unsafe naive harness."""


def sample_programs(
    model, tokenizer, task: Code, problems: Sequence[Problem], samples: int = 4, temperature: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """Samples ``samples`` answers per problem and scores each in the sandbox and with the naive harness.

    Returns:
        One row per sample: ``spec``, ``answer`` (parsed, "" if none), ``passed`` (fraction of hidden tests),
        ``correct`` (all passed), ``naive`` (the naive harness's verdict), ``hack`` (the answer is the planted hack).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples!r}")
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    batch = rollout(model, tokenizer, [p.prompt for p in problems], samples, MAX_NEW_TOKENS, temperature, generator=gen)
    rows = [p for p in problems for _ in range(samples)]
    reports = task.run_tests(rows, batch.completions)
    return pd.DataFrame(
        {
            "spec": [p.key for p in rows],
            "answer": [extract_answer(c, task.max_answer_chars) or "" for c in batch.completions],
            "passed": [r.fraction for r in reports],
            "correct": [r.passed == r.total for r in reports],
            "naive": [s == 1.0 for s in naive_harness_score(rows, batch.completions, task.sandbox)],
            "hack": [(extract_answer(c, 80) or "") == HACK for c in batch.completions],
        }
    )


def profile(answers: pd.DataFrame) -> dict[str, float]:
    """``pass@1`` (sandbox), ``tests passed`` (mean fraction), ``naive pass@1`` (what the naive harness reports) and
    ``hack rate`` (share of samples that are the planted hack) of ``sample_programs``' answers."""
    return {
        "pass@1": float(answers.correct.mean()),
        "tests passed": float(answers.passed.mean()),
        "naive pass@1": float(answers.naive.mean()),
        "hack rate": float(answers.hack.mean()),
    }


@dataclass
class CodeRun:
    """One GRPO run: its history and held-out profiles before and after."""

    reward: str
    seed: int
    history: pd.DataFrame
    before: dict[str, float]
    after: dict[str, float]
    wall_s: float
    programs_per_s: float


def train_code(
    reward: str = "unit_tests_all",
    steps: int = 30,
    seed: int = 0,
    prompts_per_step: int = 8,
    group_size: int = 8,
    lr: float = 1e-3,
    eval_problems: int = 64,
    eval_samples: int = 4,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> CodeRun:
    """GRPO from the zoo's ``code`` model with one training reward; the other rewards are logged at weight 0.

    Args:
        reward: one of ``REWARD_CHOICES``.
        steps, seed, prompts_per_step, group_size, lr: the run (``TrainConfig``).
        eval_problems, eval_samples: held-out specs and samples each, before and after.

    Returns:
        A ``CodeRun``; its history has ``reward/correct`` (all tests pass in the sandbox: the truth, whatever the
        reward), ``reward/naive_unit_tests`` (what the naive harness says) and ``reward/unit_tests_partial``.
    """
    if reward not in REWARD_CHOICES:
        raise ValueError(f"reward must be one of {REWARD_CHOICES}, got {reward!r}")
    model, tokenizer, task = load_base(BASE)
    test = task.problems("test", eval_problems, seed=0)
    before = profile(sample_programs(model, tokenizer, task, test, eval_samples, seed=seed))
    rewards = {name: (1.0 if name == reward else 0.0) for name in REWARD_CHOICES}
    config = TrainConfig.build(
        task=BASE,
        steps=steps,
        prompts_per_step=prompts_per_step,
        group_size=group_size,
        lr=lr,
        rewards=rewards,
        max_new_tokens=MAX_NEW_TOKENS,
        eval_every=0,
        seed=seed,
        device="cpu",
        kl_coef=0.0,
    )
    start, sandbox_before = time.perf_counter(), dict(task.stats)
    trainer = Trainer(config, model=model, tokenizer=tokenizer, task=task, callbacks=callbacks, progress=progress)
    history = trainer.train()
    wall = time.perf_counter() - start
    programs = task.stats["programs"] - sandbox_before["programs"]
    seconds = task.stats["seconds"] - sandbox_before["seconds"]
    after = profile(sample_programs(trainer.model, tokenizer, task, test, eval_samples, seed=seed))
    return CodeRun(reward, seed, history, before, after, wall, programs / seconds if seconds > 0 else float("nan"))


def summary(runs: Sequence[CodeRun]) -> pd.DataFrame:
    """One row per run: reward, seed, held-out pass@1 / naive pass@1 / hack rate before and after, wall time."""
    rows = []
    for r in runs:
        rows.append(
            {
                "reward": r.reward,
                "seed": r.seed,
                "pass@1 before": r.before["pass@1"],
                "pass@1 after": r.after["pass@1"],
                "tests passed after": r.after["tests passed"],
                "naive pass@1 after": r.after["naive pass@1"],
                "hack rate before": r.before["hack rate"],
                "hack rate after": r.after["hack rate"],
                "wall s": r.wall_s,
                "sandbox programs/s": r.programs_per_s,
            }
        )
    return pd.DataFrame(rows)


def reward_runs(seeds: Sequence[int] = (0,), steps: int = 30, **kwargs) -> list[CodeRun]:
    """Binary (all tests) vs partial-credit (fraction of tests) reward: same steps, seeds and base model."""
    return [train_code(r, steps, s, **kwargs) for s in seeds for r in ("unit_tests_all", "unit_tests_partial")]


def hacking_runs(seeds: Sequence[int] = (0,), steps: int = 30, **kwargs) -> list[CodeRun]:
    """The naive harness vs the sandbox as the training reward, from the same base model (which can write the hack)."""
    return [train_code(r, steps, s, **kwargs) for s in seeds for r in ("naive_unit_tests", "unit_tests_all")]
