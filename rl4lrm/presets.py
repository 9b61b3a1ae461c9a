"""Algorithms as presets: one row per named algorithm, one column per independent axis.

An RL algorithm for LLMs is a choice on each axis — advantage estimator × policy loss × loss
aggregation × KL estimator and placement × entropy bonus × update epochs — plus the paper's
hyperparameters. Adding an algorithm is one registered function (if it needs a new one) and one
row here; the trainer never branches on an algorithm's name. Every field can be overridden:
``resolve_preset("grpo", kl_coef=0.0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from rl4lrm.advantages import ADVANTAGES
from rl4lrm.kl import KL_ESTIMATORS
from rl4lrm.losses import AGGREGATIONS, POLICY_LOSSES

KL_PLACEMENTS = ("loss", "reward")


@dataclass(frozen=True)
class Preset:
    """One algorithm as a combination of axes."""

    name: str
    advantage: str
    """Registered advantage estimator (``rl4lrm.advantages``)."""
    policy_loss: str
    """Registered policy loss (``rl4lrm.losses``)."""
    aggregation: str = "token_mean"
    """How the (N, T) token losses become a scalar: one of ``AGGREGATIONS``."""
    clip_low: float = 0.2
    """PPO lower clip: the ratio is clipped below at ``1 - clip_low``."""
    clip_high: float = 0.2
    """PPO upper clip: ``1 + clip_high`` (DAPO's clip-higher raises it alone)."""
    kl_coef: float = 0.0
    """Weight β of the KL penalty to the frozen reference (0 turns it off)."""
    kl_estimator: str = "k3"
    """Schulman's estimator of KL(π‖π_ref): ``k1``, ``k2`` or ``k3`` (``rl4lrm.kl``)."""
    kl_placement: str = "loss"
    """``"loss"`` (GRPO: β·KL added to the loss) or ``"reward"`` (PPO-RLHF: −β·Σ k1 added to the reward)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus subtracted from the loss."""
    update_epochs: int = 1
    """Gradient passes over each rollout batch (1 = on-policy; more reuse samples via the ratio)."""
    paper: str = ""
    """Citation with link."""

    def __post_init__(self):
        checks = [("advantage", ADVANTAGES.names()), ("policy_loss", POLICY_LOSSES.names()),
                  ("aggregation", list(AGGREGATIONS)), ("kl_estimator", KL_ESTIMATORS.names()),
                  ("kl_placement", list(KL_PLACEMENTS))]
        for field, choices in checks:
            if getattr(self, field) not in choices:
                raise ValueError(f"preset {self.name!r}: {field}={getattr(self, field)!r} is not one of {choices}")
        if not 0 <= self.clip_low < 1 or self.clip_high < 0:
            raise ValueError(f"preset {self.name!r}: need 0 <= clip_low < 1 and clip_high >= 0, "
                             f"got clip_low={self.clip_low}, clip_high={self.clip_high}")
        if self.kl_coef < 0 or self.entropy_coef < 0:
            raise ValueError(f"preset {self.name!r}: kl_coef and entropy_coef must be >= 0, "
                             f"got {self.kl_coef} and {self.entropy_coef}")
        if self.update_epochs < 1:
            raise ValueError(f"preset {self.name!r}: update_epochs must be >= 1, got {self.update_epochs}")


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "reinforce", advantage="reinforce", policy_loss="vanilla_pg",
            paper="Williams (1992), Simple statistical gradient-following algorithms for connectionist "
                  "reinforcement learning, https://doi.org/10.1007/BF00992696",
        ),
        Preset(
            # DeepSeekMath uses clip eps 0.2 and beta 0.04 with the k3 estimator in the loss; its
            # per-sequence length normalisation is the `seq_mean_token_mean` aggregation, while
            # verl/DAPO and this preset use `token_mean` (switch with aggregation=...).
            "grpo", advantage="grpo", policy_loss="ppo_clip", clip_low=0.2, clip_high=0.2,
            kl_coef=0.04, kl_estimator="k3", kl_placement="loss",
            paper="Shao et al. (2024), DeepSeekMath, https://arxiv.org/abs/2402.03300",
        ),
    ]
}


def resolve_preset(name: str, **overrides) -> Preset:
    """The preset ``name`` with some axes replaced; ``None`` values keep the preset's choice."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    known = {f.name for f in fields(Preset)} - {"name", "paper"}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"cannot override {sorted(unknown)}; preset fields are {sorted(known)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
