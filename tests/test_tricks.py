"""Chapter 08's pieces: Lite PPO's group-mean / batch-std advantage, batch normalisation, the overlong filter,
the ``lite_ppo`` preset, the one-trick-at-a-time study, its panel and its exercise checkers."""

import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rl4lrm.advantages import ADVANTAGES, NORMALISATIONS, batch_norm, group_mean_batch_std  # noqa: E402
from rl4lrm.aggregation import aggregation_denominators  # noqa: E402
from rl4lrm.exercises import (  # noqa: E402
    check_batch_std_advantages,
    check_filtered_token_weights,
    check_largest_advantage,
)
from rl4lrm.experiments.tricks import (  # noqa: E402
    BASELINE,
    TRICKS,
    ablation_arms,
    final_pass_at_1,
    recipe,
    recipe_label,
    tricks_study,
    tricks_table,
)
from rl4lrm.presets import PRESETS, resolve_preset  # noqa: E402
from rl4lrm.trainer import TrainConfig, Trainer, overlong_filter_mask  # noqa: E402

SMALL = dict(prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=2, eval_every=1, device="cpu")


# ---------------------------------------------------------------- hand-computed values


def test_group_mean_batch_std_hand_example():
    # groups [1, 0] and [1, 1]: group means 0.5 and 1; raw batch rewards [1, 0, 1, 1] have mean 0.75 and
    # sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25, so the batch std is 0.5
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0])
    adv, metrics = group_mean_batch_std(rewards, torch.ones(4, 2), 2, eps=0.0)
    torch.testing.assert_close(adv[:, 0], torch.tensor([1.0, -1.0, 0.0, 0.0]))
    assert metrics["adv/batch_std"] == pytest.approx(0.5)
    assert metrics["reward/frac_zero_std"] == pytest.approx(0.5)
    # GRPO divides group 0 by its own std (sqrt(0.5)): 0.5 / 0.7071 = 0.7071
    grpo, _ = ADVANTAGES.get("grpo")(rewards, torch.ones(4, 1), 2, eps=0.0)
    torch.testing.assert_close(grpo[:, 0], torch.tensor([math.sqrt(0.5), -math.sqrt(0.5), 0.0, 0.0]))


def test_group_mean_batch_std_keeps_a_rare_success_small():
    # one success in 8, in a batch of 4 groups: GRPO blows the group up to unit scale, the batch std does not
    rewards = torch.zeros(32)
    rewards[0] = 1.0
    rewards[8:12] = 1.0  # another group half right
    mask = torch.ones(32, 1)
    lite, _ = group_mean_batch_std(rewards, mask, 8, eps=0.0)
    grpo, _ = ADVANTAGES.get("grpo")(rewards, mask, 8, eps=0.0)
    batch_std = rewards.std().item()  # sqrt((5 - 32 * (5/32)**2) / 31)
    assert lite[0, 0].item() == pytest.approx((1 - 1 / 8) / batch_std)
    assert grpo[0, 0].item() == pytest.approx((1 - 1 / 8) / math.sqrt((1 - 1 / 8) ** 2 / 7 + 7 * (1 / 8) ** 2 / 7))
    assert (lite[16:] == 0).all() and (grpo[16:] == 0).all()  # all-wrong groups stay silent in both


def test_batch_norm_hand_example():
    # batch mean 0.75, sample std 0.5: (1 - 0.75) / 0.5 = 0.5 and (0 - 0.75) / 0.5 = -1.5; a solved group is
    # not silent under a batch baseline
    adv, metrics = batch_norm(torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.ones(4, 3), 2, eps=0.0)
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.5, -1.5, 0.5, 0.5]))
    assert metrics["adv/batch_std"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["group_mean_batch_std", "batch_norm"])
def test_constant_batch_and_padding_give_exact_zeros(name):
    fn = ADVANTAGES.get(name)
    adv, metrics = fn(torch.full((6,), 0.1), torch.ones(6, 2), 3)
    assert (adv == 0).all() and all(math.isfinite(v) for v in metrics.values())
    mask = torch.tensor([[1.0, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]])
    adv, _ = fn(torch.tensor([1.0, 0.0, 0.0, 1.0]), mask, 2)
    assert (adv[mask == 0] == 0).all() and torch.isfinite(adv).all()


def _loop_group_mean_batch_std(rewards, group_size, eps):
    n = len(rewards)
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1))
    out = []
    for g in range(0, n, group_size):
        group = rewards[g : g + group_size]
        gm = sum(group) / group_size
        out += [0.0 if len(set(group)) == 1 else (r - gm) / (std + eps) for r in group]
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("group_size", [2, 3, 8])
def test_group_mean_batch_std_matches_loop_reference(seed, group_size):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randint(0, 2, (4 * group_size,), generator=gen).float()
    rewards[0], rewards[1] = 1.0, 0.0  # at least one group with a signal
    adv, _ = group_mean_batch_std(rewards, torch.ones(len(rewards), 1), group_size, eps=1e-6)
    want = torch.tensor(_loop_group_mean_batch_std(rewards.tolist(), group_size, 1e-6))
    torch.testing.assert_close(adv[:, 0], want, rtol=1e-5, atol=1e-6)


def test_normalisations_name_registered_estimators():
    assert set(NORMALISATIONS.values()) <= set(ADVANTAGES.names())
    assert NORMALISATIONS["group"] == "grpo" and NORMALISATIONS["mean only"] == "dr_grpo"


def test_overlong_filter_mask_and_token_mean_weights():
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0], [1, 1, 1]])
    truncated = torch.tensor([True, False, False])
    kept = overlong_filter_mask(mask, truncated)
    torch.testing.assert_close(kept, torch.tensor([[0.0, 0, 0], [1, 1, 0], [1, 1, 1]]))
    # token_mean now divides by the 5 kept tokens, not 8
    torch.testing.assert_close(aggregation_denominators(kept, "token_mean").sum(1), torch.tensor([0.0, 0.4, 0.6]))


# ---------------------------------------------------------------- presets and the trainer


def test_lite_ppo_preset_is_the_two_tricks_on_a_vanilla_ppo_loss():
    lite = PRESETS["lite_ppo"]
    assert (lite.advantage, lite.aggregation, lite.policy_loss) == ("group_mean_batch_std", "token_mean", "ppo_clip")
    assert lite.kl_coef == 0.0 and lite.clip_high == lite.clip_low == 0.2 and not lite.overlong_filter
    assert "2508.08221" in lite.paper
    assert resolve_preset("grpo", overlong_filter=True).overlong_filter


def test_overlong_filter_takes_truncated_rows_out_of_the_loss():
    # max_new_tokens=2 truncates most addition answers; the filter's loss mask drops exactly those rows
    config = TrainConfig.build(task="addition", steps=1, max_new_tokens=2, overlong_filter=True, **SMALL)
    trainer = Trainer(config, progress=False)
    history = trainer.train()
    exp = trainer.buffer[-1]
    truncated = exp.batch.truncated
    assert truncated.any()
    assert (exp.loss_mask[truncated] == 0).all()
    torch.testing.assert_close(exp.loss_mask[~truncated], exp.batch.response_mask[~truncated])
    assert history["overlong/frac_filtered"].iloc[-1] == pytest.approx(truncated.float().mean().item())
    off = Trainer(TrainConfig.build(task="addition", steps=1, max_new_tokens=2, **SMALL), progress=False)
    off.train()
    assert off.buffer[-1].loss_mask is None


# ---------------------------------------------------------------- the study


def test_recipe_and_labels():
    assert recipe() == {**BASELINE, "advantage": "grpo"}
    assert recipe_label(recipe()) == "baseline"
    lite_like = recipe("group mean, batch std", token_level=True)
    assert lite_like["advantage"] == "group_mean_batch_std" and lite_like["aggregation"] == "token_mean"
    assert recipe_label(lite_like) == "+ group mean, batch std + token-level loss"
    assert recipe(kl=True)["kl_coef"] == PRESETS["grpo"].kl_coef  # baseline + KL is GRPO
    with pytest.raises(ValueError, match="normalisation must be one of"):
        recipe("per token")


def test_ablation_arms_change_one_trick_each():
    arms = ablation_arms()
    assert list(arms)[:1] == ["baseline"] and {"lite_ppo", "dapo"} <= set(arms)
    for trick, axes in TRICKS.items():
        assert arms[f"+ {trick}"] == {**BASELINE, **axes}
        TrainConfig.build(task="countdown-weak", **arms[f"+ {trick}"])  # every arm is a valid config
    with pytest.raises(ValueError, match="unknown tricks"):
        ablation_arms(["warp drive"])


def _fake_runs():
    rows = []
    for base in ("weak", "strong"):
        for seed in (0, 1, 2):
            for method, after in [("baseline", 0.20), ("+ a", 0.25), ("+ b", 0.15), ("+ c", None)]:
                after = after if after is not None else (0.22 if seed else 0.18)
                rows += [
                    {"base": base, "method": method, "seed": seed, "step": 0, "acc/pass@1": 0.1},
                    {"base": base, "method": method, "seed": seed, "step": 5, "acc/pass@1": None},
                    {"base": base, "method": method, "seed": seed, "step": 10, "acc/pass@1": after + 0.01 * seed},
                ]
    return pd.DataFrame(rows)


def test_tricks_table_pairs_seeds_and_gives_verdicts():
    table = tricks_table(_fake_runs()).set_index(["base", "method"])
    assert table.loc[("weak", "+ a"), "vs baseline (points) mean"] == pytest.approx(5.0)
    assert table.loc[("weak", "+ a"), "vs baseline (points) std"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc[("weak", "+ a"), "verdict"] == "helps"
    assert table.loc[("weak", "+ b"), "verdict"] == "hurts"
    assert table.loc[("strong", "+ c"), "verdict"] == "no clear effect"
    assert table.loc[("weak", "baseline"), "verdict"] == "—"
    assert table.loc[("weak", "+ a"), "base pass@1"] == pytest.approx(0.1)
    one_seed = tricks_table(_fake_runs().query("seed == 0")).set_index(["base", "method"])
    assert one_seed.loc[("weak", "+ a"), "verdict"] == "1 seed"
    with pytest.raises(ValueError, match="no 'baseline' arm"):
        tricks_table(_fake_runs().query("method != 'baseline'"))


def test_final_pass_at_1_reads_the_first_and_last_evaluation():
    final = final_pass_at_1(_fake_runs())
    row = final[(final.base == "weak") & (final.method == "+ a") & (final.seed == 2)].iloc[0]
    assert (row["before"], row["after"]) == (pytest.approx(0.1), pytest.approx(0.27))


@pytest.mark.slow
def test_tricks_study_runs_every_arm_on_a_base_model():
    arms = ablation_arms(["token-level loss", "overlong filter"], combined=("lite_ppo",))
    runs = tricks_study("countdown-weak", arms, seeds=(0,), progress=False, steps=2, **SMALL)
    assert set(runs["method"]) == set(arms) and set(runs["base"]) == {"countdown-weak"}
    assert runs["length/frac_truncated"].notna().any()
    table = tricks_table(runs)
    assert set(table["method"]) == set(arms) and table["verdict"].iloc[1] == "1 seed"


# ---------------------------------------------------------------- panel and exercises


def test_panel_reads_its_controls_when_run(monkeypatch):
    import rl4lrm.viz.tricks as tricks_viz

    calls = []

    def fake_study(base, arms, seeds, **kw):
        calls.append((base, arms, seeds, kw["steps"]))
        return pd.DataFrame(
            [
                {"method": m, "seed": seeds[0], "step": s, "acc/pass@1": p, "base": base}
                for m in arms
                for s, p in [(0, 0.1), (10, 0.3)]
            ]
        )

    monkeypatch.setattr(tricks_viz, "tricks_study", fake_study)
    panel = tricks_viz.TricksPanel(base="countdown-weak", steps=40, seed=0, eval_problems=8)
    # the student changes the controls after the cell ran, then presses Run
    panel.base.value, panel.normalisation.value, panel.steps.value, panel.seed.value = (
        "countdown-strong",
        "group mean, batch std",
        20,
        3,
    )
    panel.toggles["token_level"].value = True
    panel.button.click()
    (base, arms, seeds, steps) = calls[0]
    assert (base, seeds, steps) == ("countdown-strong", (3,), 20)
    assert list(arms) == ["baseline", "+ group mean, batch std + token-level loss"]
    assert "0.10 → 0.30" in panel.status.value
    panel.with_baseline.value = False
    assert list(panel.arms()) == ["+ group mean, batch std + token-level loss"]
    panel.toggles["token_level"].value, panel.normalisation.value = False, "group"
    assert list(panel.arms()) == ["baseline"]  # nothing chosen: the baseline alone
    with pytest.raises(ValueError, match="base must be one of"):
        tricks_viz.TricksPanel(base="chess")


def test_exercise_checkers_accept_the_library_and_reject_a_wrong_answer(capsys):
    def right(rewards, group_size):
        grouped = rewards.view(-1, group_size)
        centered = grouped - grouped.mean(1, keepdim=True)
        return (centered / (rewards.std() + 1e-6)).reshape(-1)

    assert check_batch_std_advantages(right)
    assert not check_batch_std_advantages(lambda r, g: ADVANTAGES.get("grpo")(r, torch.ones(len(r), 1), g)[0][:, 0])

    def weights(mask, truncated):
        kept = mask * (~truncated).float()[:, None]
        return kept / kept.sum().clamp(min=1)

    assert check_filtered_token_weights(weights)
    assert not check_filtered_token_weights(lambda mask, truncated: mask / mask.sum())
    rewards = torch.tensor([1.0] + [0.0] * 7 + [1.0] * 4 + [0.0] * 4)
    answers = {name: check_largest_advantage(name, rewards, 8) for name in NORMALISATIONS}
    assert sum(answers.values()) >= 1 and answers["group"]  # GRPO scales a rare success up the most
    assert not check_largest_advantage("nope", rewards, 8)
    assert "✓" in capsys.readouterr().out
