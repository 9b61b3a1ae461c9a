"""The rollout engine: agreement with a training-mode forward and with model.generate, masks, seeds."""

import warnings

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rl4lrm.decoding import positions_from_mask, sample_tokens
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import (
    completion_logits,
    compute_logprobs,
    concat_batches,
    rollout,
    rollout_ids,
)

PROMPTS = ["12+34=", "1+2=", "345+678=", "7="]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module")
def zoo():
    return load_base("addition")


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_fast_and_hf_engines_agree_greedy(tok, arch):
    model = tiny_model("nano", tok, arch, seed=1)
    a = rollout(model, tok, PROMPTS, group_size=2, max_new_tokens=10, temperature=0, engine="fast")
    b = rollout(model, tok, PROMPTS, group_size=2, max_new_tokens=10, temperature=0, engine="hf")
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert (a.old_logprobs - b.old_logprobs).abs().max() < 1e-5


@pytest.mark.parametrize("engine", ["fast", "hf"])
def test_sampling_logprobs_match_training_forward(zoo, engine):
    model, tok, _ = zoo
    gen = torch.Generator().manual_seed(0)
    batch = rollout(model, tok, PROMPTS, group_size=8, max_new_tokens=12, temperature=0.7, generator=gen, engine=engine)
    model.train()
    recomputed, entropy = compute_logprobs(model, batch, with_entropy=True)
    model.eval()
    assert (recomputed - batch.old_logprobs).abs().max() < 1e-4
    assert (entropy >= -1e-6).all() and (entropy * (1 - batch.response_mask)).abs().max() == 0


def test_greedy_matches_model_generate(zoo):
    model, tok, _ = zoo
    batch = rollout(model, tok, PROMPTS, group_size=1, max_new_tokens=8, temperature=0)
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    out = model.generate(**enc, do_sample=False, max_new_tokens=8, pad_token_id=tok.pad_token_id)
    expected = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert batch.completions == expected


def test_masks_groups_and_truncation(zoo, tok):
    model, tok, _ = zoo
    batch = rollout(model, tok, PROMPTS, group_size=3, max_new_tokens=6, generator=torch.Generator().manual_seed(1))
    N = len(PROMPTS) * 3
    assert batch.completion_ids.shape[0] == N and batch.group_ids.tolist() == [i // 3 for i in range(N)]
    eos = tok.eos_token_id
    for row in range(N):
        ids, mask = batch.completion_ids[row], batch.response_mask[row]
        n = int(mask.sum())
        assert mask[:n].eq(1).all() and mask[n:].eq(0).all()  # a prefix of ones
        assert ids[n:].eq(tok.pad_token_id).all() and (batch.old_logprobs[row, n:] == 0).all()
        ended = bool((ids[:n] == eos).any())
        assert ended == (ids[n - 1] == eos).item()  # EOS, when present, is the last masked token
        assert batch.truncated[row].item() == (not ended)
    # a random model almost never samples EOS: its rows hit the cap and are flagged
    rand = tiny_model("nano", tok, seed=3)
    capped = rollout(rand, tok, PROMPTS, group_size=2, max_new_tokens=5, temperature=0)
    assert capped.truncated.all() and capped.response_mask.sum(-1).eq(5).all()


def test_same_generator_seed_same_samples(zoo):
    model, tok, _ = zoo
    a = rollout(model, tok, PROMPTS, 4, 8, generator=torch.Generator().manual_seed(7))
    b = rollout(model, tok, PROMPTS, 4, 8, generator=torch.Generator().manual_seed(7))
    c = rollout(model, tok, PROMPTS, 4, 8, generator=torch.Generator().manual_seed(8))
    assert a.completions == b.completions and a.completions != c.completions


def test_reused_cache_buffers_give_the_same_samples(zoo):
    """The CPU engine keeps its KV buffers between rollouts and slices them: a bigger rollout in between, which
    grows them, and a smaller one, which uses a corner of them, must not change what a seed samples."""
    model, tok, _ = zoo
    first = rollout(model, tok, PROMPTS, 4, 8, generator=torch.Generator().manual_seed(7))
    rollout(model, tok, PROMPTS * 8, 8, 20, generator=torch.Generator().manual_seed(1))
    rollout(model, tok, PROMPTS[:1], 2, 3, generator=torch.Generator().manual_seed(2))
    again = rollout(model, tok, PROMPTS, 4, 8, generator=torch.Generator().manual_seed(7))
    assert again.completions == first.completions and torch.equal(again.old_logprobs, first.old_logprobs)


def test_tiny_top_p_is_greedy():
    logits = torch.randn(64, 20)
    tokens, logprobs = sample_tokens(logits, 1.0, 1e-6, torch.Generator().manual_seed(0))
    assert torch.equal(tokens, logits.argmax(-1))
    assert torch.allclose(logprobs, torch.log_softmax(logits, -1).max(-1).values)


def test_sampling_frequencies_follow_the_distribution():
    probs = torch.tensor([0.1, 0.6, 0.3])
    logits = probs.log().expand(200_000, 3)
    tokens, _ = sample_tokens(logits, 1.0, 1.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(tokens, minlength=3).float() / len(tokens)
    assert torch.allclose(freq, probs, atol=5e-3)


def test_other_architectures_use_the_hf_engine(tok):
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=1,
        n_head=2,
        n_positions=64,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    batch = rollout(model, tok, PROMPTS, 2, 6, generator=torch.Generator().manual_seed(0))
    recomputed, _ = compute_logprobs(model, batch)
    assert (recomputed - batch.old_logprobs).abs().max() < 1e-4
    with pytest.raises(ValueError, match="gpt2"):
        rollout(model, tok, PROMPTS, 2, 6, engine="fast")


def test_positions_start_at_first_real_token():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert positions_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(prompts=[]), "prompts is empty"),
        (dict(group_size=0), "group_size"),
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(engine="vllm"), "'vllm'"),
    ],
)
def test_bad_arguments_are_rejected(tok, kwargs, fragment):
    model = tiny_model("nano", tok)
    args = dict(prompts=PROMPTS, group_size=2, max_new_tokens=4) | kwargs
    with pytest.raises(ValueError, match=fragment):
        rollout(model, tok, **args)


@pytest.mark.parametrize("engine", ["fast", "hf"])
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_lower_precision_samples_a_nearby_policy(zoo, engine, precision):
    """A lowered sampler really computes in its precision (its log-probs leave float32's 1e-4 agreement) and
    still samples nearly the learner's policy; float32 afterwards is untouched (the kept KV buffers change dtype)."""
    model, tok, _ = zoo
    sample = dict(group_size=8, max_new_tokens=12, temperature=0.7, engine=engine)
    low = rollout(model, tok, PROMPTS, **sample, generator=torch.Generator().manual_seed(0), precision=precision)
    learner, _ = compute_logprobs(model, low)
    gap = (learner - low.old_logprobs).abs() * low.response_mask  # (N, T)
    assert 1e-3 < gap.max() < 0.5
    assert gap.sum() / low.response_mask.sum() < 0.02
    auto = rollout(model, tok, PROMPTS, **sample, generator=torch.Generator().manual_seed(0))
    full = rollout(model, tok, PROMPTS, **sample, generator=torch.Generator().manual_seed(0), precision="float32")
    assert torch.equal(auto.completion_ids, full.completion_ids) and torch.equal(auto.old_logprobs, full.old_logprobs)
    assert (compute_logprobs(model, full)[0] - full.old_logprobs).abs().max() < 1e-4


def test_precisions_a_sampler_cannot_run_are_refused(zoo, tok):
    model, _, _ = zoo
    with pytest.raises(ValueError, match=r"precision 'fp8'.*\['auto', 'float32', 'bfloat16', 'float16'\]"):
        rollout(model, tok, PROMPTS, 2, 4, precision="fp8")
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2)).to(torch.bfloat16)
    with pytest.raises(ValueError, match="above the model's torch.bfloat16.*'hf' engine only lowers"):
        rollout(gpt2, tok, PROMPTS, 2, 4, precision="float32")
    with pytest.raises(ValueError, match="_ShiftedPolicy samples with its own sampler"):
        rollout(_ShiftedPolicy(model), tok, PROMPTS, 2, 4, precision="bfloat16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bfloat16_sampling_stays_near_the_float32_learner(zoo):
    model, tok, _ = zoo
    model = model.cuda()
    gen = torch.Generator("cuda").manual_seed(0)
    batch = rollout(model, tok, PROMPTS, 8, 12, generator=gen, precision="bfloat16")
    gap = (compute_logprobs(model, batch)[0] - batch.old_logprobs).abs() * batch.response_mask
    assert gap.max() < 0.5 and gap.sum() / batch.response_mask.sum() < 0.02
    model.cpu()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rollout_matches_training_forward(zoo):
    model, tok, _ = zoo
    model = model.cuda()
    batch = rollout(model, tok, PROMPTS, 8, 12, generator=torch.Generator("cuda").manual_seed(0))
    recomputed, _ = compute_logprobs(model, batch)
    assert (recomputed - batch.old_logprobs).abs().max() < 1e-3
    model.cpu()


class _ShiftedPolicy(torch.nn.Module):
    """A non-causal policy stand-in: samples with the wrapped causal LM, records a per-row aux tensor, and scores
    completions with logits shifted by that tensor — enough to check that the hooks are used and aux travels."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def sample_rollout(
        self, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
    ):
        self.calls.append("sample_rollout")
        batch = rollout_ids(
            self.inner, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
        )
        batch.aux = {"shift": torch.arange(len(batch.group_ids), dtype=torch.float32)}
        return batch

    def completion_logits(self, batch, temperature):
        self.calls.append("completion_logits")
        logits, _ = completion_logits(self.inner, batch, temperature)
        logits = logits.clone()
        logits[..., 0] += 10 * batch.aux["shift"][:, None]  # (N, T): only token 0 (pad) moves, row by row
        return logits, torch.logsumexp(logits, -1)


def test_non_causal_policies_plug_in_through_the_hooks(zoo):
    model, tok, _ = zoo
    policy = _ShiftedPolicy(model)
    batch = rollout(
        policy,
        tok,
        PROMPTS,
        group_size=2,
        max_new_tokens=6,
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert policy.calls == ["sample_rollout"] and batch.aux["shift"].tolist() == list(range(8))
    logprobs, _ = compute_logprobs(policy, batch)
    plain, _ = compute_logprobs(model, batch)
    assert policy.calls[-1] == "completion_logits"
    assert torch.allclose(logprobs[0], plain[0], atol=1e-5)  # row 0 has shift 0
    assert not torch.allclose(logprobs[5], plain[5], atol=1e-3)  # the aux tensor reached the scoring
    sub = batch.select(torch.tensor([5, 1]))
    assert sub.aux["shift"].tolist() == [5.0, 1.0]
    both = concat_batches([batch, sub], tok.pad_token_id)
    assert both.aux["shift"].tolist() == list(range(8)) + [5.0, 1.0]
    with pytest.raises(ValueError, match="same aux"):
        concat_batches([batch, rollout(model, tok, PROMPTS[:1], 2, 4)], tok.pad_token_id)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_hf_engine_passes_the_cache_under_the_name_transformers_wants(tok, arch):
    # transformers 5.2x renamed past_key_values to cache and warns (FutureWarning) on the old name
    model = (
        tiny_model("nano", tok, seed=1)
        if arch == "llama"
        else GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tok),
                n_positions=64,
                n_embd=32,
                n_layer=1,
                n_head=2,
                bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id,
            )
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = rollout(model, tok, PROMPTS, group_size=2, max_new_tokens=4, engine="hf")
    assert batch.completion_ids.shape[0] == 8
