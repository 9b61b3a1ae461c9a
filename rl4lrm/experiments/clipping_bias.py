"""The clipping bias of Shao et al. (2025) on a one-token policy, and chapter 07's exercise checkers.

With a random reward the advantage of a sample is independent of the sample, so on-policy its expected policy
gradient is zero. Shao et al. ("Spurious Rewards: Rethinking Training Signals in RLVR", arXiv:2506.10947) argue
that PPO's clip breaks the symmetry once updates are off-policy: the clip cuts the growth of a token whose ratio
has left ``[1 - ε, 1 + ε]``, and a likely token, whose probability cannot grow by much in ratio terms, is cut less
often than an unlikely one. ``clipping_bias`` lets you measure what the clip does to a random-reward run where
every number is visible: one prompt, K answers, logits as the only parameters.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from rl4lrm.exercises import brief, report_check
from rl4lrm.losses import ppo_clip
from rl4lrm.rewards import RewardContext, compute_reward
from rl4lrm.tasks import get_task


def clipping_bias(
    probs: list[float],
    clip: float | None = 0.2,
    lr: float = 1.0,
    group_size: int = 8,
    updates: int = 4,
    steps: int = 10,
    trials: int = 2000,
    seed: int = 0,
) -> torch.Tensor:
    """A one-token policy trained by GRPO on a random reward: its answer probabilities after ``steps`` steps.

    Each of ``trials`` independent copies starts from ``probs`` (logits ``log probs``), samples a group of
    ``group_size`` answers, gets Bernoulli(0.5) rewards and GRPO advantages, and takes ``updates`` SGD steps of
    rate ``lr`` on its logits with the library's ``ppo_clip`` loss (``clip=None``: no clip, the plain ratio
    times the advantage) before sampling again; every update after the first is off-policy, so the clip can act.

    Returns:
        The answer probabilities averaged over the trials, shape (K,).
    """
    if clip is not None and not 0 < clip < 1:
        raise ValueError(f"clip must be in (0, 1) or None, got {clip!r}")
    clip_low, clip_high = (1.0, float("inf")) if clip is None else (clip, clip)
    gen = torch.Generator().manual_seed(seed)
    logits = torch.log(torch.as_tensor(probs, dtype=torch.float32)).repeat(trials, 1)  # (trials, K)
    ones = torch.ones(trials * group_size, 1)
    for _ in range(steps):
        old_logprobs = torch.log_softmax(logits, -1)
        answers = torch.multinomial(old_logprobs.exp(), group_size, replacement=True, generator=gen)  # (trials, G)
        rewards = (torch.rand(answers.shape, generator=gen) < 0.5).float()
        std = rewards.std(1, keepdim=True)
        advantages = torch.where(std > 0, (rewards - rewards.mean(1, keepdim=True)) / (std + 1e-6), 0.0)
        old = old_logprobs.gather(1, answers).reshape(-1, 1)  # (trials * G, 1)
        for _ in range(updates):
            theta = logits.clone().requires_grad_(True)
            logprobs = torch.log_softmax(theta, -1).gather(1, answers).reshape(-1, 1)
            loss, _ = ppo_clip(logprobs, old, advantages.reshape(-1, 1), ones, clip_low=clip_low, clip_high=clip_high)
            (loss * trials).backward()  # the mean over all trials, scaled back to a per-trial mean over its group
            logits = (theta - lr * theta.grad).detach()
    return torch.softmax(logits, -1).mean(0)


def check_clipped_surrogate(
    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor], cases: int = 100, seed: int = 0
) -> bool:
    """Compares ``fn(ratio (N,), advantages (N,), clip) -> (N,)``, PPO's per-sample objective
    ``min(ρA, clip(ρ, 1-ε, 1+ε)A)``, with the library's ``ppo_clip`` (whose loss is minus its mean)."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            n = int(torch.randint(1, 9, (1,), generator=gen))
            ratio = torch.exp(0.5 * torch.randn(n, generator=gen))
            adv = torch.randn(n, generator=gen)
            clip = float(torch.empty(1).uniform_(0.05, 0.5, generator=gen))
            want, _ = ppo_clip(
                ratio.log()[:, None], torch.zeros(n, 1), adv[:, None], torch.ones(n, 1), clip_low=clip, clip_high=clip
            )
            got = torch.as_tensor(fn(ratio.clone(), adv.clone(), clip)).float()
            assert got.shape == (n,), f"expected shape ({n},), got {tuple(got.shape)}"
            assert torch.allclose(-got.mean(), want, atol=1e-5), (
                f"ratio {brief(ratio, 3)}, advantages {brief(adv, 3)}, ε={clip:.3f}: your mean objective "
                f"{got.mean().item():.5f}, expected {-want.item():.5f}"
            )

    return report_check("clipped surrogate", attempt)


def check_well_formed_reward(fn: Callable[[str], float], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(completion) -> float`` with the registered ``well_formed`` reward on 2-digit addition: 1.0
    for an answer the verifier can parse (a bare integer), right or wrong, else 0.0."""
    task = get_task("addition", digits=2)
    rng = random.Random(seed)
    pieces = ["1", "7", "42", "130", "-5", "+3", " ", "x", "4 2", "=", "0", "99", "", "12a", "3.5"]

    def attempt():
        problems = task.problems("test", cases, seed=seed)
        completions = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))) for _ in problems]
        want = compute_reward("well_formed", problems, completions, RewardContext(task=task)).tolist()
        for completion, w in zip(completions, want):
            got = float(fn(completion))
            assert got == w, f"completion {completion!r}: expected {w}, got {got}"

    return report_check("format-only reward", attempt)
