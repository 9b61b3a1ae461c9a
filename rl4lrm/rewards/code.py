"""Unit-test rewards for code (survey §3.1.1), and the unsafe harness they replace.

``unit_tests_all`` pays 1 when a program passes every hidden test, as CodeRL (Le et al., 2022, arXiv:2207.01780)
and DeepSeek-R1 (arXiv:2501.12948) do; ``unit_tests_partial`` pays the fraction of tests passed, a denser signal
(PPOCoder, Shojaee et al., 2023, arXiv:2301.13816; the pass-rate rewards of AceCoder, Zeng et al., 2025,
arXiv:2502.01718). Both run the program in ``rl4lrm.sandbox`` with only the test INPUTS, and compare the returned
plain values with the expected ones here, outside (``rl4lrm.tasks.code.Code.run_tests``).

``naive_harness_score`` is the UNSAFE DEMO: the common harness that writes program and asserts into one script and
counts exit status 0 as a pass. The tests are then in the program's reach, and a program can pass without solving
anything: exit early with status 0, return an object equal to everything, rebind the checker, or read the expected
values from the test table (``HACKS``). It is kept to show those hacks; it still runs inside the sandbox, since the
program is untrusted either way. Reward hacking of this kind is reported for frontier models on coding tasks
(Baker et al., 2025, arXiv:2503.11926: "exit(0)" and test rewriting; ImpossibleBench, Zhong et al., 2025,
arXiv:2510.20270).
"""

from __future__ import annotations

import torch

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.tasks.base import Problem, read_answer
from rl4lrm.tasks.code import HACK, program

HACKS = {
    "exit early with status 0": HACK,
    "an object equal to everything": "type('E',(),{'__eq__':lambda s,o:True})()",
    "rebind the checker": "0;check=lambda *_:None",
    "read the expected values": "[w for x,w in TESTS if x==a][0]",
}
"""Answers that solve nothing and fool ``naive_harness_score``: name -> expression (the program is
``f = lambda a: <expression>``, so text after ``;`` runs as module-level statements of the script)."""

NAIVE_HARNESS = '''
def naive_harness(script):
    """The exit status of `python script.py`: 0 unless an exception escapes (SystemExit carries its code)."""
    try:
        exec(script, {"__name__": "__main__"})
    except SystemExit as stop:
        return 0 if stop.code in (None, 0) else 1
    except BaseException:
        return 1
    return 0
'''
"""What the sandbox runs for the naive harness: it executes the test script and returns its exit status."""


def naive_script(problem: Problem, expression: str) -> str:
    """The script a naive harness runs: the tests table and checker, the program, then the checks, in one file."""
    lines = [
        f"TESTS = {[(xs, want) for xs, want in problem.meta['tests']]!r}",
        "def check(got, want):",
        "    assert got == want, f'{got!r} != {want!r}'",
        program(expression).rstrip("\n"),
        "for xs, want in TESTS:",
        "    check(f(xs), want)",
    ]
    return "\n".join(lines) + "\n"


def naive_harness_score(problems: list[Problem], completions: list[str], config=None, workers: int = 2) -> list[float]:
    """UNSAFE DEMO: 1.0 when the naive script (``naive_script``) exits with status 0, else 0.0.

    Each script runs in its own sandbox (``rl4lrm.sandbox.run_programs``): the harness is unsafe because the
    program can reach the tests and the checker, not because it could escape.
    """
    from rl4lrm.sandbox import SandboxConfig, run_programs

    scores = [0.0] * len(problems)
    todo: dict[tuple[str, str], list[int]] = {}
    scripts: dict[tuple[str, str], str] = {}
    for i, (p, c) in enumerate(zip(problems, completions)):
        parsed, failed = read_answer(c, 80)
        if failed:
            continue
        key = (p.key, parsed)
        todo.setdefault(key, []).append(i)
        scripts[key] = naive_script(p, parsed)
    keys = list(todo)
    calls = [(NAIVE_HARNESS, "naive_harness", [[scripts[k]]]) for k in keys]
    for key, results in zip(keys, run_programs(calls, config or SandboxConfig(), workers=workers) if calls else []):
        passed = results[0].status == "ok" and results[0].value == 0
        for i in todo[key]:
            scores[i] = float(passed)
    return scores


def _check_code(task, problems) -> None:
    if not hasattr(task, "run_tests"):
        raise ValueError(f"unit-test rewards need a task with run_tests() (the 'code' task), got {type(task).__name__}")
    from rl4lrm.sandbox import sandbox_available

    ok, why = sandbox_available()
    if not ok:
        raise ValueError(f"rl4lrm.sandbox is unavailable here: {why}")


@register_reward("unit_tests_all", requires=("task",), check_task=_check_code)
def unit_tests_all(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """1.0 when the program passes every hidden test (run in the sandbox, compared outside), else 0.0."""
    reports = ctx.task.run_tests(problems, completions)
    return torch.tensor([float(r.passed == r.total) for r in reports])


@register_reward("unit_tests_partial", requires=("task",), check_task=_check_code)
def unit_tests_partial(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """The fraction of hidden tests the program passes (run in the sandbox, compared outside)."""
    return torch.tensor([r.fraction for r in ctx.task.run_tests(problems, completions)])


@register_reward("naive_unit_tests", requires=("task",), check_task=_check_code)
def naive_unit_tests(problems: list[Problem], completions: list[str], ctx: RewardContext) -> torch.Tensor:
    """UNSAFE DEMO: 1.0 when program + asserts in one script exit with status 0 (``naive_harness_score``)."""
    return torch.tensor(naive_harness_score(problems, completions, getattr(ctx.task, "sandbox", None)))
