"""RL for scientific discovery: the law-finding task, its verifier, the novelty measures and a smoke run."""

from __future__ import annotations

import random

import matplotlib
import pandas as pd
import pytest
import torch

from rl4lrm.experiments.discovery import discoveries, discovery_profile, sample_laws, summary, train_discovery
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rewards import REWARDS, RewardContext
from rl4lrm.tasks import get_task
from rl4lrm.tasks.discovery import HIDDEN_X, Discovery, evaluate_at, law_text, substitute

matplotlib.use("Agg")


def problem_for(task: Discovery, law: str):
    for p in task.problems("train", 400) + task.problems("test", 400):
        if p.meta["law"] == law:
            return p
    raise AssertionError(f"no problem with law {law}")


def test_law_text_and_substitution():
    assert [law_text(2, 5), law_text(1, 5), law_text(2, 0), law_text(1, 0)] == ["2*x+5", "x+5", "2*x", "x"]
    assert substitute("2*x+1", 3) == "2*(3)+1"
    assert evaluate_at("x*x+1", 4) == 17 and evaluate_at("(x+1)/2", 2) == pytest.approx(1.5)


def test_verifier_checks_held_out_points_and_equivalent_forms():
    task = Discovery(family="seen")
    p = task.sample(random.Random(0))
    a, b = p.meta["a"], p.meta["b"]
    assert task.verify(p, p.answer).correct
    assert task.verify(p, f"{b}+x*{a}").correct  # any form of the law counts
    assert task.verify(p, "+".join(["x"] * a) + f"+{b}").correct
    # Passes through the three shown points and misses the held-out ones: rejected.
    x0, x1, x2 = (x for x, _ in p.meta["points"][:3])
    wiggle = f"(x-{x0})*(x-{x1})*(x-{x2})+{p.answer}"
    v = task.verify(p, wiggle)
    assert not v.correct and v.well_formed and "held-out" in v.reason
    assert task.fit(p, wiggle) == 0.5  # the 3 shown points only
    # implicit products, code and junk never evaluate
    for bad in (f"{a}x+{b}", "__import__('os')", "x**2", "", "x+" * 40 + "1"):
        assert not task.verify(p, bad).correct
        assert task.fit(p, bad) == 0.0
    x = p.meta["points"][0][0]  # the error's position is in the substituted text, so that text is shown
    assert f"in '{a}({x})+{b}' (x = {x} substituted)" in task.verify(p, f"{a}x+{b}").reason


def test_fit_counts_points_hit():
    task = Discovery(family="novel")
    p = task.problems("test", 1)[0]
    a, b = p.meta["a"], p.meta["b"]
    assert task.fit(p, p.answer) == 1.0
    # Right intercept, wrong slope: hits only x = 0 (a held-out point).
    assert task.fit(p, law_text(a + 1, b)) == pytest.approx(1 / 6)
    assert task.fit(p, f"{b + 1000}") == 0.0
    assert 0 in HIDDEN_X


def test_families_and_splits_are_disjoint():
    seen, novel = Discovery(family="seen"), Discovery(family="novel")
    corpus = seen.corpus()
    novel_laws = {law_text(a, b) for a, b in novel.laws}
    assert corpus and novel_laws and not corpus & novel_laws
    assert len(corpus) + len(novel_laws) == 9 * 20
    rl = {p.meta["law"] for p in novel.problems("train", 300)}
    held = {p.meta["law"] for p in novel.problems("test", 300)}
    assert rl and held and not rl & held and rl | held <= novel_laws
    assert {p.answer for p in seen.problems("train", 500)} <= corpus
    assert get_task("discovery", family="novel").laws == novel.laws


def test_alphabet_fits_the_char_tokenizer():
    tok = char_tokenizer()
    task = Discovery()
    for p in task.problems("train", 20):
        ids = tok(p.prompt + p.answer, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert set(p.prompt + p.answer) <= set(task.alphabet)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"family": "old"}, "family"),
        ({"max_slope": 0}, "max_slope"),
        ({"max_intercept": 99}, "max_intercept"),
        ({"novel_fraction": 1.0}, "novel_fraction"),
        ({"novel_fraction": "0.3"}, "novel_fraction"),
    ],
)
def test_bad_settings_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Discovery(**kwargs)


def test_profile_by_hand():
    answers = pd.DataFrame(
        {
            "prompt": ["p=", "p=", "q=", "q="],
            "law": ["2*x+1", "2*x+1", "3*x", "3*x"],
            "expression": ["2*x+1", "x+1", "x+x+x", "3*x"],
            "correct": [True, False, True, True],
            "laws": ["RL laws"] * 4,
            "fit": [1.0, 1 / 6, 1.0, 1.0],
            "in_corpus": [False, True, False, True],
        }
    )
    prof = discovery_profile(answers)
    assert prof["solve rate"] == 0.75 and prof["laws solved"] == 1.0
    assert prof["novelty"] == pytest.approx(2 / 3) and prof["novel solve rate"] == 0.5
    assert prof["recall"] == 0.5 and prof["fit"] == pytest.approx((3 + 1 / 6) / 4)
    found = discoveries(answers)
    assert list(found.expression) == ["2*x+1", "x+x+x"]
    assert list(found["share of samples right"]) == [0.5, 1.0]
    none_right = discovery_profile(answers.assign(correct=False))
    assert none_right["solve rate"] == 0.0 and pd.isna(none_right["novelty"])


def test_law_fit_reward_is_registered():
    task = Discovery(family="novel")
    p = task.problems("train", 1)[0]
    fit = REWARDS.get("law_fit")
    out = fit([p, p, p], [p.answer, "1", "junk"], RewardContext(task=task))
    assert torch.allclose(out, torch.tensor([1.0, float(task.fit(p, "1")), 0.0]))
    with pytest.raises(ValueError, match="reward must be one of"):
        train_discovery(steps=1, reward="novelty")


def test_smoke_run_samples_and_summarises():
    model, tokenizer, task, history = train_discovery(
        steps=2, prompts_per_step=4, group_size=4, reward="law_fit", progress=False
    )
    assert len(history) >= 2 and "reward/mean" in history
    problems = task.problems("test", 4)
    answers = sample_laws(model, tokenizer, task, problems, samples=2)
    assert len(answers) == 8 and set(answers.law) <= {p.meta["law"] for p in problems}
    assert not answers.in_corpus[answers.correct].any()  # a right answer on a novel law is never a corpus string

    class Run:
        reward, seed, before, after = "law_fit", 0, answers, answers

    table = summary([Run()])
    assert list(table.stage) == ["base", "after RL"] and set(table["laws"]) == {"evaluation laws"}
    assert "novelty std" in table
    from rl4lrm.viz.discovery import plot_discovery, plot_law

    assert plot_discovery(table) is not None
    assert plot_law(answers, answers.prompt.iloc[0]) is not None
    with pytest.raises(ValueError, match="not in answers"):
        plot_law(answers, "1:1=")
