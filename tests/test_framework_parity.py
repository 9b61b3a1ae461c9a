"""The conventions on which TRL, verl and OpenRLHF differ, each checked against a hand-computed value.

Every number below is worked out in the comment next to it from the framework's definition (verl 0.9.1
``verl/trainer/ppo/core_algos.py`` and ``verl/utils/torch_functional.py``, TRL 1.16 ``GRPOTrainer``,
OpenRLHF 0.11.2 ``models/utils.py`` and ``trainer/ppo_utils/experience_maker.py``); none of their code is run.
"""

import math

import pytest
import torch

from rl4lrm.advantages import (
    dr_grpo,
    grpo,
    reinforce_pp,
    reinforce_pp_baseline,
    rloo,
    whiten,
)
from rl4lrm.aggregation import aggregate
from rl4lrm.kl import kl_estimator_names, kl_penalty
from rl4lrm.trainer import TrainConfig, Trainer

ONE_ROW = torch.ones(1, 4)


# ---------------------------------------------------------------- whitening


def test_whiten_biased_and_unbiased_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0, 99.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    # valid: mean 3, centred [-2, -1, 0, 3], sum of squares 14; population var 14/4, Bessel 14/3
    centred = torch.tensor([[-2.0, -1.0, 0.0, 3.0, 0.0]], dtype=torch.float64)
    biased = whiten(x, mask, "biased")
    unbiased = whiten(x, mask, "unbiased")
    torch.testing.assert_close(biased, centred / (math.sqrt(3.5) + 1e-8))
    torch.testing.assert_close(unbiased, centred / math.sqrt(14 / 3 + 1e-8))
    # the two differ by sqrt(n / (n - 1)) = sqrt(4/3)
    assert biased[0, 3].item() / unbiased[0, 3].item() == pytest.approx(math.sqrt(4 / 3))


def test_whiten_rejects_an_unknown_std():
    with pytest.raises(ValueError, match=r"biased.*unbiased.*got 'sample'"):
        whiten(torch.ones(1, 2), torch.ones(1, 2), "sample")


def test_whiten_constant_values_give_exact_zero_in_both_modes():
    for std in ("biased", "unbiased"):
        assert (whiten(torch.full((2, 3), 0.7), torch.ones(2, 3), std) == 0).all()
        assert (whiten(torch.tensor([[5.0]]), torch.ones(1, 1), std) == 0).all()  # n = 1: verl would raise


# ---------------------------------------------------------------- REINFORCE++


def test_reinforce_pp_discount_by_hand():
    rewards = torch.tensor([1.0, 0.0])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    adv, _ = reinforce_pp(rewards, mask, 2, gamma=0.5, whiten_std="unbiased")
    # returns with gamma 0.5: row 0 [0.25, 0.5, 1], row 1 [0]; mean 0.4375 over 4 tokens,
    # squares 0.03515625 + 0.00390625 + 0.31640625 + 0.19140625 = 0.546875, Bessel var 0.546875 / 3
    scale = math.sqrt(0.546875 / 3 + 1e-8)
    expected = torch.tensor([[-0.1875, 0.0625, 0.5625], [-0.4375, 0.0, 0.0]]) / scale
    torch.testing.assert_close(adv, expected)


def test_reinforce_pp_default_gamma_is_the_undiscounted_return():
    rewards, mask = torch.tensor([1.0, 0.0]), torch.ones(2, 3)
    torch.testing.assert_close(reinforce_pp(rewards, mask, 2)[0], reinforce_pp(rewards, mask, 2, gamma=1.0)[0])
    with pytest.raises(ValueError, match="gamma in \\[0, 1\\], got 1.5"):
        reinforce_pp(rewards, mask, 2, gamma=1.5)


def test_reinforce_pp_baseline_with_groups_of_different_sizes():
    rewards = torch.tensor([1.0, 1.0, 0.0, 2.0, 0.5, 3.0])
    group_ids = torch.tensor([7, 3, 7, 3, 7, 9])  # groups of 3, 2 and 1 sample, interleaved
    mask = torch.ones(6, 1)
    # group 7 (rows 0, 2, 4): mean 0.5 -> 0.5, -0.5, 0; group 3 (rows 1, 3): mean 1.5 -> -0.5, 0.5
    centred = {"zero": [0.5, -0.5, -0.5, 0.5, 0.0, 0.0], "reward": [0.5, -0.5, -0.5, 0.5, 0.0, 3.0]}
    for singleton, values in centred.items():
        adv, _ = reinforce_pp_baseline(rewards, mask, 1, group_ids=group_ids, singleton=singleton)
        expected = whiten(torch.tensor(values)[:, None], mask)
        torch.testing.assert_close(adv, expected)
    # equal-size contiguous groups by id give exactly the group_size path
    same_size = torch.tensor([0, 0, 0, 1, 1, 1])
    torch.testing.assert_close(
        reinforce_pp_baseline(rewards, mask, 3, group_ids=same_size)[0], reinforce_pp_baseline(rewards, mask, 3)[0]
    )
    with pytest.raises(ValueError, match=r"group_ids must have shape \(6,\), got \(5,\)"):
        reinforce_pp_baseline(rewards, mask, 1, group_ids=group_ids[:5])


# ---------------------------------------------------------------- singleton groups and the std epsilon


def test_singleton_groups_zero_or_verl_raw_reward():
    rewards = torch.tensor([1.0, 0.0, 2.0])
    mask = torch.ones(3, 2)
    for fn in (grpo, dr_grpo):
        assert (fn(rewards, mask, 1)[0] == 0).all()  # rl4lrm: a lone sample is its own baseline
    # verl: mean 0, std 1 for a lone sample -> r / (1 + eps) for GRPO, r for Dr.GRPO and RLOO
    torch.testing.assert_close(grpo(rewards, mask, 1, singleton="reward")[0][:, 0], rewards / (1 + 1e-6))
    torch.testing.assert_close(grpo(rewards, mask, 1, eps=1e-4, singleton="reward")[0][:, 0], rewards / 1.0001)
    torch.testing.assert_close(dr_grpo(rewards, mask, 1, singleton="reward")[0][:, 0], rewards)
    torch.testing.assert_close(rloo(rewards, mask, 1, singleton="reward")[0][:, 0], rewards)
    with pytest.raises(ValueError, match="singleton='reward'"):
        rloo(rewards, mask, 1)
    with pytest.raises(ValueError, match=r"singleton must be one of \('zero', 'reward'\), got 'skip'"):
        grpo(rewards, mask, 1, singleton="skip")
    # groups of two or more do not depend on the choice
    torch.testing.assert_close(grpo(rewards[:2], mask[:2], 2, singleton="reward")[0], grpo(rewards[:2], mask[:2], 2)[0])


def test_grpo_std_epsilon_trl_and_verl():
    rewards, mask = torch.tensor([0.0, 1.0]), torch.ones(2, 1)
    # centred -0.5, 0.5; sample std sqrt(0.5)
    for eps in (1e-6, 1e-4):  # verl, TRL
        adv, _ = grpo(rewards, mask, 2, eps=eps)
        assert adv[1, 0].item() == pytest.approx(0.5 / (math.sqrt(0.5) + eps), rel=1e-6)
    assert grpo(rewards, mask, 2, eps=1e-4)[0][1, 0] < grpo(rewards, mask, 2)[0][1, 0]


# ---------------------------------------------------------------- KL estimators


def test_abs_estimator_and_the_straight_through_names():
    logprobs, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    torch.testing.assert_close(kl_penalty(logprobs, ref, "abs"), torch.tensor([[0.5, 1.0]]))
    assert {"abs", "k1+", "k3+", "abs+"} <= set(kl_estimator_names()) and "k2+" not in kl_estimator_names()
    with pytest.raises(ValueError, match=r"'k2\+'.*k3\+"):
        kl_penalty(logprobs, ref, "k2+")


@pytest.mark.parametrize("name", ["k1", "k3", "abs"])
def test_straight_through_has_the_value_of_the_estimator_and_the_gradient_of_k2(name):
    logprobs = torch.tensor([[-1.0, -2.0, -0.5]], requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0, -0.5]])
    plus = kl_penalty(logprobs, ref, f"{name}+")
    torch.testing.assert_close(plus, kl_penalty(logprobs, ref, name))
    (grad,) = torch.autograd.grad(plus.sum(), logprobs)
    # d/dlogp 0.5 (logp - ref)^2 = logp - ref
    torch.testing.assert_close(grad, torch.tensor([[0.5, -1.0, 0.0]]))


def test_clamp_of_k3_at_ten_as_verl():
    logprobs = torch.tensor([[0.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[12.0, 1.0]])
    # log r = 12: k3 = e^12 - 13 ~ 162742, clamped to 10; log r = 1: k3 = e - 2 ~ 0.718, unchanged
    value = kl_penalty(logprobs, ref, "k3", clamp=10.0)
    torch.testing.assert_close(value, torch.tensor([[10.0, math.e - 2]]))
    (grad,) = torch.autograd.grad(value.sum(), logprobs)
    assert grad[0, 0] == 0 and grad[0, 1] == pytest.approx(1 - math.e)  # d/dlogp (e^(ref-logp) - 1 - (ref-logp))
    # verl clamps the value only: k3+ keeps k2's unclamped gradient logp - ref = -12
    (grad_plus,) = torch.autograd.grad(kl_penalty(logprobs, ref, "k3+", clamp=10.0).sum(), logprobs)
    torch.testing.assert_close(grad_plus, torch.tensor([[-12.0, -1.0]]))
    with pytest.raises(ValueError, match="clamp must be >= 0"):
        kl_penalty(logprobs, ref, "k3", clamp=-1.0)


# ---------------------------------------------------------------- aggregation


def test_verl_seq_mean_token_sum_norm_divides_by_n_times_t():
    # verl agg_loss: sum over tokens, mean over the N non-empty rows, then / loss_scale_factor (T by default)
    loss = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 8.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    assert aggregate(loss, mask, "seq_mean_token_sum_norm").item() == pytest.approx((6 + 12) / 2 / 4)
    assert aggregate(loss, mask, "seq_mean_token_sum").item() == pytest.approx((6 + 12) / 2)
    assert aggregate(loss, mask, "token_sum").item() == pytest.approx(18.0)


# ---------------------------------------------------------------- the trainer


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


def test_ppo_with_whitened_advantages_trains_and_logs_whitened_statistics():
    config = TrainConfig(preset="ppo", steps=1, **FAST, overrides={"whiten_advantages": True, "whiten_std": "unbiased"})
    df = Trainer(config, progress=False).train()
    row = df.iloc[-1]
    assert abs(row["adv/mean"]) < 1e-5  # over valid tokens, as the loss sees them
    # adv/std is the population std of unit-Bessel-variance values: sqrt((n - 1) / n), just under 1
    assert 0.9 < row["adv/std"] < 1.0 and math.isfinite(row["critic/loss"])


def test_new_axes_reach_the_trainer():
    config = TrainConfig(
        preset="reinforce_pp",
        steps=1,
        **FAST,
        overrides={
            "gamma": 0.9,
            "kl_estimator": "k3+",
            "aggregation": "seq_mean_token_sum",
            "whiten_std": "unbiased",
            "kl_clamp": 10.0,
            "std_eps": 1e-4,
            "singleton": "reward",
        },
    )
    algo = config.algorithm
    assert (algo.gamma, algo.whiten_std, algo.kl_estimator, algo.kl_clamp, algo.std_eps, algo.singleton) == (
        0.9,
        "unbiased",
        "k3+",
        10.0,
        1e-4,
        "reward",
    )
    df = Trainer(config, progress=False).train()
    assert math.isfinite(df.iloc[-1]["loss/total"]) and "kl/k3+" in df.columns
