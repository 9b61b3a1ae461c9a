"""Learning-rate schedules: a linear warm-up, then constant, linear or cosine decay (TRL's ``lr_scheduler_type``)."""

from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "linear", "cosine")


def scheduled_lr(step: int, total_steps: int, lr: float, warmup_steps: int = 0, schedule: str = "constant") -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total_steps``.

    Warm-up rises linearly from ``lr / (warmup_steps + 1)`` to ``lr``; after it, ``linear`` and ``cosine``
    decay towards 0 at ``total_steps``. A pure function of the step, so a resumed run needs no scheduler state.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {LR_SCHEDULES}")
    if step < warmup_steps:
        return lr * (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)  # 0 at the end of warm-up
    if schedule == "linear":
        return lr * max(0.0, 1.0 - progress)
    return lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
