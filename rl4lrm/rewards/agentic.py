"""Rewards of tool-using episodes (``rl4lrm.agents``): a tool-call format reward and per-turn process rewards.

``tool_format`` scores the *syntax* of an episode (the share of its bracketed calls that name a tool and parse);
``agent_turns`` is dense: each tool call's per-turn reward (``rl4lrm.agents.env.AgentEnv``: a first lookup of a
needed key, a calculation that gives the answer) on the ``]`` that closed it, read from the rollout's
``aux["turn_rewards"]``. Summed into the scalar reward (GRPO) it is a per-episode bonus; with an estimator that
takes token rewards (REINFORCE++'s returns-to-go) it credits each turn where it happened.
"""

from __future__ import annotations

import re

import torch

from rl4lrm.agents.env import parse_call
from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.tasks import Problem

_CALL = re.compile(r"\[([^\[\]{}]*)\]")


def call_format(completion: str) -> float:
    """Share of the bracketed calls of ``completion`` that parse (``parse_call``); 0 when it makes none."""
    calls = _CALL.findall(completion)
    return sum(parse_call(c) is not None for c in calls) / len(calls) if calls else 0.0


@register_reward("tool_format")
def tool_format(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """The format reward of tool use: ``call_format`` of each episode, shape (N,)."""
    return torch.tensor([call_format(c) for c in completions])


@register_reward("agent_turns", dense=True)
def agent_turns(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """Per-turn rewards on the tokens that closed each tool call, (N, T), from ``batch.aux["turn_rewards"]``."""
    aux = getattr(ctx.batch, "aux", {})
    if "turn_rewards" not in aux:
        raise ValueError(
            "reward 'agent_turns' reads batch.aux['turn_rewards'], which only a tool-using policy "
            f"(rl4lrm.agents.rollout.AgentPolicy) writes; this batch has aux keys {sorted(aux)}"
        )
    return aux["turn_rewards"].float()  # (N, T)
