"""Sampling strategies (survey §3.4): which prompts a step trains on and how completions are drawn.

``SAMPLERS`` maps ``TrainConfig.sampler`` to a class: ``flat`` (B prompts × G independent samples),
``dynamic`` (DAPO's filter-and-refill, or a pass-rate band), ``curriculum`` (online difficulty
estimates that choose prompts and allocate the rollout budget) and ``tree`` (rollouts that branch
from shared prefixes, with segment-level advantages).
"""

from rl4lrm.sampling.base import SAMPLERS, Sampled, Sampler, SamplingConfig, Scores
from rl4lrm.sampling.curriculum import CurriculumSampler, DifficultyTracker, curriculum_weights
from rl4lrm.sampling.dynamic import FILTERS, DynamicSampler
from rl4lrm.sampling.tree import TreeRollout, TreeSampler, node_values, tree_advantage, tree_rollout

__all__ = ["FILTERS", "SAMPLERS", "CurriculumSampler", "DifficultyTracker", "DynamicSampler", "Sampled", "Sampler",
           "SamplingConfig", "Scores", "TreeRollout", "TreeSampler", "curriculum_weights", "node_values", "tree_advantage",
           "tree_rollout"]
