"""Checkers for notebook 18's exercises: the student's function against the library's on random inputs."""

from __future__ import annotations

import random

from rl4lrm.exercises import report_check
from rl4lrm.real.chat import last_number
from rl4lrm.real.lora import adapter_parameters


def check_adapter_parameters(fn, cases: int = 200, seed: int = 0) -> bool:
    """Compares ``fn(in_features, out_features, rank)`` with ``adapter_parameters`` on random shapes."""
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            d_in, d_out, r = rng.randint(1, 4096), rng.randint(1, 4096), rng.randint(1, 64)
            got, want = fn(d_in, d_out, r), adapter_parameters(d_in, d_out, r)
            assert got == want, f"in={d_in}, out={d_out}, rank={r}: got {got}, expected {want}"

    return report_check("LoRA adapter parameters", attempt)


def check_last_number(fn, cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(text)`` with ``last_number`` on random texts of words, integers, decimals and signs."""
    rng = random.Random(seed)
    pieces = ["the", "answer", "is", "=", "-", ".", " ", "\n", "x", "<answer>", "</answer>", "1", "23", "-4", "5.5"]

    def attempt():
        for _ in range(cases):
            text = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
            got, want = fn(text), last_number(text)
            assert got == want, f"text={text!r}: got {got!r}, expected {want!r}"

    return report_check("last number of a completion", attempt)
