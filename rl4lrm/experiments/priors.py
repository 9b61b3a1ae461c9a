"""Weak vs strong priors: the same RL recipe on base models that differ in one thing, and spurious rewards.

The survey (§4.3) asks how much of what RL achieves is set by the base model. Here every base model comes from
the zoo and differs from ``addition`` (a 0.65M-parameter Llama, 4000 SFT steps on 2-digit addition) in one
axis: size (``addition-nano``, about 6x fewer parameters, same data and steps), architecture (``addition-qwen2``,
Qwen2-style at the same size, same data and steps), pre-training data (``addition-mid``: half the problems shown as
worked column additions, a tiny mid-training after OctoThinker, Wang et al., 2025, arXiv:2506.20512) or
post-training (``addition-instruct``: ``addition`` plus a short SFT on clean answers, base vs instruction-tuned); the
Countdown entries add strength by SFT length.
``prior_profile`` measures what each prior knows before RL (greedy accuracy, sampled pass@1 and pass@k) and
``priors_study`` trains the same GRPO recipe on each, with the true reward or a spurious one.

Spurious rewards follow Shao et al. (2025), "Spurious Rewards: Rethinking Training Signals in RLVR"
(arXiv:2506.10947): a random reward, a format-only reward and an incorrect reward raise Qwen2.5-Math's accuracy
but not Llama's or OLMo's. Their explanation is the clipping bias: with a random reward the expected advantage
is zero, yet PPO's clip cuts the growth of unlikely tokens and never the growth of likely ones, so updates drift
toward what the prior already prefers. Whether that helps depends on whether the prior's mode is right, which
``prior_profile`` reads off as the gap between greedy accuracy and sampled pass@1;
``rl4lrm.experiments.clipping_bias`` shows the mechanism on a one-token policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd
import torch

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.experiments.compare import seed_verdict, staged_comparison
from rl4lrm.models.tiny import count_parameters
from rl4lrm.models.zoo import ZOO, load_base
from rl4lrm.passk import pass_at_k_curve

PRIORS: tuple[str, ...] = ("addition-nano", "addition", "addition-qwen2", "addition-mid", "addition-instruct")
"""The addition priors, each one axis away from ``addition``: size (``addition-nano``), architecture
(``addition-qwen2``), reasoning traces in the SFT data (``addition-mid``) and instruction tuning
(``addition-instruct``)."""

REWARD_ARMS: dict[str, dict] = {
    "true": {"correct": 1.0},
    "random": {"random": 1.0},
    "format": {"well_formed": 1.0},
    "incorrect": {"correct": -1.0},
}
"""Training rewards by label (``TrainConfig.rewards``): the verifier, and Shao et al.'s three spurious rewards
(random with γ = 0.5, format only, and the verifier reversed, which rewards wrong answers)."""

STUDY_CONFIG: dict = {"preset": "grpo", "kl_coef": 0.0, "minibatches": 2, "max_new_tokens": 8}
"""Run settings shared by every arm unless overridden: GRPO without its KL term (nothing holds the policy near the
prior but the clip), and two minibatch steps per batch, so that the second step is off-policy and the clip has
ratios to act on (with one step per batch the ratio is exactly 1 and the clipping bias cannot exist). Addition
answers are at most 3 digits and EOS, so 8 tokens truncate only rambling samples."""


def _check_names(bases: Iterable[str], rewards: Iterable[str]) -> None:
    bad = [b for b in bases if b not in ZOO]
    if bad:
        raise ValueError(f"unknown base models {bad}; known: {sorted(ZOO)}")
    bad = [r for r in rewards if r not in REWARD_ARMS]
    if bad:
        raise ValueError(f"unknown rewards {bad}; known: {list(REWARD_ARMS)}")


def prior_profile(
    bases: Iterable[str] = PRIORS, n_problems: int = 256, n_samples: int = 8, seed: int = 0
) -> pd.DataFrame:
    """What each base model knows before RL, on held-out problems (test split, seed 0).

    Args:
        bases: zoo entries.
        n_problems: held-out problems. n_samples: samples per problem at T = 1 (the k of pass@k).
        seed: sampling seed.

    Returns:
        One row per base: ``params``, ``arch``, ``greedy acc`` (T = 0), ``pass@1`` and ``pass@{n_samples}``
        (T = 1), ``mode gap`` (greedy acc − pass@1: how much a sharper policy would gain), ``well formed``.
    """
    bases = list(bases)
    _check_names(bases, ())
    rows = []
    for base in bases:
        model, tokenizer, task = load_base(base)
        problems = task.problems("test", n_problems, seed=0)
        gen = torch.Generator().manual_seed(seed)
        greedy = sample_and_verify(model, tokenizer, task, problems, 1, temperature=1e-4, max_new_tokens=8)
        sampled = sample_and_verify(
            model, tokenizer, task, problems, n_samples, max_new_tokens=8, generator=gen, prompts_per_batch=32
        )
        passk = pass_at_k_curve(n_samples, sampled["correct"], (1, n_samples))
        greedy_acc = sum(greedy["correct"]) / n_problems
        rows.append(
            {
                "base": base,
                "params": count_parameters(model),
                "arch": model.config.model_type,
                "greedy acc": greedy_acc,
                "pass@1": passk[1],
                f"pass@{n_samples}": passk[n_samples],
                "mode gap": greedy_acc - passk[1],
                "well formed": sum(sampled["well_formed"]) / len(sampled["well_formed"]),
            }
        )
    return pd.DataFrame(rows)


def priors_study(
    bases: Iterable[str] = PRIORS,
    rewards: Iterable[str] = ("true",),
    seeds: tuple[int, ...] = (0,),
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = True,
    **config,
) -> pd.DataFrame:
    """Trains the same recipe on every base model with every training reward, for every seed.

    Args:
        bases: zoo entries (each is the starting model and its task).
        rewards: keys of ``REWARD_ARMS``.
        seeds: seeds per (base, reward); runs with the same seed see the same problems.
        on_run_end: called with all runs so far after each run (live plots). progress: a bar over runs.
        **config: ``TrainConfig`` fields or preset axes for every run, over ``STUDY_CONFIG``.

    Returns:
        The long DataFrame of ``compare_presets`` with ``base`` and ``reward`` columns and ``method`` set to
        ``"<base>, <reward>"``; ``acc/pass@1`` is always the verifier's held-out accuracy.
    """
    bases, rewards = list(bases), list(rewards)
    _check_names(bases, rewards)
    if not bases or not rewards:
        raise ValueError("priors_study needs at least one base model and one reward")

    def label(base: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
        return lambda runs: runs.assign(base=base, reward=runs["method"], method=base + ", " + runs["method"])

    arms = {r: {**STUDY_CONFIG, **config, "rewards": REWARD_ARMS[r]} for r in rewards}
    return staged_comparison([(base, arms, label(base)) for base in bases], seeds, on_run_end, progress)


def gains_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Held-out pass@1 gain of each (base, reward) over its base model, seed by seed.

    The verdict is "up" or "down" when at least 3 seeds all agree in sign, "no clear effect" when they do not,
    and "1 seed" / "2 seeds" below 3.

    Returns:
        One row per (base, reward): ``base pass@1``, ``pass@1 mean/std``, ``gain (points) mean/std``, ``seeds``,
        ``verdict``.
    """
    evals = runs.dropna(subset=["acc/pass@1"]).sort_values("step", kind="stable")
    per_seed = evals.groupby(["base", "reward", "seed"], sort=False)["acc/pass@1"].agg(["first", "last"])
    per_seed["gain"] = 100 * (per_seed["last"] - per_seed["first"])
    rows = []
    for (base, reward), df in per_seed.groupby(level=["base", "reward"], sort=False):
        n = len(df)
        rows.append(
            {
                "base": base,
                "reward": reward,
                "base pass@1": df["first"].mean(),
                "pass@1 mean": df["last"].mean(),
                "pass@1 std": df["last"].std(ddof=1) if n > 1 else 0.0,
                "gain (points) mean": df["gain"].mean(),
                "gain (points) std": df["gain"].std(ddof=1) if n > 1 else 0.0,
                "seeds": n,
                "verdict": seed_verdict(df["gain"]),
            }
        )
    return pd.DataFrame(rows)
