"""The trainer with every preset and the off-policy, critic and regularisation axes."""

import math

import pytest
import torch

from rl4lrm.advantages import ADVANTAGES
from rl4lrm.presets import PRESETS
from rl4lrm.trainer import Callback, TrainConfig, Trainer

FAST = dict(
    task="addition",
    prompts_per_step=4,
    group_size=4,
    max_new_tokens=6,
    eval_problems=8,
    eval_samples=2,
    eval_every=0,
    device="cpu",
)


def _comparable(history):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in history]


def _finite(df, column):
    values = df[column].dropna()
    return len(values) > 0 and all(math.isfinite(v) for v in values)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_completes_a_short_run(name):
    df = Trainer(TrainConfig(preset=name, steps=2, **{**FAST, "eval_every": 2}), progress=False).train()
    assert len(df) == 3 and df["acc/pass@1"].notna().sum() == 2
    for column in ("loss/policy", "loss/total", "entropy/mean", "clip/frac", "grad/norm", "adv/std"):
        assert _finite(df, column), column
    # a reference model runs only for a KL term (or track_kl): the log says which, and KL appears with it
    uses_ref = PRESETS[name].kl_coef > 0
    assert df["kl/ref_model"].iloc[1:].tolist() == [float(uses_ref)] * 2
    assert ("kl/k3" in df) == uses_ref and (not uses_ref or _finite(df, "kl/k3"))


def test_track_kl_keeps_a_reference_without_a_kl_term():
    df = Trainer(TrainConfig(preset="dr_grpo", steps=1, track_kl=True, **FAST), progress=False).train()
    assert df["kl/ref_model"].iloc[-1] == 1.0 and _finite(df, "kl/k3")


def test_ppo_trains_its_critic():
    trainer = Trainer(TrainConfig(preset="ppo", steps=3, **FAST), progress=False)
    before = [p.detach().clone() for p in trainer.critic.parameters()]
    df = trainer.train()
    for column in ("critic/loss", "critic/explained_var", "critic/clip_frac", "critic/value_mean"):
        assert _finite(df, column), column
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.critic.parameters()))
    # the critic is a separate copy: the policy's trunk is not shared
    assert all(p.data_ptr() != q.data_ptr() for p in trainer.critic.parameters() for q in trainer.model.parameters())


def test_critic_free_presets_have_no_critic():
    assert Trainer(TrainConfig(preset="grpo", steps=1, **FAST), progress=False).critic is None


def test_remax_logs_its_greedy_baseline():
    df = Trainer(TrainConfig(preset="remax", steps=2, **FAST), progress=False).train()
    assert df["reward/baseline_mean"].dropna().between(0, 1).all()


def test_replay_trains_on_stale_batches_and_measures_their_drift():
    df = Trainer(TrainConfig(preset="grpo", steps=4, **FAST, overrides={"replay": 2}), progress=False).train()
    staleness = df["offpolicy/staleness"]
    assert math.isnan(staleness.iloc[1])  # step 1: only the fresh batch
    assert staleness.iloc[2] == 1.0 and staleness.iloc[3] == 1.5 and staleness.iloc[4] == 1.5  # ages (1), (1, 2)
    assert (df["offpolicy/kl"].dropna() > -1e-3).all()  # a KL estimate of the drift: about >= 0
    assert "is/mean" not in df  # no importance correction unless tis_cap is set


def test_truncated_importance_sampling_weights():
    df = Trainer(
        TrainConfig(preset="grpo", steps=3, **FAST, overrides={"replay": 1, "tis_cap": 2.0}), progress=False
    ).train()
    weights = df["is/mean"].dropna()
    assert len(weights) == 3 and (weights > 0).all() and (weights <= 2.0).all()
    assert df["is/frac_truncated"].dropna().between(0, 1).all()
    fresh_only = Trainer(
        TrainConfig(preset="grpo", steps=1, **FAST, overrides={"tis_cap": 2.0}), progress=False
    ).train()
    # a fresh batch was sampled by the current policy: its weights are 1 up to numerics
    assert fresh_only["is/mean"].iloc[1] == pytest.approx(1.0, abs=1e-4)


def test_a_lower_precision_sampler_is_measured_and_corrected():
    """bfloat16 rollouts are off-policy on every fresh batch: the gap is logged, and tis_cap weights it."""
    measured = Trainer(TrainConfig(steps=2, **FAST, rollout_precision="bfloat16"), progress=False).train()
    drift = measured["offpolicy/kl"].dropna()
    assert len(drift) == 2 and (drift.abs() > 1e-6).all() and (drift.abs() < 0.05).all()
    assert "is/mean" not in measured  # measured only: the ratio keeps referring to the sampler
    corrected = Trainer(
        TrainConfig(steps=2, **FAST, rollout_precision="bfloat16", overrides={"tis_cap": 2.0}), progress=False
    ).train()
    weights = corrected["is/mean"].dropna()
    assert len(weights) == 2 and (weights - 1).abs().max() > 1e-6 and (weights - 1).abs().max() < 0.1
    plain = Trainer(TrainConfig(steps=1, **FAST, rollout_precision="float32"), progress=False).train()
    assert "offpolicy/kl" not in plain  # the model's own precision: nothing to measure


def test_the_rollout_engine_is_the_configs():
    """Engines sample the same policy: a seed's run is the same with "hf" as with "fast", up to rounding. The CUDA
    graph engine is refused before the first step on the CPU."""
    fast = Trainer(TrainConfig(steps=2, **FAST, rollout_engine="fast"), progress=False).train()
    hf = Trainer(TrainConfig(steps=2, **FAST, rollout_engine="hf"), progress=False).train()
    assert fast["reward/mean"].dropna().tolist() == hf["reward/mean"].dropna().tolist()
    with pytest.raises(ValueError, match="engine='graph' captures CUDA graphs and needs a CUDA device, not cpu"):
        Trainer(TrainConfig(steps=1, **FAST, rollout_engine="graph"), progress=False)


def test_resume_with_critic_and_replay_is_exact(tmp_path):
    config = dict(FAST, preset="ppo", overrides={"replay": 1}, eval_every=2)  # both runs evaluate at step 2
    straight = Trainer(TrainConfig(steps=4, **config), progress=False)
    straight.train()
    first = Trainer(TrainConfig(steps=2, **config), progress=False)
    first.train()
    first.save(tmp_path / "ckpt.pt")
    resumed = Trainer(TrainConfig(steps=4, **config), progress=False)
    resumed.load(tmp_path / "ckpt.pt")
    resumed.train()
    assert _comparable(resumed.history) == _comparable(straight.history)
    for p, q in zip(resumed.critic.parameters(), straight.critic.parameters()):
        assert torch.equal(p, q)


def test_length_metrics_split_by_correctness():
    df = Trainer(TrainConfig(steps=2, **FAST), progress=False).train()
    row = df.iloc[-1]
    n_correct = row["reward/mean"] * 16
    mixed = (n_correct * row["length/correct_mean"] + (16 - n_correct) * row["length/wrong_mean"]) / 16
    if 0 < n_correct < 16:
        assert mixed == pytest.approx(row["length/mean"])


def test_length_penalty_reward_lowers_the_rewards_by_its_weight():
    seen = {}

    def spy(rewards, response_mask, group_size, **context):
        seen["scores"] = rewards
        return torch.zeros_like(response_mask), {}

    plain = Trainer(TrainConfig(steps=1, **FAST), progress=False)
    plain.advantage_fn = spy
    plain.train()
    base_scores = seen["scores"].clone()
    penalised = Trainer(TrainConfig(steps=1, rewards={"correct": 1.0, "length_penalty": 0.5}, **FAST), progress=False)
    penalised.advantage_fn = spy
    df = penalised.train()
    lengths = penalised.buffer[-1].batch.lengths
    torch.testing.assert_close(seen["scores"], base_scores - 0.5 * lengths / FAST["max_new_tokens"])
    assert df["reward/correct"].iloc[-1] == pytest.approx(base_scores.mean().item())
    assert df["reward/length_penalty"].iloc[-1] == pytest.approx(-(lengths / FAST["max_new_tokens"]).mean().item())


def test_kl_in_reward_reaches_scalar_estimators_as_a_sequence_penalty():
    seen = {}

    def spy(rewards, response_mask, group_size, **context):
        seen["scores"], seen["context"] = rewards, context
        return advantage(rewards, response_mask, group_size, **context)

    class Rewards(Callback):
        def on_rollout_end(self, trainer, batch, rewards):
            seen["rewards"] = rewards

    advantage = ADVANTAGES.get("grpo")
    trainer = Trainer(
        TrainConfig(steps=3, lr=3e-3, **FAST, overrides={"kl_coef": 0.5, "kl_placement": "reward"}),
        callbacks=[Rewards()],
        progress=False,
    )
    trainer.advantage_fn = spy
    trainer.train()
    batch = trainer.buffer[-1].batch
    assert "token_rewards" not in seen["context"]
    kl_seq = ((batch.old_logprobs - batch.ref_logprobs) * batch.response_mask).sum(-1)  # k1 summed per sequence
    assert kl_seq.abs().max() > 1e-3  # after two updates the policy has left the reference
    torch.testing.assert_close(seen["scores"], seen["rewards"] - 0.5 * kl_seq)


def test_pass_k_larger_than_the_group_is_rejected():
    with pytest.raises(ValueError, match="pass_k=8 exceeds TrainConfig.group_size=4"):
        TrainConfig(**FAST, overrides={"advantage": "passk", "pass_k": 8})


def test_dense_estimators_receive_the_kl_per_token():
    seen = {}
    advantage = ADVANTAGES.get("reinforce_pp")

    def spy(rewards, response_mask, group_size, **context):
        seen["context"] = context
        return advantage(rewards, response_mask, group_size, **context)

    spy.requires = advantage.requires
    trainer = Trainer(
        TrainConfig(preset="reinforce_pp", steps=3, lr=3e-3, **FAST, overrides={"kl_coef": 0.5}), progress=False
    )
    trainer.advantage_fn = spy
    trainer.train()
    batch = trainer.buffer[-1].batch
    expected = -0.5 * (batch.old_logprobs - batch.ref_logprobs) * batch.response_mask  # (N, T)
    assert expected.abs().max() > 1e-4
    torch.testing.assert_close(seen["context"]["token_rewards"], expected)
