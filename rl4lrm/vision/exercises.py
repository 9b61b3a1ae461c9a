"""Checkers for notebook 13's exercises: the student's function against the library's on random inputs."""

from __future__ import annotations

import random

import torch

from rl4lrm.exercises import report_check
from rl4lrm.vision.model import patchify
from rl4lrm.vision.task import CountingTask, error_kind


def check_patchify(fn, cases: int = 30, seed: int = 0) -> bool:
    """Compares ``fn(images, patch_size)`` with ``patchify`` on random (N, S, S, C) images."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            p, n = (int(x) for x in torch.randint(1, 5, (2,), generator=gen))
            N, C = (int(x) for x in torch.randint(1, 4, (2,), generator=gen))
            images = torch.randn(N, n * p, n * p, C, generator=gen)
            got, want = torch.as_tensor(fn(images, p)), patchify(images, p)
            assert got.shape == want.shape, (
                f"S={n * p}, p={p}, C={C}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            )
            assert torch.equal(got, want), (
                f"S={n * p}, p={p}, C={C}: the patches differ (order of rows, columns, channels?)"
            )

    return report_check("patchify", attempt)


def check_error_kind(fn, cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(problem, completion)`` with ``error_kind`` on random problems and near-miss completions."""
    task, rng = CountingTask(), random.Random(seed)

    def attempt():
        for _ in range(cases):
            problem = task.sample(rng)
            x, y = problem.meta["asked"]
            a, b = (
                problem.meta["counts"][x] + rng.choice([0, 0, 1, -1]),
                problem.meta["counts"][y] + rng.choice([0, 0, 1]),
            )
            c = a + b + rng.choice([0, 0, 1])
            completion = rng.choice([f"{a}+{b}={c}", f"{a}+{b}={c}", f"{c}", f"{a}{b}", ""])
            got, want = fn(problem, completion), error_kind(problem, completion)
            assert got == want, (
                f"counts {problem.meta['counts']}, asked {x}+{y}, {completion!r}: got {got!r}, expected {want!r}"
            )

    return report_check("error kind", attempt)
