"""Chapter 07's pieces: the spurious rewards, the new zoo priors, the clipping-bias toy, the priors study, its
panel and its exercise checkers."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rl4lrm.evaluation import sample_and_verify  # noqa: E402
from rl4lrm.experiments.clipping_bias import (  # noqa: E402
    check_clipped_surrogate,
    check_well_formed_reward,
    clipping_bias,
)
from rl4lrm.experiments.priors import (  # noqa: E402
    PRIORS,
    REWARD_ARMS,
    STUDY_CONFIG,
    gains_table,
    prior_profile,
    priors_study,
)
from rl4lrm.models.tiny import count_parameters  # noqa: E402
from rl4lrm.models.zoo import ZOO, load_base  # noqa: E402
from rl4lrm.rewards import REWARDS, RewardContext, RewardMix, compute_reward  # noqa: E402
from rl4lrm.rollout import rollout  # noqa: E402
from rl4lrm.tasks import get_task  # noqa: E402
from rl4lrm.trainer import TrainConfig  # noqa: E402

SMALL = dict(prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=2, eval_every=1, device="cpu")
TASK = get_task("addition", digits=2)


# ---------------------------------------------------------------- rewards


def test_random_reward_ignores_the_completions_and_follows_its_probability():
    problems = TASK.problems("test", 4000, seed=0)
    torch.manual_seed(0)
    right = compute_reward("random", problems, [p.answer for p in problems], RewardContext())
    torch.manual_seed(0)
    wrong = compute_reward("random", problems, ["x"] * len(problems), RewardContext())
    assert torch.equal(right, wrong)  # the same draws whatever the text
    assert set(right.unique().tolist()) <= {0.0, 1.0} and abs(right.mean().item() - 0.5) < 0.03
    rare = compute_reward("random", problems, ["1"] * len(problems), RewardContext(), prob=0.1)
    assert abs(rare.mean().item() - 0.1) < 0.02
    assert compute_reward("random", problems[:3], ["1"] * 3, RewardContext(), prob=0.0).sum() == 0
    with pytest.raises(ValueError, match="prob must be in"):
        compute_reward("random", problems[:2], ["1", "2"], RewardContext(), prob=1.5)


def test_well_formed_rewards_a_parsable_answer_right_or_wrong():
    problem = TASK.problems("test", 1, seed=0)[0]
    completions = [problem.answer, "7", "x", "", "4 2"]
    got = compute_reward("well_formed", [problem] * 5, completions, RewardContext(task=TASK))
    assert got.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="needs RewardContext fields"):
        compute_reward("well_formed", [problem], ["1"], RewardContext())


def test_reward_arms_are_valid_mixes_and_incorrect_reverses_the_verifier():
    assert {"random", "well_formed"} <= set(REWARDS.names())
    for spec in REWARD_ARMS.values():
        RewardMix(spec)
    problem = TASK.problems("test", 1, seed=0)[0]
    total, _, _ = RewardMix(REWARD_ARMS["incorrect"])(
        [problem] * 2, [problem.answer, "0"], RewardContext(task=TASK, group_size=2)
    )
    assert total.tolist() == [-1.0, 0.0]


# ---------------------------------------------------------------- the zoo's priors


def test_the_new_priors_differ_from_addition_in_one_axis():
    ref = ZOO["addition"]
    nano, qwen = ZOO["addition-nano"], ZOO["addition-qwen2"]
    assert (nano.sft, nano.task_kwargs, nano.arch, nano.model_preset) == (ref.sft, ref.task_kwargs, "llama", "nano")
    assert (qwen.sft, qwen.task_kwargs, qwen.arch, qwen.model_preset) == (ref.sft, ref.task_kwargs, "qwen2", "micro")
    mid, instruct = ZOO["addition-mid"], ZOO["addition-instruct"]
    assert mid.sft == dataclasses.replace(ref.sft, traces=0.5) and ref.sft.traces == 0  # the data mix, nothing else
    assert (mid.task_kwargs, mid.arch, mid.model_preset, mid.init) == (ref.task_kwargs, "llama", "micro", None)
    assert instruct.init == "addition" and instruct.sft.noise == 0 and instruct.sft.steps < ref.sft.steps // 4
    sizes = {}
    for name in PRIORS:
        model, _, _ = load_base(name)
        sizes[name] = (model.config.model_type, count_parameters(model))
    assert sizes["addition-nano"][1] * 4 < sizes["addition"][1]
    assert sizes["addition-qwen2"][0] == "qwen2" and sizes["addition"][0] == "llama"
    assert abs(sizes["addition-qwen2"][1] - sizes["addition"][1]) < 0.01 * sizes["addition"][1]  # q/k/v biases only


def test_worked_solutions_write_column_addition_with_its_carries():
    problem = TASK.problems("train", 1, seed=0)[0]
    prompt, text = TASK.worked(problem)
    assert prompt == problem.prompt[:-1] + ":" and text.endswith(";" + problem.answer)
    from rl4lrm.tasks.base import Problem

    by_hand = Problem("", "57+68=", "125", {"a": 57, "b": 68}, "57+68")
    assert TASK.worked(by_hand) == ("57+68:", "7+8=15;5+6+1=12;125")
    short = Problem("", "5+68=", "73", {"a": 5, "b": 68}, "5+68")
    assert TASK.worked(short) == ("5+68:", "5+8=13;0+6+1=7;73")
    for p in TASK.problems("train", 50, seed=1):  # every step is right and the answer is the sum
        *steps, answer = TASK.worked(p)[1].split(";")
        sums = [step.split("=") for step in steps]
        assert answer == p.answer and all(sum(map(int, lhs.split("+"))) == int(rhs) for lhs, rhs in sums)
    with pytest.raises(NotImplementedError, match="countdown"):
        get_task("countdown").worked(get_task("countdown").problems("train", 1)[0])


def test_sft_traces_mix_worked_solutions_into_the_data(monkeypatch):
    import rl4lrm.models.sft as sft

    seen, real = [], sft.sft_example

    def spy(tokenizer, prompt, answer):
        seen.append(prompt)
        return real(tokenizer, prompt, answer)

    monkeypatch.setattr(sft, "sft_example", spy)
    model, tokenizer, _ = load_base("addition-nano")
    config = sft.SFTConfig(steps=1, batch_size=2, train_problems=200, warmup=0, traces=0.5, device="cpu")
    sft.train_sft(model, tokenizer, TASK, config, progress=False)
    traced = sum(p.endswith(":") for p in seen[200:])  # the first 200 are the direct examples, then the traces
    assert len(seen) == 200 + traced and 60 < traced < 140
    with pytest.raises(ValueError, match="traces"):
        sft.SFTConfig(traces=1.5)


def test_the_study_priors_load_and_answer_greedily_in_a_sane_band():
    # mid-training keeps the plain prompt a direct answer and learns to write traces after "a+b:"
    problems = TASK.problems("test", 32, seed=0)
    bands = {"addition-mid": (0.6, 1.0), "addition-instruct": (0.85, 1.0)}
    for name, (low, high) in bands.items():
        model, tokenizer, _ = load_base(name)
        greedy = sample_and_verify(model, tokenizer, TASK, problems, 1, temperature=1e-4, max_new_tokens=8)
        assert low <= sum(greedy["correct"]) / len(problems) <= high, name
        assert sum(greedy["well_formed"]) >= 30, name
    model, tokenizer, _ = load_base("addition-mid")
    prompt = TASK.worked(problems[0])[0]
    batch = rollout(model, tokenizer, [prompt], 1, 24, 1e-4)
    assert batch.completions[0].count(";") == 2, batch.completions[0]


def test_prior_profile_measures_each_base_model():
    profile = prior_profile(["addition-nano"], n_problems=16, n_samples=4)
    row = profile.iloc[0]
    assert row["base"] == "addition-nano" and row["arch"] == "llama"
    assert 0 <= row["pass@1"] <= row["pass@4"] <= 1 and 0 <= row["greedy acc"] <= 1
    assert row["mode gap"] == pytest.approx(row["greedy acc"] - row["pass@1"])
    with pytest.raises(ValueError, match="unknown base models"):
        prior_profile(["gpt-5"])


# ---------------------------------------------------------------- the clipping-bias toy and the study


def test_clipping_bias_keeps_probabilities_and_the_clip_damps_the_random_walk():
    probs = [0.6, 0.3, 0.1]
    clipped = clipping_bias(probs, clip=0.2, trials=400, steps=5)
    free = clipping_bias(probs, clip=None, trials=400, steps=5)
    assert clipped.sum().item() == pytest.approx(1.0, abs=1e-5)
    # without a clip, off-policy updates on a random reward spread the mass faster (it can fail: lr=0 does not)
    assert abs(clipped[0].item() - 0.6) < abs(free[0].item() - 0.6)
    still = clipping_bias(probs, clip=None, lr=0.0, trials=50, steps=2)
    torch.testing.assert_close(still, torch.tensor(probs))
    with pytest.raises(ValueError, match="clip must be in"):
        clipping_bias(probs, clip=1.5)


def _fake_runs():
    rows = []
    for base, reward, gains in [("a", "true", (5, 6, 7)), ("a", "random", (-1, -2, -3)), ("b", "true", (1, -1, 2))]:
        for seed, gain in enumerate(gains):
            rows += [
                {"base": base, "reward": reward, "seed": seed, "step": 0, "acc/pass@1": 0.4},
                {"base": base, "reward": reward, "seed": seed, "step": 5, "acc/pass@1": None},
                {"base": base, "reward": reward, "seed": seed, "step": 10, "acc/pass@1": 0.4 + gain / 100},
            ]
    return pd.DataFrame(rows)


def test_gains_table_reads_each_seed_and_gives_verdicts():
    table = gains_table(_fake_runs()).set_index(["base", "reward"])
    assert table.loc[("a", "true"), "gain (points) mean"] == pytest.approx(6.0)
    assert table.loc[("a", "true"), "verdict"] == "up"
    assert table.loc[("a", "random"), "verdict"] == "down"
    assert table.loc[("b", "true"), "verdict"] == "no clear effect"
    assert table.loc[("a", "true"), "base pass@1"] == pytest.approx(0.4)
    one = gains_table(_fake_runs().query("seed == 0")).set_index(["base", "reward"])
    assert one.loc[("a", "true"), "verdict"] == "1 seed"


def test_priors_study_trains_each_base_with_each_reward():
    runs = priors_study(["addition-nano", "addition"], ["true", "random"], progress=False, steps=2, **SMALL)
    assert set(runs["base"]) == {"addition-nano", "addition"} and set(runs["reward"]) == {"true", "random"}
    assert set(runs["method"]) == {f"{b}, {r}" for b in ("addition-nano", "addition") for r in ("true", "random")}
    assert runs["acc/pass@1"].notna().any() and len(gains_table(runs)) == 4
    with pytest.raises(ValueError, match="unknown rewards"):
        priors_study(["addition"], ["lottery"])
    TrainConfig.build(task="addition", **STUDY_CONFIG, rewards=REWARD_ARMS["random"])  # the shared settings build


@pytest.mark.slow
def test_true_reward_beats_the_random_reward_on_addition():
    # the smoke test that can fail: the verifier's reward lifts held-out accuracy above the random reward's
    runs = priors_study(["addition"], ["true", "random"], progress=False, steps=20, eval_every=20, eval_problems=64)
    table = gains_table(runs).set_index("reward")
    assert table.loc["true", "pass@1 mean"] > table.loc["random", "pass@1 mean"] + 0.05


# ---------------------------------------------------------------- panel and exercises


def test_panel_reads_its_controls_when_run(monkeypatch):
    import rl4lrm.viz.priors as priors_viz

    calls = []

    def fake_study(bases, rewards, seeds, **kw):
        calls.append((tuple(bases), tuple(rewards), seeds, kw["steps"]))
        return pd.DataFrame(
            [
                {
                    "method": f"{b}, {rewards[0]}",
                    "base": b,
                    "reward": rewards[0],
                    "seed": seeds[0],
                    "step": s,
                    "acc/pass@1": p,
                }
                for b in bases
                for s, p in [(0, 0.4), (10, 0.6)]
            ]
        )

    monkeypatch.setattr(priors_viz, "priors_study", fake_study)
    panel = priors_viz.PriorsPanel(bases=("addition",), steps=40, eval_problems=8)
    panel.bases.value, panel.reward.value, panel.steps.value, panel.seed.value = (
        ("addition-nano", "addition-qwen2"),
        "random",
        20,
        2,
    )
    panel.button.click()
    assert calls[0] == (("addition-nano", "addition-qwen2"), ("random",), (2,), 20)
    assert "0.40 → 0.60" in panel.status.value
    with pytest.raises(ValueError, match="bases must be"):
        priors_viz.PriorsPanel(bases=("chess",))
    with pytest.raises(ValueError, match="reward must be one of"):
        priors_viz.PriorsPanel(reward="lottery")


def test_exercise_checkers_accept_the_right_answer_and_reject_a_wrong_one(capsys):
    assert check_clipped_surrogate(lambda r, a, c: torch.minimum(r * a, r.clamp(1 - c, 1 + c) * a))
    assert not check_clipped_surrogate(lambda r, a, c: r.clamp(1 - c, 1 + c) * a)  # forgets the min
    assert check_well_formed_reward(lambda text: float(TASK.verify(TASK.problems("test", 1)[0], text).well_formed))
    assert not check_well_formed_reward(lambda text: float(text.strip().isdigit()))  # forgets signs
    out = capsys.readouterr().out
    assert "✓" in out and "✗" in out
