"""A learned process reward model (PRM) trained on Monte-Carlo step labels, Math-Shepherd style.

Math-Shepherd (Wang et al., 2024, arXiv:2312.08935) labels a step without humans: from the prefix
that ends with the step, sample ``n`` completions and check their final answers. The *hard* label
is 1 if any reaches the right answer, the *soft* label the fraction that do. A PRM trained on
these labels predicts, at each step's last token, whether the chain is still on a track that can
succeed; PRM800K (Lightman et al., 2023, arXiv:2305.20050) gets the same kind of labels from humans.
On the ``chain`` task the ground truth is known, so ``evaluate_prm`` measures the PRM against both
the MC labels and the true "no error so far" labels. MC labels measure *recoverability*: a step
after which the policy often repairs a slip still gets a high label.

Pipeline: ``mc_step_labels`` (rollouts with ``rl4lrm.rollout.rollout`` from each step prefix) →
``train_prm`` (the policy's trunk plus a scalar head, like ``rl4lrm.critic.ValueModel``) →
``evaluate_prm`` (held-out AUC and accuracy) → the ``prm`` reward of ``rl4lrm.rewards.dense``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from rl4lrm.critic import ScalarHeadModel
from rl4lrm.rewards.dense import char_to_token, step_last_char, token_char_ends
from rl4lrm.rollout import rollout
from rl4lrm.tasks import Problem, Task
from rl4lrm.utils import auroc

Sampler = Callable[[list[str], int], list[str]]
"""``sampler(prompts, n)`` → ``len(prompts) * n`` continuations, the n of each prompt contiguous."""


class ProcessRewardModel(ScalarHeadModel):
    """A transformer trunk (copied from a policy) with a scalar head: one logit per position.

    The logit at position ``l`` scores the prefix that ends with token ``l``; read at a step's last
    token it is the PRM's belief that the chain so far can still reach the right answer. The
    zero-initialised head makes every first prediction p = 0.5.

    Args:
        policy: a Hugging Face causal LM whose ``base_model`` is the trunk (copied, not shared).
    """

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Logits, shape (N, L), for (N, L) ids with left or right padding."""
        return self.position_scores(input_ids, attention_mask)  # (N, L)


def rollout_sampler(
    model,
    tokenizer,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    prompts_per_batch: int = 64,
) -> Sampler:
    """The default ``Sampler``: ``rl4lrm.rollout.rollout`` continuations of each prefix prompt."""

    def sample(prompts: list[str], n: int) -> list[str]:
        out = []
        for s in range(0, len(prompts), prompts_per_batch):
            out += rollout(
                model,
                tokenizer,
                prompts[s : s + prompts_per_batch],
                n,
                max_new_tokens,
                temperature,
                generator=generator,
            ).completions
        return out

    return sample


def step_record(task: Task, problem: Problem, completion: str) -> dict:
    """One completion's steps with their true labels, the record shape every PRM function here reads.

    Returns:
        ``{"problem", "completion", "chars"}`` (each step's last character index) and per-step lists
        ``step_ok`` (the step itself is right) and ``prefix_ok`` (no error up to and including it: PRM800K's
        "first error" label, exact on ``chain``).
    """
    steps = task.step_verdicts(problem, completion)
    ok, chars = [v.correct for v in steps], [step_last_char(v) for v in steps]
    prefix_ok = [all(ok[: i + 1]) for i in range(len(ok))]
    return {"problem": problem, "completion": completion, "chars": chars, "step_ok": ok, "prefix_ok": prefix_ok}


def mc_step_labels(
    model,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    n_rollouts: int = 8,
    completions: Sequence[str] | None = None,
    max_new_tokens: int = 24,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    sampler: Sampler | None = None,
) -> list[dict]:
    """Math-Shepherd's Monte-Carlo labels for every step of one completion per problem.

    For step ``i`` the prefix is ``prompt + completion[:end_i]`` (the line without its newline);
    ``n_rollouts`` continuations are sampled from it and ``prefix + continuation`` is verified.

    Args:
        model, tokenizer: the policy that writes completions and continuations.
        task: a task with ``step_verdicts`` (e.g. ``chain``).
        problems: the problems (plain prompts).
        n_rollouts: continuations per step prefix (Math-Shepherd: 8).
        completions: one completion per problem; sampled from ``model`` when None.
        max_new_tokens, temperature, generator: rollout settings.
        sampler: replaces the rollout-based sampler (tests use hand-made ones).

    Returns:
        One dict per problem with ``problem``, ``completion``, ``chars`` (each step's last character
        index), and per-step lists ``soft`` (fraction reaching the answer), ``hard`` (any),
        ``step_ok`` (the step itself is right) and ``prefix_ok`` (no error up to and including it).
    """
    if n_rollouts < 1:
        raise ValueError(f"n_rollouts must be >= 1, got {n_rollouts}")
    sampler = sampler or rollout_sampler(model, tokenizer, max_new_tokens, temperature, generator)
    prompts = [task.format_prompt(p) for p in problems]
    if completions is None:
        completions = sampler(prompts, 1)
    if len(completions) != len(problems):
        raise ValueError(f"got {len(problems)} problems but {len(completions)} completions")
    records, prefixes = [], []
    for problem, completion in zip(problems, completions):
        records.append(step_record(task, problem, completion))
        prefixes += [(len(records) - 1, completion[: v.end]) for v in task.step_verdicts(problem, completion)]
    continuations = sampler([prompts[r] + prefix for r, prefix in prefixes], n_rollouts) if prefixes else []
    for record in records:
        record["soft"], record["hard"] = [], []
    for k, (r, prefix) in enumerate(prefixes):
        problem = records[r]["problem"]
        wins = sum(
            task.verify(problem, prefix + c).correct for c in continuations[k * n_rollouts : (k + 1) * n_rollouts]
        )
        records[r]["soft"].append(wins / n_rollouts)
        records[r]["hard"].append(float(wins > 0))
    return records


def _examples(
    tokenizer, task: Task, records: Sequence[dict], label: str
) -> list[tuple[list[int], list[int], list[float]]]:
    """(ids, labelled positions, targets) per record; ``label`` is a per-step list name of the records."""
    out = []
    for rec in records:
        if not rec["chars"]:
            continue
        p = tokenizer(task.format_prompt(rec["problem"]), add_special_tokens=False)["input_ids"]
        c = tokenizer(rec["completion"], add_special_tokens=False)["input_ids"]
        ends = token_char_ends(tokenizer, c)
        out.append((p + c, [len(p) + char_to_token(ends, ch) for ch in rec["chars"]], [float(x) for x in rec[label]]))
    return out


def _collate(examples, pad_id: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Right-padded ids (B, L), mask (B, L), and label targets (B, L) with a 0/1 weight (B, L)."""
    width = max(len(ids) for ids, _, _ in examples)
    ids = torch.full((len(examples), width), pad_id)
    mask, target, weight = (torch.zeros(len(examples), width) for _ in range(3))
    for i, (x, pos, y) in enumerate(examples):
        ids[i, : len(x)], mask[i, : len(x)] = torch.tensor(x), 1
        target[i, pos], weight[i, pos] = torch.tensor(y), 1.0
    return ids, mask.long(), target, weight


def train_prm(
    policy,
    tokenizer,
    task: Task,
    records: Sequence[dict],
    label: str = "hard",
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[ProcessRewardModel, list[dict]]:
    """Trains a PRM (policy trunk + scalar head) with binary cross-entropy at each step's last token.

    Args:
        policy: the causal LM whose trunk initialises the PRM.
        tokenizer: its tokenizer.
        task: the task the records come from (renders prompts).
        records: ``mc_step_labels`` output (train split).
        label: ``"hard"`` (default; it ranked held-out steps better than soft on ``chain``) or ``"soft"`` MC
            labels (or ``"prefix_ok"``: ground truth, for comparison).
        steps, batch_size, lr, seed: optimisation settings (AdamW, constant lr).

    Returns:
        The trained PRM in eval mode and the history (``{"step", "loss"}`` per step).
    """
    examples = _examples(tokenizer, task, records, label)
    if not examples:
        raise ValueError("train_prm got no labelled steps")
    prm = ProcessRewardModel(policy).train()
    opt = torch.optim.AdamW(prm.parameters(), lr=lr, weight_decay=0.0)
    rng, history = random.Random(seed), []
    for step in range(steps):
        ids, mask, target, weight = _collate(rng.choices(examples, k=batch_size), tokenizer.pad_token_id)
        logits = prm(ids, mask)  # (B, L)
        loss = (nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum()
        loss = loss / weight.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(prm.parameters(), 1.0)
        opt.step()
        history.append({"step": step, "loss": loss.item()})
    return prm.eval(), history


@torch.no_grad()
def prm_scores(
    prm: ProcessRewardModel, tokenizer, task: Task, records: Sequence[dict], batch_size: int = 128
) -> list[list[float]]:
    """The PRM's probability at each record's ``chars`` positions (its steps' last tokens), per record (empty
    list for no steps), scored ``batch_size`` records per forward pass (right padding leaves the scores as they
    are alone: attention is causal)."""
    out: list[list[float]] = [[] for _ in records]
    scored = [i for i, rec in enumerate(records) if rec["chars"]]
    for s in range(0, len(scored), batch_size):
        rows = scored[s : s + batch_size]
        ex = _examples(tokenizer, task, [records[i] for i in rows], "chars")
        ids, mask, _, _ = _collate(ex, tokenizer.pad_token_id)
        probs = torch.sigmoid(prm(ids, mask))  # (b, L)
        for k, i in enumerate(rows):
            out[i] = probs[k, ex[k][1]].tolist()
    return out


def evaluate_prm(prm: ProcessRewardModel, tokenizer, task: Task, records: Sequence[dict]) -> dict[str, float]:
    """Held-out agreement of the PRM with the MC labels and with the ground-truth prefix labels.

    Returns:
        ``prm/auc_mc`` and ``prm/acc_mc`` against the hard MC labels, ``prm/auc_gt`` and
        ``prm/acc_gt`` against ``prefix_ok``, ``prm/mc_auc_gt`` (how well the soft MC labels
        themselves rank the ground truth: the ceiling the PRM is trained towards), the majority-class
        accuracy ``prm/base_acc_gt`` and the number of steps ``prm/steps``. Accuracy thresholds at 0.5.
    """
    scores = [s for row in prm_scores(prm, tokenizer, task, records) for s in row]
    hard = [y for r in records for y in r["hard"]]
    soft = [y for r in records for y in r["soft"]]
    gt = [float(y) for r in records for y in r["prefix_ok"]]
    acc = lambda ys: sum((s > 0.5) == (y > 0.5) for s, y in zip(scores, ys)) / max(len(ys), 1)  # noqa: E731
    share = sum(gt) / max(len(gt), 1)
    return {
        "prm/auc_mc": auroc(scores, hard),
        "prm/acc_mc": acc(hard),
        "prm/auc_gt": auroc(scores, gt),
        "prm/acc_gt": acc(gt),
        "prm/mc_auc_gt": auroc(soft, gt),
        "prm/base_acc_gt": max(share, 1 - share),
        "prm/steps": float(len(gt)),
    }


def build_prm(
    policy,
    tokenizer,
    task: Task,
    n_train: int = 512,
    n_test: int = 256,
    n_rollouts: int = 8,
    steps: int = 300,
    label: str = "hard",
    seed: int = 0,
) -> tuple[ProcessRewardModel, dict[str, float]]:
    """The whole recipe: MC labels on train and test problems, training, held-out evaluation.

    Returns:
        The PRM and ``evaluate_prm`` on ``n_test`` test-split problems (plus the label counts).
    """
    gen = torch.Generator().manual_seed(seed)
    train = mc_step_labels(
        policy, tokenizer, task, task.problems("train", n_train, seed=seed), n_rollouts, generator=gen
    )
    test = mc_step_labels(policy, tokenizer, task, task.problems("test", n_test, seed=seed), n_rollouts, generator=gen)
    prm, _ = train_prm(policy, tokenizer, task, train, label=label, steps=steps, seed=seed)
    return prm, evaluate_prm(prm, tokenizer, task, test)
