"""Verifiable tasks for RL on reasoning models: addition, TinyZero's Countdown, arithmetic chains
whose intermediate steps are checkable (for process rewards), mixtures of tasks (``Mixture``: one
model, several tasks), your own rows with a TRL-style reward function (``CustomTask``), and any of
reasoning-gym's generators (``ReasoningGymTask``, optional extra ``gym``), and addition that may think before it
answers (``ThinkingAddition``: efficient reasoning), and finding a law ``a*x+b`` behind data points (``Discovery``:
RL for scientific discovery), and one-line Python checked by hidden unit tests in a sandbox (``Code``).

``get_task("countdown", n_numbers=4)`` builds a registered task; each task samples problems,
splits them deterministically into train and test, renders prompts and verifies completions.
"""

from rl4lrm.tasks.addition import Addition
from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, extract_answer
from rl4lrm.tasks.chain import Chain, StepVerdict, first_error
from rl4lrm.tasks.code import Code
from rl4lrm.tasks.countdown import Countdown, solve
from rl4lrm.tasks.countdown_search import CountdownSearch, check_trace, search, trace_valid
from rl4lrm.tasks.custom import CustomTask
from rl4lrm.tasks.discovery import Discovery
from rl4lrm.tasks.expression import ExpressionError, evaluate
from rl4lrm.tasks.gym import ReasoningGymTask
from rl4lrm.tasks.mixture import Mixture
from rl4lrm.tasks.thinking import ThinkingAddition, rechecks, thinking, thinks


def get_task(name: str, **kwargs) -> Task:
    """The task registered as ``name``, built with ``kwargs``; unknown names list the known ones."""
    return TASKS.get(name)(**kwargs)


__all__ = [
    "TASKS",
    "Addition",
    "Chain",
    "Code",
    "Countdown",
    "CountdownSearch",
    "CustomTask",
    "Discovery",
    "ExpressionError",
    "Mixture",
    "ReasoningGymTask",
    "StepVerdict",
    "Problem",
    "Task",
    "ThinkingAddition",
    "Verdict",
    "check_trace",
    "evaluate",
    "extract_answer",
    "first_error",
    "get_task",
    "rechecks",
    "search",
    "solve",
    "thinking",
    "thinks",
    "trace_valid",
]
