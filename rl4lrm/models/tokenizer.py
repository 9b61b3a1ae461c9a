"""A character-level tokenizer that is a real Hugging Face ``PreTrainedTokenizerFast``.

Tiny models on procedural tasks learn far faster when every digit is its own token (a BPE
vocabulary would merge "12" and "123" into unrelated ids). Building the tokenizer with the
``tokenizers`` library keeps the whole Hugging Face API (``__call__``, padding, ``decode``,
``save_pretrained``), so the same rollout and training code runs on tiny and real models.
"""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}
DEFAULT_CHARS = string.digits + string.ascii_letters + string.punctuation + " \n"


def char_tokenizer(chars: str = DEFAULT_CHARS) -> PreTrainedTokenizerFast:
    """Builds a tokenizer with one token per character of ``chars`` plus four special tokens.

    Args:
        chars: the alphabet. Characters outside it encode as ``<unk>``. Duplicates are ignored.

    Returns:
        A ``PreTrainedTokenizerFast`` with ids 0..3 for ``<pad> <bos> <eos> <unk>`` and left
        padding (what batched generation needs). ``decode(encode(s)) == s`` for any ``s`` over
        ``chars``.
    """
    alphabet = list(dict.fromkeys(chars))
    if not alphabet:
        raise ValueError("chars must contain at least one character, got an empty string")
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS.values())}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    # Every single character (newline included) becomes its own pre-token, so nothing is merged
    # and whitespace survives; Fuse joins tokens back without inserting spaces.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, padding_side="left", **SPECIAL_TOKENS)
    return tokenizer
