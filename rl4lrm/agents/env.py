"""The tool environment of a multi-turn episode: a safe calculator, a knowledge-base lookup, and the turn rules.

An agentic episode (Search-R1, Jin et al. 2025, arXiv:2503.09516; ReTool, Feng et al. 2025, arXiv:2504.11536) is
a multi-turn MDP: the policy writes text until it closes a **tool call**, the environment runs the tool and
appends an **observation**, and the policy goes on, until it answers or runs out of turns. The syntax is small
enough for a char-level model to learn::

    zuka.age+bemo.size=[look zuka.age]{33}[look bemo.size]{80}[calc 33+80]{113}[ans 113]

``[look name.attr]`` reads the knowledge base, ``[calc expr]`` evaluates digits with ``+ - *`` (parsed, never
``eval``), ``[ans x]`` ends the episode; ``{...}`` is what the environment wrote (errors included:
``{unknown key}``, ``{bad call}``). The knowledge base is *generated*: every pronounceable 4-letter name has
numeric attributes drawn from a seeded hash, so a model can only know a fact of an entity it never saw by
looking it up.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"
ATTRIBUTES = ("age", "size")
OPEN, CLOSE, OBS_OPEN, OBS_CLOSE = "[", "]", "{", "}"
TOOLS = ("look", "calc", "ans")
_NAME = re.compile(rf"[{CONSONANTS}][{VOWELS}][{CONSONANTS}][{VOWELS}]")
_TERM = re.compile(r"[0-9]{1,6}")
MAX_EXPR_CHARS = 24
"""Longer calculator inputs are refused (no huge products from a runaway policy)."""


def is_name(name: str) -> bool:
    """True for an entity of the knowledge base: consonant, vowel, consonant, vowel (``"zuka"``)."""
    return _NAME.fullmatch(name) is not None


class KnowledgeBase:
    """Every entity's attributes, values 10..99 drawn from a seeded hash (no table to store or leak).

    Args:
        seed: another seed gives another world with the same names.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def value(self, name: str, attr: str) -> int:
        """The attribute ``attr`` of entity ``name``; raises KeyError for an unknown name or attribute."""
        if not is_name(name) or attr not in ATTRIBUTES:
            raise KeyError(f"{name}.{attr}")
        digest = hashlib.sha256(f"{self.seed}:{name}:{attr}".encode()).digest()
        return 10 + int.from_bytes(digest[:4], "big") % 90

    def lookup(self, key: str) -> str:
        """The observation text for ``key`` (``"zuka.age"``): the value, or ``"unknown key"``."""
        name, _, attr = key.partition(".")
        try:
            return str(self.value(name, attr))
        except KeyError:
            return "unknown key"


def calculate(expr: str) -> int:
    """Evaluates integers joined by ``+``, ``-`` and ``*`` with the usual precedence, without ``eval``.

    Raises:
        ValueError: on anything else (letters, parentheses, empty terms, over ``MAX_EXPR_CHARS`` characters).
    """
    if not expr or len(expr) > MAX_EXPR_CHARS:
        raise ValueError(f"expression must have 1..{MAX_EXPR_CHARS} characters, got {len(expr)}")
    parts = re.split(r"([+\-])", expr)  # terms (products) and the signs between them
    total, sign = 0, 1
    for i, part in enumerate(parts):
        if i % 2:
            sign = 1 if part == "+" else -1
            continue
        product = 1
        for factor in part.split("*"):
            if not _TERM.fullmatch(factor):
                raise ValueError(f"bad term {factor!r} in {expr!r}")
            product *= int(factor)
        total += sign * product
    return total


def parse_call(text: str) -> tuple[str, str] | None:
    """``"look zuka.age"`` -> ``("look", "zuka.age")``; None when the tool is unknown or the space is missing."""
    tool, space, arg = text.partition(" ")
    return (tool, arg) if space and tool in TOOLS else None


def question_keys(prompt: str) -> list[str]:
    """The knowledge-base keys a prompt asks for: ``"zuka.age+bemo.size="`` -> ``["zuka.age", "bemo.size"]``."""
    return [k for k in prompt.rstrip("=").split("+") if k]


@dataclass
class Turn:
    """What one tool call did."""

    call: str  # the text between the brackets, e.g. "look zuka.age"
    observation: str | None  # the text the environment appended between braces; None for an answer
    reward: float  # the per-turn (process) reward of this call
    ok: bool  # the call was well formed and its tool ran without error


class AgentEnv:
    """One episode's environment: runs the calls of a policy answering ``prompt`` and scores each turn.

    Per-turn rewards (for credit assignment over turns): each ``look`` of a key the question needs, the first time,
    earns ``1 / (k + 1)`` for k needed keys, and a ``calc`` whose value is the right answer earns the same;
    a full, right trajectory's turns sum to 1. Errors earn 0.

    Args:
        prompt: the question, ``"zuka.age+bemo.size="``.
        kb: the knowledge base.
        tools: False answers every tool call with ``{no tools}`` (the answer-only baseline).
        max_turns: tool calls allowed before the episode is cut (an answer is not a tool call).
    """

    def __init__(self, prompt: str, kb: KnowledgeBase, tools: bool = True, max_turns: int = 4):
        self.kb, self.tools, self.max_turns = kb, tools, max_turns
        self.needed = question_keys(prompt)
        known = [kb.lookup(k) for k in self.needed]
        self.answer = sum(int(v) for v in known) if all(v.isdigit() for v in known) else None
        self.seen: set[str] = set()
        self.turns: list[Turn] = []
        self.done = False

    @property
    def tool_calls(self) -> int:
        return sum(t.observation is not None for t in self.turns)

    def step(self, call: str) -> Turn:
        """Runs the call written between ``[`` and ``]``; ``done`` turns True after an answer or the turn limit."""
        if self.done:
            raise RuntimeError("the episode is over; start a new AgentEnv")
        parsed, share = parse_call(call), 1.0 / (len(self.needed) + 1)
        if parsed is not None and parsed[0] == "ans":
            self.done = True
            turn = Turn(call, None, 0.0, True)
        elif not self.tools:
            turn = Turn(call, "no tools", 0.0, False)
        elif parsed is None:
            turn = Turn(call, "bad call", 0.0, False)
        elif parsed[0] == "look":
            obs = self.kb.lookup(parsed[1])
            fresh = parsed[1] in self.needed and parsed[1] not in self.seen
            self.seen.add(parsed[1])
            turn = Turn(call, obs, share if fresh else 0.0, obs != "unknown key")
        else:
            try:
                value = calculate(parsed[1])
                turn = Turn(call, str(value), share if value == self.answer else 0.0, True)
            except ValueError:
                turn = Turn(call, "bad expression", 0.0, False)
        self.turns.append(turn)
        if self.tool_calls >= self.max_turns:
            self.done = True
        return turn


def run_transcript(prompt: str, policy_text: list[str], kb: KnowledgeBase, **env_kwargs) -> str:
    """The full transcript of an episode whose policy wrote ``policy_text`` segments, each ending in ``]``.

    ``run_transcript("zuka.age+bemo.size=", ["[look zuka.age]", "[ans 31]"], kb)`` ->
    ``"[look zuka.age]{31}[ans 31]"``: what the rollout builds token by token, for hand-made cases and SFT data.
    """
    env, out = AgentEnv(prompt, kb, **env_kwargs), []
    for segment in policy_text:
        out.append(segment)
        if env.done or not segment.endswith(CLOSE) or OPEN not in segment:
            continue
        turn = env.step(segment[segment.rindex(OPEN) + 1 : -1])
        if turn.observation is not None:
            out.append(OBS_OPEN + turn.observation + OBS_CLOSE)
    return "".join(out)


def observation_spans(transcript: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the observations (braces included) in a transcript."""
    return [(m.start(), m.end()) for m in re.finditer(r"\{[^{}]*\}", transcript)]
