"""Tests for rl4lrm.presets: every preset is a valid combination of registered axes, overrides."""

import re
from dataclasses import fields

import pytest

from rl4lrm.advantages import ADVANTAGES
from rl4lrm.aggregation import AGGREGATIONS
from rl4lrm.kl import KL_ESTIMATORS
from rl4lrm.losses import POLICY_LOSSES
from rl4lrm.presets import KL_PLACEMENTS, PRESETS, Preset, resolve_preset

NAMES = sorted(PRESETS)


def test_the_documented_presets_exist():
    assert {"reinforce", "grpo"} <= set(PRESETS)
    assert all(name == preset.name for name, preset in PRESETS.items())


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_resolves_to_itself(name):
    assert resolve_preset(name) == PRESETS[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_axis_names_a_registered_function(name):
    p = PRESETS[name]
    assert p.advantage in ADVANTAGES and callable(ADVANTAGES.get(p.advantage))
    assert p.policy_loss in POLICY_LOSSES and callable(POLICY_LOSSES.get(p.policy_loss))
    assert p.aggregation in AGGREGATIONS
    assert p.kl_estimator in KL_ESTIMATORS and callable(KL_ESTIMATORS.get(p.kl_estimator))
    assert p.kl_placement in KL_PLACEMENTS
    assert 0 <= p.clip_low <= 1 and p.clip_high >= 0
    assert p.kl_coef >= 0 and p.entropy_coef >= 0 and p.update_epochs >= 1


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_cites_its_paper_with_a_link(name):
    paper = PRESETS[name].paper
    assert paper.strip()
    assert re.search(r"https?://\S+\.\S+", paper), paper
    assert re.search(r"\(\d{4}\)", paper), paper  # author (year), as in the table


def test_the_issue_presets_exist():
    assert {"reinforce", "ppo", "grpo", "dr_grpo", "dapo", "gspo", "rloo", "reinforce_pp", "remax", "cispo"} <= set(
        PRESETS
    )


@pytest.mark.parametrize(
    "name, axes",
    [
        ("dr_grpo", dict(advantage="dr_grpo", aggregation="seq_mean_token_sum_norm", kl_coef=0.0)),
        ("dapo", dict(clip_low=0.2, clip_high=0.28, aggregation="token_mean", kl_coef=0.0)),
        ("gspo", dict(policy_loss="gspo", clip_low=3e-4, clip_high=4e-4)),
        ("ppo", dict(advantage="gae", kl_placement="reward", kl_estimator="k1")),
        ("rloo", dict(advantage="rloo", policy_loss="vanilla_pg", kl_placement="reward")),
        ("cispo", dict(policy_loss="cispo", clip_low=1.0)),
        ("remax", dict(advantage="remax", policy_loss="vanilla_pg")),
        ("reinforce_pp", dict(advantage="reinforce_pp", kl_placement="reward")),
    ],
)
def test_presets_carry_their_papers_choices(name, axes):
    p = PRESETS[name]
    assert {k: getattr(p, k) for k in axes} == axes


def test_grpo_has_the_deepseekmath_hyperparameters():
    p = PRESETS["grpo"]
    assert (p.advantage, p.policy_loss, p.aggregation) == ("grpo", "ppo_clip", "seq_mean_token_mean")
    assert (p.clip_low, p.clip_high, p.kl_coef, p.kl_estimator, p.kl_placement) == (0.2, 0.2, 0.04, "k3", "loss")
    assert "2402.03300" in p.paper


def test_overrides_apply_and_none_keeps_the_preset_value():
    base = PRESETS["grpo"]
    p = resolve_preset("grpo", kl_coef=0.0, clip_high=0.28, aggregation="seq_mean_token_mean", update_epochs=2)
    assert (p.kl_coef, p.clip_high, p.aggregation, p.update_epochs) == (0.0, 0.28, "seq_mean_token_mean", 2)
    assert (p.name, p.advantage, p.clip_low, p.paper) == (base.name, base.advantage, base.clip_low, base.paper)
    kept = resolve_preset("grpo", kl_coef=None, advantage=None, clip_low=None)
    assert kept == base
    assert PRESETS["grpo"].kl_coef == 0.04  # the table itself is untouched


def test_every_axis_can_be_overridden():
    overridable = {f.name for f in fields(Preset)} - {"name", "paper"}
    values = dict(
        advantage="reinforce",
        policy_loss="vanilla_pg",
        aggregation="seq_mean_token_sum_norm",
        clip_low=0.1,
        clip_high=0.3,
        kl_coef=0.5,
        kl_estimator="k1",
        kl_placement="reward",
        entropy_coef=0.01,
        update_epochs=3,
        dual_clip_c=2.5,
        replay=2,
        tis_cap=2.0,
        gamma=0.99,
        lam=0.9,
        value_clip=0.5,
        critic_lr=1e-4,
        pass_k=2,
        kl_clamp=10.0,
        std_eps=1e-4,
        whiten_advantages=True,
        whiten_std="unbiased",
        singleton="reward",
        overlong_filter=True,
    )
    assert set(values) == overridable
    p = resolve_preset("grpo", **values)
    assert {k: getattr(p, k) for k in values} == values


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"'nope'.*grpo.*reinforce"):
        resolve_preset("nope")


@pytest.mark.parametrize("field", ["foo", "paper"])
def test_unknown_override_field(field):
    with pytest.raises(ValueError, match=rf"'{field}'.*advantage"):
        resolve_preset("grpo", **{field: "x"})


@pytest.mark.parametrize(
    "override, expected",
    [
        (dict(advantage="nope"), r"advantage must be one of .*grpo.*got 'nope'"),
        (dict(policy_loss="nope"), r"policy_loss must be one of .*ppo_clip.*got 'nope'"),
        (dict(aggregation="sum"), r"aggregation must be one of .*token_mean.*got 'sum'"),
        (dict(kl_estimator="k4"), r"kl_estimator must be one of .*k3.*got 'k4'"),
        (dict(kl_placement="sideways"), r"kl_placement must be one of .*loss.*reward.*got 'sideways'"),
        (dict(clip_low=1.5), r"clip_low must be in \[0, 1\], got 1\.5"),
        (dict(clip_low=-0.1), r"clip_low must be in \[0, 1\], got -0\.1"),
        (dict(clip_high=-0.2), r"clip_high must be >= 0, got -0\.2"),
        (dict(kl_coef=-1), r"kl_coef.*-1"),
        (dict(entropy_coef=-0.5), r"entropy_coef.*-0\.5"),
        (dict(update_epochs=0), r"update_epochs.*got 0"),
        (dict(dual_clip_c=1.0), r"dual_clip_c must be > 1, got 1\.0"),
        (dict(gamma=1.5), r"gamma must be in \[0, 1\], got 1\.5"),
        (dict(lam=-0.1), r"lam must be in \[0, 1\], got -0\.1"),
        (dict(tis_cap=0.5), r"tis_cap must be 0 \(off\) or >= 1, got 0\.5"),
        (dict(replay=-1), r"replay must be >= 0, got -1"),
        (dict(pass_k=0), r"pass_k must be >= 1, got 0"),
        (dict(value_clip=0.0), r"value_clip must be > 0, got 0\.0"),
        (dict(kl_clamp=-1.0), r"kl_clamp must be >= 0, got -1\.0"),
        (dict(std_eps=-1e-4), r"std_eps must be >= 0, got -0\.0001"),
        (dict(kl_estimator="k2+"), r"kl_estimator must be one of .*k3\+.*got 'k2\+'"),
        (dict(whiten_std="population"), r"whiten_std must be one of \['biased', 'unbiased'\], got 'population'"),
        (dict(singleton="drop"), r"singleton must be one of \['zero', 'reward'\], got 'drop'"),
        (dict(whiten_advantages="yes"), r"whiten_advantages must be True or False, got 'yes'"),
    ],
)
def test_bad_axis_values_are_named(override, expected):
    with pytest.raises(ValueError, match=expected) as err:
        resolve_preset("grpo", **override)
    assert "'grpo'" in str(err.value)  # which preset was being built


def test_preset_validates_on_construction():
    with pytest.raises(ValueError, match=r"Preset\('mine'\)\.advantage must be one of .*got 'nope'"):
        Preset("mine", advantage="nope", policy_loss="ppo_clip")
    assert Preset("mine", advantage="grpo", policy_loss="ppo_clip").aggregation == "token_mean"
