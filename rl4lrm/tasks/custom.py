"""Your own data as a task, in TRL's shape: rows with a ``prompt`` column and a reward function.

TRL's ``GRPOTrainer`` (von Werra et al., https://github.com/huggingface/trl) takes a dataset whose
``prompt`` column is what the model sees, plus reward functions called as
``f(prompts=..., completions=..., **columns) -> list[float]``, where ``columns`` are the dataset's
other columns with one value per completion. ``CustomTask`` wraps exactly that into an rl4lrm
``Task``, so data and rewards written for TRL train with ``Trainer(config, model=..., tokenizer=...,
task=CustomTask(rows, reward_fn))`` without a ``Task`` subclass::

    rows = [{"prompt": "12+34=", "answer": "46"}, ...]
    def exact(prompts, completions, answer, **kwargs):
        return [float(c.strip() == a) for c, a in zip(completions, answer)]
    task = CustomTask(rows, exact, test=test_rows)

The training reward is the reward function itself (through ``Task.reward``, which the ``correct``
reward calls). Held-out accuracy needs a verdict per completion: a completion counts as correct
when its reward reaches ``correct_at``. Completions reach the reward function as strings (TRL's
standard format), also for conversational prompts.
"""

from __future__ import annotations

import json
import math
import numbers
import random
from collections.abc import Callable, Iterable

from rl4lrm.tasks.base import STYLES, TASKS, Problem, Task, Verdict, check_request

RewardFunc = Callable[..., list[float]]
"""TRL's reward-function signature: ``f(prompts, completions, **columns) -> list[float]``."""


def _rows(data, where: str) -> list[dict]:
    """A list of dicts from a list of dicts or a ``datasets.Dataset`` (which iterates as dicts)."""
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise ValueError(f"{where} must be a list of dicts or a datasets.Dataset, got {type(data).__name__}")
    rows = list(data)
    if not rows:
        raise ValueError(f"{where} is empty: a task needs at least one row")
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        raise ValueError(f"{where}[{bad}] must be a dict of columns, got {type(rows[bad]).__name__}")
    return [dict(row) for row in rows]


def _is_conversation(prompt) -> bool:
    return isinstance(prompt, list) and all(isinstance(m, dict) and "content" in m for m in prompt) and bool(prompt)


@TASKS.register("custom")
class CustomTask(Task):
    """A task from rows in TRL's shape and a TRL-style reward function.

    Args:
        train: the training rows: a list of dicts or a ``datasets.Dataset``; each row needs
            ``prompt_column``, a string (standard) or a list of ``{"role", "content"}`` messages
            (conversational). Other columns reach the reward function.
        reward_fn: ``f(prompts, completions, **columns) -> list[float]``, called with keyword
            arguments: ``prompts`` and ``completions`` (N strings; prompts as given in the data) and
            one list of N values per other column. Extra keyword arguments TRL would pass
            (``completion_ids``, ``trainer_state``) are not passed, so write ``**kwargs``.
        test: held-out rows in the same shape. None holds out ``test_fraction`` of ``train`` by a
            stable hash of each prompt (as the built-in tasks split their problems).
        prompt_column: the column the model sees.
        answer_column: a column shown as ``Problem.answer`` when present (only for reading: the
            reward function decides what is correct).
        correct_at: held-out accuracy counts a completion as correct when its reward is >= this.
        test_fraction: share of ``train`` held out when ``test`` is None.
        name: the task's name in logs.
    """

    name = "custom"
    alphabet = ""  # set per instance from the data

    def __init__(
        self,
        train,
        reward_fn: RewardFunc,
        test=None,
        *,
        prompt_column: str = "prompt",
        answer_column: str = "answer",
        correct_at: float = 1.0,
        test_fraction: float = 0.2,
        name: str = "custom",
    ):
        if not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable as f(prompts, completions, **columns), got {reward_fn!r}")
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        self.reward_fn, self.prompt_column, self.answer_column = reward_fn, prompt_column, answer_column
        self.correct_at, self.test_fraction, self.name = float(correct_at), test_fraction, name
        train_rows = self._problems(_rows(train, "train"), "train")
        if test is None:
            self.splits = {s: [p for p in train_rows if Task.split_of(self, p) == s] for s in ("train", "test")}
            empty = [s for s, rows in self.splits.items() if not rows]
            if empty:
                raise ValueError(
                    f"holding out test_fraction={test_fraction} of the {len(train_rows)} train rows "
                    f"left the {empty[0]} split empty; pass test rows explicitly"
                )
            self.splits = {s: [self._in_split(p, s) for p in rows] for s, rows in self.splits.items()}
        else:
            self.splits = {"train": train_rows, "test": self._problems(_rows(test, "test"), "test")}
        texts = [p.prompt + p.answer for rows in self.splits.values() for p in rows]
        self.alphabet = "".join(sorted(set("".join(texts))))

    def _problems(self, rows: list[dict], split: str) -> list[Problem]:
        problems = []
        for i, row in enumerate(rows):
            if self.prompt_column not in row:
                raise ValueError(
                    f"{split}[{i}] has no prompt column {self.prompt_column!r}; its columns are "
                    f"{sorted(row)} (set prompt_column= to the column the model sees)"
                )
            prompt = row[self.prompt_column]
            if _is_conversation(prompt):
                text, key = prompt[-1]["content"], json.dumps(prompt, sort_keys=True)
            elif isinstance(prompt, str):
                text = key = prompt
            else:
                raise ValueError(
                    f"{split}[{i}][{self.prompt_column!r}] must be a string or a list of "
                    f"{{'role', 'content'}} messages, got {prompt!r}"
                )
            answer = row.get(self.answer_column)
            problems.append(
                Problem(
                    question=str(text),
                    prompt=str(text),
                    answer="" if answer is None else str(answer),
                    meta={"row": row, "split": split},
                    key=key,
                )
            )
        return problems

    @staticmethod
    def _in_split(problem: Problem, split: str) -> Problem:
        return Problem(problem.question, problem.prompt, problem.answer, {**problem.meta, "split": split}, problem.key)

    # ------------------------------------------------------------------ the Task interface
    def split_of(self, problem: Problem) -> str:
        """The split the row was given in (or held out into)."""
        return problem.meta["split"]

    def sample(self, rng: random.Random) -> Problem:
        return rng.choice(self.splits["train"] + self.splits["test"])

    def problems(self, split: str, n: int, seed: int = 0) -> list[Problem]:
        """``n`` rows of a split in a seeded random order; rows repeat only when the split has fewer than ``n``."""
        check_request(split, n)
        rows, rng, out = self.splits[split], random.Random(seed), []
        while len(out) < n:  # whole shuffled passes over the split, the last one cut short
            out += rng.sample(rows, min(len(rows), n - len(out)))
        return out

    def format_prompt(self, problem: Problem, style: str = "plain", tokenizer=None) -> str:
        """The prompt as given; a conversation, or a string with ``style="chat"``, goes through the
        tokenizer's chat template (no instruction is added: the data's prompt is the whole prompt)."""
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        prompt = problem.meta["row"][self.prompt_column]
        if isinstance(prompt, str) and style == "plain":
            return prompt
        if tokenizer is None:
            raise ValueError("a conversational prompt, or style='chat', needs a tokenizer with apply_chat_template")
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def reward(self, problems: list[Problem], completions: list[str]) -> list[float]:
        """The reward function on N completions (``problems[i]`` is the row completion i answers)."""
        if len(problems) != len(completions):
            raise ValueError(f"got {len(problems)} problems but {len(completions)} completions")
        rows = [p.meta["row"] for p in problems]
        columns = {c: [row.get(c) for row in rows] for c in dict.fromkeys(k for row in rows for k in row)}
        prompts = columns.pop(self.prompt_column)
        out = self.reward_fn(prompts=prompts, completions=list(completions), **columns)
        name = getattr(self.reward_fn, "__name__", repr(self.reward_fn))
        out = out.tolist() if hasattr(out, "tolist") else out  # a tensor or an array
        if isinstance(out, (str, bytes)) or not isinstance(out, Iterable):
            raise ValueError(f"reward function {name} must return a list of {len(completions)} floats, got {out!r}")
        out = list(out)
        if len(out) != len(completions):
            raise ValueError(f"reward function {name} returned {len(out)} rewards for {len(completions)} completions")
        bad = [v for v in out if not isinstance(v, numbers.Real) or not math.isfinite(v)]
        if bad:
            raise ValueError(f"reward function {name} must return finite numbers, got {bad[0]!r} in {out[:8]}")
        return [float(v) for v in out]

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Correct when the completion's reward reaches ``correct_at``."""
        value = self.reward([problem], [completion])[0]
        return Verdict(completion, value >= self.correct_at, True, f"reward {value:g}")
