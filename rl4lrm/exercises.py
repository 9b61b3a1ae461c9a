"""Checkers for the notebooks' exercises (Spinning Up style): your function vs the library's.

Each checker calls the learner's function and the library's reference on the same random inputs
and reports the first mismatch. A stub that still raises ``NotImplementedError`` is reported as
not done yet, so a notebook with unsolved exercises still runs top to bottom.
"""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable

import torch

from rl4lrm.advantages import ADVANTAGES, NORMALISATIONS, node_values
from rl4lrm.aggregation import AGGREGATIONS, aggregation_denominators
from rl4lrm.kl import kl_penalty
from rl4lrm.passk import coverage_sets, crossover_k, pass_at_k


def brief(value, digits: int = 4):
    """``value`` for a checker's message: tensors as lists and every float rounded to ``digits`` places, through
    lists, tuples and dicts, so a mismatch reads ``0.1923`` rather than ``0.1923076923076923``."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: brief(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(brief(v, digits) for v in value)
    return value


def _wrapped(message: str, width: int = 110) -> str:
    """``message`` broken at spaces into lines of at most ``width`` characters (a long word stays whole), each
    line of it on its own: Jupyter wraps a long output line anywhere, even inside a number."""
    return "\n".join(
        "\n  ".join(textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)) or line
        for line in message.splitlines()
    )


def report_check(name: str, attempt: Callable[[], None]) -> bool:
    """Runs a checker's ``attempt`` and prints whether the student's function matches the library; every
    exercise checker (here and in ``rl4lrm.experiments``) reports through it."""
    try:
        attempt()
    except NotImplementedError:
        print(f"… {name}: not implemented yet — fill in the function and run the cell again")
        return False
    except AssertionError as err:
        print(_wrapped(f"✗ {name}: {err}"))
        return False
    print(f"✓ {name}: matches the library on all random cases")
    return True


def check_pass_at_k(fn: Callable[[int, int, int], float], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(n, c, k)`` with ``rl4lrm.passk.pass_at_k``; returns True when they agree."""
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            n = rng.randint(1, 60)
            c, k = rng.randint(0, n), rng.randint(1, n)
            got, want = float(fn(n, c, k)), pass_at_k(n, c, k)
            assert abs(got - want) < 1e-6, f"n={n}, c={c}, k={k}: got {got:.6f}, expected {want:.6f}"

    return report_check("pass@k", attempt)


def _check_group_estimator(fn, name: str, label: str, min_group: int, cases: int, seed: int) -> bool:
    """Compares ``fn(rewards (N,), group_size) -> (N,)`` with the registered estimator ``name``."""
    gen = torch.Generator().manual_seed(seed)
    reference = ADVANTAGES.get(name)

    def attempt():
        for case in range(cases):
            G = int(torch.randint(min_group, 9, (1,), generator=gen))
            B = int(torch.randint(1, 6, (1,), generator=gen))
            rewards = torch.randint(0, 2, (B * G,), generator=gen).float()
            if case % 4 == 0:
                rewards = torch.rand(B * G, generator=gen)
            want = reference(rewards, torch.ones(B * G, 1), G)[0][:, 0]
            got = torch.as_tensor(fn(rewards.clone(), G), dtype=torch.float32).reshape(-1)
            assert got.shape == want.shape, f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
            assert torch.allclose(got, want, atol=1e-4), (  # the first group only
                f"G={G}, first group rewards={brief(rewards[:G], 3)}: got {brief(got[:G], 3)}, "
                f"expected {brief(want[:G], 3)}"
            )

    return report_check(label, attempt)


def check_group_advantages(fn: Callable[[torch.Tensor, int], torch.Tensor], cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(rewards (N,), group_size) -> (N,)`` with the library's GRPO advantages."""
    return _check_group_estimator(fn, "grpo", "GRPO advantages", 2, cases, seed)


def check_rloo(fn: Callable[[torch.Tensor, int], torch.Tensor], cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(rewards (N,), group_size) -> (N,)`` with the library's RLOO advantages."""
    return _check_group_estimator(fn, "rloo", "RLOO advantages", 2, cases, seed)


def check_kl_k3(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(logprobs (N, T), ref_logprobs (N, T)) -> (N, T)`` with the library's k3."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            logprobs = -torch.rand(3, 5, generator=gen) * 4
            ref = -torch.rand(3, 5, generator=gen) * 4
            got, want = torch.as_tensor(fn(logprobs.clone(), ref.clone())), kl_penalty(logprobs, ref, "k3")
            assert got.shape == want.shape, f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
            assert torch.allclose(got.float(), want, atol=1e-5), (
                f"logprobs={brief(logprobs[0, :2])}, ref={brief(ref[0, :2])}: got {brief(got[0, :2])}, "
                f"expected {brief(want[0, :2])}"
            )
            assert (got >= -1e-6).all(), "k3 is never negative"

    return report_check("k3 estimator", attempt)


def check_aggregation_weights(
    fn: Callable[[torch.Tensor, str], torch.Tensor],
    cases: int = 50,
    seed: int = 0,
    modes: tuple[str, ...] = AGGREGATIONS[:3],
) -> bool:
    """Compares ``fn(response_mask (N, T), mode) -> weights (N, T)`` with ``aggregation_denominators``.

    ``modes`` defaults to the three the course teaches (token_mean, seq_mean_token_mean, seq_mean_token_sum_norm).
    """
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            n, t = int(torch.randint(1, 5, (1,), generator=gen)), int(torch.randint(1, 7, (1,), generator=gen))
            lengths = torch.randint(1, t + 1, (n,), generator=gen)
            mask = (torch.arange(t)[None] < lengths[:, None]).float()
            for mode in modes:
                got, want = torch.as_tensor(fn(mask.clone(), mode)).float(), aggregation_denominators(mask, mode)
                assert torch.allclose(got, want, atol=1e-6), (
                    f"{mode}, lengths={lengths.tolist()}, T={t}: got row 0 {got[0].tolist()}, "
                    f"expected {want[0].tolist()}"
                )

    return report_check("aggregation weights", attempt)


def check_pass_band(
    fn: Callable[[torch.Tensor, int, float, float], torch.Tensor], cases: int = 100, seed: int = 0
) -> bool:
    """Compares ``fn(rewards, group_size, low, high)`` (groups to keep, (B,) bool) with the ``pass_band`` filter."""
    from rl4lrm.sampling.dynamic import FILTERS

    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            G = int(torch.randint(1, 9, (1,), generator=gen))
            B = int(torch.randint(1, 7, (1,), generator=gen))
            rewards = (torch.rand(B * G, generator=gen) < torch.rand(1, generator=gen)).float()
            low, high = sorted(torch.rand(2, generator=gen).tolist())
            want = FILTERS.get("pass_band")(rewards, G, low, high)
            got = torch.as_tensor(fn(rewards, G, low, high)).bool()
            assert got.shape == want.shape and torch.equal(got, want), (
                f"rewards {rewards.tolist()}, G={G}, band [{low:.2f}, {high:.2f}]: "
                f"expected {want.tolist()}, got {got.tolist()}"
            )

    return report_check("pass_band filter", attempt)


def check_node_values(
    fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], cases: int = 50, seed: int = 0
) -> bool:
    """Compares ``fn(rewards (N,), row_nodes (N, D+1), n_nodes) -> values (n_nodes,)`` with ``node_values``.

    ``row_nodes`` lists the nodes on each leaf row's path (root first, -1 after the leaf); a node's
    value is the mean reward of the rows through it (0 for a node no row passes through).
    """
    gen = torch.Generator().manual_seed(seed)

    class _Tree:  # the two fields node_values reads
        def __init__(self, row_nodes, n):
            self.row_nodes, self.parent = row_nodes, torch.zeros(n)

    def attempt():
        for _ in range(cases):
            depth, n_rows = int(torch.randint(1, 4, (1,), generator=gen)), int(torch.randint(1, 9, (1,), generator=gen))
            n_nodes = 1 + depth * n_rows
            row_nodes = torch.randint(1, n_nodes, (n_rows, depth + 1), generator=gen)
            row_nodes[:, 0] = 0
            cut = torch.randint(1, depth + 2, (n_rows,), generator=gen)
            row_nodes[torch.arange(depth + 1)[None] >= cut[:, None]] = -1
            rewards = torch.rand(n_rows, generator=gen)
            want, _ = node_values(rewards, _Tree(row_nodes, n_nodes))
            got = torch.as_tensor(fn(rewards, row_nodes, n_nodes), dtype=torch.float32)
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), (
                f"row_nodes {row_nodes.tolist()}, rewards {rewards.tolist()}: "
                f"expected {want.tolist()}, got {got.tolist()}"
            )

    return report_check("node values", attempt)


def check_coverage(
    fn: Callable[[list[int], list[int]], tuple[set[int], set[int]]], cases: int = 200, seed: int = 0
) -> bool:
    """Compares ``fn(base_counts, rl_counts) -> (gained, lost)`` with ``coverage_sets``.

    Both count lists hold the correct samples per problem (same problems, same order); ``gained`` is
    the set of problem indices the RL model solves at k = n and the base does not, ``lost`` the reverse.
    """
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            n, size = rng.randint(1, 8), rng.randint(1, 12)
            base = [rng.choice([0, 0, rng.randint(0, n)]) for _ in range(size)]
            rl = [rng.choice([0, 0, rng.randint(0, n)]) for _ in range(size)]
            want = coverage_sets({"base": base, "rl": rl}, "base")["rl"]
            got = fn(list(base), list(rl))
            assert isinstance(got, tuple) and len(got) == 2, f"return (gained, lost), got {got!r}"
            gained, lost = set(got[0]), set(got[1])
            assert (gained, lost) == (want["gained"], want["lost"]), (
                f"base={base}, rl={rl}: got gained={sorted(gained)}, lost={sorted(lost)}; expected "
                f"gained={sorted(want['gained'])}, lost={sorted(want['lost'])}"
            )

    return report_check("coverage", attempt)


def check_crossover_k(
    fn: Callable[[dict[int, float], dict[int, float]], int | None], cases: int = 300, seed: int = 0
) -> bool:
    """Compares ``fn(base_curve, rl_curve) -> k or None`` with ``crossover_k`` (tol 0) on random curves.

    Curves are ``{k: pass@k}`` over the same ks; the answer is the smallest k at which the base is at
    least as high as the RL model, after the RL model led at a smaller k (None if that never happens).
    """
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            ks = [2**j for j in range(rng.randint(1, 7))]
            base = dict(zip(ks, sorted(round(rng.random(), 2) for _ in ks)))
            rl = dict(zip(ks, sorted(round(rng.random(), 2) for _ in ks)))
            got, want = fn(dict(base), dict(rl)), crossover_k(base, rl)
            assert got == want, f"base={base}, rl={rl}: got {got}, expected {want}"

    return report_check("crossover k", attempt)


def check_soft_overlong(fn: Callable[[torch.Tensor, int, int], torch.Tensor], cases: int = 100, seed: int = 0) -> bool:
    """Compares ``fn(lengths (N,), max_len, cache_len) -> penalties (N,)`` with DAPO's soft overlong punishment."""
    from rl4lrm.rewards.shaping import soft_overlong_penalty

    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            max_len = int(torch.randint(2, 200, (1,), generator=gen))
            cache_len = int(torch.randint(1, max_len + 1, (1,), generator=gen))
            lengths = torch.randint(0, max_len + 20, (16,), generator=gen)
            want = soft_overlong_penalty(lengths, max_len, cache_len)
            got = torch.as_tensor(fn(lengths, max_len, cache_len), dtype=torch.float32)
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), (
                f"max_len={max_len}, cache_len={cache_len}, lengths {lengths.tolist()}: "
                f"expected {want.tolist()}, got {got.tolist()}"
            )

    return report_check("soft overlong punishment", attempt)


def check_majority_vote(fn: Callable[[list, int], list], cases: int = 200, seed: int = 0) -> bool:
    """Compares ``fn(answers, group_size) -> rewards`` with the majority-vote reward on parsed answers.

    ``answers`` holds N = B*G parsed answers (strings, or None for an unparsable completion), groups
    contiguous; a completion earns 1.0 when its answer equals its group's most common answer (ties: the
    one that appears first), else 0.0; unparsable answers never vote and earn 0.
    """
    from rl4lrm.rewards.unsupervised import group_majority

    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            G, B = rng.randint(1, 6), rng.randint(1, 4)
            answers = [rng.choice(["12", "13", "7", None]) for _ in range(B * G)]
            majority = group_majority(answers, G)
            want = [float(a is not None and a == majority[i // G][0]) for i, a in enumerate(answers)]
            got = [float(x) for x in fn(list(answers), G)]
            assert got == want, f"answers {answers}, G={G}: expected {want}, got {got}"

    return report_check("majority vote", attempt)


def check_batch_std_advantages(
    fn: Callable[[torch.Tensor, int], torch.Tensor], cases: int = 100, seed: int = 0
) -> bool:
    """Compares ``fn(rewards (N,), group_size) -> (N,)`` with Lite PPO's group-mean / batch-std advantages."""
    return _check_group_estimator(fn, "group_mean_batch_std", "group mean, batch std advantages", 2, cases, seed)


def check_filtered_token_weights(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], cases: int = 50, seed: int = 0
) -> bool:
    """Compares ``fn(response_mask (N, T), truncated (N,)) -> weights (N, T)`` with the weight of each token in a
    ``token_mean`` loss after DAPO's overlong filter (``overlong_filter_mask``, then ``aggregation_denominators``)."""
    from rl4lrm.trainer import overlong_filter_mask

    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            n, t = int(torch.randint(1, 6, (1,), generator=gen)), int(torch.randint(1, 7, (1,), generator=gen))
            lengths = torch.randint(1, t + 1, (n,), generator=gen)
            mask = (torch.arange(t)[None] < lengths[:, None]).float()
            truncated = (lengths == t) & (torch.rand(n, generator=gen) < 0.7)
            want = aggregation_denominators(overlong_filter_mask(mask, truncated), "token_mean")
            got = torch.as_tensor(fn(mask.clone(), truncated.clone())).float()
            assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6), (
                f"lengths={lengths.tolist()}, T={t}, truncated={truncated.tolist()}: got row sums "
                f"{brief(got.sum(1))}, expected {brief(want.sum(1))}"
            )

    return report_check("token weights after the overlong filter", attempt)


def check_largest_advantage(choice: str, rewards: torch.Tensor, group_size: int, row: int = 0) -> bool:
    """A prediction question: under which advantage normalisation does sample ``row`` get the largest advantage?

    ``choice`` names one of ``rl4lrm.advantages.NORMALISATIONS``; the checker computes the advantage of
    ``row`` under each with the library and says whether the choice is (one of) the largest.
    """
    mask = torch.ones(len(rewards), 1)
    values = {
        name: ADVANTAGES.get(est)(rewards, mask, group_size)[0][row, 0].item() for name, est in NORMALISATIONS.items()
    }
    shown = ", ".join(f"{name} {v:+.3f}" for name, v in values.items())
    if choice not in values:
        print(f"… pick one of {list(values)} (got {choice!r})")
        return False
    best = max(values.values())
    if values[choice] >= best - 1e-9:
        print(f"✓ {choice}: the largest advantage for sample {row} ({shown})")
        return True
    print(f"✗ {choice} gives {values[choice]:+.3f}; the advantages of sample {row} are: {shown}")
    return False
