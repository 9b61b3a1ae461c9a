"""Rewards (survey §3.1): one registry and one contract for every family, combinable with weights.

``REWARDS`` holds every registered reward; ``RewardMix({"correct": 1.0, "format": 0.2})`` combines them;
``RewardContext`` carries what a reward may need beyond the text. The families, one module each:

- ``verifiable``: exact match, numeric match, math-verify equivalence, format; strict vs lenient extraction;
- ``generative``: a judge model's verdict (tiny trained judges, SmolLM2 as a judge);
- ``dense``: step rewards from ground truth, a learned process reward model (``prm``), PRIME's implicit one;
- ``unsupervised``: majority vote (TTRL), self-certainty (Intuitor), negative entropy;
- ``shaping``: length penalty, DAPO's soft overlong punishment, cosine length scaling;
- ``efficiency``: thinking the right amount: Kimi's group length reward, L1's target length, AdaptThink's bonus;
- ``agentic``: tool-call format and per-turn rewards of tool-using episodes (``rl4lrm.agents``);
- ``compute``: a cost per latent reasoning step (adaptive compute with ``rl4lrm.latent.model``);
- ``learned``: a learned model of the verifier fit on a budget of true labels (model-based RL, notebook 17);
- ``code``: unit tests run in ``rl4lrm.sandbox`` (all pass, or the fraction passed), and the unsafe naive harness;
- ``spurious``: a random reward and a format-only reward (Shao et al., 2025: spurious rewards).

``rl4lrm.rewards.trl`` adapts any of them to TRL's ``reward_funcs``.
"""

from rl4lrm.rewards import (  # noqa: F401  (registers them)
    agentic,
    code,
    compute,
    dense,
    efficiency,
    generative,
    learned,
    shaping,
    spurious,
    unsupervised,
    verifiable,
)
from rl4lrm.rewards.base import (
    REWARDS,
    RewardContext,
    RewardMix,
    compute_reward,
    register_reward,
)

__all__ = ["REWARDS", "RewardContext", "RewardMix", "compute_reward", "register_reward"]
