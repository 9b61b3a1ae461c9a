"""Dynamic sampling: spend the gradient step on groups that carry a learning signal.

A group whose G rewards are all equal gets zero advantage under every group baseline (GRPO, RLOO,
Dr.GRPO): its rollouts cost compute and teach nothing, and as training solves more prompts such
groups fill the batch. DAPO (Yu et al., 2025, arXiv:2503.14476, Sec. 3.2, "dynamic sampling")
over-samples and drops them, refilling the batch until it holds B informative groups. A pass-rate
band (keep groups whose pass rate lies in, e.g., 0.2–0.8) is the stricter variant used for offline
and online difficulty filtering (e.g. Kimi k1.5, arXiv:2501.12599; PRIME, arXiv:2502.01456).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rl4lrm.advantages import group_view, zero_std_groups
from rl4lrm.registry import Registry
from rl4lrm.rollout import concat_batches
from rl4lrm.sampling.base import (
    SAMPLERS,
    FlatConfig,
    Sampled,
    Sampler,
    SamplingContext,
    Scores,
    generated_tokens,
)
from rl4lrm.validation import AT_LEAST_ONE, UNIT, named_keywords

FILTERS = Registry("group filter")


@FILTERS.register("zero_variance")
def zero_variance(rewards: torch.Tensor, group_size: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Keeps the groups whose rewards are not all equal (DAPO), shape (B,) bool; the band is ignored."""
    return ~zero_std_groups(rewards, group_size)


@FILTERS.register("pass_band")
def pass_band(rewards: torch.Tensor, group_size: int, low: float = 0.2, high: float = 0.8) -> torch.Tensor:
    """Keeps the groups whose mean reward (pass rate for 0/1 rewards) lies in [low, high], shape (B,) bool."""
    rate = group_view(rewards, group_size).float().mean(1)  # (B,)
    return (rate >= low) & (rate <= high)


def group_signal_probability(pass_rate: torch.Tensor, group_size: int) -> torch.Tensor:
    """Probability that a group of G independent 0/1 rewards is not all equal: 1 - p^G - (1-p)^G.

    The share of a prompt's groups that carry any gradient under a group baseline; it vanishes as the
    policy's pass rate p on the prompt goes to 0 or 1, faster for small G.
    """
    return 1 - pass_rate**group_size - (1 - pass_rate) ** group_size


@named_keywords()
@dataclass
class DynamicConfig(FlatConfig):
    """Settings of dynamic sampling."""

    filter: str = "zero_variance"
    """Which groups to keep (``FILTERS``): ``zero_variance`` drops groups whose G rewards are all equal
    (DAPO), ``pass_band`` keeps groups whose mean reward lies in [``band_low``, ``band_high``]."""
    band_low: float = 0.2
    """Lowest group pass rate ``pass_band`` keeps (inclusive)."""
    band_high: float = 0.8
    """Highest group pass rate ``pass_band`` keeps (inclusive)."""
    max_rounds: int = 8
    """Draws B more prompts per round until B groups pass the filter; after this many rounds it stops
    with an error instead of looping forever (verl's ``max_num_gen_batches``)."""

    RANGES: ClassVar[dict] = {
        **FlatConfig.RANGES,
        "filter": FILTERS,
        "band_low": UNIT,
        "band_high": UNIT,
        "max_rounds": AT_LEAST_ONE,
    }

    def __post_init__(self):
        super().__post_init__()
        if not self.band_low <= self.band_high:
            raise ValueError(f"DynamicConfig needs band_low <= band_high, got {self.band_low}, {self.band_high}")


@SAMPLERS.register("dynamic")
class DynamicSampler(Sampler):
    """Draws rounds of B prompts × G samples until B groups pass the filter, then trains on exactly B.

    The surplus of the last round is dropped (DAPO keeps the batch size fixed). Every generated token
    is counted in ``tokens/generated``, the discarded ones included: that is the price of the signal.
    """

    Config = DynamicConfig

    def sample(self, ctx: SamplingContext) -> Sampled:
        scfg = self.config
        B, G = ctx.prompts_per_step, ctx.group_size
        keep_fn = FILTERS.get(scfg.filter)
        batches, scores, problems, prompts = [], [], [], []
        kept = drawn = drawn_zero_std = 0
        tokens = 0.0
        for round in range(scfg.max_rounds):
            round_problems = self.source.draw(B, ctx.step, round)
            round_prompts, batch, round_scores = ctx.draw(round_problems, round)
            tokens += generated_tokens(batch)
            keep = keep_fn(round_scores.total, G, scfg.band_low, scfg.band_high)  # (B,)
            drawn += B
            drawn_zero_std += int(zero_std_groups(round_scores.total, G).sum())
            groups = keep.nonzero().squeeze(-1)[: B - kept]
            if len(groups):
                rows = (groups[:, None] * G + torch.arange(G, device=groups.device)).reshape(-1)  # (n*G,)
                batches.append(batch.select(rows))
                scores.append(round_scores.select(rows))
                problems += [round_problems[i] for i in groups.tolist()]
                prompts += [round_prompts[i] for i in groups.tolist()]
                kept += len(groups)
            if kept == B:
                break
        else:
            raise RuntimeError(
                f"dynamic sampling kept {kept} of the {B} groups it needs after max_rounds={scfg.max_rounds} rounds "
                f"({drawn} groups drawn, filter {scfg.filter!r}): the prompts are all too easy or too hard for the "
                "policy; raise sampling.max_rounds, loosen the filter, or use sampler='flat'"
            )
        batch = concat_batches(batches, ctx.tokenizer.pad_token_id)
        metrics = {
            "tokens/generated": tokens,
            "sampling/rounds": round + 1,
            "sampling/groups_drawn": drawn,
            "sampling/frac_kept": B / drawn,
            "sampling/drawn_frac_zero_std": drawn_zero_std / drawn,
        }
        return Sampled(problems, prompts, batch, Scores.cat(scores, batch.completion_ids.shape[1]), metrics=metrics)
