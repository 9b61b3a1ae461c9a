"""rl4lrm.sandbox: calibration programs score right, and a corpus of hostile programs stays contained.

Each hostile program is run for real in a bubblewrap sandbox and the test asserts what the caller sees
(its status, its value) and, where it matters, what the host sees afterwards (files, processes).
"""

import os

import pytest

from rl4lrm.sandbox import STATUSES, CallResult, SandboxConfig, run_calls, run_programs, sandbox_available
from rl4lrm.sandbox.cgroup import cgroup_available
from rl4lrm.sandbox.seccomp import seccomp_program

FAST = SandboxConfig(timeout_s=1.0)


def run1(source: str, config: SandboxConfig = FAST, entry: str = "f", args: list | None = None) -> CallResult:
    """The verdict of a one-call program ``f()``."""
    (result,) = run_calls(source, entry, [args or []], config)
    return result


def test_the_sandbox_runs_here():
    assert sandbox_available() == (True, "")
    assert seccomp_program()[1] == ""
    assert cgroup_available() == (True, "") or os.geteuid() != 0


# ---------------------------------------------------------------- calibration: honest programs score right


def test_values_come_back_in_order():
    src = "def add(a, b):\n    return a + b\n"
    assert run_calls(src, "add", [[1, 2], [3, 4], ["x", "y"], [[1], [2]]], FAST) == [
        CallResult("ok", 3),
        CallResult("ok", 7),
        CallResult("ok", "xy"),
        CallResult("ok", [1, 2]),
    ]


def test_plain_data_crosses_as_json():
    src = "def f():\n    return {'a': (1, 2.5), 'b': None, 'c': True, 'd': 'é'}\n"
    assert run1(src) == CallResult("ok", {"a": [1, 2.5], "b": None, "c": True, "d": "é"})


def test_exceptions_are_per_input():
    src = "def inv(x):\n    return 1 / x\n"
    results = run_calls(src, "inv", [[2], [0], [4]], FAST)
    assert [r.status for r in results] == ["ok", "error", "ok"]
    assert results[1].error == "ZeroDivisionError: division by zero" and results[1].value is None
    assert [results[0].value, results[2].value] == [0.5, 0.25]


def test_state_persists_across_calls_of_one_program():
    src = "seen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)\n"
    assert [r.value for r in run_calls(src, "f", [[0], [0], [0]], FAST)] == [1, 2, 3]


def test_load_failures_are_errors_for_every_input():
    syntax = run_calls("def f(:\n", "f", [[1], [2]], FAST)
    assert [r.status for r in syntax] == ["error", "error"] and syntax[0].error.startswith("SyntaxError")
    missing = run_calls("x = 1\n", "f", [[1]], FAST)
    assert missing[0].status == "error" and "no function 'f'" in missing[0].error
    raising = run_calls("raise ValueError('at import')\ndef f():\n    return 1\n", "f", [[]], FAST)
    assert raising == [CallResult("error", None, "ValueError: at import")]


def test_sys_exit_is_an_error_of_that_call():
    src = "import sys\ndef f(x):\n    if x:\n        sys.exit(3)\n    return 0\n"
    assert [r.status for r in run_calls(src, "f", [[1], [0]], FAST)] == ["error", "ok"]


def test_the_standard_library_imports():
    src = "import collections, functools, heapq, itertools, json, math, re, fractions, decimal\ndef f():\n"
    src += "    return [math.comb(5, 2), str(fractions.Fraction(1, 3)), re.sub('a', 'b', 'aa')]\n"
    assert run1(src) == CallResult("ok", [10, "1/3", "bb"])


def test_run_programs_keeps_order():
    programs = [(f"def f(x):\n    return x * {k}\n", "f", [[1], [2]]) for k in range(5)]
    programs.append(("def f(x):\n    return 1 / 0\n", "f", [[1]]))
    results = run_programs(programs, FAST, workers=2)
    assert [[r.value for r in rs] for rs in results[:5]] == [[k, 2 * k] for k in range(5)]
    assert results[5][0].status == "error"
    assert run_calls("def f():\n    return 1\n", "f", [], FAST) == []


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="SandboxConfig.timeout_s"):
        SandboxConfig(timeout_s=0)
    with pytest.raises(ValueError, match="SandboxConfig.memory_mb"):
        SandboxConfig(memory_mb=1)
    with pytest.raises(ValueError, match="CallResult.status"):
        CallResult("fine")
    assert set(STATUSES) == {"ok", "error", "timeout", "killed", "bad_output"}
