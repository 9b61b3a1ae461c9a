"""Architecture-algorithm co-design: the same-size shapes, their zoo entries, and the study's stability reading."""

import math

import matplotlib
import pandas as pd
import pytest
import torch

from rl4lrm.experiments.codesign import (
    ARCH_BASES,
    COLLAPSE_DROP,
    SPIKE_RATIO,
    codesign_study,
    run_stability,
    shape_table,
    stability_table,
)
from rl4lrm.models.tiny import TINY_PRESETS, count_parameters, tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import ZOO, ZooEntry
from rl4lrm.rollout import compute_logprobs, rollout

matplotlib.use("Agg")
TOK = char_tokenizer()


# ------------------------------------------------------------------ the shapes
@pytest.mark.parametrize(("preset", "arch"), [("micro-deep", "llama"), ("micro-gpt2", "gpt2")])
def test_same_size_shapes_are_within_five_percent_of_micro(preset, arch):
    micro = count_parameters(tiny_model("micro", TOK))
    model = tiny_model(preset, TOK, arch=arch)
    assert abs(count_parameters(model) / micro - 1) < 0.05
    assert model.config.model_type == arch


def test_deep_preset_is_deeper_and_narrower_than_micro():
    deep, micro = TINY_PRESETS["micro-deep"], TINY_PRESETS["micro"]
    assert deep["num_hidden_layers"] > 2 * micro["num_hidden_layers"] and deep["hidden_size"] < micro["hidden_size"]


def test_gpt2_has_no_dropout_so_rollout_and_training_logprobs_agree():
    model = tiny_model("micro-gpt2", TOK, arch="gpt2")
    assert model.config.resid_pdrop == model.config.embd_pdrop == model.config.attn_pdrop == 0.0
    batch = rollout(
        model, TOK, ["12+34=", "5+6="], group_size=3, max_new_tokens=5, generator=torch.Generator().manual_seed(0)
    )
    model.train()  # the trainer recomputes log-probs in training mode: dropout there would break on-policy
    logprobs, _ = compute_logprobs(model, batch)
    assert torch.allclose(logprobs, batch.old_logprobs, atol=1e-5)


def test_unknown_arch_names_the_choices():
    with pytest.raises(ValueError, match="gpt2"):
        tiny_model("micro", TOK, arch="mamba")


def test_zoo_entry_rejects_unknown_preset_and_arch():
    with pytest.raises(ValueError, match="micro-deep"):
        ZooEntry("addition", model_preset="huge")
    with pytest.raises(ValueError, match="gpt2"):
        ZooEntry("addition", arch="mamba")


def test_zoo_entries_share_addition_recipe_and_differ_in_shape():
    ref = ZOO["addition"]
    for base in ARCH_BASES:
        entry = ZOO[base]
        assert (entry.task, entry.task_kwargs, entry.sft, entry.init) == (ref.task, ref.task_kwargs, ref.sft, None)
    shapes = {(ZOO[b].model_preset, ZOO[b].arch) for b in ARCH_BASES}
    assert len(shapes) == len(ARCH_BASES)


def test_shape_table_reads_the_checkpoints():
    table = shape_table().set_index("base")
    assert list(table.index) == list(ARCH_BASES)
    assert (table["params vs addition"].abs() < 0.05).all()
    assert table.loc["addition-deep", "layers"] == 8 and table.loc["addition-gpt2", "positions"] == "learned"


# ------------------------------------------------------------------ reading stability from a history
def _history(pass1, grads, kls, entropies):
    rows = [{"step": 0, "acc/pass@1": pass1[0]}]
    for i, (g, k, e) in enumerate(zip(grads, kls, entropies), start=1):
        rows.append({"step": i, "grad/norm": g, "kl/k3": k, "entropy/mean": e, "time/step": 0.5})
    rows[-1]["acc/pass@1"] = pass1[1]
    return pd.DataFrame(rows)


def test_run_stability_by_hand():
    grads = [1.0, 1.0, 1.0, 1.2, 10.0]  # median 1.0: one spike of 10x
    out = run_stability(_history((0.4, 0.6), grads, [0.0, 0.1, 0.3, 0.2, 0.5], [0.8, 0.7, 0.6, 0.5, 0.4]))
    assert out["gain"] == pytest.approx(20.0) and out["max kl"] == 0.5
    assert out["grad spikes"] == 1 and out["max grad/median"] == pytest.approx(10.0) and 10.0 > SPIKE_RATIO
    assert (out["entropy start"], out["entropy end"]) == (0.8, 0.4) and not out["collapsed"]
    worse = run_stability(_history((0.5, 0.5 - COLLAPSE_DROP - 0.01), [1.0] * 3, [0.1] * 3, [0.5] * 3))
    assert worse["collapsed"] and worse["grad spikes"] == 0


def test_stability_table_aggregates_seeds_and_checks_columns():
    runs = pd.concat(
        [
            _history((0.4, 0.4 + g), [1.0] * 3, [0.1] * 3, [0.5] * 3).assign(base="a", lr=1e-3, seed=s)
            for s, g in enumerate((0.1, 0.2, -0.3))
        ]
    )
    row = stability_table(runs).iloc[0]
    assert row["seeds"] == 3 and row["gain mean"] == pytest.approx(0.0, abs=1e-9)
    assert row["collapse rate"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="lacks the columns"):
        stability_table(runs.drop(columns="lr"))


def test_study_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown base"):
        codesign_study(["nope"], progress=False)
    with pytest.raises(ValueError, match="positive"):
        codesign_study(["addition"], lrs=(0.0,), progress=False)
    with pytest.raises(ValueError, match="lrs="):
        codesign_study(["addition"], lr=1e-3, progress=False)


def test_tiny_study_runs_and_plots():
    from rl4lrm.viz.codesign import plot_codesign

    runs = codesign_study(
        ["addition-gpt2"], seeds=(0,), steps=2, eval_every=2, eval_problems=8, eval_samples=1, progress=False
    )
    assert set(runs["base"]) == {"addition-gpt2"} and runs["kl/k3"].notna().any()  # the reference is tracked
    row = stability_table(runs).iloc[0]
    assert math.isfinite(row["gain mean"]) and row["s/step mean"] > 0
    fig = plot_codesign(runs)
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="was not run"):
        plot_codesign(runs, lr=0.5)
