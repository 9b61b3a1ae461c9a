"""Rewards that teach a reasoning model to think the right amount (notebook 14: efficient reasoning).

Each is added to the correctness reward (``{"correct": 1.0, "kimi_length": 1.0}``):

- ``kimi_length``: Kimi k1.5's length reward (Kimi Team, 2025, "Kimi k1.5: Scaling Reinforcement Learning with
  LLMs", arXiv:2501.12599, §2.3.3). Within the group of one prompt, with lengths from ``min_len`` to ``max_len``::

      lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len)
      r_i = lambda_i             if i is correct
            min(0, lambda_i)     if i is wrong

  so the shortest correct answers earn +0.5, the longest -0.5, and a wrong answer is never rewarded for being
  short. A group whose completions all have one length gets 0.
- ``target_length``: L1's length-controlled reward (Aggarwal & Welleck, 2025, "L1: Controlling How Long A Reasoning
  Model Thinks With Reinforcement Learning", arXiv:2503.04697, Eq. 1, L1-Exact): ``-|n_target - |y|| / n_target``,
  to be weighted by ``alpha * n_target``. L1 samples a target per prompt and writes it into the prompt, so that one
  model follows any budget it is given; here the target is one number per run, the same pressure without the
  conditioning (our char models never saw a budget in a prompt).
- ``no_think_bonus``: AdaptThink's bonus for answering without thinking (Zhang et al., 2025, "AdaptThink: Reasoning
  Models Can Learn When to Think", arXiv:2505.13417, Eq. 4). Its objective scores a completion
  ``r(x, y) - R_ref(x) + delta * 1[y does not think]``; ``R_ref(x)``, the reference model's mean accuracy on the
  prompt, is the same for every completion of a prompt, so a group baseline removes it
  (``rl4lrm.rewards.shaping.group_baseline_view``) and what is left to shape the advantages is this bonus. It needs
  a task that can tell thinking from answering (``task.thinks``, as ``ThinkingAddition`` has).

Truncation as a reward (ThinkPrune, Hou et al., 2025, arXiv:2504.01296) needs no reward function: a completion cut
by ``max_new_tokens`` before its answer scores 0 under the verifier, so lowering the cap is the method
(``rl4lrm.experiments.efficiency``).
"""

from __future__ import annotations

import torch

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.rewards.shaping import completion_lengths
from rl4lrm.tasks.base import Problem, Task


def _correct(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    return torch.tensor(ctx.task.reward(problems, completions)) > 0.5  # (N,) bool


def kimi_length_reward(lengths: torch.Tensor, correct: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Kimi k1.5's length reward (module docstring) from token counts, correctness and group ids.

    Args:
        lengths: (N,) token counts. correct: (N,) bool. group_ids: (N,) the prompt each row answers.

    Returns:
        Rewards in [-0.5, 0.5], shape (N,).
    """
    lengths = lengths.float()
    groups = torch.unique(group_ids, return_inverse=True)[1]  # (N,) 0..n_groups-1
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    low = torch.full((n_groups,), float("inf")).scatter_reduce(0, groups, lengths, "amin")[groups]  # (N,)
    high = torch.full((n_groups,), -float("inf")).scatter_reduce(0, groups, lengths, "amax")[groups]  # (N,)
    span = high - low
    lam = torch.where(span > 0, 0.5 - (lengths - low) / span.clamp(min=1e-9), torch.zeros_like(lengths))
    return torch.where(correct, lam, lam.clamp(max=0.0))


@register_reward("kimi_length", requires=("task", "batch"))
def kimi_length(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """Kimi k1.5's group-relative length reward (module docstring): short correct answers earn up to +0.5.

    Args:
        problems: N problems. completions: N strings.
        ctx: needs ``task`` (the verifier) and ``batch`` (``lengths``, ``group_ids``).

    Returns:
        Rewards in [-0.5, 0.5], shape (N,).
    """
    lengths = completion_lengths(ctx, len(completions))
    group_ids = torch.as_tensor(ctx.batch.group_ids).cpu()
    return kimi_length_reward(lengths, _correct(problems, completions, ctx), group_ids)


@register_reward("target_length", requires=("batch",))
def target_length(problems: list[Problem], completions: list[str], ctx: RewardContext, target: int = 8) -> torch.Tensor:
    """L1-Exact's length term (module docstring): ``-|target - |y|| / target``, 0 at the target length.

    Args:
        problems: N problems (unused). completions: N strings (token counts come from the batch).
        ctx: needs ``batch`` (``lengths``).
        target: the wanted completion length in tokens, >= 1.

    Returns:
        Penalties <= 0, shape (N,).
    """
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise ValueError(f"target must be an int >= 1 (tokens), got {target!r}")
    return -(completion_lengths(ctx, len(completions)) - target).abs() / target


def _check_thinks(task: Task, problems: list[Problem]) -> None:
    if not callable(getattr(task, "thinks", None)):
        raise ValueError(
            f"reward 'no_think_bonus' needs a task that tells thinking from answering (a `thinks(completion)` "
            f"method, as the 'thinking' task has); task {task.name!r} has none"
        )


@register_reward("no_think_bonus", requires=("task",), check_task=_check_thinks)
def no_think_bonus(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """AdaptThink's bonus (module docstring): 1 for a completion that answers without thinking, else 0
    (its weight is AdaptThink's delta).

    Args:
        problems: N problems. completions: N strings. ctx: needs ``task`` (with ``thinks``).

    Returns:
        0/1 floats, shape (N,).
    """
    _check_thinks(ctx.task, problems)
    return torch.tensor([0.0 if ctx.task.thinks(c) else 1.0 for c in completions])
