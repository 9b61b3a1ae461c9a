"""Process vs outcome verifiers on the ``chain`` task: best-of-N reranking and label noise (notebook 09).

Lightman et al. (2023), "Let's Verify Step by Step" (arXiv:2305.20050), train two verifiers on the same sampled
solutions: an outcome reward model (ORM) on final-answer correctness and a process reward model (PRM) on step
labels, and compare them as best-of-N rerankers against majority vote. On the zoo's ``chain`` model both are
trained here from ``VerifierConfig.train_problems × samples_per_problem`` of the base policy's own solutions: the
PRM with PRM800K-style "no error so far" labels (exact on ``chain``) or Math-Shepherd's Monte-Carlo ones, the ORM
with one label per solution (``rl4lrm.rewards.rerank``). ``rerank_study`` draws a pool of samples per held-out
problem and reads accuracy against N for every selection rule; ``noise_study`` flips a fraction of the PRM's
training labels and measures what that costs in step AUC and in best-of-N accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd
import torch

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.models.zoo import load_base
from rl4lrm.rewards.prm import ProcessRewardModel, mc_step_labels, prm_scores, step_record, train_prm
from rl4lrm.rewards.rerank import (
    aggregate_steps,
    answer_ids,
    best_of_n,
    flip_labels,
    majority_at_n,
    oracle_at_n,
    outcome_record,
)
from rl4lrm.utils import auroc
from rl4lrm.validation import named_keywords

LABELS = ("prefix_ok", "hard")


@named_keywords()
@dataclass
class VerifierConfig:
    """How the PRM and the ORM of a study are trained; defaults take about 20 s on one CPU thread."""

    base: str = "chain"
    """Zoo entry whose policy writes the training solutions and whose trunk both verifiers start from; its task
    must label steps (``chain``)."""
    train_problems: int = 256
    """Training-split problems the solutions are sampled for, >= 8."""
    samples_per_problem: int = 4
    """Solutions sampled per training problem (T = 1); the PRM and the ORM see the same solutions, >= 1."""
    label: str = "prefix_ok"
    """The PRM's step labels: ``"prefix_ok"`` (no error up to this step: PRM800K's human labels, exact here) or
    ``"hard"`` (Math-Shepherd: some Monte-Carlo continuation from the step reaches the answer)."""
    mc_rollouts: int = 4
    """Continuations per step for ``label="hard"``, >= 1 (unused otherwise)."""
    noise: float = 0.0
    """Fraction of the PRM's training step labels flipped (1 ↔ 0) before training, in [0, 0.5]; the ORM's
    labels stay clean (``noise_study`` varies this)."""
    steps: int = 200
    """Optimizer steps for each verifier (AdamW, batch 32, lr 1e-3: ``train_prm``), >= 1."""
    max_new_tokens: int = 16
    """Length cap of the sampled solutions; a 3-step chain answer needs at most 9 characters and the EOS."""
    seed: int = 0
    """Seeds the problems, the samples, the flipped labels and the training order."""

    def __post_init__(self):
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r}")
        for name, low in [("train_problems", 8), ("samples_per_problem", 1), ("mc_rollouts", 1), ("steps", 1)]:
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= self.noise <= 0.5:
            raise ValueError(f"noise must be in [0, 0.5] (past 0.5 the labels mean their opposite), got {self.noise}")
        if not 1 <= self.max_new_tokens <= 64:
            raise ValueError(f"max_new_tokens must be in 1..64, got {self.max_new_tokens}")


@dataclass
class Verifiers:
    """A trained PRM and ORM and what they were trained on."""

    prm: ProcessRewardModel
    orm: ProcessRewardModel
    config: VerifierConfig
    prm_records: list[dict]  # the PRM's training records, labels as trained on (noise included)
    orm_records: list[dict]


def training_solutions(model, tokenizer, task, config: VerifierConfig) -> tuple[list, list[str]]:
    """The base policy's sampled solutions the verifiers learn from: (problem per solution, solutions)."""
    problems = task.problems("train", config.train_problems, seed=config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    texts = sample_and_verify(
        model,
        tokenizer,
        task,
        problems,
        config.samples_per_problem,
        max_new_tokens=config.max_new_tokens,
        generator=gen,
    )["completions"]
    return [p for p in problems for _ in range(config.samples_per_problem)], texts


def train_verifiers(config: VerifierConfig | None = None, model=None, tokenizer=None, task=None) -> Verifiers:
    """Samples the training solutions once and trains a PRM on their steps and an ORM on their outcomes.

    Args:
        config: the settings (default ``VerifierConfig()``).
        model, tokenizer, task: start from these instead of the zoo entry ``config.base``.
    """
    config = config or VerifierConfig()
    if model is None:
        model, tokenizer, task = load_base(config.base)
    problems, texts = training_solutions(model, tokenizer, task, config)
    if config.label == "hard":
        gen = torch.Generator().manual_seed(config.seed + 1)
        prm_records = mc_step_labels(model, tokenizer, task, problems, config.mc_rollouts, texts, generator=gen)
    else:
        prm_records = [step_record(task, p, c) for p, c in zip(problems, texts)]
    prm_records = flip_labels(prm_records, config.label, config.noise, seed=config.seed)
    orm_records = [outcome_record(task, p, c) for p, c in zip(problems, texts)]
    prm, _ = train_prm(model, tokenizer, task, prm_records, label=config.label, steps=config.steps, seed=config.seed)
    orm, _ = train_prm(model, tokenizer, task, orm_records, label="outcome", steps=config.steps, seed=config.seed)
    return Verifiers(prm, orm, config, prm_records, orm_records)


@dataclass
class Pool:
    """M sampled solutions for each of P held-out problems, with their verdicts and step records."""

    problems: list
    completions: list[list[str]]  # P lists of M
    correct: torch.Tensor  # (P, M) 0/1
    answers: list[list[str | None]]  # P lists of M parsed final answers (None: malformed)
    records: list[dict]  # P*M step records (true labels), row-major


def sample_pool(model, tokenizer, task, n_problems: int, m: int, max_new_tokens: int = 16, seed: int = 0) -> Pool:
    """Samples ``m`` solutions (T = 1) for each of ``n_problems`` test-split problems and checks them."""
    problems = task.problems("test", n_problems, seed=seed)
    gen = torch.Generator().manual_seed(seed + 10_000)
    texts = sample_and_verify(model, tokenizer, task, problems, m, max_new_tokens=max_new_tokens, generator=gen)
    texts = texts["completions"]
    rows = [texts[i * m : (i + 1) * m] for i in range(len(problems))]
    verdicts = [[task.verify(p, c) for c in row] for p, row in zip(problems, rows)]
    return Pool(
        problems=problems,
        completions=rows,
        correct=torch.tensor([[float(v.correct) for v in row] for row in verdicts]),
        answers=[[v.parsed if v.well_formed else None for v in row] for row in verdicts],
        records=[step_record(task, p, c) for p, row in zip(problems, rows) for c in row],
    )


def score_pool(verifiers: Verifiers, tokenizer, task, pool: Pool) -> dict[str, torch.Tensor]:
    """Every verifier's score of every pool sample: ``{rule: (P, M) scores}``."""
    P, M = pool.correct.shape
    steps = prm_scores(verifiers.prm, tokenizer, task, pool.records)
    outcome = [outcome_record(task, r["problem"], r["completion"]) for r in pool.records]
    orm = aggregate_steps(prm_scores(verifiers.orm, tokenizer, task, outcome), "last")
    scores = {f"PRM ({how})": aggregate_steps(steps, how).view(P, M) for how in ("min", "prod", "last")}
    scores["ORM"] = orm.view(P, M)
    return scores


def selection_curves(pool: Pool, scores: dict[str, torch.Tensor], ns: Sequence[int], draws: int = 32, seed: int = 0):
    """Accuracy against N for every verifier in ``scores``, majority vote, and the oracle (pass@N).

    Returns:
        A long DataFrame: ``method, N, accuracy``.
    """
    curves = {name: best_of_n(s, pool.correct, ns, draws, seed) for name, s in scores.items()}
    ids, valid = answer_ids(pool.answers)
    curves["majority vote"] = majority_at_n(ids, valid, pool.correct, ns, draws, seed)
    curves["oracle (pass@N)"] = oracle_at_n(pool.correct, ns)
    rows = [{"method": m, "N": n, "accuracy": a} for m, acc in curves.items() for n, a in zip(ns, acc.tolist())]
    return pd.DataFrame(rows)


def step_auc(verifiers: Verifiers, tokenizer, task, pool: Pool) -> float:
    """The PRM's AUROC against the *true* "no error so far" labels of the pool's steps."""
    scores = [s for row in prm_scores(verifiers.prm, tokenizer, task, pool.records) for s in row]
    return auroc(scores, [y for r in pool.records for y in r["prefix_ok"]])


def rerank_study(
    config: VerifierConfig | None = None,
    n_problems: int = 128,
    m: int = 32,
    ns: Sequence[int] = (1, 2, 4, 8, 16, 32),
    draws: int = 32,
    verifiers: Verifiers | None = None,
) -> tuple[pd.DataFrame, Verifiers, Pool]:
    """Trains (or reuses) the verifiers, samples a pool of ``m`` per held-out problem, and reads every curve.

    Returns:
        ``selection_curves`` (with a ``seed`` column), the verifiers and the pool.
    """
    config = verifiers.config if verifiers is not None else (config or VerifierConfig())
    model, tokenizer, task = load_base(config.base)
    verifiers = verifiers or train_verifiers(config, model, tokenizer, task)
    pool = sample_pool(model, tokenizer, task, n_problems, m, config.max_new_tokens, config.seed)
    scores = score_pool(verifiers, tokenizer, task, pool)
    return selection_curves(pool, scores, ns, draws, config.seed).assign(seed=config.seed), verifiers, pool


def noise_study(
    noises: Sequence[float] = (0.0, 0.1, 0.3),
    config: VerifierConfig | None = None,
    n_problems: int = 128,
    m: int = 16,
    draws: int = 32,
    clean: Verifiers | None = None,
) -> pd.DataFrame:
    """One PRM per noise level (same solutions, same seed), each measured on one held-out pool.

    Args:
        noises: fractions of flipped step labels, each in [0, 0.5].
        config: the other settings (``noise`` is overridden).
        n_problems, m, draws: the held-out pool and the subsets (best-of-N is read at N = ``m``).
        clean: reuse these verifiers for the level equal to their own ``config.noise``.

    Returns:
        One row per noise level: ``noise``, ``flipped labels``, ``step AUC`` (vs the true labels), best-of-``m``
        accuracy with ``PRM (min)`` and ``PRM (prod)``, and the ORM and majority vote on the same pool.
    """
    config = config or (clean.config if clean is not None else VerifierConfig())
    model, tokenizer, task = load_base(config.base)
    pool = sample_pool(model, tokenizer, task, n_problems, m, config.max_new_tokens, config.seed)
    rows = []
    for noise in noises:
        cfg = replace(config, noise=noise)
        reuse = clean is not None and clean.config == cfg
        verifiers = clean if reuse else train_verifiers(cfg, model, tokenizer, task)
        curves = selection_curves(pool, score_pool(verifiers, tokenizer, task, pool), [m], draws, config.seed)
        at = dict(zip(curves["method"], curves["accuracy"]))
        rows.append(
            {
                "noise": noise,
                "flipped labels": round(noise * sum(len(r[cfg.label]) for r in verifiers.prm_records)),
                "step AUC": step_auc(verifiers, tokenizer, task, pool),
                f"PRM (min) best-of-{m}": at["PRM (min)"],
                f"PRM (prod) best-of-{m}": at["PRM (prod)"],
                f"ORM best-of-{m}": at["ORM"],
                f"majority of {m}": at["majority vote"],
                "pass@1": pool.correct.mean().item(),
            }
        )
    return pd.DataFrame(rows)
