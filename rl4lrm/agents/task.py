"""The tool-use task: sums of facts that only the knowledge base knows (``"zuka.age+bemo.size="`` -> ``"43"``).

Search-R1-style (arXiv:2503.09516): the answer needs facts the model cannot know, so a policy that answers
without looking them up guesses. Entities are split between train and test by name, so no test fact ever appears
in training data (not even in the observations of SFT transcripts). ``worked`` writes the SFT transcripts of the
zoo's base model, with imperfect behaviour mixed in (the model answers after one lookup, or adds in its head
instead of calling the calculator), so RL has room to improve the *way* it uses tools.
"""

from __future__ import annotations

import hashlib
import random

from rl4lrm.agents.env import ATTRIBUTES, CONSONANTS, VOWELS, KnowledgeBase, run_transcript
from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int

STYLES = {"full": 0.55, "no_calc": 0.2, "one_look": 0.25}
"""Shares of the SFT transcripts: look both keys + calculator, look both + add in the head, one look then answer."""


def _unit(text: str) -> float:
    """A uniform number in [0, 1) that is a pure function of ``text`` (splits and transcript styles)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def answer_of(completion: str) -> str | None:
    """The answer of an episode: the content of the last ``[ans ...]``; without one, a bare first line that is a
    number (a guess made without tools); else None."""
    start = completion.rfind("[ans ")
    if start >= 0:
        end = completion.find("]", start)
        return completion[start + 5 : end].strip() if end >= 0 else None
    first = completion.split("\n", 1)[0].strip()
    return first if first.isdigit() else None


@TASKS.register("agentic")
class ToolUse(Task):
    """``name.attr+name.attr=`` -> the sum of the two facts, which the knowledge base ``KnowledgeBase(seed)`` holds."""

    name = "agentic"
    alphabet = CONSONANTS + VOWELS + "0123456789+-*=.[]{} " + "clook" + "ans"
    max_answer_chars = 8

    def __init__(self, keys: int = 2, seed: int = 0):
        """Validates and stores the settings.

        Args:
            keys: facts to add, 1..3.
            seed: the knowledge base's seed.
        """
        check_int("keys", keys, 1, 3)
        check_int("seed", seed, 0, 2**31 - 1)
        self.keys, self.seed, self.kb = keys, seed, KnowledgeBase(seed)

    def is_test_name(self, name: str) -> bool:
        """Whether entity ``name`` belongs to the test split (a fixed 20% of the names)."""
        return _unit(f"entity:{name}") < self.test_fraction

    def sample(self, rng: random.Random) -> Problem:
        test = rng.random() < self.test_fraction
        names = []
        while len(names) < self.keys:
            name = "".join(rng.choice(s) for s in (CONSONANTS, VOWELS, CONSONANTS, VOWELS))
            if self.is_test_name(name) == test and name not in names:
                names.append(name)
        keys = [f"{n}.{rng.choice(ATTRIBUTES)}" for n in names]
        values = [self.kb.value(*k.split(".")) for k in keys]
        prompt = "+".join(keys) + "="
        return Problem(
            question="What is " + " plus ".join(k.replace(".", "'s ") for k in keys) + "?",
            prompt=prompt,
            answer=str(sum(values)),
            meta={"keys": keys, "values": values},
            key=prompt,
        )

    def split_of(self, problem: Problem) -> str:
        return "test" if self.is_test_name(problem.key.split(".")[0]) else "train"

    def verify(self, problem: Problem, completion: str) -> Verdict:
        parsed = answer_of(completion)
        if parsed is None:
            return Verdict(None, False, False, "no answer")
        if len(parsed) > self.max_answer_chars or not parsed.lstrip("-").isdigit():
            return Verdict(parsed, False, False, "not a number")
        ok = int(parsed) == int(problem.answer)
        return Verdict(parsed, ok, True, "ok" if ok else "wrong value")

    def style_of(self, problem: Problem) -> str:
        """The SFT transcript style of ``problem`` (``STYLES``), a pure function of its key."""
        u, acc = _unit(f"style:{problem.key}"), 0.0
        for style, share in STYLES.items():
            acc += share
            if u < acc:
                return style
        return "full"

    def transcript(self, problem: Problem, style: str = "full") -> str:
        """The episode of ``style`` (``STYLES``) as the environment would complete it (observations included)."""
        keys, values = problem.meta["keys"], problem.meta["values"]
        looks = [f"[look {k}]" for k in (keys[:1] if style == "one_look" else keys)]
        calc = [f"[calc {'+'.join(map(str, values))}]"] if style == "full" and len(keys) > 1 else []
        return run_transcript(problem.prompt, [*looks, *calc, f"[ans {problem.answer}]"], self.kb)

    def worked(self, problem: Problem) -> tuple[str, str]:
        """The SFT episode of ``problem`` (its style from ``style_of``), after the same prompt: a base model trained
        on both these and prompt -> bare answer (``SFTConfig.traces``) sometimes guesses without tools."""
        return problem.prompt, self.transcript(problem, self.style_of(problem))
