"""Rewards (survey §3.1): one registry and one contract for every family, combinable with weights.

``REWARDS`` holds every registered reward; ``RewardMix({"correct": 1.0, "format": 0.2})`` combines
them; ``RewardContext`` carries what a reward may need beyond the text. Families:
``verifiable`` (exact, numeric, math-verify equivalence, format), ``unsupervised`` (majority vote, self-certainty,
negative entropy), ``shaping`` (length penalty, DAPO’s
overlong punishment, cosine length scaling); ``rl4lrm.rewards.trl`` adapts any of them to TRL's
``reward_funcs``.
"""

from rl4lrm.rewards import generative, shaping, unsupervised, verifiable  # noqa: F401  (importing registers their rewards)
from rl4lrm.rewards.base import REWARDS, RewardContext, RewardMix, compute_reward, register_reward

__all__ = ["REWARDS", "RewardContext", "RewardMix", "compute_reward", "register_reward"]
