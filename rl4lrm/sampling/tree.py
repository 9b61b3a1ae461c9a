"""Tree rollouts: completions that branch from shared prefixes, and segment-level advantages.

Instead of G independent completions per prompt, the prompt's tree grows by segments: each node
samples ``branching[d]`` continuations of ``segment_len`` tokens, and the last level runs to EOS or
the length cap. Siblings share their parent's prefix, so the prefix is prefilled once and its KV
cache copied to the children, and the shared tokens are generated once instead of once per leaf.
Every node gets a value, the mean reward of the leaves below it, and every segment an advantage
from how its node's value compares with the root's (global) and its parent's (local) — outcome
rewards turned into process supervision without a reward model. This follows TreeRL (Hou et al.,
2025, arXiv:2506.11902: global plus local advantage, scaled down by the square root of the number
of leaves sharing the segment) and TreeRPO (Yang et al., 2025, arXiv:2506.05183); both branch at
fixed or uncertainty-chosen points, we branch every ``segment_len`` tokens.

A node that ends (EOS) before the last level is a leaf standing for its whole missing subtree: its
row is repeated so that every prompt has exactly G = prod(branching) leaf rows, which keeps the
group layout of the other estimators (and weights the early leaf as its subtree would be).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from rl4lrm.rollout import (
    RolloutBatch,
    decodes_left_to_right,
    left_pad,
    prompt_token_ids,
    rollout_ids,
)
from rl4lrm.sampling.base import SAMPLERS, FlatConfig, Sampled, Sampler, SamplingContext
from rl4lrm.validation import AT_LEAST_ONE, named_keywords


@dataclass
class TreeRollout:
    """The B trees of one step and their N = B*G leaf rows. Nodes are numbered 0..M-1; roots first."""

    batch: RolloutBatch  # the leaf rows: prompt + the segments on the path, G rows per prompt
    parent: torch.Tensor  # (M,) parent node, -1 for the roots
    root: torch.Tensor  # (M,) root node of each node's tree
    depth: torch.Tensor  # (M,) 0 for roots
    n_tokens: torch.Tensor  # (M,) tokens the node generated (its segment), 0 for roots
    token_node: torch.Tensor  # (N, T) node that generated each completion token, -1 on padding
    row_nodes: torch.Tensor  # (N, D+1) nodes on each row's path, root first, -1 past an early leaf
    segments: list[str]  # decoded segment of each node ("" for roots)
    prefill_tokens: int  # prefix tokens run through the model to expand nodes (prompts included)

    @property
    def tokens_generated(self) -> int:
        """Distinct completion tokens sampled (shared prefixes counted once)."""
        return int(self.n_tokens.sum())

    @property
    def tokens_in_batch(self) -> int:
        """Completion tokens in the leaf rows (what a flat rollout of the same rows would sample)."""
        return int(self.batch.response_mask.sum())


@torch.no_grad()
def tree_rollout(
    model,
    tokenizer,
    prompts: list[str],
    branching=(4, 2),
    segment_len: int = 4,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    precision: str = "auto",
    engine: str = "auto",
) -> TreeRollout:
    """Grows one sampling tree per prompt.

    Args:
        prompts: B formatted prompts.
        branching: children per node at each depth; G = prod(branching) leaf rows per prompt.
        segment_len: tokens per segment below the last branching point.
        max_new_tokens: length cap of a whole completion; must leave the last level at least one token.
        temperature, top_p, generator, precision, engine: as in ``rl4lrm.rollout.rollout``.

    Returns:
        A ``TreeRollout`` whose ``batch`` has N = B*G rows, rows of one prompt contiguous and the
        leaves of one subtree adjacent.
    """
    branching = tuple(branching)
    if not prompts:
        raise ValueError("prompts is empty: tree_rollout needs at least one prompt")
    if not branching or any(b < 1 for b in branching) or segment_len < 1:
        raise ValueError(f"need branching of ints >= 1 and segment_len >= 1, got {branching}, {segment_len}")
    if (len(branching) - 1) * segment_len >= max_new_tokens:
        raise ValueError(
            f"{len(branching)} levels of {segment_len}-token segments leave no room under "
            f"max_new_tokens={max_new_tokens}; use fewer levels or shorter segments"
        )
    if not decodes_left_to_right(model):
        raise ValueError(
            f"tree_rollout branches a completion mid-way, which needs a left-to-right causal LM; "
            f"{type(model).__name__} samples its own way: use sampler='flat', 'dynamic' or 'curriculum'"
        )
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompt_tokens = prompt_token_ids(tokenizer, prompts)
    B, D = len(prompts), len(branching)
    parent, depth, tokens, logprobs = [-1] * B, [0] * B, [[] for _ in range(B)], [[] for _ in range(B)]
    group, leaf, truncated = list(range(B)), [False] * B, [False] * B
    path = {n: [] for n in range(B)}  # node -> token ids from the root
    frontier, prefill = list(range(B)), 0
    for d, width in enumerate(branching):
        last = d == D - 1
        budget = max_new_tokens - d * segment_len if last else segment_len
        inputs = [prompt_tokens[group[n]] + path[n] for n in frontier]
        prefill += sum(len(x) for x in inputs)
        ids, mask = left_pad(inputs, pad, device)
        sub = rollout_ids(model, tokenizer, ids, mask, width, budget, temperature, top_p, generator, engine, precision)
        lengths = sub.response_mask.sum(-1).long().tolist()
        next_frontier = []
        for j, length in enumerate(lengths):
            node, up = len(parent), frontier[j // width]
            seg = sub.completion_ids[j, :length].tolist()
            parent.append(up)
            depth.append(d + 1)
            group.append(group[up])
            tokens.append(seg)
            logprobs.append(sub.old_logprobs[j, :length].tolist())
            path[node] = path[up] + seg
            ended = seg[-1] == eos or last
            leaf.append(ended)
            truncated.append(last and bool(sub.truncated[j]))
            if not ended:
                next_frontier.append(node)
        frontier = next_frontier
        if not frontier:
            break
    children = [[] for _ in parent]
    for node, up in enumerate(parent):
        if up >= 0:
            children[up].append(node)

    rows = []  # (leaf node, path of nodes) per leaf row, depth-first so subtrees stay adjacent

    def visit(node, nodes):
        nodes = nodes + [node]
        if leaf[node]:
            rows.extend([(node, nodes)] * math.prod(branching[depth[node] :]))
        for child in children[node]:
            visit(child, nodes)

    for r in range(B):
        visit(r, [])
    T = max(len(path[node]) for node, _ in rows)
    N = len(rows)
    completion = torch.full((N, T), pad, dtype=torch.long)
    old = torch.zeros(N, T)
    token_node = torch.full((N, T), -1, dtype=torch.long)
    row_nodes = torch.full((N, D + 1), -1, dtype=torch.long)
    for i, (_, nodes) in enumerate(rows):
        row_nodes[i, : len(nodes)] = torch.tensor(nodes)
        t = 0
        for n in nodes[1:]:
            completion[i, t : t + len(tokens[n])] = torch.tensor(tokens[n])
            old[i, t : t + len(tokens[n])] = torch.tensor(logprobs[n])
            token_node[i, t : t + len(tokens[n])] = n
            t += len(tokens[n])
    prompt_ids, prompt_mask = left_pad(prompt_tokens, pad, device)
    groups = torch.tensor([group[node] for node, _ in rows], device=device)  # (N,)
    batch = RolloutBatch(
        prompt_ids=prompt_ids[groups],
        prompt_mask=prompt_mask[groups],
        completion_ids=completion.to(device),
        response_mask=(token_node >= 0).float().to(device),
        old_logprobs=old.to(device),
        group_ids=groups,
        truncated=torch.tensor([truncated[node] for node, _ in rows], device=device),
        completions=tokenizer.batch_decode(completion, skip_special_tokens=True),
        group_size=math.prod(branching),
        temperature=temperature,
    )
    parent_t = torch.tensor(parent)
    return TreeRollout(
        batch=batch,
        parent=parent_t,
        root=torch.tensor(group),
        depth=torch.tensor(depth),
        n_tokens=torch.tensor([len(x) for x in tokens]),
        token_node=token_node.to(device),
        row_nodes=row_nodes.to(device),
        segments=tokenizer.batch_decode(tokens, skip_special_tokens=False),
        prefill_tokens=prefill,
    )


@named_keywords()
@dataclass
class TreeConfig(FlatConfig):
    """Settings of tree rollouts."""

    segment_len: int = 4
    """Tokens per segment before the tree branches again."""
    branching: tuple[int, ...] = field(default=(4, 2))
    """Children per node at each depth; their product must equal G (the leaves)."""

    RANGES: ClassVar[dict] = {**FlatConfig.RANGES, "segment_len": AT_LEAST_ONE}

    def __post_init__(self):
        if isinstance(self.branching, list):
            self.branching = tuple(self.branching)
        super().__post_init__()
        if not self.branching or any(b < 1 for b in self.branching):
            raise ValueError(f"TreeConfig.branching must be a non-empty tuple of ints >= 1, got {self.branching!r}")

    @property
    def leaves(self) -> int:
        """Leaves per tree (the group size tree rollouts produce)."""
        return math.prod(self.branching)


@SAMPLERS.register("tree")
class TreeSampler(Sampler):
    """B fresh problems, one tree of G = prod(branching) leaves each (``sampling.segment_len``, ``branching``)."""

    Config = TreeConfig
    provides = ("tree",)

    @classmethod
    def check(cls, config: TreeConfig, run) -> None:
        super().check(config, run)
        if config.leaves != run.group_size:
            raise ValueError(
                f"sampler='tree' grows prod(branching={config.branching}) = {config.leaves} leaves per "
                f"prompt, but TrainConfig.group_size={run.group_size}; make them equal"
            )
        if (len(config.branching) - 1) * config.segment_len >= run.max_new_tokens:
            raise ValueError(
                f"sampler='tree': {len(config.branching)} levels of segment_len={config.segment_len} leave "
                f"no room under TrainConfig.max_new_tokens={run.max_new_tokens}; use fewer levels or "
                f"shorter segments"
            )

    def sample(self, ctx: SamplingContext) -> Sampled:
        scfg = self.config
        problems = self.source.draw(ctx.prompts_per_step, ctx.step)
        prompts = ctx.prompts(problems)
        tree = tree_rollout(
            ctx.model,
            ctx.tokenizer,
            prompts,
            scfg.branching,
            scfg.segment_len,
            ctx.max_new_tokens,
            ctx.temperature,
            ctx.top_p,
            ctx.generator(0, 0),
            ctx.precision,
            ctx.engine,
        )
        scores = ctx.score(ctx.per_row(problems), tree.batch)
        metrics = {
            "tokens/generated": float(tree.tokens_generated),
            "tree/tokens_shared": float(tree.tokens_in_batch - tree.tokens_generated),
            "tree/prefill_tokens": float(tree.prefill_tokens),
            "tree/nodes": float(len(tree.parent) - len(problems)),
        }
        return Sampled(problems, prompts, tree.batch, scores, context={"tree": tree}, metrics=metrics)
