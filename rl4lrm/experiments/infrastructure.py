"""Notebook 10's studies (survey §5, training resources): where problems come from and how the loop is run.

- ``curation_study``: the shipped teaching corpus (``rl4lrm/data/addition_corpus.jsonl``) through ``curate``:
  deduplication, character n-gram decontamination against the ``addition`` task's test split, and the pass-rate
  band measured on the zoo's ``addition`` base model;
- ``corpus_runs``: GRPO from that base model on several corpora (raw, curated, ...), held out on the test split;
- ``staleness_study``: the synchronous loop against ``AsyncTrainer`` at several staleness bounds, with each async
  run's timeline (who waited on whom);
- ``model_precision_gaps``, ``precision_gaps`` and ``precision_study``: sampling in a lower precision than the
  learner's (the training-inference mismatch): how far apart the two policies are, and GRPO with and without its
  correction.
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from rl4lrm.async_rl import AsyncTrainer
from rl4lrm.corpus import DATA, Curated, CurationConfig, corpus_task, curate, pass_rates, read_corpus
from rl4lrm.models.zoo import load_base
from rl4lrm.real.measure import rollout_speed, sampler_gap
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


PRECISION_ARMS = {"float32": ("float32", 0.0), "bfloat16": ("bfloat16", 0.0), "bfloat16 + TIS": ("bfloat16", 2.0)}
"""``precision_study``'s arms: ``{label: (rollout_precision, tis_cap)}``."""


def model_precision_gaps(
    label: str,
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    precisions=("float32", "bfloat16", "float16"),
    group_size: int = 8,
    repeats: int = 3,
) -> pd.DataFrame:
    """One model sampled in each precision: rollout speed and the gap to the model's own (learner) forward.

    The precisions take turns within each repeat (the order flipping every repeat), each repeat with its own seed;
    the speed is the median over repeats, and the gap (``rl4lrm.real.measure.sampler_gap``) is measured on every
    repeat's batch and averaged (its ``max |d|`` is the largest over the repeats).

    Returns:
        One row per precision: ``model`` (``label``), ``precision``, ``tokens/s``, ``x float32`` (the speed ratio to
        float32 in the same run, when float32 is one of ``precisions``), ``mean length`` and the gap's ``kl``,
        ``mean |d|``, ``max |d|`` and ``seq ratio range``.
    """
    rollout_speed(model, tokenizer, prompts, group_size, max_new_tokens)  # warm-up: the KV buffers, first allocations
    measured = {precision: [] for precision in precisions}
    for r in range(repeats):
        for precision in precisions if r % 2 == 0 else precisions[::-1]:
            speed, batch = rollout_speed(
                model, tokenizer, prompts, group_size, max_new_tokens, seed=r, precision=precision
            )
            measured[precision].append({**speed, **sampler_gap(model, batch)})
    rows = []
    for precision, runs in measured.items():
        runs = pd.DataFrame(runs)
        rows.append(
            {
                "model": label,
                "precision": precision,
                "tokens/s": (runs["tokens"] / runs["seconds"]).median(),
                "mean length": runs["mean_length"].mean(),
                "kl": runs["kl"].mean(),
                "mean |d|": runs["mean_abs"].mean(),
                "max |d|": runs["max_abs"].max(),
                "seq ratio range": runs["seq_ratio_range"].mean(),
            }
        )
    table = pd.DataFrame(rows)
    if "float32" in precisions:
        table.insert(3, "x float32", table["tokens/s"] / table.set_index("precision").loc["float32", "tokens/s"])
    return table


def precision_gaps(
    models=("addition", "countdown-search"),
    prompts: int = 16,
    progress: bool = True,
    max_new_tokens: dict[str, int] | None = None,
    device: str = "cpu",
    **settings,
) -> pd.DataFrame:
    """``model_precision_gaps`` for zoo base models, on ``prompts`` test problems of each one's task.

    Args:
        models: zoo entries.
        prompts: B test problems (G samples each: ``group_size``).
        progress: a bar over the models.
        max_new_tokens: the length cap by model (default: 16, and 192 for ``countdown-search``).
        device: where the models sample and the learner recomputes (``"cpu"``, ``"cuda"``).
        **settings: ``model_precision_gaps``'s ``precisions``, ``group_size`` and ``repeats``.

    Returns:
        The models' tables, one after the other.
    """
    caps = {"countdown-search": 192, **(max_new_tokens or {})}
    tables = []
    for name in tqdm(models, desc="models", disable=not progress):
        model, tokenizer, task = load_base(name, device=device)
        texts = [task.format_prompt(p, "plain", tokenizer) for p in task.problems("test", prompts, seed=0)]
        tables.append(model_precision_gaps(name, model, tokenizer, texts, caps.get(name, 16), **settings))
    return pd.concat(tables, ignore_index=True)


def precision_study(
    arms: dict[str, tuple[str, float]] | None = None,
    seeds=(0,),
    steps: int = 30,
    progress: bool = True,
    **config,
) -> pd.DataFrame:
    """GRPO on the ``addition`` base model with the rollouts in each arm's precision, one run per (arm, seed).

    Args:
        arms: ``{label: (rollout_precision, tis_cap)}`` (default ``PRECISION_ARMS``: float32, bfloat16 uncorrected,
            bfloat16 with truncated importance weights capped at 2).
        seeds: the seeds of every arm.
        steps: training steps of each run.
        progress: a bar over the runs.
        **config: ``TrainConfig`` fields over ``STUDY_CONFIG``.

    Returns:
        The histories with ``method`` (the arm's label) and ``seed`` columns; a lowered arm logs the mismatch of
        every batch as ``offpolicy/kl`` (and ``is/mean``, ``is/frac_truncated`` with the correction).
    """
    runs = []
    jobs = [(label, seed) for seed in seeds for label in arms or PRECISION_ARMS]
    for label, seed in tqdm(jobs, desc="runs", disable=not progress):
        precision, cap = (arms or PRECISION_ARMS)[label]
        settings = {**STUDY_CONFIG, **config, "steps": steps, "seed": seed}
        cfg = TrainConfig.build(**settings, rollout_precision=precision, tis_cap=cap)
        runs.append(Trainer(cfg, progress=False).train().assign(method=label, seed=seed))
    return pd.concat(runs, ignore_index=True)
