"""The reward contract, its registry, and weighted mixes of rewards.

Every reward, whatever its family (verifiable, generative, dense, unsupervised, shaping), has one
signature::

    fn(problems: list[Problem], completions: list[str], ctx: RewardContext, **params) -> Tensor (N,)

``problems[i]`` is the problem completion ``i`` answers (N = B*G rows, the G samples of a prompt
contiguous). ``ctx`` carries what some rewards need beyond the text: the task's verifier, the
rollout batch (token ids, lengths, truncation), the policy and reference models, the group size.
A reward declares what it needs with ``@register_reward(name, requires=...)`` so that a missing
piece is a clear error, not an AttributeError deep inside. ``RewardMix`` adds weighted rewards and
keeps each component for logging (survey §3.1: reward design).

Dense (process) rewards, registered with ``dense=True``, return one value per completion token instead,
shape (N, T) aligned with ``ctx.batch.completion_ids``; a mix sums them over tokens for the scalar
total and also hands the token-level total to the advantage estimators that use it (REINFORCE++).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rl4lrm.registry import Registry
from rl4lrm.tasks import Problem, Task
from rl4lrm.validation import named_keywords

REWARDS = Registry("reward")
CONTEXT_FIELDS = ("task", "batch", "model", "tokenizer", "ref_model")


@named_keywords()
@dataclass
class RewardContext:
    """What a reward may read besides the problems and completions (fields a reward does not need may be None)."""

    group_size: int = 1
    """G: samples per prompt (group rewards such as majority vote need it)."""
    max_new_tokens: int | None = None
    """The rollout's length cap (length shaping needs it)."""
    task: Task | None = None
    """The task whose verifier defines correctness."""
    batch: Any = None
    """The ``RolloutBatch`` the completions come from (token ids, ``lengths``, ``truncated``)."""
    model: Any = None
    """The policy (rewards computed from its own distribution: self-certainty, entropy)."""
    tokenizer: Any = None
    """The policy's tokenizer."""
    ref_model: Any = None
    """A frozen reference model (implicit process rewards)."""


def register_reward(
    name: str,
    requires: tuple[str, ...] = (),
    dense: bool = False,
    check_task: Callable[[Task, list[Problem]], None] | None = None,
):
    """Decorator registering a reward; ``requires`` lists the ``RewardContext`` fields it reads, a
    ``dense`` reward returns (N, T) token rewards (it then needs ``ctx.batch``), and ``check_task(task,
    problems)`` raises a ValueError when a task lacks what the reward reads from it (``fn.check_task``),
    so that ``RewardMix.check_task`` fails before training instead of at the first step."""
    unknown = sorted(set(requires) - set(CONTEXT_FIELDS))
    if unknown:
        raise ValueError(f"reward {name!r} requires unknown context fields {unknown}; known: {list(CONTEXT_FIELDS)}")

    def add(fn):
        fn.requires = frozenset(requires) | ({"batch"} if dense else set())
        fn.dense, fn.check_task = dense, check_task
        return REWARDS.register(name)(fn)

    return add


def compute_reward(
    name: str, problems: list[Problem], completions: list[str], ctx: RewardContext, **params
) -> torch.Tensor:
    """Runs the reward ``name`` after checking its inputs; returns a float tensor (N,), or (N, T) if dense."""
    fn = REWARDS.get(name)
    if len(problems) != len(completions):
        raise ValueError(f"reward {name!r}: got {len(problems)} problems but {len(completions)} completions")
    missing = sorted(f for f in fn.requires if getattr(ctx, f) is None)
    if missing:
        raise ValueError(f"reward {name!r} needs RewardContext fields {missing}, which are None")
    out = torch.as_tensor(fn(problems, completions, ctx, **params), dtype=torch.float32)
    expected = (len(completions), ctx.batch.completion_ids.shape[1]) if fn.dense else (len(completions),)
    if tuple(out.shape) != expected:
        raise ValueError(f"reward {name!r} returned shape {tuple(out.shape)}, expected {expected}")
    return out


class RewardMix:
    """A weighted sum of registered rewards: ``RewardMix({"correct": 1.0, "format": 0.2})``.

    Args:
        spec: ``{name: weight}`` or ``{name: (weight, params)}`` where ``params`` are keyword arguments
            of that reward (e.g. ``{"numeric": (1.0, {"rel_tol": 1e-3})}``).
    """

    def __init__(self, spec: dict[str, float | tuple[float, dict]]):
        if not isinstance(spec, dict) or not spec:
            raise ValueError(
                f"RewardMix needs a dict of at least one reward {{name: weight}}, e.g. {{'correct': 1.0}}; got {spec!r}"
            )
        self.terms: list[tuple[str, float, dict]] = []
        for name, value in spec.items():
            fn = REWARDS.get(name)  # unknown names fail here, listing the known ones
            weight, params = value if isinstance(value, tuple) and len(value) == 2 else (value, {})
            if not isinstance(params, dict):
                raise ValueError(f"params of reward {name!r} must be a dict of keyword arguments, got {params!r}")
            bad = {k: v for k, v in params.items() if isinstance(v, float) and not math.isfinite(v)}
            if bad:  # no reward has a meaningful NaN or infinite setting; it would silently switch a term off
                raise ValueError(f"reward {name!r}: parameters {bad} must be finite numbers")
            try:  # a misspelt parameter fails now, not at the first training step
                inspect.signature(fn).bind(None, None, None, **params)
            except TypeError as err:
                raise ValueError(f"reward {name!r} does not take the parameters {sorted(params)}: {err}") from None
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight):
                raise ValueError(f"weight of reward {name!r} must be a finite number, got {weight!r}")
            self.terms.append((name, float(weight), dict(params)))

    def check_task(self, task: Task, problems: list[Problem]) -> None:
        """Raises a ValueError naming the reward when ``task`` (or its sample ``problems``) lacks what it reads."""
        for name, _, _ in self.terms:
            check = REWARDS.get(name).check_task
            if check is not None:
                try:
                    check(task, problems)
                except ValueError as err:
                    raise ValueError(
                        f"reward {name!r} cannot score task {getattr(task, 'name', task)!r}: {err}"
                    ) from None

    @property
    def requires(self) -> frozenset:
        return frozenset().union(*(REWARDS.get(name).requires for name, _, _ in self.terms))

    @property
    def dense(self) -> bool:
        return any(REWARDS.get(name).dense for name, _, _ in self.terms)

    def __call__(self, problems, completions, ctx: RewardContext):
        """Scores the completions.

        Returns:
            ``(total, parts, token_total)``: the weighted total (N,); each component by name, (N,) or
            (N, T) for dense ones; and the weighted sum of the dense components (N, T), or None.
        """
        parts = {name: compute_reward(name, problems, completions, ctx, **params) for name, _, params in self.terms}
        scalar = {name: part.sum(-1) if part.dim() == 2 else part for name, part in parts.items()}
        total = sum(weight * scalar[name] for name, weight, _ in self.terms)
        dense = [weight * parts[name] for name, weight, _ in self.terms if parts[name].dim() == 2]
        return total, parts, (sum(dense) if dense else None)

    def __str__(self) -> str:
        """The mix as a sum, each term's parameters after its name: ``1·correct + 0.5·target_length(target=24)``."""
        return " + ".join(
            f"{w:g}·{n}" + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
            for n, w, params in self.terms
        )

    def __repr__(self) -> str:
        return f"RewardMix({self})"


@register_reward("correct", requires=("task",))
def correct(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """The task's own verifier: 1.0 when ``task.verify`` says correct, else 0.0 (the lab's default reward)."""
    return torch.tensor(ctx.task.reward(problems, completions))


RewardFn = Callable[[list[Problem], list[str], RewardContext], torch.Tensor]
