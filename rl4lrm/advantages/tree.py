"""Segment-level advantages from a sampling tree (TreeRL, Hou et al., 2025, arXiv:2506.11902).

Every node of a tree rollout (``rl4lrm.sampling.tree``) gets a value, the mean reward of the leaves
below it, and every segment an advantage from how its node's value compares with the root's (global)
and its parent's (local), scaled down by the square root of the leaves sharing the segment. The tree is a
``rl4lrm.sampling.tree.TreeRollout``; only its index tensors are read here.
"""

from __future__ import annotations

import torch

from rl4lrm.advantages.base import advantage_metrics, float_rewards, register_advantage


def node_values(rewards: torch.Tensor, tree) -> tuple[torch.Tensor, torch.Tensor]:
    """Backs leaf rewards up the trees.

    Args:
        rewards: (N,) reward of each leaf row.
        tree: the ``TreeRollout`` the rows come from.

    Returns:
        ``values`` (M,): mean reward of the leaf rows below each node (its Monte-Carlo value), and
        ``leaves`` (M,): how many leaf rows pass through it.
    """
    on_path = tree.row_nodes >= 0  # (N, D+1)
    nodes = tree.row_nodes[on_path]  # (K,)
    per_row = rewards[:, None].expand_as(tree.row_nodes)[on_path].double()  # (K,)
    M = len(tree.parent)
    sums = torch.zeros(M, dtype=torch.float64, device=nodes.device).index_add_(0, nodes, per_row)
    leaves = torch.zeros(M, dtype=torch.float64, device=nodes.device).index_add_(0, nodes, torch.ones_like(per_row))
    return (sums / leaves.clamp(min=1)).float(), leaves.float()


@register_advantage("tree", requires=("tree",), min_group_size=2)
def tree_advantage(
    rewards: torch.Tensor, response_mask: torch.Tensor, group_size: int, tree=None, **kwargs
) -> tuple[torch.Tensor, dict[str, float]]:
    """Segment-level advantages from a sampling tree (TreeRL's global + local form).

    A(n) = [(V(n) - V(root)) + (V(n) - V(parent))] / sqrt(L(n)) for the tokens of node n's segment,
    where L(n) is the number of leaf rows sharing the segment (each of them trains on it).

    Args:
        rewards: (N,) leaf rewards; response_mask: (N, T); group_size: G (unused: the tree knows).
        tree: the step's ``TreeRollout`` (sampler='tree' provides it).

    Returns:
        ``advantages`` (N, T) and metrics.
    """
    if tree is None:
        raise ValueError("the 'tree' advantage needs the tree of a tree rollout: train with sampler='tree'")
    device = response_mask.device
    values, leaves = node_values(float_rewards(rewards), tree)  # (M,), (M,)
    values, leaves = values.to(device), leaves.to(device)
    parent, root = tree.parent.to(device), tree.root.to(device)
    segment = (2 * values - values[root] - values[parent.clamp(min=0)]) / leaves.clamp(min=1).sqrt()  # (M,)
    segment = torch.where(parent >= 0, segment, torch.zeros_like(segment))
    advantages = segment[tree.token_node.clamp(min=0)] * (tree.token_node >= 0) * response_mask  # (N, T)
    return advantages, advantage_metrics(advantages, response_mask)
