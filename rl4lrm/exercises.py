"""Checkers for the notebooks' exercises (Spinning Up style): your function vs the library's.

Each checker calls the learner's function and the library's reference on the same random inputs
and reports the first mismatch. A stub that still raises ``NotImplementedError`` is reported as
not done yet, so a notebook with unsolved exercises still runs top to bottom.
"""

from __future__ import annotations

import random
from typing import Callable

import torch

from rl4lrm.advantages import ADVANTAGES
from rl4lrm.passk import pass_at_k


def _report(name: str, attempt: Callable[[], None]) -> bool:
    try:
        attempt()
    except NotImplementedError:
        print(f"… {name}: not implemented yet — fill in the function and run the cell again")
        return False
    except AssertionError as err:
        print(f"✗ {name}: {err}")
        return False
    print(f"✓ {name}: matches the library on all random cases")
    return True


def check_pass_at_k(fn: Callable[[int, int, int], float], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(n, c, k)`` with ``rl4lrm.passk.pass_at_k``; returns True when they agree."""
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            n = rng.randint(1, 60)
            c, k = rng.randint(0, n), rng.randint(1, n)
            got, want = float(fn(n, c, k)), pass_at_k(n, c, k)
            assert abs(got - want) < 1e-6, f"n={n}, c={c}, k={k}: got {got:.6f}, expected {want:.6f}"

    return _report("pass@k", attempt)


def check_group_advantages(fn: Callable[[torch.Tensor, int], torch.Tensor], cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(rewards (N,), group_size) -> (N,)`` with the library's GRPO advantages."""
    gen = torch.Generator().manual_seed(seed)
    reference = ADVANTAGES.get("grpo")

    def attempt():
        for case in range(cases):
            G = int(torch.randint(2, 9, (1,), generator=gen))
            B = int(torch.randint(1, 6, (1,), generator=gen))
            rewards = torch.randint(0, 2, (B * G,), generator=gen).float()
            if case % 4 == 0:
                rewards = torch.rand(B * G, generator=gen)
            want = reference(rewards, torch.ones(B * G, 1), G)[0][:, 0]
            got = torch.as_tensor(fn(rewards.clone(), G), dtype=torch.float32).reshape(-1)
            assert got.shape == want.shape, f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
            short = lambda t: [round(x, 3) for x in t.tolist()[:G]]  # noqa: E731 (first group only)
            assert torch.allclose(got, want, atol=1e-4), (
                f"G={G}, first group rewards={short(rewards)}: got {short(got)}, expected {short(want)}")

    return _report("GRPO advantages", attempt)
