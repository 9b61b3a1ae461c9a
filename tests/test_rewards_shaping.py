"""Length shaping rewards (length penalty, DAPO's soft overlong punishment, cosine) and group baselines."""

import math
from types import SimpleNamespace

import pytest
import torch

from rl4lrm.advantages import ADVANTAGES
from rl4lrm.rewards import REWARDS, RewardContext, RewardMix, compute_reward
from rl4lrm.rewards.shaping import (
    cosine_schedule,
    group_baseline_view,
    soft_overlong_penalty,
)
from rl4lrm.tasks.addition import Addition

TASK = Addition(2)


def batch(lengths, truncated=None):
    lengths = torch.tensor(lengths, dtype=torch.float32)
    if truncated is None:
        truncated = torch.zeros(len(lengths), dtype=torch.bool)
    return SimpleNamespace(lengths=lengths, truncated=torch.as_tensor(truncated, dtype=torch.bool))


def run(name, lengths, completions=None, truncated=None, ctx_max=20, **params):
    """Scores with ``ctx.max_new_tokens = ctx_max``; ``params`` go to the reward."""
    completions = completions or ["x"] * len(lengths)
    problems = TASK.problems("train", 1, seed=0) * len(completions)
    ctx = RewardContext(max_new_tokens=ctx_max, task=TASK, batch=batch(lengths, truncated))
    return compute_reward(name, problems, completions, ctx, **params)


def test_registered_with_requirements():
    assert REWARDS.get("length_penalty").requires == {"batch"}
    assert REWARDS.get("soft_overlong").requires == {"batch"}
    assert REWARDS.get("cosine_length").requires == {"task", "batch"}
    with pytest.raises(ValueError, match=r"needs RewardContext fields \['batch'\]"):
        compute_reward("soft_overlong", [], [], RewardContext(max_new_tokens=8))


def test_length_penalty():
    assert torch.allclose(run("length_penalty", [0, 5, 20]), torch.tensor([0.0, -0.25, -1.0]))
    assert torch.allclose(run("length_penalty", [5], ctx_max=None, max_new_tokens=10), torch.tensor([-0.5]))
    assert torch.allclose(run("length_penalty", [5], ctx_max=20, max_new_tokens=10), torch.tensor([-0.5]))
    with pytest.raises(ValueError, match=r"max_new_tokens must be an int >= 1 .* got None"):
        run("length_penalty", [5], ctx_max=None)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1 .* got 0"):
        run("length_penalty", [5], max_new_tokens=0)


def test_soft_overlong_boundaries():
    # L_max = 20, L_cache = 4: 0 up to 16 tokens, then (16 - |y|) / 4, then -1 beyond 20
    lengths = [0, 15, 16, 17, 18, 19, 20, 21, 100]
    expected = [0, 0, 0, -0.25, -0.5, -0.75, -1.0, -1.0, -1.0]
    assert torch.allclose(run("soft_overlong", lengths, cache_len=4), torch.tensor(expected))
    assert torch.allclose(soft_overlong_penalty(torch.tensor(lengths), 20, 4), torch.tensor(expected))
    # default L_cache = L_max // 5 = 4 with L_max from ctx.max_new_tokens; explicit max_len wins
    assert torch.allclose(run("soft_overlong", lengths), torch.tensor(expected))
    assert run("soft_overlong", [10, 30], max_len=40, cache_len=20).tolist() == [0.0, -0.5]
    # cache_len == max_len: the ramp starts at zero length
    assert torch.allclose(run("soft_overlong", [0, 10, 20], cache_len=20), torch.tensor([0.0, -0.5, -1.0]))


def test_soft_overlong_reference_loop_random():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(0, 60, (200,), generator=g)
    for max_len, cache in [(50, 10), (50, 1), (8, 8)]:
        ref = []
        for y in lengths.tolist():
            if y <= max_len - cache:
                ref.append(0.0)
            elif y <= max_len:
                ref.append((max_len - cache - y) / cache)
            else:
                ref.append(-1.0)
        assert torch.allclose(soft_overlong_penalty(lengths, max_len, cache), torch.tensor(ref))


@pytest.mark.parametrize("cache_len", [0, 21, 2.5, True])
def test_soft_overlong_bad_cache_len(cache_len):
    with pytest.raises(ValueError, match=rf"cache_len must be an int in 1..max_len=20, got {cache_len!r}"):
        run("soft_overlong", [3], cache_len=cache_len)


def test_cosine_length_boundaries():
    problem = TASK.problems("train", 1, seed=0)[0]
    right, wrong = problem.answer, str(int(problem.answer) + 1)
    # L_max = 20: length 0 gives r_*0, length 10 the midpoint, length 20 r_exceed
    got = run("cosine_length", [0, 10, 19, 20, 0, 10, 19, 20], [right] * 4 + [wrong] * 4)
    mid_c, mid_w = (2 + 1) / 2, (-10 + 0) / 2
    end_c = 1 + (2 - 1) * 0.5 * (1 + math.cos(math.pi * 19 / 20))
    end_w = 0 + (-10 - 0) * 0.5 * (1 + math.cos(math.pi * 19 / 20))
    assert torch.allclose(got, torch.tensor([2.0, mid_c, end_c, -10.0, -10.0, mid_w, end_w, -10.0]))
    # shorter correct answers earn more; longer wrong answers are punished less
    assert got[0] > got[1] > got[2] and got[4] < got[5] < got[6]


def test_cosine_length_truncated_and_custom_values():
    problem = TASK.problems("train", 1, seed=0)[0]
    got = run(
        "cosine_length",
        [5, 5],
        [problem.answer] * 2,
        truncated=[False, True],
        max_len=10,
        r_c0=1.0,
        r_cL=0.5,
        r_exceed=-1.0,
    )
    assert torch.allclose(got, torch.tensor([0.75, -1.0]))
    with pytest.raises(ValueError, match="r_w0 must be a finite number, got nan"):
        run("cosine_length", [5], r_w0=float("nan"))


def test_cosine_schedule_reference_loop_random():
    lengths = torch.randint(0, 40, (100,), generator=torch.Generator().manual_seed(1))
    ref = [1.0 + (4.0 - 1.0) * 0.5 * (1 + math.cos(math.pi * min(y, 30) / 30)) for y in lengths.tolist()]
    assert torch.allclose(cosine_schedule(lengths, 30, 4.0, 1.0), torch.tensor(ref))


def test_mix_correct_plus_overlong():
    problem = TASK.problems("train", 1, seed=0)[0]
    completions = [problem.answer, problem.answer, "0"]
    ctx = RewardContext(max_new_tokens=20, task=TASK, batch=batch([3, 18, 20]))
    mix = RewardMix({"correct": 1.0, "soft_overlong": (1.0, {"cache_len": 4}), "length_penalty": 0.1})
    total, parts, _ = mix([problem] * 3, completions, ctx)
    assert parts["soft_overlong"].tolist() == [0.0, -0.5, -1.0]
    assert torch.allclose(total, torch.tensor([1 - 0.015, 1 - 0.5 - 0.09, -1.0 - 0.1]))
    assert mix.requires == {"task", "batch"}


def test_group_baseline_view_prompt_constant_cancels():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    table = group_baseline_view(rewards, group_size=4)
    assert list(table["prompt"]) == [0, 0, 0, 0, 1, 1, 1, 1] and list(table["sample"]) == [0, 1, 2, 3] * 2
    mask = torch.ones(8, 1)
    for est in ("grpo", "rloo"):
        expected = ADVANTAGES.get(est)(rewards, mask, 4)[0][:, 0]
        assert torch.allclose(torch.tensor(table[est].values, dtype=torch.float32), expected)
        assert torch.allclose(
            torch.tensor(table[f"{est}+prompt_shift"].values), torch.tensor(table[est].values), atol=1e-5
        )
        assert not torch.allclose(
            torch.tensor(table[f"{est}+completion_shift"].values), torch.tensor(table[est].values), atol=1e-3
        )


def test_group_baseline_view_random_and_custom_shifts():
    g = torch.Generator().manual_seed(2)
    rewards = torch.rand(12, generator=g)
    table = group_baseline_view(
        rewards,
        3,
        prompt_shift=100 * torch.randn(4, generator=g),
        completion_shift=torch.randn(12, generator=g),
        estimators=("grpo", "rloo", "dr_grpo"),
    )
    for est in ("grpo", "rloo", "dr_grpo"):
        assert torch.allclose(
            torch.tensor(table[f"{est}+prompt_shift"].values), torch.tensor(table[est].values), atol=1e-3
        )
    with pytest.raises(ValueError, match=r"prompt_shift must have shape \(4,\)"):
        group_baseline_view(rewards, 3, prompt_shift=torch.zeros(3))
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        group_baseline_view(rewards, 5)
    with pytest.raises(ValueError, match="unknown advantage estimator 'nope'"):
        group_baseline_view(rewards, 3, estimators=("nope",))
