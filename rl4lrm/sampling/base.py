"""What every sampler shares: its config, its output, the problem source and the flat sampler.

A sampler decides which prompts a step trains on and how their completions are drawn; the trainer
calls ``sampler.sample(trainer)`` once per step and gets back a scored batch (``Sampled``). The
flat sampler is the plain GRPO recipe: B fresh train problems, G independent completions each.
Dynamic sampling (``rl4lrm.sampling.dynamic``), curricula (``rl4lrm.sampling.curriculum``) and
tree rollouts (``rl4lrm.sampling.tree``) are the survey's alternatives (§3.4, sampling strategy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from rl4lrm.registry import Registry
from rl4lrm.rollout import RolloutBatch, rollout
from rl4lrm.tasks import Problem, Task
from rl4lrm.validation import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT, Range, check_fields

SAMPLERS = Registry("sampler")
ALLOCATIONS = ("one_group", "proportional")
# seeds of round r > 0 of a step: far from every step's round-0 seed
_ROUND_STRIDE = 10_000_019


@dataclass
class SamplingConfig:
    """Settings of the non-flat samplers (``TrainConfig.sampler`` picks which one runs)."""

    filter: str = "zero_variance"
    """Dynamic sampling: which groups to keep (``rl4lrm.sampling.dynamic.FILTERS``): ``zero_variance``
    drops groups whose G rewards are all equal (DAPO), ``pass_band`` keeps groups whose mean reward
    lies in [``band_low``, ``band_high``]."""
    band_low: float = 0.2
    """Lowest group pass rate ``pass_band`` keeps (inclusive)."""
    band_high: float = 0.8
    """Highest group pass rate ``pass_band`` keeps (inclusive)."""
    max_rounds: int = 8
    """Dynamic sampling draws B more prompts per round until B groups pass the filter; after this many
    rounds it stops with an error instead of looping forever (verl's ``max_num_gen_batches``)."""
    pool_size: int = 0
    """0 draws fresh problems from the task's train split every step; > 0 fixes a pool of that many
    train problems (a data set) that every step draws from. The curriculum needs a pool."""
    target: float = 0.5
    """Curriculum: the pass rate the curriculum aims at (0.5 gives the largest reward variance)."""
    width: float = 0.2
    """Curriculum: how sharply prompts away from ``target`` are down-weighted (a Gaussian's std)."""
    decay: float = 0.8
    """Curriculum: each new group's outcome outweighs older ones by 1/decay (1 never forgets)."""
    allocation: str = "one_group"
    """Curriculum: ``one_group`` gives each chosen prompt one group of G; ``proportional`` draws the B
    groups with replacement, so a prompt gets groups (samples) in proportion to its weight."""
    segment_len: int = 4
    """Tree rollouts: tokens per segment before the tree branches again."""
    branching: tuple[int, ...] = (4, 2)
    """Tree rollouts: children per node at each depth; their product must equal G (the leaves)."""

    def __post_init__(self):
        if isinstance(self.branching, list):
            self.branching = tuple(self.branching)
        check_fields(self, _SAMPLING_RANGES)
        if not self.band_low <= self.band_high:
            raise ValueError(f"SamplingConfig needs band_low <= band_high, got {self.band_low}, {self.band_high}")
        if not self.branching or any(b < 1 for b in self.branching):
            raise ValueError(f"SamplingConfig.branching must be a non-empty tuple of ints >= 1, got {self.branching!r}")
        from rl4lrm.sampling.dynamic import FILTERS  # the filter registry lives with dynamic sampling

        FILTERS.get(self.filter)

    @property
    def leaves(self) -> int:
        """Leaves per tree (the group size tree rollouts produce)."""
        return math.prod(self.branching)


_SAMPLING_RANGES = {"band_low": UNIT, "band_high": UNIT, "max_rounds": AT_LEAST_ONE, "pool_size": NON_NEGATIVE,
                    "target": UNIT, "width": POSITIVE, "decay": Range(0, 1, low_open=True),
                    "allocation": ALLOCATIONS, "segment_len": AT_LEAST_ONE}


@dataclass
class Scores:
    """The rewards of N completions: the training reward, its parts, and the task's verdict."""

    total: torch.Tensor  # (N,) the training reward: the weighted sum of the reward mix
    parts: dict[str, torch.Tensor]  # (N,) each mix component (dense ones summed over tokens)
    correct: torch.Tensor  # (N,) the task's verifier (1 = correct), logged whatever the mix
    token: torch.Tensor | None = None  # (N, T) the weighted dense components, or None

    def select(self, rows: torch.Tensor) -> "Scores":
        """The scores of the given rows."""
        return Scores(self.total[rows], {k: v[rows] for k, v in self.parts.items()}, self.correct[rows],
                      None if self.token is None else self.token[rows])

    @staticmethod
    def cat(scores: list["Scores"], width: int) -> "Scores":
        """Stacks scores; dense token rewards are right-padded to ``width`` tokens (as ``concat_batches`` pads)."""
        token = None
        if scores[0].token is not None:
            token = torch.cat([torch.nn.functional.pad(s.token, (0, width - s.token.shape[1])) for s in scores])
        return Scores(torch.cat([s.total for s in scores]),
                      {k: torch.cat([s.parts[k] for s in scores]) for k in scores[0].parts},
                      torch.cat([s.correct for s in scores]), token)


@dataclass
class Sampled:
    """One step's scored batch, as a sampler hands it to the trainer."""

    problems: list[Problem]  # one per group (B)
    prompts: list[str]  # their formatted prompts
    batch: RolloutBatch  # N = B*G rows
    scores: Scores  # their rewards
    context: dict = field(default_factory=dict)  # extra advantage context (e.g. the tree)
    metrics: dict = field(default_factory=dict)  # sampling metrics, logged with the step

    @property
    def rewards(self) -> torch.Tensor:
        """The training reward, shape (N,)."""
        return self.scores.total


class Sampler:
    """Base class: ``sample(trainer)`` returns a ``Sampled``; state travels in checkpoints."""

    provides: tuple[str, ...] = ()
    """Advantage context this sampler adds (an estimator's ``requires`` may name it)."""

    def __init__(self, config: SamplingConfig, trainer):
        self.config = config
        self.source = ProblemSource(trainer.task, config.pool_size, trainer.config.seed)

    def sample(self, trainer) -> Sampled:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ProblemSource:
    """Training problems: the task's unbounded train stream, or a fixed pool of ``pool_size`` of them.

    ``draw(n, step, round)`` is a pure function of (seed, step, round), so resumed runs see the same
    problems. From a pool, the rounds of one step walk through one shuffle of it and never repeat a
    problem within the step; asking for more than the pool holds is an error.
    """

    def __init__(self, task: Task, pool_size: int, seed: int):
        self.task, self.seed = task, seed
        self.pool = task.problems("train", pool_size, seed=seed) if pool_size else None

    def draw(self, n: int, step: int, round: int = 0) -> list[Problem]:
        if self.pool is None:
            return self.task.problems("train", n, seed=self.seed * 1_000_003 + step + round * _ROUND_STRIDE)
        order = torch.randperm(len(self.pool), generator=torch.Generator().manual_seed(self.seed * 1_000_003 + step))
        picked = order[round * n:(round + 1) * n].tolist()
        if len(picked) < n:
            raise RuntimeError(f"the prompt pool (pool_size={len(self.pool)}) cannot fill round {round + 1} of step "
                               f"{step} with {n} more problems; enlarge sampling.pool_size or loosen the filter")
        return [self.pool[i] for i in picked]


def draw_groups(trainer, problems: list[Problem], round: int = 0) -> tuple[list[str], RolloutBatch, Scores]:
    """G completions for each problem under the trainer's policy, scored by the trainer's reward mix.

    Returns:
        The formatted prompts, the ``RolloutBatch`` (N = len(problems) * G rows) and its ``Scores``.
    """
    cfg, task, tokenizer = trainer.config, trainer.task, trainer.tokenizer
    prompts = [task.format_prompt(p, cfg.prompt_style, tokenizer) for p in problems]
    batch = rollout(trainer.model, tokenizer, prompts, cfg.group_size, cfg.max_new_tokens, cfg.temperature,
                    cfg.top_p, trainer.generator(0, round))
    return prompts, batch, trainer.score([p for p in problems for _ in range(cfg.group_size)], batch)


def generated_tokens(batch: RolloutBatch) -> float:
    """Completion tokens the sampler generated for a batch (EOS included)."""
    return batch.response_mask.sum().item()


@SAMPLERS.register("flat")
class FlatSampler(Sampler):
    """B problems, G independent completions each: every rollout is trained on, whatever its signal."""

    def sample(self, trainer) -> Sampled:
        problems = self.source.draw(trainer.config.prompts_per_step, trainer.step)
        prompts, batch, scores = draw_groups(trainer, problems)
        return Sampled(problems, prompts, batch, scores, metrics={"tokens/generated": generated_tokens(batch)})
