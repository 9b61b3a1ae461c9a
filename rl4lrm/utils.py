"""Small shared helpers: device choice, CPU threads, seeding, eval mode for a block, and rank statistics (AUROC)
used by several studies."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import pandas as pd
import torch

DEVICES = ("auto", "cpu", "cuda")
THREADS_ENV = "RL4LRM_THREADS"  # torch CPU threads; "0" keeps torch's own default (one per core)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in DEVICES[1:]:
        raise ValueError(f"unknown device {device!r}; choose one of {DEVICES} (or 'cuda:N')")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def set_torch_threads(n: int | None = None) -> int:
    """Sets torch's intra-op CPU threads for everything rl4lrm runs; ``import rl4lrm`` calls it once.

    The lab's models have a few hundred thousand parameters, so each op is dominated by overhead: one thread is
    fastest, and on a busy 2-core machine two threads spin-wait on each other and run several times slower.
    Larger models on a free many-core CPU want more: set the environment variable ``RL4LRM_THREADS`` (``0`` keeps
    torch's default) or call this function again.

    Args:
        n: threads; default ``RL4LRM_THREADS``, else 1. 0 leaves torch's setting as it is.

    Returns:
        The number of threads torch uses afterwards.
    """
    if n is None:
        raw = os.environ.get(THREADS_ENV, "1")
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(
                f"{THREADS_ENV}={raw!r} is not an integer; use 1 (the lab's default), 2, ..., or 0 for torch's default"
            ) from None
    if n < 0:
        raise ValueError(f"torch threads must be >= 0 (0: torch's default), got {n}")
    if n > 0:
        torch.set_num_threads(n)
    return torch.get_num_threads()


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


def ray_session(address: str | None = None, needed_for: str = "this"):
    """Ray, started if it is not running yet (``ray.init(address=address)``: None starts a local cluster); a session
    the caller started (a cluster, a ``runtime_env``) is used as it is. Ray is an optional extra, imported here so
    that rl4lrm imports without it.

    Raises:
        ImportError: without Ray, saying what needs it and how to install it.
    """
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"{needed_for} needs Ray, an optional extra: pip install 'rl4lrm[ray]'") from err
    if not ray.is_initialized():
        ray.init(address=address)
    return ray
