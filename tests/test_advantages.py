"""Tests for rl4lrm.advantages: hand-computed cases, loop references, edge cases, registry."""

import math
import statistics

import pytest
import torch

from rl4lrm.advantages import (
    ADVANTAGES,
    group_view,
    grpo,
    register_advantage,
    reinforce,
)


def _ref_reinforce(rewards, mask):
    rs = [float(r) for r in rewards]
    mean = sum(rs) / len(rs)
    return [[(r - mean) * float(m) for m in row] for r, row in zip(rs, mask.tolist())]


def _ref_grpo(rewards, mask, group_size, eps=1e-6, normalize_std=True):
    rs = [float(r) for r in rewards]
    seq = []
    for g in range(0, len(rs), group_size):
        group = rs[g : g + group_size]
        mean = statistics.mean(group)
        for r in group:
            if all(x == group[0] for x in group):
                seq.append(0.0)
            elif normalize_std:
                seq.append((r - mean) / (statistics.stdev(group) + eps))
            else:
                seq.append(r - mean)
    return [[a * float(m) for m in row] for a, row in zip(seq, mask.tolist())]


def _random_case(gen, batch, group_size, seq_len, binary):
    n = batch * group_size
    if binary:
        rewards = torch.randint(0, 2, (n,), generator=gen).float()
    else:
        rewards = torch.randn(n, generator=gen)
    lengths = torch.randint(0, seq_len + 1, (n,), generator=gen)  # includes empty responses
    mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).float()
    return rewards, mask


def test_group_view_shapes_and_validation():
    x = torch.arange(6)
    assert group_view(x, 3).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert group_view(torch.zeros(6, 4), 2).shape == (3, 2, 4)
    with pytest.raises(ValueError, match="N=6 is not a multiple of group_size=4"):
        group_view(x, 4)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        group_view(x, 0)


def test_reinforce_hand_example():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [0, 0], [1, 1], [1, 0]]).float()
    adv, metrics = reinforce(rewards, mask, group_size=3)
    # batch mean = 4/6 = 2/3
    expected = [[1 / 3, 1 / 3], [-2 / 3, 0], [-2 / 3, -2 / 3], [0, 0], [1 / 3, 1 / 3], [1 / 3, 0]]
    torch.testing.assert_close(adv, torch.tensor(expected))
    assert metrics["adv/abs_max"] == pytest.approx(2 / 3)
    # valid tokens: 1/3 x5, -2/3 x3 -> mean (5/3 - 2) / 8 = -1/24
    assert metrics["adv/mean"] == pytest.approx(-1 / 24)
    assert set(metrics) == {"adv/mean", "adv/std", "adv/abs_max"}
    assert all(isinstance(v, float) for v in metrics.values())


def test_grpo_hand_example():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    mask = torch.ones(6, 2)
    adv, metrics = grpo(rewards, mask, group_size=3)
    # group 0: mean 1/3, sample std sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3); group 1 constant
    std = math.sqrt(1 / 3)
    expected = [2 / 3 / std, -1 / 3 / std, -1 / 3 / std, 0.0, 0.0, 0.0]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected), rtol=1e-5, atol=1e-5)
    assert adv[:, 0].tolist()[:3] == pytest.approx([1.1547, -0.57735, -0.57735], abs=1e-4)
    assert metrics["reward/frac_zero_std"] == 0.5
    assert set(metrics) == {"adv/mean", "adv/std", "adv/abs_max", "reward/frac_zero_std"}
    assert all(isinstance(v, float) for v in metrics.values())


def test_grpo_without_std_is_dr_grpo_centering():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    adv, _ = grpo(rewards, torch.ones(6, 1), group_size=3, normalize_std=False)
    torch.testing.assert_close(adv[:, 0], torch.tensor([2 / 3, -1 / 3, -1 / 3, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("group_size", [1, 2, 4, 5])
@pytest.mark.parametrize("binary", [True, False])
def test_grpo_matches_loop_reference(group_size, binary):
    gen = torch.Generator().manual_seed(group_size * 10 + binary)
    rewards, mask = _random_case(gen, batch=6, group_size=group_size, seq_len=5, binary=binary)
    for normalize_std in (True, False):
        adv, _ = grpo(rewards, mask, group_size, normalize_std=normalize_std)
        ref = _ref_grpo(rewards.tolist(), mask, group_size, normalize_std=normalize_std)
        torch.testing.assert_close(adv, torch.tensor(ref), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("group_size", [1, 3])
def test_reinforce_matches_loop_reference(group_size):
    gen = torch.Generator().manual_seed(group_size)
    rewards, mask = _random_case(gen, batch=5, group_size=group_size, seq_len=4, binary=False)
    adv, _ = reinforce(rewards, mask, group_size)
    torch.testing.assert_close(adv, torch.tensor(_ref_reinforce(rewards, mask)))


@pytest.mark.parametrize("name", ["reinforce", "grpo"])
def test_zero_where_masked_and_no_nan(name):
    gen = torch.Generator().manual_seed(0)
    rewards, mask = _random_case(gen, batch=4, group_size=2, seq_len=3, binary=True)
    mask[0] = 0.0  # a fully masked row
    mask[1] = 0.0
    mask[1, 0] = 1.0  # a single-token response
    adv, metrics = ADVANTAGES.get(name)(rewards, mask, 2)
    assert torch.isfinite(adv).all()
    assert (adv[mask == 0] == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())


def test_all_equal_rewards_give_exact_zero():
    # 0.1 is not representable: the group mean can be off by an ulp, which must not leak through
    rewards = torch.full((12,), 0.1)
    for group_size in (1, 3, 4, 12):
        adv, metrics = grpo(rewards, torch.ones(12, 2), group_size)
        assert (adv == 0).all()
        assert metrics["reward/frac_zero_std"] == 1.0


def test_group_size_one_is_zero_without_nan():
    rewards = torch.tensor([0.0, 1.0, 0.5])
    for normalize_std in (True, False):
        adv, metrics = grpo(rewards, torch.ones(3, 2), 1, normalize_std=normalize_std)
        assert (adv == 0).all()
        assert metrics["reward/frac_zero_std"] == 1.0


def test_integer_and_bool_rewards_are_accepted():
    mask = torch.ones(4, 1)
    adv_bool, _ = grpo(torch.tensor([True, False, True, True]), mask, 2)
    adv_float, _ = grpo(torch.tensor([1.0, 0.0, 1.0, 1.0]), mask, 2)
    torch.testing.assert_close(adv_bool, adv_float)


def test_empty_mask_metrics_are_zero():
    adv, metrics = grpo(torch.tensor([1.0, 0.0]), torch.zeros(2, 3), 2)
    assert (adv == 0).all()
    assert metrics["adv/mean"] == metrics["adv/std"] == metrics["adv/abs_max"] == 0.0


@pytest.mark.parametrize("name", ["reinforce", "grpo"])
def test_indivisible_batch_raises(name):
    with pytest.raises(ValueError, match="not a multiple of group_size=4"):
        ADVANTAGES.get(name)(torch.zeros(6), torch.ones(6, 2), 4)


def test_mask_shape_is_checked():
    with pytest.raises(ValueError, match="response_mask must have shape"):
        grpo(torch.zeros(4), torch.ones(3, 2), 2)


def test_registry_unknown_and_duplicate():
    assert {"reinforce", "grpo"} <= set(ADVANTAGES.names())
    with pytest.raises(ValueError, match="grpo.*reinforce"):
        ADVANTAGES.get("no_such_estimator")
    with pytest.raises(ValueError, match="already registered"):
        register_advantage("grpo")(lambda rewards, response_mask, group_size, **kw: None)
    assert ADVANTAGES.get("grpo") is grpo
