"""The update's forward and backward three ways, side by side on the same GRPO batches: the HF forward, the fused
forward with the completions' attention on one padded grid, and the fused forward with it in length buckets
(``rl4lrm.fused``; the trainer's ``fast_update=True``).

For each ``--tasks`` zoo entry a ``grpo`` trainer samples a batch of ``--prompts-per-step`` x ``--group-size``
completions up to ``--max-new-tokens`` after each number of GRPO steps in ``--warm-steps`` (the lengths RL leads to:
a searching Countdown model's traces grow from about 40 to 90 tokens in 20 steps), and each way computes the
log-probs and entropy with gradients, then backpropagates a GRPO-like loss. The ways
alternate over ``--repeats`` rounds on one CPU thread (a busy machine slows all alike) and the median time is
reported, with the largest log-prob difference from the HF forward. The order of the ways flips each round.

    python benchmarks/fused_update.py [--tasks addition countdown-search] [--repeats 7]

Writes ``benchmarks/results/fused_update.csv``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from common import hand_stepped_trainer

from rl4lrm import fused
from rl4lrm.rollout import compute_logprobs

WAYS = ("HF forward", "fused, one grid", "fused, length buckets")


def update(model, batch, way: str) -> tuple[float, torch.Tensor]:
    """Seconds for one forward and backward of ``way`` on ``batch``, and its log-probs."""
    buckets = fused.MAX_BUCKETS
    fused.MAX_BUCKETS = 1 if way == "fused, one grid" else buckets
    try:
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        logprobs, entropy = compute_logprobs(model, batch, with_entropy=True, fused=way != "HF forward")  # (N, T)
        weights = torch.linspace(-1, 1, len(logprobs))[:, None]  # stands in for the advantages
        ((logprobs * weights).sum() + 0.01 * entropy.sum()).backward()
        return time.perf_counter() - t0, logprobs.detach()
    finally:
        fused.MAX_BUCKETS = buckets


def measure(task: str, args) -> list[dict]:
    """The rows of one task: every way at every ``--warm-steps`` point."""
    trainer = hand_stepped_trainer(
        task,
        "grpo",
        0,
        prompts_per_step=args.prompts_per_step,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
    )
    rows = []
    for warm in sorted(args.warm_steps):
        while trainer.step < warm:
            trainer.learn(trainer.collect(), trainer.step, time.perf_counter())
        rows += compare(trainer, task, args.repeats)
    return rows


def compare(trainer, task: str, repeats: int) -> list[dict]:
    """Every way on one fresh batch of ``trainer``'s, in turn over ``repeats`` rounds."""
    batch = trainer.collect().batch
    model = copy.deepcopy(trainer.model).train()  # the trainer's own model stays in eval mode for its rollouts
    times = {way: [] for way in WAYS}
    logprobs = {}
    for round_ in range(repeats):
        for way in WAYS[:: 1 if round_ % 2 == 0 else -1]:  # the order flips each round: no way always runs last
            seconds, logprobs[way] = update(model, batch, way)
            times[way].append(seconds)
    lengths = batch.lengths
    base = statistics.median(times["HF forward"])
    return [
        {
            "task": task,
            "after steps": trainer.step,
            "rows": len(lengths),
            "columns": batch.completion_ids.shape[1],
            "mean length": lengths.mean().item(),
            "way": way,
            "update (ms)": 1000 * statistics.median(times[way]),
            "speed-up vs HF": base / statistics.median(times[way]),
            "max |log-prob diff| vs HF": (logprobs[way] - logprobs["HF forward"]).abs().max().item(),
        }
        for way in WAYS
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["addition", "countdown-search"], help="zoo entries")
    parser.add_argument("--prompts-per-step", type=int, default=32)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--warm-steps", type=int, nargs="+", default=[0, 20], help="GRPO steps before each batch")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/fused_update.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch={torch.__version__} threads=1 device=cpu B={args.prompts_per_step} G={args.group_size}", flush=True)
    table = pd.DataFrame([row for task in args.tasks for row in measure(task, args)])
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
