"""Tests for rl4lrm.tasks: splits, verifiers on adversarial completions, the expression parser."""

import random
from fractions import Fraction

import pytest

from rl4lrm.tasks import (
    TASKS,
    Addition,
    Countdown,
    ExpressionError,
    Problem,
    evaluate,
    extract_answer,
    get_task,
    solve,
)


class FakeTokenizer:
    """Just enough of a Hugging Face tokenizer for format_prompt(style="chat")."""

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages) + "<|assistant|>"


def countdown_problem(numbers, target):
    return Problem("", "", "", {"numbers": tuple(numbers), "target": target}, "")


# --- registry, construction, splits ---------------------------------------------------------


def test_registry_and_get_task():
    assert {"addition", "countdown"} <= set(TASKS.names())
    assert isinstance(get_task("addition", digits=3), Addition)
    assert get_task("countdown", n_numbers=4).n_numbers == 4
    with pytest.raises(ValueError, match="nope.*addition"):
        get_task("nope")
    with pytest.raises(ValueError, match="already registered"):
        TASKS.register("addition")(Addition)


@pytest.mark.parametrize(
    "make, bad",
    [
        (lambda: Addition(digits=0), "0"),
        (lambda: Addition(digits=10), "10"),
        (lambda: Addition(digits=2.5), "2.5"),
        (lambda: Countdown(n_numbers=1), "1"),
        (lambda: Countdown(n_numbers=7), "7"),
        (lambda: Countdown(max_number=0), "0"),
        (lambda: Countdown(max_target=-5), "-5"),
    ],
)
def test_bad_constructor_args(make, bad):
    with pytest.raises(ValueError, match=bad):
        make()


@pytest.mark.parametrize("task", [Addition(digits=3), Countdown()], ids=["addition", "countdown"])
def test_splits_disjoint_and_reproducible(task):
    train, test = task.problems("train", 2000, seed=1), task.problems("test", 2000, seed=1)
    train_keys, test_keys = {p.key for p in train}, {p.key for p in test}
    assert not train_keys & test_keys
    assert len(train_keys) == 2000 and len(test_keys) == 2000  # no duplicates: the space is large
    assert all(task.split_of(p) == "test" for p in test)
    assert [p.key for p in task.problems("train", 50, seed=1)] == [p.key for p in train[:50]]
    assert task.problems("train", 50, seed=1) == task.problems("train", 50, seed=1)
    assert task.problems("train", 50, seed=1) != task.problems("train", 50, seed=2)
    # Roughly test_fraction of all keys land in test.
    rng = random.Random(0)
    share = sum(task.split_of(task.sample(rng)) == "test" for _ in range(2000)) / 2000
    assert abs(share - task.test_fraction) < 0.05


def test_small_split_allows_duplicates_only_when_exhausted():
    task = Addition(digits=1)  # 100 keys, about 20 of them in test
    test = task.problems("test", 300)
    assert len(test) == 300
    keys = [f"{a}+{b}" for a in range(10) for b in range(10)]
    n_test_keys = sum(task.split_of(Problem("", "", "", {}, key)) == "test" for key in keys)
    assert len({p.key for p in test}) == n_test_keys


def test_bad_split_and_n():
    task = Addition()
    with pytest.raises(ValueError, match="train.*test.*'valid'"):
        task.problems("valid", 10)
    with pytest.raises(ValueError, match="0"):
        task.problems("train", 0)


def test_format_prompt_and_reward():
    task = Addition()
    p = task.problems("train", 1)[0]
    assert task.format_prompt(p) == p.prompt == f"{p.meta['a']}+{p.meta['b']}="
    chat = task.format_prompt(p, "chat", FakeTokenizer())
    assert chat.startswith("<|user|>") and chat.endswith("<|assistant|>")
    assert p.question in chat and "<answer></answer>" in chat
    with pytest.raises(ValueError, match="tokenizer"):
        task.format_prompt(p, "chat")
    with pytest.raises(ValueError, match="plain.*chat.*'fancy'"):
        task.format_prompt(p, "fancy")
    assert task.reward([p, p], [p.answer, "nope"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="2 problems but 1"):
        task.reward([p, p], [p.answer])


# --- answer extraction and addition -----------------------------------------------------------


def test_extract_answer():
    assert extract_answer("  46  \nmore", 10) == "46"
    assert extract_answer("think\n<answer> 1 </answer> then <answer>2</answer>", 10) == "2"
    assert extract_answer("<answer>1</answer> <answer>2", 10) == "1"  # unclosed last tag
    assert extract_answer("<answer> </answer>", 10) is None
    assert extract_answer("", 10) is None
    assert extract_answer("x" * 100, 10) == "x" * 10 + "…"


ADDITION_CASES = [
    ("46", True, True, "ok"),
    (" 46 ", True, True, "ok"),
    ("46\nmore text", True, True, "ok"),
    ("<answer>46</answer>", True, True, "ok"),
    ("reasoning <answer>45</answer> <answer>46</answer>", True, True, "ok"),
    ("<answer>45</answer>", False, True, "wrong value"),
    ("+46", True, True, "ok"),
    ("-46", False, True, "wrong value"),
    ("forty-six", False, False, "not an integer"),
    ("", False, False, "no answer"),
    ("\n46", False, False, "no answer"),
    ("4 6", False, False, "not an integer"),
    ("46 is it", False, False, "not an integer"),
    ("٤٦", False, False, "not an integer"),  # Arabic-Indic digits: int() would accept them
    ("9" * 100_000, False, False, "too long"),
]


@pytest.mark.parametrize("completion, correct, well_formed, reason", ADDITION_CASES)
def test_addition_verdicts(completion, correct, well_formed, reason):
    problem = Problem("What is 12 + 34?", "12+34=", "46", {"a": 12, "b": 34}, "12+34")
    verdict = Addition().verify(problem, completion)
    assert (verdict.correct, verdict.well_formed, verdict.reason) == (correct, well_formed, reason)


# --- the expression parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, value, literals",
    [
        ("2+3*4", 14, [2, 3, 4]),
        ("8-3-2", 3, [8, 3, 2]),
        ("8/2/2", 2, [8, 2, 2]),
        ("(2+3)*4", 20, [2, 3, 4]),
        ("2*(3+4)-(5-1)", 10, [2, 3, 4, 5, 1]),
        (" ( 9 - 3 ) * 4 ", 24, [9, 3, 4]),
        ("3-5", -2, [3, 5]),
        ("0", 0, [0]),
    ],
)
def test_evaluate(expr, value, literals):
    assert evaluate(expr) == (value, literals)


def test_evaluate_fractions_when_allowed():
    assert evaluate("7/2*2", integer_steps=False)[0] == 7
    assert evaluate("1/3", integer_steps=False)[0] == Fraction(1, 3)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("3+", "ends where a number"),
        ("(3", "never closed"),
        ("3)", "unexpected '\\)' at position 1"),
        ("()", "unexpected '\\)'"),
        ("3 4", "unexpected '4'"),
        ("3++4", "unexpected '\\+'"),
        ("-3+4", "unary minus"),
        ("3*-4", "unary minus"),
        ("07+1", "leading zero"),
        ("3^2", "unexpected character '\\^'"),
        ("3.5", "unexpected character '.'"),
        ("5/0", "division by zero"),
        ("5/(3-3)", "division by zero"),
        ("7/2", "7/2 is not an integer"),
        ("1" * 65, "too long"),
        ("(" * 9 + "1" + ")" * 9, "nested deeper than 8"),
        ("1000000000001", "over 1000000000000"),
        ("1000000*1000001", "intermediate value"),
    ],
)
def test_evaluate_errors(expr, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(expr)


def test_evaluate_limits_are_configurable():
    assert evaluate("(" * 20 + "1" + ")" * 20, max_depth=20, max_chars=100)[0] == 1
    with pytest.raises(ExpressionError, match="over 10"):
        evaluate("11", max_value=10)


# --- countdown --------------------------------------------------------------------------------


COUNTDOWN_CASES = [
    ("3*5+7", True, True, "ok"),
    ("<answer>7+3*5</answer>", True, True, "ok"),
    ("3*5+7\nbecause 15+7=22", True, True, "ok"),
    ("3*5+7 because", False, False, "unexpected character 'b'"),
    ("5*5-3", False, True, "reused number 5"),
    ("9+13", False, True, "number 9 not given"),
    ("3+5", False, True, "evaluates to 8, not 22"),
    ("7/(5-5)", False, False, "division by zero"),
    ("7/3", False, False, "7/3 is not an integer"),
    ("-3+5*5", False, False, "unary minus"),
    ("eval('__import__(\"os\")')", False, False, "unexpected character 'e'"),
    ("__import__('os').system('ls')", False, False, "unexpected character '_'"),
    ("9999999999999*99999999999", False, False, "over"),
    ("999999*999999", False, True, "number 999999 not given"),
    ("1" * 100_000, False, False, "too long"),
    ("(" * 1000 + "3" + ")" * 1000, False, False, "too long"),
    ("(" * 20 + "3" + ")" * 20, False, False, "nested deeper"),
    ("((((", False, False, "ends where a number"),
    ("3×5+7", False, False, "unexpected character '×'"),
    ("", False, False, "no answer"),
    ("<answer></answer>", False, False, "no answer"),
]


@pytest.mark.parametrize("completion, correct, well_formed, reason", COUNTDOWN_CASES)
def test_countdown_verdicts(completion, correct, well_formed, reason):
    verdict = Countdown().verify(countdown_problem([3, 5, 7], 22), completion)
    assert (verdict.correct, verdict.well_formed) == (correct, well_formed), verdict
    assert reason in verdict.reason


def test_countdown_use_all_and_fractions():
    problem = countdown_problem([3, 5, 7, 1], 22)
    assert Countdown(n_numbers=4).verify(problem, "3*5+7").correct
    verdict = Countdown(n_numbers=4, use_all=True).verify(problem, "3*5+7")
    assert not verdict.correct and verdict.reason == "unused numbers 1"
    assert Countdown(n_numbers=4, use_all=True).verify(problem, "3*5+7*1").correct
    problem = countdown_problem([7, 2, 4], 14)
    assert Countdown(integer_steps=False).verify(problem, "7/2*4").correct
    assert Countdown(integer_steps=True).verify(problem, "7/2*4").reason == "7/2 is not an integer"


def test_countdown_problem_format():
    task = Countdown()
    p = task.problems("train", 1, seed=3)[0]
    numbers, target = p.meta["numbers"], p.meta["target"]
    assert len(numbers) == 3 and all(1 <= n <= 20 for n in numbers) and 1 <= target <= 100
    assert p.prompt == " ".join(map(str, numbers)) + f">{target}:"
    assert p.key == ",".join(map(str, sorted(numbers))) + f">{target}"
    assert p.question.startswith(f"Using the numbers {', '.join(map(str, numbers))}, create")
    assert set(p.prompt + p.answer) <= set(task.alphabet)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_numbers": 4, "use_all": True}, {"n_numbers": 5, "integer_steps": False}, {"n_numbers": 2}],
)
def test_generated_answers_verify(kwargs):
    task = Countdown(**kwargs)
    for p in task.problems("train", 500, seed=7):
        verdict = task.verify(p, p.answer)
        assert verdict.correct, (p, verdict)
        assert set(p.prompt + p.answer) <= set(task.alphabet)


def test_solve_generated_problems():
    task = Countdown()
    for p in task.problems("test", 200, seed=11):
        answer = solve(p.meta["numbers"], p.meta["target"])
        assert answer is not None and task.verify(p, answer).correct, (p, answer)


def test_solve_hand_cases():
    assert solve([3, 5, 7], 22) in {"3*5+7", "5*3+7", "7+3*5", "7+5*3"}
    assert evaluate(solve([9, 3, 4], 24, use_all=True))[0] == 24
    assert solve([9, 3, 4], 24, use_all=True) in {"(9-3)*4", "4*(9-3)"}
    assert solve([2, 2], 7) is None
    assert solve([7, 2], 7) == "7"  # at most once: a given number alone is an answer
    assert solve([7, 2], 7, use_all=True) is None
    assert solve([7, 2, 4], 14, use_all=True) is not None  # 7*4/2
    assert solve([1, 3, 4, 6], 24, use_all=True) is None  # the only way divides by a fraction
    assert solve([1, 3, 4, 6], 24, use_all=True, integer_steps=False) == "6/(1-3/4)"


@pytest.mark.parametrize("task", [Addition(), Countdown(), Countdown(use_all=True, integer_steps=False)])
def test_verifiers_are_total_on_random_junk(task):
    rng = random.Random(0)
    problem = task.problems("train", 1)[0]
    pieces = list(task.alphabet) + ["<answer>", "</answer>", "\n", "(", "-", "0", "é", "\x00", "9" * 30]
    for _ in range(2000):
        completion = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        verdict = task.verify(problem, completion)
        assert verdict.reason and (verdict.well_formed or not verdict.correct)


def test_read_after_mark():
    from rl4lrm.tasks.base import read_after_mark

    assert read_after_mark("7+8=15;5+6+1=12#125", "#", 8) == ("125", None)
    assert read_after_mark("3+5=8#8+7#5*3+7 ", "#", 8) == ("5*3+7", None)  # the last mark counts
    assert read_after_mark("a=>b=>42", "=>", 8) == ("42", None)  # a mark of several characters
    for text in ("125", "12#", "12#   "):
        parsed, failed = read_after_mark(text, "#", 8)
        assert parsed is None and failed.reason == "no answer" and not failed.well_formed
    parsed, failed = read_after_mark("#123456789", "#", 4)
    assert parsed == "123456789" and failed.reason == "too long" and failed.parsed == "1234…"
