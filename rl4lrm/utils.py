"""Small shared helpers: device choice, seeding, eval mode for a block, and rank statistics (AUROC) used by several
studies."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pandas as pd
import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in DEVICES[1:]:
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES} (or 'cuda:N')")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def eval_mode(model):
    """Puts ``model`` in eval mode (no dropout) for the duration of the block, then restores its previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def average_ranks(x) -> np.ndarray:
    """Ranks 1..n of the values of ``x``, ties sharing the mean of their positions (as Spearman and AUROC need)."""
    return pd.Series(np.asarray(x, dtype=float)).rank(method="average").to_numpy()


def auroc(scores, labels) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative), ties counting 1/2
    (the Mann-Whitney U statistic, from ranks in O(n log n)).

    Args:
        scores: (n,) scores. labels: (n,) labels; above 0.5 counts as positive (0/1 or soft labels).

    Returns:
        The AUROC, or NaN when one class is empty.
    """
    positive = np.asarray(labels, dtype=float) > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
