"""The experiments of notebook 12 (agentic tasks): held-out episode accuracy, GRPO on episodes through the ordinary
``Trainer``, and three ablations: observation masking, tools vs answer-only, per-episode vs per-turn credit.

Every function takes an ``AgentPolicy`` and returns plain numbers or DataFrames; ``benchmarks/agents.py`` runs the
same functions over seeds.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace

import pandas as pd
import torch

from rl4lrm.agents.rollout import AgentPolicy
from rl4lrm.agents.task import ToolUse
from rl4lrm.rollout import compute_logprobs, rollout
from rl4lrm.trainer import TrainConfig, Trainer

MAX_NEW_TOKENS = 64
"""Token budget of an episode (policy and observation tokens): a full episode takes about 45."""


def with_config(policy: AgentPolicy, **changes) -> AgentPolicy:
    """A deep copy of ``policy`` whose ``AgentConfig`` has ``changes`` (the input is left untouched)."""
    policy = copy.deepcopy(policy)
    policy.config = replace(policy.config, **changes)
    return policy


def sample_episodes(policy, tokenizer, problems, samples: int = 1, temperature: float = 1.0, seed: int = 0):
    """Runs ``samples`` episodes per problem; returns the ``RolloutBatch`` (rows of a problem contiguous)."""
    gen = torch.Generator(device=next(policy.parameters()).device).manual_seed(seed)
    prompts = [p.prompt for p in problems]
    return rollout(policy, tokenizer, prompts, samples, MAX_NEW_TOKENS, temperature, generator=gen)


def episode_table(
    policy, tokenizer, task: ToolUse, problems, samples: int = 1, temperature: float = 1.0, seed: int = 0
):
    """One row per episode: correct, tool calls, lookups, calculator calls, policy and observation tokens, text."""
    batch = sample_episodes(policy, tokenizer, problems, samples, temperature, seed)
    rows = []
    for i, text in enumerate(batch.completions):
        problem = problems[i // samples]
        rows.append(
            {
                "prompt": problem.prompt,
                "correct": float(task.verify(problem, text).correct),
                "tool_calls": batch.aux["tool_calls"][i].item(),
                "lookups": text.count("[look "),
                "calcs": text.count("[calc "),
                "guessed": float("[" not in text),
                "policy_tokens": (batch.aux["attend"][i] - batch.aux["obs_mask"][i]).sum().item(),
                "obs_tokens": batch.aux["obs_mask"][i].sum().item(),
                "episode": text,
            }
        )
    return pd.DataFrame(rows)


def evaluate_agent(policy, tokenizer, task, n_problems: int = 128, samples: int = 2, seed: int = 0) -> dict:
    """Held-out accuracy (T=1) and behaviour: ``acc``, ``tool_calls``, ``lookups``, ``calcs``, ``guessed``."""
    df = episode_table(policy, tokenizer, task, task.problems("test", n_problems, seed=0), samples, 1.0, seed)
    return {k: float(df[k].mean()) for k in ("correct", "tool_calls", "lookups", "calcs", "guessed")}


def observation_nll(policy, tokenizer, task, n_problems: int = 64, seed: int = 0) -> float:
    """Mean negative log-likelihood the policy gives the observation tokens of its own held-out episodes (nats per
    token): how confidently it *predicts tool outputs*. Training on observations (no mask) pushes it down, on
    facts it cannot know."""
    full = with_config(policy, mask_observations=False)
    batch = sample_episodes(full, tokenizer, task.problems("test", n_problems, seed=0), 1, 1.0, seed)
    with torch.no_grad():
        logprobs, _ = compute_logprobs(full, batch)  # (N, T)
    obs = batch.aux["obs_mask"]  # (N, T)
    return float(-(logprobs * obs).sum() / obs.sum().clamp(min=1))


def agent_rl(
    policy: AgentPolicy,
    tokenizer,
    task: ToolUse,
    steps: int = 20,
    mask_observations: bool = True,
    tools: bool = True,
    rewards: dict | None = None,
    preset: str = "grpo",
    lr: float = 3e-4,
    prompts_per_step: int = 8,
    group_size: int = 8,
    seed: int = 0,
    callbacks=(),
    **train_kwargs,
):
    """GRPO (or ``preset``) on tool-using episodes through the ordinary ``Trainer``; the input policy is copied.

    Returns:
        ``(history DataFrame, trained policy)``.
    """
    policy = with_config(policy, mask_observations=mask_observations, tools=tools)
    cfg = TrainConfig.build(
        task="agentic",
        preset=preset,
        steps=steps,
        prompts_per_step=prompts_per_step,
        group_size=group_size,
        max_new_tokens=MAX_NEW_TOKENS,
        lr=lr,
        rewards=rewards,
        seed=seed,
        device="cpu",
        **{"eval_every": 0, "track_kl": False, **train_kwargs},
    )
    history = Trainer(cfg, model=policy, tokenizer=tokenizer, task=task, callbacks=callbacks, progress=False).train()
    return history, policy


VARIANTS = {
    "masked": dict(mask_observations=True),
    "unmasked": dict(mask_observations=False),
    "no_tools": dict(tools=False),
    "per_episode": dict(rewards={"correct": 1.0, "agent_turns": 0.5}, preset="grpo"),
    "per_turn": dict(rewards={"correct": 1.0, "agent_turns": 0.5}, preset="reinforce_pp"),
}
"""The studies' runs: observation masking (masked vs unmasked), tools vs answer-only (masked vs no_tools), and
credit over turns (the same turn rewards summed into one advantage per episode with GRPO, or credited on each
turn's tokens by REINFORCE++'s returns-to-go)."""


def compare(
    policy,
    tokenizer,
    task,
    variants=("masked", "unmasked"),
    steps: int = 20,
    seeds=(0,),
    eval_problems=128,
    eval_samples: int = 2,
    **rl_kwargs,
) -> pd.DataFrame:
    """Runs each variant of ``VARIANTS`` for each seed; one row per run with held-out accuracy before and after,
    tool calls per episode, observation NLL after, the last steps' training reward and the wall time."""
    base_eval = {}
    rows = []
    for seed in seeds:
        for name in variants:
            settings = {**VARIANTS[name], **rl_kwargs}
            tools = settings.get("tools", True)
            key = (tools, seed)
            if key not in base_eval:  # the base model's accuracy under this variant's environment
                base = with_config(policy, tools=tools)
                base_eval[key] = evaluate_agent(base, tokenizer, task, eval_problems, eval_samples, seed)
            t0 = time.perf_counter()
            history, trained = agent_rl(policy, tokenizer, task, steps=steps, seed=seed, **settings)
            wall = time.perf_counter() - t0
            after = evaluate_agent(trained, tokenizer, task, eval_problems, eval_samples, seed)
            rows.append(
                {
                    "variant": name,
                    "seed": seed,
                    "acc_before": base_eval[key]["correct"],
                    "acc_after": after["correct"],
                    "tool_calls_before": base_eval[key]["tool_calls"],
                    "tool_calls_after": after["tool_calls"],
                    "calcs_after": after["calcs"],
                    "obs_nll_after": observation_nll(trained, tokenizer, task, 64, seed),
                    "train_reward_last": float(history["reward/correct"].tail(5).mean()),
                    "wall_s": wall,
                }
            )
    return pd.DataFrame(rows)
