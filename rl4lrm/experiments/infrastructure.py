"""Notebook 10's studies (survey §5, training resources): where problems come from and how the loop is run.

- ``curation_study``: the shipped teaching corpus (``rl4lrm/data/addition_corpus.jsonl``) through ``curate``:
  deduplication, character n-gram decontamination against the ``addition`` task's test split, and the pass-rate
  band measured on the zoo's ``addition`` base model;
- ``corpus_runs``: GRPO from that base model on several corpora (raw, curated, ...), held out on the test split;
- ``staleness_study``: the synchronous loop against ``AsyncTrainer`` at several staleness bounds, with each async
  run's timeline (who waited on whom).
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from rl4lrm.async_rl import AsyncTrainer
from rl4lrm.corpus import DATA, Curated, CurationConfig, corpus_task, curate, pass_rates, read_corpus
from rl4lrm.models.zoo import load_base
from rl4lrm.tasks import get_task
from rl4lrm.trainer import TrainConfig, Trainer

STUDY_CONFIG = dict(task="addition", prompts_per_step=16, group_size=8, eval_problems=128, eval_samples=4, device="cpu")
"""What every run of the chapter shares: the zoo's ``addition`` base model, 16 prompts x 8 samples a step."""


def held_out_rows(n: int = 2000) -> list[dict]:
    """The ``addition`` task's held-out problems as corpus rows (``prompt``, ``answer``): the decontamination
    reference and the held-out set of the corpus runs."""
    return [{"prompt": p.prompt, "answer": p.answer} for p in get_task("addition", digits=2).problems("test", n)]


def curation_study(
    samples: int = 8, seed: int = 0, config: CurationConfig | None = None
) -> tuple[list[dict], list[float], Curated]:
    """Curates the shipped corpus.

    Args:
        samples: completions per row for the base model's pass rate (T = 1).
        seed: the sampling seed.
        config: the curation settings (default: character 8-grams, the band 0 < pass rate < 1).

    Returns:
        ``(rows, rates, curated)``: the corpus as read, each row's pass rate, and ``curate``'s result.
    """
    rows = read_corpus(DATA / "addition_corpus.jsonl")
    model, tokenizer, _ = load_base("addition")
    gen = torch.Generator().manual_seed(seed)
    rates = pass_rates(model, tokenizer, rows, samples, max_new_tokens=8, generator=gen)
    return rows, rates, curate(rows, held_out_rows(), rates, config or CurationConfig(ngram_unit="char"))


def corpus_runs(corpora: dict[str, list[dict]], steps: int = 30, seed: int = 0, progress: bool = True, **config):
    """Trains the ``addition`` base model with GRPO on each corpus, at one budget.

    Args:
        corpora: ``{label: rows}`` (rows with ``prompt`` and ``answer``).
        steps: training steps of each run.
        seed: the runs' seed.
        progress: a bar over the runs.
        **config: ``TrainConfig`` fields over ``STUDY_CONFIG``.

    Returns:
        The histories with ``method`` (the corpus's label) and ``seed`` columns.
    """
    settings = {**STUDY_CONFIG, **config, "steps": steps, "seed": seed}
    held_out = held_out_rows(settings["eval_problems"])
    runs = []
    for label, rows in tqdm(corpora.items(), desc="corpora", disable=not progress):
        model, tokenizer, _ = load_base("addition")
        task = corpus_task(rows, held_out)
        trainer = Trainer(TrainConfig.build(**settings), model=model, tokenizer=tokenizer, task=task, progress=False)
        runs.append(trainer.train().assign(method=label, seed=seed))
    return pd.concat(runs, ignore_index=True)


def staleness_study(
    stalenesses=(0, 1, 2), seeds=(0,), steps: int = 30, tis_cap: float = 2.0, progress: bool = True, **config
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The synchronous loop and ``AsyncTrainer`` at each staleness bound, one run per (arm, seed).

    Args:
        stalenesses: the async arms' bounds (0 replays the synchronous run, in two threads).
        seeds: the seeds of every arm.
        steps: training steps of each run.
        tis_cap: the truncated importance weights' cap in every arm (a no-op on fresh batches).
        progress: a bar over the runs.
        **config: ``TrainConfig`` fields over ``STUDY_CONFIG``.

    Returns:
        ``(runs, timelines)``: the histories with ``method`` ("sync" or "staleness k") and ``seed`` columns, and
        each async run's ``timeline_frame()`` under "<method>, seed <s>".
    """
    arms = {"sync": None, **{f"staleness {k}": k for k in stalenesses}}
    runs, timelines = [], {}
    jobs = [(label, k, seed) for seed in seeds for label, k in arms.items()]
    for label, staleness, seed in tqdm(jobs, desc="runs", disable=not progress):
        cfg = TrainConfig.build(**{**STUDY_CONFIG, **config, "steps": steps, "seed": seed, "tis_cap": tis_cap})
        if staleness is None:
            trainer = Trainer(cfg, progress=False)
        else:
            trainer = AsyncTrainer(cfg, staleness, progress=False)
        runs.append(trainer.train().assign(method=label, seed=seed))
        if staleness is not None:
            timelines[f"{label}, seed {seed}"] = trainer.timeline_frame()
    return pd.concat(runs, ignore_index=True), timelines
