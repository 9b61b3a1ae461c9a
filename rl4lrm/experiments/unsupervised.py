"""How well do label-free rewards track the truth? Majority vote, self-certainty and negative entropy
against the verifier, on the same rollouts of a zoo model.

The unsupervised rewards of ``rl4lrm.rewards.unsupervised`` (TTRL's majority vote, arXiv:2504.16084;
Intuitor's self-certainty, arXiv:2505.19590; EM-RL's negative entropy, arXiv:2505.15134) replace the
verifier by the model's own agreement or confidence. They help only as far as that confidence tracks
correctness. This module measures it on one seeded batch:

* ``score_completions``: every reward (and the verifier's ``correct``) for each completion of a batch;
* ``agreement_table``: per reward, Pearson and Spearman correlation with ``correct``, AUROC (does the
  reward rank right answers above wrong ones?), the within-group Pearson correlation (what GRPO's
  group-relative advantages see), and for the majority vote the group-level figures: how often the
  majority answer is right (maj@G), how often an absolute majority agrees on a wrong answer;
* ``unsupervised_study``: rollouts of a zoo model, then both of the above;
* ``confident_collapse``: the failure mode all three share. Greedy decoding puts every sample of a
  group on the policy's mode, as a policy that these rewards have collapsed would; where the mode is
  a wrong answer, the majority vote gives every sample 1.0 and the verifier 0.0, and nothing in the
  confidence rewards flags it (on the zoo models, its self-certainty sits near the median of sampled
  completions), so training on them would keep reinforcing it.

Seeds 0-2, 128 prompts x 8 samples at T = 1 (means): on ``addition`` (pass@1 0.46) the majority
answer is right in 84% of groups and the vote correlates well with the truth (Pearson 0.85, AUROC
0.93); self-certainty only weakly (0.23, AUROC 0.62); negative entropy not at all (-0.05, and -0.39
within groups). On ``countdown`` (pass@1 0.15) the vote is weak (Pearson 0.24, maj@8 0.24), about as
weak as self-certainty (0.18, AUROC 0.65). Fewer than 1% of groups are confidently wrong at T = 1,
but greedy decoding collapses onto a wrong answer on 6% (addition) and 59% (countdown) of problems.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from rl4lrm.models.zoo import load_base
from rl4lrm.rewards.base import RewardContext, compute_reward
from rl4lrm.rewards.unsupervised import answer_keys
from rl4lrm.rollout import RolloutBatch, rollout
from rl4lrm.tasks import Problem, Task
from rl4lrm.utils import auroc, average_ranks

UNSUPERVISED = ("majority_vote", "self_certainty", "neg_entropy")  # registered by importing rl4lrm.rewards.unsupervised
AGREEMENT_COLUMNS = (
    "reward",
    "mean",
    "pearson",
    "spearman",
    "auroc",
    "pearson_within",
    "maj_acc",
    "maj_confident_wrong",
    "maj_none",
)


def score_completions(model, tokenizer, task: Task, problems: list[Problem], batch: RolloutBatch) -> pd.DataFrame:
    """Scores every completion of ``batch`` with each unsupervised reward and the verifier.

    Args:
        model, tokenizer: the policy that sampled ``batch``.
        task: the task (its parser for the vote, its verifier for ``correct``).
        problems: N problems, ``problems[i]`` the one row ``i`` answers.
        batch: the ``RolloutBatch`` (N rows, groups of ``batch.group_size`` contiguous).

    Returns:
        One row per completion: ``group``, ``completion``, ``parsed``, ``answer`` (the truth),
        ``correct`` and each name of ``UNSUPERVISED``, plus ``length``.
    """
    ctx = RewardContext(
        group_size=batch.group_size,
        max_new_tokens=batch.completion_ids.shape[1],
        task=task,
        batch=batch,
        model=model,
        tokenizer=tokenizer,
    )
    completions = batch.completions
    frame = pd.DataFrame(
        {
            "group": batch.group_ids.cpu().numpy(),
            "completion": completions,
            "parsed": [task.verify(p, c).parsed for p, c in zip(problems, completions)],
            "answer": [p.answer for p in problems],
            "length": batch.lengths.cpu().numpy(),
        }
    )
    for name in ("correct", *UNSUPERVISED):
        frame[name] = compute_reward(name, problems, completions, ctx).numpy()
    return frame


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (no signal to correlate)."""
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 1e-12 else float("nan")


def agreement_table(scores: pd.DataFrame, group_size: int) -> pd.DataFrame:
    """Agreement of each unsupervised reward with the verifier, from ``score_completions``' output.

    Args:
        scores: one row per completion with ``group``, ``correct`` and the ``UNSUPERVISED`` columns,
            groups of ``group_size`` contiguous rows.
        group_size: G.

    Returns:
        One row per reward (``correct`` first, as the reference) with ``AGREEMENT_COLUMNS``:
        ``mean``; ``pearson``, ``spearman`` and ``auroc`` against ``correct`` over all rows;
        ``pearson_within``, the Pearson correlation after subtracting each group's mean from both
        sides (what a group baseline keeps); and for ``majority_vote`` only: ``maj_acc``, the share of
        groups whose majority answer is right (maj@G), ``maj_confident_wrong``, the share of groups
        where more than half of the G samples agree on a wrong answer, and ``maj_none``, the share of
        groups without a well-formed answer. NaN where a figure is undefined.
    """
    if len(scores) % group_size:
        raise ValueError(f"{len(scores)} rows do not split into groups of {group_size}")
    truth = scores["correct"].to_numpy(float)  # (N,)
    group = np.arange(len(scores)) // group_size  # (N,) contiguous groups, as in the reward contract

    def within(x: np.ndarray) -> np.ndarray:  # (N,) minus its group's mean, as a group baseline does
        return x - pd.Series(x).groupby(group).transform("mean").to_numpy()

    rows = []
    for name in ("correct", *UNSUPERVISED):
        x = scores[name].to_numpy(float)  # (N,)
        row = {
            "reward": name,
            "mean": x.mean(),
            "pearson": _pearson(x, truth),
            "spearman": _pearson(average_ranks(x), average_ranks(truth)),
            "auroc": auroc(x, truth),
            "pearson_within": _pearson(within(x), within(truth)),
            "maj_acc": np.nan,
            "maj_confident_wrong": np.nan,
            "maj_none": np.nan,
        }
        if name == "majority_vote":
            votes = pd.DataFrame({"g": group, "win": x > 0.5, "right": truth > 0.5})
            per_group = votes.groupby("g").apply(
                lambda d: pd.Series({"votes": d["win"].sum(), "right": (d["win"] & d["right"]).any()}),
                include_groups=False,
            )
            has = per_group["votes"] > 0
            row["maj_acc"] = float(per_group["right"].mean())
            row["maj_confident_wrong"] = float(
                (has & ~per_group["right"].astype(bool) & (per_group["votes"] > group_size / 2)).mean()
            )
            row["maj_none"] = float((~has).mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def _sample(name: str, prompts: int, group_size: int, max_new_tokens: int, temperature: float, seed: int):
    """Seeded problems of a zoo model's task and one rollout batch of them: (model, tok, task, problems, batch)."""
    model, tokenizer, task = load_base(name)
    problems = task.problems("train", prompts, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    batch = rollout(
        model,
        tokenizer,
        [p.prompt for p in problems],
        group_size,
        max_new_tokens,
        temperature=temperature,
        generator=gen,
    )
    rows = [p for p in problems for _ in range(group_size)]
    return model, tokenizer, task, rows, batch


def unsupervised_study(
    name: str = "countdown",
    prompts: int = 64,
    group_size: int = 8,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Samples one batch from the zoo model ``name`` and tabulates how each unsupervised reward agrees
    with the verifier on it (``agreement_table``).

    Args:
        name: a zoo model (``"addition"``, ``"countdown"``, ...); problems come from its task's train split.
        prompts, group_size: B and G.
        max_new_tokens: the length cap.
        temperature: sampling temperature (self-certainty and entropy are taken at the same one).
        seed: seeds the problems and the sampling; the same seed gives the same table.

    Returns:
        The ``agreement_table`` of the batch, with ``model`` and ``pass@1`` columns added.
    """
    model, tokenizer, task, problems, batch = _sample(name, prompts, group_size, max_new_tokens, temperature, seed)
    scores = score_completions(model, tokenizer, task, problems, batch)
    table = agreement_table(scores, group_size)
    table.insert(0, "model", name)
    table["pass@1"] = scores["correct"].mean()
    return table


def confident_collapse(
    name: str = "addition", prompts: int = 64, group_size: int = 8, max_new_tokens: int = 16, seed: int = 0
) -> pd.DataFrame:
    """The failure mode "confident collapse onto a wrong answer", on a zoo model.

    Greedy decoding of G samples per prompt puts the whole group on the policy's mode: the state a
    policy trained on these rewards is pushed towards. On the prompts whose greedy answer is well
    formed but wrong, the group agrees unanimously on a wrong answer. Each such group is scored with
    the unsupervised rewards (self-certainty and entropy at temperature 1) and compared with
    completions sampled at temperature 1 for the same prompts.

    Args:
        name: a zoo model.
        prompts: how many problems to look for collapsed groups among.
        group_size: G (greedy rows of a group are identical).
        max_new_tokens: the length cap.
        seed: seeds the problems and the sampled reference batch.

    Returns:
        One row per collapsed group: ``problem`` (its key), ``answer`` (the truth), ``parsed`` (the
        group's unanimous answer), the group means of ``majority_vote`` (1.0) and ``correct`` (0.0),
        ``self_certainty`` and ``neg_entropy``, ``sampled_pass`` (the problem's pass rate at
        temperature 1: often the model could answer right), and ``self_certainty_pct`` /
        ``neg_entropy_pct``: the share of the sampled completions (all prompts, temperature 1) that
        the collapsed answer's score exceeds. Empty if the greedy answer is right or malformed on every problem.
    """
    model, tokenizer, task, problems, sampled = _sample(name, prompts, group_size, max_new_tokens, 1.0, seed)
    greedy = rollout(
        model, tokenizer, [p.prompt for p in problems[::group_size]], group_size, max_new_tokens, temperature=0.0
    )  # temperature 0: rewards read the logits at temperature 1
    reference = score_completions(model, tokenizer, task, problems, sampled)
    collapsed = score_completions(model, tokenizer, task, problems, greedy)
    well_formed = np.array([k is not None for k in answer_keys(problems, greedy.completions, task)])
    collapsed["well_formed"] = well_formed
    per_group = collapsed.groupby("group").agg(
        answer=("answer", "first"),
        parsed=("parsed", "first"),
        well_formed=("well_formed", "all"),
        majority_vote=("majority_vote", "mean"),
        correct=("correct", "mean"),
        self_certainty=("self_certainty", "mean"),
        neg_entropy=("neg_entropy", "mean"),
    )
    per_group.insert(0, "problem", [p.key for p in problems[::group_size]])
    per_group["sampled_pass"] = reference.groupby("group")["correct"].mean()
    wrong = per_group[per_group["well_formed"] & (per_group["correct"] == 0)].drop(columns="well_formed")
    for stat in ("self_certainty", "neg_entropy"):
        ref = np.sort(reference[stat].to_numpy())
        wrong[f"{stat}_pct"] = np.searchsorted(ref, wrong[stat].to_numpy(), side="left") / len(ref)
    return wrong.reset_index(drop=True)
