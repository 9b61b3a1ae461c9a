"""A learned model of the verifier: the smallest reward model, fit in milliseconds on a budget of true labels.

Model-based RL learns a model of the environment and plans or trains inside it (Sutton, 1991, "Dyna, an
Integrated Architecture for Learning, Planning, and Reacting"; survey arXiv 2509.08827 §7, world models for
language agents). For a reasoning policy the part of the environment worth modelling is the verifier: when true
labels are expensive (a human, a slow test suite, a proof checker), a model ``r_phi(x, y) ≈ P(verifier says y is
right | x)`` fit on a few labelled samples can score as many new answers as we like, to rerank samples at test time
(planning) or as the RL reward (training signal). A reward model is such a learned verifier (Cobbe et al., 2021,
arXiv:2110.14168; Ouyang et al., 2022, arXiv:2203.02155), and a policy optimised against it finds its errors
(Gao et al., 2022, "Scaling Laws for Reward Model Overoptimization", arXiv:2210.10760).

``VerifierModel`` is a logistic regression on features of (problem, answer) that a *frozen copy of the base policy*
computes, plus the answer's surface (its length, first and last digit, whether it is a bare integer):

    r_phi(x, y) = sigmoid(w · f(x, y) + b),   fit by L2-regularised cross-entropy (L-BFGS) on (f, label) pairs,

with one of two ``VIEWS`` of the base model, the knob of how good a model of the verifier is:

- ``"hidden"``: its last-layer hidden states at the answer's last character and at the end-of-sequence token after
  it (a frozen trunk with a linear head: an outcome reward model that is not fine-tuned). A linear read-out of
  correctness from there is poor: on a few hundred labels the model ranks answers only a little better than chance
  (held-out AUC about 0.7 on ``addition``) and leans on cues that happen to correlate with correctness. Fine-tuning
  the trunk as well (``rl4lrm.rewards.prm.train_prm`` on ``outcome_record`` labels, an ORM) did no better while this
  module was written (AUC 0.6 to 0.77 on 256 to 2048 labels) and took 30 to 40 s per fit instead of milliseconds.
- ``"logprob"``: the log-probability it gives each answer character and the end-of-sequence token (teacher-forced).
  The zoo's ``addition`` base was trained on data with half the answers corrupted at random, so its most likely
  answer is nearly always the right one: this view is an almost perfect verifier (AUC about 0.99).

``fit`` can be called again on a grown dataset (Dyna's refit on fresh on-policy labels). The registered reward
``learned_verifier`` hands the model's score to the trainer: ``{"learned_verifier": (1.0, {"verifier": vm})}``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor

from rl4lrm.decoding import positions_from_mask
from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.rollout import left_pad, prompt_token_ids
from rl4lrm.tasks import Problem, Task

MAX_CHARS = 4
"""Answer characters read (2-digit addition answers have at most 3); longer answers fall in the ``len>4`` bucket."""
VIEWS = ("hidden", "logprob")
SURFACE_NAMES = (
    [f"len={n}" for n in range(MAX_CHARS + 1)]
    + ["len>4"]
    + [f"first={d}" for d in range(10)]
    + [f"last={d}" for d in range(10)]
    + ["bare_integer"]
)
LOGPROB_NAMES = [f"logp/char{i}" for i in range(MAX_CHARS)] + ["logp/eos", "logp/mean"]


def answer_text(completion: str) -> str:
    """What the model reads of a completion: its first line, stripped."""
    return completion.partition("\n")[0].strip()


def surface_features(answer: str) -> Tensor:
    """One-hot length, first and last digit, and a bare-integer flag of an answer: (len(SURFACE_NAMES),)."""
    f = torch.zeros(len(SURFACE_NAMES))
    f[min(len(answer), MAX_CHARS + 1)] = 1.0
    if answer[:1].isdigit():
        f[MAX_CHARS + 2 + int(answer[0])] = 1.0
    if answer[-1:].isdigit():
        f[MAX_CHARS + 12 + int(answer[-1])] = 1.0
    f[-1] = float(answer.isdigit())
    return f


class VerifierModel:
    """A logistic model of the task's verifier on a frozen base model's view of each answer.

    Args:
        base_model, tokenizer: the policy the features come from; ``base_model`` is copied and frozen, so that the
            features (and the reward) do not move while the policy trains.
        task: renders prompts.
        view: one of ``VIEWS`` (module docstring).
        l2: the penalty on the weights (not the bias), on standardised features; larger trusts the data less.
    """

    def __init__(self, base_model, tokenizer, task: Task, view: str = "hidden", l2: float = 0.1):
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        if not l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {l2!r}")
        self.base = copy.deepcopy(base_model).eval().requires_grad_(False)
        self.tokenizer, self.task, self.view, self.l2 = tokenizer, task, view, float(l2)
        width = 2 * self.base.config.hidden_size if view == "hidden" else len(LOGPROB_NAMES)
        self.names = [f"h{i}" for i in range(width)] if view == "hidden" else list(LOGPROB_NAMES)
        self.names += SURFACE_NAMES
        self.weight, self.bias = torch.zeros(len(self.names)), torch.zeros(())
        self.mean, self.std = torch.zeros(len(self.names)), torch.ones(len(self.names))
        self.n_labels = 0

    @torch.no_grad()
    def features(self, problems: Sequence[Problem], completions: Sequence[str], batch_size: int = 256) -> Tensor:
        """Raw features f(x, y), shape (N, F) with F = ``len(self.names)``."""
        if len(problems) != len(completions):
            raise ValueError(f"got {len(problems)} problems but {len(completions)} completions")
        answers = [answer_text(c) for c in completions]
        return torch.cat(
            [
                self._features(problems[s : s + batch_size], answers[s : s + batch_size])
                for s in range(0, len(answers), batch_size)
            ]
        )

    def _features(self, problems: Sequence[Problem], answers: Sequence[str]) -> Tensor:
        tok, eos = self.tokenizer, self.tokenizer.eos_token_id
        prompts = prompt_token_ids(tok, [self.task.format_prompt(p) for p in problems])
        targets = [tok(a[:MAX_CHARS], add_special_tokens=False)["input_ids"] + [eos] for a in answers]
        ids, mask = left_pad([p + t for p, t in zip(prompts, targets)], tok.pad_token_id)  # (N, L)
        out = self.base(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions_from_mask(mask),
            output_hidden_states=self.view == "hidden",
        )
        if self.view == "hidden":
            h = out.hidden_states[-1].float()  # (N, L, H): rows end at the EOS (left padding)
            view = torch.cat([h[:, -2], h[:, -1]], dim=-1)  # (N, 2H): last answer character, EOS
        else:
            logp = out.logits.float().log_softmax(-1)  # (N, L, V)
            L, view = ids.shape[1], torch.zeros(len(answers), len(LOGPROB_NAMES))
            for i, t in enumerate(targets):
                pos = torch.arange(L - len(t) - 1, L - 1)  # the positions that predict the answer and its EOS
                lp = logp[i, pos, torch.tensor(t)]  # (len(t),)
                view[i, : len(t) - 1], view[i, MAX_CHARS], view[i, MAX_CHARS + 1] = lp[:-1], lp[-1], lp.mean()
        return torch.cat([view, torch.stack([surface_features(a) for a in answers])], dim=-1)  # (N, F)

    def fit(self, features: Tensor, labels: Tensor, max_iter: int = 100) -> VerifierModel:
        """Fits (w, b) from scratch by L-BFGS on the mean cross-entropy plus ``l2 * |w|^2 / 2``, on features
        standardised with these data's mean and std.

        Args:
            features: (N, F) from ``features``. labels: (N,) the verifier's 0/1 verdicts.
        """
        x, y = torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32)
        if x.dim() != 2 or x.shape[1] != len(self.names) or y.shape != (x.shape[0],) or len(y) < 2:
            raise ValueError(
                f"need features (N, {len(self.names)}) and labels (N,) with N >= 2; got {tuple(x.shape)} and "
                f"{tuple(y.shape)}"
            )
        self.mean, self.std = x.mean(0), x.std(0).clamp_min(1e-4)
        x = (x - self.mean) / self.std
        w = torch.zeros(x.shape[1], requires_grad=True)
        b = torch.logit(y.mean().clamp(0.01, 0.99)).detach().clone().requires_grad_(True)
        opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + 0.5 * self.l2 * (w @ w)
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        self.weight, self.bias, self.n_labels = w.detach(), b.detach(), len(y)
        return self

    def predict(self, features: Tensor) -> Tensor:
        """r_phi = sigmoid(w · f + b) for (N, F) raw features: (N,)."""
        x = (torch.as_tensor(features, dtype=torch.float32) - self.mean) / self.std
        return torch.sigmoid(x @ self.weight + self.bias)

    def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> Tensor:
        """The model's probability that each completion is right: (N,)."""
        return self.predict(self.features(problems, completions))

    def coefficients(self) -> dict[str, float]:
        """The fitted weights (on standardised features) of the named features: what the model learned to reward."""
        return {n: w for n, w in zip(self.names, self.weight.tolist()) if not n.startswith("h")}


@register_reward("learned_verifier")
def learned_verifier(
    problems: list[Problem], completions: list[str], ctx: RewardContext, verifier: VerifierModel | None = None
) -> Tensor:
    """A learned verifier's score as the reward (``VerifierModel.score``): the task's verifier is never called.

    Use: ``TrainConfig(rewards={"learned_verifier": (1.0, {"verifier": vm})})``; refitting ``vm`` in place (a
    callback) changes the reward of the following steps.
    """
    if verifier is None or not hasattr(verifier, "score"):
        raise ValueError(
            "reward 'learned_verifier' needs params {'verifier': <VerifierModel>}; build one with "
            f"rl4lrm.rewards.learned.VerifierModel and fit it; got {verifier!r}"
        )
    return verifier.score(problems, completions)
