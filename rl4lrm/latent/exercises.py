"""Checkers for notebook 15's exercises: the student's function against the library's on random inputs."""

from __future__ import annotations

import random

import torch

from rl4lrm.exercises import report_check
from rl4lrm.latent.model import halting_logprob, latent_tokenizer
from rl4lrm.latent.train import stage_example
from rl4lrm.tasks import Problem


def check_stage_example(fn, cases: int = 200, seed: int = 0) -> bool:
    """Compares ``fn(answer, stage, c) -> (n_thoughts, target_text)`` with the curriculum's ``stage_example``."""
    rng, tok = random.Random(seed), latent_tokenizer()

    def attempt():
        for _ in range(cases):
            answer = "\n".join(str(rng.randint(0, 40)) for _ in range(rng.randint(1, 5)))
            stage, c = rng.randint(0, 6), rng.randint(1, 3)
            _, k, target = stage_example(tok, Problem("", "1=", answer, {}, ""), stage, c)
            want = (k, tok.decode(target[:-1]))
            got = tuple(fn(answer, stage, c))
            assert got == want, f"answer={answer!r}, stage={stage}, c={c}: got {got}, expected {want}"

    return report_check("curriculum stage example", attempt)


def check_halting_logprob(fn, cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(stop_logits (N, K), k (N,), max_thoughts) -> (N,)`` with ``halting_logprob``."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            N, K = (int(x) for x in torch.randint(1, 6, (2,), generator=gen))
            z, k = torch.randn(N, K, generator=gen) * 2, torch.randint(0, K + 1, (N,), generator=gen)
            got, want = torch.as_tensor(fn(z.clone(), k.clone(), K)).float(), halting_logprob(z, k, K)
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), (
                f"z={z[0].tolist()}, k={k[0].item()}, K={K}: got {got.tolist()}, expected {want.tolist()}"
            )

    return report_check("halting log-probability", attempt)
