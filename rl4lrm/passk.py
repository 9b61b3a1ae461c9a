"""Unbiased pass@k from n samples per problem.

Chen et al., 2021, "Evaluating Large Language Models Trained on Code" (the Codex paper),
arXiv:2107.03374, Sec. 2.1: draw n >= k samples, count the c correct ones, and estimate
pass@k = 1 - C(n - c, k) / C(n, k), the probability that a random k-subset contains a correct
sample. The plug-in 1 - (1 - c/n)^k is biased low: it is concave in c/n (Jensen).
"""

from __future__ import annotations

import math
from typing import Sequence


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
