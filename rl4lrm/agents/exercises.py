"""Checkers for notebook 12's exercises: the student's function against the library's on random inputs."""

from __future__ import annotations

import random

import torch

from rl4lrm.agents.env import KnowledgeBase, calculate, run_transcript
from rl4lrm.agents.rollout import observation_mask
from rl4lrm.exercises import report_check
from rl4lrm.models.tokenizer import char_tokenizer


def random_transcripts(n: int, rng: random.Random) -> list[str]:
    """``n`` random episodes (right or wrong calls, errors included), as the environment completes them."""
    kb, names, out = KnowledgeBase(0), ["zuka", "bemo", "tira", "qq"], []
    for _ in range(n):
        calls = []
        for _ in range(rng.randint(0, 4)):
            kind = rng.choice(["look", "calc", "oops"])
            arg = f"{rng.choice(names)}.{rng.choice(['age', 'size', 'x'])}" if kind == "look" else "12+30"
            calls.append(f"[{kind} {arg}]")
        out.append(run_transcript("zuka.age+bemo.size=", [*calls, f"[ans {rng.randint(10, 99)}]"], kb))
    return out


def check_observation_mask(fn, cases: int = 40, seed: int = 0) -> bool:
    """Compares ``fn(ids, open_id, close_id)`` with ``observation_mask`` on random right-padded episodes."""
    tok, rng = char_tokenizer(), random.Random(seed)
    open_id, close_id = tok.convert_tokens_to_ids(["{", "}"])

    def attempt():
        texts = random_transcripts(cases, rng)
        rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])  # (N, T)
        got, want = torch.as_tensor(fn(ids, open_id, close_id)).float(), observation_mask(ids, open_id, close_id)
        bad = (got != want).any(-1).nonzero().flatten().tolist()
        assert not bad, f"episode {texts[bad[0]]!r}: got {got[bad[0]].tolist()}, expected {want[bad[0]].tolist()}"

    return report_check("observation mask", attempt)


def check_calculator(fn, cases: int = 200, seed: int = 0) -> bool:
    """Compares ``fn(expr)`` with ``calculate`` on random expressions; on bad ones both must raise ValueError."""
    rng = random.Random(seed)
    bad = ["", "1/2", "2**8", "(1+2)", "1+", "+1", "abc", "__import__('os')", "1" * 30, "3 + 4"]

    def attempt():
        for _ in range(cases):
            expr = str(rng.randint(0, 99))
            for _ in range(rng.randint(0, 3)):
                expr += rng.choice("+-*") + str(rng.randint(0, 99))
            try:
                got, want = fn(expr), calculate(expr)
            except ValueError as err:
                raise AssertionError(f"{expr!r} is a valid expression, but it raised ValueError({err})") from None
            assert got == want, f"{expr!r}: got {got!r}, expected {want}"
        for expr in bad:
            try:
                got = fn(expr)
            except ValueError:
                continue
            raise AssertionError(f"{expr!r} should raise ValueError, got {got!r}")

    return report_check("safe calculator", attempt)
