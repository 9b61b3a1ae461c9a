"""What every sampler shares: its context, its output, the problem source, and the flat sampler with its config.

A sampler decides which prompts a step trains on and how their completions are drawn; the trainer
calls ``sampler.sample(ctx)`` once per step with a ``SamplingContext`` (the policy, the task, the
batch settings, seeded noise and the scorer: never the trainer) and gets back a scored batch (``Sampled``). The
flat sampler is the plain GRPO recipe: B fresh train problems, G independent completions each.
Dynamic sampling (``rl4lrm.sampling.dynamic``), curricula (``rl4lrm.sampling.curriculum``) and
tree rollouts (``rl4lrm.sampling.tree``) are the survey's alternatives (§3.4, sampling strategy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import ClassVar

import torch

from rl4lrm.registry import Registry
from rl4lrm.rollout import RolloutBatch, rollout
from rl4lrm.tasks import Problem, Task
from rl4lrm.validation import NON_NEGATIVE, check_fields, named_keywords

SAMPLERS = Registry("sampler")
# seeds of round r > 0 of a step: far from every step's round-0 seed
_ROUND_STRIDE = 10_000_019


@named_keywords()
@dataclass
class FlatConfig:
    """Settings every sampler has; the flat sampler has no others."""

    pool_size: int = 0
    """0 draws fresh problems from the task's train split every step; > 0 fixes a pool of that many
    train problems (a data set) that every step draws from. The curriculum needs a pool."""

    RANGES: ClassVar[dict] = {"pool_size": NON_NEGATIVE}
    """Allowed values per field (``rl4lrm.validation.check_fields``); subclasses extend it."""

    def __post_init__(self):
        check_fields(self, self.RANGES)


@dataclass
class Scores:
    """The rewards of N completions: the training reward, its parts, and the task's verdict."""

    total: torch.Tensor  # (N,) the training reward: the weighted sum of the reward mix
    parts: dict[str, torch.Tensor]  # (N,) each mix component (dense ones summed over tokens)
    correct: torch.Tensor  # (N,) the task's verifier (1 = correct), logged whatever the mix
    token: torch.Tensor | None = None  # (N, T) the weighted dense components, or None

    def select(self, rows: torch.Tensor) -> Scores:
        """The scores of the given rows."""
        return Scores(
            self.total[rows],
            {k: v[rows] for k, v in self.parts.items()},
            self.correct[rows],
            None if self.token is None else self.token[rows],
        )

    @staticmethod
    def cat(scores: list[Scores], width: int) -> Scores:
        """Stacks scores; dense token rewards are right-padded to ``width`` tokens (as ``concat_batches`` pads)."""
        token = None
        if scores[0].token is not None:
            token = torch.cat([torch.nn.functional.pad(s.token, (0, width - s.token.shape[1])) for s in scores])
        return Scores(
            torch.cat([s.total for s in scores]),
            {k: torch.cat([s.parts[k] for s in scores]) for k in scores[0].parts},
            torch.cat([s.correct for s in scores]),
            token,
        )


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


@named_keywords()
@dataclass
class SamplingContext:
    """What a sampler sees of the run at one step: never the trainer itself.

    The trainer builds one per step; ``draw`` samples and scores G completions per problem, the rest
    are the settings and handles a sampler may need to sample its own way (tree rollouts).
    """

    model: torch.nn.Module
    """The policy."""
    tokenizer: object
    """The policy's tokenizer."""
    task: Task
    """The task: prompts and the verifier."""
    step: int
    """The trainer step being sampled."""
    seed: int
    """The run's seed."""
    prompts_per_step: int
    """B: groups the step trains on."""
    group_size: int
    """G: completions per prompt."""
    max_new_tokens: int
    """Length cap of a completion."""
    temperature: float
    """Sampling temperature."""
    top_p: float
    """Nucleus sampling mass."""
    precision: str
    """The rollout engine's arithmetic (``rl4lrm.rollout.rollout``'s ``precision``)."""
    engine: str
    """How rollouts decode (``rl4lrm.rollout.rollout``'s ``engine``)."""
    prompt_style: str
    """How problems become prompts (``rl4lrm.tasks.STYLES``)."""
    generator: Callable[[int, int], torch.Generator]
    """``generator(stream, round)``: noise seeded by (seed, step, stream, round), so resumed runs replay it."""
    score: Callable[[list, RolloutBatch], Scores]
    """``score(problems, batch)``: the run's reward mix and verifier on N rows (``problems[i]`` is row i's)."""

    def prompts(self, problems: list[Problem]) -> list[str]:
        """The formatted prompts of ``problems``."""
        return [self.task.format_prompt(p, self.prompt_style, self.tokenizer) for p in problems]

    def draw(self, problems: list[Problem], round: int = 0) -> tuple[list[str], RolloutBatch, Scores]:
        """G completions for each problem under the policy, scored by the run's reward mix.

        Returns:
            The formatted prompts, the ``RolloutBatch`` (N = len(problems) * G rows) and its ``Scores``.
        """
        prompts = self.prompts(problems)
        batch = rollout(
            self.model,
            self.tokenizer,
            prompts,
            self.group_size,
            self.max_new_tokens,
            self.temperature,
            self.top_p,
            self.generator(0, round),
            precision=self.precision,
            engine=self.engine,
        )
        return prompts, batch, self.score(self.per_row(problems), batch)

    def per_row(self, problems: list[Problem]) -> list[Problem]:
        """Each problem repeated G times: the problem of every row of a grouped batch."""
        return [p for p in problems for _ in range(self.group_size)]


class Sampler:
    """Base class: ``sample(ctx)`` returns a ``Sampled``; state travels in checkpoints.

    A sampler owns its settings (``Config``, a dataclass) and checks them against the run's
    (``check``), so the trainer never tests a sampler by name.
    """

    Config = FlatConfig
    """The dataclass of this sampler's settings (``TrainConfig.sampling``)."""
    provides: tuple[str, ...] = ()
    """Advantage context this sampler adds (an estimator's ``requires`` may name it)."""

    def __init__(self, config: FlatConfig, task: Task, seed: int):
        self.config = config
        self.source = ProblemSource(task, config.pool_size, seed)

    @classmethod
    def make_config(cls, settings) -> FlatConfig:
        """This sampler's config from a dict of its fields (or the config itself); unknown keys are an error."""
        if isinstance(settings, cls.Config):
            return settings
        if not isinstance(settings, dict):
            raise ValueError(f"sampling settings must be a dict or a {cls.Config.__name__}, got {settings!r}")
        known = [f.name for f in fields(cls.Config)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ValueError(f"{cls.Config.__name__} has no setting {unknown}; its settings are {known}")
        return cls.Config(**settings)

    @classmethod
    def check(cls, config: FlatConfig, run) -> None:
        """Raises ``ValueError`` if ``config`` cannot serve the run's settings (a ``TrainConfig``)."""
        if 0 < config.pool_size < run.prompts_per_step:
            raise ValueError(
                f"sampling.pool_size={config.pool_size} is smaller than one step's "
                f"prompts_per_step={run.prompts_per_step}"
            )

    def sample(self, ctx: SamplingContext) -> Sampled:
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
        picked = order[round * n : (round + 1) * n].tolist()
        if len(picked) < n:
            raise RuntimeError(
                f"the prompt pool (pool_size={len(self.pool)}) cannot fill round {round + 1} of step "
                f"{step} with {n} more problems; enlarge sampling.pool_size or loosen the filter"
            )
        return [self.pool[i] for i in picked]


def generated_tokens(batch: RolloutBatch) -> float:
    """Completion tokens the sampler generated for a batch (EOS included)."""
    return batch.response_mask.sum().item()


@SAMPLERS.register("flat")
class FlatSampler(Sampler):
    """B problems, G independent completions each: every rollout is trained on, whatever its signal."""

    def sample(self, ctx: SamplingContext) -> Sampled:
        problems = self.source.draw(ctx.prompts_per_step, ctx.step)
        prompts, batch, scores = ctx.draw(problems)
        return Sampled(problems, prompts, batch, scores, metrics={"tokens/generated": generated_tokens(batch)})
