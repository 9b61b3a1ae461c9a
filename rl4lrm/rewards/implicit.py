"""Training PRIME's implicit process reward model ``π_φ`` from outcome labels.

PRIME (Cui et al., 2025, "Process Reinforcement through Implicit Rewards", arXiv:2502.01456) reads a
causal LM ``π_φ`` as a reward model through its log-ratio to a frozen reference ``π_ref``: the
sequence reward ``r_φ(y) = β Σ_t log π_φ(y_t|y_<t) / π_ref(y_t|y_<t)`` is trained as the logit of
"the answer is right" with a cross-entropy on outcome labels (``implicit_prm_loss``), and its
per-token terms ``β log π_φ/π_ref`` are then a process reward (the ``implicit_prm`` reward of
``rl4lrm.rewards.dense``), with no step labels. Both ``π_φ`` and ``π_ref`` start as copies of the
initial policy (the SFT model in PRIME), and ``π_ref`` stays frozen: in ``rl4lrm.trainer.Trainer``
that is ``ctx.ref_model``, the frozen copy of the initial policy, so a ``π_φ`` trained here from the
same zoo model pairs with it directly.

PRIME updates ``π_φ`` online on every RL batch's rollouts; here it is trained once, offline, on
rollouts of the initial policy (like ``rl4lrm.rewards.prm.build_prm``), so the policy can drift away
from the data ``π_φ`` saw. Pipeline: ``sample_outcomes`` (``rl4lrm.rollout.rollout`` plus the
task's verifier) → ``train_implicit_prm`` (AdamW on ``implicit_prm_loss``) →
``evaluate_implicit_prm`` (held-out AUC of ``r_φ(y)`` against the outcomes and, on a task with
``step_verdicts`` such as ``chain``, of the implicit step rewards against true step correctness).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import torch
from torch import Tensor

from rl4lrm.rewards.dense import (
    char_to_token,
    implicit_prm_loss,
    step_last_char,
    token_char_ends,
)
from rl4lrm.rollout import RolloutBatch, compute_logprobs, rollout
from rl4lrm.tasks import Problem, Task
from rl4lrm.utils import auroc


def sample_outcomes(
    policy,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    n_samples: int = 8,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    prompts_per_batch: int = 64,
) -> list[tuple[RolloutBatch, list[Problem], Tensor, Tensor]]:
    """Samples ``n_samples`` completions per problem and labels them with the task's verifier.

    Args:
        policy: the policy that writes the completions (also ``π_ref``).
        tokenizer, task: its tokenizer and the task whose verifier gives the outcome labels.
        problems: the problems (plain prompts).
        n_samples: completions per problem.
        max_new_tokens, temperature, generator: rollout settings.
        prompts_per_batch: problems per rollout call (each call is one chunk of the output).

    Returns:
        One chunk per rollout call: ``(batch, problems of its rows, outcomes (N,), ref_logprobs (N, T))``
        with the reference log-probs taken under ``policy`` at temperature 1.
    """
    chunks = []
    for s in range(0, len(problems), prompts_per_batch):
        part = list(problems[s : s + prompts_per_batch])
        batch = rollout(
            policy,
            tokenizer,
            [task.format_prompt(p) for p in part],
            n_samples,
            max_new_tokens,
            temperature,
            generator=generator,
        )
        rows = [p for p in part for _ in range(n_samples)]
        outcomes = torch.tensor(task.reward(rows, batch.completions))  # (N,)
        with torch.no_grad():
            ref_logprobs, _ = compute_logprobs(policy, batch, 1.0)  # (N, T)
        chunks.append((batch, rows, outcomes, ref_logprobs))
    return chunks


def train_implicit_prm(
    policy,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    test_problems: Sequence[Problem] | None = None,
    n_samples: int = 8,
    steps: int = 300,
    batch_size: int = 64,
    beta: float = 0.05,
    lr: float = 3e-4,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    seed: int = 0,
):
    """Trains an implicit PRM ``π_φ`` (a copy of ``policy``) on the frozen policy's own outcome-labelled rollouts.

    ``π_ref`` is ``policy`` itself, unchanged: pass the same (initial) policy as the trainer's
    reference when ``π_φ`` is used as ``implicit_model`` of the ``implicit_prm`` reward.

    Args:
        policy: the frozen policy; it samples the completions and is ``π_ref``.
        tokenizer, task: its tokenizer and the task whose verifier labels the completions.
        problems: training problems.
        test_problems: held-out problems for ``evaluate_implicit_prm`` (default: 256 of the test split).
        n_samples: completions per problem.
        steps, batch_size, lr: optimisation (AdamW, constant lr, gradient-norm clip 1); each
            minibatch is ``batch_size`` rows drawn from one rollout chunk.
        beta: PRIME's β (0.05): the sequence logit is ``β Σ_t log π_φ/π_ref``.
        max_new_tokens, temperature: rollout settings (those of the RL run that will use ``π_φ``).
        seed: seeds the rollouts and the minibatch draws.

    On the ``chain`` zoo model (512 train problems x 8 samples, defaults) the held-out AUC of
    ``r_φ(y)`` is about 0.83 and that of the implicit step values vs "no error so far" about 0.88;
    lr 1e-3 gives 0.80 and 3e-3 is unstable (0.71).

    Returns:
        ``(π_φ, metrics)``: ``π_φ`` in eval mode with gradients off, and ``evaluate_implicit_prm`` on
        the test problems plus ``implicit/train_loss_start`` and ``implicit/train_loss_end`` (the
        mean minibatch loss over the first and the last 10% of steps; ``log 2`` at the start).
    """
    gen = torch.Generator().manual_seed(seed)
    chunks = sample_outcomes(policy, tokenizer, task, problems, n_samples, max_new_tokens, temperature, gen)
    phi = copy.deepcopy(policy).train().requires_grad_(True)
    opt = torch.optim.AdamW(phi.parameters(), lr=lr, weight_decay=0.0)
    rng, losses = random.Random(seed), []
    for _ in range(steps):
        batch, _, outcomes, ref_logprobs = rng.choice(chunks)
        rows = torch.tensor(rng.sample(range(len(outcomes)), min(batch_size, len(outcomes))))
        mb = batch.select(rows)
        logprobs, _ = compute_logprobs(phi, mb, 1.0)  # (B, T)
        loss, _ = implicit_prm_loss(logprobs, ref_logprobs[rows], mb.response_mask, outcomes[rows], beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(phi.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    phi.eval().requires_grad_(False)
    k = max(1, steps // 10)
    if test_problems is None:
        test_problems = task.problems("test", 256, seed=seed)
    metrics = evaluate_implicit_prm(
        phi,
        policy,
        tokenizer,
        task,
        test_problems,
        n_samples=4,
        beta=beta,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        generator=gen,
    )
    return phi, {
        **metrics,
        "implicit/train_loss_start": sum(losses[:k]) / k,
        "implicit/train_loss_end": sum(losses[-k:]) / k,
    }


@torch.no_grad()
def evaluate_implicit_prm(
    implicit_model,
    ref_model,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    n_samples: int = 4,
    beta: float = 0.05,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Held-out ranking quality of ``r_φ`` on completions sampled from ``ref_model`` (the policy).

    Returns:
        ``implicit/auc`` (AUC of ``r_φ(y)`` for right vs wrong completions; 0.5 before training,
        where ``π_φ = π_ref``), ``implicit/auc_ref_logp`` (the same for the policy's own sequence
        log-likelihood, a confidence baseline), ``implicit/acc`` (``r_φ(y) > 0`` vs the outcome),
        ``implicit/pass`` (the share of right completions) and, for a task with ``step_verdicts``,
        ``implicit/auc_step_gt`` (the implicit value ``q_t = Σ_{s≤t} r_φ(y_s)`` at each step's last
        token vs "no error so far") and ``implicit/auc_step_reward`` (the step's own reward, ``q``
        at its end minus ``q`` at the previous step's end, vs the step itself being right).
    """
    chunks = sample_outcomes(ref_model, tokenizer, task, problems, n_samples, max_new_tokens, temperature, generator)
    seq, ref_seq, labels = [], [], []
    q_scores, q_labels, r_scores, r_labels = [], [], [], []
    steps = hasattr(task, "step_verdicts")
    for batch, rows, outcomes, ref_logprobs in chunks:
        logprobs, _ = compute_logprobs(implicit_model, batch, 1.0)
        q = (beta * (logprobs - ref_logprobs) * batch.response_mask).cumsum(-1)  # (N, T)
        lengths = batch.response_mask.sum(-1).long().tolist()
        seq += [q[i, n - 1].item() if n else 0.0 for i, n in enumerate(lengths)]
        ref_seq += ref_logprobs.sum(-1).tolist()
        labels += outcomes.tolist()
        if not steps:
            continue
        for i, (problem, completion) in enumerate(zip(rows, batch.completions)):
            verdicts = task.step_verdicts(problem, completion)
            if not verdicts or lengths[i] == 0:
                continue
            ends = token_char_ends(tokenizer, batch.completion_ids[i, : lengths[i]].tolist())
            prev, ok = 0.0, True
            for v in verdicts:
                value = q[i, char_to_token(ends, step_last_char(v))].item()
                ok = ok and v.correct
                q_scores.append(value), q_labels.append(float(ok))
                r_scores.append(value - prev), r_labels.append(float(v.correct))
                prev = value
    out = {
        "implicit/auc": auroc(seq, labels),
        "implicit/auc_ref_logp": auroc(ref_seq, labels),
        "implicit/acc": sum((s > 0) == (y > 0.5) for s, y in zip(seq, labels)) / max(len(labels), 1),
        "implicit/pass": sum(labels) / max(len(labels), 1),
    }
    if steps:
        out.update(
            {"implicit/auc_step_gt": auroc(q_scores, q_labels), "implicit/auc_step_reward": auroc(r_scores, r_labels)}
        )
    return out


def build_implicit_prm(policy, tokenizer, task: Task, n_train: int = 512, n_test: int = 256, seed: int = 0, **kwargs):
    """The whole recipe on ``n_train`` train-split and ``n_test`` test-split problems (``train_implicit_prm``).

    Returns:
        ``(π_φ, metrics)`` as ``train_implicit_prm``; ``kwargs`` go to it.
    """
    return train_implicit_prm(
        policy,
        tokenizer,
        task,
        task.problems("train", n_train, seed=seed),
        task.problems("test", n_test, seed=seed),
        seed=seed,
        **kwargs,
    )
