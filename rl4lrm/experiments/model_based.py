"""Model-based RL with a learned verifier: plan with it, train on it, and watch the policy exploit it (notebook 17).

When the true verifier is expensive, fit a model of it on a budget of labelled samples and use the model instead
(survey arXiv 2509.08827 §7: world models that give reliable rewards, to plan and to act). The model here is
``rl4lrm.rewards.learned.VerifierModel`` (a logistic head on a frozen copy of the base policy), fit on base-model
answers to TRAIN problems labelled by the task's verifier. The studies:

- ``rerank_curve`` (planning): best-of-n at test time, answering with the sample the model scores highest, against
  a random pick (pass@1) and the true verifier as an oracle (pass@n), as Cobbe et al. (2021, arXiv:2110.14168) do
  with their verifiers;
- ``model_based_run`` with ``mode="fixed"`` (training signal): GRPO whose reward is the model's score, logged next
  to the verifier's verdict on the same samples (never used for learning). Overoptimisation (Gao et al., 2022,
  "Scaling Laws for Reward Model Overoptimization", arXiv:2210.10760) shows as the proxy reward rising while the
  true accuracy stalls or falls: the policy drifts to answers the model overrates;
- ``mode="dyna"`` (the remedy): the model is refit every ``every`` steps on ``refit_labels`` fresh samples of the
  *current* policy labelled by the verifier, Dyna's loop of acting, updating the model and planning in it (Sutton,
  1991, "Dyna, an Integrated Architecture for Learning, Planning, and Reacting", SIGART Bulletin 2(4)). The fixed
  model gets the same number of true-verifier calls, all spent up front on base-model samples;
- ``mode="verifier"``: the reference, GRPO on the verifier itself (every sample labelled: far more calls);
- ``answers_after``: what a trained policy says, with the verifier's verdict and the model's score.

Measured (``benchmarks/model_based.py``, 3 seeds, 40 steps, the ``hidden`` model with 128 + 8 x 16 labels): GRPO on
the verifier takes held-out pass@1 from 0.42 to 0.72; on the fixed model the model's reward ends at 0.55 while the
verifier accepts 0.16 of the same samples (gap 0.38 ± 0.05) and pass@1 falls to 0.15; the Dyna refit halves the gap
(0.19 ± 0.03) but pass@1 falls just as far (0.15): refitting keeps the model honest about the policy's answers, it
cannot make a weak model a good teacher.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
import torch

from rl4lrm.models.zoo import load_base
from rl4lrm.rewards.learned import VIEWS, VerifierModel, answer_text
from rl4lrm.rewards.rerank import best_of_n, oracle_at_n
from rl4lrm.rollout import rollout
from rl4lrm.tasks import Problem, Task
from rl4lrm.trainer import Callback, TrainConfig, Trainer

BASE = "addition"
"""The zoo model (policy and the model's frozen feature extractor) every study starts from."""
MODES = ("verifier", "fixed", "dyna")
MAX_NEW_TOKENS = 8


def labelled_samples(
    model, tokenizer, task: Task, problems: Sequence[Problem], per_problem: int = 1, seed: int = 0
) -> tuple[list[Problem], list[str], torch.Tensor]:
    """Samples ``per_problem`` answers of ``model`` to each problem and labels them with the verifier.

    Returns:
        The problems (one per answer), the answers, and the verifier's 0/1 labels (N,): N true-verifier calls.
    """
    gen = torch.Generator().manual_seed(seed)
    out = rollout(
        model, tokenizer, [task.format_prompt(p) for p in problems], per_problem, MAX_NEW_TOKENS, 1.0, generator=gen
    )
    rows = [p for p in problems for _ in range(per_problem)]
    labels = torch.tensor([float(task.verify(p, c).correct) for p, c in zip(rows, out.completions)])
    return rows, out.completions, labels


def fit_verifier(
    model, tokenizer, task: Task, labels: int = 256, view: str = "hidden", l2: float = 0.1, seed: int = 0
) -> tuple[VerifierModel, torch.Tensor, torch.Tensor]:
    """A ``VerifierModel`` fit on ``labels`` base-model answers to TRAIN problems (one answer per problem).

    Returns:
        The model and its training data (features (N, F), labels (N,)), which a Dyna refit grows.
    """
    if labels < 2:
        raise ValueError(f"labels must be >= 2 (the budget of true-verifier calls), got {labels}")
    problems = task.problems("train", labels, seed=1000 + seed)
    rows, answers, y = labelled_samples(model, tokenizer, task, problems, 1, seed)
    vm = VerifierModel(model, tokenizer, task, view=view, l2=l2)
    x = vm.features(rows, answers)
    return vm.fit(x, y), x, y


def rerank_curve(
    model,
    tokenizer,
    task: Task,
    vm: VerifierModel,
    ns: Sequence[int] = (1, 2, 4, 8),
    problems: int = 200,
    draws: int = 16,
    seed: int = 0,
) -> pd.DataFrame:
    """Best-of-n accuracy on TEST problems for three pickers: random, the learned model, the verifier (oracle).

    A pool of ``max(ns)`` samples per problem is drawn once; each n averages ``draws`` random n-subsets
    (``rl4lrm.rewards.rerank.best_of_n``). Returns one row per n: ``n``, ``random``, ``learned``, ``oracle``.
    """
    M = max(ns)
    rows, answers, y = labelled_samples(model, tokenizer, task, task.problems("test", problems, seed=seed), M, seed)
    correct, scores = y.view(problems, M), vm.score(rows, answers).view(problems, M)  # (P, M) each
    noise = torch.rand(problems, M, generator=torch.Generator().manual_seed(seed + 7919))  # not the subsets' seed
    return pd.DataFrame(
        {
            "n": list(ns),
            "random": best_of_n(noise, correct, ns, draws, seed).tolist(),
            "learned": best_of_n(scores, correct, ns, draws, seed).tolist(),
            "oracle": oracle_at_n(correct, ns).tolist(),
        }
    )


class DynaRefit(Callback):
    """Every ``every`` steps: sample one answer of the current policy to each of ``labels`` fresh TRAIN problems,
    label them with the verifier, add them to the model's data and refit it (Dyna's model update).

    Logs ``model/labels`` (true-verifier calls so far) and ``model/refits``.
    """

    def __init__(self, vm: VerifierModel, x: torch.Tensor, y: torch.Tensor, every: int = 10, labels: int = 32):
        if every < 1 or labels < 1:
            raise ValueError(f"every and labels must be >= 1, got every={every}, labels={labels}")
        self.vm, self.x, self.y, self.every, self.labels, self.refits = vm, x, y, every, labels, 0

    def on_step_end(self, trainer, metrics: dict) -> None:
        step = trainer.step  # steps done, counting this one
        if step % self.every == 0:
            problems = trainer.task.problems("train", self.labels, seed=5000 + 97 * trainer.config.seed + step)
            trainer.model.eval()
            rows, answers, y = labelled_samples(trainer.model, trainer.tokenizer, trainer.task, problems, 1, step)
            trainer.model.train()
            self.x = torch.cat([self.x, self.vm.features(rows, answers)])
            self.y = torch.cat([self.y, y])
            self.vm.fit(self.x, self.y)
            self.refits += 1
        metrics["model/labels"], metrics["model/refits"] = float(len(self.y)), float(self.refits)


def build_run(
    mode: str = "fixed",
    steps: int = 40,
    labels: int = 128,
    every: int = 5,
    refit_labels: int = 16,
    view: str = "hidden",
    seed: int = 0,
    progress: bool = False,
    **overrides,
) -> tuple[Trainer, VerifierModel | None]:
    """A trainer for GRPO on the addition base model with the reward of ``mode`` (one of ``MODES``), and its learned
    verifier (None for ``"verifier"``), to train and then inspect (``model_based_run`` does both).

    Args:
        mode: ``"verifier"`` (the true reward), ``"fixed"`` (a learned model fit once on ``labels +
            (steps // every) * refit_labels`` base-model samples) or ``"dyna"`` (fit on ``labels``, then refit every
            ``every`` steps on ``refit_labels`` fresh policy samples): the two learned runs make the same number of
            true-verifier calls.
        view: the model's ``VIEWS`` (``rl4lrm.rewards.learned``).
        overrides: further ``TrainConfig`` fields.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    model, tokenizer, task = load_base(BASE, device="cpu")
    callbacks, rewards, vm = [], None, None
    if mode != "verifier":
        budget = labels if mode == "dyna" else labels + (steps // every) * refit_labels
        vm, x, y = fit_verifier(model, tokenizer, task, budget, view, seed=seed)
        rewards = {"learned_verifier": (1.0, {"verifier": vm})}
        if mode == "dyna":
            callbacks.append(DynaRefit(vm, x, y, every, refit_labels))
    config = TrainConfig.build(
        **{
            "task": BASE,
            "steps": steps,
            "seed": seed,
            "eval_every": 10,
            "device": "cpu",
            "rewards": rewards,
            "max_new_tokens": MAX_NEW_TOKENS,
            **overrides,
        }
    )
    trainer = Trainer(config, model=model, tokenizer=tokenizer, task=task, callbacks=callbacks, progress=progress)
    return trainer, vm


def model_based_run(mode: str = "fixed", **settings) -> pd.DataFrame:
    """Builds (``build_run``, same arguments) and trains one run (``train_run``).

    Returns:
        The trainer's history with ``mode``, ``seed`` and ``wall_s`` columns: ``reward/learned_verifier`` (the proxy
        being optimised; absent for ``"verifier"``), ``reward/correct`` (the verifier on the same samples, never
        learned from), ``acc/pass@1`` (held-out) and ``model/labels`` (true-verifier calls of the learned model).
    """
    return train_run(*build_run(mode, **settings), mode=mode)


def train_run(trainer: Trainer, vm: VerifierModel | None, mode: str) -> pd.DataFrame:
    """Trains a run ``build_run`` made (keep the trainer to look at its policy afterwards); returns the history as
    ``model_based_run`` does."""
    started = time.perf_counter()
    history = trainer.train()
    history["mode"], history["seed"], history["wall_s"] = mode, trainer.config.seed, time.perf_counter() - started
    if mode == "fixed":
        history["model/labels"] = float(vm.n_labels)
    return history


def answers_after(
    model, tokenizer, task: Task, vm: VerifierModel | None, problems: int = 64, samples: int = 4, seed: int = 0
) -> pd.DataFrame:
    """A policy's answers to TEST problems with the verifier's verdict and the learned model's score.

    Returns:
        One row per answer: ``problem``, ``answer``, ``correct`` (0/1), ``learned`` (NaN without a model).
    """
    model.eval()
    test = task.problems("test", problems, seed)
    rows, answers, y = labelled_samples(model, tokenizer, task, test, samples, seed)
    scores = vm.score(rows, answers).tolist() if vm is not None else [float("nan")] * len(rows)
    return pd.DataFrame(
        {
            "problem": [p.prompt for p in rows],
            "answer": [answer_text(a) for a in answers],
            "correct": y.int().tolist(),
            "learned": scores,
        }
    )


def run_summary(history: pd.DataFrame, window: int = 10) -> dict[str, float]:
    """End-of-run numbers: the proxy and true reward on the last ``window`` steps' samples, their gap, and held-out
    ``acc/pass@1`` before and after training."""
    last = history.dropna(subset=["reward/correct"]).tail(window)
    proxy = last["reward/learned_verifier"].mean() if "reward/learned_verifier" in last else float("nan")
    true = last["reward/correct"].mean()
    acc = history["acc/pass@1"].dropna()
    labels = history["model/labels"].dropna() if "model/labels" in history else pd.Series(dtype=float)
    return {
        "proxy": proxy,
        "true": true,
        "gap": proxy - true,
        "acc before": acc.iloc[0],
        "acc after": acc.iloc[-1],
        "labels": labels.iloc[-1] if len(labels) else float("nan"),
    }
