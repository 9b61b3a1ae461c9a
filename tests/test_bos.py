"""Prompts keep the BOS their tokenizer adds (a model trained with it fails without it), and only that."""

import pytest
import torch
from tokenizers import processors

from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import bos_id, left_pad, prompt_token_ids, rollout
from rl4lrm.sampling import tree_rollout
from rl4lrm.tasks import get_task


def bos_tokenizer():
    """The lab's char tokenizer with a post-processor that puts <bos> in front of every text, as Llama 2's does."""
    tok = char_tokenizer()
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", tok.bos_token_id)]
    )
    assert tok("1+1=")["input_ids"][0] == tok.bos_token_id  # the encoding HF users train with
    return tok


def zoo_prompts():
    prompts = [
        p.prompt
        for name, kw in [("addition", {}), ("countdown", {}), ("chain", {"max_steps": 3})]
        for p in get_task(name, **kw).problems("train", 5, seed=1)
    ]
    return prompts + ["7=", "345+678="]


def test_zoo_prompts_encode_exactly_as_before():
    _, tok, _ = load_base("addition")
    assert tok.bos_token is not None and bos_id(tok) is None  # declared, but its encoding does not add it
    before = tok(zoo_prompts(), padding=True, return_tensors="pt", add_special_tokens=False)  # the old encoding
    ids, mask = left_pad(prompt_token_ids(tok, zoo_prompts()), tok.pad_token_id)
    assert torch.equal(ids, before["input_ids"]) and torch.equal(mask, before["attention_mask"])
    assert ids.dtype == before["input_ids"].dtype and mask.dtype == before["attention_mask"].dtype


def test_zoo_rollouts_sample_exactly_as_before():
    model, tok, _ = load_base("addition")
    prompts = zoo_prompts()[:5]
    batch = rollout(model, tok, prompts, 2, 8, generator=torch.Generator().manual_seed(0))
    before = tok(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    assert torch.equal(batch.prompt_ids, before["input_ids"].repeat_interleave(2, 0))


def test_a_bos_tokenizer_gets_its_bos_once():
    tok = bos_tokenizer()
    bos = tok.bos_token_id
    assert bos_id(tok) == bos
    ids = prompt_token_ids(tok, ["12+34=", "<bos>7=", "5="])
    assert ids == [tok("12+34=")["input_ids"], tok("7=")["input_ids"], tok("5=")["input_ids"]]  # not doubled
    assert ids[1].count(bos) == 1


def test_rollouts_of_a_bos_model_see_the_bos():
    tok = bos_tokenizer()
    model = tiny_model("nano", tok, "llama", seed=0)
    batch = rollout(
        model, tok, ["12+34=", "5="], group_size=2, max_new_tokens=4, generator=torch.Generator().manual_seed(0)
    )
    first = batch.prompt_mask.argmax(-1)  # each row's first real token (left padding)
    assert (batch.prompt_ids[torch.arange(4), first] == tok.bos_token_id).all()
    tree = tree_rollout(
        model,
        tok,
        ["12+34="],
        branching=(2, 2),
        segment_len=2,
        max_new_tokens=4,
        generator=torch.Generator().manual_seed(0),
    )
    assert tree.batch.prompt_ids[0, 0].item() == tok.bos_token_id


@pytest.mark.parametrize("post", [None, "bos"])
def test_tokenizers_without_an_added_bos_get_none(post):
    tok = char_tokenizer()
    tok.bos_token = None if post is None else tok.bos_token  # no BOS at all / a BOS its encoding never adds
    assert bos_id(tok) is None
    assert prompt_token_ids(tok, ["1+1="]) == [tok("1+1=", add_special_tokens=False)["input_ids"]]
