"""Continual RL (notebook 17): replay's weights, the stage tasks, the runs' table, forgetting and the panel."""

import matplotlib
import pandas as pd
import pytest

from rl4lrm.experiments.continual import REMEDIES, Remedy, continual_run, forgetting, replay_weights, stage_task
from rl4lrm.experiments.frontiers_exercises import check_forgetting, check_replay_weights
from rl4lrm.models.zoo import load_task
from rl4lrm.viz import ContinualPanel, plot_continual

matplotlib.use("Agg")
TINY = dict(steps=2, eval_problems=4, eval_samples=1, prompts_per_step=2, group_size=2, device="cpu")


def test_replay_weights_by_hand():
    assert replay_weights("chain", [], 0.5) == {"chain": 1.0}
    assert replay_weights("chain", ["add3"], 0.0) == {"chain": 1.0}
    assert replay_weights("chain", ["add3"], 0.5) == {"add3": 0.5, "chain": 0.5}
    assert replay_weights("add2", ["add3", "chain", "add3"], 0.4) == pytest.approx(
        {"add3": 0.2, "chain": 0.2, "add2": 0.6}
    )
    assert replay_weights("add3", ["add3"], 0.5) == {"add3": 1.0}  # the current part is not its own replay
    with pytest.raises(ValueError, match=r"replay must be in \[0, 1\), got 1"):
        replay_weights("chain", ["add3"], 1)


def test_stage_task_is_the_part_alone_or_a_mixture_with_the_earlier_parts():
    mixture = load_task("generalist")
    assert stage_task(mixture, "chain", ["add3"], 0.0) is mixture.part("chain")
    mixed = stage_task(mixture, "chain", ["add3"], 0.25)
    assert mixed.weights == {"add3": 0.25, "chain": 0.75} and mixed.parts["add3"] == mixture.parts["add3"]
    problems = mixed.problems("train", 400, seed=0)
    share = sum(p.meta["part"] == "add3" for p in problems) / len(problems)
    assert 0.18 < share < 0.32


def test_remedies_and_run_settings_are_checked():
    with pytest.raises(ValueError, match=r"replay must be in \[0, 1\)"):
        Remedy(replay=1.0)
    with pytest.raises(ValueError, match="kl_coef must be >= 0"):
        Remedy(kl_coef=-0.1)
    with pytest.raises(ValueError, match=r"unknown remedy 'ewc'; choose one of \['KL anchor', 'none', 'replay'\]"):
        continual_run("ewc", **TINY)
    with pytest.raises(ValueError, match=r"stages \['add4'\] are not parts of 'generalist'"):
        continual_run("none", stages=("add3", "add4"), **TINY)
    with pytest.raises(ValueError, match=r"kl_coef=0.5 is the remedy's"):
        continual_run("none", kl_coef=0.5, **TINY)
    assert REMEDIES["KL anchor"].kl_coef > 0 and REMEDIES["replay"].replay > 0


def test_a_run_measures_every_part_after_every_stage():
    table = continual_run("KL anchor", stages=("add3", "chain"), seed=1, **TINY)
    assert list(table["stage"].unique()) == [0, 1, 2]
    assert list(table.drop_duplicates("stage")["after"]) == ["base", "add3", "chain"]
    assert len(table) == 9 and set(table["part"]) == {"add2", "add3", "chain"}
    assert table["accuracy"].between(0, 1).all() and (table[table["stage"] == 0]["kl"].abs() < 1e-4).all()
    trained = table[table["stage"] == 1].set_index("part")["trained"]
    assert trained.to_dict() == {"add2": False, "add3": True, "chain": False}
    assert set(table["remedy"]) == {"KL anchor"} and set(table["seed"]) == {1} and set(table["lr"]) == {3e-4}


def test_forgetting_reads_each_part_against_the_stage_that_trained_it():
    acc = {  # stage -> part -> accuracy
        0: {"a": 0.5, "b": 0.2, "c": 0.4},
        1: {"a": 0.8, "b": 0.2, "c": 0.3},
        2: {"a": 0.6, "b": 0.5, "c": 0.1},
    }
    after = {0: "base", 1: "a", 2: "b"}
    table = pd.DataFrame(
        [
            dict(remedy="none", lr=1e-3, seed=0, stage=s, after=after[s], part=p, accuracy=x)
            for s in acc
            for p, x in acc[s].items()
        ]
    )
    out = forgetting(table).set_index("part")
    assert out["role"].to_dict() == {"a": "earlier stage", "b": "last stage", "c": "untrained"}
    assert out["change"].to_dict() == pytest.approx({"a": -0.2, "b": 0.3, "c": -0.3})


def test_exercise_checker_accepts_the_library_and_rejects_a_wrong_split(capsys):
    assert check_replay_weights(replay_weights)

    def counts_repeats(current, earlier, replay):  # splits by occurrences, not by distinct parts
        others = [p for p in earlier if p != current]
        if not replay or not others:
            return {current: 1.0}
        out = {current: 1 - replay}
        for p in others:
            out[p] = out.get(p, 0) + replay / len(others)
        return out

    assert not check_replay_weights(counts_repeats)
    assert "✗ replay weights" in capsys.readouterr().out


def test_plot_and_panel_draw_every_part_and_report_the_change():
    small = dict(prompts_per_step=2, group_size=2, device="cpu")
    panel = ContinualPanel(stages=("add3", "chain"), remedy="replay", steps=5, lr=1e-3, eval_problems=4, **small)
    panel.steps.value = 2  # read at Run time, not at construction
    table = panel.run()
    assert table is panel.table and set(table["remedy"]) == {"replay"} and table["lr"].iloc[0] == pytest.approx(1e-3)
    assert panel.status.value.startswith("done: earlier stages' parts changed by")
    fig = plot_continual(pd.concat([table, table.assign(lr=3e-4)]))
    assert len(fig.axes) == 6 and all(len(ax.lines) == 1 for ax in fig.axes)


def test_forgetting_checker_accepts_a_right_answer_and_rejects_peak_based_forgetting(capsys):
    def right(accuracy, stages):
        last = len(stages)
        trained_at = {part: k for k, part in enumerate(stages, start=1)}  # the last stage that trained each part
        return {p: accuracy[last][p] - accuracy[k][p] for p, k in trained_at.items() if k < last and stages[-1] != p}

    def against_the_first_stage(accuracy, stages):  # measures from the first stage that trained a part
        last, first = len(stages), {}
        for k, part in enumerate(stages, start=1):
            first.setdefault(part, k)
        return {p: accuracy[last][p] - accuracy[k][p] for p, k in first.items() if stages[-1] != p}

    assert check_forgetting(right)
    assert not check_forgetting(against_the_first_stage)
    assert "✗ forgetting" in capsys.readouterr().out
