"""rl4lrm.corpus: reading corpora from files, deduplication, decontamination, pass-rate filtering."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from rl4lrm.corpus import (
    DATA,
    CurationConfig,
    curate,
    exact_answer,
    ngrams,
    normalise,
    pass_rates,
    read_corpus,
    teaching_corpus,
)

ROWS = [
    {"prompt": "What is two plus three?", "answer": "5"},
    {"prompt": "what is  two plus three ?", "answer": "5"},  # a duplicate: case and spacing
    {"prompt": "Sam has four apples and eats one", "answer": "3"},
    {"prompt": "Name the largest prime below ten", "answer": "7"},
]
TEST = [{"prompt": "Ann has four apples and eats two", "answer": "2"}]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_read_corpus_reads_each_file_type_the_same(tmp_path, suffix):
    path, frame = tmp_path / f"c{suffix}", pd.DataFrame(ROWS)
    {
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
        ".json": lambda: frame.to_json(path, orient="records"),
        ".csv": lambda: frame.to_csv(path, index=False),
        ".parquet": lambda: frame.to_parquet(path),
    }[suffix]()
    assert read_corpus(path) == ROWS == read_corpus(ROWS)


def test_read_corpus_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"'.txt' is not one of \['.jsonl', '.json', '.csv', '.parquet'\]"):
        read_corpus(tmp_path / "c.txt")
    with pytest.raises(ValueError, match=r"row 1 has no column 'answer'; its columns are \['prompt', 'solution'\]"):
        read_corpus([ROWS[0], {"prompt": "x", "solution": "1"}])
    with pytest.raises(ValueError, match=r"row 0: 'answer' must be a string, got 5"):
        read_corpus([{"prompt": "x", "answer": 5}])


def test_normalise_and_ngrams_by_hand():
    assert normalise(" What IS\t2 + 3 ") == "whatis2+3"
    assert ngrams("a b c d", 3) == {("a", "b", "c"), ("b", "c", "d")}
    assert ngrams("a b", 3) == {("a", "b")}  # shorter than n: compared whole
    assert ngrams("12+3=", 4, "char") == {tuple("12+3"), tuple("2+3=")}


def test_curate_drops_duplicates_leaks_and_rows_without_signal_and_says_why():
    rows = [dict(r) for r in ROWS]
    out = curate(rows, TEST, rates=[0.5, 0.5, 0.25, 1.0], config=CurationConfig(ngram=4))
    assert [r["prompt"] for r in out.kept] == [ROWS[0]["prompt"]]
    assert out.dropped[["row", "step"]].values.tolist() == [[1, "dedupe"], [2, "decontaminate"], [3, "pass rate"]]
    assert out.dropped["reason"].tolist() == [
        "duplicate of row 0",
        "shares 'four apples and eats' with the test set",
        "pass rate 1.00",
    ]
    assert out.counts[["before", "dropped", "after"]].values.tolist() == [[4, 1, 3], [3, 1, 2], [2, 1, 1]]
    assert rows == ROWS  # the input is not changed


def test_curate_bounds_are_exclusive_and_steps_can_be_skipped():
    rates = [0.0, 0.5, 1.0, 0.1]
    out = curate(ROWS, rates=rates, config=CurationConfig(dedupe=False, low=0.0, high=1.0))
    assert [ROWS.index(r) for r in out.kept] == [1, 3]
    assert out.counts["step"].tolist() == ["pass rate"]  # no test rows: no decontamination step
    assert len(curate(ROWS, TEST, config=CurationConfig(ngram=0, dedupe=False)).kept) == 4
    with pytest.raises(ValueError, match="rates has 2 values for 4 rows"):
        curate(ROWS, rates=[0.5, 0.5])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ngram_unit": "token"}, r"ngram_unit='token'; choose one of \['word', 'char'\]"),
        ({"low": 0.6, "high": 0.5}, "low=0.6 must be below high=0.5"),
        ({"ngram": -1}, "ngram"),
        ({"high": 1.5}, "high"),
    ],
)
def test_curation_config_names_the_bad_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        CurationConfig(**settings)


def test_the_shipped_teaching_corpus_is_the_generator_output_with_its_known_flaws():
    shipped = read_corpus(DATA / "addition_corpus.jsonl")
    assert shipped == json.loads(json.dumps(teaching_corpus()))
    sources = pd.Series([r["source"] for r in shipped]).value_counts().to_dict()
    assert sources == {"train": 340, "duplicate": 40, "test leak": 20}
    from rl4lrm.tasks import get_task

    test = [{"prompt": p.prompt, "answer": p.answer} for p in get_task("addition", digits=2).problems("test", 2000)]
    out = curate(shipped, test, config=CurationConfig(ngram_unit="char"))
    assert out.counts["dropped"].tolist() == [40, 20]
    assert {shipped[i]["source"] for i in out.dropped.query("step == 'decontaminate'")["row"]} == {"test leak"}


def test_pass_rates_count_what_the_reference_answer_accepts():
    from rl4lrm.models.zoo import load_base

    model, tokenizer, _ = load_base("addition")
    rows = [{"prompt": "12+34=", "answer": "46"}, {"prompt": "12+34=", "answer": "not a number"}]
    rates = pass_rates(model, tokenizer, rows, samples=16, max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    assert rates[1] == 0.0 and 0.0 < rates[0] <= 1.0 and (rates[0] * 16).is_integer()
    assert exact_answer(["p", "p"], [" 46\n", "45"], ["46", "46"]) == [1.0, 0.0]
