"""Seeded fuzzing of every class of fault, bad setting and hostile reward input the package must
survive.

Each test draws its cases from ``random.Random(seed)``, keeps inputs small (bounded memory) and runs under a
hard per-test timeout (``pytest-timeout``), since a hang is the failure feared. The ``N_*`` constants are the
case counts per class.
"""

import dataclasses
import math
import random
import threading
import typing

import pytest
import torch
from test_validation import CONFIGS  # every dataclass config the library validates

from rl4lrm.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rl4lrm.presets import PRESETS
from rl4lrm.rewards import RewardContext
from rl4lrm.rewards.math_worker import MathWorker, too_costly
from rl4lrm.rewards.verifiable import last_number, math_equiv, numeric, parse_number
from rl4lrm.tasks import get_task
from rl4lrm.tasks.base import Problem
from rl4lrm.tasks.expression import ExpressionError, evaluate

pytestmark = pytest.mark.timeout(120)

N_CHECKPOINT_FLIPS, N_CHECKPOINT_CUTS = 60, 30
N_CONFIG_VALUES = 12  # hostile values tried on every field of every config class
N_MATH_STRINGS = 40
N_NUMERALS = 400
N_CHAIN = 200
N_EXPRESSIONS = 400
HOSTILE_VALUES = [math.nan, math.inf, -math.inf, -1, -1.5, 0, "0.1", "a", [1], {"x": 1}, True, 10**30]


def _problem(answer: str) -> Problem:
    return Problem(question="", prompt="", answer=answer, meta={}, key=answer)


# ---------------------------------------------------------------- faults


def test_fuzz_checkpoint_corruption_is_always_refused(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "good.pt"
    save_checkpoint(
        {"w": torch.randn(64, generator=torch.Generator().manual_seed(0)), "step": 3, "history": [{"a": 1.0}]}, path
    )
    good = path.read_bytes()
    refused = 0
    for i in range(N_CHECKPOINT_FLIPS + N_CHECKPOINT_CUTS):
        data = bytearray(good)
        if i < N_CHECKPOINT_FLIPS:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            data = data[: rng.randrange(len(data))]
        bad = tmp_path / f"bad{i}.pt"
        bad.write_bytes(bytes(data))
        with pytest.raises(CheckpointError, match=f"bad{i}.pt"):
            load_checkpoint(bad)
        refused += 1
    assert refused == N_CHECKPOINT_FLIPS + N_CHECKPOINT_CUTS


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize("cls", CONFIGS)
def test_fuzz_every_field_of_every_config_either_validates_or_raises_one_value_error(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        for value in HOSTILE_VALUES:
            try:
                config = cls(**{f.name: value})
            except ValueError as err:
                assert f.name in str(err), (f.name, value, err)
                continue
            # accepted: then it is a well-typed, finite value
            got = getattr(config, f.name)
            if "float" in str(hints[f.name]) and got is not None:
                assert math.isfinite(got), (cls.__name__, f.name, value)
            assert not isinstance(got, (str, list)) or "str" in str(hints[f.name]) or "dict" in str(hints[f.name])


def test_fuzz_every_preset_axis():
    for name in [f.name for f in dataclasses.fields(PRESETS["grpo"]) if f.name not in ("name", "paper")]:
        for value in HOSTILE_VALUES:
            try:
                preset = dataclasses.replace(PRESETS["grpo"], **{name: value})
            except ValueError as err:
                assert name in str(err)
                continue
            got = getattr(preset, name)
            assert not isinstance(got, float) or math.isfinite(got)


# ---------------------------------------------------------------- rewards


FALSE_POSITIVES = [
    "47 = 46",
    "x = 47 = 46",
    "46 \\approx 47",
    "46\\%",
    "46%",
    "46 < 47",
    "46 \\neq 47",
    "46+1/10^{9}",
    "The answer is 46+1/10^{9}",
    "0,046",
]
TRUE_POSITIVES = ["46", "\\boxed{46}", "46.0", "\\frac{92}{2}", "x = 46", "2 + 44 = 46"]
TOWERS = [
    "10^{10^{10}}",
    "9^9^9",
    "2**3**40",
    "10^{99999999}",
    "123456!",
    "(10^{10})^{10^{10}}",
    "x^{y^{z}}",
    "46 + 10^{10^{10}} - 10^{10^{10}}",
]


def _hostile_math(rng: random.Random) -> str:
    pieces = [
        "46",
        "47",
        "^",
        "{",
        "}",
        "10",
        "\\frac{",
        "=",
        "\\%",
        "\\approx",
        "+",
        "-",
        "!",
        "(",
        ")",
        "\\sqrt{",
        " ",
        "x",
        "\\boxed{",
        "<answer>",
        "</answer>",
        "9",
        "**",
        ",",
    ]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))


def test_fuzz_math_equiv_is_bounded_and_never_rewards_a_false_positive_off_the_main_thread():
    rng = random.Random(1)
    strings = FALSE_POSITIVES + TRUE_POSITIVES + TOWERS
    strings += [_hostile_math(rng) for _ in range(N_MATH_STRINGS - len(strings))]
    out = {}

    def run():  # off the main thread, where math-verify's own signal timeouts do not work
        out["strict"] = math_equiv([_problem("46")] * len(strings), strings, RewardContext(), extract="strict")
        out["lenient"] = math_equiv([_problem("46")] * len(strings), strings, RewardContext(), extract="lenient")

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=100)
    assert not worker.is_alive(), "math_equiv did not finish off the main thread"
    for mode in ("strict", "lenient"):
        verdicts = dict(zip(strings, out[mode].tolist()))
        assert set(verdicts.values()) <= {0.0, 1.0}
        assert all(verdicts[s] == 0.0 for s in FALSE_POSITIVES + TOWERS), (mode, verdicts)
        assert all(verdicts[s] == 1.0 for s in TRUE_POSITIVES), (mode, verdicts)
    assert all(too_costly(t) for t in TOWERS[:-2])


@pytest.mark.timeout(60)
def test_a_comparison_past_the_hard_limit_is_killed_and_the_worker_restarts():
    worker = MathWorker(hard_timeout_s=1.0)
    try:
        assert not too_costly("2^{999*999*999}")  # passes the cheap screen: only the hard limit stops it
        assert worker.equal("2^{999*999*999}", "46", "strict") is False
        assert worker.restarts == 1
        assert worker.equal("\\frac{92}{2}", "46", "strict") is True  # a fresh worker answers
    finally:
        worker.stop()


def test_fuzz_numerals_with_commas():
    rng = random.Random(2)
    for _ in range(N_NUMERALS):
        lead = str(rng.randint(0, 9999))
        if rng.random() < 0.3:
            lead = "0" + lead[1:]
        groups = [lead] + [
            "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 2, 3, 3, 3, 4])))
            for _ in range(rng.randint(1, 3))
        ]
        text = ",".join(groups)
        value = parse_number(text)
        thousands = all(len(g) == 3 for g in groups[1:]) and 1 <= len(lead) <= 3 and not lead.startswith("0")
        if thousands:
            assert value == int(text.replace(",", "")), text
        else:
            assert value is None, text  # "0,046", "1234,567" and lists are not one number
        if not thousands and all(len(g) == 3 for g in groups[1:]):
            assert last_number(f"7 then {text}") == "7", text  # never split into its groups
    assert numeric([_problem("46")], ["0,046"], RewardContext(), extract="lenient").item() == 0.0


def test_fuzz_chain_reads_the_line_a_stray_closing_tag_ends():
    rng = random.Random(3)
    task = get_task("chain")
    for _ in range(N_CHAIN):
        problem = task.sample(rng)
        values = problem.answer.split("\n")
        noise = [str(rng.randint(0, 99)) for _ in range(rng.randint(0, 3))]
        right = rng.random() < 0.5
        last = values[-1] if right else str(int(values[-1]) + rng.randint(1, 9))
        sep = rng.choice(["", " ", "\n"])
        completion = "\n".join(noise + values[:-1] + [last]) + sep + "</answer>" + rng.choice(["", "\n", "\n99"])
        verdict = task.verify(problem, completion)
        assert verdict.parsed == last and verdict.correct == right, (completion, verdict)


def _expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.2:
        return str(rng.randint(1, 9))
    return f"({_expression(rng, depth - 1)}{rng.choice('+-*/')}{_expression(rng, 0)})"


def test_fuzz_expressions_give_a_verdict_at_any_depth():
    rng = random.Random(4)
    for i in range(N_EXPRESSIONS):
        if i % 2:
            text = "".join(rng.choice("0123456789+-*/()  ") for _ in range(rng.randint(1, 40)))
        else:
            depth = rng.choice([1, 5, 50, 2000, 5000])
            text = "(" * depth + _expression(rng, 3) + ")" * rng.choice([depth, depth - 1, depth + 1])
        try:
            value, literals = evaluate(text, max_chars=10**5, max_depth=10**6, integer_steps=False)
        except ExpressionError:
            continue  # a verdict: malformed, or a limit
        assert all(isinstance(n, int) for n in literals) and value == value
