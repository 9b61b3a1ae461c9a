"""The trainer's reward mix: default verifier, weighted components, dense rewards, logging of the verifier."""

import pytest
import torch

from rl4lrm.rewards import (
    REWARDS,
    RewardContext,
    RewardMix,
    compute_reward,
    register_reward,
)
from rl4lrm.trainer import TrainConfig, Trainer

SMALL = dict(task="addition", steps=2, prompts_per_step=4, group_size=4, eval_problems=8, eval_every=0, device="cpu")


@register_reward("test_half")
def _half(problems, completions, ctx):
    return torch.full((len(completions),), 0.5)


@register_reward("test_first_token", dense=True)
def _first_token(problems, completions, ctx):
    token = torch.zeros_like(ctx.batch.response_mask)
    token[:, 0] = 0.25 * ctx.batch.response_mask[:, 0]
    return token


def test_default_reward_is_the_verifier():
    a = Trainer(TrainConfig(**SMALL), progress=False).train()
    b = Trainer(TrainConfig(**SMALL, rewards={"correct": 1.0}), progress=False).train()
    assert a["reward/mean"].tolist()[1:] == b["reward/mean"].tolist()[1:]
    assert (a["reward/mean"] == a["reward/correct"]).iloc[1:].all()


def test_mix_total_parts_and_verifier_are_logged():
    history = Trainer(TrainConfig(**SMALL, rewards={"correct": 1.0, "test_half": 2.0}), progress=False).train()
    rows = history.iloc[1:]
    assert (rows["reward/test_half"] == 0.5).all()
    assert torch.allclose(
        torch.tensor(rows["reward/mean"].values),
        torch.tensor((rows["reward/correct"] + 1.0).values, dtype=torch.float64),
        atol=1e-6,
    )


def test_training_on_a_reward_without_the_verifier_still_logs_the_verifier():
    history = Trainer(TrainConfig(**SMALL, rewards={"test_half": 1.0}), progress=False).train()
    assert "reward/correct" in history and (history["reward/mean"].iloc[1:] == 0.5).all()
    assert (history["reward/frac_zero_std"].iloc[1:] == 1.0).all()  # a constant reward carries no signal


@pytest.mark.parametrize(
    "bad, match",
    [({"nope": 1.0}, "unknown reward 'nope'"), ({"correct": "high"}, "'high'"), ({}, "at least one reward")],
)
def test_bad_reward_mix_fails_in_the_config(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**SMALL, rewards=bad)


def test_dense_rewards_go_to_token_level_estimators_and_are_not_counted_twice():
    trainer = Trainer(
        TrainConfig(
            **SMALL,
            preset="reinforce_pp",
            rewards={"correct": 1.0, "test_first_token": 1.0},
            overrides={"kl_coef": 0.0},
        ),
        progress=False,
    )
    sampled = trainer.sampler.sample(trainer.sampling_context())
    token = sampled.scores.token
    assert token is not None and torch.allclose(token[:, 0], 0.25 * sampled.batch.response_mask[:, 0])
    assert torch.allclose(sampled.rewards, sampled.scores.correct + 0.25)
    rewards, context = trainer._context(sampled)
    assert torch.allclose(context["token_rewards"], token)
    assert torch.allclose(rewards, sampled.scores.correct)  # the dense part travels on its tokens only


def test_dense_rewards_reach_sequence_level_estimators_through_the_total():
    trainer = Trainer(TrainConfig(**SMALL, rewards={"correct": 1.0, "test_first_token": 1.0}), progress=False)
    sampled = trainer.sampler.sample(trainer.sampling_context())
    rewards, context = trainer._context(sampled)
    assert "token_rewards" not in context and torch.allclose(rewards, sampled.scores.correct + 0.25)


def test_reward_contract_errors():
    ctx = RewardContext()
    with pytest.raises(ValueError, match="needs RewardContext fields \\['task'\\]"):
        compute_reward("correct", [], [], ctx)
    with pytest.raises(ValueError, match="1 problems but 2 completions"):
        compute_reward("test_half", [None], ["a", "b"], ctx)
    with pytest.raises(ValueError, match="unknown context fields"):
        register_reward("test_bad", requires=("weather",))
    with pytest.raises(ValueError, match="already registered"):
        register_reward("test_half")(_half)
    assert (
        "correct" in REWARDS
        and repr(RewardMix({"correct": 1.0, "test_half": 0.5})) == "RewardMix(1·correct + 0.5·test_half)"
        and str(RewardMix({"correct": 1.0, "numeric": (0.5, {"rel_tol": 0.01})}))
        == "1·correct + 0.5·numeric(rel_tol=0.01)"
    )


def test_dynamic_sampling_keeps_dense_rewards_aligned_with_the_concatenated_batch():
    trainer = Trainer(
        TrainConfig(**SMALL, sampler="dynamic", rewards={"correct": 1.0, "test_first_token": 1.0}), progress=False
    )
    sampled = trainer.sampler.sample(trainer.sampling_context())
    token, mask = sampled.scores.token, sampled.batch.response_mask
    assert token.shape == mask.shape
    assert torch.allclose(token[:, 0], 0.25 * mask[:, 0]) and (token[:, 1:] == 0).all()
    assert torch.allclose(sampled.rewards, sampled.scores.correct + 0.25)
    assert set(sampled.scores.parts) == {"correct", "test_first_token"}


def test_misspelt_reward_parameters_fail_when_the_mix_is_built():
    with pytest.raises(ValueError, match="'numeric' does not take the parameters \\['tolerance'\\]"):
        RewardMix({"numeric": (1.0, {"tolerance": 0.1})})
    RewardMix({"numeric": (1.0, {"rel_tol": 0.1})})  # a real parameter is fine
