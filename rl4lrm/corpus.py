"""Static corpora: problems with reference answers read from files, and the curation RL recipes run on them.

Procedural tasks make endless fresh problems; most RL recipes instead train on a fixed corpus (GSM8K, MATH,
DeepScaleR, ...) and clean it first. Three steps recur (survey §5, training resources):

1. **Deduplication**: the same problem written twice (spacing, case) is one problem; duplicates over-weight it.
2. **Decontamination** against the test set: a training problem that shares an n-gram with a test problem is
   dropped, so held-out accuracy is not inflated by memorised answers (word 8- to 13-gram overlap is the usual
   rule, e.g. Tülu 3, Lambert et al., 2024, arXiv:2411.15124; texts shorter than n are compared whole).
3. **Difficulty filtering** by the base model's pass rate: problems it always solves or never solves give a
   group of equal rewards and so no GRPO signal (DAPO's dynamic sampling drops them online; DeepScaleR and Skywork
   filter offline), so only ``low < pass rate < high`` is kept.

``read_corpus`` loads JSONL, JSON, CSV or Parquet files (nothing is downloaded) or a ``datasets.Dataset``;
``curate`` runs the steps and reports what each dropped and why; ``pass_rates`` measures the base model's pass
rate on each row; ``teaching_corpus`` generates a small addition corpus with known duplicates and leaks to teach
it with (``rl4lrm/data/addition_corpus.jsonl`` is its output, for the zoo's ``addition`` model).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.tasks.base import extract_answer
from rl4lrm.tasks.custom import CustomTask
from rl4lrm.validation import NON_NEGATIVE, UNIT, check_fields, named_keywords

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
NGRAM_UNITS = ("word", "char")
DATA = Path(__file__).parent / "data"


@named_keywords()
@dataclass
class CurationConfig:
    """Which curation steps run and how strict each is."""

    dedupe: bool = True
    """Drop a row whose normalised prompt (case folded, whitespace removed) was seen before; the first stays."""
    ngram: int = 8
    """Decontamination n-gram size; 0 turns decontamination off. A row sharing any n-gram with a test prompt is
    dropped; a text shorter than n counts as one n-gram (compared whole)."""
    ngram_unit: str = "word"
    """``"word"`` (natural-language corpora) or ``"char"`` (the lab's compact prompts such as ``12+34=``)."""
    low: float = 0.0
    """Keep rows whose base pass rate is above this (exclusive): 0 drops the never-solved ones."""
    high: float = 1.0
    """Keep rows whose base pass rate is below this (exclusive): 1 drops the always-solved ones."""

    def __post_init__(self):
        check_fields(self, {"ngram": NON_NEGATIVE, "low": UNIT, "high": UNIT})
        if self.ngram_unit not in NGRAM_UNITS:
            raise ValueError(f"CurationConfig.ngram_unit={self.ngram_unit!r}; choose one of {list(NGRAM_UNITS)}")
        if self.low >= self.high:
            raise ValueError(f"CurationConfig.low={self.low} must be below high={self.high}")


def read_corpus(source, prompt_column: str = "prompt", answer_column: str = "answer") -> list[dict]:
    """Rows of a corpus, each a dict with at least a string ``prompt_column`` and ``answer_column``.

    Args:
        source: a path ending in one of ``SUFFIXES``, a ``datasets.Dataset`` or a list of dicts.

    Raises:
        ValueError: for an unknown file type, a missing column (naming the columns there are) or a non-string cell.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        readers = {
            ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
            ".json": lambda p: pd.read_json(p, dtype=False),
            ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
            ".parquet": pd.read_parquet,
        }
        if path.suffix not in readers:
            raise ValueError(f"cannot read {str(path)!r}: the file type {path.suffix!r} is not one of {list(SUFFIXES)}")
        rows = readers[path.suffix](path).to_dict("records")
    else:
        rows = [dict(row) for row in source]
    for i, row in enumerate(rows):
        for column in (prompt_column, answer_column):
            if column not in row:
                raise ValueError(f"row {i} has no column {column!r}; its columns are {sorted(row)}")
            if not isinstance(row[column], str):
                raise ValueError(f"row {i}: {column!r} must be a string, got {row[column]!r}")
    return rows


def normalise(text: str) -> str:
    """The text as deduplication compares it: case folded, all whitespace removed."""
    return re.sub(r"\s+", "", text.casefold())


def ngrams(text: str, n: int, unit: str = "word") -> set[tuple[str, ...]]:
    """The n-grams of ``text`` (words, case folded, or characters of ``normalise(text)``); a shorter text is one."""
    items = text.casefold().split() if unit == "word" else list(normalise(text))
    if len(items) <= n:
        return {tuple(items)}
    return {tuple(items[i : i + n]) for i in range(len(items) - n + 1)}


@dataclass
class Curated:
    """What ``curate`` kept, and for each dropped row its index in the input, its prompt, the step and the reason."""

    kept: list[dict]
    dropped: pd.DataFrame
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The funnel: one row per step with the rows before, dropped and after it."""


def curate(
    rows: list[dict],
    test_rows: list[dict] | None = None,
    rates: list[float] | None = None,
    config: CurationConfig | None = None,
    prompt_column: str = "prompt",
) -> Curated:
    """Deduplicates, decontaminates against ``test_rows`` and filters by ``rates`` (the base model's pass rate of
    each row, ``pass_rates``); a step whose input is None is skipped. The input rows are not changed.

    Raises:
        ValueError: if ``rates`` does not have one value per row.
    """
    config = config or CurationConfig()
    if rates is not None and len(rates) != len(rows):
        raise ValueError(f"rates has {len(rates)} values for {len(rows)} rows; pass one pass rate per row")
    alive, dropped, counts = list(range(len(rows))), [], []

    def step(name: str, reason) -> None:  # reason(i) -> why row i goes, or None to keep it
        nonlocal alive
        before, keep = len(alive), []
        for i in alive:
            why = reason(i)
            if why is None:
                keep.append(i)
            else:
                dropped.append({"row": i, "prompt": rows[i][prompt_column], "step": name, "reason": why})
        alive = keep
        counts.append({"step": name, "before": before, "dropped": before - len(keep), "after": len(keep)})

    if config.dedupe:
        first: dict[str, int] = {}
        step("dedupe", lambda i: _duplicate(first, normalise(rows[i][prompt_column]), i))
    if config.ngram and test_rows:
        test_grams = set().union(*(ngrams(r[prompt_column], config.ngram, config.ngram_unit) for r in test_rows))
        step(
            "decontaminate",
            lambda i: _overlap(
                ngrams(rows[i][prompt_column], config.ngram, config.ngram_unit),
                test_grams,
                " " if config.ngram_unit == "word" else "",
            ),
        )
    if rates is not None:
        step("pass rate", lambda i: None if config.low < rates[i] < config.high else f"pass rate {rates[i]:.2f}")
    return Curated(
        [rows[i] for i in alive],
        pd.DataFrame(dropped, columns=["row", "prompt", "step", "reason"]),
        pd.DataFrame(counts),
    )


def _duplicate(first: dict[str, int], key: str, i: int) -> str | None:
    if key in first:
        return f"duplicate of row {first[key]}"
    first[key] = i
    return None


def _overlap(grams: set, test_grams: set, joiner: str) -> str | None:
    shared = grams & test_grams
    return f"shares {joiner.join(sorted(shared)[0])!r} with the test set" if shared else None


def exact_answer(prompts, completions, answer, **kwargs) -> list[float]:
    """A TRL-style reward for corpora: 1.0 when a completion's answer (``extract_answer``, up to 32 characters)
    equals the row's reference answer, stripped, else 0.0."""
    return [float(extract_answer(c, 32) == a.strip()) for c, a in zip(completions, answer)]


def corpus_task(rows: list[dict], test_rows: list[dict] | None = None, reward_fn=exact_answer) -> CustomTask:
    """The rows as a task the trainer takes (``CustomTask``, verified by ``reward_fn``); ``test_rows`` held out."""
    return CustomTask(rows, reward_fn, test=test_rows, name="corpus")


def pass_rates(model, tokenizer, rows: list[dict], samples: int = 8, reward_fn=exact_answer, **kwargs) -> list[float]:
    """The share of ``samples`` completions (T = 1) of ``model`` that ``reward_fn`` accepts, for each row in order.

    Args:
        **kwargs: for ``rl4lrm.evaluation.sample_and_verify`` (``max_new_tokens``, ``generator``, ...).
    """
    task = corpus_task(rows, rows[:1], reward_fn)
    counts = sample_and_verify(model, tokenizer, task, task.splits["train"], samples, **kwargs)["correct"]
    return [c / samples for c in counts]


def teaching_corpus(n: int = 400, seed: int = 0, duplicates: float = 0.1, leaks: float = 0.05) -> list[dict]:
    """A 2-digit addition corpus with known flaws: ``duplicates`` of the rows repeat an earlier problem with other
    spacing, ``leaks`` of them are problems of the ``addition`` task's test split. Column ``source`` says which."""
    from rl4lrm.tasks import get_task

    task, rng = get_task("addition", digits=2), random.Random(seed)
    clean = [{"prompt": p.prompt, "answer": p.answer, "source": "train"} for p in task.problems("train", n, seed=seed)]
    leaked = [
        {"prompt": p.prompt, "answer": p.answer, "source": "test leak"} for p in task.problems("test", n, seed=seed)
    ]
    originals = clean[: n - int(n * duplicates) - int(n * leaks)]
    rows = originals + leaked[: int(n * leaks)]
    for _ in range(int(n * duplicates)):
        row = rng.choice(originals)
        rows.append({**row, "prompt": row["prompt"].replace("+", " + ").replace("=", " ="), "source": "duplicate"})
    rng.shuffle(rows)
    return rows


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    """Writes ``rows`` one JSON object per line (UTF-8)."""
    Path(path).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
