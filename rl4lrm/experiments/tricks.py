"""Tricks or traps: one-trick-at-a-time ablations of an RL recipe, on a weak and a strong base model.

Liu et al. (2025), "Tricks or Traps? A Deep Dive into RL for LLM Reasoning" (arXiv:2508.08221), reproduce the
tricks of recent recipes in one framework and switch them on one at a time: advantage normalisation (group,
batch, group mean with batch std, mean only), clip-higher, token- vs sequence-level loss aggregation, overlong
filtering, on base and aligned models of two sizes. Their "Lite PPO" keeps two tricks (group-mean / batch-std
normalisation and token-level aggregation) on a vanilla critic-free PPO loss and beats GRPO and DAPO on base
models. Here each trick is a change of preset axes relative to one baseline (``BASELINE``: GRPO without its KL
term), so an arm differs from the baseline in exactly the axes its trick names; ``tricks_study`` trains the arms
on one zoo base model through ``compare_presets`` and ``tricks_table`` compares each with the baseline seed by
seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from rl4lrm.advantages import NORMALISATIONS
from rl4lrm.experiments.compare import compare_presets, seed_verdict

BASELINE: dict = {"preset": "grpo", "kl_coef": 0.0}
"""The recipe every trick is added to: GRPO's axes (group mean and std, PPO clip 0.2 / 0.2, per-sequence mean
``seq_mean_token_mean``) without its KL term, so that "KL on" is a trick like the others."""

TRICKS: dict[str, dict] = {
    "batch norm": {"advantage": "batch_norm"},
    "group mean, batch std": {"advantage": "group_mean_batch_std"},
    "mean only": {"advantage": "dr_grpo"},
    "clip-higher": {"clip_high": 0.28},
    "token-level loss": {"aggregation": "token_mean"},
    "overlong filter": {"overlong_filter": True},
    "KL on": {"kl_coef": 0.04},
}
"""One trick each: the preset axes it changes relative to ``BASELINE`` (clip-higher and the KL weight take
DAPO's 0.28 and GRPO's 0.04, so ``BASELINE`` + "KL on" is exactly the ``grpo`` preset)."""

COMBINED: tuple[str, ...] = ("lite_ppo", "dapo")
"""Whole recipes run next to the one-trick arms, each with its own preset hyperparameters (DAPO's dynamic
sampling and overlong reward shaping are not preset axes and are not part of it here)."""

STUDY_CONFIG: dict = {"minibatches": 2, "max_new_tokens": 8}
"""Run settings shared by every arm unless overridden. Two minibatches per batch make the second update
off-policy, so the clip (and clip-higher) has ratios to act on; with one update per batch the ratio is exactly
1. A cap of 8 tokens truncates about a fifth of the Countdown base models' samples (at 16, none), so the overlong
filter has something to filter; it costs them no accuracy (an answer is at most 7 characters and EOS)."""


def recipe(
    normalisation: str = "group",
    clip_higher: bool = False,
    token_level: bool = False,
    overlong_filter: bool = False,
    kl: bool = False,
) -> dict:
    """``BASELINE`` with the chosen tricks: the settings of one arm, as ``compare_presets`` takes them.

    Args:
        normalisation: a key of ``NORMALISATIONS``.
        clip_higher, token_level, overlong_filter, kl: switch the trick of that name in ``TRICKS`` on.

    Returns:
        ``{"preset": ..., axis: value, ...}``.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {list(NORMALISATIONS)}, got {normalisation!r}")
    settings = {**BASELINE, "advantage": NORMALISATIONS[normalisation]}
    for on, trick in [
        (clip_higher, "clip-higher"),
        (token_level, "token-level loss"),
        (overlong_filter, "overlong filter"),
        (kl, "KL on"),
    ]:
        if on:
            settings.update(TRICKS[trick])
    return settings


def recipe_label(settings: dict) -> str:
    """A short name for ``recipe(...)``'s settings: "baseline", or "+ trick + trick"."""
    parts = [name for name, axes in TRICKS.items() if all(settings.get(k) == v for k, v in axes.items())]
    return "baseline" if not parts else " + ".join(f"+ {p}" if i == 0 else p for i, p in enumerate(parts))


def ablation_arms(tricks: Iterable[str] | None = None, combined: Iterable[str] = COMBINED) -> dict[str, dict]:
    """The baseline, one arm per trick (the baseline plus that trick alone), and whole recipes.

    Args:
        tricks: keys of ``TRICKS`` (default: all of them).
        combined: preset names run with their own axes (default ``COMBINED``).

    Returns:
        ``{label: settings}`` in that order: ``"baseline"``, ``"+ <trick>"``..., then the preset names.
    """
    tricks = list(TRICKS) if tricks is None else list(tricks)
    unknown = [t for t in tricks if t not in TRICKS]
    if unknown:
        raise ValueError(f"unknown tricks {unknown}; known: {list(TRICKS)}")
    arms = {"baseline": dict(BASELINE)}
    arms.update({f"+ {t}": {**BASELINE, **TRICKS[t]} for t in tricks})
    arms.update({name: {"preset": name} for name in combined})
    return arms


def tricks_study(
    base: str = "countdown-weak",
    arms: dict[str, dict] | None = None,
    seeds: tuple[int, ...] = (0,),
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = True,
    **config,
) -> pd.DataFrame:
    """Trains every arm on the zoo base model ``base`` for every seed.

    Args:
        base: zoo entry to start from (``countdown-weak``, ``countdown-strong``, ...).
        arms: ``{label: settings}`` (default: ``ablation_arms()``).
        seeds: seeds per arm; arms with the same seed see the same problems and sampling seeds.
        on_run_end, progress: as ``compare_presets``.
        **config: ``TrainConfig`` fields for every run, over ``STUDY_CONFIG`` (``steps``, ``eval_every``, ...).

    Returns:
        The long DataFrame of ``compare_presets`` (one row per run and step) with a ``base`` column.
    """
    arms = ablation_arms() if arms is None else arms
    runs = compare_presets(
        arms, seeds=seeds, on_run_end=on_run_end, progress=progress, task=base, **{**STUDY_CONFIG, **config}
    )
    return runs.assign(base=base)


def final_pass_at_1(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (base, method, seed): the held-out pass@1 before training and at the last evaluation."""
    runs = runs if "base" in runs else runs.assign(base="")
    evals = runs.dropna(subset=["acc/pass@1"])
    grouped = evals.sort_values("step", kind="stable").groupby(["base", "method", "seed"], sort=False)["acc/pass@1"]
    return pd.DataFrame({"before": grouped.first(), "after": grouped.last()}).reset_index()


def tricks_table(runs: pd.DataFrame, baseline: str = "baseline") -> pd.DataFrame:
    """Each arm against the baseline, per base model, paired by seed.

    The difference of final pass@1 (arm − baseline) is taken seed by seed (same problems, same sampling seeds),
    then averaged. The verdict is "helps" or "hurts" only when every seed agrees in sign and there are at least
    3 seeds; otherwise "no clear effect" (with fewer seeds, "1 seed" or "2 seeds").

    Returns:
        One row per (base, method): ``base pass@1``, ``pass@1 mean/std``, ``vs baseline (points) mean/std``,
        ``seeds`` and ``verdict``.
    """
    final = final_pass_at_1(runs)
    if baseline not in set(final["method"]):
        raise ValueError(f"no {baseline!r} arm in the runs; methods: {sorted(set(final['method']))}")
    ref = final[final["method"] == baseline].set_index(["base", "seed"])["after"]
    final["delta"] = 100 * (final["after"] - ref.reindex(pd.MultiIndex.from_frame(final[["base", "seed"]])).values)
    rows = []
    for (base, method), df in final.groupby(["base", "method"], sort=False):
        n = len(df)
        rows.append(
            {
                "base": base,
                "method": method,
                "base pass@1": df["before"].mean(),
                "pass@1 mean": df["after"].mean(),
                "pass@1 std": df["after"].std(ddof=1) if n > 1 else 0.0,
                "vs baseline (points) mean": df["delta"].mean(),
                "vs baseline (points) std": df["delta"].std(ddof=1) if n > 1 else 0.0,
                "seeds": n,
                "verdict": "—" if method == baseline else seed_verdict(df["delta"], "helps", "hurts"),
            }
        )
    return pd.DataFrame(rows)
