"""Chapter 12 (agentic tasks): tools, environment, task, multi-turn rollouts, masking, rewards, RL, zoo model."""

from __future__ import annotations

import random
import re

import pytest
import torch

from rl4lrm.agents.env import (
    AgentEnv,
    KnowledgeBase,
    calculate,
    observation_spans,
    parse_call,
    question_keys,
    run_transcript,
)
from rl4lrm.agents.exercises import check_calculator, check_observation_mask, random_transcripts
from rl4lrm.agents.rollout import AgentConfig, load_agent, observation_mask
from rl4lrm.agents.task import ToolUse, answer_of
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rewards import RewardContext, compute_reward
from rl4lrm.rewards.agentic import call_format
from rl4lrm.rollout import compute_logprobs, rollout

KB = KnowledgeBase(0)


def test_calculator_hand_cases_and_precedence():
    assert calculate("12+7") == 19
    assert calculate("3*4-5") == 7
    assert calculate("2-10") == -8
    assert calculate("2+3*4") == 14
    assert calculate("007") == 7


@pytest.mark.parametrize("expr", ["", "1/2", "2**3", "(1+2)", "1+", "-1", "a+1", "__import__('os')", "9" * 25, "1 +2"])
def test_calculator_rejects_bad_input(expr):
    with pytest.raises(ValueError):
        calculate(expr)


def test_knowledge_base_is_seeded_and_reports_unknown_keys():
    assert KB.value("zuka", "age") == KnowledgeBase(0).value("zuka", "age")
    values = [KB.value(n, a) for n in ("zuka", "bemo", "tira", "lopa") for a in ("age", "size")]
    assert all(10 <= v <= 99 for v in values) and len(set(values)) > 3
    assert any(KnowledgeBase(1).value(n, "age") != KB.value(n, "age") for n in ("zuka", "bemo", "tira"))
    for key in ("zuka.weight", "qq.age", "zuka", "", "zukaa.age"):
        assert KB.lookup(key) == "unknown key"
    assert KB.lookup("zuka.age") == str(KB.value("zuka", "age"))


def test_parse_call_and_question_keys():
    assert parse_call("look zuka.age") == ("look", "zuka.age")
    assert parse_call("calc 1+2") == ("calc", "1+2")
    assert parse_call("lookzuka") is None and parse_call("search x") is None
    assert question_keys("zuka.age+bemo.size=") == ["zuka.age", "bemo.size"]


def test_env_steps_rewards_turns_and_limits():
    a, b = KB.value("zuka", "age"), KB.value("bemo", "size")
    env = AgentEnv("zuka.age+bemo.size=", KB)
    assert env.answer == a + b
    t1 = env.step("look zuka.age")
    assert (t1.observation, t1.reward, t1.ok) == (str(a), pytest.approx(1 / 3), True)
    assert env.step("look zuka.age").reward == 0.0  # a repeated lookup earns nothing
    assert env.step("look bemo.size").reward == pytest.approx(1 / 3)
    t4 = env.step(f"calc {a}+{b}")
    assert t4.observation == str(a + b) and t4.reward == pytest.approx(1 / 3)
    assert env.done and env.tool_calls == 4  # the turn limit (4 calls) ends the episode
    with pytest.raises(RuntimeError):
        env.step("ans 1")
    env = AgentEnv("zuka.age+bemo.size=", KB)
    assert env.step("calc 1/0").observation == "bad expression"
    assert env.step("oops x").observation == "bad call"
    assert env.step("look qq.age").observation == "unknown key"
    assert not env.done
    assert env.step("ans 5").observation is None and env.done
    off = AgentEnv("zuka.age+bemo.size=", KB, tools=False)
    assert off.step("look zuka.age").observation == "no tools"


def test_run_transcript_and_observation_spans():
    a = KB.value("zuka", "age")
    text = run_transcript("zuka.age+bemo.size=", ["[look zuka.age]", f"[ans {a}]"], KB)
    assert text == f"[look zuka.age]{{{a}}}[ans {a}]"
    start = len("[look zuka.age]")
    assert observation_spans(text) == [(start, start + len(str(a)) + 2)]


def test_task_splits_by_entity_and_verifies():
    task = ToolUse()
    train, test = task.problems("train", 300), task.problems("test", 100)
    names = lambda ps: {k.split(".")[0] for p in ps for k in p.meta["keys"]}  # noqa: E731
    assert not names(train) & names(test)  # no test entity (nor its facts) ever appears in training
    for p in train[:50]:
        prompt, text = task.worked(p)
        assert prompt == p.prompt and task.verify(p, text).correct
        assert int(p.answer) == sum(KB.value(*k.split(".")) for k in p.meta["keys"])
    p = train[0]
    assert task.verify(p, p.answer).correct  # a bare guess that happens to be right
    assert not task.verify(p, "[look x]{unknown key}").well_formed
    assert answer_of("[ans 12]") == "12" and answer_of("12") == "12" and answer_of("[look a]") is None
    styles = [task.style_of(p) for p in train]
    assert {"full", "no_calc", "one_look"} == set(styles)


def test_observation_mask_matches_spans_and_exercise_checkers_pass():
    tok = char_tokenizer()
    texts = random_transcripts(20, random.Random(3))
    open_id, close_id = tok.convert_tokens_to_ids(["{", "}"])
    for text in texts:
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        want = torch.zeros(len(text))
        for s, e in observation_spans(text):
            want[s:e] = 1
        assert torch.equal(observation_mask(ids, open_id, close_id)[0], want)
    assert check_observation_mask(observation_mask) and check_calculator(calculate)
    assert not check_calculator(lambda e: sum(int(x) for x in e.split("+")))  # no precedence, no refusals


def test_call_format_reward():
    assert call_format("[look zuka.age]{31}[ans 31]") == 1.0
    assert call_format("[oops]{bad call}[ans 31]") == 0.5
    assert call_format("31") == 0.0


def test_agent_config_validation():
    with pytest.raises(ValueError, match="max_turns"):
        AgentConfig(max_turns=0)


# ---------------------------------------------------------------- with the zoo model


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return load_agent()


def _episodes(policy, tokenizer, task, n=8, samples=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    problems = task.problems("test", n, seed=0)
    return problems, rollout(policy, tokenizer, [p.prompt for p in problems], samples, 64, 1.0, generator=gen)


def test_zoo_entry_loads_and_base_accuracy_is_well_below_one(agent):
    from rl4lrm.agents.studies import evaluate_agent
    from rl4lrm.models.zoo import load_base

    net, tokenizer, task = load_base("agentic")
    assert isinstance(task, ToolUse) and sum(p.numel() for p in net.parameters()) < 1_000_000
    policy, tokenizer, task = agent
    stats = evaluate_agent(policy, tokenizer, task, n_problems=32, samples=2)
    assert 0.1 < stats["correct"] < 0.9 and stats["tool_calls"] > 1


def test_rollout_mask_covers_exactly_the_observations(agent):
    policy, tokenizer, task = agent
    problems, batch = _episodes(policy, tokenizer, task)
    attend, obs = batch.aux["attend"], batch.aux["obs_mask"]
    assert torch.equal(batch.response_mask, attend - obs)
    assert obs.sum() > 0 and batch.aux["tool_calls"].sum() > 0
    open_id, close_id = tokenizer.convert_tokens_to_ids(["{", "}"])
    rebuilt = observation_mask(batch.completion_ids, open_id, close_id) * attend
    for i, text in enumerate(batch.completions):
        policy_text = "".join(c for c, m in zip(text, (attend[i] - obs[i]).tolist()) if m)
        if "{" in policy_text or "}" in policy_text:
            continue  # the policy wrote a brace itself: only the rollout's record can tell whose token it is
        assert torch.equal(obs[i], rebuilt[i]), text
        # the environment replayed on the policy's segments writes exactly the same transcript
        segments = re.findall(r"[^\]]*\]|[^\]]+$", policy_text)
        replay = run_transcript(problems[i // 4].prompt, segments, KB)
        assert replay == text, (replay, text)


def test_old_logprobs_match_the_training_forward(agent):
    policy, tokenizer, task = agent
    for mask_obs in (True, False):
        policy.config = AgentConfig(mask_observations=mask_obs)
        _, batch = _episodes(policy, tokenizer, task, n=6, samples=3, seed=1)
        with torch.no_grad():
            logprobs, _ = compute_logprobs(policy, batch)
        assert (logprobs - batch.old_logprobs).abs().max() < 1e-4
        if not mask_obs:  # observation tokens are in the loss, with the policy's own log-probs of them
            assert torch.equal(batch.response_mask, batch.aux["attend"])
            assert (batch.old_logprobs * batch.aux["obs_mask"]).abs().sum() > 0
    policy.config = AgentConfig()


def test_turn_and_format_rewards_from_a_rollout(agent):
    policy, tokenizer, task = agent
    problems, batch = _episodes(policy, tokenizer, task, n=6, samples=2, seed=2)
    rows = [problems[i // 2] for i in range(len(batch.completions))]
    ctx = RewardContext(group_size=2, task=task, batch=batch, tokenizer=tokenizer)
    turns = compute_reward("agent_turns", rows, batch.completions, ctx)
    assert turns.shape == batch.completion_ids.shape
    assert (turns * (1 - batch.response_mask)).abs().sum() == 0  # rewarded tokens are the policy's own
    assert turns.sum(-1).max() <= 1 + 1e-6
    fmt = compute_reward("tool_format", rows, batch.completions, ctx)
    assert fmt.shape == (len(rows),) and ((fmt >= 0) & (fmt <= 1)).all()


def test_no_tools_and_turn_limit(agent):
    policy, tokenizer, task = agent
    policy.config = AgentConfig(tools=False, max_turns=1)
    try:
        _, batch = _episodes(policy, tokenizer, task, n=4, samples=2, seed=3)
    finally:
        policy.config = AgentConfig()
    assert (batch.aux["tool_calls"] <= 1).all()
    assert all("{no tools}" in c for c in batch.completions if "[look" in c or "[calc" in c)


def test_smoke_grpo_on_episodes_raises_held_out_accuracy(agent):
    from rl4lrm.agents.studies import agent_rl, evaluate_agent

    policy, tokenizer, task = agent
    before = evaluate_agent(policy, tokenizer, task, n_problems=32, samples=2)["correct"]
    history, trained = agent_rl(policy, tokenizer, task, steps=8, lr=3e-4, prompts_per_step=8, group_size=8)
    after = evaluate_agent(trained, tokenizer, task, n_problems=32, samples=2)["correct"]
    assert after > before + 0.05, (before, after)
    assert trained is not policy and history["loss/policy"].notna().any()
