"""Verifiers at test time: best-of-N reranking by a PRM or an outcome reward model (ORM), and majority vote.

Sample N solutions of a problem and answer with the one a verifier scores highest. Lightman et al. (2023), "Let's
Verify Step by Step" (arXiv:2305.20050), compare two verifiers trained on the same solutions: an **ORM** (Cobbe
et al., 2021, arXiv:2110.14168) learns one label per solution, whether its final answer is right, read at the last
token; a **PRM** learns a label per step and scores a solution by aggregating its step scores (Lightman et al. use
the product of the steps' correctness probabilities; the minimum is the other common choice; the last step's score
reads the PRM as an ORM). On MATH their PRM beat the ORM, which beat majority vote, with the gaps widening as N grew.

Both verifiers here are ``rl4lrm.rewards.prm.ProcessRewardModel`` (a policy trunk with a scalar head) trained by
``train_prm``; only the records differ: ``rl4lrm.rewards.prm.step_record`` labels each step, ``outcome_record``
labels one position. The selection curves are pure tensor functions on a pool of M ≥ N samples per problem: each
draws random N-subsets and averages, as Lightman et al. do for their best-of-N curves.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from torch import Tensor

from rl4lrm.passk import pass_at_k
from rl4lrm.tasks import Problem, Task

STEP_AGGREGATIONS = ("min", "prod", "last")
"""How a PRM's step scores become one solution score: the weakest step, the product (the probability that every
step is right if the steps were independent: Lightman et al.'s choice), or the last step alone."""


def aggregate_steps(step_scores: Sequence[Sequence[float]], how: str = "min") -> Tensor:
    """One score per solution from its step scores.

    Args:
        step_scores: per solution, the PRM's probabilities of its steps (possibly empty).
        how: one of ``STEP_AGGREGATIONS``.

    Returns:
        Scores, shape (M,); a solution without a step scores 0 (nothing written is nothing verified).
    """
    if how not in STEP_AGGREGATIONS:
        raise ValueError(f"how must be one of {STEP_AGGREGATIONS}, got {how!r}")
    reduce = {"min": min, "prod": lambda s: float(torch.tensor(s, dtype=torch.float64).prod()), "last": lambda s: s[-1]}
    return torch.tensor([float(reduce[how](list(s))) if len(s) else 0.0 for s in step_scores])  # (M,)


def outcome_record(task: Task, problem: Problem, completion: str) -> dict:
    """An ORM's training record: one labelled position, the completion's last non-blank character.

    Returns:
        ``{"problem", "completion", "chars", "outcome"}`` with ``chars`` one index (none for a blank completion)
        and ``outcome`` the verifier's verdict on the final answer (1.0 or 0.0), the shape ``train_prm`` and
        ``prm_scores`` read.
    """
    end = len(completion.rstrip())
    correct = float(task.verify(problem, completion).correct)
    return {"problem": problem, "completion": completion, "chars": [end - 1] if end else [], "outcome": [correct]}


def flip_labels(records: Sequence[dict], label: str, fraction: float, seed: int = 0) -> list[dict]:
    """Copies of ``records`` with ``round(fraction * n)`` of their ``n`` labels ``label`` flipped (1 ↔ 0).

    Exactly that many, chosen uniformly without replacement, so a 10% setting is 10% on every seed.

    Args:
        records: ``step_record`` / ``mc_step_labels`` / ``outcome_record`` output.
        label: the per-step list to corrupt (``"prefix_ok"``, ``"hard"``, ``"outcome"``).
        fraction: in [0, 1].
        seed: picks which labels flip.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    slots = [(r, i) for r, rec in enumerate(records) for i in range(len(rec[label]))]
    flipped = set(random.Random(seed).sample(slots, round(fraction * len(slots))))
    return [
        {**rec, label: [1.0 - float(y) if (r, i) in flipped else float(y) for i, y in enumerate(rec[label])]}
        for r, rec in enumerate(records)
    ]


def answer_ids(answers: Sequence[Sequence[str | None]]) -> tuple[Tensor, Tensor]:
    """Integer ids of the final answers of a pool, equal ids for equal answers of one problem.

    Args:
        answers: P lists of M answers; None for a malformed one.

    Returns:
        ids (P, M) (the index of the answer's first occurrence in its row) and valid (P, M) (the answer exists).
    """
    ids = [[row.index(a) for a in row] for row in answers]
    valid = [[a is not None for a in row] for row in answers]
    return torch.tensor(ids), torch.tensor(valid)


def _subsets(P: int, M: int, n: int, generator: torch.Generator) -> Tensor:
    """(P, n) indices: a uniformly random n-subset of 0..M-1 per row, in random order."""
    return torch.rand(P, M, generator=generator).argsort(dim=1)[:, :n]


def _check(correct: Tensor, ns: Sequence[int], draws: int) -> None:
    M = correct.shape[1]
    if draws < 1 or not ns or min(ns) < 1 or max(ns) > M:
        raise ValueError(f"need draws >= 1 and every N in 1..{M} (the pool size), got draws={draws}, ns={list(ns)}")


def best_of_n(scores: Tensor, correct: Tensor, ns: Sequence[int], draws: int = 32, seed: int = 0) -> Tensor:
    """Accuracy of answering with the highest-scored of N samples, for each N, averaged over random N-subsets.

    Args:
        scores: verifier scores, shape (P, M). correct: 0/1 verdicts, shape (P, M).
        ns: subset sizes, each in 1..M. draws: random subsets per problem and N.
        seed: seeds the subsets (ties go to the first sample in the subset's random order).

    Returns:
        Accuracies, shape (len(ns),).
    """
    _check(correct, ns, draws)
    gen, out = torch.Generator().manual_seed(seed), []
    for n in ns:
        hits = 0.0
        for _ in range(draws):
            idx = _subsets(*scores.shape, n, gen)  # (P, n)
            pick = scores.gather(1, idx).argmax(dim=1, keepdim=True)  # (P, 1): the first maximum
            hits += correct.gather(1, idx).gather(1, pick).float().mean().item()
        out.append(hits / draws)
    return torch.tensor(out)


def majority_at_n(
    ids: Tensor, valid: Tensor, correct: Tensor, ns: Sequence[int], draws: int = 32, seed: int = 0
) -> Tensor:
    """Accuracy of the most frequent well-formed answer among N samples (self-consistency), for each N.

    Args:
        ids, valid: ``answer_ids`` of the pool, shape (P, M) each. correct: 0/1 verdicts, shape (P, M).
        ns, draws, seed: as ``best_of_n``; ties between answers go to the one drawn first.

    Returns:
        Accuracies, shape (len(ns),).
    """
    _check(correct, ns, draws)
    gen, out = torch.Generator().manual_seed(seed), []
    for n in ns:
        hits = 0.0
        for _ in range(draws):
            idx = _subsets(*ids.shape, n, gen)  # (P, n)
            sub, ok = ids.gather(1, idx), valid.gather(1, idx)  # (P, n) each
            votes = ((sub[:, :, None] == sub[:, None, :]) & ok[:, None, :]).sum(
                -1
            )  # (P, n): votes for each one's answer
            votes = torch.where(ok, votes, torch.full_like(votes, -1))  # a malformed answer never wins
            hits += correct.gather(1, idx).gather(1, votes.argmax(dim=1, keepdim=True)).float().mean().item()
        out.append(hits / draws)
    return torch.tensor(out)


def oracle_at_n(correct: Tensor, ns: Sequence[int]) -> Tensor:
    """pass@N (a perfect verifier's best-of-N), with the unbiased estimator on the M samples, for each N."""
    _check(correct, ns, 1)
    counts, M = correct.sum(1).tolist(), correct.shape[1]
    return torch.tensor([sum(pass_at_k(M, int(c), n) for c in counts) / len(counts) for n in ns])
