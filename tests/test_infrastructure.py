"""rl4lrm.experiments.infrastructure (notebook 10's studies) and the checkers of its exercises."""

from __future__ import annotations

from rl4lrm.corpus import ngrams
from rl4lrm.experiments.infrastructure import (
    corpus_runs,
    curation_study,
    precision_gaps,
    precision_study,
    staleness_study,
)
from rl4lrm.experiments.infrastructure_exercises import check_admits, check_contaminated

TINY = dict(steps=2, prompts_per_step=4, group_size=4, eval_every=2, eval_problems=8, eval_samples=1, progress=False)


def test_curation_study_drops_the_corpus_known_flaws_and_the_rows_without_signal():
    rows, rates, curated = curation_study(samples=4)
    assert len(rows) == len(rates) == 400 and all(r * 4 in range(5) for r in rates)
    assert curated.counts["dropped"].tolist()[:2] == [40, 20]  # the duplicates, then exactly the test leaks
    band = [rates[i] for i in curated.dropped.query("step == 'pass rate'")["row"]]
    assert band and all(r in (0.0, 1.0) for r in band)
    assert len(curated.kept) == 400 - curated.counts["dropped"].sum()


def test_corpus_runs_train_one_run_per_corpus_on_the_addition_model():
    rows, _, curated = curation_study(samples=2)
    runs = corpus_runs({"raw": rows, "curated": curated.kept}, **TINY)
    assert list(runs["method"].unique()) == ["raw", "curated"] and runs["step"].max() == 2
    assert runs["acc/pass@1"].notna().sum() == 4  # before and after, each run


def test_staleness_study_runs_sync_and_each_bound_and_keeps_the_timelines():
    runs, timelines = staleness_study((0, 1), **TINY)
    assert list(runs["method"].unique()) == ["sync", "staleness 0", "staleness 1"]
    assert list(timelines) == ["staleness 0, seed 0", "staleness 1, seed 0"]
    assert runs.query("method == 'staleness 1'")["async/staleness"].max() <= 1
    sync, zero = (runs.query(f"method == '{m}'")["acc/pass@1"].dropna().tolist() for m in ("sync", "staleness 0"))
    assert sync == zero  # staleness 0 replays the synchronous run


def test_precision_gaps_order_the_precisions_by_their_mantissa():
    gaps = precision_gaps(("addition",), prompts=4, group_size=4, repeats=2, progress=False).set_index("precision")
    assert list(gaps.index) == ["float32", "bfloat16", "float16"] and gaps.loc["float32", "x float32"] == 1.0
    mean_abs = gaps["mean |d|"]
    # float32 agrees to rounding; float16's 10-bit mantissa keeps closer to the learner than bfloat16's 7 bits
    assert mean_abs["float32"] < 1e-5 < mean_abs["float16"] < mean_abs["bfloat16"] < 0.05
    assert (gaps["tokens/s"] > 0).all() and (gaps["kl"] >= 0).all()


def test_precision_study_logs_the_mismatch_only_where_the_sampler_differs():
    runs = precision_study(**TINY)
    assert list(runs["method"].unique()) == ["float32", "bfloat16", "bfloat16 + TIS"]
    steps = runs[runs["step"] > 0].set_index("method")
    assert steps.loc["float32", "offpolicy/kl"].isna().all()
    assert steps.loc["bfloat16", "offpolicy/kl"].notna().all() and steps.loc["bfloat16", "is/mean"].isna().all()
    assert steps.loc["bfloat16 + TIS", "is/mean"].between(0.9, 1.1).all()


def test_checkers_accept_the_rule_and_reject_near_misses(capsys):
    def contaminated(prompt, tests, n):
        grams = ngrams(prompt, n, "char")
        return any(grams & ngrams(t, n, "char") for t in tests)

    assert check_contaminated(contaminated)
    assert not check_contaminated(lambda p, tests, n: any(p[:n] in t for t in tests))  # only the first n-gram
    assert check_admits(lambda step, version, k: step - version <= k)
    assert not check_admits(lambda step, version, k: step - version < k)  # one version too strict
    assert "✗" in capsys.readouterr().out
