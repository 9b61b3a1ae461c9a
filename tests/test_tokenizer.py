"""Tests for rl4lrm.models.tokenizer: one id per character, special ids, left padding, save/load."""

import random

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from rl4lrm.models.tokenizer import DEFAULT_CHARS, SPECIAL_TOKENS, char_tokenizer

# strings that break tokenizers which strip, merge or "clean up" whitespace and punctuation
EDGE_CASES = [
    "",
    " ",
    "\n",
    "  \n\n  ",
    "a .",
    "x , y",
    "do n't",
    "I 'm",
    " ?",
    "12+34=46",
    "(3*4)-5\n<answer>7</answer>",
]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def random_strings(n, seed=0, max_len=40, chars=DEFAULT_CHARS):
    rng = random.Random(seed)
    return ["".join(rng.choice(chars) for _ in range(rng.randrange(max_len))) for _ in range(n)]


def test_is_a_fast_hf_tokenizer(tok):
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert tok.padding_side == "left"


def test_special_tokens_have_ids_0_to_3(tok):
    assert [tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS.values())) == [0, 1, 2, 3]


def test_one_distinct_id_per_character(tok):
    assert len(tok) == 4 + len(DEFAULT_CHARS)
    ids = [tok(c, add_special_tokens=False)["input_ids"] for c in DEFAULT_CHARS]
    assert all(len(i) == 1 for i in ids), [c for c, i in zip(DEFAULT_CHARS, ids) if len(i) != 1]
    flat = [i[0] for i in ids]
    assert len(set(flat)) == len(DEFAULT_CHARS)
    assert min(flat) >= 4  # no character collides with a special token
    assert tok.unk_token_id not in flat


@pytest.mark.parametrize("text", EDGE_CASES)
def test_round_trip_edge_cases(tok, text):
    ids = tok(text)["input_ids"]  # default add_special_tokens: the char tokenizer adds none
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_round_trip_random_strings(tok):
    for text in random_strings(500):
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text), repr(text)
        assert tok.unk_token_id not in ids, repr(text)
        assert tok.decode(ids) == text, repr(text)
        assert tok.decode(tok.encode(text)) == text, repr(text)
    # the batch API decodes the same way
    texts = random_strings(50, seed=3)
    assert tok.batch_decode(tok(texts)["input_ids"]) == texts


def test_decode_skips_special_tokens_on_request(tok):
    ids = (
        [tok.bos_token_id] + tok("7+8=15", add_special_tokens=False)["input_ids"] + [tok.eos_token_id, tok.pad_token_id]
    )
    assert tok.decode(ids, skip_special_tokens=True) == "7+8=15"
    assert tok.decode(ids) == "<bos>7+8=15<eos><pad>"


def test_unknown_characters_map_to_unk(tok):
    ids = tok("a€b\tç", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("a") and ids[2] == tok.convert_tokens_to_ids("b")
    assert ids[1] == ids[3] == ids[4] == tok.unk_token_id == 3
    assert len(ids) == 5


def test_custom_alphabet_ignores_duplicates_and_maps_the_rest_to_unk():
    tok = char_tokenizer("abca")
    assert len(tok) == 4 + 3
    assert tok("abc", add_special_tokens=False)["input_ids"] == [4, 5, 6]
    assert tok("adb", add_special_tokens=False)["input_ids"] == [4, 3, 5]
    assert tok.decode([4, 5, 6]) == "abc"


def test_batch_encoding_pads_on_the_left(tok):
    batch = tok(["ab", "abcd", "x"], padding=True)
    a, b = tok("ab")["input_ids"], tok("abcd")["input_ids"]
    x = tok("x")["input_ids"]
    assert batch["input_ids"] == [[0, 0] + a, b, [0, 0, 0] + x]
    assert batch["attention_mask"] == [[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]]
    pt = tok(["ab", "abcd"], padding=True, return_tensors="pt")
    assert pt["input_ids"].shape == (2, 4) and pt["input_ids"][0, :2].tolist() == [0, 0]


@pytest.mark.parametrize("loader", [PreTrainedTokenizerFast, AutoTokenizer])
def test_save_and_reload_keeps_ids(tok, tmp_path, loader):
    tok.save_pretrained(tmp_path)
    again = loader.from_pretrained(tmp_path)
    assert isinstance(again, PreTrainedTokenizerFast)
    assert again.padding_side == "left"
    assert [again.pad_token_id, again.bos_token_id, again.eos_token_id, again.unk_token_id] == [0, 1, 2, 3]
    assert again.get_vocab() == tok.get_vocab()
    texts = EDGE_CASES + random_strings(50, seed=1) + ["a€b"]
    for text in texts:
        assert again(text)["input_ids"] == tok(text)["input_ids"], text
        assert again.decode(again(text)["input_ids"]) == tok.decode(tok(text)["input_ids"])
    assert again(texts, padding=True)["input_ids"] == tok(texts, padding=True)["input_ids"]


def test_empty_alphabet_is_rejected():
    with pytest.raises(ValueError, match="chars.*empty"):
        char_tokenizer("")
