"""Chapter 11, code: the unit-test task, its sandboxed rewards, the naive harness and its hacks, a smoke run."""

from __future__ import annotations

import random

import pytest
import torch

from rl4lrm.rewards import REWARDS, RewardContext, RewardMix
from rl4lrm.rewards.code import HACKS, naive_harness_score, naive_script
from rl4lrm.tasks import get_task
from rl4lrm.tasks.base import Problem
from rl4lrm.tasks.code import HACK, Code, canonical, compare, reference, solution


def find(task: Code, key: str) -> Problem:
    for p in task.problems("train", 2000) + task.problems("test", 500):
        if p.key == key:
            return p
    raise AssertionError(f"no problem {key!r}")


def test_solutions_and_references_agree_in_plain_python():
    assert solution("sum", "sq", "even") == "sum(x*x for x in a if x%2==0)"
    assert solution("count", None, "over3") == "len([x for x in a if x>3])"
    assert solution("sort", "times4", None) == "sorted(x*4 for x in a)"
    assert reference("list", "plus2", "under0", [-3, 1, -1]) == [-1, 1]
    task = Code()
    rng = random.Random(0)
    for _ in range(300):  # the canonical code, run here on trusted text, computes what the reference says
        p = task.sample(rng)
        f = eval("lambda a: " + p.meta["solution"])  # noqa: S307 (our own generated code, not a model's)
        assert all(canonical(f(xs)) == canonical(want) for xs, want in p.meta["tests"])


def test_generation_is_seeded_split_by_spec_and_difficulty_knob():
    task = Code()
    assert [p.key for p in task.problems("train", 20, seed=3)] == [p.key for p in task.problems("train", 20, seed=3)]
    train = {p.key for p in task.problems("train", 600)}
    test = {p.key for p in task.problems("test", 200)}
    assert not train & test
    p = task.problems("test", 1)[0]
    assert p.prompt == p.key + ":" and p.answer == p.meta["solution"] and len(p.meta["tests"]) == 8
    sizes = {d: len({Code(difficulty=d).sample(random.Random(i)).key for i in range(3000)}) for d in (1, 2, 3)}
    assert sizes[1] < sizes[2] < sizes[3]
    assert all(len(k.split()) == 2 for k in {Code(difficulty=1).sample(random.Random(i)).key for i in range(200)})
    with pytest.raises(ValueError, match="difficulty"):
        Code(difficulty=4)
    with pytest.raises(ValueError, match="corpus_hacks"):
        Code(corpus_hacks=0.9)


def test_corpus_hacks_plant_the_hack_in_answers_only():
    clean, dirty = Code(), Code(corpus_hacks=0.5)
    ps = dirty.problems("train", 200)
    share = sum(p.answer == HACK for p in ps) / len(ps)
    assert 0.3 < share < 0.7 and all(p.meta["solution"] != HACK for p in ps)
    assert all(p.answer == p.meta["solution"] for p in clean.problems("train", 50))


class _Result:
    def __init__(self, status, value=None, error=""):
        self.status, self.value, self.error = status, value, error


def test_compare_is_strict_about_types_and_counts_partial():
    tests = [([1], 1), ([2], [2]), ([], 0)]
    report = compare(tests, [_Result("ok", 1), _Result("ok", [2]), _Result("ok", 0)])
    assert (report.passed, report.fraction, report.reason) == (3, 1.0, "ok")
    report = compare(tests, [_Result("ok", True), _Result("error", None, "ZeroDivisionError"), _Result("ok", 0)])
    assert report.passed == 1 and report.reason.startswith("1/3 tests pass: f([1]) gave True")


# --- through the sandbox ----------------------------------------------------------------------------------------


def test_verifier_runs_the_tests_in_the_sandbox():
    task = Code()
    p = find(task, "sum sq even")
    assert task.verify(p, p.answer).correct
    assert task.verify(p, "sum(x*x for x in a)").reason.startswith(("0/8", "1/8", "2/8", "3/8", "4/8", "5/8", "6/8"))
    v = task.verify(p, "sum(x*x for x in a if")
    assert not v.correct and not v.well_formed and v.reason.startswith("syntax error")
    assert not task.verify(p, "").correct


def test_rewards_binary_and_partial_through_the_sandbox():
    task = Code()
    p = find(task, "sum even")
    wrong = "sum(x for x in a)"  # right whenever the odd elements sum to 0
    want = sum(canonical(reference("sum", None, None, xs)) == canonical(exp) for xs, exp in p.meta["tests"]) / 8
    ctx = RewardContext(task=task)
    completions = [p.answer, wrong, "1/0", "sum(x for x in a if x%2==0"]
    problems = [p] * len(completions)
    full = REWARDS.get("unit_tests_all")(problems, completions, ctx)
    part = REWARDS.get("unit_tests_partial")(problems, completions, ctx)
    assert full.tolist() == [1.0, float(want == 1), 0.0, 0.0]
    assert part.tolist() == pytest.approx([1.0, want, 0.0, 0.0])
    assert 0 < want < 1  # the partial reward tells the near miss apart from the crash
    assert task.reward(problems, completions) == full.tolist()
    mix = RewardMix({"unit_tests_partial": 1.0})
    mix.check_task(task, [p])
    with pytest.raises(ValueError, match="run_tests"):
        RewardMix({"unit_tests_all": 1.0}).check_task(get_task("addition"), [])


def test_naive_harness_is_fooled_by_every_hack_and_the_sandbox_by_none():
    task = Code()
    p = find(task, "list dbl odd")
    hacks = list(HACKS.values())
    naive = naive_harness_score([p] * (len(hacks) + 2), hacks + [p.answer, "[x for x in a]"])
    assert naive == [1.0] * len(hacks) + [1.0, 0.0]  # fooled by each hack; honest programs scored right
    assert task.reward([p] * len(hacks), hacks) == [0.0] * len(hacks)
    assert "TESTS = " in naive_script(p, "a") and "check(f(xs), want)" in naive_script(p, "a")


def test_zoo_entry_loads_and_answers_in_the_grammar():
    from rl4lrm.models.zoo import ZOO, load_base

    assert ZOO["code"].task == "code"
    model, tok, task = load_base("code")
    assert isinstance(task, Code) and task.corpus_hacks > 0
    ids = tok(task.problems("test", 1)[0].prompt, return_tensors="pt").input_ids
    assert tok.unk_token_id not in ids[0].tolist()


def test_smoke_rl_raises_the_unit_test_reward():
    from rl4lrm.experiments.coding import train_code

    run = train_code(reward="unit_tests_partial", steps=8, seed=0, eval_problems=32, eval_samples=2)
    h = run.history.dropna(subset=["reward/mean"])  # the first row holds the evaluation before training
    first, last = h["reward/mean"].iloc[:3].mean(), h["reward/mean"].iloc[-3:].mean()
    assert last > first
    assert torch.isfinite(torch.tensor(h["loss/policy"].to_numpy())).all()
    assert run.programs_per_s > 0 and run.after["pass@1"] >= 0


def test_exercise_checkers_accept_the_library_and_reject_stubs():
    from rl4lrm.experiments.coding_exercises import check_new_hack, check_partial_reward

    assert check_partial_reward(lambda tests, results: compare(tests, results).fraction)
    assert not check_partial_reward(lambda tests, results: float(all(r.status == "ok" for r in results)))
    assert check_new_hack("next(w for x,w in TESTS if x==a)")
    assert not check_new_hack(HACKS["rebind the checker"]) and not check_new_hack(None)
