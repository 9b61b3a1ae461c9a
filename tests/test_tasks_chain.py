"""Tests for the chain task: splits, the final-answer verifier, and step verdicts on hand-made completions."""

import random

import pytest

from rl4lrm.tasks import TASKS, Chain, Problem, first_error, get_task


class FakeTokenizer:
    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages) + "<|assistant|>"


# 7; +5; *2; -3  ->  12, 24, 21
PROBLEM = Problem(
    "",
    "7;+5;*2;-3=",
    "12\n24\n21",
    {"start": 7, "ops": (("+", 5), ("*", 2), ("-", 3)), "values": (12, 24, 21)},
    "7;+5;*2;-3",
)


def test_registry_and_bad_args():
    assert "chain" in TASKS.names() and isinstance(get_task("chain", max_steps=3), Chain)
    for kwargs, bad in [
        ({"min_steps": 0}, "0"),
        ({"min_steps": 3, "max_steps": 2}, "2"),
        ({"max_operand": 1}, "1"),
        ({"max_value": 5}, "5"),
    ]:
        with pytest.raises(ValueError, match=bad):
            Chain(**kwargs)


def test_samples_are_consistent_and_small():
    task = Chain()
    rng = random.Random(0)
    for _ in range(500):
        p = task.sample(rng)
        assert set(p.prompt) <= set(task.alphabet) and set(p.answer) <= set(task.alphabet)
        value = p.meta["start"]
        for (op, n), expected in zip(p.meta["ops"], p.meta["values"]):
            value = {"+": value + n, "-": value - n, "*": value * n}[op]
            assert value == expected and 0 <= value <= task.max_value
        assert 2 <= task.num_steps(p) <= 3 and p.prompt == p.key + "="
        assert task.verify(p, p.answer).correct
        assert all(v.correct for v in task.step_verdicts(p, p.answer))


def test_splits_disjoint_and_reproducible():
    task = Chain()
    train, test = task.problems("train", 1000, seed=1), task.problems("test", 1000, seed=1)
    assert not {p.key for p in train} & {p.key for p in test}
    assert len({p.key for p in test}) == 1000  # 2-3 steps: about 11k keys, 2.3k in test
    assert task.problems("test", 20, seed=1) == test[:20]


def test_prompts():
    task = Chain()
    p = task.problems("train", 1)[0]
    assert task.format_prompt(p) == p.prompt
    chat = task.format_prompt(p, "chat", FakeTokenizer())
    assert p.question in chat and "<answer></answer>" in chat


@pytest.mark.parametrize(
    "completion, correct, well_formed, reason",
    [
        ("12\n24\n21", True, True, "ok"),
        ("12\n24\n21\n", True, True, "ok"),
        ("21", True, True, "ok"),  # the verifier checks the final answer only
        ("12\n25\n21", True, True, "ok"),  # a recovered slip: the outcome is right, step 2 is not
        ("12\n24\n22", False, True, "wrong value"),
        ("12\n24", False, True, "wrong value"),  # truncated: the last line is step 2
        ("12\n24\n2", False, True, "wrong value"),
        ("12\n24\n21x", False, False, "not an integer"),
        ("", False, False, "no answer"),
        ("\n\n  \n", False, False, "no answer"),
        ("reasoning <answer>21</answer>", True, True, "ok"),
        ("9" * 100_000, False, False, "too long"),
        ("٢١", False, False, "not an integer"),
    ],
)
def test_verify(completion, correct, well_formed, reason):
    v = Chain().verify(PROBLEM, completion)
    assert (v.correct, v.well_formed, v.reason) == (correct, well_formed, reason)


def verdicts(completion):
    return [(v.value, v.correct, v.reason) for v in Chain().step_verdicts(PROBLEM, completion)]


def test_step_verdicts_hand_made():
    ok = [(12, True, "ok"), (24, True, "ok"), (21, True, "ok")]
    assert verdicts("12\n24\n21") == ok
    assert verdicts("12\n24\n21\n\n") == ok
    assert verdicts("13\n24\n21") == [(13, False, "wrong value"), (24, True, "ok"), (21, True, "ok")]
    assert verdicts("12\n24\n20") == ok[:2] + [(20, False, "wrong value")]
    assert verdicts("12\nab\n21") == [ok[0], (None, False, "not an integer"), ok[2]]
    assert verdicts("12\n24\n21\n21\n5") == ok + [(21, False, "extra step")]  # at most num_steps + 1 lines
    assert verdicts("12\n2") == [ok[0], (2, False, "wrong value")]  # truncated mid-number
    assert verdicts("") == [] and verdicts("   \n") == []
    # steps are checked against the true running value, not the model's previous line
    assert verdicts("13\n26\n23") == [
        (13, False, "wrong value"),
        (26, False, "wrong value"),
        (23, False, "wrong value"),
    ]


def test_first_error_and_spans():
    task = Chain()
    completion = "12\n25\n21"
    vs = task.step_verdicts(PROBLEM, completion)
    assert first_error(vs) == 1 and first_error(task.step_verdicts(PROBLEM, "12\n24\n21")) is None
    assert [completion[v.start : v.end] for v in vs] == ["12", "25", "21"]
    assert [v.expected for v in task.step_verdicts(PROBLEM, "1\n2\n3\n4")] == [12, 24, 21, None]


@pytest.mark.parametrize(
    "completion",
    [
        "9" * 100_000,
        "\n" * 100_000,
        "9\n" * 100_000,
        "<answer>" * 10_000,
        "-" * 50,
        "1" * 5000,
        "\x00\r\n\t",
        "😀\n12",
        "12\r\n24\r\n21",
    ],
)
def test_never_raises(completion):
    task = Chain()
    assert task.verify(PROBLEM, completion).correct in (True, False)
    assert len(task.step_verdicts(PROBLEM, completion)) <= 4
