"""One of our tasks in chat form for a real instruct model: a system message, the question, a forgiving verifier.

``Task.format_prompt(style="chat")`` already wraps a question in a tokenizer's chat template and asks for the
answer in ``<answer></answer>``. A 135M instruct model such as SmolLM2-135M-Instruct (Allal et al., 2025,
https://arxiv.org/abs/2502.02737) rarely writes the tags: it answers "The answer is 12." With a strict verifier
every completion scores 0, every GRPO group has zero reward variance and there is nothing to learn. ``ChatTask``
keeps the problems, split and checks of the task it wraps and changes two things:

- the prompt: a system message that asks for the final answer in tags (what DeepSeek-R1's template asks), then
  the question as the user turn, through ``tokenizer.apply_chat_template``;
- the verifier: a tagged answer is checked as the wrapped task checks it; an untagged completion, when
  ``lenient``, is checked on the last number it contains (the convention of GSM8K graders), so a right answer in
  the wrong format still earns its reward while the format is being learnt.
"""

from __future__ import annotations

import random
import re

from rl4lrm.tasks.base import STYLES, Problem, Task, Verdict

SYSTEM_PROMPT = (
    "You are a careful assistant. Solve the user's problem, then give only the final answer inside "
    "<answer></answer> tags, for example <answer>7</answer>."
)
# [0-9], not \d: \d also matches non-ASCII digits that int() accepts
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def last_number(text: str) -> str | None:
    """The last number written in ``text`` (``"The sum is 12."`` -> ``"12"``), or None."""
    found = _NUMBER.findall(text)
    return found[-1] if found else None


class ChatTask(Task):
    """A task rendered as a chat (system + user turn) with an optionally lenient verifier.

    Args:
        base: the task whose problems, split and answer checks are used.
        system: the system message; None leaves the chat template's default system turn.
        lenient: also accept an untagged completion whose last number is the right answer.
    """

    def __init__(self, base: Task, system: str | None = SYSTEM_PROMPT, lenient: bool = True):
        if not isinstance(base, Task):
            raise ValueError(f"base must be a Task, got {type(base).__name__}")
        if isinstance(base, ChatTask):
            raise ValueError("base is already a ChatTask; wrap the plain task once")
        if not isinstance(lenient, bool):
            raise ValueError(f"lenient must be a bool, got {lenient!r}")
        self.base, self.system, self.lenient = base, system, lenient
        self.name = f"chat-{base.name}"
        self.alphabet = base.alphabet
        self.test_fraction = base.test_fraction
        self.max_answer_chars = base.max_answer_chars

    def sample(self, rng: random.Random) -> Problem:
        return self.base.sample(rng)

    def split_of(self, problem: Problem) -> str:
        return self.base.split_of(problem)

    def messages(self, problem: Problem) -> list[dict[str, str]]:
        """The chat turns of ``problem``: the system message (if any) and the question as the user turn."""
        system = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*system, {"role": "user", "content": problem.question}]

    def format_prompt(self, problem: Problem, style: str = "chat", tokenizer=None) -> str:
        """The chat prompt, ready for the assistant's turn; ``style="plain"`` gives the wrapped task's prompt."""
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        if style == "plain":
            return self.base.format_prompt(problem, "plain")
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("ChatTask.format_prompt needs a tokenizer with a chat template (apply_chat_template)")
        return tokenizer.apply_chat_template(self.messages(problem), tokenize=False, add_generation_prompt=True)

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """The wrapped task's verdict on a tagged answer; with ``lenient``, on the last number of an untagged one."""
        if "</answer>" in completion or not self.lenient:
            return self.base.verify(problem, completion)
        number = last_number(completion)
        if number is None:
            return Verdict(None, False, False, "no answer")
        verdict = self.base.verify(problem, f"<answer>{number}</answer>")
        return Verdict(verdict.parsed, verdict.correct, False, f"untagged: {verdict.reason}")

    def worked(self, problem: Problem) -> tuple[str, str]:
        return self.base.worked(problem)
