"""Figures of chapter 04: a sampling tree with its node values, and the curriculum's picks over time."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from rl4lrm.advantages import node_values
from rl4lrm.sampling import TreeRollout

SAMPLING_CURVES = [
    ("acc/pass@1", "held-out pass@1"),
    ("reward/frac_zero_std", "trained groups without signal"),
    ("tokens/generated", "tokens generated per step"),
    ("reward/mean", "train reward"),
    ("length/mean", "completion length"),
    ("entropy/mean", "token entropy"),
]


def plot_tree(tree: TreeRollout, rewards: torch.Tensor, prompt: int = 0, title: str | None = None, ax=None):
    """Draws the sampling tree of one prompt: each node's segment, its value V and how many leaf rows share it.

    Leaves are coloured by their reward (green 1, red 0); inner nodes by their value on the same scale.
    Early leaves (EOS before the last level) are drawn once, with the number of rows they stand for.

    Args:
        tree: a ``TreeRollout``.
        rewards: (N,) rewards of its leaf rows.
        prompt: which prompt's tree to draw.

    Returns:
        The matplotlib figure.
    """
    values, leaves = node_values(rewards.float().to(tree.row_nodes.device), tree)
    values, leaves = values.cpu(), leaves.cpu()
    parent, depth, root = tree.parent.tolist(), tree.depth.tolist(), tree.root.tolist()
    nodes = [n for n in range(len(parent)) if root[n] == prompt]
    children = {n: [c for c in nodes if parent[c] == n] for n in nodes}
    x: dict[int, float] = {}
    slot = 0

    def place(n):  # leaves left to right in depth-first order, parents centred over their children
        nonlocal slot
        if not children[n]:
            x[n], slot = slot, slot + 1
        else:
            for c in children[n]:
                place(c)
            x[n] = sum(x[c] for c in children[n]) / len(children[n])

    place(prompt)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 1.25 * slot), 1.3 + 1.25 * max(depth[n] for n in nodes)))
    cmap = plt.get_cmap("RdYlGn")  # its middle 60%: red to green light enough for black labels
    for n in nodes:
        if parent[n] >= 0:
            ax.plot([x[parent[n]], x[n]], [-depth[parent[n]], -depth[n]], color="0.6", lw=1, zorder=1)
    for n in nodes:
        text = "prompt" if parent[n] < 0 else repr(tree.segments[n])[1:-1]
        label = f"{text}\nV={values[n]:.2f}" + (f"\n×{int(leaves[n])}" if not children[n] and leaves[n] > 1 else "")
        ax.text(
            x[n],
            -depth[n],
            label,
            ha="center",
            va="center",
            fontsize=8,
            zorder=2,
            family="monospace",
            bbox={"boxstyle": "round,pad=0.3", "fc": cmap(0.2 + 0.6 * float(values[n])), "ec": "0.4", "alpha": 0.9},
        )
    ax.set_xlim(-0.7, slot - 0.3)
    ax.set_ylim(-max(depth[n] for n in nodes) - 0.6, 0.6)
    ax.axis("off")
    ax.set_title(
        title or f"sampling tree of prompt {prompt}: node values V = mean reward of the leaves below", fontsize=10
    )
    ax.figure.tight_layout()
    return ax.figure


def plot_curriculum(per_step: pd.DataFrame, title: str | None = None):
    """The curriculum over time: the base model's pass rate on the problems it picked, its own estimate,
    and the batch reward (``rl4lrm.experiments.sampling.curriculum_study``)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    smooth = per_step.set_index("step").rolling(5, min_periods=1).mean()
    ax.plot(smooth.index, smooth["picked base pass rate"], label="base model's pass rate on the picked problems")
    ax.plot(smooth.index, smooth["picked estimate"], label="curriculum's estimate at pick time", ls="--")
    ax.plot(smooth.index, smooth["batch reward"], label="batch reward (current policy)", alpha=0.7)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("pass rate (5-step mean)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "what the curriculum picks as the policy improves", fontsize=10)
    fig.tight_layout()
    return fig
