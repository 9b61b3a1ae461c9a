"""Tests for the advantage zoo of rl4lrm.advantages: dr_grpo, rloo, REINFORCE++, ReMax and pass@k.

Each estimator gets a hand-computed case, a slow pure-Python reference on random batches (with
empty and single-token responses), edge cases (padding, zero-variance groups) and the identities
that tie the estimators together. The dense-reward helpers ``token_level_rewards`` and
``returns_to_go`` are tested the same way.
"""

import itertools
import math
import random

import pytest
import torch

import rl4lrm.critic  # noqa: F401  (registers "gae")
from rl4lrm.advantages import (
    ADVANTAGES,
    dr_grpo,
    passk,
    reinforce_pp,
    reinforce_pp_baseline,
    remax,
    returns_to_go,
    rloo,
    token_level_rewards,
)

TOL = {"rtol": 1e-5, "atol": 1e-5}
ZOO = ("dr_grpo", "rloo", "reinforce_pp", "reinforce_pp_baseline", "remax", "passk")


# ---------------------------------------------------------------- helpers


def _mask(lengths, seq_len):
    """Right-padded response mask (N, T) from row lengths."""
    return (torch.arange(seq_len)[None, :] < torch.as_tensor(lengths)[:, None]).float()


def _random_case(seed, group_size, binary, batch=4, seq_len=5):
    """Rewards (N,) and mask (N, T); row 0 is an empty response and row 1 a single token."""
    gen = torch.Generator().manual_seed(seed)
    n = batch * group_size
    rewards = torch.randint(0, 2, (n,), generator=gen).float() if binary else torch.randn(n, generator=gen)
    lengths = torch.randint(0, seq_len + 1, (n,), generator=gen)
    lengths[0], lengths[1] = 0, 1
    return rewards, _mask(lengths, seq_len)


def _lengths(mask):
    return [int(sum(row)) for row in mask.tolist()]


def _spread(seq_values, mask):
    """Broadcasts one value per sample over its valid tokens (pure Python), 0 on padding."""
    t = mask.shape[1]
    return [[a if j < length else 0.0 for j in range(t)] for a, length in zip(seq_values, _lengths(mask))]


def _groups(values, group_size):
    return [values[g : g + group_size] for g in range(0, len(values), group_size)]


def _call(name, rewards, mask, group_size, **context):
    """Calls a registered estimator with the context it needs (ReMax: a fixed baseline)."""
    if name == "remax" and "baseline_rewards" not in context:
        context["baseline_rewards"] = torch.full_like(rewards, 0.25)
    if name == "passk":
        context.setdefault("k", min(2, group_size))
    return ADVANTAGES.get(name)(rewards, mask, group_size, **context)


# ---------------------------------------------------------------- loop references


def _ref_dr_grpo(rewards, group_size):
    out = []
    for group in _groups(rewards, group_size):
        mean = sum(group) / len(group)
        out += [0.0 if len(set(group)) == 1 else r - mean for r in group]
    return out


def _ref_rloo(rewards, group_size):
    out = []
    for group in _groups(rewards, group_size):
        for i, r in enumerate(group):
            others = group[:i] + group[i + 1 :]
            out.append(0.0 if len(set(group)) == 1 else r - sum(others) / len(others))
    return out


def _ref_passk(rewards, group_size, k):
    """Closed form: correct samples C(n,k)/C(G,k), wrong ones that minus C(n-1,k-1)/C(G-1,k-1)."""
    out = []
    for group in _groups(rewards, group_size):
        n = sum(1 for r in group if r == 0)
        fail_all = math.comb(n, k) / math.comb(group_size, k)
        fail_rest = math.comb(n - 1, k - 1) / math.comb(group_size - 1, k - 1) if n else 0.0
        out += [fail_all if r == 1 else fail_all - fail_rest for r in group]
    return out


def _brute_passk(rewards, group_size, k):
    """Credit of sample i = mean max-reward over the k-subsets containing i, minus mean over all k-subsets."""
    out = []
    for group in _groups(rewards, group_size):
        subsets = list(itertools.combinations(range(group_size), k))
        baseline = sum(max(group[j] for j in s) for s in subsets) / len(subsets)
        for i in range(group_size):
            mine = [s for s in subsets if i in s]
            out.append(sum(max(group[j] for j in s) for s in mine) / len(mine) - baseline)
    return out


def _ref_token_level_rewards(rewards, mask, token_rewards=None):
    dense = []
    for i, length in enumerate(_lengths(mask)):
        row = [token_rewards[i][j] if token_rewards is not None and j < length else 0.0 for j in range(mask.shape[1])]
        if length:
            row[length - 1] += rewards[i]
        dense.append(row)
    return dense


def _ref_returns_to_go(dense, mask, gamma=1.0):
    out = []
    for row, length in zip(dense, _lengths(mask)):
        returns = [0.0] * len(row)
        for j in range(length):
            returns[j] = sum(gamma ** (s - j) * row[s] for s in range(j, length))
        out.append(returns)
    return out


def _ref_reinforce_pp(rewards, mask, group_size, token_rewards=None, baseline=False, gamma=1.0, std="biased"):
    if baseline:
        rewards = [r - sum(g) / len(g) for g in _groups(rewards, group_size) for r in g]
    returns = _ref_returns_to_go(_ref_token_level_rewards(rewards, mask, token_rewards), mask, gamma)
    lengths = _lengths(mask)
    valid = [returns[i][j] for i, length in enumerate(lengths) for j in range(length)]
    if not valid or len(set(valid)) == 1:
        return [[0.0] * mask.shape[1] for _ in lengths]
    mean = sum(valid) / len(valid)
    squares = sum((x - mean) ** 2 for x in valid)
    if std == "biased":  # population std + eps (OpenRLHF)
        scale = math.sqrt(squares / len(valid)) + 1e-8
    else:  # Bessel-corrected variance, eps inside the root (verl's masked_whiten)
        scale = math.sqrt(squares / (len(valid) - 1) + 1e-8)
    return [
        [(x - mean) / scale if j < length else 0.0 for j, x in enumerate(row)] for row, length in zip(returns, lengths)
    ]


# ---------------------------------------------------------------- hand-computed examples


def test_dr_grpo_hand_example():
    rewards = torch.tensor([1.0, 0.0, 0.0, 2.0, 5.0, 5.0])
    mask = _mask([2, 1, 0, 2, 2, 1], 2)
    adv, metrics = dr_grpo(rewards, mask, 3)
    # group 0: mean 1/3 -> [2/3, -1/3, -1/3]; group 1: mean 4 -> [-2, 1, 1]; no std division
    expected = [[2 / 3, 2 / 3], [-1 / 3, 0], [0, 0], [-2, -2], [1, 1], [1, 0]]
    torch.testing.assert_close(adv, torch.tensor(expected))
    assert metrics["reward/frac_zero_std"] == 0.0


def test_rloo_hand_example():
    rewards = torch.tensor([1.0, 0.0, 0.0, 2.0, 5.0, 5.0])
    adv, metrics = rloo(rewards, torch.ones(6, 1), 3)
    # group 0: 1 - (0+0)/2 = 1, 0 - (1+0)/2 = -0.5 (twice); group 1: 2 - 5 = -3, 5 - (2+5)/2 = 1.5 (twice)
    torch.testing.assert_close(adv[:, 0], torch.tensor([1.0, -0.5, -0.5, -3.0, 1.5, 1.5]))
    assert set(metrics) == {"adv/mean", "adv/std", "adv/abs_max", "reward/frac_zero_std"}


def test_reinforce_pp_hand_example():
    rewards = torch.tensor([1.0, 0.0])
    mask = _mask([3, 2], 3)
    token_rewards = torch.tensor([[-0.1, -0.1, -0.1], [-0.2, 0.0, 9.0]])  # 9.0 sits on padding
    adv, _ = reinforce_pp(rewards, mask, 2, token_rewards=token_rewards)
    # dense: [-0.1, -0.1, 0.9], [-0.2, 0.0]; returns-to-go: [0.7, 0.8, 0.9], [-0.2, 0.0]
    # mean 2.2/5 = 0.44; deviations [0.26, 0.36, 0.46], [-0.64, -0.44]; population var 1.012/5 = 0.2024
    std = math.sqrt(0.2024)
    expected = [[0.26 / std, 0.36 / std, 0.46 / std], [-0.64 / std, -0.44 / std, 0.0]]
    torch.testing.assert_close(adv, torch.tensor(expected), **TOL)


def test_reinforce_pp_baseline_hand_example():
    rewards = torch.tensor([1.0, 0.0])
    mask = _mask([3, 2], 3)
    token_rewards = torch.tensor([[-0.1, -0.1, -0.1], [-0.2, 0.0, 9.0]])
    adv, _ = reinforce_pp_baseline(rewards, mask, 1, token_rewards=token_rewards)
    # G = 1: the group mean is the reward itself, so only the token rewards remain.
    # returns-to-go: [-0.3, -0.2, -0.1], [-0.2, 0.0]; mean -0.16; deviations [-0.14, -0.04, 0.06], [-0.04, 0.16]
    # population var (0.0196 + 0.0016 + 0.0036 + 0.0016 + 0.0256) / 5 = 0.0104
    std = math.sqrt(0.0104)
    expected = [[-0.14 / std, -0.04 / std, 0.06 / std], [-0.04 / std, 0.16 / std, 0.0]]
    torch.testing.assert_close(adv, torch.tensor(expected), **TOL)


def test_remax_hand_example():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    baseline = torch.tensor([1.0, 1.0, 0.0, 0.0])  # greedy reward of prompt 0 is 1, of prompt 1 is 0
    adv, metrics = remax(rewards, _mask([2, 2, 1, 0], 2), 2, baseline_rewards=baseline)
    # r - b = [0, -1, 1, 1]
    torch.testing.assert_close(adv, torch.tensor([[0.0, 0.0], [-1.0, -1.0], [1.0, 0.0], [0.0, 0.0]]))
    assert metrics["reward/baseline_mean"] == 0.5
    # no group needed: group_size 1 works
    adv1, _ = remax(rewards, _mask([2, 2, 1, 0], 2), 1, baseline_rewards=baseline)
    torch.testing.assert_close(adv1, adv)


def test_passk_hand_example():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    adv, metrics = passk(rewards, torch.ones(8, 1), 4, k=2)
    # group 0: n = 3 wrong, C(3,2)/C(4,2) = 3/6; correct: 1/2, wrong: 1/2 - C(2,1)/C(3,1) = 1/2 - 2/3 = -1/6
    # group 1: n = 2 wrong, C(2,2)/C(4,2) = 1/6; correct: 1/6, wrong: 1/6 - C(1,1)/C(3,1) = -1/6
    expected = [1 / 2, -1 / 6, -1 / 6, -1 / 6, 1 / 6, 1 / 6, -1 / 6, -1 / 6]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected))
    assert metrics["reward/frac_zero_std"] == 0.0


def test_token_level_rewards_and_returns_to_go_hand_example():
    rewards = torch.tensor([2.0, 3.0, 4.0])
    mask = _mask([2, 0, 3], 3)
    dense = token_level_rewards(rewards, mask, torch.full((3, 3), 0.1))
    # outcome on the last valid token, 0.1 on every valid token; the empty row stays 0
    torch.testing.assert_close(dense, torch.tensor([[0.1, 2.1, 0.0], [0.0, 0.0, 0.0], [0.1, 0.1, 4.1]]))
    dense = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 9.0]])  # 9.0 is padding garbage
    returns = returns_to_go(dense, _mask([3, 2], 3), gamma=0.5)
    # row 0: G2 = 4, G1 = 2 + 0.5*4 = 4, G0 = 1 + 0.5*4 = 3; row 1: G1 = 2, G0 = 1 + 0.5*2 = 2
    torch.testing.assert_close(returns, torch.tensor([[3.0, 4.0, 4.0], [2.0, 2.0, 0.0]]))


def test_helpers_with_no_tokens():
    mask = torch.zeros(2, 0)
    assert token_level_rewards(torch.ones(2), mask).shape == (2, 0)
    assert returns_to_go(torch.zeros(2, 0), mask).shape == (2, 0)
    adv, metrics = reinforce_pp(torch.tensor([0.0, 1.0]), mask, 2)
    assert adv.shape == (2, 0) and metrics["adv/abs_max"] == 0.0


# ---------------------------------------------------------------- loop references on random inputs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("group_size", [2, 5])
@pytest.mark.parametrize("binary", [True, False])
def test_group_estimators_match_loop_reference(seed, group_size, binary):
    rewards, mask = _random_case(seed * 100 + group_size, group_size, binary)
    rs = rewards.tolist()

    def check(adv_and_metrics, seq_ref):
        torch.testing.assert_close(adv_and_metrics[0], torch.tensor(_spread(seq_ref, mask)), **TOL)

    check(dr_grpo(rewards, mask, group_size), _ref_dr_grpo(rs, group_size))
    check(rloo(rewards, mask, group_size), _ref_rloo(rs, group_size))
    baseline = torch.randn(rewards.shape, generator=torch.Generator().manual_seed(seed))
    check(remax(rewards, mask, group_size, baseline_rewards=baseline), [r - b for r, b in zip(rs, baseline.tolist())])
    if binary:
        for k in range(1, group_size + 1):
            check(passk(rewards, mask, group_size, k=k), _ref_passk(rs, group_size, k))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("group_size", [2, 5])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("with_token_rewards", [False, True])
@pytest.mark.parametrize("gamma, std", [(1.0, "biased"), (0.9, "unbiased")])
def test_reinforce_pp_matches_loop_reference(seed, group_size, binary, with_token_rewards, gamma, std):
    rewards, mask = _random_case(seed * 100 + group_size, group_size, binary)
    gen = torch.Generator().manual_seed(seed + 7)
    token_rewards = -0.1 * torch.rand(mask.shape, generator=gen) if with_token_rewards else None
    token_rewards_list = token_rewards.tolist() if with_token_rewards else None
    for fn, baseline in ((reinforce_pp, False), (reinforce_pp_baseline, True)):
        adv, metrics = fn(rewards, mask, group_size, token_rewards=token_rewards, gamma=gamma, whiten_std=std)
        ref = _ref_reinforce_pp(rewards.tolist(), mask, group_size, token_rewards_list, baseline, gamma, std)
        torch.testing.assert_close(adv, torch.tensor(ref), rtol=1e-4, atol=1e-4)
        assert (adv[mask == 0] == 0).all() and math.isfinite(metrics["adv/std"])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("gamma", [1.0, 0.9, 0.0])
def test_dense_helpers_match_loop_reference(seed, gamma):
    rewards, mask = _random_case(seed, 3, binary=False)
    gen = torch.Generator().manual_seed(seed)
    token_rewards = torch.randn(mask.shape, generator=gen)  # garbage on padding must be ignored
    dense = token_level_rewards(rewards, mask, token_rewards)
    ref_dense = _ref_token_level_rewards(rewards.tolist(), mask, token_rewards.tolist())
    torch.testing.assert_close(dense, torch.tensor(ref_dense), **TOL)
    garbage = dense + 100 * (1 - mask)  # returns_to_go must ignore padding values too
    ref_returns = _ref_returns_to_go(ref_dense, mask, gamma)
    torch.testing.assert_close(returns_to_go(garbage, mask, gamma), torch.tensor(ref_returns), **TOL)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("group_size, k", [(2, 1), (2, 2), (4, 2), (5, 3), (6, 4)])
def test_passk_matches_subset_enumeration(seed, group_size, k):
    rewards, mask = _random_case(seed, group_size, binary=True, batch=6)
    adv, _ = passk(rewards, mask, group_size, k=k)
    brute = _brute_passk(rewards.tolist(), group_size, k)
    torch.testing.assert_close(adv, torch.tensor(_spread(brute, mask)), **TOL)


# ---------------------------------------------------------------- edge cases


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("group_size", [2, 5])
def test_padding_and_zero_variance_groups(name, group_size):
    binary = name == "passk"
    rewards, mask = _random_case(3, group_size, binary, batch=3)
    rewards[0], rewards[1] = 1.0, 0.0  # group 0 carries signal
    # group 1 all wrong (binary) or all 0.1, which is not representable: its mean is off by an ulp
    rewards[group_size : 2 * group_size] = 0.0 if binary else 0.1
    rewards[2 * group_size :] = 1.0  # group 2 all correct
    adv, metrics = _call(name, rewards, mask, group_size)
    assert torch.isfinite(adv).all() and all(math.isfinite(v) for v in metrics.values())
    assert (adv[mask == 0] == 0).all()
    if name in ("dr_grpo", "rloo", "passk"):
        assert (adv[group_size:] == 0).all()
        assert metrics["reward/frac_zero_std"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ZOO)
def test_fully_masked_batch_is_zero(name):
    adv, metrics = _call(name, torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.zeros(4, 3), 2)
    assert (adv == 0).all()
    assert metrics["adv/mean"] == metrics["adv/std"] == metrics["adv/abs_max"] == 0.0


def test_reinforce_pp_equal_returns_give_exact_zero():
    mask = _mask([3, 1, 0, 2], 3)
    # every valid return is 0.1; the empty row's different reward never reaches a token
    adv, _ = reinforce_pp(torch.tensor([0.1, 0.1, 0.7, 0.1]), mask, 2)
    assert (adv == 0).all()
    token_rewards = torch.zeros(4, 3)
    adv, _ = reinforce_pp(torch.full((4,), 0.3), mask, 4, token_rewards=token_rewards)
    assert (adv == 0).all()


@pytest.mark.parametrize("group_size", [3, 5, 7])
def test_reinforce_pp_baseline_zero_variance_batch_gives_exact_zero(group_size):
    # Every group is constant, so every centred reward, hence every return, is mathematically 0;
    # an ulp of rounding in a group mean must not be whitened up to advantages of order 1.
    rewards = torch.tensor([0.1] * group_size + [0.3] * group_size)
    adv, _ = reinforce_pp_baseline(rewards, torch.ones(2 * group_size, 2), group_size)
    assert (adv == 0).all(), adv[:, 0].tolist()


# ---------------------------------------------------------------- identities


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("group_size", [2, 5])
def test_identities_between_estimators(seed, group_size):
    rewards, mask = _random_case(seed, group_size, binary=True)
    dr, _ = dr_grpo(rewards, mask, group_size)
    torch.testing.assert_close(passk(rewards, mask, group_size, k=1)[0], dr, **TOL)
    torch.testing.assert_close(rloo(rewards, mask, group_size)[0], group_size / (group_size - 1) * dr, **TOL)
    assert (passk(rewards, mask, group_size, k=group_size)[0] == 0).all()
    for binary in (True, False):
        rewards, mask = _random_case(seed + 10, group_size, binary)
        group_mean = rewards.reshape(-1, group_size).mean(1).repeat_interleave(group_size)
        torch.testing.assert_close(
            remax(rewards, mask, group_size, baseline_rewards=group_mean)[0],
            dr_grpo(rewards, mask, group_size)[0],
            **TOL,
        )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_token_rewards", [False, True])
def test_reinforce_pp_baseline_on_one_group_is_reinforce_pp(seed, with_token_rewards):
    # one group: subtracting its mean shifts every valid return by the same constant, which whitening removes
    rewards, mask = _random_case(seed, 6, binary=False, batch=1)
    token_rewards = (
        -0.05 * torch.rand(mask.shape, generator=torch.Generator().manual_seed(seed)) if with_token_rewards else None
    )
    torch.testing.assert_close(
        reinforce_pp_baseline(rewards, mask, 6, token_rewards=token_rewards)[0],
        reinforce_pp(rewards, mask, 6, token_rewards=token_rewards)[0],
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("group_size, k", [(2, 1), (4, 2), (5, 3), (8, 4)])
def test_passk_group_structure(group_size, k):
    rng = random.Random(group_size * 10 + k)
    for _ in range(5):
        rewards = torch.tensor([float(rng.random() < 0.4) for _ in range(3 * group_size)])
        adv, _ = passk(rewards, torch.ones(len(rewards), 1), group_size, k=k)
        for group, scores in zip(rewards.reshape(-1, group_size), adv[:, 0].reshape(-1, group_size)):
            assert scores.mean().item() == pytest.approx(0.0, abs=1e-6)
            n = int((group == 0).sum())
            expected = math.comb(n, k) / math.comb(group_size, k)
            torch.testing.assert_close(scores[group == 1], torch.full_like(scores[group == 1], expected))


# ---------------------------------------------------------------- errors and registry


def test_errors_name_the_bad_value():
    rewards, mask = torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.ones(4, 2)
    with pytest.raises(ValueError, match="group_size >= 2.*got 1"):
        rloo(rewards, mask, 1)
    with pytest.raises(ValueError, match="got k=5"):
        passk(rewards, mask, 4, k=5)
    with pytest.raises(ValueError, match="got k=0"):
        passk(rewards, mask, 4, k=0)
    with pytest.raises(ValueError, match=r"binary.*0\.5"):
        passk(torch.tensor([1.0, 0.5, 0.0, 1.0]), mask, 2, k=1)
    with pytest.raises(ValueError, match=r"baseline_rewards must have shape \(4,\), got \(2,\)"):
        remax(rewards, mask, 2, baseline_rewards=torch.zeros(2))


def test_registry_and_requires():
    assert set(ZOO) | {"gae", "grpo"} <= set(ADVANTAGES.names())
    assert ADVANTAGES.get("remax").requires == {"baseline_rewards"}
    assert ADVANTAGES.get("reinforce_pp").requires == {"token_rewards"}
    assert ADVANTAGES.get("reinforce_pp_baseline").requires == {"token_rewards"}
    assert ADVANTAGES.get("gae").requires == {"values", "token_rewards"}
    assert ADVANTAGES.get("grpo").requires == frozenset()
    for name in ("dr_grpo", "rloo", "passk"):
        assert ADVANTAGES.get(name).requires == frozenset()
