"""Unbiased pass@k from n samples per problem.

Chen et al., 2021, "Evaluating Large Language Models Trained on Code" (the Codex paper),
arXiv:2107.03374, Sec. 2.1: draw n >= k samples, count the c correct ones, and estimate
pass@k = 1 - C(n - c, k) / C(n, k), the probability that a random k-subset contains a correct
sample. The plug-in 1 - (1 - c/n)^k is biased low: it is concave in c/n (Jensen).

``pass_at_k`` is the readable scalar version; ``pass_at_k_array`` computes every (problem, k) pair
at once for curves over hundreds of problems and k up to n. Comparing models on the same problems:
``passk_table`` (curves with bootstrap bands over problems, and paired gaps to a reference),
``crossover_k`` (where a base model catches up with an RL model), ``coverage_sets`` / ``coverage_table``
(problems solved at k = n, gained and lost) — the measurements of Yue et al. (2025, arXiv:2504.13837).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k for one problem.

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k / i), the product form of Chen et al., which
    equals 1 - C(n-c, k) / C(n, k) without forming binomials that overflow floats for large n.

    Args:
        n: Number of samples drawn for the problem.
        c: Number of correct samples, 0 <= c <= n.
        k: Budget, 1 <= k <= n.

    Returns:
        The probability that at least one of k samples drawn without replacement is correct.

    Raises:
        ValueError: if c or k is out of range.
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        # Fewer than k wrong samples: every k-subset contains a correct one.
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_at_k_curve(n: int, correct_counts: Sequence[int], ks: Sequence[int]) -> dict[int, float]:
    """pass@k averaged over problems, for several k.

    Args:
        n: Samples per problem (the same for every problem).
        correct_counts: Number of correct samples for each problem, each in [0, n].
        ks: Budgets to report, each in [1, n].

    Returns:
        ``{k: mean over problems of pass_at_k(n, c, k)}``.

    Raises:
        ValueError: if there are no problems or a count or k is out of range.
    """
    if len(correct_counts) == 0:
        raise ValueError("pass_at_k_curve needs at least one problem in correct_counts")
    return {k: sum(pass_at_k(n, c, k) for c in correct_counts) / len(correct_counts) for k in ks}


def pass_at_k_array(n: int, correct_counts: Sequence[int], ks: Sequence[int]) -> np.ndarray:
    """Unbiased pass@k of every problem at every k, vectorized.

    Uses the recurrence C(n-c-1, k) / C(n, k) = C(n-c, k) / C(n, k) * (n-c-k) / (n-c): one cumulative
    product over c per k gives the miss probability C(n-c, k) / C(n, k) for every c in 0..n, a
    (K, n+1) table that the counts index. Each factor lies in [0, 1], so nothing overflows.

    Args:
        n: Samples per problem (the same for every problem).
        correct_counts: (P,) correct samples of each problem, each in [0, n].
        ks: (K,) budgets, each in [1, n].

    Returns:
        (P, K) float64 array: entry [p, j] equals ``pass_at_k(n, correct_counts[p], ks[j])``.

    Raises:
        ValueError: if n < 1, or a count or k is out of range (the first bad value is named).
    """
    counts, ks_arr = np.asarray(correct_counts), np.asarray(ks)
    if n < 1:
        raise ValueError(f"pass_at_k_array needs n >= 1, got n={n}")
    if counts.ndim != 1 or ks_arr.ndim != 1 or len(ks_arr) == 0:
        raise ValueError(
            f"correct_counts and ks must be 1-D and ks non-empty; got shapes {counts.shape}, {ks_arr.shape}"
        )
    if (bad := counts[(counts < 0) | (counts > n)]).size:
        raise ValueError(f"every correct count must be in 0..n={n}, got {bad[0]}")
    if (bad := ks_arr[(ks_arr < 1) | (ks_arr > n)]).size:
        raise ValueError(f"every k must be in 1..n={n}, got {bad[0]}")
    wrong = n - np.arange(n)  # (n,) wrong samples left before the c-th correct one is added: n-c
    factors = np.clip((wrong[None, :] - ks_arr[:, None]) / wrong[None, :], 0.0, None)  # (K, n)
    miss = np.concatenate([np.ones((len(ks_arr), 1)), np.cumprod(factors, axis=1)], axis=1)  # (K, n+1)
    return 1.0 - miss[:, counts.astype(int)].T  # (P, K)


# ---------------------------------------------------------------- comparing models: bands, crossover, coverage
def default_ks(n: int) -> list[int]:
    """Budgets for a curve on a log2 axis: 1, 2, 3, 4, 6, 8, 12, ... up to and including n."""
    if n < 1:
        raise ValueError(f"default_ks needs n >= 1, got {n}")
    ks = {1, n} | {2**j for j in range(1, n.bit_length())} | {3 * 2**j for j in range(n.bit_length()) if 3 * 2**j <= n}
    return sorted(ks)


def bootstrap_weights(n_problems: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """(n_boot, P) multiplicities of each problem in each bootstrap resample (rows sum to P)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_problems, np.full(n_problems, 1.0 / n_problems), size=n_boot)


def passk_table(
    counts: Mapping[str, Sequence[int]],
    n: int,
    ks: Sequence[int] | None = None,
    reference: str | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """pass@k curves with bootstrap bands over problems, and paired gaps to a reference.

    Every model is scored on the same problems, so one set of resamples serves all of them: a gap's
    interval (model minus reference) is much narrower than the two bands would suggest.

    Args:
        counts: ``{label: (P,) correct samples of n per problem}``, the same P problems for every label.
        n: samples drawn per problem.
        ks: budgets (default ``default_ks(n)``).
        reference: the label gaps are taken against (None: no gaps).
        n_boot: bootstrap resamples of the problems.
        level: coverage of the percentile intervals.
        seed: seeds the resamples.

    Returns:
        ``(curves, gaps)``: curves has columns ``label, k, pass@k, lo, hi``; gaps has ``label, k, gap,
        lo, hi`` for every label but the reference (empty without a reference).
    """
    ks = default_ks(n) if ks is None else list(ks)
    sizes = {label: len(c) for label, c in counts.items()}
    if not counts or len(set(sizes.values())) != 1 or 0 in sizes.values():
        raise ValueError(f"counts must hold the same non-zero number of problems per label, got {sizes}")
    if reference is not None and reference not in counts:
        raise ValueError(f"reference {reference!r} is not a label of counts; labels: {list(counts)}")
    weights = bootstrap_weights(next(iter(sizes.values())), n_boot, seed) / next(iter(sizes.values()))  # (B, P)
    per_problem = {label: pass_at_k_array(n, c, ks) for label, c in counts.items()}  # (P, K) each
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    curves, gaps = [], []
    for label, values in per_problem.items():
        lo, hi = np.percentile(weights @ values, q, axis=0)  # (K,) each
        curves.append(pd.DataFrame({"label": label, "k": ks, "pass@k": values.mean(0), "lo": lo, "hi": hi}))
        if reference is not None and label != reference:
            diff = values - per_problem[reference]  # (P, K)
            lo, hi = np.percentile(weights @ diff, q, axis=0)
            gaps.append(pd.DataFrame({"label": label, "k": ks, "gap": diff.mean(0), "lo": lo, "hi": hi}))
    gaps_frame = pd.concat(gaps, ignore_index=True) if gaps else pd.DataFrame(columns=["label", "k", "gap", "lo", "hi"])
    return pd.concat(curves, ignore_index=True), gaps_frame


def crossover_k(
    reference: Mapping[int, float] | pd.Series, other: Mapping[int, float] | pd.Series, tol: float = 0.0
) -> int | None:
    """The smallest k at which ``reference`` (the base) catches up with ``other`` (an RL model).

    Catching up means ``reference[k] >= other[k] - tol`` at a k after ``other`` led (was higher by more
    than ``tol``) at some smaller k. Two curves that both saturate at 1 count as caught up.

    Args:
        reference, other: pass@k by k (dicts or Series indexed by k); only the common ks are compared.
        tol: how much lower the reference may be and still count as caught up.

    Returns:
        That k, or None when ``other`` never leads or the reference never catches up.
    """
    ref, oth = dict(reference), dict(other)
    led = False
    for k in sorted(set(ref) & set(oth)):
        if oth[k] > ref[k] + tol:
            led = True
        elif led and ref[k] >= oth[k] - tol:
            return int(k)
    return None


# ---------------------------------------------------------------------------------------- coverage
def coverage_sets(counts: Mapping[str, Sequence[int]], reference: str = "base") -> dict[str, dict[str, set[int]]]:
    """Which problems each model solves at k = n (a correct sample among n), gains and loses.

    Args:
        counts: ``{label: (P,) correct counts}``, the same problems in the same order for every label.
        reference: the label the others are compared with.

    Returns:
        ``{label: {"solved": set, "gained": set, "lost": set}}`` of problem indices; gained are solved by
        the label but not the reference, lost the reverse (both empty for the reference itself).
    """
    if reference not in counts:
        raise ValueError(f"reference {reference!r} is not a label of counts; labels: {list(counts)}")
    ref = {i for i, c in enumerate(counts[reference]) if c > 0}
    out = {}
    for label, c in counts.items():
        if len(c) != len(counts[reference]):
            raise ValueError(f"{label!r} has {len(c)} problems, reference {reference!r} has {len(counts[reference])}")
        solved = {i for i, x in enumerate(c) if x > 0}
        out[label] = {"solved": solved, "gained": solved - ref, "lost": ref - solved}
    return out


def coverage_table(counts: Mapping[str, Sequence[int]], reference: str = "base") -> pd.DataFrame:
    """One row per label: ``problems``, ``solved``, ``gained``, ``lost`` (counts) and ``solved frac``."""
    sets = coverage_sets(counts, reference)
    rows = {
        label: {"problems": len(counts[label]), **{key: len(s) for key, s in d.items()}} for label, d in sets.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["solved frac"] = table["solved"] / table["problems"]
    return table.rename_axis("label")
