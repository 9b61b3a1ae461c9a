"""The canned studies behind notebooks 02 and 04: signal summary, curriculum study, reward-method runs."""

import pandas as pd
import pytest

from rl4lrm.experiments.rewards import REWARD_METHODS, train_with_reward
from rl4lrm.experiments.sampling import (
    SAMPLING_METHODS,
    curriculum_study,
    signal_summary,
)
from rl4lrm.rewards import REWARDS
from rl4lrm.trainer import TrainConfig

SMALL = dict(steps=2, prompts_per_step=4, group_size=4, eval_problems=8, eval_every=0, device="cpu")


def test_signal_summary_by_hand():
    runs = pd.DataFrame(
        {
            "method": ["flat"] * 3 + ["dynamic"] * 3,
            "step": [0, 1, 2] * 2,
            "reward/frac_zero_std": [None, 0.5, 0.25, None, 0.0, 0.0],
            "tokens/generated": [None, 100.0, 60.0, None, 300.0, 200.0],
            "sampling/drawn_frac_zero_std": [None, None, None, None, 0.5, 0.5],
        }
    )
    table = signal_summary(runs, prompts_per_step=4)
    assert table.loc["flat", "signal (trained)"] == pytest.approx(0.625)
    assert table.loc["flat", "signal (drawn)"] == pytest.approx(0.625)  # no filter: drawn = trained
    assert table.loc["flat", "tokens per signal group"] == pytest.approx(160 / (4 * 0.5 + 4 * 0.75))
    assert table.loc["dynamic", "signal (trained)"] == 1.0 and table.loc["dynamic", "signal (drawn)"] == 0.5
    assert table.loc["dynamic", "tokens/step"] == 250.0


def test_every_sampling_and_reward_method_is_a_valid_config():
    for overrides in SAMPLING_METHODS.values():
        TrainConfig.build(task="countdown", **overrides)  # raises on a bad method table
    for label, spec in REWARD_METHODS.items():
        names = set(spec["rewards"])
        assert names <= set(REWARDS.names()), (label, names)
        assert spec["task"] in ("addition", "countdown", "chain")


def test_curriculum_study_relates_picks_to_base_pass_rates():
    per_step, base_rate, history = curriculum_study(
        "addition",
        steps=3,
        pool_size=16,
        base_samples=4,
        prompts_per_step=4,
        group_size=4,
        eval_problems=8,
        eval_every=0,
    )
    assert list(per_step["step"]) == [1, 2, 3] and base_rate.shape == (16,)
    assert ((0 <= base_rate) & (base_rate <= 1)).all()
    assert per_step["picked base pass rate"].between(0, 1).all()
    assert per_step["picked estimate"].iloc[0] == pytest.approx(0.5)  # nothing seen yet: the prior


def test_train_with_reward_runs_a_method_and_rejects_unknown_ones():
    history = train_with_reward("majority vote (addition)", **SMALL)
    assert "reward/majority_vote" in history and "reward/correct" in history
    with pytest.raises(ValueError, match="unknown reward method 'nope'"):
        train_with_reward("nope")
