"""What each rl4lrm knob is called in three production RL frameworks for LLMs.

A reader who has learned an axis here (advantage estimator, clip range, KL placement, ...) can look up
the name to set in the framework they will use at scale:

- TRL (https://github.com/huggingface/trl): Hugging Face's trainers, configured by the dataclasses
  ``GRPOConfig``, ``RLOOConfig`` and ``PPOConfig`` (the last now lives in ``trl.experimental.ppo``).
- verl (https://github.com/volcengine/verl): ByteDance Seed's Ray + FSDP/Megatron framework, configured
  by Hydra keys such as ``algorithm.adv_estimator=grpo`` on the command line.
- OpenRLHF (https://github.com/OpenRLHF/OpenRLHF): a Ray + DeepSpeed + vLLM framework, configured by the
  flags of ``python -m openrlhf.cli.train_ppo_ray``.

"—" means the framework has no such knob; the note says what it does instead. Names drift between
releases: check them against the version you install.
"""

# Checked in November 2026 against copies of recent main-branch files: trl (2026) trl/trainer/grpo_config.py,
# rloo_config.py, the GRPO and RLOO losses in grpo_trainer.py and rloo_trainer.py, trl/experimental/ppo/ppo_config.py;
# verl verl/trainer/config/ppo_trainer.yaml, _generated_ppo_trainer.yaml, actor/actor.yaml,
# algorithm/rollout_correction.yaml, verl/trainer/ppo/core_algos.py, docs/algo/{grpo,dapo,rollout_corr}.md;
# OpenRLHF openrlhf/cli/train_ppo_ray.py and openrlhf/trainer/ray/ppo_actor.py; the dynamic-sampling rows against
# verl's recipe/dapo trainer and OpenRLHF's experience maker (dynamic_filtering_reward_range).

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
    Knob("samples per prompt G", "group_size", "num_generations", "actor_rollout_ref.rollout.n",
         "--n_samples_per_prompt"),
    Knob("prompts per step", "prompts_per_step", "generation_batch_size / num_generations", "data.train_batch_size",
         "--rollout_batch_size", "TRL's generation_batch_size counts completions, the others count prompts"),
    Knob("advantage estimator", "advantage", "trainer class: GRPOTrainer, RLOOTrainer, PPOTrainer (GAE)",
         "algorithm.adv_estimator", "--advantage_estimator",
         "verl: grpo, rloo, reinforce_plus_plus, reinforce_plus_plus_baseline, remax, gae; OpenRLHF: group_norm, "
         "rloo, reinforce (= REINFORCE++), reinforce_baseline, dr_grpo, gae; none has passk or a batch-mean baseline"),
    Knob("GRPO without std normalisation (Dr.GRPO)", 'advantage="dr_grpo"', "scale_rewards=False",
         "algorithm.norm_adv_by_std_in_grpo=False", "--advantage_estimator dr_grpo",
         "OpenRLHF also has --no_advantage_std_norm"),
    Knob("loss aggregation", "aggregation", "loss_type", "actor_rollout_ref.actor.loss_agg_mode", "—",
         'TRL "dapo"/"bnpo" = token_mean, "grpo" = seq_mean_token_mean, "dr_grpo" = seq_mean_token_sum_norm; '
         "verl token-mean, seq-mean-token-mean, seq-mean-token-sum-norm (its constant omits the 1/N in the "
         "version checked); OpenRLHF fixed to token mean (sequence mean for gspo)"),
    Knob("policy loss", "policy_loss", 'loss_type="cispo" (PPO clip otherwise)',
         "actor_rollout_ref.actor.policy_loss.loss_mode", "--policy_loss_type",
         "verl vanilla = dual_clip (clip_ratio_c always applies), gspo, gpg = vanilla_pg; OpenRLHF ppo, gspo; "
         "cispo not found in the verl and OpenRLHF files checked"),
    Knob("lower clip ε_low", "clip_low", "epsilon (PPO: cliprange)", "actor_rollout_ref.actor.clip_ratio_low",
         "--eps_clip_low_high LOW HIGH", "OpenRLHF --eps_clip sets both; TRL PPO clips symmetrically"),
    Knob("upper clip ε_high (clip-higher)", "clip_high", "epsilon_high", "actor_rollout_ref.actor.clip_ratio_high",
         "--eps_clip_low_high LOW HIGH",
         'with loss_type="cispo" TRL caps the weight at epsilon_high itself, rl4lrm at 1 + clip_high'),
    Knob("dual-clip constant c", "dual_clip_c", "delta", "actor_rollout_ref.actor.clip_ratio_c", "--dual_clip",
         "TRL's delta (INTELLECT-2 two-sided clipping) caps the ratio of negative-advantage tokens the same way; "
         "verl applies c (default 3.0) in every vanilla loss, OpenRLHF only when the flag is set"),
    Knob("sequence-level importance ratio (GSPO)", 'policy_loss="gspo"', 'importance_sampling_level="sequence"',
         "actor_rollout_ref.actor.policy_loss.loss_mode=gspo", "--policy_loss_type gspo"),
    Knob("KL coefficient β", "kl_coef", "beta (PPO: kl_coef)",
         "actor_rollout_ref.actor.kl_loss_coef (loss) / algorithm.kl_ctrl.kl_coef (reward)", "--init_kl_coef",
         "OpenRLHF uses --init_kl_coef for both placements"),
    Knob("KL estimator", "kl_estimator", "PPO: kl_estimator (k1/k3)",
         "actor_rollout_ref.actor.kl_loss_type (loss) / algorithm.kl_penalty (reward)", "--kl_estimator",
         "TRL GRPO is fixed to k3, RLOO to k1; verl kl = k1, mse = k2, low_var_kl = k3 clamped to [-10, 10] "
         "(aliases k1/k2/k3 accepted)"),
    Knob("KL placement", "kl_placement", "—", "actor_rollout_ref.actor.use_kl_loss / algorithm.use_kl_in_reward",
         "--use_kl_loss (else reward)", "TRL fixes it per trainer: GRPO loss, RLOO and PPO reward"),
    Knob("entropy bonus", "entropy_coef", "—", "actor_rollout_ref.actor.entropy_coeff", "--entropy_loss_coef",
         "TRL GRPO has top_entropy_quantile, which masks low-entropy tokens instead"),
    Knob("update epochs per batch μ", "update_epochs", "num_iterations (PPO: num_ppo_epochs)",
         "actor_rollout_ref.actor.ppo_epochs", "--max_epochs"),
    Knob("minibatches per epoch", "minibatches", "steps_per_generation / gradient_accumulation_steps "
         "(PPO: num_mini_batches)", "data.train_batch_size / actor_rollout_ref.actor.ppo_mini_batch_size",
         "--rollout_batch_size × --n_samples_per_prompt / --train_batch_size",
         "derived, not set: verl's mini-batch counts prompts, OpenRLHF's --train_batch_size counts samples"),
    Knob("GAE discount γ", "gamma", "PPO: gamma", "algorithm.gamma", "--gamma"),
    Knob("GAE λ", "lam", "PPO: lam", "algorithm.lam", "--lambd"),
    Knob("value clipping", "value_clip", "PPO: cliprange_value", "critic.cliprange_value", "--value_clip"),
    Knob("critic learning rate", "critic_lr", "—", "critic.optim.lr", "--critic_learning_rate",
         "TRL PPO trains policy and value head with one optimizer (learning_rate)"),
    Knob("truncated IS cap (rollout/training mismatch)", "tis_cap", "vllm_importance_sampling_cap",
         "algorithm.rollout_correction.rollout_is_threshold", "--vllm_is_truncated_threshold",
         'TRL needs use_vllm and vllm_importance_sampling_mode="token_truncate"; verl rollout_is=token and '
         "actor_rollout_ref.rollout.calculate_log_probs=True; OpenRLHF --enable_vllm_is_correction"),
    Knob("replayed stale batches", "replay", "—", "—", "—",
         "no replay of older rollout batches; the nearest is asynchronous training (OpenRLHF --async_train), "
         "whose rollouts come from a slightly older policy"),
    Knob("sampling temperature", "temperature", "temperature", "actor_rollout_ref.rollout.temperature",
         "--temperature"),
    Knob("max completion length", "max_new_tokens", "max_completion_length (PPO: response_length)",
         "data.max_response_length", "--generate_max_len"),
    Knob("length penalty (reward)", "rewards={'length_penalty': w}", "—", "—", "—",
         "no linear length penalty; the nearest is DAPO's overlong shaping: verl DAPO recipe "
         "reward_model.overlong_buffer.{enable,len,penalty_factor}, OpenRLHF --overlong_buffer_len, "
         "--overlong_penalty_factor"),
    Knob("pass@k training k", "pass_k", "—", "—", "—",
         "verl adv_estimator=grpo_passk is another estimator without k: only each group's best sample gets "
         "r_max − r_second (arXiv:2503.19595)"),
    Knob("dynamic sampling (drop groups without signal, refill)", "sampler='dynamic'", "—",
         "algorithm.filter_groups.enable=True, algorithm.filter_groups.metric=acc", "--dynamic_filtering",
         "TRL logs frac_reward_zero_std but trains on every group; verl's is the DAPO recipe's trainer"),
    Knob("pass-rate band of kept groups", "sampling.filter='pass_band', band_low, band_high", "—", "—",
         "--dynamic_filtering_reward_range LOW HIGH",
         "OpenRLHF keeps a group when LOW < mean reward < HIGH (exclusive); rl4lrm's band is inclusive"),
    Knob("refill rounds before giving up", "sampling.max_rounds", "—",
         "algorithm.filter_groups.max_num_gen_batches", "—"),
    Knob("tree rollouts (shared prefixes)", "sampler='tree', sampling.branching, sampling.segment_len", "—", "—", "—",
         "none of the three grows sampling trees"),
)


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
