"""Tests for rl4lrm.tasks.countdown_search: trace language, searcher, checker, task and zoo entry."""

import random
import re
from dataclasses import replace

import pytest
import torch

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.models.zoo import ZOO, ZooEntry, build_base, load_base
from rl4lrm.tasks import Countdown, CountdownSearch, check_trace, get_task, search, solve, trace_valid
from rl4lrm.tasks.base import Problem
from rl4lrm.tasks.countdown_search import STRATEGIES, SearchConfig, backtracks


def _problem(numbers, target) -> Problem:
    meta = {"numbers": tuple(numbers), "target": target}
    return Problem("", f"{' '.join(map(str, numbers))}>{target}:", "", meta, "")


# --- the trace language, by hand -------------------------------------------------------------


def test_hand_made_traces():
    cfg = SearchConfig("dfs")
    assert search([3, 5, 7], 22, SearchConfig("optimal"), random.Random(0)) == "5*3=15,15+7=22#5*3+7"
    assert search([3, 5, 7], 22, SearchConfig("heuristic"), random.Random(0)) == (
        "7*3=21,21+5=26^21-5=16^21*5=105^^5*3=15,15+7=22#5*3+7"
    )
    assert search([3, 5, 7], 22, cfg, random.Random(0)).startswith("5+3=8,8+7=15^8-7=1^8*7=56^^5-3=2,")
    assert search([3, 22, 7], 22, cfg, random.Random(0)) == "#22"  # a given number is already the target
    assert search([3, 5, 7], 22, SearchConfig("dfs", budget=3), random.Random(0)) == "5+3=8,8+7=15^8-7=1#"  # gave up


def test_check_trace_counts_steps_and_backtracks():
    p = _problem([3, 5, 7], 22)
    report = check_trace(p, "7*3=21,21+5=26^21-5=16^21*5=105^^5*3=15,15+7=22#5*3+7")
    assert report.valid and report.found and report.reason == "ok"
    assert (report.steps, report.backtracks) == (6, 4)
    assert backtracks("3+5=8^^#") == 2 and backtracks("#1^") == 0


@pytest.mark.parametrize(
    "trace, reason",
    [
        ("3+5=9#", "wrong"),  # bad arithmetic
        ("3+4=7#", "number 4 not available"),  # not given
        ("3+5=8,3+7=10#", "number 3 not available"),  # used up
        ("3+5=8,8+7=15^15+3=18#", "number 15 not available"),  # undone by the backtrack
        ("7/3=2#", "wrong"),  # inexact division
        ("^3+5=8#", "backtrack with no step"),
        ("3+5=8;8*7=56#", "unreadable"),
        ("3+5=8,8+7=15", "no answer mark"),
    ],
)
def test_check_trace_rejects_illegal_traces(trace, reason):
    report = check_trace(_problem([3, 5, 7], 22), trace)
    assert not report.valid and reason in report.reason, report
    assert not trace_valid(_problem([3, 5, 7], 22), trace)


def test_backtrack_gives_the_numbers_back():
    p = _problem([3, 5, 7], 22)
    assert trace_valid(p, "3+5=8,8+7=15^^5*3=15,15+7=22#5*3+7")
    assert trace_valid(_problem([6, 6, 2], 3), "6/6=1,2+1=3#6/6+2")  # a repeated number counts twice


# --- the searcher ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_complete_strategies_always_find_a_solution(strategy):
    task = get_task("countdown-search", strategy=strategy)
    for p in task.problems("test", 60, seed=1):
        prompt, trace = task.worked(p)
        assert prompt == p.prompt
        report = check_trace(p, trace)
        assert report.valid and report.found, (p.prompt, trace)
        assert task.verify(p, trace).correct, (p.prompt, trace)
        assert solve(list(p.meta["numbers"]), p.meta["target"]) is not None
    assert task.verify(p, p.answer).correct  # the direct answer, in the form verify reads


def test_no_solution_gives_an_empty_answer():
    for strategy in STRATEGIES:
        trace = search([1, 1, 1], 50, SearchConfig(strategy), random.Random(0))
        assert trace.endswith("#") and solve([1, 1, 1], 50) is None
        assert trace_valid(_problem([1, 1, 1], 50), trace)


def test_imperfect_strategies_miss_some_and_traces_stay_valid():
    problems = get_task("countdown-search").problems("train", 200, seed=0)
    for kwargs in ({"strategy": "random", "budget": 4}, {"strategy": "heuristic", "miss": 0.5}):
        task = get_task("countdown-search", **kwargs)
        traces = [task.worked(p)[1] for p in problems]
        solved = sum(task.verify(p, t).correct for p, t in zip(problems, traces)) / len(problems)
        assert 0.1 < solved < 0.9, (kwargs, solved)
        assert all(trace_valid(p, t) for p, t in zip(problems, traces))
    optimal, heuristic = (get_task("countdown-search", strategy=s) for s in ("optimal", "heuristic"))
    assert all(backtracks(optimal.worked(p)[1]) == 0 for p in problems)
    mean = sum(len(optimal.worked(p)[1]) for p in problems) / len(problems)
    assert mean < sum(len(heuristic.worked(p)[1]) for p in problems) / len(problems)


def test_give_up_stops_at_a_dead_end_and_lower_patience_solves_less():
    problems = get_task("countdown-search").problems("train", 300, seed=0)

    def solved(give_up):
        task = get_task("countdown-search", strategy="random", give_up=give_up)
        traces = [task.worked(p)[1] for p in problems]
        assert all(trace_valid(p, t) for p, t in zip(problems, traces))
        gave_up = [t for p, t in zip(problems, traces) if not task.verify(p, t).correct]
        assert all(t.endswith("#") and not t.endswith("^#") for t in gave_up)  # "#" where a backtrack was due
        return 1 - len(gave_up) / len(problems)

    assert solved(0.0) == 1.0
    assert 1.0 > solved(0.1) > solved(0.3) > 0.1


def test_max_value_keeps_every_result_small_and_still_solves():
    task = get_task("countdown-search", strategy="random", max_value=100)
    for p in task.problems("train", 200, seed=0):
        trace = task.worked(p)[1]
        assert all(int(c) <= 100 for c in re.findall(r"=(\d+)", trace)), trace
    assert search([17, 19, 2], 21, SearchConfig("dfs", max_value=100), random.Random(0)).find("17*19") == -1
    assert search([20, 15, 6], 50, SearchConfig("optimal", max_value=100), random.Random(0)) == "#"  # needs 300/6
    assert search([20, 15, 6], 50, SearchConfig("optimal"), random.Random(0)) == "20*15=300,300/6=50#20*15/6"


def test_worked_traces_are_a_function_of_the_problem():
    task = get_task("countdown-search", strategy="random", budget=6)
    p = task.problems("train", 1, seed=3)[0]
    assert task.worked(p) == get_task("countdown-search", strategy="random", budget=6).worked(p)


def test_search_config_is_validated():
    with pytest.raises(ValueError, match="strategy"):
        SearchConfig("greedy")
    with pytest.raises(ValueError, match="miss"):
        SearchConfig(miss=1.0)
    with pytest.raises(ValueError, match="budget"):
        get_task("countdown-search", budget=-1)
    with pytest.raises(ValueError, match="give_up"):
        get_task("countdown-search", give_up=1.0)
    with pytest.raises(ValueError, match="max_value"):
        SearchConfig(max_value=-5)


# --- the task ----------------------------------------------------------------------------------


def test_verify_reads_the_answer_after_the_last_mark():
    task = CountdownSearch()
    p = _problem([3, 5, 7], 22)
    assert task.verify(p, "3+5=8#8+7#5*3+7").correct
    assert task.verify(p, "5*3=15,15+7=22#").reason == "no answer"
    assert task.verify(p, "5*3+7").reason == "no answer"
    assert task.verify(p, "#5*3-7").reason == "evaluates to 8, not 22"
    assert task.verify(p, "#" + "1+" * 40 + "1").reason == "too long"


def test_distinct_target_option():
    plain = Countdown().problems("test", 400, seed=0)
    echo = [p for p in plain if p.meta["target"] in p.meta["numbers"]]
    assert 0.05 < len(echo) / len(plain) < 0.2  # about 10% can be answered by echoing a number
    assert Countdown().verify(echo[0], str(echo[0].meta["target"])).correct
    assert [p.key for p in Countdown(distinct_target=False).problems("test", 50, seed=0)] == [p.key for p in plain[:50]]
    fixed = Countdown(distinct_target=True)
    for p in fixed.problems("test", 400, seed=0):
        assert p.meta["target"] not in p.meta["numbers"]
        assert not fixed.verify(p, str(p.meta["target"])).correct
    assert all(p.meta["target"] not in p.meta["numbers"] for p in CountdownSearch().problems("train", 200))


# --- the zoo entry -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["countdown-search", "countdown-search-optimal", "countdown-search-answer"])
def test_zoo_entries_load_and_their_samples_parse(name):
    model, tok, task = load_base(name)
    assert isinstance(task, CountdownSearch) and task.distinct_target and task.max_value == 100
    problems = task.problems("test", 16, seed=0)
    out = sample_and_verify(
        model, tok, task, problems, 4, max_new_tokens=128, generator=torch.Generator().manual_seed(0)
    )
    rows = [p for p in problems for _ in range(4)]
    reports = [check_trace(p, t) for p, t in zip(rows, out["completions"])]
    assert sum(r.valid for r in reports) >= len(reports) // 2, list(zip(rows, out["completions"]))
    steps = sum(r.steps for r in reports) / len(reports)
    if name == "countdown-search-answer":
        assert steps == 0 and all(t.startswith("#") for t in out["completions"])  # bare answers
    else:
        assert steps >= 1  # it writes searches (or paths), not bare answers
    assert sum(out["correct"]) > 0


def test_zoo_recipe_rebuilds_byte_for_byte(tmp_path, monkeypatch):
    sft = replace(ZOO["countdown-search"].sft, steps=3, batch_size=8, train_problems=32, warmup=0)  # its 8 pieces
    entry = ZooEntry("countdown-search", ZOO["countdown-search"].task_kwargs, "micro", sft)
    monkeypatch.setitem(ZOO, "countdown-search-mini", entry)
    a = build_base("countdown-search-mini", tmp_path / "a", progress=False)
    b = build_base("countdown-search-mini", tmp_path / "b", progress=False)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
