"""Efficient reasoning: the thinking task, the length-control rewards, budget forcing and the study's tables."""

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from rl4lrm.budget import budget_forcing
from rl4lrm.experiments.efficiency import (
    MAX_NEW_TOKENS,
    METHODS,
    budget_sweep,
    efficiency_runs,
    pareto_front,
    sample_answers,
    summary,
    thinking_profile,
)
from rl4lrm.models.zoo import load_base
from rl4lrm.rewards import REWARDS, RewardContext, RewardMix, compute_reward
from rl4lrm.rewards.efficiency import kimi_length_reward
from rl4lrm.tasks import Problem, ThinkingAddition, get_task, rechecks, thinking, thinks

TASK = ThinkingAddition()  # 2..4 digits


# ------------------------------------------------------------------ the task
def test_problems_answer_at_once_and_worked_solutions_think():
    for p in TASK.problems("train", 50, seed=1):
        a, b, digits = p.meta["a"], p.meta["b"], p.meta["digits"]
        assert p.answer == f"#{a + b}" and len(str(a)) == len(str(b)) == digits and 2 <= digits <= 4
        prompt, text = TASK.worked(p)
        assert prompt == p.prompt  # one prompt, two ways to answer
        passes = text.partition("#")[0].split("|")
        assert text.endswith(f"#{a + b}") and len(passes) in (1, 2) and len(set(passes)) == 1  # a re-check repeats
        assert passes[0].count(";") == digits - 1
        assert TASK.verify(p, text).correct and TASK.verify(p, p.answer).correct
        assert thinks(text) and not thinks(p.answer)


def test_the_worked_solution_by_hand_and_its_recheck():
    p = Problem("What is 57 + 68?", "57+68=", "#125", {"a": 57, "b": 68, "digits": 2}, "57+68")
    assert ThinkingAddition(recheck=0).worked(p) == ("57+68=", "7+8=15;5+6+1=12#125")
    assert ThinkingAddition(recheck=1).worked(p) == ("57+68=", "7+8=15;5+6+1=12|7+8=15;5+6+1=12#125")
    assert rechecks("7+8=15|7+8=15#15") and not rechecks("7+8=15#1|5")  # only the thinking counts
    texts = [TASK.worked(q)[1] for q in TASK.problems("train", 400, seed=0)]
    assert 0.4 < sum(map(rechecks, texts)) / len(texts) < 0.6  # recheck=0.5, by a hash of the key
    assert texts == [TASK.worked(q)[1] for q in TASK.problems("train", 400, seed=0)]  # always the same ones


def test_verify_reads_the_answer_after_the_last_mark():
    p = TASK.problems("test", 1, seed=0)[0]
    right = p.meta["a"] + p.meta["b"]
    assert TASK.verify(p, f"1;2#{right + 1}#{right}").correct
    assert TASK.verify(p, f"<answer>{right}</answer>").correct
    for completion, reason in [
        (f"{right}", "no answer"),  # no mark: the thinking never ended
        ("1+2=3;#", "no answer"),
        ("#x1", "not an integer"),
        (f"#{right + 1}", "wrong value"),
        ("#" + "9" * 70, "too long"),
    ]:
        verdict = TASK.verify(p, completion)
        assert not verdict.correct and verdict.reason == reason, completion


def test_thinking_is_what_precedes_the_first_mark():
    assert thinking("1+2=3#3") == "1+2=3" and thinking("#21") == "" and thinking("1+2=3") == "1+2=3"
    assert not thinks("  #3") and thinks("1#1")


def test_settings_are_validated_by_name():
    with pytest.raises(ValueError, match="max_digits"):
        get_task("thinking", min_digits=3, max_digits=2)
    with pytest.raises(ValueError, match="min_digits"):
        get_task("thinking", min_digits=0)
    with pytest.raises(ValueError, match="recheck must be a number in"):
        get_task("thinking", recheck=1.5)


# ------------------------------------------------------------------ rewards
def ctx(lengths, groups, task=TASK):
    batch = SimpleNamespace(lengths=torch.tensor(lengths, dtype=torch.float32), group_ids=torch.tensor(groups))
    return RewardContext(max_new_tokens=24, task=task, batch=batch)


def test_kimi_length_by_hand():
    # group 0: lengths 4, 8, 12 -> lambda 0.5, 0, -0.5; group 1: one length -> 0
    lengths = torch.tensor([4.0, 8.0, 12.0, 5.0, 5.0])
    correct = torch.tensor([True, False, False, True, False])
    out = kimi_length_reward(lengths, correct, torch.tensor([0, 0, 0, 1, 1]))
    assert out.tolist() == [0.5, 0.0, -0.5, 0.0, 0.0]
    # a wrong answer is never rewarded for being short
    out = kimi_length_reward(torch.tensor([4.0, 12.0]), torch.tensor([False, True]), torch.tensor([7, 7]))
    assert out.tolist() == [0.0, -0.5]


def test_kimi_length_reads_the_verifier_and_the_groups():
    p = TASK.problems("test", 1, seed=0)[0]
    right, wrong = TASK.worked(p)[1], "#0"
    completions = [right, wrong, p.answer, wrong]
    out = compute_reward("kimi_length", [p] * 4, completions, ctx([10, 4, 3, 6], [0, 0, 1, 1]))
    assert out.tolist() == pytest.approx([-0.5, 0.0, 0.5, -0.5])
    assert REWARDS.get("kimi_length").requires == {"task", "batch"}


def test_target_length_is_zero_at_the_target_and_linear_around_it():
    p = TASK.problems("test", 1, seed=0)[0]
    out = compute_reward("target_length", [p] * 3, ["x"] * 3, ctx([8, 4, 16], [0, 0, 0]), target=8)
    assert out.tolist() == [0.0, -0.5, -1.0]
    with pytest.raises(ValueError, match="target must be an int >= 1"):
        compute_reward("target_length", [p], ["x"], ctx([8], [0]), target=0)


def test_no_think_bonus_rewards_answering_at_once_and_refuses_other_tasks():
    p = TASK.problems("test", 1, seed=0)[0]
    out = compute_reward("no_think_bonus", [p] * 2, ["1+2=3#3", "#3"], ctx([5, 2], [0, 0]))
    assert out.tolist() == [0.0, 1.0]
    addition = get_task("addition")
    with pytest.raises(ValueError, match="no_think_bonus.*thinks"):
        RewardMix({"correct": 1.0, "no_think_bonus": 0.2}).check_task(addition, addition.problems("test", 1))


# ------------------------------------------------------------------ budget forcing
@pytest.fixture(scope="module")
def base():
    return load_base("thinking")


def test_budget_zero_answers_at_once_and_none_leaves_the_model_alone(base):
    model, tokenizer, task = base
    prompts = [p.prompt for p in task.problems("test", 6, seed=0)]
    gen = torch.Generator().manual_seed(0)
    zero = budget_forcing(model, tokenizer, prompts, 0, group_size=2, generator=gen)
    assert all(c.startswith("#") for c in zero.completions) and all(zero.forced)
    assert all(n == len(c) + 1 or n == len(c) for c, n in zip(zero.completions, zero.tokens))
    free = budget_forcing(model, tokenizer, prompts, None, group_size=2, generator=torch.Generator().manual_seed(0))
    assert not any(free.forced) and len(free.completions) == 12


def test_a_budget_caps_the_thinking_and_forces_the_mark(base):
    model, tokenizer, task = base
    problems = [p for p in task.problems("test", 64, seed=0) if p.meta["digits"] >= 3][:8]
    out = budget_forcing(model, tokenizer, [p.prompt for p in problems], 3, group_size=4, temperature=0.0)
    for completion, forced in zip(out.completions, out.forced):
        assert len(thinking(completion)) <= 3
        assert forced == (len(thinking(completion)) == 3 and "#" in completion)
    with pytest.raises(ValueError, match="budget must be an int >= 0"):
        budget_forcing(model, tokenizer, ["12+34="], -1)
    with pytest.raises(ValueError, match="answer_tokens"):
        budget_forcing(model, tokenizer, ["12+34="], 2, answer_tokens=0)
    with pytest.raises(ValueError, match="delimiter must be the non-empty text"):
        budget_forcing(model, tokenizer, ["12+34="], 2, delimiter="")


def test_another_delimiter_is_forced_and_counted_in_tokens(base):
    model, tokenizer, task = base
    prompts = [p.prompt for p in task.problems("test", 4, seed=0)]
    out = budget_forcing(model, tokenizer, prompts, 0, delimiter="##", generator=torch.Generator().manual_seed(0))
    assert all(c.startswith("##") for c in out.completions) and all(out.forced)
    # two characters, two tokens of the char tokenizer, then the answer and perhaps the EOS
    assert all(n - len(c) in (0, 1) for c, n in zip(out.completions, out.tokens))


def test_budget_sweep_trades_accuracy_for_tokens(base):
    model, tokenizer, task = base
    problems = task.problems("test", 48, seed=0)
    sweep = budget_sweep(model, tokenizer, task, problems, budgets=(0, 6, None), samples=2)
    assert sweep.budget.isna().tolist() == [False, False, True]
    assert sweep.tokens.is_monotonic_increasing  # more budget, more tokens
    assert sweep["forced"].iloc[0] == 1.0 and sweep["forced"].iloc[-1] == 0.0


# ------------------------------------------------------------------ the study's tables
def test_thinking_profile_by_hand():
    answers = pd.DataFrame(
        {
            "digits": [2, 2, 4, 4],
            "thinks": [True, False, True, False],
            "rechecks": [True, False, False, False],
            "correct": [True, True, True, False],
            "tokens": [4, 2, 10, 2],
        }
    )
    profile = thinking_profile(answers)
    assert profile.loc[4, "acc thinking"] == 1.0 and profile.loc[4, "acc at once"] == 0.0
    assert profile.loc["all", "acc"] == 0.75 and profile.loc["all", "tokens"] == 4.5
    assert profile.loc[2, "p(think)"] == 0.5 and profile.loc[2, "p(recheck)"] == 0.5


def test_pareto_front_by_hand():
    points = pd.DataFrame({"tokens": [5.0, 10.0, 8.0, 12.0], "acc": [0.5, 0.9, 0.4, 0.9]})
    assert pareto_front(points).tolist() == [True, True, False, False]


def test_methods_train_and_are_summarised(base):
    model, tokenizer, task = base
    base_answers = sample_answers(model, tokenizer, task, task.problems("test", 24, seed=0), samples=2)
    runs = efficiency_runs(
        ["ThinkPrune", "Kimi length"], steps=4, eval_problems=24, samples=2, prompts_per_step=4, progress=False
    )
    assert [r.method for r in runs] == ["ThinkPrune", "Kimi length"]
    prune, kimi = runs[0].history, runs[1].history
    caps = METHODS["ThinkPrune"].caps
    # step 0 is the row before training; then 2 steps at the first cap, one at each of the others
    assert prune.step.tolist() == [0, 1, 2, 3, 4]
    assert prune.cap.tolist() == [caps[0], caps[0], caps[0], caps[1], caps[2]]
    # Kimi's reward joins after the warm-up half: steps 1 and 2 train on correctness alone
    assert kimi["reward/kimi_length"].isna().tolist() == [True, True, True, False, False]
    table = summary(runs, base_answers)
    assert table.method.tolist() == ["base", "ThinkPrune", "Kimi length"]
    assert table.tokens.between(1, MAX_NEW_TOKENS).all() and table.acc.between(0, 1).all()
    with pytest.raises(ValueError, match="unknown methods"):
        efficiency_runs(["L2"], steps=1)


# ------------------------------------------------------------------ figures and the panel
def test_figures_draw_and_the_panel_samples_under_its_budget(base):
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.viz import BudgetPanel, plot_budget_sweep, plot_modes, plot_pareto, plot_profiles
    from rl4lrm.viz.efficiency import METHOD_COLORS

    model, tokenizer, task = base
    problems = task.problems("test", 12, seed=0)
    answers = sample_answers(model, tokenizer, task, problems, samples=2)
    profile = thinking_profile(answers)
    assert len(plot_modes(profile, title="base").axes) == 2
    assert len(plot_profiles({"base": profile, "again": profile}).axes) == 3
    points = pd.DataFrame({"method": ["a", "b"], "tokens": [5.0, 9.0], "acc": [0.2, 0.1], "acc_std": [0.01, 0.0]})
    sweep = pd.DataFrame({"budget": [0.0, float("nan")], "tokens": [4.0, 8.0], "acc": [0.1, 0.3]})
    ax = plot_pareto(points, sweep).axes[0]
    assert {t.get_text() for t in ax.texts} >= {"a", "b", "B=0", "no cap"}
    with pytest.raises(ValueError, match="lacks columns"):
        plot_pareto(points.drop(columns="acc"))
    # a cap the answers never reach lands on the no-cap point: one label, not two printed over each other
    budgets, tokens = [0.0, 64.0, float("nan")], [5.5, 24.52, 24.59]
    sweep = pd.DataFrame({"budget": budgets, "tokens": tokens, "acc": [0.03, 0.26, 0.26]})
    assert sorted(t.get_text() for t in plot_budget_sweep(sweep).axes[0].texts) == ["B=0", "B=64, no cap"]
    # the base model on that point, or next to a budget's point: every label clear of the others, inside the axes
    for at in (24.59, 24.1, 5.6):
        near = pd.DataFrame({"method": ["base", "GRPO", "Kimi"], "tokens": [at, 12.0, 12.3], "acc": [0.26, 0.4, 0.4]})
        ax = plot_pareto(near, sweep).axes[0]
        renderer = ax.figure.canvas.get_renderer()
        boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
        inside = ax.get_window_extent(renderer)
        assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 and inside.y0 <= b.y0 for b in boxes.values()), at
        assert not [(a, b) for a in boxes for b in boxes if a < b and boxes[a].overlaps(boxes[b])], at
    # a method keeps its color from figure to figure, whichever methods a run has
    grpo = pd.DataFrame({"method": ["base", "GRPO"], "tokens": [5.0, 9.0], "acc": [0.2, 0.4]})
    colors = [line.get_color() for line in plot_pareto(grpo).axes[0].lines]
    assert colors == [METHOD_COLORS["base"], METHOD_COLORS["GRPO"]] and len(set(METHOD_COLORS.values())) == 8
    drawn = plot_profiles({"GRPO": profile}).axes[0].lines[0].get_color()
    assert drawn == METHOD_COLORS["GRPO"]
    panel = BudgetPanel(model, tokenizer, task, problems, budget=4, samples=1)
    out = panel.run()
    assert len(out) == 12 and (out.tokens <= 4 + 1 + 8).all() and "tokens per answer" in panel.status.value
    panel.unlimited.value = True
    assert not panel.run().forced.any()
