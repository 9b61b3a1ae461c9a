"""Tests for the policy-loss zoo of rl4lrm.losses: dual_clip, gspo, cispo and importance weights.

Each loss gets a hand-computed case, a pure-Python per-token reference reduced with every
aggregation's weights, its defining gradient property (on-policy equality with ``vanilla_pg``,
GSPO's shared sequence ratio, CISPO's gradient beyond the band, dual-clip's floor), robustness to
garbage on padding, and its argument checks. ``truncated_is_weights`` and the shared
``is_weights`` argument are checked the same way.
"""

import math

import pytest
import torch

from rl4lrm.aggregation import AGGREGATIONS, aggregation_denominators
from rl4lrm.losses import (
    POLICY_LOSSES,
    cispo,
    dual_clip,
    gspo,
    ppo_clip,
    truncated_is_weights,
    vanilla_pg,
)

LN = math.log
NEW_LOSSES = ("dual_clip", "gspo", "cispo")


# ---------------------------------------------------------------- helpers and references


def _random_batch(seed, n=6, t=5):
    """float64 logprobs, old_logprobs, per-token advantages and a mask with an empty and a one-token row."""
    gen = torch.Generator().manual_seed(seed)
    logprobs = -2 * torch.rand(n, t, generator=gen, dtype=torch.float64)
    old_logprobs = logprobs + 0.4 * torch.randn(n, t, generator=gen, dtype=torch.float64)
    lengths = torch.randint(0, t + 1, (n,), generator=gen)
    lengths[0], lengths[1] = 0, 1
    mask = (torch.arange(t)[None, :] < lengths[:, None]).double()
    advantages = torch.randn(n, t, generator=gen, dtype=torch.float64) * mask
    return logprobs, old_logprobs, advantages, mask


def _ratio(lp, old):
    return math.exp(min(max(lp - old, -20.0), 20.0))


def _clip(x, clip_low, clip_high):
    return min(max(x, 1 - clip_low), 1 + clip_high)


def _ppo_token(r, a, clip_low, clip_high):
    return -min(r * a, _clip(r, clip_low, clip_high) * a)


def _ref_tokens(name, lp, old, adv, mask, clip_low=0.2, clip_high=0.2, dual_clip_c=3.0):
    """Per-token loss of ``name`` as nested lists (0 on padding) and the list of per-valid-token clip flags."""
    rows, flags = [], []
    for lp_row, old_row, adv_row, m_row in zip(lp.tolist(), old.tolist(), adv.tolist(), mask.tolist()):
        valid = [j for j, m in enumerate(m_row) if m]
        seq_ratio = _ratio(sum(lp_row[j] - old_row[j] for j in valid) / max(len(valid), 1), 0.0)
        row = [0.0] * len(m_row)
        for j in valid:
            r, a = _ratio(lp_row[j], old_row[j]), adv_row[j]
            if name == "vanilla_pg":
                row[j], flag = -a * lp_row[j], False
            elif name == "cispo":
                w = _clip(r, clip_low, clip_high)
                row[j], flag = -w * a * lp_row[j], w != r
            else:
                r = seq_ratio if name == "gspo" else r
                row[j], flag = _ppo_token(r, a, clip_low, clip_high), _clip(r, clip_low, clip_high) * a < r * a
                if name == "dual_clip" and a < 0:
                    row[j] = min(row[j], -dual_clip_c * a)
            flags.append(flag)
        rows.append(row)
    return rows, flags


def _reduce(rows, mask, mode, max_len=None, weights=None):
    """sum_t loss_t * agg_weight_t (* is-weight_t) over valid tokens, in pure Python."""
    agg = aggregation_denominators(mask, mode, max_len).tolist()
    is_w = weights.tolist() if weights is not None else [[1.0] * len(r) for r in rows]
    return sum(
        x * g * w for xr, gr, wr, mr in zip(rows, agg, is_w, mask.tolist()) for x, g, w, m in zip(xr, gr, wr, mr) if m
    )


def _grad(name, logprobs, old_logprobs, advantages, mask, **kwargs):
    lp = logprobs.clone().requires_grad_(True)
    loss, metrics = POLICY_LOSSES.get(name)(lp, old_logprobs, advantages, mask, **kwargs)
    loss.backward()
    return loss, lp.grad, metrics


# ---------------------------------------------------------------- hand-computed examples


def test_dual_clip_hand_example():
    # (ratio, A): (5, -1) PPO keeps -5*-1 = 5, capped at c|A| = 3; (0.5, -1): -min(-0.5, -0.8) = 0.8;
    #             (1.5, +1): -min(1.5, 1.2) = -1.2; (1, -2): 2, below its cap 6
    ratios = torch.tensor([[5.0, 0.5], [1.5, 1.0]], dtype=torch.float64)
    advantages = torch.tensor([[-1.0, -1.0], [1.0, -2.0]], dtype=torch.float64)
    mask = torch.ones(2, 2, dtype=torch.float64)
    loss, grad, metrics = _grad("dual_clip", ratios.log(), torch.zeros_like(ratios), advantages, mask)
    assert loss.item() == pytest.approx((3 + 0.8 - 1.2 + 2) / 4)  # 1.15; ppo_clip gives (5 + 0.8 - 1.2 + 2)/4
    assert metrics["clip/frac"] == 0.5  # (0.5, -1) and (1.5, +1)
    assert metrics["clip/frac_dual"] == 0.25
    # capped and clipped tokens: no gradient; (1, -2): -ratio * A / 4 = 0.5
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0], [0.0, 0.5]], dtype=torch.float64))


def test_gspo_hand_example():
    # row 0: token log-ratios [ln 4, 0] -> s = exp(ln 4 / 2) = 2, A = +1 -> -min(2, 1.2) = -1.2 per token (clipped)
    # row 1: [ln 1.21, 0] -> s = 1.1 (inside the band), A = -1 -> -min(-1.1, -1.1) = 1.1 per token
    log_ratio = torch.tensor([[LN(4.0), 0.0], [LN(1.21), 0.0]], dtype=torch.float64)
    old = torch.tensor([[-1.0, -2.0], [-0.5, -3.0]], dtype=torch.float64)
    advantages = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    mask = torch.ones(2, 2, dtype=torch.float64)
    loss, grad, metrics = _grad(
        "gspo", old + log_ratio, old, advantages, mask, aggregation="token_mean", clip_low=0.2, clip_high=0.2
    )
    assert loss.item() == pytest.approx((-1.2 * 2 + 1.1 * 2) / 4)  # -0.05
    assert metrics["clip/frac"] == 0.5  # both tokens of the clipped sequence
    # row 0 clipped as a whole (its second token's own ratio is 1); row 1: d(-s_t A)/d lp_t = s * 1 / 4 = 0.275
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.0], [0.275, 0.275]], dtype=torch.float64))


def test_cispo_hand_example():
    # token 0: lp -1, ratio 2 -> weight min(2, 1.28) = 1.28, A = +1: -1.28 * 1 * -1 = 1.28
    # token 1: lp -2, ratio 0.5 -> weight 0.5 (clip_low = 1: no lower bound), A = -1: -0.5 * -1 * -2 = -1
    logprobs = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
    old = logprobs - torch.tensor([[LN(2.0), LN(0.5)]], dtype=torch.float64)
    advantages = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    loss, grad, metrics = _grad("cispo", logprobs, old, advantages, torch.ones(1, 2, dtype=torch.float64))
    assert loss.item() == pytest.approx((1.28 - 1.0) / 2)  # 0.14
    assert metrics["clip/frac"] == 0.5
    # gradient -weight * A / 2 on both tokens, including the clipped one
    torch.testing.assert_close(grad, torch.tensor([[-0.64, 0.25]], dtype=torch.float64))


def test_truncated_is_weights_hand_example():
    behaviour = torch.zeros(2, 3)
    old = torch.tensor([[LN(3.0), LN(0.5), LN(1.5)], [LN(1.2), 7.0, -7.0]])  # row 1: one token, then garbage
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    weights, metrics = truncated_is_weights(old, behaviour, mask, cap=2.0)
    # min(pi_old / mu, 2) = [2 (truncated from 3), 0.5, 1.5], [1.2, 0, 0]
    torch.testing.assert_close(weights, torch.tensor([[2.0, 0.5, 1.5], [1.2, 0.0, 0.0]]))
    assert metrics["is/frac_truncated"] == pytest.approx(1 / 4)
    assert metrics["is/mean"] == pytest.approx((2 + 0.5 + 1.5 + 1.2) / 4)
    k3 = [r - 1 - LN(r) for r in (3.0, 0.5, 1.5, 1.2)]  # r - 1 - log r per token: >= 0, mean KL(mu || pi_old)
    assert metrics["is/kl"] == pytest.approx(sum(k3) / 4)
    assert all(isinstance(v, float) for v in metrics.values())
    assert not weights.requires_grad


@pytest.mark.parametrize("seed", [0, 1])
def test_truncated_is_weights_matches_loop_reference(seed):
    _, old, _, mask = _random_batch(seed)
    behaviour = old + 0.5 * torch.randn(old.shape, generator=torch.Generator().manual_seed(seed), dtype=old.dtype)
    for cap in (1.0, 1.5, 3.0):
        weights, metrics = truncated_is_weights(old, behaviour, mask, cap=cap)
        ref = [
            [min(_ratio(o, b), cap) if m else 0.0 for o, b, m in zip(orow, brow, mrow)]
            for orow, brow, mrow in zip(old.tolist(), behaviour.tolist(), mask.tolist())
        ]
        torch.testing.assert_close(weights, torch.tensor(ref, dtype=old.dtype))
        raw = [
            _ratio(o, b)
            for orow, brow, mrow in zip(old.tolist(), behaviour.tolist(), mask.tolist())
            for o, b, m in zip(orow, brow, mrow)
            if m
        ]
        assert metrics["is/frac_truncated"] == pytest.approx(sum(r > cap for r in raw) / len(raw))


def test_truncated_is_weights_rejects_cap_below_one():
    with pytest.raises(ValueError, match="must be >= 1, got 0.5"):
        truncated_is_weights(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1), cap=0.5)


# ---------------------------------------------------------------- loop references


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("dual_clip", {"clip_low": 0.2, "clip_high": 0.2, "dual_clip_c": 3.0}),
        ("dual_clip", {"clip_low": 0.2, "clip_high": 0.28, "dual_clip_c": 1.2}),  # a low cap, so it triggers often
        ("gspo", {"clip_low": 0.2, "clip_high": 0.2}),
        ("gspo", {"clip_low": 3e-4, "clip_high": 4e-4}),  # the paper's band
        ("cispo", {"clip_low": 1.0, "clip_high": 0.28}),
        ("cispo", {"clip_low": 0.2, "clip_high": 0.2}),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_loop_reference(name, kwargs, mode, seed):
    logprobs, old_logprobs, advantages, mask = _random_batch(seed)
    rows, flags = _ref_tokens(name, logprobs, old_logprobs, advantages, mask, **kwargs)
    for max_len in (None, 7):
        loss, metrics = POLICY_LOSSES.get(name)(
            logprobs, old_logprobs, advantages, mask, aggregation=mode, max_len=max_len, **kwargs
        )
        assert loss.item() == pytest.approx(_reduce(rows, mask, mode, max_len))
        assert metrics["clip/frac"] == pytest.approx(sum(flags) / len(flags))


# ---------------------------------------------------------------- gradient identities


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("name", NEW_LOSSES)
def test_on_policy_gradient_equals_vanilla_pg(name, mode):
    logprobs, _, advantages, mask = _random_batch(seed=3)
    old = logprobs.detach().clone()
    _, grad, _ = _grad(name, logprobs, old, advantages, mask, aggregation=mode)  # each loss's default band
    _, grad_pg, _ = _grad("vanilla_pg", logprobs, old, advantages, mask, aggregation=mode)
    torch.testing.assert_close(grad, grad_pg)
    assert grad_pg.abs().sum() > 0


def test_gspo_ratio_is_shared_by_the_tokens_of_a_row():
    # both rows have mean log-ratio 0.05; row 0's token ratios exp(0.35), exp(-0.25) differ, row 1's do not
    log_ratio = torch.tensor([[0.35, -0.25], [0.05, 0.05]], dtype=torch.float64)
    old = torch.tensor([[-1.0, -2.0], [-3.0, -0.5]], dtype=torch.float64)
    advantages, mask = torch.ones(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    kwargs = {"aggregation": "token_mean", "clip_low": 0.2, "clip_high": 0.2}
    loss, grad, metrics = _grad("gspo", old + log_ratio, old, advantages, mask, **kwargs)
    s = math.exp(0.05)
    assert loss.item() == pytest.approx(-s)
    torch.testing.assert_close(grad, torch.full((2, 2), -s / 4, dtype=torch.float64))  # -s * A / 4 everywhere
    assert metrics["clip/frac"] == 0.0
    # per-token PPO sees exp(0.35) > 1.2 and cuts that token's gradient
    _, grad_ppo, _ = _grad("ppo_clip", old + log_ratio, old, advantages, mask, **kwargs)
    assert grad_ppo[0, 0] == 0 and not torch.equal(grad_ppo[0], grad_ppo[1])


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_cispo_keeps_gradient_where_ppo_clips(mode):
    # token 0: ratio 5, A = +1 (above the band); token 1: ratio 0.1, A = -1 (below it, clip_low = 0.2)
    logprobs = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64)
    old = logprobs - torch.tensor([[LN(5.0), LN(0.1), 0.0]], dtype=torch.float64)
    advantages, mask = torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64)
    kwargs = {"aggregation": mode, "clip_low": 0.2, "clip_high": 0.28}
    _, grad_ppo, _ = _grad("ppo_clip", logprobs, old, advantages, mask, **kwargs)
    _, grad, _ = _grad("cispo", logprobs, old, advantages, mask, **kwargs)
    w = aggregation_denominators(mask, mode)
    assert grad_ppo[0, 0] == 0 and grad_ppo[0, 1] == 0
    expected = -torch.tensor([[1.28 * 1.0, 0.8 * -1.0, 1.0 * 0.5]], dtype=torch.float64) * w  # -sg[weight] * A * w
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_dual_clip_floor_has_no_gradient(mode):
    logprobs, old, advantages, mask = _random_batch(seed=5, n=3, t=3)
    mask[0] = 1.0
    old[0, 1], advantages[0, 1] = logprobs[0, 1] - LN(10.0), -0.7  # ratio 10 > c = 3, A < 0
    loss, grad, metrics = _grad("dual_clip", logprobs, old, advantages, mask, aggregation=mode, dual_clip_c=3.0)
    loss_ppo, grad_ppo, _ = _grad("ppo_clip", logprobs, old, advantages, mask, aggregation=mode)
    w = aggregation_denominators(mask, mode)[0, 1].item()
    assert grad[0, 1] == 0 and grad_ppo[0, 1] != 0
    assert metrics["clip/frac_dual"] == pytest.approx(1 / mask.sum().item())  # the only capped token
    # only that token differs: its PPO loss 10 |A| w is replaced by c |A| w = 3 |A| w
    assert loss.item() == pytest.approx(loss_ppo.item() - 10.0 * 0.7 * w + 3.0 * 0.7 * w)
    others = torch.ones_like(mask, dtype=torch.bool)
    others[0, 1] = False
    torch.testing.assert_close(grad[others], grad_ppo[others])


# ---------------------------------------------------------------- importance weights


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("name", ["vanilla_pg", "ppo_clip", "cispo", "dual_clip", "gspo"])
def test_is_weights_multiply_the_per_token_loss(name, mode):
    logprobs, old, advantages, mask = _random_batch(seed=9)
    gen = torch.Generator().manual_seed(1)
    weights = (2 * torch.rand(mask.shape, generator=gen, dtype=torch.float64)).requires_grad_(True)
    kwargs = {"aggregation": mode, "clip_low": 0.2, "clip_high": 0.2}
    loss, grad, _ = _grad(name, logprobs, old, advantages, mask, is_weights=weights, **kwargs)
    rows, _ = _ref_tokens(name, logprobs, old, advantages, mask, clip_low=0.2, clip_high=0.2)
    assert loss.item() == pytest.approx(_reduce(rows, mask, mode, weights=weights.detach()))
    assert weights.grad is None  # detached: no gradient flows into the weights
    # every loss is positively homogeneous in A per token, so w * loss(A) = loss(w * A) for w >= 0
    loss_scaled, grad_scaled, _ = _grad(name, logprobs, old, advantages * weights.detach(), mask, **kwargs)
    assert loss.item() == pytest.approx(loss_scaled.item())
    torch.testing.assert_close(grad, grad_scaled)


# ---------------------------------------------------------------- padding, empty rows, metrics


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("garbage", [-math.inf, 1e4])
@pytest.mark.parametrize("name", NEW_LOSSES)
def test_garbage_on_padding_is_ignored(name, garbage, mode):
    logprobs, old, advantages, mask = _random_batch(seed=11)
    clean_loss, clean_grad, _ = _grad(name, logprobs, old, advantages, mask, aggregation=mode)
    dirty = logprobs.masked_fill(mask == 0, garbage)
    loss, grad, metrics = _grad(name, dirty, old, advantages, mask, aggregation=mode)
    assert torch.isfinite(loss) and all(math.isfinite(v) for v in metrics.values())
    assert torch.isfinite(grad).all() and (grad[mask == 0] == 0).all()
    assert loss.item() == pytest.approx(clean_loss.item())
    torch.testing.assert_close(grad, clean_grad)


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("name", NEW_LOSSES)
def test_fully_masked_batch_is_zero(name, mode):
    logprobs, old, advantages, _ = _random_batch(seed=2, n=3, t=4)
    loss, grad, metrics = _grad(
        name, logprobs, old, advantages, torch.zeros(3, 4, dtype=torch.float64), aggregation=mode
    )
    assert loss.item() == 0.0 and (grad == 0).all()
    assert all(math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_metrics_are_plain_floats(name):
    logprobs, old, advantages, mask = _random_batch(seed=4)
    _, metrics = POLICY_LOSSES.get(name)(logprobs, old, advantages, mask)
    assert {"loss/policy", "clip/frac", "ratio/mean", "ratio/max", "kl/old_approx"} <= set(metrics)
    assert all(type(v) is float for v in metrics.values())
    assert ("clip/frac_dual" in metrics) == (name == "dual_clip")


# ---------------------------------------------------------------- argument checks and registry


@pytest.mark.parametrize("c", [1.0, 0.5])
def test_dual_clip_c_must_exceed_one(c):
    args = (torch.zeros(1, 1), torch.zeros(1, 1), -torch.ones(1, 1), torch.ones(1, 1))
    with pytest.raises(ValueError, match=f"dual_clip_c must be > 1, got {c}"):
        dual_clip(*args, dual_clip_c=c)


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_clip_low_range(name):
    fn = POLICY_LOSSES.get(name)
    args = (torch.zeros(1, 2), torch.zeros(1, 2), -torch.ones(1, 2), torch.ones(1, 2))
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match=rf"clip_low must be in \[0, 1\].*got {bad}"):
            fn(*args, clip_low=bad)
    with pytest.raises(ValueError, match="clip_high must be >= 0, got -0.1"):
        fn(*args, clip_high=-0.1)
    # clip_low = 1: no lower bound, so a collapsed ratio with A < 0 is not clipped
    logprobs = torch.tensor([[LN(0.01), LN(0.02)]])
    loss, metrics = fn(logprobs, torch.zeros(1, 2), -torch.ones(1, 2), torch.ones(1, 2), clip_low=1.0)
    assert torch.isfinite(loss) and metrics["clip/frac"] == 0.0


def test_registry_knows_every_loss():
    assert {"vanilla_pg", "ppo_clip", "dual_clip", "gspo", "cispo"} <= set(POLICY_LOSSES.names())
    assert POLICY_LOSSES.get("dual_clip") is dual_clip and POLICY_LOSSES.get("gspo") is gspo
    assert POLICY_LOSSES.get("cispo") is cispo
    assert POLICY_LOSSES.get("ppo_clip") is ppo_clip and POLICY_LOSSES.get("vanilla_pg") is vanilla_pg
