"""Widgets and plots: ``run()`` does what the button does, controls feed the config."""

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rl4lrm.viz import SampleExplorer, TrainingDashboard, plot_curves  # noqa: E402

SMALL = dict(
    prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=2, eval_every=1, max_new_tokens=6, device="cpu"
)


def test_dashboard_controls_feed_the_config_and_run_trains():
    panel = TrainingDashboard(task="addition", steps=2, plot_every=1, **SMALL)
    panel.controls["lr"].value = 1e-4
    panel.controls["group_size"].value = 2
    config = panel.config()
    assert (config.lr, config.group_size, config.steps, config.eval_problems) == (1e-4, 2, 2, 8)
    history = panel.run()
    assert list(history["step"]) == [0, 1, 2] and history["acc/pass@1"].notna().all()
    assert "→" in panel.status.value and not panel.button.disabled


def test_dashboard_rejects_bad_defaults():
    with pytest.raises(ValueError, match="steps"):
        TrainingDashboard(task="addition", steps=0)


def test_explorer_samples_a_group_with_verdicts():
    explorer = SampleExplorer(task="addition", group_size=5)
    table = explorer.run()
    assert len(table) == 5 and set(table.columns) >= {"completion", "correct", "reason"}
    explorer.temperature.value = 0.0
    greedy = explorer.run()
    assert greedy["completion"].nunique() == 1  # greedy decoding gives one answer


def test_plot_curves_overlays_runs_and_skips_missing_metrics():
    a = pd.DataFrame({"step": [0, 1, 2], "reward/mean": [0.1, 0.2, 0.3], "acc/pass@1": [0.1, None, 0.4]})
    b = a.assign(**{"reward/mean": [0.0, 0.1, 0.1]})
    fig = plot_curves({"a": a, "b": b})
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == 6
    assert len(axes[0].lines) == 2 and len(axes[2].lines) == 0  # length/mean is in neither run


def test_dashboard_never_clamps_given_values():
    settings = SMALL | dict(steps=2, lr=0.1, group_size=64, temperature=2.0)
    panel = TrainingDashboard(task="addition", **settings)
    config = panel.config()
    assert (config.steps, config.group_size, config.temperature) == (2, 64, 2.0)
    assert abs(config.lr - 0.1) < 1e-9


def test_reward_mix_panel_trains_on_the_mix_and_tabulates_every_run():
    from rl4lrm.viz import RewardMixPanel

    panel = RewardMixPanel(
        task="addition",
        rewards=("correct", "majority_vote"),
        weights={"correct": 1.0},
        steps=2,
        eval_every=2,
        eval_problems=8,
        prompts_per_step=4,
        group_size=4,
    )
    history = panel.run()
    assert (history["reward/mean"].iloc[1:] == history["reward/correct"].iloc[1:]).all()
    panel.sliders["correct"].value, panel.sliders["majority_vote"].value = 0.0, 1.0
    history = panel.run()
    assert "reward/majority_vote" in history and "reward/correct" in history
    assert [r["reward mix"] for r in panel.results] == ["1·correct", "1·majority_vote"]
    heat_maps = [ax for ax in panel.groups_fig.axes if ax.get_title()]  # one per reward of the mix, and the verifier
    assert [ax.get_title() for ax in heat_maps] == ["majority_vote", "verifier"]
    panel.sliders["majority_vote"].value = 0.0
    with pytest.raises(ValueError, match="every weight is 0"):
        panel.run()
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        RewardMixPanel(rewards=("correct", "nope"))
    with pytest.raises(ValueError, match="without a slider"):
        RewardMixPanel(rewards=("correct",), weights={"format": 1.0})


def test_judge_hacking_panel_reads_the_slider_when_run(monkeypatch):
    # the chapter-02 bug: a slider read where it was built always gave w = 1.0, whatever the student chose
    import rl4lrm.viz.rewards as rewards_viz

    calls = []

    def fake_judge_hacking(judge, judge_weight, steps, **study):
        calls.append((judge_weight, steps, study))
        return pd.DataFrame(
            {
                "step": [0, 1, 2],
                "acc/pass@1": [0.5, None, 0.4],
                "reward/judge": [None, 0.5, 0.7],
                "reward/correct": [None, 0.5, 0.4],
                "hack/shortcut_rate": [None, 0.1, 0.3],
            }
        )

    monkeypatch.setattr(rewards_viz, "judge_hacking", fake_judge_hacking)
    panel = rewards_viz.JudgeHackingPanel(judge_weight=1.0, steps=40, eval_every=20)
    panel.weight.value, panel.steps.value = 0.5, 10  # the student moves the sliders after the cell ran
    panel.button.click()  # and presses Run
    assert calls == [(0.5, 10, {"eval_every": 20})]
    assert panel.judge_weight == 0.5 and "w = 0.5" in panel.status.value
    assert panel.ax.get_title().endswith("w = 0.5")
    with pytest.raises(ValueError, match="judge_weight must be in"):
        rewards_viz.JudgeHackingPanel(judge_weight=1.5)


def test_steps_slider_keeps_the_value_it_was_given():
    # chapter 03's bug: IntSlider(value=15, min=10, step=10) showed 20, and Run then trained 20 steps
    from rl4lrm.viz import ComparisonPanel
    from rl4lrm.viz.controls import int_slider, log_slider

    for steps in (15, 10, 7, 2, 500):
        slider = ComparisonPanel(presets=("grpo", "rloo"), steps=steps).steps
        assert slider.value == steps and (slider.value - slider.min) % slider.step == 0, (steps, slider)
        assert slider.min <= 10 and slider.max >= 400
    assert int_slider(15, 10, 400, 10).step == 5 and int_slider(20, 10, 400, 10).step == 10
    lr = log_slider(3e-4, 1e-5, 10**-1.5)
    on_grid = (math.log10(3e-4) - lr.min) / lr.step
    assert abs(on_grid - round(on_grid)) < 1e-9 and lr.min <= -5 and lr.max >= -1.5  # 3e-4 is a stop: no 3.2e-4
    with pytest.raises(ValueError, match="positive"):
        log_slider(0.0, 1e-5, 1e-2)


def test_every_panel_slider_sits_on_its_grid():
    panel = TrainingDashboard(task="addition", steps=13, lr=3e-4, group_size=6)
    for name, control in panel.controls.items():
        if hasattr(control, "step") and hasattr(control, "min") and not isinstance(control.value, str):
            if name == "lr":
                k = (math.log10(control.value) - control.min) / control.step
            else:
                k = (control.value - control.min) / control.step
            assert abs(k - round(k)) < 1e-6, (name, control.value, control.min, control.step)


def test_show_table_wraps_long_cells_instead_of_cutting_them(monkeypatch):
    import rl4lrm.viz as viz

    shown = []
    monkeypatch.setattr(viz, "display", shown.append)
    long = "a note " * 20
    viz.show_table(pd.DataFrame({"concept": ["clip"], "note": [long], "value": [0.123456]}))
    html = shown[0].to_html()
    assert long.strip() in html and "pre-wrap" in html and "max-width: 22em" in html  # whole text, wrapped
    assert "overflow-wrap: break-word" in html  # a config key with no space breaks instead of overlapping
    assert "0.123" in html and "0.123456" not in html
    viz.show_table(pd.DataFrame({"acc": [0.5, 0.25, 0.1, 0.2]}, index=pd.Index([1.0, 0.3, 0.123456, 3e-5], name="x")))
    html = shown[1].to_html()  # the index formatted too: as short as its value, at most 3 decimals
    assert ">1.0<" in html and ">0.3<" in html and ">0.123<" in html and ">3e-05<" in html
    assert "0.300" not in html and "0.1234" not in html
    viz.show_table(pd.DataFrame([[0.5, 0.25]], columns=pd.Index([0.7, 1.0], name="temperature")))
    assert ">0.7<" in shown[2].to_html() and ">1.0<" in shown[2].to_html()  # and float column labels


def test_comparison_against_tokens_starts_at_the_evaluation_before_training():
    # chapter 04: with x = tokens the step-0 evaluation (no tokens logged yet) had no x and was not drawn
    from rl4lrm.viz import plot_comparison

    runs = pd.DataFrame(
        {
            "method": "flat",
            "seed": 0,
            "step": [0, 1, 2],
            "acc/pass@1": [0.2, None, 0.4],
            "tokens/cumulative": [None, 100.0, 200.0],
        }
    )
    fig = plot_comparison(runs, [("acc/pass@1", "held-out pass@1")], x="tokens/cumulative")
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [0.0, 200.0] and list(line.get_ydata()) == [0.2, 0.4]
    assert fig.axes[0].xaxis.get_major_locator()._integer  # whole numbers on the axis, never 1.5
    assert fig.axes[0].get_xlabel() == "tokens sampled so far"  # words, not the column's name


def test_comparison_bands_of_a_metric_that_is_never_negative_stop_at_zero():
    from rl4lrm.viz import plot_comparison

    runs = pd.DataFrame(
        {
            "method": "grpo",
            "seed": [0, 0, 1, 1],
            "step": [1, 2, 1, 2],
            "kl/k3": [0.0, 0.1, 0.0, 0.9],  # mean 0.5 ± 0.57 at step 2
            "clip/frac": 0.0,  # on-policy: never clipped
            "reward/mean": [-1.0, 0.5, 0.0, 0.5],  # may be negative: its band is not cut
        }
    )
    curves = [("kl/k3", "KL"), ("clip/frac", "clipped"), ("reward/mean", "reward")]
    fig = plot_comparison(runs, curves)
    kl, clipped, reward = fig.axes[:3]
    assert kl.collections[0].get_paths()[0].vertices[:, 1].min() == 0
    assert clipped.get_ylim()[0] == 0 and kl.get_ylim()[0] == 0
    assert reward.collections[0].get_paths()[0].vertices[:, 1].min() < -0.5


def test_the_legend_goes_into_a_spare_panel_where_it_hides_no_curve():
    from rl4lrm.viz import plot_comparison

    runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "seed": 0, "step": [1, 2, 1, 2], "reward/mean": 0.5})
    four = [("reward/mean", "reward")] * 4  # a grid of 3 + 3 panels: two spare
    axes = plot_comparison(runs, four).axes
    assert axes[0].get_legend() is None and [t.get_text() for t in axes[4].get_legend().get_texts()] == ["a", "b"]
    three = plot_comparison(runs, four[:3]).axes  # no spare panel: on the first
    assert [t.get_text() for t in three[0].get_legend().get_texts()] == ["a", "b"]


def test_run_panel_lays_out_reads_and_greys_out_its_button_while_running():
    import ipywidgets as W

    from rl4lrm.viz.controls import RunPanel

    class Failing(RunPanel):
        def __init__(self):
            self.layout({"a": W.IntSlider(value=3), "b": W.Checkbox(value=True), "c": W.Text(value="x")}, left=2)
            self.seen = None

        def run(self):
            with self.busy("working…"):
                self.seen = self.button.disabled, self.status.value
                raise RuntimeError("boom")

    panel = Failing()
    assert panel.settings() == {"a": 3, "b": True, "c": "x"}
    columns = panel.widget.children[0].children
    assert [len(c.children) for c in columns] == [2, 1]  # the first two controls on the left
    with pytest.raises(RuntimeError, match="boom"):
        panel.run()  # what the button calls
    assert panel.seen == (True, "<i>working…</i>")  # greyed out, with its message, during the run
    assert panel.button.disabled is False  # and enabled after it, although it failed
    row = RunPanel()
    row.layout({"a": W.IntSlider()})
    assert isinstance(row.widget.children[0].children[0], W.IntSlider)  # one row without ``left``
    calls = []
    row.run = lambda: calls.append("run")
    row.button.click()
    assert calls == ["run"]  # the button calls the panel's run


def test_curation_funnel_stacks_what_each_step_dropped_on_what_it_kept():
    from rl4lrm.corpus import CurationConfig, curate
    from rl4lrm.viz.resources import plot_curation_funnel

    rows = [{"prompt": p, "answer": "1"} for p in ["a b c d", "A  b c d", "x y z w", "q r s t"]]
    counts = curate(
        rows, [{"prompt": "x y z w", "answer": "1"}], rates=[0.5, 0.5, 0.5, 1.0], config=CurationConfig(ngram=4)
    ).counts
    ax = plot_curation_funnel(counts).axes[0]
    bars = [(round(p.get_height()), round(p.get_y())) for p in ax.patches]
    kept, dropped = bars[:4], bars[4:]
    assert [h for h, _ in kept] == [4, 3, 2, 1] and [h for h, _ in dropped] == [0, 1, 1, 1]
    assert [y for _, y in dropped] == [4, 3, 2, 1]  # each step's drop sits on top of what it kept
    assert "1 of 4 rows kept (25%)" in ax.get_title()
    with pytest.raises(ValueError, match="got 0 rows"):
        plot_curation_funnel(counts.iloc[:0])


def test_async_timeline_puts_sampling_and_learning_on_two_lanes_and_hatches_the_wait():
    from rl4lrm.viz.resources import plot_async_timeline

    timeline = pd.DataFrame(
        {
            "step": [0, 1],
            "version": [0, 0],
            "produce_start": [0.0, 1.0],
            "produce_end": [1.0, 2.0],
            "wait_start": [0.0, 1.5],
            "learn_start": [1.0, 2.0],
            "learn_end": [1.5, 2.5],
        }
    )
    ax = plot_async_timeline(timeline).axes[0]
    spans = [tuple(c.get_paths()[0].get_extents().bounds) for c in ax.collections]  # (x, y, width, height)
    assert len(spans) == 6  # per step: sampling, learning, and a wait (both steps waited)
    assert [(x, y) for x, y, _, _ in spans] == [(0.0, 1.1), (1.0, 0.1), (0.0, 0.1), (1.0, 1.1), (2.0, 0.1), (1.5, 0.1)]
    assert [t.get_text() for t in ax.texts] == ["0·v0", "0", "1·v0", "1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["learner", "producer"]
    with pytest.raises(ValueError, match=r"lacks columns \['learn_end'\]"):
        plot_async_timeline(timeline.drop(columns="learn_end"))


def test_token_gaps_floor_exact_agreement_and_refuse_empty_samplers():
    import torch

    from rl4lrm.viz.resources import plot_token_gaps

    gaps = {"exact": torch.zeros(3), "off": torch.tensor([0.1, -0.01, 1e-12])}
    ax = plot_token_gaps(gaps).axes[0]
    exact, off = (patch.get_path().vertices[:, 1] for patch in ax.patches)
    assert exact.max() == 3 and off.max() == 1 and ax.get_xscale() == "log"  # 0 and 1e-12 go to the 1e-8 bin
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["exact (mean 1.0e-08)", "off (mean 3.7e-02)"]
    with pytest.raises(ValueError, match="got none"):
        plot_token_gaps({})
    with pytest.raises(ValueError, match=r"no tokens for \['off'\]"):
        plot_token_gaps({"off": torch.zeros(0)})


def test_async_panel_runs_sync_and_the_chosen_bound_and_draws_the_timeline():
    from rl4lrm.viz import AsyncPanel

    panel = AsyncPanel(staleness=1, steps=10, prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=1)
    panel.controls["steps"].value, panel.controls["staleness"].value = 10, 2
    runs = panel.run()
    assert list(runs["method"].unique()) == ["sync", "staleness 2"] and runs["step"].max() == 10
    assert len(panel.timeline) == 10 and runs["async/staleness"].max() <= 2
    assert "mean lag" in panel.status.value and not panel.button.disabled


def test_precision_panel_trains_float32_beside_the_chosen_rollouts():
    from rl4lrm.viz import PrecisionPanel

    panel = PrecisionPanel(steps=10, prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=1)
    panel.controls["precision"].value, panel.controls["tis_cap"].value = "float16", 2.0
    runs = panel.run()
    assert list(runs["method"].unique()) == ["float32", "float16 + TIS (cap 2)"] and runs["step"].max() == 10
    lowered = runs[(runs["method"] != "float32") & (runs["step"] > 0)]
    assert lowered["offpolicy/kl"].notna().all() and lowered["is/mean"].between(0.9, 1.1).all()
    assert "KL(sampler ‖ learner)" in panel.status.value and not panel.button.disabled
    panel.controls["tis_cap"].value = 0.0
    panel.run()
    assert "is/mean" not in panel.runs  # no correction: no weights, and no panel drawn for them
