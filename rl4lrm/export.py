"""A recipe exported to a production framework: the same run as a TRL script, a verl or an OpenRLHF command.

A run that outgrows the lab goes on in TRL (``GRPOTrainer``), verl (``python -m verl.trainer.main_ppo``, Hydra
keys) or OpenRLHF (``python -m openrlhf.cli.train_ppo_ray``, dotted flags). ``export_recipe`` translates a
``TrainConfig`` into the framework's own names, with the crosswalk's conventions (``rl4lrm.crosswalk``), and lists
every setting it cannot carry over instead of dropping it silently. ``render`` writes the result as a file:

- **TRL**: a Python script that trains the same zoo model on the same task with our reward as a TRL reward
  function (``rl4lrm.rewards.trl``); ``python run_trl.py`` runs it, ``import`` only builds ``config``.
- **verl** and **OpenRLHF**: a shell script with every mapped key; the model path, the data files in the
  framework's format and the reward function are variables at its top (those frameworks read parquet/JSONL files
  and a reward module of their own, which the lab does not write).

Key names were checked against the released wheels of trl 1.16.0 (``GRPOConfig``), verl 0.9.1
(``verl/trainer/config/_generated_ppo_trainer.yaml``) and openrlhf 0.11.2 (``openrlhf/cli/train_ppo_ray.py``);
``tests/test_export.py`` builds TRL's ``GRPOConfig`` from the export and checks the others against the crosswalk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rl4lrm.trainer import TrainConfig

FRAMEWORKS = ("trl", "verl", "openrlhf")

# TRL: which advantages GRPOTrainer computes (scale_rewards) and which aggregations its loss_type gives
_TRL_SCALE = {"grpo": "group", "dr_grpo": "none", "group_mean_batch_std": "batch"}
_TRL_LOSS_TYPE = {"token_mean": "dapo", "seq_mean_token_mean": "grpo", "seq_mean_token_sum_norm": "dr_grpo"}
_VERL_ADVANTAGE = {
    "grpo": "grpo",
    "dr_grpo": "grpo",
    "rloo": "rloo",
    "reinforce_pp": "reinforce_plus_plus",
    "reinforce_pp_baseline": "reinforce_plus_plus_baseline",
    "remax": "remax",
    "gae": "gae",
}
_VERL_LOSS_MODE = {"ppo_clip": "vanilla", "dual_clip": "vanilla", "gspo": "gspo", "cispo": "cispo", "vanilla_pg": "gpg"}
_OPENRLHF_ADVANTAGE = {
    "grpo": "group_norm",
    "dr_grpo": "dr_grpo",
    "rloo": "rloo",
    "reinforce_pp": "reinforce",
    "reinforce_pp_baseline": "reinforce_baseline",
    "gae": "gae",
}
_OPENRLHF_AGGREGATION = ("token_mean", "seq_mean_token_mean")


@dataclass
class Exported:
    """A recipe in a framework's own names: ``settings`` maps each key (a ``GRPOConfig`` field, a verl Hydra key,
    an OpenRLHF flag) to its value; ``dropped`` says, one line each, what the framework cannot express."""

    framework: str
    config: TrainConfig
    settings: dict = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _common_drops(config: TrainConfig, out: Exported, *, entropy: bool, overlong: bool) -> None:
    """The settings no framework here carries over, and the ones only some do."""
    algo = config.algorithm
    if algo.replay:
        out.dropped.append(f"replay={algo.replay}: no replay of older rollout batches")
    if algo.kl_clamp:
        out.dropped.append(f"kl_clamp={algo.kl_clamp}: the framework's own clamp applies (crosswalk)")
    if algo.whiten_advantages and algo.advantage != "gae":
        out.dropped.append("whiten_advantages=True: not an option for this estimator")
    if algo.entropy_coef and not entropy:
        out.dropped.append(f"entropy_coef={algo.entropy_coef}: no entropy bonus")
    if algo.overlong_filter and not overlong:
        out.dropped.append("overlong_filter=True: no overlong filter (shape the reward of long answers instead)")
    if config.sampler not in ("flat", "dynamic"):
        out.dropped.append(f"sampler={config.sampler!r}: trains on flat groups")
    if config.rollout_engine != "auto":
        out.dropped.append(
            f"rollout_engine={config.rollout_engine!r}: rollouts run on the framework's inference engine "
            "(vLLM captures CUDA graphs unless enforce_eager=True)"
        )
    if config.rollout_precision != "auto":
        out.dropped.append(
            f"rollout_precision={config.rollout_precision!r}: the inference engine samples in its own dtype "
            "(set it in the engine's options)"
        )


def _trl(config: TrainConfig, out: Exported) -> None:
    algo, n = config.algorithm, config.prompts_per_step * config.group_size
    s = out.settings
    s.update(
        num_generations=config.group_size,
        per_device_train_batch_size=n // config.minibatches,
        steps_per_generation=config.minibatches,
        num_iterations=algo.update_epochs,
        # a TRL step is an optimizer step: minibatches x epochs of them per batch of rollouts
        max_steps=config.steps * config.minibatches * algo.update_epochs,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_schedule,
        warmup_steps=config.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=config.max_grad_norm,
        temperature=config.temperature,
        top_p=config.top_p,
        max_completion_length=config.max_new_tokens,
        epsilon=algo.clip_low,
        epsilon_high=algo.clip_high,
        entropy_coef=algo.entropy_coef,
        mask_truncated_completions=algo.overlong_filter,
        seed=config.seed,
    )
    if n % config.minibatches:
        out.dropped.append(f"minibatches={config.minibatches}: TRL needs equal minibatches of the {n} rows")
    if algo.advantage in _TRL_SCALE:
        s["scale_rewards"] = _TRL_SCALE[algo.advantage]
    else:
        out.dropped.append(f"advantage={algo.advantage!r}: GRPOTrainer has group baselines only (rloo: RLOOTrainer)")
    if algo.policy_loss == "cispo":
        s["loss_type"], s["epsilon_high"] = "cispo", 1 + algo.clip_high  # TRL caps the weight at epsilon_high
    elif algo.aggregation in _TRL_LOSS_TYPE:
        s["loss_type"] = _TRL_LOSS_TYPE[algo.aggregation]
    else:
        out.dropped.append(f"aggregation={algo.aggregation!r}: loss_type has token_mean, seq_mean_token_mean, ...")
    if algo.policy_loss == "gspo":
        s["importance_sampling_level"] = "sequence"
    elif algo.policy_loss == "dual_clip":
        s["delta"] = algo.dual_clip_c
    elif algo.policy_loss == "vanilla_pg" and algo.update_epochs * config.minibatches > 1:
        out.dropped.append("policy_loss='vanilla_pg': TRL clips the ratio (the same only fully on-policy)")
    if algo.kl_coef and (algo.kl_placement, algo.kl_estimator) != ("loss", "k3"):
        out.dropped.append(f"KL {algo.kl_estimator} in the {algo.kl_placement}: GRPOTrainer's KL is k3 in the loss")
        s["beta"] = 0.0  # no KL rather than a different one
    else:
        s["beta"] = algo.kl_coef
    if algo.tis_cap:
        out.dropped.append(f"tis_cap={algo.tis_cap}: TRL's vllm_importance_sampling_cap needs use_vllm=True")
    if config.sampler == "dynamic":
        out.dropped.append("sampler='dynamic': GRPOTrainer trains on every group")
    _common_drops(config, out, entropy=True, overlong=True)


def _verl(config: TrainConfig, out: Exported) -> None:
    algo, s = config.algorithm, out.settings
    actor, rollout = "actor_rollout_ref.actor", "actor_rollout_ref.rollout"
    if algo.advantage not in _VERL_ADVANTAGE:
        out.dropped.append(f"advantage={algo.advantage!r}: no verl estimator of that name (crosswalk)")
    s.update(
        {
            "algorithm.adv_estimator": _VERL_ADVANTAGE.get(algo.advantage, "grpo"),
            "algorithm.norm_adv_by_std_in_grpo": algo.advantage != "dr_grpo",
            "algorithm.gamma": algo.gamma,
            "algorithm.lam": algo.lam,
            "data.train_batch_size": config.prompts_per_step,
            "data.max_response_length": config.max_new_tokens,
            f"{rollout}.n": config.group_size,
            f"{rollout}.temperature": config.temperature,
            f"{rollout}.top_p": config.top_p,
            f"{actor}.ppo_mini_batch_size": config.prompts_per_step // config.minibatches,
            f"{actor}.ppo_epochs": algo.update_epochs,
            f"{actor}.optim.lr": config.lr,
            f"{actor}.optim.lr_warmup_steps": config.warmup_steps,
            f"{actor}.grad_clip": config.max_grad_norm,
            f"{actor}.clip_ratio_low": algo.clip_low,
            f"{actor}.clip_ratio_high": algo.clip_high,
            f"{actor}.clip_ratio_c": algo.dual_clip_c,
            f"{actor}.policy_loss.loss_mode": _VERL_LOSS_MODE[algo.policy_loss],
            f"{actor}.loss_agg_mode": _dashed(algo.aggregation),
            f"{actor}.entropy_coeff": algo.entropy_coef,
            f"{actor}.use_kl_loss": bool(algo.kl_coef) and algo.kl_placement == "loss",
            "algorithm.use_kl_in_reward": bool(algo.kl_coef) and algo.kl_placement == "reward",
            "trainer.total_training_steps": config.steps,
        }
    )
    if config.prompts_per_step % config.minibatches:
        out.dropped.append(f"minibatches={config.minibatches}: verl's mini-batches are whole prompts")
    if config.lr_schedule == "cosine":
        s[f"{actor}.optim.lr_scheduler_type"] = "cosine"
    elif config.lr_schedule != "constant":
        out.dropped.append(f"lr_schedule={config.lr_schedule!r}: verl has constant and cosine")
    if algo.kl_coef and algo.kl_placement == "loss":
        s[f"{actor}.kl_loss_coef"], s[f"{actor}.kl_loss_type"] = algo.kl_coef, algo.kl_estimator
    elif algo.kl_coef:  # rl4lrm's reward placement uses k1, verl's "kl"
        s["algorithm.kl_ctrl.kl_coef"], s["algorithm.kl_penalty"] = algo.kl_coef, "kl"
    if algo.advantage == "gae":
        s["critic.optim.lr"], s["critic.cliprange_value"] = algo.critic_lr, algo.value_clip
    if config.sampler == "dynamic":
        s["algorithm.filter_groups.enable"], s["algorithm.filter_groups.metric"] = True, "acc"
        s["algorithm.filter_groups.max_num_gen_batches"] = config.sampling.max_rounds
    if algo.tis_cap:
        s["algorithm.rollout_correction.rollout_is"] = "token"
        s["algorithm.rollout_correction.rollout_is_threshold"] = algo.tis_cap
        s[f"{rollout}.calculate_log_probs"] = True
    _common_drops(config, out, entropy=True, overlong=False)


def _openrlhf(config: TrainConfig, out: Exported) -> None:
    algo, s = config.algorithm, out.settings
    if algo.advantage not in _OPENRLHF_ADVANTAGE:
        out.dropped.append(f"advantage={algo.advantage!r}: no OpenRLHF estimator of that name (crosswalk)")
    if algo.aggregation not in _OPENRLHF_AGGREGATION:
        out.dropped.append(f"aggregation={algo.aggregation!r}: OpenRLHF has token-mean and seq-mean-token-mean")
    if algo.policy_loss not in ("ppo_clip", "dual_clip", "gspo"):
        out.dropped.append(f"policy_loss={algo.policy_loss!r}: OpenRLHF has ppo and gspo")
    n = config.prompts_per_step * config.group_size
    s.update(
        {
            "--algo.advantage.estimator": _OPENRLHF_ADVANTAGE.get(algo.advantage, "group_norm"),
            "--algo.advantage.gamma": algo.gamma,
            "--algo.advantage.lambd": algo.lam,
            "--rollout.batch_size": config.prompts_per_step,
            "--rollout.n_samples_per_prompt": config.group_size,
            "--rollout.temperature": config.temperature,
            "--rollout.top_p": config.top_p,
            "--rollout.max_new_tokens": config.max_new_tokens,
            "--train.batch_size": n // config.minibatches,
            "--train.max_epochs": algo.update_epochs,
            "--train.seed": config.seed,
            "--actor.adam.lr": config.lr,
            "--actor.adam.weight_decay": 0.0,
            "--actor.max_norm": config.max_grad_norm,
            "--actor.eps_clip_low_high": (algo.clip_low, algo.clip_high),
            "--actor.policy_loss_type": "gspo" if algo.policy_loss == "gspo" else "ppo",
            "--actor.loss_agg_mode": _dashed(algo.aggregation)
            if algo.aggregation in _OPENRLHF_AGGREGATION
            else "token-mean",
            "--actor.entropy_coef": algo.entropy_coef,
            "--algo.kl.init_coef": algo.kl_coef,
            "--algo.kl.estimator": algo.kl_estimator.rstrip("+"),
        }
    )
    if algo.kl_estimator not in ("k1", "k2", "k3", "k1+", "k3+"):
        out.dropped.append(f"kl_estimator={algo.kl_estimator!r}: OpenRLHF has k1, k2, k3")
    if algo.kl_estimator.endswith("+"):
        s["--algo.kl.unbiased_gradient"] = True
    if algo.kl_coef and algo.kl_placement == "loss":
        s["--algo.kl.use_loss"] = True
    if algo.policy_loss == "dual_clip":
        s["--actor.dual_clip"] = algo.dual_clip_c
    if algo.advantage == "gae":
        s["--critic.adam.lr"], s["--critic.value_clip"] = algo.critic_lr, algo.value_clip
    if config.sampler == "dynamic":
        s["--algo.dynamic_filtering_enable"] = True
    if algo.tis_cap:
        s["--algo.advantage.is_correction_level"], s["--algo.advantage.is_correction_mode"] = "token", "clip"
        s["--algo.advantage.is_correction_threshold"] = (0.0, algo.tis_cap)
    if config.lr_schedule != "constant" or config.warmup_steps:
        out.dropped.append(
            f"lr_schedule={config.lr_schedule!r}, warmup_steps={config.warmup_steps}: OpenRLHF schedules by "
            "--actor.lr_scheduler and --actor.lr_warmup_ratio"
        )
    _common_drops(config, out, entropy=True, overlong=False)


_MAPPERS = {"trl": _trl, "verl": _verl, "openrlhf": _openrlhf}


def export_recipe(config: TrainConfig, framework: str) -> Exported:
    """``config`` in ``framework``'s names (one of ``FRAMEWORKS``), with what it cannot express.

    Raises:
        ValueError: for an unknown framework, naming the known ones.
    """
    if framework not in _MAPPERS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {list(FRAMEWORKS)}")
    out = Exported(framework, config)
    _MAPPERS[framework](config, out)
    return out


def _header(exported: Exported, comment: str) -> list[str]:
    config = exported.config
    lines = [
        f"{comment} {exported.framework} recipe exported by rl4lrm (rl4lrm export --to {exported.framework}) from",
        f"{comment} TrainConfig(task={config.task!r}, preset={config.preset!r}, overrides={config.overrides!r}, "
        f"sampler={config.sampler!r}, rewards={config.rewards!r}).",
    ]
    if exported.dropped:
        lines.append(f"{comment} Not carried over (the run here differs from rl4lrm's on these):")
        lines += [f"{comment}   - {line}" for line in exported.dropped]
    else:
        lines.append(f"{comment} Every setting was carried over.")
    return lines


def _trl_script(exported: Exported) -> str:
    config = exported.config
    settings = "".join(f"    {key}={value!r},\n" for key, value in exported.settings.items())
    rewards = config.rewards if config.rewards is not None else {"correct": 1.0}
    device = {"auto": "not torch.cuda.is_available()", "cpu": "True", "cuda": "False"}[config.device]
    return "\n".join(
        [
            *_header(exported, "#"),
            "# python run_trl.py trains; importing this file only builds `config`.",
            "import torch",
            "from trl import GRPOConfig, GRPOTrainer",
            "",
            "from rl4lrm.models.zoo import load_base",
            "from rl4lrm.rewards.base import RewardContext, RewardMix",
            "from rl4lrm.rewards.trl import as_trl_reward, to_trl_dataset",
            "",
            "config = GRPOConfig(",
            '    output_dir="runs/trl",',
            "    report_to=[],",
            '    save_strategy="no",',
            f"    use_cpu={device},",
            settings.rstrip("\n"),
            ")",
            "",
            'if __name__ == "__main__":',
            f"    model, tokenizer, task = load_base({config.task!r})",
            f'    dataset = to_trl_dataset(task, task.problems("train", {config.steps * config.prompts_per_step}, '
            f"seed={config.seed}), style={config.prompt_style!r})",
            f"    ctx = RewardContext(max_new_tokens={config.max_new_tokens}, group_size={config.group_size}, "
            "tokenizer=tokenizer)",
            f"    reward = as_trl_reward(RewardMix({rewards!r}), task, ctx=ctx)",
            "    trainer = GRPOTrainer(",
            "        model=model, processing_class=tokenizer, reward_funcs=[reward], args=config,",
            "        train_dataset=dataset,",
            "    )",
            "    trainer.train()",
            "",
        ]
    )


def _shell_value(value) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def _command_script(exported: Exported) -> str:
    if exported.framework == "verl":
        command = "python3 -m verl.trainer.main_ppo"
        run = [
            "actor_rollout_ref.model.path=$MODEL",
            "data.train_files=$TRAIN_DATA",
            "data.val_files=$VAL_DATA",
            "custom_reward_function.path=$REWARD_FILE",
        ]
        args = run + [f"{key}={_shell_value(value)}" for key, value in exported.settings.items()]
        data = "parquet files with verl's columns (prompt, reward_model.ground_truth, data_source)"
    else:
        command = "python3 -m openrlhf.cli.train_ppo_ray"
        run = [
            "--actor.model_name_or_path $MODEL",
            "--data.prompt_dataset $TRAIN_DATA",
            "--data.input_key prompt --data.label_key answer",
            "--reward.remote_url $REWARD_FILE",
        ]
        flags = []
        for key, value in exported.settings.items():
            if value is True:
                flags.append(key)
            elif value is not False:
                flags.append(f"{key} {_shell_value(value)}")
        args = run + flags
        data = "a JSONL file with prompt and answer fields"
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            *_header(exported, "#"),
            "# You bring: MODEL (an HF model path), the data (TRAIN_DATA, VAL_DATA:",
            f"# {data}) and REWARD_FILE, a Python file with the framework's reward function.",
            "set -euo pipefail",
            'MODEL="${MODEL:?set MODEL to an HF model path}"',
            'TRAIN_DATA="${TRAIN_DATA:?set TRAIN_DATA}"',
            'VAL_DATA="${VAL_DATA:-$TRAIN_DATA}"',
            'REWARD_FILE="${REWARD_FILE:?set REWARD_FILE to the reward function file}"',
            f"{command} \\",
            *[f"  {arg} \\" for arg in args[:-1]],
            f"  {args[-1]}",
            "",
        ]
    )


def render(exported: Exported) -> str:
    """The exported recipe as a file's text: a Python script for TRL, a shell script for verl and OpenRLHF."""
    return _trl_script(exported) if exported.framework == "trl" else _command_script(exported)
