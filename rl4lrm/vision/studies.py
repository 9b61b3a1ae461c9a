"""Studies of RL on a tiny vision-language model: what GRPO changes, in perception and in reasoning.

Each returns a pandas DataFrame (or a dict of numbers):

- ``answer_table``: one row per sampled completion of held-out problems: the counts in the image, the counts
  the model wrote, its answer, right or wrong, and the error kind (``rl4lrm.vision.task.error_kind``);
- ``summarize``: greedy accuracy, sampled pass@1 and the share of each error kind among all answers;
- ``accuracy_by_count``: accuracy against the true answer (how many squares in all);
- ``vision_rl``: GRPO on the answer (exact-match verifier) through the ordinary ``rl4lrm.trainer.Trainer``;
- ``rl_before_after``: ``summarize`` before and after ``vision_rl``, one row each.

RL for vision-language models on verifiable visual questions is Vision-R1 (Huang et al. 2025, arXiv:2503.06749);
the survey (arXiv:2509.08827, section 5) reviews the multimodal line.
"""

from __future__ import annotations

import copy
import time

import pandas as pd
import torch

from rl4lrm.rollout import rollout
from rl4lrm.vision.task import ERROR_KINDS, CountingTask, error_kind, read_counts


@torch.no_grad()
def answer_table(
    model,
    tokenizer,
    task: CountingTask,
    problems,
    n_samples: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
    max_new_tokens: int = 8,
) -> pd.DataFrame:
    """One row per completion (``n_samples`` per problem): ``problem``, ``asked``, ``true_counts`` (x, y),
    ``read_counts`` (what the model wrote, or None), ``answer``, ``completion``, ``correct`` and ``kind``."""
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    rows = []
    for start in range(0, len(problems), 128):
        chunk = problems[start : start + 128]
        batch = rollout(
            model, tokenizer, [p.prompt for p in chunk], n_samples, max_new_tokens, temperature, generator=gen
        )
        for i, text in enumerate(batch.completions):
            p = chunk[i // n_samples]
            x, y = p.meta["asked"]
            read = read_counts(text)
            rows.append(
                {
                    "problem": start + i // n_samples,
                    "asked": f"{x}+{y}",
                    "true_counts": (p.meta["counts"][x], p.meta["counts"][y]),
                    "read_counts": None if read is None else read[:2],
                    "answer": int(p.answer),
                    "completion": text,
                    "correct": float(task.verify(p, text).correct),
                    "kind": error_kind(p, text),
                }
            )
    return pd.DataFrame(rows)


def summarize(model, tokenizer, task: CountingTask, n_problems: int = 256, n_samples: int = 4, seed: int = 0) -> dict:
    """Held-out numbers of a model: ``greedy`` accuracy, sampled ``pass@1`` (T = 1, ``n_samples`` per problem),
    and ``greedy/<kind>``: the share of greedy answers of each error kind (they sum to 1)."""
    problems = task.problems("test", n_problems, seed=0)
    greedy = answer_table(model, tokenizer, task, problems, 1, 0.0, seed)
    sampled = answer_table(model, tokenizer, task, problems, n_samples, 1.0, seed)
    out = {"greedy": greedy["correct"].mean(), "pass@1": sampled["correct"].mean()}
    shares = greedy["kind"].value_counts(normalize=True)
    out.update({f"greedy/{k}": float(shares.get(k, 0.0)) for k in ERROR_KINDS})
    return out


def accuracy_by_count(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy and the share of perception errors against the true answer (an ``answer_table``)."""
    grouped = table.assign(perception=(table["kind"] == "perception").astype(float)).groupby("answer")
    return grouped.agg(
        n=("correct", "size"), accuracy=("correct", "mean"), perception=("perception", "mean")
    ).reset_index()


def vision_rl(
    model,
    tokenizer,
    task: CountingTask,
    steps: int = 100,
    lr: float = 1e-4,
    prompts_per_step: int = 16,
    group_size: int = 8,
    seed: int = 0,
    copy_model: bool = True,
    callbacks=(),
    **train_kwargs,
):
    """GRPO on the VLM through the ordinary ``Trainer`` (no second training loop); the reward is the verifier's
    exact match on the final answer (the counts written before it are not graded).

    Every part learns: the LM, the projector and the patch encoder all get the policy gradient.

    Returns:
        ``(history DataFrame, trained model)``; the input model is left untouched when ``copy_model``.
    """
    from rl4lrm.trainer import TrainConfig, Trainer

    model = copy.deepcopy(model) if copy_model else model
    cfg = TrainConfig.build(
        task="counting",
        steps=steps,
        prompts_per_step=prompts_per_step,
        group_size=group_size,
        max_new_tokens=8,
        lr=lr,
        seed=seed,
        device="cpu",
        **{"eval_every": max(steps // 5, 1), "eval_problems": 128, "eval_samples": 2, **train_kwargs},
    )
    history = Trainer(cfg, model=model, tokenizer=tokenizer, task=task, callbacks=callbacks, progress=False).train()
    return history, model


def rl_before_after(
    model,
    tokenizer,
    task: CountingTask,
    steps: int = 100,
    lr: float = 1e-4,
    n_problems: int = 256,
    seed: int = 0,
    **rl_kwargs,
) -> tuple[pd.DataFrame, object]:
    """``summarize`` before and after ``vision_rl`` (same held-out problems), with RL's wall time.

    Returns:
        ``(frame with rows "base" and "GRPO", trained model)``.
    """
    before = summarize(model, tokenizer, task, n_problems, seed=seed)
    start = time.perf_counter()
    _, trained = vision_rl(model, tokenizer, task, steps=steps, lr=lr, seed=seed, **rl_kwargs)
    wall = time.perf_counter() - start
    after = summarize(trained, tokenizer, task, n_problems, seed=seed)
    frame = pd.DataFrame(
        [{"model": "base", **before, "rl_seconds": 0.0}, {"model": "GRPO", **after, "rl_seconds": wall}]
    )
    return frame, trained
