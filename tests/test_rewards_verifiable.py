"""Verifiable rewards: exact match, numeric, math-verify equivalence, format, extraction modes."""

import threading
from fractions import Fraction

import pytest
import torch

from rl4lrm.rewards import REWARDS, RewardContext, RewardMix, compute_reward
from rl4lrm.rewards.verifiable import (
    FALSE_NEGATIVE_EXAMPLES,
    false_negatives,
    get_answer,
    is_well_formed,
    last_number,
    parse_number,
)
from rl4lrm.tasks import Problem

CTX = RewardContext()


def problem(answer="46"):
    return Problem(question=f"q {answer}", prompt="p", answer=answer, meta={}, key=f"k{answer}")


def score(name, completions, answer="46", **params):
    return compute_reward(name, [problem(answer)] * len(completions), completions, CTX, **params).tolist()


ADVERSARIAL = [
    "",
    "\n",
    "<answer>",
    "</answer>",
    "<answer></answer>",
    "<answer>" * 10**4,
    "9" * 10**5,
    "<answer>" + "9" * 5000 + "</answer>",
    "x" * 10**5 + "46",
    "٤٦",
    "<answer><answer>46</answer>",
    "$\\frac{1}{$",
    "\\boxed{",
    "}{}{",
    "((((((((((((((((((((",
    "$2^{2^{2^{2^{2^{2}}}}}$",
    "\x00\udcff",
]


def test_registered():
    for name in ("exact_match", "numeric", "math_equiv", "format"):
        assert name in REWARDS
        assert REWARDS.get(name).requires == frozenset()


def test_parse_number_grammar():
    assert parse_number("46") == 46 and parse_number(" -46 ") == -46 and parse_number("+46") == 46
    assert parse_number("46.0") == 46 and parse_number("0.25") == Fraction(1, 4)
    assert parse_number("3/4") == Fraction(3, 4) and parse_number("-92/2") == -46
    assert parse_number("12,345") == 12345 and parse_number("1,234,567.5") == Fraction(2469135, 2)
    for bad in (
        "1,2,3",
        "12,34",
        "٤٦",
        "4_6",
        "1e3",
        "inf",
        "nan",
        "46.",
        ".5",
        "3/0",
        "1/2/3",
        "",
        None,
        "forty-six",
        "9" * 65,
    ):
        assert parse_number(bad) is None, bad


def test_last_number_and_extraction_modes():
    text = "<think>try 45, no: 40+6</think><answer>46</answer> (check: 46)"
    assert get_answer(text, "strict") == "46"
    assert get_answer("The answer is 46.\nmore", "strict") == "The answer is 46."
    assert get_answer("The answer is 46.\nmore 7", "lenient") == "7"
    assert last_number("1,2,3") == "3" and last_number("x = -7.") == "-7" and last_number("no digits") is None
    with pytest.raises(ValueError, match=r"extract must be one of \('strict', 'lenient'\), got 'loose'"):
        get_answer("46", "loose")


@pytest.mark.parametrize("name", ["exact_match", "numeric", "math_equiv"])
def test_bad_extract_mode_names_value_and_choices(name):
    with pytest.raises(ValueError, match=r"extract must be one of \('strict', 'lenient'\), got 'LENIENT'"):
        score(name, ["46"], extract="LENIENT")


def test_exact_match_strict_vs_lenient():
    completions = [
        "46",
        " 46 \n",
        "<answer> 46 </answer>",
        "The answer is 46.",
        "46.0",
        "<answer>45</answer> 46",
        "I guess 46\n<answer>47</answer>",
        "46 is it",
        "",
    ]
    assert score("exact_match", completions, extract="strict") == [1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert score("exact_match", completions, extract="lenient") == [1, 1, 1, 1, 0, 1, 0, 1, 0]


def test_exact_match_normalises_inner_whitespace():
    assert score("exact_match", ["<answer>3 * 5  +\t7</answer>", "3*5+7"], answer="3 * 5 + 7") == [1, 0]


def test_numeric_equivalent_forms_and_tolerance():
    completions = ["46", "46.0", "92/2", "+46", "46.000001", "45", "<answer>46</answer>", "4.6e1", "٤٦"]
    assert score("numeric", completions) == [1, 1, 1, 1, 0, 0, 1, 0, 0]
    assert score("numeric", ["46.000001", "46.1"], rel_tol=1e-6) == [1, 0]
    assert score("numeric", ["46.05", "46.2"], abs_tol=0.1) == [1, 0]
    assert score("numeric", ["0.333", "0.3"], answer="1/3", abs_tol=1e-3) == [1, 0]


def test_numeric_is_exact_on_large_integers():
    big = str(10**20)
    assert score("numeric", [big, str(10**20 + 1)], answer=big) == [1, 0]  # floats would call them equal


def test_numeric_strict_vs_lenient():
    completions = ["The answer is 46.", "46 apples", "<answer>about 46</answer>", "step 1: 40\nstep 2: 46", "46 not 47"]
    assert score("numeric", completions, extract="strict") == [0, 0, 0, 0, 0]
    assert score("numeric", completions, extract="lenient") == [1, 1, 1, 1, 0]


@pytest.mark.parametrize(
    "param,value",
    [("rel_tol", -1.0), ("abs_tol", float("nan")), ("rel_tol", "0.1"), ("abs_tol", True), ("rel_tol", float("inf"))],
)
def test_numeric_bad_tolerance(param, value):
    with pytest.raises(ValueError, match=f"{param} must be a finite number >= 0, got {value!r}"):
        score("numeric", ["46"], **{param: value})


def test_numeric_rejects_non_numeric_reference():
    with pytest.raises(ValueError, match=r"reference answer '3\*5\+7' of problem"):
        score("numeric", ["22"], answer="3*5+7")


def test_math_equiv_equivalences():
    completions = [
        "46",
        "46.0",
        "\\frac{92}{2}",
        "\\boxed{46}",
        "$46$",
        "<answer>\\boxed{46}</answer>",
        "<answer>92/2</answer>",
        "<answer>\\dfrac{92}{2}</answer>",
        "45",
        "forty-six",
        "٤٦",
    ]
    assert score("math_equiv", completions) == [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    half = ["0.5", "1/2", "\\frac{1}{2}", "\\boxed{0.5}", "$\\frac{2}{4}$", "\\boxed{\\frac12}", "0.6"]
    assert score("math_equiv", half, answer="\\frac{1}{2}") == [1, 1, 1, 1, 1, 1, 0]
    assert score("math_equiv", ["\\sqrt{4}", "2.0", "3"], answer="2") == [1, 1, 0]


def test_math_equiv_strict_vs_lenient():
    completions = [
        "Let me think.\nSo the answer is \\boxed{46}.",
        "<think>45?</think><answer>46</answer>",
        "46\nbut wait, it is 47",
        "We get 47, so the final answer is 46",
    ]
    assert score("math_equiv", completions, extract="strict") == [0, 1, 1, 0]
    assert score("math_equiv", completions, extract="lenient") == [1, 1, 0, 1]


@pytest.mark.parametrize("name", ["exact_match", "numeric", "math_equiv", "format"])
def test_adversarial_inputs_score_zero_and_never_raise(name):
    values = score(name, ADVERSARIAL)
    expected = [0.0] * len(ADVERSARIAL)
    if name in ("exact_match", "numeric", "math_equiv"):
        expected[ADVERSARIAL.index("<answer><answer>46</answer>")] = 1.0  # the last answer pair holds 46
    assert values == expected


def test_lenient_modes_on_adversarial_inputs():
    values = score("numeric", ADVERSARIAL, extract="lenient")
    assert values[ADVERSARIAL.index("x" * 10**5 + "46")] == 1.0 and values[ADVERSARIAL.index("9" * 10**5)] == 0.0
    quick = [a for a in ADVERSARIAL if "2^{2^" not in a]  # the power tower costs a 2 s timeout, tested above
    assert all(v in (0.0, 1.0) for v in score("math_equiv", quick, extract="lenient"))


def test_math_equiv_in_a_worker_thread():
    # math-verify's signal-based timeouts raise outside the main thread; the reward must still work there
    out = {}
    worker = threading.Thread(target=lambda: out.update(v=score("math_equiv", ["\\frac{92}{2}", "45"])))
    worker.start()
    worker.join(60)
    assert out["v"] == [1.0, 0.0]


def test_format_patterns():
    well = "<think>40+6</think>\n<answer>46</answer>\n"
    cases = [
        well,
        "<think></think><answer>46</answer>",
        "<answer>46</answer>",
        "text <answer>46</answer> more",
        "<think>a</think><answer> </answer>",
        "<think>a</think><answer>1</answer><answer>2</answer>",
        "<think>a<think>b</think></think><answer>46</answer>",
        "<answer>46</answer><think>a</think>",
        "Sure! <think>a</think><answer>46</answer>",
        "<think>a</think>so<answer>46</answer>",
        "</answer>46<answer>",
        "<think>unfinished reasoning, cut off by the length cap",
        "",
    ]
    assert score("format", cases) == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert score("format", cases, pattern="answer_tag") == [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0]
    assert is_well_formed(well) and is_well_formed(well, "answer_tag") is not False
    with pytest.raises(ValueError, match=r"pattern must be one of \('think_answer', 'answer_tag'\), got 'xml'"):
        score("format", ["46"], pattern="xml")


def test_reward_mix_of_verifiable_rewards():
    completions = [
        "<think>40+6</think><answer>46</answer>",
        "<answer>46.0</answer>",
        "<think>a</think><answer>45</answer>",
    ]
    mix = RewardMix({"numeric": 1.0, "format": 0.2, "exact_match": (0.5, {"extract": "lenient"})})
    total, parts, token_total = mix([problem()] * 3, completions, CTX)
    assert parts["numeric"].tolist() == [1, 1, 0] and parts["format"].tolist() == [1, 0, 1]
    assert parts["exact_match"].tolist() == [1, 0, 0]
    assert torch.allclose(total, torch.tensor([1.7, 1.0, 0.2])) and token_total is None
    with pytest.raises(ValueError, match="extract must be one of"):
        RewardMix({"numeric": (1.0, {"extract": "bad"})})([problem()], ["46"], CTX)


def test_correct_and_verifiable_agree_on_addition():
    from rl4lrm.tasks.addition import Addition

    task = Addition(2)
    problems = task.problems("train", 8, seed=1)
    completions = [p.answer if i % 2 else str(int(p.answer) + 1) for i, p in enumerate(problems)]
    ctx = RewardContext(task=task)
    expected = compute_reward("correct", problems, completions, ctx)
    for name in ("exact_match", "numeric", "math_equiv"):
        assert torch.equal(compute_reward(name, problems, completions, ctx), expected), name


def test_false_negatives_table():
    table = false_negatives()
    assert list(table["completion"]) == list(FALSE_NEGATIVE_EXAMPLES)
    fixed = dict(zip(table["completion"], table["fixed_by"]))
    assert fixed["46"] == "naive" and fixed["<answer> 46 </answer>"] == "exact_match/strict"
    assert fixed["46.0"] == fixed["92/2"] == "numeric/strict"
    assert fixed["\\frac{92}{2}"] == fixed["<answer>\\boxed{46}</answer>"] == "math_equiv/strict"
    assert fixed["1. add 40 and 6\n2. that gives 46"] == "numeric/lenient"
    assert fixed["forty-six"] == fixed["٤٦"] == fixed["47"] == "—"
    assert (table.drop(columns=["completion", "fixed_by"]).loc[table["completion"] == "47"] == 0).all(axis=None)


def test_math_equiv_prints_nothing_the_student_would_see(capfd):
    # chapter 02 printed math-verify's "Timeout during comparison" on every run: a slow check is a reward of 0,
    # not news. The comparisons run in a worker process whose stderr goes nowhere; "forty-six" read as LaTeX is
    # a product of symbols, the case that timed out.
    assert score("math_equiv", ["forty-six", "46"], answer="46") == [0, 1]
    captured = capfd.readouterr()
    assert "Timeout" not in captured.err + captured.out
