"""RL for scientific discovery, in miniature: finding laws the model was never shown (chapter 17; survey §7).

The survey's §7 (arXiv:2509.08827) collects work in which RL and search help language models propose hypotheses and
laws that a program then checks: FunSearch (Romera-Paredes et al., 2024, Nature 625:468) evolves programs scored by
an evaluator, LLM-SR (Shojaee et al., 2024, arXiv:2404.18400) proposes equation skeletons fitted to data, AlphaEvolve
(Novikov et al., 2025, arXiv:2506.13131) evolves code against automated evaluators. What they share with RLVR is the
loop: propose, verify, keep what verifies. Here that loop trains a 0.65M-parameter model with GRPO.

The task is ``rl4lrm.tasks.discovery.Discovery``: three points of a law ``y = a*x + b`` in, an expression in ``x``
out, checked on the shown points and on held-out ones. The zoo's ``discovery`` model learned from the ``"seen"``
family of laws only; RL runs on half of the ``"novel"`` laws and is measured on the other half, laws that neither SFT
nor RL ever showed. The studies:

- ``sample_laws`` + ``discovery_profile``: per-sample solve rate, the share of laws solved by at least one sample,
  and NOVELTY, the share of correct expressions that are not strings of the SFT corpus; also how often the model
  answers with a corpus expression (recall of a law it saw, which is always wrong on a novel law);
- ``train_discovery``: GRPO on the novel RL laws, rewarded by the verifier (``"correct"``) or by partial credit
  (``"law_fit"``: the share of points an expression hits);
- ``discovery_runs``: both, before and after RL, over seeds.

What counts as discovery here is modest and should be said plainly: a correct answer on a novel law is a new string
(a recombination of a slope and an intercept the model saw separately), found and confirmed by a verifier. It is
not new science; the law family is fixed and the verifier knows the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from rl4lrm.models.zoo import load_base
from rl4lrm.rewards.base import REWARDS, RewardContext, register_reward
from rl4lrm.rollout import rollout
from rl4lrm.tasks.base import Problem, extract_answer
from rl4lrm.tasks.discovery import Discovery
from rl4lrm.trainer import TrainConfig, Trainer

BASE = "discovery"
"""The zoo model every study starts from (SFT on the seen family only)."""
MAX_NEW_TOKENS = 12
"""Room for the longest canonical law, ``"9*x+19"`` (6 characters), and then some."""
REWARD_CHOICES = ("correct", "law_fit")


def _law_fit(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """Partial credit of ``Discovery.fit``: the share of a law's points (shown and held-out) the expression hits."""
    return torch.tensor([ctx.task.fit(p, c) for p, c in zip(problems, completions)], dtype=torch.float32)


def _check_fit(task, problems) -> None:
    if not hasattr(task, "fit"):
        raise ValueError(f"reward 'law_fit' needs a task with a fit() method (Discovery), got {type(task).__name__}")


if "law_fit" not in REWARDS:  # re-importing the module (autoreload) must not register it twice
    register_reward("law_fit", requires=("task",), check_task=_check_fit)(_law_fit)


def sample_laws(
    model,
    tokenizer,
    task: Discovery,
    problems: Sequence[Problem],
    samples: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Samples ``samples`` expressions per problem and checks each.

    Returns:
        One row per sample: ``prompt``, ``law`` (the hidden one), ``laws`` (``"RL laws"`` or ``"evaluation laws"`` for
        the novel family's train and test splits, ``"seen laws"`` for the seen family), ``expression`` (the parsed
        answer, "" if none), ``correct``, ``fit`` (share of points hit), ``in_corpus`` (the expression is a string
        the SFT corpus showed).
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples!r}")
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    batch = rollout(model, tokenizer, [p.prompt for p in problems], samples, MAX_NEW_TOKENS, temperature, generator=gen)
    corpus = Discovery(
        family="seen", max_slope=task.max_slope, max_intercept=task.max_intercept, novel_fraction=task.novel_fraction
    ).corpus()
    rows = [p for p in problems for _ in range(samples)]
    expressions = [extract_answer(c, task.max_answer_chars) or "" for c in batch.completions]
    return pd.DataFrame(
        {
            "prompt": [p.prompt for p in rows],
            "law": [p.meta["law"] for p in rows],
            "laws": [_laws(task, p) for p in rows],
            "expression": expressions,
            "correct": [task.verify(p, c).correct for p, c in zip(rows, batch.completions)],
            "fit": [task.fit(p, c) for p, c in zip(rows, batch.completions)],
            "in_corpus": [e in corpus for e in expressions],
        }
    )


def _laws(task: Discovery, problem: Problem) -> str:
    if task.family == "seen":
        return "seen laws"
    return "RL laws" if task.split_of(problem) == "train" else "evaluation laws"


def discovery_profile(answers: pd.DataFrame) -> dict[str, float]:
    """What ``sample_laws``' answers say about discovery.

    Returns:
        ``solve rate`` (share of samples correct), ``laws solved`` (share of distinct laws with a correct sample),
        ``novelty`` (share of correct samples whose expression is not in the SFT corpus; NaN when none is correct),
        ``novel solve rate`` (share of samples both correct and novel), ``recall`` (share of samples that repeat a
        corpus expression) and ``fit`` (mean share of points hit).
    """
    correct = answers[answers.correct]
    return {
        "solve rate": float(answers.correct.mean()),
        "laws solved": float(answers.groupby("law").correct.any().mean()),
        "novelty": float((~correct.in_corpus).mean()) if len(correct) else float("nan"),
        "novel solve rate": float((answers.correct & ~answers.in_corpus).mean()),
        "recall": float(answers.in_corpus.mean()),
        "fit": float(answers.fit.mean()),
    }


def discoveries(answers: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """Up to ``n`` laws solved with an expression the SFT corpus never showed, one example each: the data the model
    saw, the expression it wrote, and how often its samples on that prompt were right."""
    novel = answers[answers.correct & ~answers.in_corpus]
    rate = answers.groupby("prompt").correct.mean()
    out = novel.drop_duplicates("law").head(n)[["prompt", "expression", "law"]].copy()
    out["data (x:y)"] = out.pop("prompt").str.rstrip("=")
    out["share of samples right"] = [rate[p + "="] for p in out["data (x:y)"]]
    return out[["data (x:y)", "expression", "law", "share of samples right"]].reset_index(drop=True)


@dataclass
class DiscoveryRun:
    """One trained model's answers on the evaluation laws, before and after RL."""

    reward: str
    seed: int
    history: pd.DataFrame
    before: pd.DataFrame
    after: pd.DataFrame


def train_discovery(
    steps: int = 80,
    seed: int = 0,
    reward: str = "correct",
    lr: float = 3e-4,
    device: str = "cpu",
    progress=False,
    **overrides,
):
    """GRPO from the zoo's ``discovery`` model on the RL half of the novel laws.

    Args:
        steps: RL steps (16 prompts x 8 samples each by default).
        seed: the run's seed.
        reward: ``"correct"`` (the verifier's 0/1) or ``"law_fit"`` (partial credit: share of points hit).
        lr: AdamW learning rate.
        overrides: more ``TrainConfig.build`` settings (``prompts_per_step``, ``group_size``, preset axes, ...).

    Returns:
        ``(model, tokenizer, task, history)``; ``task`` is the novel family (its test split: the evaluation laws).
    """
    if reward not in REWARD_CHOICES:
        raise ValueError(f"reward must be one of {REWARD_CHOICES}, got {reward!r}")
    model, tokenizer, _ = load_base(BASE, device=device)
    task = Discovery(family="novel")
    settings = {"eval_every": 0, "max_new_tokens": MAX_NEW_TOKENS, "kl_coef": 0.0, **overrides}
    config = TrainConfig.build(
        task=BASE, steps=steps, seed=seed, lr=lr, rewards={reward: 1.0}, device=device, **settings
    )
    history = Trainer(config, model=model, tokenizer=tokenizer, task=task, progress=progress).train()
    return model.eval(), tokenizer, task, history


def discovery_runs(
    rewards: Sequence[str] = ("correct",),
    seeds: Sequence[int] = (0,),
    steps: int = 80,
    eval_problems: int = 64,
    samples: int = 8,
    **overrides,
) -> list[DiscoveryRun]:
    """For each reward and seed: the base model's and the trained model's answers, ``samples`` per problem at T=1, on
    ``eval_problems`` problems of the RL laws (searched with the verifier, never shown as expressions) and as many of
    the evaluation laws (the novel family's test split: never in SFT, never in RL)."""
    base, tokenizer, _ = load_base(BASE)
    task = Discovery(family="novel")
    problems = task.problems("train", eval_problems, seed=0) + task.problems("test", eval_problems, seed=0)
    runs = []
    for reward in rewards:
        for seed in seeds:
            before = sample_laws(base, tokenizer, task, problems, samples, seed=seed)
            model, _, _, history = train_discovery(steps, seed, reward, **overrides)
            after = sample_laws(model, tokenizer, task, problems, samples, seed=seed)
            runs.append(DiscoveryRun(reward, seed, history, before, after))
    return runs


def summary(runs: Sequence[DiscoveryRun]) -> pd.DataFrame:
    """One row per (reward, set of laws, stage): each ``discovery_profile`` figure as mean and std over seeds."""
    rows = []
    for run in runs:
        for stage, answers in (("base", run.before), ("after RL", run.after)):
            for laws, part in answers.groupby("laws", sort=False):
                rows.append({"reward": run.reward, "laws": laws, "stage": stage, **discovery_profile(part)})
    per_seed = pd.DataFrame(rows)
    grouped = per_seed.groupby(["reward", "laws", "stage"], sort=False)
    table = grouped.mean().join(grouped.std(ddof=1).add_suffix(" std"))
    return table.reset_index()
