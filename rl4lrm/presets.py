"""Algorithms as presets: one row per named algorithm, one column per independent axis.

An RL algorithm for LLMs is a choice on each axis — advantage estimator × policy loss × loss
aggregation × KL estimator and placement × entropy bonus × update epochs × off-policy reuse — plus
the paper's hyperparameters (reward shaping, such as a length penalty, is a reward: ``rl4lrm.rewards``).
Adding an algorithm is one registered function (if it needs a new one) and one row here; the trainer
never branches on an algorithm's name. Every field can be overridden:
``resolve_preset("grpo", kl_coef=0.0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from rl4lrm.advantages import ADVANTAGES, SINGLETONS, WHITEN_STDS
from rl4lrm.aggregation import AGGREGATIONS
from rl4lrm.kl import kl_estimator_names
from rl4lrm.losses import POLICY_LOSSES
from rl4lrm.validation import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    Range,
    check_fields,
    named_keywords,
)

KL_PLACEMENTS = ("loss", "reward")
PRESET_RANGES = {
    "advantage": ADVANTAGES,
    "policy_loss": POLICY_LOSSES,
    "aggregation": tuple(AGGREGATIONS),
    "kl_estimator": tuple(kl_estimator_names()),
    "kl_placement": KL_PLACEMENTS,
    "whiten_std": WHITEN_STDS,
    "singleton": SINGLETONS,
    "clip_low": UNIT,
    "clip_high": NON_NEGATIVE,
    "dual_clip_c": Range(1, low_open=True),
    "kl_coef": NON_NEGATIVE,
    "kl_clamp": NON_NEGATIVE,
    "std_eps": NON_NEGATIVE,
    "entropy_coef": NON_NEGATIVE,
    "update_epochs": AT_LEAST_ONE,
    "replay": NON_NEGATIVE,
    "tis_cap": NON_NEGATIVE,
    "gamma": UNIT,
    "lam": UNIT,
    "value_clip": POSITIVE,
    "critic_lr": POSITIVE,
    "pass_k": AT_LEAST_ONE,
}
"""Allowed values of each axis (``TrainConfig`` checks its overrides against them too)."""


@named_keywords()
@dataclass(frozen=True)
class Preset:
    """One algorithm as a combination of axes."""

    name: str
    """The preset's name in ``PRESETS`` (kept when axes are overridden)."""
    advantage: str
    """Registered advantage estimator (``rl4lrm.advantages``)."""
    policy_loss: str
    """Registered policy loss (``rl4lrm.losses``)."""
    aggregation: str = "token_mean"
    """How the (N, T) token losses become a scalar: one of ``AGGREGATIONS``."""
    clip_low: float = 0.2
    """PPO lower clip: the ratio is clipped below at ``1 - clip_low``; in [0, 1], 1 = no lower bound."""
    clip_high: float = 0.2
    """PPO upper clip: ``1 + clip_high`` (DAPO's clip-higher raises it alone)."""
    dual_clip_c: float = 3.0
    """Dual-clip cap c > 1 on the ratio of negative-advantage tokens (``dual_clip`` loss only)."""
    kl_coef: float = 0.0
    """Weight β of the KL penalty to the frozen reference (0 turns it off)."""
    kl_estimator: str = "k3"
    """Estimator of KL(π‖π_ref) in the loss (``rl4lrm.kl``): Schulman's ``k1``, ``k2``, ``k3``, verl's ``abs``,
    or one of them with a trailing ``+`` (verl's straight-through: its value, k2's gradient)."""
    kl_clamp: float = 0.0
    """Clamp of the per-token KL estimate to [−kl_clamp, kl_clamp], in both placements (0 = off). verl clamps
    k3 (``low_var_kl``) to 10, OpenRLHF every estimator to 10, TRL none; beyond it a token gets no KL gradient."""
    kl_placement: str = "loss"
    """``"loss"`` (GRPO: β·KL added to the loss) or ``"reward"`` (PPO-RLHF: −β·Σ k1 added to the reward)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus subtracted from the loss."""
    update_epochs: int = 1
    """Gradient passes over each rollout batch (1 = on-policy; more reuse samples via the ratio)."""
    replay: int = 0
    """Off-policy reuse: also train on the last ``replay`` rollout batches, sampled by older policies."""
    tis_cap: float = 0.0
    """Truncated importance sampling: weight tokens by min(π_old / π_behaviour, tis_cap), with π_old
    recomputed before the update (0 = off: the ratio then refers to the sampling policy itself)."""
    gamma: float = 1.0
    """Discount γ of the returns of ``gae`` and of ``reinforce_pp`` / ``reinforce_pp_baseline``."""
    lam: float = 0.95
    """GAE λ (``gae`` advantage only): 0 = one-step TD error, 1 = Monte-Carlo return."""
    value_clip: float = 0.2
    """Clip range of the critic's value loss (``gae`` only)."""
    critic_lr: float = 1e-3
    """AdamW learning rate of the critic (``gae`` only)."""
    pass_k: int = 4
    """The k of the ``passk`` advantage (must not exceed the group size)."""
    std_eps: float = 1e-6
    """ε of ``grpo``'s (r − mean) / (std + ε): 1e-6 as in verl; TRL uses 1e-4, OpenRLHF 1e-9."""
    whiten_advantages: bool = False
    """Whiten the advantages over the valid tokens of the whole batch after the estimator (mean 0, std 1),
    as verl, TRL's PPO and OpenRLHF do for GAE; the critic's targets stay the unwhitened λ-returns."""
    whiten_std: str = "biased"
    """The std of batch whitening (``reinforce_pp*`` and ``whiten_advantages``), one of ``WHITEN_STDS``:
    ``"biased"`` (population std + 1e-8: REINFORCE++'s code in OpenRLHF) or ``"unbiased"`` (rsqrt(Bessel-corrected
    variance + 1e-8): verl, TRL's PPO)."""
    overlong_filter: bool = False
    """DAPO's overlong filtering: completions cut by ``max_new_tokens`` before their EOS are masked out of the loss
    (and of its token counts), so a truncated answer is neither rewarded nor punished (TRL:
    ``mask_truncated_completions``). Their rewards still enter the advantages of their group."""
    singleton: str = "zero"
    """Advantage of a group of one sample (group_size 1), one of ``SINGLETONS``: ``"zero"`` (no signal; ``rloo``
    refuses) or ``"reward"`` (verl: the baseline is 0, so the raw reward; GRPO divides it by 1 + ε)."""
    paper: str = ""
    """Citation with link."""

    def __post_init__(self):
        check_fields(self, PRESET_RANGES, label=f"Preset({self.name!r})")
        if self.tis_cap and self.tis_cap < 1:
            raise ValueError(f"preset {self.name!r}: tis_cap must be 0 (off) or >= 1, got {self.tis_cap}")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "reinforce",
            advantage="reinforce",
            policy_loss="vanilla_pg",
            paper="Williams (1992), Simple statistical gradient-following algorithms for connectionist "
            "reinforcement learning, https://doi.org/10.1007/BF00992696",
        ),
        Preset(
            # InstructGPT puts a per-token KL (k1, beta 0.02) in the reward; reasoning recipes such as
            # Open-Reasoner-Zero use gamma = 1. Two epochs so that the ratio clip has something to do.
            "ppo",
            advantage="gae",
            policy_loss="ppo_clip",
            clip_low=0.2,
            clip_high=0.2,
            kl_coef=0.02,
            kl_estimator="k1",
            kl_placement="reward",
            gamma=1.0,
            lam=0.95,
            value_clip=0.2,
            update_epochs=2,
            paper="Schulman et al. (2017), Proximal Policy Optimization, https://arxiv.org/abs/1707.06347; "
            "Ouyang et al. (2022), InstructGPT, https://arxiv.org/abs/2203.02155",
        ),
        Preset(
            # DeepSeekMath: clip 0.2, beta 0.04 with k3 in the loss, per-sequence length normalisation
            # (seq_mean_token_mean), one update per rollout batch.
            "grpo",
            advantage="grpo",
            policy_loss="ppo_clip",
            aggregation="seq_mean_token_mean",
            clip_low=0.2,
            clip_high=0.2,
            kl_coef=0.04,
            kl_estimator="k3",
            kl_placement="loss",
            paper="Shao et al. (2024), DeepSeekMath, https://arxiv.org/abs/2402.03300",
        ),
        Preset(
            # Dr.GRPO: no std scaling, no per-sequence length normalisation, no KL.
            "dr_grpo",
            advantage="dr_grpo",
            policy_loss="ppo_clip",
            aggregation="seq_mean_token_sum_norm",
            clip_low=0.2,
            clip_high=0.2,
            kl_coef=0.0,
            paper="Liu et al. (2025), Understanding R1-Zero-Like Training, https://arxiv.org/abs/2503.20783",
        ),
        Preset(
            # DAPO: clip-higher (0.2 / 0.28), token-level loss, no KL, several minibatch updates per batch.
            # Its dynamic sampling and overlong shaping are sampling and reward choices, not preset axes.
            "dapo",
            advantage="grpo",
            policy_loss="ppo_clip",
            aggregation="token_mean",
            clip_low=0.2,
            clip_high=0.28,
            kl_coef=0.0,
            update_epochs=2,
            paper="Yu et al. (2025), DAPO, https://arxiv.org/abs/2503.14476",
        ),
        Preset(
            # GSPO: sequence-level ratio with the paper's clip range 3e-4 / 4e-4 and several updates per batch.
            "gspo",
            advantage="grpo",
            policy_loss="gspo",
            aggregation="seq_mean_token_mean",
            clip_low=3e-4,
            clip_high=4e-4,
            kl_coef=0.0,
            update_epochs=2,
            paper="Zheng et al. (2025), Group Sequence Policy Optimization, https://arxiv.org/abs/2507.18071",
        ),
        Preset(
            # RLOO: sequence-level REINFORCE with a leave-one-out baseline and the KL in the reward.
            "rloo",
            advantage="rloo",
            policy_loss="vanilla_pg",
            aggregation="seq_mean_token_sum_norm",
            kl_coef=0.05,
            kl_estimator="k1",
            kl_placement="reward",
            paper="Ahmadian et al. (2024), Back to Basics: Revisiting REINFORCE-Style Optimization, "
            "https://arxiv.org/abs/2402.14740",
        ),
        Preset(
            # REINFORCE++: PPO's clipped loss without a critic, token-level KL (k1) in the reward, batch
            # normalisation of the returns; 0.01 is OpenRLHF's default KL coefficient.
            "reinforce_pp",
            advantage="reinforce_pp",
            policy_loss="ppo_clip",
            aggregation="token_mean",
            clip_low=0.2,
            clip_high=0.2,
            kl_coef=0.01,
            kl_estimator="k1",
            kl_placement="reward",
            paper="Hu (2025), REINFORCE++, https://arxiv.org/abs/2501.03262",
        ),
        Preset(
            # ReMax: REINFORCE with the greedy completion's reward as baseline, sequence-level.
            "remax",
            advantage="remax",
            policy_loss="vanilla_pg",
            aggregation="seq_mean_token_sum_norm",
            paper="Li et al. (2023), ReMax, https://arxiv.org/abs/2310.10505",
        ),
        Preset(
            # Lite PPO: a vanilla PPO clipped loss without a critic and two tricks only: group-mean / batch-std
            # advantages and token-level aggregation. No KL, no clip-higher, one update per batch as GRPO here
            # (the paper does not tie Lite PPO to an epoch count).
            "lite_ppo",
            advantage="group_mean_batch_std",
            policy_loss="ppo_clip",
            aggregation="token_mean",
            clip_low=0.2,
            clip_high=0.2,
            kl_coef=0.0,
            paper="Liu et al. (2025), Tricks or Traps? A Deep Dive into RL for LLM Reasoning, "
            "https://arxiv.org/abs/2508.08221",
        ),
        Preset(
            # CISPO: clipped, detached IS weight, no lower bound. MiniMax-M1 tunes the upper bound and does
            # not publish it; we use DAPO's 0.28.
            "cispo",
            advantage="grpo",
            policy_loss="cispo",
            aggregation="token_mean",
            clip_low=1.0,
            clip_high=0.28,
            kl_coef=0.0,
            update_epochs=2,
            paper="MiniMax (2025), MiniMax-M1, https://arxiv.org/abs/2506.13585",
        ),
    ]
}


PRESET_AXES: tuple[str, ...] = tuple(f.name for f in fields(Preset) if f.name not in ("name", "paper"))
"""The overridable fields of a preset (everything but its name and citation)."""


def resolve_preset(name: str, **overrides) -> Preset:
    """The preset ``name`` with some axes replaced; ``None`` values keep the preset's choice."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    known = set(PRESET_AXES)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"cannot override {sorted(unknown)}; preset fields are {sorted(known)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
