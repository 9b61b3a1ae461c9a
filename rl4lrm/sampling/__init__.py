"""Sampling strategies (survey §3.4): which prompts a step trains on and how completions are drawn.

``SAMPLERS`` maps ``TrainConfig.sampler`` to a class: ``flat`` (B prompts × G independent samples),
``dynamic`` (DAPO's filter-and-refill, or a pass-rate band), ``curriculum`` (online difficulty
estimates that choose prompts and allocate the rollout budget), ``memory`` (an episodic memory of
verified solutions replayed into all-wrong groups, survey §7) and ``tree`` (rollouts that branch
from shared prefixes; their segment advantage is ``rl4lrm.advantages.tree``). Each sampler owns its settings
(``FlatConfig``, ``DynamicConfig``, ``CurriculumConfig``, ``MemoryConfig``, ``TreeConfig``: ``TrainConfig.sampling``).
"""

from rl4lrm.sampling.base import (
    SAMPLERS,
    FlatConfig,
    FlatSampler,
    Sampled,
    Sampler,
    SamplingContext,
    Scores,
)
from rl4lrm.sampling.curriculum import (
    CurriculumConfig,
    CurriculumSampler,
    DifficultyTracker,
    curriculum_weights,
)
from rl4lrm.sampling.dynamic import FILTERS, DynamicConfig, DynamicSampler
from rl4lrm.sampling.memory import MemoryConfig, MemorySampler, inject_rows
from rl4lrm.sampling.tree import TreeConfig, TreeRollout, TreeSampler, tree_rollout

__all__ = [
    "FILTERS",
    "SAMPLERS",
    "CurriculumConfig",
    "CurriculumSampler",
    "DifficultyTracker",
    "DynamicConfig",
    "DynamicSampler",
    "FlatConfig",
    "FlatSampler",
    "MemoryConfig",
    "MemorySampler",
    "Sampled",
    "Sampler",
    "SamplingContext",
    "Scores",
    "TreeConfig",
    "TreeRollout",
    "TreeSampler",
    "curriculum_weights",
    "inject_rows",
    "tree_rollout",
]
