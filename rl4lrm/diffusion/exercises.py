"""Checkers for notebook 16's exercises: the student's function against the library's on random inputs."""

from __future__ import annotations

import torch

from rl4lrm.diffusion.model import masked_diffusion_loss
from rl4lrm.diffusion.sampling import transfer_schedule
from rl4lrm.exercises import report_check


def check_diffusion_loss(fn, cases: int = 50, seed: int = 0) -> bool:
    """Compares ``fn(logits, targets, masked, t)`` with ``masked_diffusion_loss`` on random inputs."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            N, T, V = (int(x) for x in torch.randint(1, 7, (3,), generator=gen))
            logits, targets = torch.randn(N, T, V + 1, generator=gen), torch.randint(0, V + 1, (N, T), generator=gen)
            masked, t = torch.rand(N, T, generator=gen) < 0.5, torch.rand(N, generator=gen).clamp_min(0.05)
            got, want = fn(logits, targets, masked, t), masked_diffusion_loss(logits, targets, masked, t)
            assert torch.allclose(torch.as_tensor(got, dtype=torch.float32), want, atol=1e-5), (
                f"N={N}, T={T}: got {float(got):.5f}, expected {want.item():.5f}"
            )

    return report_check("masked diffusion loss", attempt)


def check_transfer_schedule(fn, seed: int = 0) -> bool:
    """Compares ``fn(n_tokens, steps)`` with ``transfer_schedule`` for every 1 <= steps <= n_tokens <= 16."""

    def attempt():
        for n in range(1, 17):
            for s in range(1, n + 1):
                got, want = list(fn(n, s)), transfer_schedule(n, s)
                assert got == want, f"n_tokens={n}, steps={s}: got {got}, expected {want}"

    return report_check("unmasking schedule", attempt)
