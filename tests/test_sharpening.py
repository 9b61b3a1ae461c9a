"""Tests for the sharpening-versus-discovery study: vectorized pass@k, bootstrap bands, coverage,
crossovers, the study itself (a tiny smoke run), its figures, panel and exercise checkers."""

import itertools
import random

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rl4lrm.exercises import check_coverage, check_crossover_k  # noqa: E402
from rl4lrm.experiments.sharpening import (  # noqa: E402
    HARD_SPLITS,
    SharpeningResult,
    sharpening_study,
    study_task,
)
from rl4lrm.passk import (  # noqa: E402
    bootstrap_weights,
    coverage_sets,
    coverage_table,
    crossover_k,
    default_ks,
    pass_at_k,
    pass_at_k_array,
    passk_table,
)


def brute_force_curve(n, counts, ks):
    """Mean over problems of the fraction of k-subsets of the n samples that hold a correct one."""
    out = []
    for k in ks:
        per_problem = []
        for c in counts:
            samples = [True] * c + [False] * (n - c)
            subsets = list(itertools.combinations(range(n), k))
            per_problem.append(sum(any(samples[i] for i in s) for s in subsets) / len(subsets))
        out.append(sum(per_problem) / len(per_problem))
    return out


# --- vectorized pass@k -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_array_matches_brute_force_over_k_subsets(n):
    counts, ks = list(range(n + 1)), list(range(1, n + 1))
    table = pass_at_k_array(n, counts, ks)
    assert table.shape == (n + 1, n)
    for i, c in enumerate(counts):
        assert table[i] == pytest.approx(brute_force_curve(n, [c], ks), abs=1e-12)


def test_pass_at_k_array_matches_scalar_for_large_n():
    rng = random.Random(0)
    n = 256
    counts = [rng.choice([0, 1, 2, rng.randint(0, n)]) for _ in range(100)]
    ks = default_ks(n)
    table = pass_at_k_array(n, counts, ks)
    want = np.array([[pass_at_k(n, c, k) for k in ks] for c in counts])
    assert np.abs(table - want).max() < 1e-12
    assert (table[np.array(counts) == 0] == 0).all() and (np.diff(table, axis=1) >= -1e-15).all()  # monotone in k


@pytest.mark.parametrize(
    "args, message",
    [
        ((4, [5], [1]), "0..n=4, got 5"),
        ((4, [-1], [1]), "got -1"),
        ((4, [1], [0]), "1..n=4, got 0"),
        ((4, [1], [9]), "got 9"),
        ((0, [0], [1]), "n >= 1"),
        ((4, [1], []), "non-empty"),
    ],
)
def test_pass_at_k_array_names_bad_values(args, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k_array(*args)


def test_default_ks_cover_one_to_n_on_a_log_grid():
    assert default_ks(256)[:8] == [1, 2, 3, 4, 6, 8, 12, 16] and default_ks(256)[-1] == 256
    assert default_ks(1) == [1] and default_ks(5) == [1, 2, 3, 4, 5]
    assert all(k <= 100 for k in default_ks(100)) and default_ks(100)[-1] == 100


# --- curves and bands ------------------------------------------------------------------------


def test_passk_table_curves_match_brute_force_and_gaps_are_differences():
    n, counts = 6, {"base": [0, 1, 3, 6, 2], "rl": [0, 4, 5, 6, 0]}
    curves, gaps = passk_table(counts, n, ks=[1, 2, 3, 6], reference="base", n_boot=200)
    for label, c in counts.items():
        got = curves[curves["label"] == label]["pass@k"].tolist()
        assert got == pytest.approx(brute_force_curve(n, c, [1, 2, 3, 6]), abs=1e-12)
    assert list(gaps["label"].unique()) == ["rl"]
    diff = curves[curves["label"] == "rl"]["pass@k"].values - curves[curves["label"] == "base"]["pass@k"].values
    assert gaps["gap"].values == pytest.approx(diff)
    assert ((curves["lo"] <= curves["pass@k"] + 1e-12) & (curves["pass@k"] <= curves["hi"] + 1e-12)).all()
    assert ((gaps["lo"] <= gaps["gap"] + 1e-12) & (gaps["gap"] <= gaps["hi"] + 1e-12)).all()


def test_bootstrap_band_matches_the_binomial_standard_error():
    rng = np.random.default_rng(0)
    counts = {"m": rng.binomial(1, 0.3, size=400).tolist()}  # n = 1: pass@1 is a mean of 0/1 values
    curves, _ = passk_table(counts, 1, ks=[1], n_boot=4000)
    p = curves["pass@k"].iloc[0]
    half_width = (curves["hi"].iloc[0] - curves["lo"].iloc[0]) / 2
    assert half_width == pytest.approx(1.96 * np.sqrt(p * (1 - p) / 400), rel=0.1)


def test_identical_models_have_a_zero_gap_and_problems_alike_a_zero_band():
    counts = {"base": [2, 2, 2, 2], "same": [2, 2, 2, 2]}
    curves, gaps = passk_table(counts, 4, ks=[1, 2, 4], reference="base", n_boot=100)
    assert (curves["hi"] - curves["lo"]).abs().max() < 1e-12
    assert gaps[["gap", "lo", "hi"]].abs().max().max() < 1e-12
    w = bootstrap_weights(7, 50, seed=3)
    assert w.shape == (50, 7) and (w.sum(1) == 7).all() and np.array_equal(w, bootstrap_weights(7, 50, seed=3))


def test_passk_table_rejects_ragged_counts_and_unknown_reference():
    with pytest.raises(ValueError, match="same non-zero number"):
        passk_table({"a": [1, 2], "b": [1]}, 4)
    with pytest.raises(ValueError, match="'nope'.*'a'"):
        passk_table({"a": [1, 2]}, 4, reference="nope")


# --- coverage --------------------------------------------------------------------------------


def test_coverage_sets_on_hand_made_counts():
    counts = {"base": [0, 3, 1, 0, 5], "rl": [2, 4, 0, 0, 5], "same": [0, 1, 1, 0, 1]}
    sets = coverage_sets(counts, "base")
    assert sets["base"] == {"solved": {1, 2, 4}, "gained": set(), "lost": set()}
    assert sets["rl"] == {"solved": {0, 1, 4}, "gained": {0}, "lost": {2}}
    assert sets["same"] == {"solved": {1, 2, 4}, "gained": set(), "lost": set()}
    table = coverage_table(counts, "base")
    assert table.loc["rl", ["problems", "solved", "gained", "lost"]].tolist() == [5, 3, 1, 1]
    assert table.loc["base", "solved frac"] == pytest.approx(0.6)


def test_coverage_rejects_unknown_reference_and_mismatched_problems():
    with pytest.raises(ValueError, match="'ref'.*'base'"):
        coverage_sets({"base": [1]}, "ref")
    with pytest.raises(ValueError, match="'rl' has 1 problems"):
        coverage_sets({"base": [1, 0], "rl": [1]})


# --- crossover -------------------------------------------------------------------------------


def test_crossover_on_hand_made_curves():
    base = {1: 0.10, 4: 0.30, 16: 0.60, 64: 0.80, 256: 0.90}
    rl = {1: 0.30, 4: 0.50, 16: 0.65, 64: 0.78, 256: 0.85}
    assert crossover_k(base, rl) == 64
    assert crossover_k(pd.Series(base), pd.Series(rl)) == 64  # Series indexed by k work too
    assert crossover_k(base, {k: v + 0.05 for k, v in base.items()}) is None  # RL leads everywhere
    assert crossover_k(base, {k: v - 0.01 for k, v in base.items()}) is None  # RL never leads
    assert crossover_k(base, {**rl, 64: 0.81}) == 256  # caught up one budget later
    assert crossover_k({1: 0.2, 2: 1.0}, {1: 0.5, 2: 1.0}) == 2  # both saturate: caught up
    assert crossover_k(base, {**rl, 16: 0.61}, tol=0.02) == 16  # within tol counts as caught up
    assert crossover_k({1: 0.1, 8: 0.5}, {1: 0.3, 2: 0.4, 8: 0.5}) == 8  # only common ks are compared


# --- the study -------------------------------------------------------------------------------


def result_from_counts(counts, n):
    curves, gaps = passk_table(counts, n, reference="base", n_boot=500)
    return SharpeningResult(curves, gaps, coverage_table(counts), counts, pd.DataFrame(), n)


def test_report_calls_a_gap_only_when_its_interval_excludes_zero():
    sharpened = result_from_counts({"base": [1] * 30 + [4] * 30, "step 9": [0] * 30 + [16] * 30}, 16)
    line = sharpened.report()
    assert line.startswith("step 9:") and "k=1 +0." in line and "(RL ahead)" in line
    assert "at k=16 -0.500" in line and "(base ahead)" in line and "base catches up at k = " in line
    assert "solved 30/60 (gained 0, lost 30)" in line
    same = result_from_counts({"base": [3, 0, 5, 1], "step 1": [3, 0, 5, 1]}, 8).report()
    assert same.count("no clear difference") == 2 and "RL never clearly ahead" in same
    lead = result_from_counts({"base": [0] * 40, "step 1": [1] * 40}, 8).report()
    assert "no crossing up to k = n" in lead and "gained 40, lost 0)" in lead
    assert sharpened.summary(ks=(1, 16)).loc["step 9", "crossover k"] == sharpened.crossovers()["step 9"]


TINY = dict(
    steps=2,
    checkpoints=[1, 2],
    n_samples=8,
    eval_problems=6,
    n_boot=50,
    progress=False,
    prompts_per_step=4,
    group_size=4,
    max_new_tokens=6,
)


@pytest.fixture(scope="module")
def tiny_result():
    stages = []
    result = sharpening_study(base="addition", on_stage=stages.append, **TINY)
    result.stages = stages
    return result


def test_tiny_study_returns_curves_coverage_and_history(tiny_result):
    r = tiny_result
    assert isinstance(r, SharpeningResult)
    assert list(r.counts) == ["base", "step 1", "step 2"]
    assert all(len(c) == 6 and all(0 <= x <= 8 for x in c) for c in r.counts.values())
    assert sorted(r.curves["k"].unique()) == default_ks(8)
    assert set(r.curves["step"]) == {0, 1, 2} and list(r.gaps["label"].unique()) == ["step 1", "step 2"]
    assert list(r.coverage.index) == ["base", "step 1", "step 2"]
    assert r.history["step"].tolist() == [0, 1, 2]
    summary = r.summary(ks=(1, 8, 256))
    assert list(summary.columns) == ["pass@1", "pass@8", "crossover k", "solved", "gained", "lost"]
    assert set(r.crossovers()) == {"step 1", "step 2"}
    assert r.settings["base"] == "addition" and r.settings["n_samples"] == 8
    assert any("training" in s for s in r.stages) and any("step 2" in s for s in r.stages)
    assert len(r.report().splitlines()) == 2 and "2nd base sample" in r.report()
    assert len(r.base_resample) == 6 and all(0 <= c <= 8 for c in r.base_resample)
    base_pass1 = r.curves.query("label == 'base' and k == 1")["pass@k"].item()
    assert base_pass1 == pytest.approx(sum(r.counts["base"]) / (6 * 8))


def test_passk_curves_per_label_temperature():
    from rl4lrm.experiments.sharpening import passk_curves
    from rl4lrm.models.zoo import load_base

    model, tok, task = load_base("addition")
    problems = task.problems("test", 5, seed=0)
    temps = {"hot": 1.0, "hot again": 1.0, "cold": 0.02}
    curves, gaps, counts = passk_curves(
        {label: model for label in temps},
        tok,
        task,
        problems,
        n_samples=6,
        temperature=temps,
        max_new_tokens=5,
        reference="hot",
        n_boot=20,
    )
    assert counts["hot"] == counts["hot again"]  # one seed: the same noise for every label
    assert all(c in (0, 6) for c in counts["cold"])  # near-greedy: all samples of a problem agree
    assert set(curves["label"]) == set(temps) and set(gaps["label"]) == {"hot again", "cold"}


def test_study_is_seeded():
    a = sharpening_study(base="addition", **{**TINY, "steps": 1, "checkpoints": [1]})
    b = sharpening_study(base="addition", **{**TINY, "steps": 1, "checkpoints": [1]})
    assert a.counts == b.counts


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(base="chess"), r"'chess'.*countdown"),
        (dict(split="easy"), r"'easy'.*standard.*hard"),
        (dict(checkpoints=[0]), r"checkpoints.*1\.\.steps=2"),
        (dict(checkpoints=[3]), r"got \[3\]"),
        (dict(eval_temperature=0.0), "eval_temperature"),
        (dict(lr=-1.0), "lr"),
    ],
)
def test_study_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sharpening_study(**{**dict(base="addition", steps=2), **kwargs})


def test_hard_split_changes_the_task_settings():
    assert study_task("countdown-weak", "hard").n_numbers == HARD_SPLITS["countdown"]["n_numbers"] == 4
    assert study_task("countdown", "standard").n_numbers == 3
    assert study_task("addition", "hard").digits == HARD_SPLITS["addition"]["digits"]


def test_hard_split_of_a_task_without_one_names_the_tasks_that_have_one(monkeypatch):
    from rl4lrm.models.zoo import ZOO, ZooEntry

    monkeypatch.setitem(ZOO, "plain-addition", ZooEntry("addition", {"digits": 2}))
    monkeypatch.delitem(HARD_SPLITS, "addition")
    with pytest.raises(ValueError, match=r"no hard split for task 'addition'.*\['countdown'\]"):
        study_task("plain-addition", "hard")


# --- figures, panel, exercises ---------------------------------------------------------------


def test_figures_draw_every_label(tiny_result):
    from rl4lrm.viz import plot_coverage, plot_gaps, plot_passk_curves, plot_sharpening
    from rl4lrm.viz.sharpening import coverage_grid

    fig = plot_passk_curves(tiny_result)
    assert [line.get_label() for line in fig.axes[0].lines if not line.get_label().startswith("_")][:3] == [
        "base",
        "step 1",
        "step 2",
    ]
    assert fig.axes[0].get_xscale() == "log"
    assert len(plot_gaps(tiny_result).axes[0].get_legend().get_texts()) == 2
    labels = [t.get_text().split("  ")[0] for t in plot_coverage(tiny_result).axes[0].get_yticklabels()]
    assert labels == ["base", "base, 2nd sample", "step 1", "step 2"]
    assert len(plot_sharpening(tiny_result).axes) == 3
    grid, labels, order = coverage_grid({"base": [0, 3, 1], "rl": [2, 0, 1]})
    assert labels == ["base", "rl"] and order.tolist() == [1, 2, 0]
    assert grid.tolist() == [[1, 1, 0], [3, 1, 2]]  # rl lost problem 1, kept 2, gained 0


def test_crossover_is_marked_on_the_curves():
    from rl4lrm.viz import plot_passk_curves

    curves, _ = passk_table({"base": [0, 1, 1, 2], "rl": [0, 4, 4, 0]}, 4, ks=[1, 2, 4], n_boot=20)
    ax = plot_passk_curves(curves).axes[0]
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(markers) == 1 and markers[0].get_xdata()[0] == 4  # base 0.75 >= rl 0.5 at k = 4


def test_low_pass_at_k_curves_get_the_height_of_the_plot():
    # on the hard split every curve stays under 0.2: a 0-1 axis drew them flat under the legend
    from rl4lrm.viz import plot_passk_curves

    base, rl = [0] * 36 + [1, 2, 1, 3], [0] * 36 + [2, 0, 1, 1]  # 40 problems, 4 ever solved in 8 samples
    curves, _ = passk_table({"base": base, "rl": rl}, 8, ks=[1, 2, 8], n_boot=20)
    ax = plot_passk_curves(curves).axes[0]
    assert ax.get_ylim()[1] < 0.6 and ax.get_ylim()[1] > curves["hi"].max()


def test_panel_controls_feed_the_study_and_run_draws():
    from rl4lrm.viz import SharpeningPanel

    panel = SharpeningPanel(
        base="addition", steps=2, kl_coef=0.0, **{k: v for k, v in TINY.items() if k not in ("steps", "progress")}
    )
    from rl4lrm.models.zoo import ZOO

    options = list(panel.controls["base"].options)
    assert options == [name for name, entry in ZOO.items() if entry.task == "addition"]  # the same task's entries
    assert options[0] == "addition" and {"addition-nano", "addition-qwen2", "addition-gpt2"} <= set(options)
    panel.controls["entropy_coef"].value = 0.01
    panel.controls["eval_temperature"].value = 0.8
    panel.controls["seed"].value = 3
    settings = panel.settings()
    assert (settings["entropy_coef"], settings["eval_temperature"], settings["kl_coef"]) == (0.01, 0.8, 0.0)
    result = panel.run()
    assert result.settings["entropy_coef"] == 0.01 and result.settings["eval_temperature"] == 0.8
    assert result.settings["seed"] == 3  # the seed control reaches the study
    assert panel.progress.value == panel.progress.max == 2 + len(result.counts) + 1  # steps, models, 2nd base sample
    assert "pass@1" in panel.status.value and not panel.button.disabled
    assert list(SharpeningPanel(base="countdown").controls["base"].options) == [
        "countdown",
        "countdown-weak",
        "countdown-strong",
    ]
    with pytest.raises(ValueError, match="'nope'"):
        SharpeningPanel(base="nope")


def test_exercise_checkers_accept_the_library_and_reject_mistakes(capsys):
    def coverage(base, rl):
        sets = coverage_sets({"base": base, "rl": rl})["rl"]
        return sets["gained"], sets["lost"]

    assert check_coverage(coverage)
    assert not check_coverage(lambda b, r: ({i for i, c in enumerate(r) if c > 0}, set()))  # solved, not gained
    assert check_crossover_k(crossover_k)
    first_tie = lambda b, r: next((k for k in sorted(b) if b[k] >= r[k]), None)  # noqa: E731 (ignores "RL led")
    assert not check_crossover_k(first_tie)

    def todo(*args):
        raise NotImplementedError

    assert not check_coverage(todo) and "not implemented" in capsys.readouterr().out
