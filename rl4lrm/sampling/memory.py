"""Memory-based RL: an episodic memory of verified solutions, replayed into groups that found none.

On a fixed pool of problems the policy sometimes solves a hard problem once and then fails it on the next
visit: every sample of that group is wrong, its rewards are all equal, and under a group baseline it
teaches nothing. The memory keeps, for each problem of the pool, one completion the verifier accepted
(the shortest, the first or the latest found). When a fresh group of G samples has no correct answer and
the memory holds one for its problem, the group's last ``inject`` rows are replaced by the remembered
completion, so the group again has a reward contrast and the problem a learning signal.

A remembered completion was sampled by an older policy. Its ``old_logprobs`` are recomputed under the
current policy (``rl4lrm.rollout.compute_logprobs``), so its importance ratio starts at 1 and the clipped
loss treats it like an on-policy row: the trust region bounds how far one step moves toward it, and the
remembered answer is not reweighted by the stale sampler's probability. The batch is then rescored with
the run's reward mix. ``inject=0`` keeps the bookkeeping (what was solved, when) and never injects: it
samples exactly what the flat sampler does, a clean control arm.

The survey (arXiv:2509.08827, §7, memory-based RL) traces memory from task-specific replay buffers toward
reusable knowledge. This sampler is the simplest point on that line, replay of one's own successes:
ExGRPO (Zhan et al., 2025, arXiv:2510.02245) keeps a buffer of successful trajectories and replays those
of medium-difficulty problems (with an importance-weight correction, where this sampler resets the ratio);
RePO (Li et al., 2025, arXiv:2506.09340) retrieves past responses of a prompt from a replay buffer to add
to its group; LUFFY (Yan et al., 2025, arXiv:2504.14945) mixes off-policy traces of a stronger model into
the groups of on-policy rollouts, the mixing that is done here with the policy's own earlier answers. Memento
(Zhou et al., 2025, arXiv:2508.16153) keeps a case memory that an LLM agent retrieves into its prompt;
the lab's 0.65M-parameter char models cannot read retrieved examples, so here the memory is retrieved
into the training batch instead of the prompt.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

import torch

from rl4lrm.advantages import group_view, zero_std_groups
from rl4lrm.rollout import RolloutBatch, compute_logprobs, decodes_left_to_right
from rl4lrm.sampling.base import SAMPLERS, FlatConfig, Sampled, Sampler, SamplingContext, generated_tokens
from rl4lrm.validation import NON_NEGATIVE, named_keywords

KEEP = ("shortest", "first", "latest")


@named_keywords()
@dataclass
class MemoryConfig(FlatConfig):
    """Settings of the memory sampler (it draws from a fixed pool: ``pool_size`` > 0)."""

    inject: int = 1
    """Rows of an all-wrong group the memory fills with its remembered solution (the group's last rows);
    0 records solutions but never injects (the control arm); at most G - 1, so fresh samples remain."""
    capacity: int = 0
    """Most problems the memory remembers (0: no limit); when full, the oldest entry is forgotten first."""
    keep: str = "shortest"
    """Which correct completion a problem keeps: ``shortest`` (fewest tokens), ``first`` (the first one
    found, never replaced) or ``latest`` (the most recent, closest to the current policy)."""

    RANGES: ClassVar[dict] = {**FlatConfig.RANGES, "inject": NON_NEGATIVE, "capacity": NON_NEGATIVE, "keep": KEEP}


def inject_rows(
    batch: RolloutBatch, rows: list[int], solutions: list[list[int]], texts: list[str], model, pad_id: int
) -> RolloutBatch:
    """A copy of ``batch`` whose ``rows`` hold the given completions, their ``old_logprobs`` under ``model``.

    Args:
        batch: N rows, completions (N, T).
        rows: row indices to overwrite. solutions: the token ids of each new completion (EOS included).
        texts: their decoded text. model: the current policy. pad_id: the tokenizer's pad id.

    Returns:
        A new ``RolloutBatch``, completions widened to the longest one (N, T'); the other rows are unchanged.
    """
    if len(rows) != len(solutions) or len(rows) != len(texts):
        raise ValueError(
            f"inject_rows needs one solution and text per row, got {len(rows)}, {len(solutions)}, {len(texts)}"
        )
    if batch.aux:
        raise ValueError(f"inject_rows cannot rebuild a batch with aux tensors {sorted(batch.aux)}")
    T = max([batch.completion_ids.shape[1], *map(len, solutions)])
    width = T - batch.completion_ids.shape[1]
    ids = torch.nn.functional.pad(batch.completion_ids, (0, width), value=pad_id)  # (N, T')
    mask = torch.nn.functional.pad(batch.response_mask, (0, width))  # (N, T')
    logprobs = torch.nn.functional.pad(batch.old_logprobs, (0, width))  # (N, T')
    truncated = batch.truncated.clone()
    completions = list(batch.completions)
    for row, solution, text in zip(rows, solutions, texts):
        ids[row] = pad_id
        ids[row, : len(solution)] = torch.tensor(solution, device=ids.device)
        mask[row] = 0.0
        mask[row, : len(solution)] = 1.0
        truncated[row] = False
        completions[row] = text
    new = RolloutBatch(
        batch.prompt_ids, batch.prompt_mask, ids, mask, logprobs, batch.group_ids, truncated, completions,
        batch.group_size, batch.temperature,
    )  # fmt: skip
    if rows:
        index = torch.tensor(rows, device=ids.device)
        with torch.no_grad():
            current, _ = compute_logprobs(model, new.select(index))  # (len(rows), T') the ratio starts at 1
        new.old_logprobs[index] = current
    return new


@SAMPLERS.register("memory")
class MemorySampler(Sampler):
    """Flat sampling from a fixed pool, plus an episodic memory of one verified solution per problem.

    After the G fresh samples of a problem are scored, a group with no correct sample whose problem is
    remembered gets the remembered completion in its last ``inject`` rows; then every correct fresh sample
    may enter the memory (``keep``). Logs ``memory/size``, ``memory/injected`` (rows replaced),
    ``memory/hit_rate`` (all-wrong groups the memory could fill), ``memory/pool_solved`` (share of the pool
    ever solved by a fresh sample) and ``memory/fresh_correct`` and ``memory/fresh_frac_zero_std``
    (the fresh samples before injection: ``reward/*`` describe the batch that is trained on).
    """

    Config = MemoryConfig

    @classmethod
    def check(cls, config: MemoryConfig, run) -> None:
        super().check(config, run)
        if config.pool_size == 0:
            raise ValueError(
                "sampler='memory' needs a fixed pool to revisit: set MemoryConfig.pool_size > 0 "
                "(sampling={'pool_size': 256})"
            )
        if config.inject >= run.group_size:
            raise ValueError(
                f"MemoryConfig.inject={config.inject} must be below group_size={run.group_size}: "
                f"choose 0 (record only) to {run.group_size - 1}"
            )

    def __init__(self, config: MemoryConfig, task, seed: int):
        super().__init__(config, task, seed)
        self.memory: OrderedDict[str, tuple[list[int], str]] = OrderedDict()  # key -> (token ids, text)
        self.solved: set[str] = set()  # keys ever solved by a fresh sample

    def remember(self, key: str, solution: list[int], text: str) -> None:
        """Offers a verified completion of problem ``key`` to the memory (``keep`` decides; ``capacity`` evicts)."""
        old = self.memory.get(key)
        keep = self.config.keep
        if old is not None and (keep == "first" or (keep == "shortest" and len(solution) >= len(old[0]))):
            return
        self.memory.pop(key, None)  # re-inserted last: the newest entry is evicted last
        self.memory[key] = (list(solution), text)
        if self.config.capacity and len(self.memory) > self.config.capacity:
            self.memory.popitem(last=False)

    def sample(self, ctx: SamplingContext) -> Sampled:
        if not decodes_left_to_right(ctx.model):
            raise ValueError("sampler='memory' replays token sequences and needs a left-to-right policy")
        G, k = ctx.group_size, self.config.inject
        problems = self.source.draw(ctx.prompts_per_step, ctx.step)
        prompts, batch, scores = ctx.draw(problems)
        tokens = generated_tokens(batch)  # the fresh samples: a remembered row costs no generation
        correct = group_view(scores.correct.float().cpu(), G) > 0.5  # (B, G) the fresh samples' verdicts
        fresh_zero = zero_std_groups(scores.total, G).float().mean().item()
        fresh_correct = correct.float().mean().item()
        # 1. retrieve: all-wrong groups whose problem is remembered get the remembered solution
        wrong = [b for b in range(len(problems)) if not correct[b].any()]
        hits = [b for b in wrong if problems[b].key in self.memory]  # with inject=0: what it could have filled
        rows, solutions, texts = [], [], []
        for b in hits if k else []:
            solution, text = self.memory[problems[b].key]
            for j in range(G - k, G):
                rows.append(b * G + j)
                solutions.append(solution)
                texts.append(text)
        # 2. store: every correct fresh sample is offered to the memory (before injection, so only fresh ones)
        lengths = batch.response_mask.sum(-1).long().tolist()  # (N,)
        for b, problem in enumerate(problems):
            for j in correct[b].nonzero().squeeze(-1).tolist():
                row = b * G + j
                if not batch.truncated[row]:
                    self.remember(
                        problem.key, batch.completion_ids[row, : lengths[row]].tolist(), batch.completions[row]
                    )
                    self.solved.add(problem.key)
        if rows:
            batch = inject_rows(batch, rows, solutions, texts, ctx.model, ctx.tokenizer.pad_token_id)
            scores = ctx.score(ctx.per_row(problems), batch)
        metrics = {
            "tokens/generated": tokens,
            "memory/size": float(len(self.memory)),
            "memory/injected": float(len(rows)),
            "memory/hit_rate": len(hits) / max(len(wrong), 1),  # 0 when no group was all wrong
            "memory/pool_solved": len(self.solved) / len(self.source.pool),
            "memory/fresh_correct": fresh_correct,
            "memory/fresh_frac_zero_std": fresh_zero,
        }
        return Sampled(problems, prompts, batch, scores, metrics=metrics)

    def state_dict(self) -> dict:
        return {
            "keys": list(self.memory),
            "solutions": [ids for ids, _ in self.memory.values()],
            "texts": [text for _, text in self.memory.values()],
            "solved": sorted(self.solved),
        }

    def load_state_dict(self, state: dict) -> None:
        self.memory = OrderedDict(
            (key, (list(ids), text)) for key, ids, text in zip(state["keys"], state["solutions"], state["texts"])
        )
        self.solved = set(state["solved"])
