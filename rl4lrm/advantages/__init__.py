"""Advantage estimators: one scalar reward per sample in, token-level advantages out.

The registry ``ADVANTAGES`` is filled here, in one place, by the three families: ``group`` (group and batch
baselines), ``token`` (token-level returns, GAE) and ``tree`` (segment advantages of tree rollouts).


- ``reinforce``: REINFORCE with a batch-mean baseline (Williams, 1992, "Simple statistical
  gradient-following algorithms for connectionist reinforcement learning").
- ``grpo``: the group-relative advantage of GRPO (Shao et al., 2024, "DeepSeekMath",
  arXiv:2402.03300).
- ``dr_grpo``: GRPO without the division by the group std (Liu et al., 2025, "Understanding
  R1-Zero-Like Training", arXiv:2503.20783).
- ``group_mean_batch_std``: the group mean as baseline, divided by the std of the whole batch (Lite PPO;
  Liu et al., 2025, "Tricks or Traps? A Deep Dive into RL for LLM Reasoning", arXiv:2508.08221);
  ``batch_norm``: the batch mean and std (the same paper's batch-level arm).
- ``rloo``: leave-one-out baseline (Kool et al., 2019; Ahmadian et al., 2024, "Back to Basics",
  arXiv:2402.14740).
- ``reinforce_pp``: REINFORCE++ (Hu, 2025, arXiv:2501.03262): token-level returns (outcome plus
  per-token penalties such as the KL) normalised over the whole batch; ``reinforce_pp_baseline``
  subtracts the group mean first.
- ``remax``: the reward of the greedy completion as baseline (Li et al., 2023, "ReMax",
  arXiv:2310.10505).
- ``passk``: a group advantage whose expectation is the gradient of pass@k instead of pass@1
  (Chen et al., 2025, "Pass@k Training", arXiv:2508.10751; Walder & Karkhanis, 2025, "Pass@K
  Policy Optimization", arXiv:2505.15201).
- ``gae``: generalized advantage estimation from a learned critic's values (``rl4lrm.critic``);
- ``tree``: segment advantages from a tree rollout (TreeRL).

Every estimator has the same signature::

    fn(rewards (N,), response_mask (N, T), group_size, **context) -> (advantages (N, T), metrics)

The G samples of one prompt are contiguous rows ``g*G .. g*G+G-1``. Rewards are outcome
rewards, so each sample's advantage is broadcast over its response tokens and zeroed on padding.
``context`` carries what some estimators need and the others ignore; an estimator declares it with
``@register_advantage(name, requires=...)`` so the trainer knows what to compute:

- ``baseline_rewards`` (N,): reward of the greedy completion of each row's prompt (ReMax);
- ``values`` (N, T): the critic's value of the state before each token (GAE);
- ``token_rewards`` (N, T): per-token rewards such as ``-beta * k1`` when the KL is placed in the
  reward. Estimators that do not require it receive them already summed into ``rewards``;
- ``group_ids`` (N,): optional prompt ids for batches whose groups differ in size
  (``reinforce_pp_baseline``; verl's ``index``);
- plain scalars and choices: ``gamma`` (GAE, REINFORCE++), ``lam`` (GAE), ``k`` (pass@k), ``eps`` (the
  std epsilon of ``grpo``), ``whiten_std`` (REINFORCE++'s batch statistics), ``singleton`` (what a group of
  one sample gets).

Conventions the production frameworks differ on are arguments here, with the framework's choice named in
each docstring and in ``docs/crosswalk.md``.
"""

from rl4lrm.advantages.base import (
    ADVANTAGES,
    SINGLETONS,
    WHITEN_STDS,
    advantage_metrics,
    check_advantage,
    float_rewards,
    group_view,
    register_advantage,
    zero_std_groups,
)
from rl4lrm.advantages.group import (
    NORMALISATIONS,
    batch_norm,
    dr_grpo,
    group_mean_batch_std,
    grpo,
    passk,
    reinforce,
    remax,
    rloo,
)
from rl4lrm.advantages.token import (
    gae,
    reinforce_pp,
    reinforce_pp_baseline,
    returns_to_go,
    token_level_rewards,
    whiten,
)
from rl4lrm.advantages.tree import node_values, tree_advantage

__all__ = [
    "ADVANTAGES",
    "NORMALISATIONS",
    "SINGLETONS",
    "WHITEN_STDS",
    "advantage_metrics",
    "batch_norm",
    "check_advantage",
    "dr_grpo",
    "float_rewards",
    "gae",
    "group_mean_batch_std",
    "group_view",
    "grpo",
    "node_values",
    "passk",
    "register_advantage",
    "reinforce",
    "reinforce_pp",
    "reinforce_pp_baseline",
    "remax",
    "returns_to_go",
    "rloo",
    "token_level_rewards",
    "tree_advantage",
    "whiten",
    "zero_std_groups",
]
