"""Unbiased pass@k from n samples per problem.

Chen et al., 2021, "Evaluating Large Language Models Trained on Code" (the Codex paper),
arXiv:2107.03374, Sec. 2.1: draw n >= k samples, count the c correct ones, and estimate
pass@k = 1 - C(n - c, k) / C(n, k), the probability that a random k-subset contains a correct
sample. The plug-in 1 - (1 - c/n)^k is biased low: it is concave in c/n (Jensen).

``pass_at_k`` is the readable scalar version; ``pass_at_k_array`` computes every (problem, k) pair
at once for curves over hundreds of problems and k up to n.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


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
    return {
        k: sum(pass_at_k(n, c, k) for c in correct_counts) / len(correct_counts) for k in ks
    }


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
        raise ValueError(f"correct_counts and ks must be 1-D and ks non-empty; got shapes {counts.shape}, "
                         f"{ks_arr.shape}")
    if (bad := counts[(counts < 0) | (counts > n)]).size:
        raise ValueError(f"every correct count must be in 0..n={n}, got {bad[0]}")
    if (bad := ks_arr[(ks_arr < 1) | (ks_arr > n)]).size:
        raise ValueError(f"every k must be in 1..n={n}, got {bad[0]}")
    wrong = n - np.arange(n)  # (n,) wrong samples left before the c-th correct one is added: n-c
    factors = np.clip((wrong[None, :] - ks_arr[:, None]) / wrong[None, :], 0.0, None)  # (K, n)
    miss = np.concatenate([np.ones((len(ks_arr), 1)), np.cumprod(factors, axis=1)], axis=1)  # (K, n+1)
    return 1.0 - miss[:, counts.astype(int)].T  # (P, K)
