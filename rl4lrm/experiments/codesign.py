"""Architecture-algorithm co-design: the same RL recipe on base models of the same size and different shape.

The survey (Zhang et al., 2025, arXiv:2509.08827, §7) notes that RL pipelines for reasoning models assume a dense
Transformer and asks how architecture choices (mixture-of-experts routing, attention variants, recurrent or
linear-attention layers, hardware-aware shapes) change how RL behaves. At the lab's scale the question becomes: with
the parameter count, the SFT recipe and the RL run held fixed, does the shape of the network change what GRPO
(Shao et al., 2024, arXiv:2402.03300) gains, how stably, and at what cost per step?

The bases (``ARCH_BASES``) all come from the zoo, 2-digit addition, ``SFTConfig(steps=4000, lr=3e-3, noise=0.5,
seed=0)``, within 5% of ``addition``'s 0.65M parameters:

- ``addition``: Llama (Touvron et al., 2023, arXiv:2302.13971: RoPE, RMSNorm, SwiGLU), 3 layers of width 128;
- ``addition-qwen2``: the same with q/k/v biases (Qwen2, Yang et al., 2024, arXiv:2407.10671), notebook 07's arm;
- ``addition-deep``: Llama, 8 layers of width 80 (deep and narrow; MobileLLM, Liu et al., 2024,
  arXiv:2402.14905, argues depth wins at small sizes);
- ``addition-gpt2``: GPT-2 (Radford et al., 2019): learned absolute positions, LayerNorm, a GELU MLP.

A non-Transformer (Mamba, Gu & Dao, 2023, arXiv:2312.00752) was the first choice for the fourth arm. With
transformers 5.25 on the CPU it failed the rollout engine: its recurrent state does not fit the ``DynamicCache`` of
``rl4lrm.decoding.hf_rollout`` (an IndexError); given a cache built for it (``DynamicCache(config=...)``) it decoded,
but its sampling log-probs differed from a full forward's by up to 5.7 nats per token (a random-init 0.6M model,
24 prompts x 8 samples), so training on them would not be on-policy, and a rollout took about 40x the Llama's time
(pure-PyTorch selective scan). GPT-2 varies the positional scheme, the norm and the MLP instead.

``codesign_study`` trains each base with notebook 07's GRPO settings (``rl4lrm.experiments.priors.STUDY_CONFIG``,
plus a frozen reference to log ``kl/k3``) at each learning rate, over seeds; ``stability_table`` reads the gain,
the drift (KL to the base), gradient-norm spikes, entropy and collapses from the histories. ``prior_profile``
(notebook 07) describes the bases before RL; ``shape_table`` their shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from rl4lrm.experiments.compare import staged_comparison
from rl4lrm.experiments.priors import STUDY_CONFIG
from rl4lrm.models.tiny import count_parameters
from rl4lrm.models.zoo import ZOO, load_base

ARCH_BASES: tuple[str, ...] = ("addition", "addition-qwen2", "addition-deep", "addition-gpt2")
"""Zoo entries of the same task, SFT recipe and size (within 5%) that differ in shape."""

LRS: tuple[float, ...] = (3e-4, 1e-3)
"""Learning rates of the study: ``TrainConfig``'s default, and one at which the zoo's Llama is known to drift
(a stress test: stability is a property of the recipe at a given step size, not of the architecture alone)."""

CODESIGN_CONFIG: dict = {**STUDY_CONFIG, "track_kl": True}
"""Notebook 07's GRPO settings (no KL term, 2 minibatch steps per batch, 8-token cap) with a frozen reference kept
to log ``kl/k3``, the drift from the base (one more forward per step, the same for every arm)."""

COLLAPSE_DROP = 0.10
"""A run collapses when its held-out pass@1 ends more than this below its base's (RL made it worse)."""

SPIKE_RATIO = 5.0
"""A gradient-norm spike: a step whose pre-clipping norm exceeds this many times the run's median."""


def _check_bases(bases: list[str]) -> None:
    if not bases:
        raise ValueError("need at least one base model")
    bad = [b for b in bases if b not in ZOO]
    if bad:
        raise ValueError(f"unknown base models {bad}; known: {sorted(ZOO)}")


def shape_table(bases: Iterable[str] = ARCH_BASES) -> pd.DataFrame:
    """The shape of each base: architecture, depth, width, heads, MLP, positions, norm, q/k/v biases, parameters.

    Returns:
        One row per base, with ``params vs addition`` (relative difference to ``addition``'s count).
    """
    bases = list(bases)
    _check_bases(bases)
    reference = count_parameters(load_base("addition")[0])
    rows = []
    for base in bases:
        model = load_base(base)[0]
        c = model.config
        gpt2 = c.model_type == "gpt2"
        params = count_parameters(model)
        rows.append(
            {
                "base": base,
                "arch": c.model_type,
                "layers": c.num_hidden_layers,
                "width": c.hidden_size,
                "heads": c.num_attention_heads,
                "MLP": f"GELU {c.n_inner}" if gpt2 else f"SwiGLU {c.intermediate_size}",
                "positions": "learned" if gpt2 else "RoPE",
                "norm": "LayerNorm" if gpt2 else "RMSNorm",
                "q/k/v biases": c.model_type in ("qwen2", "gpt2"),
                "params": params,
                "params vs addition": params / reference - 1,
            }
        )
    return pd.DataFrame(rows)


def codesign_study(
    bases: Iterable[str] = ARCH_BASES,
    lrs: Iterable[float] = (LRS[0],),
    seeds: tuple[int, ...] = (0,),
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = True,
    **config,
) -> pd.DataFrame:
    """Trains the same GRPO run from every base at every learning rate, for every seed.

    Args:
        bases: zoo entries (each is the starting model and its task).
        lrs: AdamW learning rates; every base gets each one.
        seeds: seeds per (base, lr); runs with the same seed see the same problems.
        on_run_end: called with all runs so far after each run (live plots). progress: a bar over runs.
        **config: ``TrainConfig`` fields or preset axes for every run, over ``CODESIGN_CONFIG``.

    Returns:
        The long DataFrame of ``compare_presets`` (one row per run and step) with ``base`` and ``lr`` columns and
        ``method`` set to the base's name (``"<base>, lr <lr>"`` when there are several learning rates).
    """
    bases, lrs = list(bases), list(lrs)
    _check_bases(bases)
    if not lrs or any(not lr > 0 for lr in lrs):
        raise ValueError(f"lrs must be a non-empty list of positive learning rates, got {lrs}")
    if "lr" in config or "task" in config:
        raise ValueError("set the learning rates with lrs= and the bases with bases=, not lr= or task=")

    def label(base: str, lr: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
        method = base if len(lrs) == 1 else f"{base}, lr {lr:g}"
        return lambda runs: runs.assign(base=base, lr=lr, method=method)

    stages = [(base, {base: {**CODESIGN_CONFIG, **config, "lr": lr}}, label(base, lr)) for lr in lrs for base in bases]
    return staged_comparison(stages, seeds, on_run_end, progress)


def run_stability(history: pd.DataFrame) -> dict:
    """Gain and stability of one run from its history (one row per step, evaluations where ``acc/pass@1`` is set).

    Returns:
        ``base pass@1``, ``pass@1`` (last evaluation), ``gain`` (points), ``max kl`` (largest ``kl/k3`` to the
        base; NaN when not logged), ``grad spikes`` (steps over ``SPIKE_RATIO`` x the median gradient norm),
        ``max grad/median`` (the largest such ratio), ``entropy start`` / ``entropy end`` (first and last step),
        ``collapsed`` (pass@1 ended more than ``COLLAPSE_DROP`` below the base's) and ``s/step`` (mean wall time).
    """
    evals = history.dropna(subset=["acc/pass@1"]).sort_values("step", kind="stable")
    if evals.empty:
        raise ValueError("the history has no held-out evaluation (acc/pass@1); train with eval_every > 0")
    steps = history[history["step"] > 0].sort_values("step")
    first, last = evals["acc/pass@1"].iloc[0], evals["acc/pass@1"].iloc[-1]
    grad = steps["grad/norm"].dropna()
    ratio = grad / grad.median() if len(grad) else grad
    return {
        "base pass@1": first,
        "pass@1": last,
        "gain": 100 * (last - first),
        "max kl": steps["kl/k3"].max() if "kl/k3" in steps else float("nan"),
        "grad spikes": int((ratio > SPIKE_RATIO).sum()),
        "max grad/median": ratio.max() if len(ratio) else float("nan"),
        "entropy start": steps["entropy/mean"].iloc[0],
        "entropy end": steps["entropy/mean"].iloc[-1],
        "collapsed": bool(last < first - COLLAPSE_DROP),
        "s/step": steps["time/step"].mean(),
    }


def stability_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``run_stability`` of every run, then mean and std over seeds per (base, lr).

    Args:
        runs: ``codesign_study``'s DataFrame (``base``, ``lr``, ``seed``, ``step`` and the metric columns).

    Returns:
        One row per (base, lr): ``seeds``; ``<metric> mean`` and ``<metric> std`` for ``pass@1``, ``gain``,
        ``max kl``, ``max grad/median``, ``entropy end`` and ``s/step``; ``base pass@1``; ``grad spikes`` (total
        over seeds); ``collapse rate`` (share of seeds that collapsed).
    """
    missing = {"base", "lr", "seed", "step", "acc/pass@1"} - set(runs.columns)
    if missing:
        raise ValueError(f"runs lacks the columns {sorted(missing)}; pass codesign_study's DataFrame")
    per_run = pd.DataFrame(
        [
            {"base": base, "lr": lr, "seed": seed, **run_stability(df)}
            for (base, lr, seed), df in runs.groupby(["base", "lr", "seed"], sort=False)
        ]
    )
    rows = []
    for (base, lr), df in per_run.groupby(["base", "lr"], sort=False):
        row = {"base": base, "lr": lr, "seeds": len(df), "base pass@1": df["base pass@1"].mean()}
        for metric in ("pass@1", "gain", "max kl", "max grad/median", "entropy end", "s/step"):
            row[f"{metric} mean"] = df[metric].mean()
            row[f"{metric} std"] = df[metric].std(ddof=1) if len(df) > 1 else 0.0
        row["grad spikes"] = int(df["grad spikes"].sum())
        row["collapse rate"] = df["collapsed"].mean()
        rows.append(row)
    return pd.DataFrame(rows)
