"""Online difficulty estimates and a curriculum that follows them, with adaptive rollout allocation.

Each problem of a fixed pool carries a running estimate of the policy's pass rate on it, updated from
every group sampled on it (a Beta(1, 1) prior on successes and failures, with exponential forgetting
because the policy keeps changing). The curriculum samples the prompts whose estimate is near a
target pass rate: at 0.5 a 0/1 reward has its largest variance, so a group there carries the most
gradient signal, while solved and hopeless prompts are revisited rarely. As the policy improves,
harder problems move into the band — the curriculum "follows" the model. This is the online
counterpart of difficulty-based data selection (e.g. Kimi k1.5, arXiv:2501.12599, Sec. 2.3; online
filtering in PRIME, arXiv:2502.01456) and of uncertainty-based budget allocation (e.g. "Knapsack RL",
arXiv:2509.25849, which gives more rollouts to prompts whose outcome is uncertain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from rl4lrm.advantages import group_view
from rl4lrm.sampling.base import (
    SAMPLERS,
    FlatConfig,
    Sampled,
    Sampler,
    SamplingContext,
    generated_tokens,
)
from rl4lrm.validation import POSITIVE, UNIT, Range, named_keywords

ALLOCATIONS = ("one_group", "proportional")


class DifficultyTracker:
    """Running pass-rate estimates for a pool of ``n`` problems.

    ``pass_rate = (successes + 1) / (trials + 2)``: the posterior mean under a uniform prior, so an
    unseen problem sits at 0.5. Before each update the old counts are multiplied by ``decay``.
    """

    def __init__(self, n: int, decay: float = 0.8):
        self.successes = torch.zeros(n, dtype=torch.float64)
        self.trials = torch.zeros(n, dtype=torch.float64)
        self.decay = decay

    @property
    def pass_rate(self) -> torch.Tensor:
        return (self.successes + 1) / (self.trials + 2)  # (n,)

    @property
    def seen(self) -> torch.Tensor:
        return self.trials > 0  # (n,)

    def update(self, index: torch.Tensor, rewards: torch.Tensor, group_size: int) -> None:
        """Folds in the groups sampled on problems ``index`` (B,), rewards (B*G,) with 1 = correct."""
        grouped = group_view(rewards.double().cpu(), group_size)  # (B, G)
        touched = index.unique()
        self.successes[touched] *= self.decay
        self.trials[touched] *= self.decay
        self.successes.index_add_(0, index, grouped.sum(1))
        self.trials.index_add_(0, index, torch.full((len(index),), float(group_size), dtype=torch.float64))

    def state_dict(self) -> dict:
        return {"successes": self.successes.clone(), "trials": self.trials.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.successes, self.trials = state["successes"].clone(), state["trials"].clone()


def curriculum_weights(pass_rate: torch.Tensor, target: float = 0.5, width: float = 0.2) -> torch.Tensor:
    """Sampling weight of each problem: a Gaussian bump around the target pass rate, shape like ``pass_rate``."""
    return torch.exp(-0.5 * ((pass_rate - target) / width) ** 2)


@named_keywords()
@dataclass
class CurriculumConfig(FlatConfig):
    """Settings of the curriculum (it draws from a fixed pool: ``pool_size`` > 0)."""

    target: float = 0.5
    """The pass rate the curriculum aims at (0.5 gives the largest reward variance)."""
    width: float = 0.2
    """How sharply prompts away from ``target`` are down-weighted (a Gaussian's std)."""
    decay: float = 0.8
    """Each new group's outcome outweighs older ones by 1/decay (1 never forgets)."""
    allocation: str = "one_group"
    """``one_group`` gives each chosen prompt one group of G; ``proportional`` draws the B groups with
    replacement, so a prompt gets groups (samples) in proportion to its weight."""

    RANGES: ClassVar[dict] = {
        **FlatConfig.RANGES,
        "target": UNIT,
        "width": POSITIVE,
        "decay": Range(0, 1, low_open=True),
        "allocation": ALLOCATIONS,
    }


@SAMPLERS.register("curriculum")
class CurriculumSampler(Sampler):
    """Chooses each step's B groups from the pool by ``curriculum_weights`` of the tracked pass rates.

    With ``allocation="one_group"`` B distinct prompts get one group each; with ``"proportional"``
    the B groups are drawn with replacement, so uncertain prompts get several groups (more samples)
    and confident ones none.
    """

    Config = CurriculumConfig

    @classmethod
    def check(cls, config: CurriculumConfig, run) -> None:
        super().check(config, run)
        if config.pool_size == 0:
            raise ValueError(
                "sampler='curriculum' needs a fixed pool: set CurriculumConfig.pool_size > 0 "
                "(sampling={'pool_size': 512})"
            )

    def __init__(self, config: CurriculumConfig, task, seed: int):
        super().__init__(config, task, seed)
        self.tracker = DifficultyTracker(len(self.source.pool), config.decay)
        self.last_index = torch.empty(0, dtype=torch.long)  # pool indices of the last step's groups

    def sample(self, ctx: SamplingContext) -> Sampled:
        scfg = self.config
        # floored: a narrow width underflows to 0 far from the target, and multinomial needs B nonzero weights
        weights = curriculum_weights(self.tracker.pass_rate, scfg.target, scfg.width).clamp(min=1e-12)  # (pool,)
        gen = torch.Generator().manual_seed(ctx.seed * 1_000_003 + ctx.step)
        index = torch.multinomial(
            weights, ctx.prompts_per_step, replacement=scfg.allocation == "proportional", generator=gen
        )  # (B,)
        estimate = self.tracker.pass_rate[index].mean().item()
        self.last_index = index
        problems = [self.source.pool[i] for i in index.tolist()]
        prompts, batch, scores = ctx.draw(problems)
        self.tracker.update(index, scores.correct, ctx.group_size)  # difficulty = the verifier's pass rate
        metrics = {
            "tokens/generated": generated_tokens(batch),
            "curriculum/selected_pass_rate": estimate,
            "curriculum/pool_pass_rate": self.tracker.pass_rate[self.tracker.seen].mean().item(),
            "curriculum/frac_seen": self.tracker.seen.double().mean().item(),
            "curriculum/distinct_prompts": float(len(index.unique())),
        }
        return Sampled(problems, prompts, batch, scores, metrics=metrics)

    def state_dict(self) -> dict:
        return self.tracker.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.tracker.load_state_dict(state)
