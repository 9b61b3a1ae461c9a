"""The task interface: problems with a checkable answer, verdicts, and a stable train/test split.

A task is what RL with verifiable rewards (RLVR) needs from an environment, as in TinyZero's
Countdown or DeepSeek-R1's math rewards: sample a problem, render it as a prompt, and check a
completion with a program instead of a learned reward model. Every task offers two renderings of
the same problem: a compact ``plain`` prompt for the tiny char-level models trained from scratch,
and a ``chat`` prompt that asks a pretrained model to put its answer in ``<answer></answer>``.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass

from rl4lrm.registry import Registry

TASKS: Registry[type[Task]] = Registry("task")
SPLITS = ("train", "test")
STYLES = ("plain", "chat")
CHAT_INSTRUCTION = (
    "Solve the problem below. Reason step by step if it helps, then give only the final answer "
    "inside <answer></answer> tags.\n\n"
)
# In-split draws that only repeat a seen key before `problems` concludes that the split holds
# fewer than n distinct problems and starts accepting duplicates.
_PATIENCE = 1000


@dataclass(frozen=True)
class Problem:
    """One problem instance; the task decides what goes in each field."""

    question: str  # human/LLM-readable statement, e.g. "What is 12 + 34?"
    prompt: str  # compact prompt for char-level models, e.g. "12+34="
    answer: str  # one canonical correct answer, e.g. "46"
    meta: dict  # task data the verifier needs, e.g. {"a": 12, "b": 34}
    key: str  # canonical identity that decides the train/test split, e.g. "12+34"


@dataclass(frozen=True)
class Verdict:
    """What a verifier concluded about one completion."""

    parsed: str | None  # the answer extracted from the completion; None if there was none
    correct: bool
    well_formed: bool  # the answer had the expected shape (it parsed), right or wrong
    reason: str  # short and human-readable: "ok", "wrong value", "reused number 5", ...


def check_int(field: str, value: object, low: int, high: int) -> None:
    """Raises a ValueError naming ``field`` unless ``value`` is an int in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{field} must be an int in {low}..{high}, got {value!r}")


def check_request(split: str, n: int) -> None:
    """Raises a ValueError unless ``split`` is one of ``SPLITS`` and ``n`` an int >= 1 (``Task.problems``'s args)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")


def extract_answer(completion: str, max_chars: int) -> str | None:
    """The answer part of a completion, or None when it is empty.

    The content of the last ``<answer>...</answer>`` pair if there is one (reasoning models may
    draft several answers; the last is the final one). A closing tag with no opening tag before it
    marks the end of the answer: the last non-blank line before it (``"15\n16</answer>"`` answers
    16, not 15). Without tags, the first line. Surrounding whitespace is stripped.
    String search instead of a regex keeps this linear on adversarial
    inputs such as ``"<answer>" * 10**5``.

    Args:
        completion: the model's generated text.
        max_chars: an answer longer than this is cut to ``max_chars`` characters plus ``"…"``,
            so verdicts stay small to log while callers still see ``len(answer) > max_chars``.

    Returns:
        The stripped answer string, or None.
    """
    if not completion:
        return None
    close = completion.rfind("</answer>")
    open_ = completion.rfind("<answer>", 0, close) if close >= 0 else -1
    if open_ >= 0:
        answer = completion[open_ + len("<answer>") : close]
    elif close >= 0:  # a stray closing tag
        before = completion[:close].rstrip()
        answer = before[before.rfind("\n") + 1 :]
    else:
        answer = completion.partition("\n")[0]
    answer = answer.strip()
    if len(answer) > max_chars:
        answer = answer[:max_chars] + "…"
    return answer or None


def read_answer(completion: str, max_chars: int) -> tuple[str | None, Verdict | None]:
    """The answer part of a completion (``extract_answer``) and, when it cannot be right whatever it says, the
    failing verdict: ``"no answer"`` or ``"too long"`` (over ``max_chars``). A task's ``verify`` checks the rest."""
    parsed = extract_answer(completion, max_chars)
    if parsed is None:
        return None, Verdict(None, False, False, "no answer")
    if len(parsed) > max_chars:
        return parsed, Verdict(parsed, False, False, "too long")
    return parsed, None


def read_after_mark(completion: str, mark: str, max_chars: int) -> tuple[str | None, Verdict | None]:
    """The answer written after the last ``mark`` (``"7+8=15;5+6+1=12#125"`` -> ``"125"``) and, as ``read_answer``
    gives, the failing verdict when it cannot be right: ``"no answer"`` (no mark, or nothing after it) or ``"too
    long"`` (over ``max_chars``, shown cut with an ellipsis)."""
    if mark not in completion:
        return None, Verdict(None, False, False, "no answer")
    parsed = completion[completion.rfind(mark) + len(mark) :].strip()
    if not parsed:
        return None, Verdict(None, False, False, "no answer")
    if len(parsed) > max_chars:
        return parsed, Verdict(parsed[:max_chars] + "…", False, False, "too long")
    return parsed, None


class Task(ABC):
    """A family of problems with a program that checks answers.

    Subclasses set ``name`` and ``alphabet`` and implement ``sample`` and ``verify``; the split,
    batching, prompting and reward logic here is shared.
    """

    name: str
    """Registry name, e.g. ``"addition"``."""
    alphabet: str
    """Every character that may appear in plain prompts and answers (for a char tokenizer)."""
    test_fraction: float = 0.2
    """Share of problem keys that belong to the test split."""
    max_answer_chars: int = 64
    """Longer answers are rejected as "too long" without being parsed."""

    @abstractmethod
    def sample(self, rng: random.Random) -> Problem:
        """One random problem, from either split."""

    @abstractmethod
    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Checks a completion; must return a Verdict for any string and never raise."""

    def split_of(self, problem: Problem) -> str:
        """``"train"`` or ``"test"``, a pure function of ``problem.key``.

        A cryptographic hash instead of ``hash()`` because Python salts string hashes per
        process, which would reshuffle the split on every run.
        """
        digest = hashlib.sha256(problem.key.encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        return "test" if u < self.test_fraction else "train"

    def problems(self, split: str, n: int, seed: int = 0) -> list[Problem]:
        """``n`` reproducible problems of one split, without repeated keys when possible.

        Args:
            split: ``"train"`` or ``"test"``.
            n: how many problems (at least 1).
            seed: seeds ``random.Random``; the same seed gives the same list.

        Returns:
            A list of ``n`` problems. Keys repeat only when the split has fewer than ``n``.
        """
        check_request(split, n)
        if not 0 < self.test_fraction < 1:  # else one split is empty and sampling never ends
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction!r}")
        rng = random.Random(seed)
        out: list[Problem] = []
        seen: set[str] = set()
        misses = 0
        while len(out) < n:
            problem = self.sample(rng)
            if self.split_of(problem) != split:
                continue
            if problem.key not in seen:
                misses = 0
            elif misses < _PATIENCE:
                misses += 1
                continue
            seen.add(problem.key)
            out.append(problem)
        return out

    def format_prompt(self, problem: Problem, style: str = "plain", tokenizer=None) -> str:
        """Renders a problem for a model.

        Args:
            problem: the problem to render.
            style: ``"plain"`` gives ``problem.prompt``; ``"chat"`` wraps an instruction and
                ``problem.question`` in the tokenizer's chat template, ready for generation.
            tokenizer: anything with Hugging Face's ``apply_chat_template``; needed for chat.

        Returns:
            The prompt string.
        """
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        if style == "plain":
            return problem.prompt
        if tokenizer is None:
            raise ValueError("style='chat' needs a tokenizer with apply_chat_template")
        messages = [{"role": "user", "content": CHAT_INSTRUCTION + problem.question}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def worked(self, problem: Problem) -> tuple[str, str]:
        """A written worked solution of ``problem`` as ``(prompt, text)``: SFT data with reasoning traces
        (``SFTConfig.traces``). Its prompt differs from ``problem.prompt`` so that a model trained on both still
        answers the plain prompt directly. Tasks without one raise ``NotImplementedError``."""
        raise NotImplementedError(f"task {self.name!r} has no worked solutions (SFTConfig.traces needs them)")

    def reward(self, problems: list[Problem], completions: list[str]) -> list[float]:
        """Binary correctness reward: 1.0 per correct completion, else 0.0."""
        if len(problems) != len(completions):
            raise ValueError(f"got {len(problems)} problems but {len(completions)} completions")
        return [float(self.verify(p, c).correct) for p, c in zip(problems, completions)]
