"""Tests for rl4lrm.losses: aggregation, policy losses, gradients, log-probs and entropy."""

import math

import pytest
import torch

from rl4lrm.aggregation import AGGREGATIONS, aggregate, aggregation_denominators
from rl4lrm.losses import POLICY_LOSSES, ppo_clip, register_policy_loss, vanilla_pg
from rl4lrm.rollout import entropy_from_logits, token_logprobs

LN = math.log


def _ref_aggregate(loss, mask, mode, max_len=None):
    rows = list(zip(loss.tolist(), mask.tolist()))
    n, t = mask.shape
    if mode == "token_mean":
        total = sum(x for lr, mr in rows for x, m in zip(lr, mr) if m)
        count = sum(1 for _, mr in rows for m in mr if m)
        return total / max(count, 1)
    if mode == "seq_mean_token_mean":
        per_seq = []
        for lr, mr in rows:
            valid = [x for x, m in zip(lr, mr) if m]
            per_seq.append(sum(valid) / max(len(valid), 1))
        return sum(per_seq) / n
    total = sum(x for lr, mr in rows for x, m in zip(lr, mr) if m)
    if mode == "token_sum":
        return total
    if mode == "seq_mean_token_sum":
        return total / n
    return total / (n * (t if max_len is None else max_len))


def _ref_ppo_token(lp, old, adv, clip_low, clip_high):
    ratio = math.exp(min(max(lp - old, -20.0), 20.0))
    unclipped = ratio * adv
    clipped = min(max(ratio, 1 - clip_low), 1 + clip_high) * adv
    return -min(unclipped, clipped), clipped < unclipped


def _random_batch(seed, n=6, t=5, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logprobs = -2 * torch.rand(n, t, generator=gen, dtype=dtype)
    old_logprobs = logprobs + 0.4 * torch.randn(n, t, generator=gen, dtype=dtype)
    advantages = torch.randn(n, 1, generator=gen, dtype=dtype).expand(n, t).clone()
    lengths = torch.randint(0, t + 1, (n,), generator=gen)
    lengths[0], lengths[1] = 0, 1  # an empty and a single-token response
    mask = (torch.arange(t)[None, :] < lengths[:, None]).to(dtype)
    advantages = advantages * mask
    return logprobs, old_logprobs, advantages, mask


# ---------------------------------------------------------------- aggregation


def test_aggregation_hand_example_denominators_differ():
    loss = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 8.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    assert aggregate(loss, mask, "token_mean").item() == pytest.approx(18 / 5)  # 3.6
    assert aggregate(loss, mask, "seq_mean_token_mean").item() == pytest.approx((2 + 6) / 2)
    assert aggregate(loss, mask, "seq_mean_token_sum_norm").item() == pytest.approx(18 / 8)
    assert aggregate(loss, mask, "seq_mean_token_sum_norm", max_len=6).item() == pytest.approx(1.5)
    # verl's token-sum and seq-mean-token-sum (core_algos.agg_loss): (1+2+3) + (4+8) and that over N = 2
    assert aggregate(loss, mask, "token_sum").item() == pytest.approx(18.0)
    assert aggregate(loss, mask, "seq_mean_token_sum").item() == pytest.approx(9.0)
    weights = aggregation_denominators(mask, "seq_mean_token_mean")
    torch.testing.assert_close(weights[0], torch.tensor([1 / 6, 1 / 6, 1 / 6, 0.0]))
    torch.testing.assert_close(weights[1], torch.tensor([1 / 4, 1 / 4, 0.0, 0.0]))


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aggregate_matches_loop_reference_and_weights(mode, seed):
    logprobs, _, _, mask = _random_batch(seed)
    loss = torch.randn(mask.shape, generator=torch.Generator().manual_seed(seed), dtype=mask.dtype)
    for max_len in (None, 7):
        out = aggregate(loss, mask, mode, max_len)
        assert out.item() == pytest.approx(_ref_aggregate(loss, mask, mode, max_len))
        weights = aggregation_denominators(mask, mode, max_len)
        assert out.item() == pytest.approx((loss * weights).sum().item())
        assert (weights[mask == 0] == 0).all()
    n_valid, n_rows = mask.sum().item(), mask.shape[0]
    total = aggregation_denominators(mask, mode).sum().item()
    expected_total = {
        "token_mean": 1.0,
        "seq_mean_token_mean": (mask.sum(1) > 0).sum().item() / n_rows,  # empty rows weigh 0
        "seq_mean_token_sum_norm": n_valid / mask.numel(),
        "token_sum": n_valid,
        "seq_mean_token_sum": n_valid / n_rows,
    }[mode]
    assert total == pytest.approx(expected_total)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_empty_rows_and_empty_batch_are_finite(mode):
    loss = torch.randn(3, 4, requires_grad=True)
    out = aggregate(loss, torch.zeros(3, 4), mode)
    out.backward()
    assert out.item() == 0.0 and (loss.grad == 0).all()
    mask = torch.tensor([[0.0, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    assert torch.isfinite(aggregate(loss, mask, mode))


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_padding_garbage_is_ignored(mode):
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    clean = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    dirty = clean.clone()
    dirty[0, 2], dirty[1, 1], dirty[1, 2] = float("inf"), float("nan"), -float("inf")
    torch.testing.assert_close(aggregate(dirty, mask, mode), aggregate(clean, mask, mode))


def test_aggregation_errors():
    with pytest.raises(ValueError, match=", ".join(AGGREGATIONS)):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1), "seq_sum")
    with pytest.raises(ValueError, match="max_len must be >= 1, got 0"):
        aggregate(torch.zeros(1, 1), torch.ones(1, 1), "seq_mean_token_sum_norm", max_len=0)
    with pytest.raises(ValueError, match="same shape"):
        aggregate(torch.zeros(1, 2), torch.ones(1, 1), "token_mean")


# ---------------------------------------------------------------- policy losses


def test_vanilla_pg_hand_example():
    logprobs = torch.tensor([[-1.0, -2.0, -5.0]])
    advantages = torch.tensor([[2.0, 2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, metrics = vanilla_pg(logprobs, logprobs, advantages, mask)
    assert loss.item() == pytest.approx((2 + 4) / 2)  # -A * logprobs = [2, 4], token mean
    assert metrics["clip/frac"] == 0.0 and metrics["ratio/mean"] == 1.0
    assert metrics["loss/policy"] == pytest.approx(3.0)


def test_ppo_clip_hand_example():
    # tokens: (ratio, A) = (1.5, +1) clipped, (0.5, +1) not, (0.5, -1) clipped, (1.5, -1) not
    logprobs = torch.tensor([[LN(1.5), LN(0.5), LN(0.5), LN(1.5)]])
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    mask = torch.ones(1, 4)
    loss, metrics = ppo_clip(logprobs, torch.zeros(1, 4), advantages, mask)
    # per-token losses: -min(1.5, 1.2), -min(0.5, 0.8), -min(-0.5, -0.8), -min(-1.5, -1.2)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 0.8 + 1.5) / 4)  # 0.15
    assert metrics["clip/frac"] == 0.5
    assert metrics["ratio/mean"] == pytest.approx(1.0)
    assert metrics["ratio/max"] == pytest.approx(1.5)
    assert metrics["kl/old_approx"] == pytest.approx(-LN(0.75) / 2)  # 0.1438
    assert metrics["loss/policy"] == pytest.approx(0.15)
    assert all(isinstance(v, float) for v in metrics.values())
    # clip-higher (DAPO): the upper band moves to 1.28, the lower one stays at 0.8
    loss_high, _ = ppo_clip(logprobs, torch.zeros(1, 4), advantages, mask, clip_high=0.28)
    assert loss_high.item() == pytest.approx((-1.28 - 0.5 + 0.8 + 1.5) / 4)


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("clip_low, clip_high", [(0.2, 0.2), (0.2, 0.28), (0.0, 0.0)])
def test_ppo_clip_matches_loop_reference(mode, clip_low, clip_high):
    logprobs, old_logprobs, advantages, mask = _random_batch(seed=7)
    loss, metrics = ppo_clip(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        aggregation=mode,
        clip_low=clip_low,
        clip_high=clip_high,
    )
    per_token, clipped = [], []
    for i in range(mask.shape[0]):
        row = []
        for t in range(mask.shape[1]):
            value, was_clipped = _ref_ppo_token(
                logprobs[i, t].item(),
                old_logprobs[i, t].item(),
                advantages[i, t].item(),
                clip_low,
                clip_high,
            )
            row.append(value)
            if mask[i, t]:
                clipped.append(was_clipped)
        per_token.append(row)
    expected = _ref_aggregate(torch.tensor(per_token), mask, mode)
    assert loss.item() == pytest.approx(expected)
    assert metrics["clip/frac"] == pytest.approx(sum(clipped) / len(clipped))
    valid = mask.flatten().bool().tolist()
    drift = [o - l for l, o, v in zip(logprobs.flatten(), old_logprobs.flatten(), valid) if v]
    assert metrics["kl/old_approx"] == pytest.approx(sum(drift).item() / len(drift))


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("same_tensor", [False, True])
def test_on_policy_ppo_gradient_equals_vanilla_pg(mode, same_tensor):
    logprobs, _, advantages, mask = _random_batch(seed=3)
    grads = {}
    for name in ("ppo_clip", "vanilla_pg"):
        lp = logprobs.clone().requires_grad_(True)
        # Passing lp itself as old_logprobs must behave like a detached copy (one epoch).
        old = lp if same_tensor else lp.detach()
        loss, _ = POLICY_LOSSES.get(name)(lp, old, advantages, mask, aggregation=mode)
        loss.backward()
        grads[name] = lp.grad
    torch.testing.assert_close(grads["ppo_clip"], grads["vanilla_pg"])
    assert grads["vanilla_pg"].abs().sum() > 0


def test_clipped_tokens_get_zero_gradient():
    # (ratio, A): above band & A>0, below band & A<0 -> clipped, zero gradient;
    # above band & A<0, below band & A>0, inside band -> unclipped, gradient flows.
    ratios = torch.tensor([[1.5, 0.5, 1.5, 0.5, 1.1]], dtype=torch.float64)
    advantages = torch.tensor([[1.0, -1.0, -1.0, 1.0, 1.0]], dtype=torch.float64)
    logprobs = ratios.log().requires_grad_(True)
    mask = torch.ones_like(ratios)
    loss, metrics = ppo_clip(logprobs, torch.zeros_like(ratios), advantages, mask)
    loss.backward()
    grad = logprobs.grad[0]
    assert grad[0] == 0 and grad[1] == 0
    assert (grad[2:] != 0).all()
    # unclipped tokens keep the plain importance-weighted gradient -ratio * A / num_tokens
    torch.testing.assert_close(grad[2:], -(ratios * advantages)[0, 2:] / 5)
    assert metrics["clip/frac"] == pytest.approx(2 / 5)


@pytest.mark.parametrize("name", ["vanilla_pg", "ppo_clip"])
@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_masked_tokens_get_zero_gradient_and_no_nan(name, mode):
    logprobs, old_logprobs, advantages, mask = _random_batch(seed=11)
    logprobs = logprobs.masked_fill(mask == 0, -float("inf")).requires_grad_(True)
    loss_fn = POLICY_LOSSES.get(name)
    loss, metrics = loss_fn(logprobs, old_logprobs, advantages, mask, aggregation=mode)
    loss.backward()
    assert torch.isfinite(loss) and all(math.isfinite(v) for v in metrics.values())
    assert (logprobs.grad[mask == 0] == 0).all()
    assert torch.isfinite(logprobs.grad).all()
    # the whole batch masked out: zero loss, zero gradient
    lp = torch.zeros(2, 3, requires_grad=True)
    loss, metrics = loss_fn(lp, lp.detach(), torch.ones(2, 3), torch.zeros(2, 3))
    loss.backward()
    assert loss.item() == 0.0 and (lp.grad == 0).all()


def test_clip_validation():
    args = (torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    with pytest.raises(ValueError, match=r"clip_low must be in \[0, 1\].*got 1.5"):
        ppo_clip(*args, clip_low=1.5)
    with pytest.raises(ValueError, match="clip_low.*got -0.1"):
        ppo_clip(*args, clip_low=-0.1)
    with pytest.raises(ValueError, match="clip_high must be >= 0, got -0.1"):
        ppo_clip(*args, clip_high=-0.1)


def test_policy_loss_registry():
    assert {"vanilla_pg", "ppo_clip"} <= set(POLICY_LOSSES.names())
    with pytest.raises(ValueError, match="ppo_clip.*vanilla_pg"):
        POLICY_LOSSES.get("gspo_typo")
    with pytest.raises(ValueError, match="already registered"):
        register_policy_loss("ppo_clip")(lambda *a, **k: None)


# ---------------------------------------------------------------- log-probs and entropy


def test_token_logprobs_hand_and_reference():
    logits = torch.tensor([[[0.0, LN(3.0)]]])  # probabilities 1/4, 3/4
    assert token_logprobs(logits, torch.tensor([[1]])).item() == pytest.approx(LN(0.75))
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=gen, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 11, (3, 4), generator=gen)
    out = token_logprobs(logits, tokens)
    ref = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    torch.testing.assert_close(out, ref)
    (g_out,) = torch.autograd.grad(out.sum(), logits)
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g_out, g_ref)


def test_entropy_hand_and_loop_reference():
    assert entropy_from_logits(torch.zeros(1, 1, 4)).item() == pytest.approx(LN(4))
    peaked = entropy_from_logits(torch.tensor([[[0.0, 100.0]]]))
    assert peaked.item() == pytest.approx(0.0, abs=1e-6)
    gen = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(2, 3, 7, generator=gen, dtype=torch.float64)
    out = entropy_from_logits(logits)
    assert out.shape == (2, 3)
    for i in range(2):
        for t in range(3):
            z = logits[i, t].tolist()
            total = sum(math.exp(v) for v in z)
            ref = -sum(math.exp(v) / total * (v - math.log(total)) for v in z)
            assert out[i, t].item() == pytest.approx(ref)
