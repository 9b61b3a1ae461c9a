"""Tests for rl4lrm.critic: GAE against hand and loop references, the clipped value loss, ValueModel.

GAE is checked on a hand case for lambda in {0, 1/2, 1}, against a pure-Python recursion on random
batches, and against its two limits (Monte-Carlo returns, one-step TD errors). ValueModel runs on a
nano model and a four-row rollout, so each test stays well under a second.
"""

import dataclasses
import math

import pytest
import torch

from rl4lrm.advantages import gae, returns_to_go, token_level_rewards
from rl4lrm.critic import ValueModel, value_loss
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rollout import rollout

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _mask(lengths, seq_len):
    return (torch.arange(seq_len)[None, :] < torch.as_tensor(lengths)[:, None]).float()


def _random_case(seed, n=6, seq_len=5):
    """Rewards (N,), values and token rewards (N, T) with garbage on padding, mask with an empty row."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, seq_len + 1, (n,), generator=gen)
    lengths[0], lengths[1] = 0, 1
    mask = _mask(lengths, seq_len)
    rewards = torch.randn(n, generator=gen)
    values = torch.randn(n, seq_len, generator=gen) + 50 * (1 - mask)
    token_rewards = 0.1 * torch.randn(n, seq_len, generator=gen)
    return rewards, values, token_rewards, mask


def _ref_gae(rewards, values, token_rewards, mask, gamma, lam):
    """Backward recursion per row: delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1}."""
    out = []
    for i, row_mask in enumerate(mask.tolist()):
        length, t_max = int(sum(row_mask)), len(row_mask)
        r = [token_rewards[i][t] + (rewards[i] if t == length - 1 else 0.0) for t in range(length)]
        v = values[i][:length] + [0.0]  # the state after the last token is terminal
        adv, running = [0.0] * t_max, 0.0
        for t in reversed(range(length)):
            running = r[t] + gamma * v[t + 1] - v[t] + gamma * lam * running
            adv[t] = running
        out.append(adv)
    return out


# ---------------------------------------------------------------- GAE


@pytest.mark.parametrize(
    "lam, expected",
    [
        # row 0 (reward 1, V = [.5, .25, .75]): delta = [0 + .25 - .5, 0 + .75 - .25, 1 + 0 - .75] = [-.25, .5, .25]
        # row 1 (reward 0, V = [.5, .25], length 2): delta = [0 + .25 - .5, 0 + 0 - .25] = [-.25, -.25]
        (0.0, [[-0.25, 0.5, 0.25], [-0.25, -0.25, 0.0]]),  # A = delta
        (1.0, [[0.5, 0.75, 0.25], [-0.5, -0.25, 0.0]]),  # A = return - V: [1 - .5, 1 - .25, 1 - .75], [0 - .5, 0 - .25]
        # lam = 1/2: A2 = .25, A1 = .5 + .5*.25 = .625, A0 = -.25 + .5*.625 = .0625; row 1: -.25, -.25 + .5*(-.25)
        (0.5, [[0.0625, 0.625, 0.25], [-0.375, -0.25, 0.0]]),
    ],
)
def test_gae_hand_example(lam, expected):
    values = torch.tensor([[0.5, 0.25, 0.75], [0.5, 0.25, 9.0]])  # 9.0 on padding must be ignored
    adv, metrics = gae(torch.tensor([1.0, 0.0]), _mask([3, 2], 3), 2, values=values, gamma=1.0, lam=lam)
    torch.testing.assert_close(adv, torch.tensor(expected))
    assert metrics["critic/value_mean"] == pytest.approx((0.5 + 0.25 + 0.75 + 0.5 + 0.25) / 5)
    assert {"adv/mean", "adv/std", "adv/abs_max"} <= set(metrics)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma, lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 0.0), (0.5, 1.0), (0.0, 0.3)])
def test_gae_matches_loop_reference(seed, gamma, lam):
    rewards, values, token_rewards, mask = _random_case(seed)
    adv, metrics = gae(rewards, mask, 2, values=values, token_rewards=token_rewards, gamma=gamma, lam=lam)
    ref = _ref_gae(rewards.tolist(), values.tolist(), token_rewards.tolist(), mask, gamma, lam)
    torch.testing.assert_close(adv, torch.tensor(ref), **TOL)
    assert (adv[mask == 0] == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("seed", [0, 1])
def test_gae_limits(seed):
    rewards, values, token_rewards, mask = _random_case(seed)
    # lam = 1, gamma = 1, V = 0: the plain returns-to-go
    adv, _ = gae(rewards, mask, 2, values=torch.zeros_like(values), token_rewards=token_rewards, gamma=1.0, lam=1.0)
    torch.testing.assert_close(adv, returns_to_go(token_level_rewards(rewards, mask, token_rewards), mask), **TOL)
    # lam = 0: the one-step TD error r_t + gamma V_{t+1} - V_t with V after the last token = 0
    gamma = 0.9
    adv, _ = gae(rewards, mask, 2, values=values, token_rewards=token_rewards, gamma=gamma, lam=0.0)
    v = values * mask
    next_v = torch.cat([v[:, 1:], torch.zeros(len(v), 1)], dim=1) * mask  # (N, T); padding after the end is 0
    td = (token_level_rewards(rewards, mask, token_rewards) + gamma * next_v - v) * mask
    torch.testing.assert_close(adv, td, **TOL)


def test_gae_does_not_backpropagate_into_values():
    rewards, values, token_rewards, mask = _random_case(3)
    values.requires_grad_(True)
    adv, _ = gae(rewards, mask, 2, values=values, token_rewards=token_rewards)
    assert not adv.requires_grad and values.grad is None


def test_gae_errors():
    rewards, values, mask = torch.zeros(2), torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="gamma=1.5"):
        gae(rewards, mask, 2, values=values, gamma=1.5)
    with pytest.raises(ValueError, match="lam=-0.1"):
        gae(rewards, mask, 2, values=values, lam=-0.1)
    with pytest.raises(ValueError, match=r"values must have the shape.*\(2, 3\).*got \(2, 2\)"):
        gae(rewards, mask, 2, values=torch.zeros(2, 2))


# ---------------------------------------------------------------- value loss


def _value_case():
    # per valid token (V_old, V, R), clip c = 0.2:
    #   (0, .5, 1): unclipped (.5 - 1)^2 = .25, clipped V = .2 -> (.2 - 1)^2 = .64  -> .64 (clip active)
    #   (0, .5, 0): unclipped .25, clipped (.2 - 0)^2 = .04                         -> .25
    #   (0, .1, 1): inside the band, both (.1 - 1)^2 = .81                          -> .81
    # the fourth token is padding with garbage
    old = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    values = torch.tensor([[0.5, 0.5, 0.1, 1e3]], requires_grad=True)
    returns = torch.tensor([[1.0, 0.0, 1.0, -1e3]])
    return values, old, returns, torch.tensor([[1.0, 1.0, 1.0, 0.0]])


def test_value_loss_hand_example():
    values, old, returns, mask = _value_case()
    loss, metrics = value_loss(values, old, returns, mask, value_clip=0.2)
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.25 + 0.81) / 3)  # 0.28333
    assert metrics["critic/loss"] == pytest.approx(loss.item())
    assert metrics["critic/clip_frac"] == pytest.approx(1 / 3)
    # R = [1, 0, 1]: Var(R) = 2/3 - 4/9 = 2/9; R - V = [.5, -.5, .9]: mean .3, Var = (.04 + .64 + .36)/3 = 1.04/3
    assert metrics["critic/explained_var"] == pytest.approx(1 - (1.04 / 3) / (2 / 9))  # -0.56
    assert all(isinstance(v, float) for v in metrics.values())
    loss.backward()
    # the clipped token gets no gradient; the others 0.5 * 2 (V - R) / 3; padding none
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, 0.5 / 3, -0.9 / 3, 0.0]]))


def test_value_loss_unclipped_is_half_mse_over_valid_tokens():
    values, old, returns, mask = _value_case()
    loss, metrics = value_loss(values, old, returns, mask, value_clip=None)
    assert loss.item() == pytest.approx(0.5 * (0.25 + 0.25 + 0.81) / 3)
    assert metrics["critic/clip_frac"] == 0.0
    gen = torch.Generator().manual_seed(0)
    values, returns = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    mask = _mask([5, 0, 1, 3], 5)
    loss, _ = value_loss(values, torch.zeros_like(values), returns, mask, value_clip=None)
    pairs = [
        (v, r)
        for vr, rr, mr in zip(values.tolist(), returns.tolist(), mask.tolist())
        for v, r, m in zip(vr, rr, mr)
        if m
    ]
    assert loss.item() == pytest.approx(0.5 * sum((v - r) ** 2 for v, r in pairs) / len(pairs))


def test_value_loss_explained_variance_limits():
    gen = torch.Generator().manual_seed(1)
    returns, mask = torch.randn(3, 4, generator=gen), _mask([4, 2, 3], 4)
    _, metrics = value_loss(returns.clone(), returns, returns, mask)
    assert metrics["critic/explained_var"] == 1.0
    mean = returns[mask.bool()].mean()
    _, metrics = value_loss(torch.full_like(returns, mean.item()), returns, returns, mask)
    assert metrics["critic/explained_var"] == pytest.approx(0.0, abs=1e-6)


def test_value_loss_padding_gets_no_gradient():
    gen = torch.Generator().manual_seed(2)
    values = (torch.randn(3, 4, generator=gen) * 1e3).requires_grad_(True)
    old, returns = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    mask = _mask([4, 0, 2], 4)
    for clip in (0.2, None):
        values.grad = None
        loss, metrics = value_loss(values, old, returns, mask, value_clip=clip)
        loss.backward()
        assert torch.isfinite(loss) and all(math.isfinite(v) for v in metrics.values())
        assert (values.grad[mask == 0] == 0).all() and (values.grad[mask == 1] != 0).any()


@pytest.mark.parametrize("clip", [0.0, -0.1])
def test_value_loss_rejects_non_positive_clip(clip):
    values, old, returns, mask = _value_case()
    with pytest.raises(ValueError, match=f"value_clip must be > 0 or None, got {clip}"):
        value_loss(values, old, returns, mask, value_clip=clip)


# ---------------------------------------------------------------- ValueModel


@pytest.fixture(scope="module")
def policy_and_batch():
    tok = char_tokenizer()
    model = tiny_model("nano", tok)
    batch = rollout(
        model, tok, ["12+3=", "7+8="], group_size=2, max_new_tokens=4, generator=torch.Generator().manual_seed(0)
    )
    mask = batch.response_mask.clone()
    mask[0, 2:] = 0.0  # make sure there is padding, whatever the sampler drew
    mask[3, 1:] = 0.0
    return model, dataclasses.replace(batch, response_mask=mask)


def _random_head(critic, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        critic.head.weight.copy_(torch.randn(critic.head.weight.shape, generator=gen))
        critic.head.bias.fill_(0.3)


def test_value_model_shapes_init_and_padding(policy_and_batch):
    model, batch = policy_and_batch
    critic = ValueModel(model)
    values = critic(batch)
    assert values.shape == batch.response_mask.shape
    assert (values == 0).all()  # zero-initialised head
    _random_head(critic)
    values = critic(batch)
    assert (values[batch.response_mask == 0] == 0).all()
    assert (values[batch.response_mask == 1] != 0).all()


def test_value_model_trains_without_touching_the_policy(policy_and_batch):
    model, batch = policy_and_batch
    critic = ValueModel(model)
    assert critic.trunk is not model.base_model
    policy_ptrs = {p.data_ptr() for p in model.parameters()}
    assert not any(p.data_ptr() in policy_ptrs for p in critic.parameters())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-2)
    old_values = critic(batch).detach()
    loss, _ = value_loss(critic(batch), old_values, torch.ones_like(old_values), batch.response_mask)
    loss.backward()
    optimizer.step()
    new_values = critic(batch).detach()
    assert (new_values[batch.response_mask == 1] != old_values[batch.response_mask == 1]).all()
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())


def test_value_model_is_causal(policy_and_batch):
    model, batch = policy_and_batch
    critic = ValueModel(model)
    _random_head(critic)
    row, changed = 1, 1  # row 1 keeps all 4 tokens; change its completion token 1
    assert batch.response_mask[row].all()
    ids = batch.completion_ids.clone()
    ids[row, changed] = 20 if ids[row, changed] != 20 else 21  # another ordinary character ('g' or 'h')
    with torch.no_grad():
        base = critic(batch)
        edited = critic(dataclasses.replace(batch, completion_ids=ids))
    # values[:, t] read the state before token t: tokens >= t cannot matter
    torch.testing.assert_close(edited[:, : changed + 1], base[:, : changed + 1], rtol=0, atol=1e-6)
    assert (edited[row, changed + 1 :] != base[row, changed + 1 :]).all()
    torch.testing.assert_close(edited[[0, 2, 3]], base[[0, 2, 3]], rtol=0, atol=1e-6)
