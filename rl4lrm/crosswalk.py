"""What each rl4lrm knob is called in three production RL frameworks for LLMs.

A reader who has learned an axis here (advantage estimator, clip range, KL placement, ...) can look up
the name to set in the framework they will use at scale:

- TRL (https://github.com/huggingface/trl): Hugging Face's trainers, configured by the dataclasses
  ``GRPOConfig`` and ``RLOOConfig`` (TRL 1.16 has no PPO trainer).
- verl (https://github.com/volcengine/verl): ByteDance Seed's Ray + FSDP/Megatron framework, configured
  by Hydra keys such as ``algorithm.adv_estimator=grpo`` on the command line.
- OpenRLHF (https://github.com/OpenRLHF/OpenRLHF): a Ray + DeepSpeed + vLLM framework, configured by the
  dotted flags of ``python -m openrlhf.cli.train_ppo_ray`` (``--algo.advantage.estimator``, ...).

"—" means the framework has no such knob; the note says what it does instead. Names drift between
releases: check them against the version you install.
"""

# Checked row by row against the released wheels of trl 1.16.0 (trl/trainer/grpo_config.py, rloo_config.py,
# grpo_trainer.py, rloo_trainer.py), verl 0.9.1 (verl/trainer/ppo/core_algos.py, verl/utils/torch_functional.py,
# verl/trainer/config/_generated_ppo_trainer.yaml, actor/actor.yaml, algorithm.py,
# algorithm/rollout_correction.yaml, experimental/reward_loop/reward_manager/dapo.py) and openrlhf 0.11.2
# (openrlhf/cli/train_ppo_ray.py, models/utils.py, models/loss.py, trainer/ppo_utils/experience_maker.py,
# samples_generator.py), fetched with `pip download --no-deps`. tests/test_framework_parity.py checks rl4lrm's
# side of each convention against hand-computed values.

from __future__ import annotations

from dataclasses import astuple, dataclass

import pandas as pd

COLUMNS = ["concept", "rl4lrm", "TRL", "verl", "OpenRLHF", "note"]


@dataclass(frozen=True)
class Knob:
    """One concept and its name in each project (``"—"`` where a project has no such knob)."""

    concept: str
    rl4lrm: str
    trl: str
    verl: str
    openrlhf: str
    note: str = ""


CROSSWALK: tuple[Knob, ...] = (
    Knob(
        "samples per prompt G",
        "group_size",
        "num_generations",
        "actor_rollout_ref.rollout.n",
        "--rollout.n_samples_per_prompt",
        "TRL requires num_generations >= 2 for training",
    ),
    Knob(
        "prompts per step",
        "prompts_per_step",
        "generation_batch_size / num_generations",
        "data.train_batch_size",
        "--rollout.batch_size",
        "TRL's generation_batch_size counts completions, the others count prompts",
    ),
    Knob(
        "advantage estimator",
        "advantage",
        "trainer class: GRPOTrainer, RLOOTrainer",
        "algorithm.adv_estimator",
        "--algo.advantage.estimator",
        "verl: gae, grpo, rloo, reinforce_plus_plus, reinforce_plus_plus_baseline, remax, grpo_passk, gpg, opo, "
        "gdpo, optimal_token_baseline (and vectorized twins); OpenRLHF: gae, group_norm, rloo, reinforce "
        "(= REINFORCE++), reinforce_baseline, dr_grpo, flash_reinforce; none has passk; OpenRLHF's "
        "flash_reinforce is the batch-mean baseline of rl4lrm's reinforce",
    ),
    Knob(
        "GRPO without std normalisation (Dr.GRPO)",
        'advantage="dr_grpo"',
        'scale_rewards="none"',
        "algorithm.norm_adv_by_std_in_grpo=False",
        "--algo.advantage.estimator dr_grpo",
        'TRL also has scale_rewards="batch" (std over the whole batch); OpenRLHF\'s --algo.advantage.no_std_norm '
        "only affects the batch whitening of gae / reinforce / reinforce_baseline",
    ),
    Knob(
        "group mean, batch std (Lite PPO's normalisation)",
        'advantage="group_mean_batch_std"',
        'scale_rewards="batch"',
        "—",
        "—",
        "(r − group mean) / (sample std of the batch's raw rewards + ε), TRL with ε = 1e-4 (its docs cite Lite "
        "PPO); the nearest in verl and OpenRLHF is reinforce_plus_plus_baseline / reinforce_baseline, which "
        "subtract the group mean and then whiten over the batch's tokens (batch mean too, token-weighted); "
        'rl4lrm\'s advantage="batch_norm" uses the batch mean and std',
    ),
    Knob(
        "ε of the group std normalisation",
        "std_eps",
        "— (1e-4)",
        "— (1e-6)",
        "— (1e-9)",
        "(r − mean) / (std + ε) with the sample std (Bessel) in all four; only groups with a tiny nonzero std "
        "notice; rl4lrm's default 1e-6 is verl's",
    ),
    Knob(
        "group of one sample",
        "singleton",
        "—",
        "—",
        "—",
        'rl4lrm "zero" (default): a lone sample is its own baseline, advantage 0, rloo refuses; "reward": verl\'s '
        "convention, baseline 0 so the raw reward (GRPO: r / (1 + ε)); TRL refuses num_generations < 2 in "
        "training and gives 0 in evaluation; OpenRLHF: group_norm and rloo give NaN (std of one sample, 0 / 0), "
        "reinforce_baseline and dr_grpo give 0",
    ),
    Knob(
        "groups of different sizes",
        "reinforce_pp_baseline(..., group_ids=ids)",
        "—",
        "every estimator groups rows by uid",
        "—",
        "rl4lrm takes per-row prompt ids in reinforce_pp_baseline only (the trainer's groups are equal); "
        "TRL and OpenRLHF reshape to (prompts, G)",
    ),
    Knob(
        "REINFORCE++ (critic-free, batch-normalised returns)",
        'advantage="reinforce_pp"',
        "—",
        "algorithm.adv_estimator=reinforce_plus_plus",
        "--algo.advantage.estimator reinforce",
        "the _baseline variants differ: rl4lrm and OpenRLHF (reinforce_baseline) centre the outcome on the group "
        "mean, then add per-token KL rewards and take returns-to-go; verl centres each row's summed token rewards "
        "and gives that one number to every token (no returns-to-go)",
    ),
    Knob(
        "discount γ",
        "gamma",
        "—",
        "algorithm.gamma",
        "--algo.advantage.gamma",
        "rl4lrm and verl use it in gae and reinforce_pp; OpenRLHF in gae and reinforce (forced to 1 for the "
        "other estimators)",
    ),
    Knob(
        "GAE λ",
        "lam",
        "—",
        "algorithm.lam",
        "--algo.advantage.lambd",
        "TRL 1.16 has no PPO trainer (main-branch trl.experimental.ppo had gamma, lam, cliprange_value, "
        "kl_estimator k1/k3 and whitened GAE advantages)",
    ),
    Knob(
        "whiten advantages over the batch",
        "whiten_advantages",
        "RLOO: normalize_advantages",
        "— (gae: always)",
        "— (gae, reinforce, reinforce_baseline: always)",
        "verl and OpenRLHF whiten GAE advantages over the valid tokens of the batch; rl4lrm's ppo preset does not "
        "(the PPO and InstructGPT papers do not mention it): set whiten_advantages=True for their numbers; the "
        "critic's targets are the unwhitened λ-returns in all three",
    ),
    Knob(
        "std of the batch whitening",
        "whiten_std",
        "— (unbiased std + 1e-4)",
        "— (unbiased: rsqrt(var·n/(n−1) + 1e-8))",
        "— (biased: rsqrt(max(var, 1e-8)))",
        'rl4lrm "biased" (default: population std + 1e-8, REINFORCE++\'s own code in OpenRLHF) or "unbiased" '
        "(verl's masked_whiten); they differ by a factor √(n/(n−1)): 0.3% at n = 170 tokens",
    ),
    Knob(
        "loss aggregation",
        "aggregation",
        "loss_type",
        "actor_rollout_ref.actor.loss_agg_mode",
        "--actor.loss_agg_mode",
        'TRL "dapo"/"bnpo" = token_mean, "grpo" = seq_mean_token_mean, "dr_grpo" = seq_mean_token_sum_norm '
        "(N × max_completion_length); verl token-mean, token-sum, seq-mean-token-mean, seq-mean-token-sum, "
        "seq-mean-token-sum-norm (token sum / (N · T), T = actor.loss_scale_factor or the padded response "
        "width; rl4lrm's trainer uses max_new_tokens); verl's seq-mean modes count only non-empty rows, "
        "rl4lrm every row; OpenRLHF token-mean or seq-mean-token-mean",
    ),
    Knob(
        "policy loss",
        "policy_loss",
        'loss_type="cispo" (PPO clip otherwise)',
        "actor_rollout_ref.actor.policy_loss.loss_mode",
        "--actor.policy_loss_type",
        "verl vanilla = dual_clip (clip_ratio_c always applies), gspo, cispo (set clip_ratio_low=1 for "
        "rl4lrm's one-sided clip), gpg = vanilla_pg, and sapo, clip_cov, kl_cov, geo_mean, dppo_tv, dppo_kl, "
        "dro; OpenRLHF ppo, gspo",
    ),
    Knob(
        "lower clip ε_low",
        "clip_low",
        "epsilon",
        "actor_rollout_ref.actor.clip_ratio_low",
        "--actor.eps_clip_low_high LOW HIGH",
        "OpenRLHF --actor.eps_clip sets both",
    ),
    Knob(
        "upper clip ε_high (clip-higher)",
        "clip_high",
        "epsilon_high",
        "actor_rollout_ref.actor.clip_ratio_high",
        "--actor.eps_clip_low_high LOW HIGH",
        'with loss_type="cispo" TRL caps the weight at epsilon_high itself, rl4lrm at 1 + clip_high',
    ),
    Knob(
        "dual-clip constant c",
        "dual_clip_c",
        "delta",
        "actor_rollout_ref.actor.clip_ratio_c",
        "--actor.dual_clip",
        "TRL's delta (INTELLECT-2 two-sided clipping) caps the ratio of negative-advantage tokens the same way; "
        "verl applies c (default 3.0) in every vanilla loss, OpenRLHF only when the flag is set",
    ),
    Knob(
        "sequence-level importance ratio (GSPO)",
        'policy_loss="gspo"',
        'importance_sampling_level="sequence"',
        "actor_rollout_ref.actor.policy_loss.loss_mode=gspo",
        "--actor.policy_loss_type gspo",
    ),
    Knob(
        "KL coefficient β",
        "kl_coef",
        "beta",
        "actor_rollout_ref.actor.kl_loss_coef (loss) / algorithm.kl_ctrl.kl_coef (reward)",
        "--algo.kl.init_coef",
        "OpenRLHF uses --algo.kl.init_coef for both placements",
    ),
    Knob(
        "KL estimator",
        "kl_estimator",
        "—",
        "actor_rollout_ref.actor.kl_loss_type (loss) / algorithm.kl_penalty (reward)",
        "--algo.kl.estimator",
        "TRL GRPO is fixed to k3 in the loss, RLOO to k1 in the reward; verl kl = k1, abs, mse = k2, "
        "low_var_kl = k3 (aliases k1/k2/k3 accepted); OpenRLHF k1, k2, k3; rl4lrm's reward placement always "
        "uses k1 (InstructGPT), verl's uses algorithm.kl_penalty",
    ),
    Knob(
        "straight-through KL (estimator's value, k2's gradient)",
        'kl_estimator="k3+"',
        "—",
        "kl_loss_type=k3+ (also k1+, abs+, low_var_kl+)",
        "--algo.kl.unbiased_gradient",
        "OpenRLHF's flag does it for any estimator and multiplies k2's gradient by a clamped, detached π/π_old weight",
    ),
    Knob(
        "clamp of the KL estimate",
        "kl_clamp",
        "—",
        "— (low_var_kl / k3 clamped to [−10, 10])",
        "— (every estimator clamped to [−10, 10])",
        "rl4lrm: 0 = off (default), kl_clamp=10 with k3 gives verl's numbers; a clamped token gets no KL "
        "gradient, except through k2's in the + variants",
    ),
    Knob(
        "KL placement",
        "kl_placement",
        "—",
        "actor_rollout_ref.actor.use_kl_loss / algorithm.use_kl_in_reward",
        "--algo.kl.use_loss (else reward)",
        "TRL fixes it per trainer: GRPO loss, RLOO reward",
    ),
    Knob(
        "entropy bonus",
        "entropy_coef",
        "entropy_coef",
        "actor_rollout_ref.actor.entropy_coeff",
        "--actor.entropy_coef",
        "TRL GRPO also has top_entropy_quantile, which masks low-entropy tokens, and use_adaptive_entropy",
    ),
    Knob(
        "update epochs per batch μ",
        "update_epochs",
        "num_iterations",
        "actor_rollout_ref.actor.ppo_epochs",
        "--train.max_epochs",
    ),
    Knob(
        "minibatches per epoch",
        "minibatches",
        "steps_per_generation / gradient_accumulation_steps",
        "data.train_batch_size / actor_rollout_ref.actor.ppo_mini_batch_size",
        "--rollout.batch_size × --rollout.n_samples_per_prompt / --train.batch_size",
        "derived, not set: verl's mini-batch counts prompts, OpenRLHF's --train.batch_size counts samples",
    ),
    Knob("value clipping", "value_clip", "—", "critic.cliprange_value", "--critic.value_clip"),
    Knob("critic learning rate", "critic_lr", "—", "critic.optim.lr", "--critic.adam.lr"),
    Knob(
        "truncated IS cap (rollout/training mismatch)",
        "tis_cap",
        "vllm_importance_sampling_cap",
        "algorithm.rollout_correction.rollout_is_threshold",
        "--algo.advantage.is_correction_threshold LOW HIGH",
        'TRL needs use_vllm and vllm_importance_sampling_mode="token_truncate"; verl rollout_is=token and '
        "actor_rollout_ref.rollout.calculate_log_probs=True; OpenRLHF --algo.advantage.is_correction_level token "
        "--algo.advantage.is_correction_mode clip",
    ),
    Knob(
        "replayed stale batches",
        "replay",
        "—",
        "—",
        "—",
        "no replay of older rollout batches; the nearest is asynchronous training (OpenRLHF "
        "--train.async_enable), whose rollouts come from a slightly older policy",
    ),
    Knob(
        "sampling temperature",
        "temperature",
        "temperature",
        "actor_rollout_ref.rollout.temperature",
        "--rollout.temperature",
    ),
    Knob(
        "max completion length",
        "max_new_tokens",
        "max_completion_length",
        "data.max_response_length",
        "--rollout.max_new_tokens",
    ),
    Knob(
        "overlong filtering (truncated completions out of the loss)",
        "overlong_filter",
        "mask_truncated_completions",
        "—",
        "—",
        "DAPO's filter: a completion the length cap cut before its EOS gets no loss; verl's DAPO recipe and "
        "OpenRLHF shape the reward of long answers instead (overlong buffer; OpenRLHF also "
        "--reward.stop_properly_penalty_coef for truncated ones); verl's data.filter_overlong_prompts drops "
        "long prompts, not completions",
    ),
    Knob(
        "length penalty (reward)",
        "rewards={'length_penalty': w}",
        "—",
        "—",
        "—",
        "no linear length penalty; the nearest is DAPO's overlong shaping: verl's DAPO reward manager "
        "reward.reward_kwargs.overlong_buffer_cfg.{enable,len,penalty_factor}, OpenRLHF "
        "--reward.overlong_buffer_len, --reward.overlong_penalty_factor",
    ),
    Knob(
        "pass@k training k",
        "pass_k",
        "—",
        "—",
        "—",
        "verl adv_estimator=grpo_passk is another estimator without k: only each group's best sample gets "
        "r_max − r_second (arXiv:2503.19595)",
    ),
    Knob(
        "dynamic sampling (drop groups without signal, refill)",
        "sampler='dynamic'",
        "—",
        "algorithm.filter_groups.enable=True, algorithm.filter_groups.metric=acc",
        "--algo.dynamic_filtering_enable",
        "TRL logs frac_reward_zero_std but trains on every group; in verl the DAPO recipe and the v1 trainer "
        "read filter_groups",
    ),
    Knob(
        "pass-rate band of kept groups",
        "sampling.filter='pass_band', band_low, band_high",
        "—",
        "—",
        "--algo.dynamic_filtering_range LOW HIGH",
        "OpenRLHF keeps a group when LOW < mean reward < HIGH (exclusive); rl4lrm's band is inclusive",
    ),
    Knob(
        "refill rounds before giving up", "sampling.max_rounds", "—", "algorithm.filter_groups.max_num_gen_batches", "—"
    ),
    Knob(
        "tree rollouts (shared prefixes)",
        "sampler='tree', sampling.branching, sampling.segment_len",
        "—",
        "—",
        "—",
        "none of the three grows sampling trees",
    ),
)

TRL_NAMES: dict[str, str] = {
    "learning_rate": "lr",  # a field of the transformers TrainingArguments that TRL's configs extend
    **{k.trl: k.rl4lrm for k in CROSSWALK if k.trl.isidentifier() and k.rl4lrm.isidentifier() and k.trl != k.rl4lrm},
}
"""TRL's keyword -> rl4lrm's field, for the knobs both projects set by a plain keyword (``beta`` -> ``kl_coef``):
what ``TrainConfig`` and the command line answer when a TRL name is passed to them."""


def crosswalk_frame() -> pd.DataFrame:
    """The crosswalk as a DataFrame, one row per knob.

    Returns:
        DataFrame with columns ``COLUMNS``; an empty note is ``""``.
    """
    return pd.DataFrame([astuple(knob) for knob in CROSSWALK], columns=COLUMNS)


def crosswalk_markdown() -> str:
    """The crosswalk as a GitHub-flavoured markdown table.

    Returns:
        Header line, separator line and one line per knob, joined by newlines; ``|`` inside a cell is
        escaped as ``\\|``.
    """

    def line(cells) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    rows = [line(COLUMNS), line(["---"] * len(COLUMNS))]
    rows += [line(astuple(knob)) for knob in CROSSWALK]
    return "\n".join(rows)


DOC_HEADER = """# Crosswalk: rl4lrm knobs in TRL, verl and OpenRLHF

Generated by `python -m rl4lrm.crosswalk > docs/crosswalk.md` from `rl4lrm/crosswalk.py` (a test keeps the two
in sync). "—" means the framework has no such knob; names drift between releases, so check them against the
version you install.

"""

if __name__ == "__main__":
    print(DOC_HEADER + crosswalk_markdown())
