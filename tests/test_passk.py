"""Tests for rl4lrm.passk: brute force over k-subsets, edge cases, validation."""

import itertools
import math

import pytest

from rl4lrm.passk import pass_at_k, pass_at_k_curve


def _brute_force(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_hand_examples():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    # 1 - C(3, 2) / C(4, 2) = 1 - 3/6
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # 1 - C(3, 2) / C(5, 2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_brute_force(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k), abs=1e-12)


def test_edge_cases():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 3) == 1.0
    assert pass_at_k(10, 1, 10) == 1.0  # k = n: the full set holds the correct sample
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the plain accuracy


def test_large_n_is_stable():
    # C(2000, 1000) overflows a float; the product form does not need it
    value = pass_at_k(2000, 7, 1000)
    exact = 1 - math.comb(1993, 1000) / math.comb(2000, 1000)  # exact integer division
    assert value == pytest.approx(exact, rel=1e-9)
    assert 0.0 <= pass_at_k(5000, 1, 1) <= 1.0


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_validation_names_values(n, c, k):
    with pytest.raises(ValueError, match=f"n={n}, c={c}, k={k}"):
        pass_at_k(n, c, k)


def test_curve_averages_over_problems():
    curve = pass_at_k_curve(4, [0, 1, 4], ks=[1, 2, 4])
    assert curve[1] == pytest.approx((0 + 0.25 + 1) / 3)
    assert curve[2] == pytest.approx((0 + 0.5 + 1) / 3)
    assert curve[4] == pytest.approx(2 / 3)
    assert list(curve) == [1, 2, 4]
    with pytest.raises(ValueError, match="at least one problem"):
        pass_at_k_curve(4, [], ks=[1])
