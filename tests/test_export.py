"""rl4lrm.export: recipes in TRL's, verl's and OpenRLHF's names, and the files that carry them."""

from __future__ import annotations

import runpy

import pytest

from rl4lrm.cli import main
from rl4lrm.crosswalk import CROSSWALK
from rl4lrm.export import FRAMEWORKS, export_recipe, render
from rl4lrm.presets import PRESETS
from rl4lrm.trainer import TrainConfig

# keys of a run that the crosswalk does not list (model, data, schedule, length of the run); each was checked
# against verl 0.9.1's _generated_ppo_trainer.yaml and openrlhf 0.11.2's cli/train_ppo_ray.py
RUN_KEYS = {
    "verl": {
        "actor_rollout_ref.actor.optim.lr",
        "actor_rollout_ref.actor.optim.lr_warmup_steps",
        "actor_rollout_ref.actor.optim.lr_scheduler_type",
        "actor_rollout_ref.actor.grad_clip",
        "actor_rollout_ref.actor.ppo_mini_batch_size",
        "actor_rollout_ref.rollout.top_p",
        "actor_rollout_ref.rollout.calculate_log_probs",
        "algorithm.rollout_correction.rollout_is",
        "algorithm.filter_groups.enable",
        "algorithm.filter_groups.metric",
        "trainer.total_training_steps",
    },
    "openrlhf": {
        "--rollout.top_p",
        "--train.seed",
        "--train.batch_size",
        "--actor.adam.lr",
        "--actor.adam.weight_decay",
        "--actor.max_norm",
        "--algo.advantage.is_correction_level",
        "--algo.advantage.is_correction_mode",
    },
}
VARIED = [TrainConfig(preset=name) for name in PRESETS] + [
    TrainConfig(
        preset="dapo", sampler="dynamic", overrides={"kl_coef": 0.1, "tis_cap": 2.0, "policy_loss": "dual_clip"}
    ),
    TrainConfig(preset="grpo", lr_schedule="cosine", minibatches=4, overrides={"kl_estimator": "k3+"}),
]


def test_unknown_framework_names_the_known_ones():
    with pytest.raises(ValueError, match=r"'deepspeed'.*\['trl', 'verl', 'openrlhf'\]"):
        export_recipe(TrainConfig(), "deepspeed")


@pytest.mark.parametrize("framework", ["verl", "openrlhf"])
def test_every_key_is_a_crosswalk_name_or_a_checked_run_key(framework):
    column = " ".join(getattr(knob, framework) for knob in CROSSWALK)
    for config in VARIED:
        for key in export_recipe(config, framework).settings:
            name = key.split(".", 1)[1] if framework == "verl" and key.startswith("actor_rollout_ref.") else key
            assert name in column or key in RUN_KEYS[framework], (framework, key)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("preset", ["grpo", "dapo", "dr_grpo", "gspo", "cispo", "lite_ppo"])
def test_the_trl_script_builds_grpoconfig_with_the_recipe(tmp_path, preset):
    from trl import GRPOConfig

    config = TrainConfig(preset=preset, steps=7, minibatches=2, prompts_per_step=4, group_size=4)
    exported = export_recipe(config, "trl")
    assert exported.dropped == []
    script = tmp_path / "run_trl.py"
    script.write_text(render(exported))
    built = runpy.run_path(str(script), run_name="imported")["config"]  # builds the config, does not train
    algo = config.algorithm
    assert isinstance(built, GRPOConfig)
    assert built.num_generations == 4 and built.per_device_train_batch_size * built.steps_per_generation == 16
    assert built.max_steps == 7 * 2 * algo.update_epochs and built.num_iterations == algo.update_epochs
    assert built.beta == algo.kl_coef and built.epsilon == algo.clip_low
    assert built.scale_rewards == {"grpo": "group", "dr_grpo": "none", "group_mean_batch_std": "batch"}[algo.advantage]


def test_what_a_framework_cannot_express_is_listed_not_dropped_silently():
    ppo = export_recipe(TrainConfig(preset="ppo"), "trl")
    assert any("advantage='gae'" in line for line in ppo.dropped)
    assert any("KL k1 in the reward" in line for line in ppo.dropped)
    text = render(ppo)
    assert all(f"#   - {line}" in text for line in ppo.dropped)
    tree = export_recipe(TrainConfig(sampler="tree", group_size=8, sampling={"branching": (4, 2)}), "verl")
    assert any("sampler='tree'" in line for line in tree.dropped)
    for framework in FRAMEWORKS:  # the lab's sampling precision is the inference engine's option there
        lowered = export_recipe(TrainConfig(rollout_precision="bfloat16"), framework)
        assert any("rollout_precision='bfloat16'" in line for line in lowered.dropped)
    assert not any("rollout_precision" in line for line in export_recipe(TrainConfig(), "verl").dropped)
    graphed = export_recipe(TrainConfig(rollout_engine="graph"), "trl")
    assert any("rollout_engine='graph'" in line for line in graphed.dropped)


def test_verl_and_openrlhf_commands_carry_kl_and_dynamic_sampling():
    config = VARIED[-2]
    verl = export_recipe(config, "verl").settings
    assert verl["actor_rollout_ref.actor.use_kl_loss"] is True and verl["actor_rollout_ref.actor.kl_loss_coef"] == 0.1
    assert verl["algorithm.filter_groups.enable"] is True
    text = render(export_recipe(config, "openrlhf"))
    assert (
        "--algo.kl.use_loss \\" in text
        and "--actor.dual_clip 3.0" in text
        and "--algo.dynamic_filtering_enable" in text
    )
    assert "--algo.kl.use_loss False" not in text  # a false switch is left out, not passed a value


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_cli_writes_the_file_and_refuses_to_overwrite(tmp_path, capsys, framework):
    out = tmp_path / "recipe"
    main(["export", "--to", framework, "--preset", "dapo", "--out", str(out)])
    assert out.read_text() == render(export_recipe(TrainConfig(preset="dapo"), framework))
    with pytest.raises(SystemExit):
        main(["export", "--to", framework, "--out", str(out)])
    assert "exists; pass --force" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_the_trl_script_trains_a_step_of_the_same_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the script writes runs/trl under the working folder
    config = TrainConfig(steps=1, prompts_per_step=2, group_size=4, device="cpu")
    (tmp_path / "run_trl.py").write_text(render(export_recipe(config, "trl")))
    trained = runpy.run_path(str(tmp_path / "run_trl.py"), run_name="__main__")["trainer"]
    logs = trained.state.log_history[-1]
    assert trained.state.global_step == 1 and 0.0 <= logs["rewards/correct/mean"] <= 1.0
