"""The TRL contract: our rewards as reward functions for TRL's ``GRPOTrainer``, and datasets that feed them.

TRL (von Werra et al., https://github.com/huggingface/trl) implements GRPO (Shao et al., 2024,
arXiv:2402.03300) in ``GRPOTrainer(reward_funcs=[...])``. It calls each reward function as
``f(prompts=..., completions=..., completion_ids=..., **columns)`` where ``columns`` are the dataset's
other columns, one value per completion, plus ``trainer_state``, ``log_extra`` and ``log_metric``; it
expects a list of floats (None: "not applicable to this row") and logs ``rewards/{f.__name__}/mean``.
Completions are strings for a standard dataset (``prompt`` a string) and lists of message dicts
(``[{"role": "assistant", "content": ...}]``) for a conversational one (``prompt`` a list of messages).

Our rewards need the ``Problem`` each completion answers, so ``to_trl_dataset`` writes it into the
rows: ``prompt`` (what the model sees), ``answer`` (readable, and what third-party TRL rewards look
for), and ``problem``, the whole ``Problem`` as JSON (a string, because Arrow needs one schema per
column while ``meta`` differs between tasks; tuples are tagged so that they come back as tuples).
``as_trl_reward`` rebuilds the problems from that column and calls ``compute_reward`` or a
``RewardMix``. Token counts for the length rewards come from TRL's ``completion_ids``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch

from rl4lrm.rewards.base import REWARDS, RewardContext, RewardMix, compute_reward
from rl4lrm.tasks.base import CHAT_INSTRUCTION, STYLES, Problem, Task

PROBLEM_COLUMN = "problem"
ANSWER_COLUMN = "answer"
_TUPLE = "__tuple__"


def _encode(value):
    """JSON-ready copy of ``value`` where tuples become ``{"__tuple__": [...]}``."""
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode_object(obj: dict):
    return tuple(obj[_TUPLE]) if set(obj) == {_TUPLE} else obj


def problem_to_json(problem: Problem) -> str:
    """The problem as a JSON string; ``problem_from_json`` inverts it exactly (tuples included)."""
    return json.dumps(_encode(dataclasses.asdict(problem)), sort_keys=True)


def problem_from_json(text: str) -> Problem:
    """Rebuilds a ``Problem`` written by ``problem_to_json``."""
    return Problem(**json.loads(text, object_hook=_decode_object))


def to_trl_dataset(task: Task, problems: list[Problem], style: str = "plain", as_list: bool = False):
    """Rows for ``GRPOTrainer(train_dataset=...)``: ``prompt``, ``answer`` and ``problem`` (JSON).

    Args:
        task: the task the problems come from (its verifier scores them later).
        problems: the problems, one row each.
        style: ``"plain"``: ``prompt`` is ``problem.prompt`` (a standard dataset, for the char-level
            models); ``"chat"``: a one-message conversation with the lab's instruction and
            ``problem.question`` (a conversational dataset; TRL applies the chat template).
        as_list: return a list of dicts even when ``datasets`` is installed.

    Returns:
        A ``datasets.Dataset`` if ``datasets`` is installed (and ``as_list`` is False), else a list of dicts.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rows = []
    for problem in problems:
        prompt = (
            problem.prompt if style == "plain" else [{"role": "user", "content": CHAT_INSTRUCTION + problem.question}]
        )
        rows.append({"prompt": prompt, ANSWER_COLUMN: problem.answer, PROBLEM_COLUMN: problem_to_json(problem)})
    if as_list:
        return rows
    try:
        from datasets import Dataset
    except ImportError:
        return rows
    return Dataset.from_list(rows)


def completion_text(completion) -> str:
    """The text of a TRL completion: a string, or the content of the last assistant message of a
    conversation (text parts of multimodal content joined); "" when there is none."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    messages = [m for m in completion or [] if isinstance(m, dict)]
    assistant = [m for m in messages if m.get("role") == "assistant"] or messages
    content = assistant[-1].get("content", "") if assistant else ""
    if isinstance(content, list):  # [{"type": "text", "text": ...}, {"type": "image"}, ...]
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


@dataclass
class TokenBatch:
    """The part of a ``RolloutBatch`` that TRL's ``completion_ids`` provide (what length rewards read)."""

    completion_ids: torch.Tensor  # (N, T) right-padded with 0
    response_mask: torch.Tensor  # (N, T) float, 1 on generated tokens
    truncated: torch.Tensor  # (N,) bool

    @property
    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)  # (N,)

    @classmethod
    def from_ids(
        cls, completion_ids: list[list[int]], eos_token_id: int | None = None, max_new_tokens: int | None = None
    ) -> TokenBatch:
        """Pads TRL's per-completion id lists. A completion is truncated when it does not end with
        ``eos_token_id`` (TRL's own rule), or, without one, when it has ``max_new_tokens`` tokens."""
        width = max((len(ids) for ids in completion_ids), default=0)
        ids = torch.zeros(len(completion_ids), width, dtype=torch.long)  # (N, T)
        mask = torch.zeros(len(completion_ids), width)  # (N, T)
        for i, row in enumerate(completion_ids):
            ids[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
            mask[i, : len(row)] = 1.0
        if eos_token_id is not None:
            truncated = [not row or row[-1] != eos_token_id for row in completion_ids]
        else:
            truncated = [max_new_tokens is not None and len(row) >= max_new_tokens for row in completion_ids]
        return cls(ids, mask, torch.tensor(truncated, dtype=torch.bool))


class TRLReward:
    """A registered reward or a ``RewardMix`` behind TRL's reward-function signature (see ``as_trl_reward``).

    A callable object rather than a closure so that it pickles (TRL may copy reward functions to
    worker processes) and carries the ``__name__`` TRL logs it under.
    """

    def __init__(self, reward: str | RewardMix, task: Task, ctx: RewardContext, name: str, params: dict):
        self.reward, self.task, self.ctx, self.params = reward, task, ctx, params
        self.__name__ = name
        requires = reward.requires if isinstance(reward, RewardMix) else REWARDS.get(reward).requires
        self.needs_batch = "batch" in requires

    def __call__(self, prompts=None, completions=None, completion_ids=None, **columns) -> list[float | None]:
        """Scores N completions the way ``GRPOTrainer._calculate_rewards`` asks.

        Args:
            prompts: N prompts (unused: the ``problem`` column says what was asked).
            completions: N strings or N conversations.
            completion_ids: N lists of token ids (needed by length rewards).
            **columns: the dataset columns, one list of N values each; ``problem`` is required.
                TRL's extras (``trainer_state``, ``log_extra``, ``log_metric``) are ignored.

        Returns:
            N floats; None for rows whose ``problem`` is None (TRL turns them into NaN and ignores them).
        """
        if PROBLEM_COLUMN not in columns:
            raise ValueError(
                f"reward {self.__name__!r} needs a {PROBLEM_COLUMN!r} dataset column (build the "
                f"dataset with rl4lrm.rewards.trl.to_trl_dataset); got columns {sorted(columns)}"
            )
        texts = [completion_text(c) for c in completions]
        cache: dict[str, Problem] = {}  # the G completions of a prompt share one JSON string
        problems = [None if p is None else cache.setdefault(p, problem_from_json(p)) for p in columns[PROBLEM_COLUMN]]
        rows = [i for i, p in enumerate(problems) if p is not None]
        if not rows:
            return [None] * len(texts)
        batch = None
        if self.needs_batch:
            if completion_ids is None:
                raise ValueError(f"reward {self.__name__!r} reads token counts and needs completion_ids")
            eos = getattr(self.ctx.tokenizer, "eos_token_id", None)
            batch = TokenBatch.from_ids([completion_ids[i] for i in rows], eos, self.ctx.max_new_tokens)
        ctx = dataclasses.replace(self.ctx, task=self.ctx.task or self.task, batch=batch)
        picked = [problems[i] for i in rows], [texts[i] for i in rows]
        if isinstance(self.reward, RewardMix):
            values = self.reward(*picked, ctx)[0]  # (N,)
        else:
            values = compute_reward(self.reward, *picked, ctx, **self.params)
            values = values.sum(-1) if values.dim() == 2 else values  # a dense reward's sequence total
        out: list[float | None] = [None] * len(texts)
        for i, v in zip(rows, values.tolist()):
            out[i] = float(v)
        return out

    def __repr__(self) -> str:
        return f"TRLReward({self.__name__!r}, {self.reward!r}, task={type(self.task).__name__})"


def as_trl_reward(
    name_or_mix: str | RewardMix, task: Task, ctx: RewardContext | None = None, func_name: str | None = None, **params
) -> TRLReward:
    """Wraps a registered reward (or a mix) for ``GRPOTrainer(reward_funcs=[...])``.

    Args:
        name_or_mix: a registered reward name, or a ``RewardMix`` (its weights and parameters inside).
            To see each component in TRL's logs, pass one function per reward and weight them with
            ``GRPOConfig(reward_weights=...)`` instead of a mix.
        task: the task whose verifier ``correct`` (and ``cosine_length``) use.
        ctx: a template ``RewardContext``: ``max_new_tokens`` (set it to ``max_completion_length``
            for length rewards), ``group_size``, ``tokenizer`` (its ``eos_token_id`` tells truncated
            completions apart), models. ``task`` and ``batch`` are filled per call.
        func_name: the name TRL logs; default the reward's name, or the mix's names joined by "+".
        **params: keyword arguments of the reward (not allowed with a mix).

    Returns:
        A callable ``f(prompts, completions, completion_ids, **columns) -> list[float | None]``.

    Raises:
        ValueError: for an unknown reward name, or parameters passed alongside a mix.
        TypeError: if ``name_or_mix`` is neither a string nor a ``RewardMix``.
    """
    if isinstance(name_or_mix, RewardMix):
        if params:
            raise ValueError(f"parameters {sorted(params)} go inside the RewardMix spec, not to as_trl_reward")
        default_name = "+".join(name for name, _, _ in name_or_mix.terms)
    elif isinstance(name_or_mix, str):
        REWARDS.get(name_or_mix)  # unknown names fail here, listing the known ones
        default_name = name_or_mix
    else:
        raise TypeError(f"name_or_mix must be a reward name or a RewardMix, got {name_or_mix!r}")
    return TRLReward(name_or_mix, task, ctx or RewardContext(), func_name or default_name, params)
