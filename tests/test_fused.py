"""The fused training forward (rl4lrm.fused) against the HF model's: log-probs, gradients, the trainer's update."""

import copy

import pytest
import torch

from rl4lrm import fused
from rl4lrm.fused import attention_buckets, distinct_prompts, shared_prompt_logits, supports
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import compute_logprobs, positions_from_mask, rollout
from rl4lrm.trainer import TrainConfig, Trainer, non_finite_parameters


@pytest.fixture(scope="module", params=["addition", "addition-qwen2"])
def setup(request):
    model, tokenizer, task = load_base(request.param)
    prompts = [p.prompt for p in task.problems("train", 6, seed=1)]
    batch = rollout(model, tokenizer, prompts, 4, 8, generator=torch.Generator().manual_seed(0))
    return model, batch


def _hf_logits(model, batch):
    T, mask = batch.completion_ids.shape[1], batch.attention_mask
    out = model(
        input_ids=batch.input_ids,
        attention_mask=mask,
        position_ids=positions_from_mask(mask),
        logits_to_keep=T + 1,
        use_cache=False,
    )
    return out.logits[:, :-1]  # (N, T, V)


def _assert_close_to_scale(got, expected, tol=2e-5, what=""):
    """Equal up to float32 rounding at the tensor's own scale (a summed loss gives gradients of ~10)."""
    err, scale = (got - expected).abs().max().item(), expected.abs().max().item()
    assert err <= tol * scale + 1e-7, f"{what}: max |difference| {err:.3g} at scale {scale:.3g}"


def _loss_and_grads(model, batch, fused: bool):
    """A loss of every completion log-prob and entropy, in the model's dtype; its log-probs and gradients."""
    model.zero_grad(set_to_none=True)
    if fused:
        args = (batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.response_mask)
        logits = shared_prompt_logits(model, *args)  # (N, T, V)
    else:
        logits = _hf_logits(model, batch)  # (N, T, V)
    logp = torch.log_softmax(logits, -1)  # (N, T, V)
    logprobs = logp.gather(-1, batch.completion_ids[..., None])[..., 0] * batch.response_mask  # (N, T)
    entropy = -(logp.exp() * logp).sum(-1) * batch.response_mask  # (N, T)
    weights = torch.linspace(-1, 1, len(logprobs), device=logprobs.device, dtype=logprobs.dtype)[:, None]
    loss = (logprobs * weights).sum() + 0.1 * entropy.sum()
    loss.backward()
    return logprobs.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _assert_equal_in_float64(model, batch):
    """The fused forward's log-probs and gradients equal the HF forward's on a float64 copy of ``model``."""
    net64 = copy.deepcopy(model).double().train()
    lp_ref, g_ref = _loss_and_grads(net64, batch, fused=False)
    lp, g = _loss_and_grads(net64, batch, fused=True)
    _assert_close_to_scale(lp, lp_ref, 2e-5, "log-probs")
    for name in g:
        _assert_close_to_scale(g[name], g_ref[name], 1e-4, name)


def test_the_zoo_models_are_supported(setup):
    model, _ = setup
    assert supports(model)


def test_logits_equal_the_hf_forward(setup):
    model, batch = setup
    assert batch.prompt_mask.min() == 0  # left padding present: prompts of different lengths
    with torch.no_grad():
        expected = _hf_logits(model, batch)
        got = shared_prompt_logits(
            model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.response_mask
        )
    mask = batch.response_mask.bool()
    torch.testing.assert_close(got[mask], expected[mask], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("shuffle", [False, True])
def test_gradients_equal_the_hf_forward(setup, shuffle):
    """In float64 the two forwards agree to 1e-4 of each tensor's scale, mostly 2e-6 (HF keeps its RMSNorm and rotary
    tables in float32): a wrong mask or position would show at O(1). In float32 both are rounding away from that
    float64 reference, the fused forward within 10x of HF's own error (a small gradient such as q_proj's is a
    difference of large terms, so its relative rounding error reaches 1e-4 in both)."""
    model, batch = setup
    if shuffle:  # a minibatch's rows in any order
        batch = batch.select(torch.randperm(len(batch.group_ids), generator=torch.Generator().manual_seed(3)))
    net64 = copy.deepcopy(model).double().train()
    lp_ref, g_ref = _loss_and_grads(net64, batch, fused=False)
    lp64, g64 = _loss_and_grads(net64, batch, fused=True)
    _assert_close_to_scale(lp64, lp_ref, 2e-5, "float64 log-probs")
    model.train()
    lp_hf, g_hf = _loss_and_grads(model, batch, fused=False)
    lp, g = _loss_and_grads(model, batch, fused=True)
    model.eval()
    _assert_close_to_scale(lp, lp_hf, 2e-5, "float32 log-probs")
    assert g.keys() == g_hf.keys() == g_ref.keys()
    for name in g:
        _assert_close_to_scale(g64[name], g_ref[name], 1e-4, f"float64 {name}")
        err_hf = (g_hf[name].double() - g_ref[name]).abs().max().item()
        err = (g[name].double() - g_ref[name]).abs().max().item()
        assert err <= 10 * err_hf + 1e-5 * g_ref[name].abs().max().item(), (name, err, err_hf)


def test_compute_logprobs_takes_the_fused_path(setup):
    model, batch = setup
    with torch.no_grad():
        fused, _ = compute_logprobs(model, batch, fused=True)
        plain, _ = compute_logprobs(model, batch, fused=False)
    _assert_close_to_scale(fused, plain, 1e-5, "log-probs")


def test_one_token_completions(setup):
    """T = 1: only the last prompt position predicts; no completion token is run."""
    model, batch = setup
    one = copy.copy(batch)
    one.completion_ids, one.response_mask = batch.completion_ids[:, :1], batch.response_mask[:, :1]
    with torch.no_grad():
        torch.testing.assert_close(
            compute_logprobs(model, one, fused=True)[0], compute_logprobs(model, one, fused=False)[0], atol=2e-5, rtol=0
        )


def test_distinct_prompts_in_any_order():
    ids = torch.tensor([[0, 5, 6], [7, 8, 9], [0, 5, 6], [7, 8, 9], [3, 5, 6]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1]])
    u_ids, u_mask, inverse = distinct_prompts(ids, mask)
    assert len(u_ids) == 3
    assert torch.equal(u_ids[inverse], ids) and torch.equal(u_mask[inverse], mask)
    big = ids + 2**24  # beyond the hash's range: the row sort takes over
    u_big, _, inv_big = distinct_prompts(big, mask)
    assert len(u_big) == 3 and torch.equal(u_big[inv_big], big)


def test_supports_only_the_plain_llama_and_qwen2_forward():
    gpt2, _, _ = load_base("addition-gpt2")
    assert not supports(gpt2)
    llama, _, _ = load_base("addition")
    llama.config.attention_dropout = 0.1
    llama.train()
    assert not supports(llama)  # dropout while training: the model's own forward
    llama.eval()
    assert supports(llama)


def test_the_trainers_fast_update_matches_the_plain_one():
    """Same seeds, same sampled first batch: losses, gradient norms and weights agree up to rounding."""
    runs = {}
    for fast in (False, True):
        trainer = Trainer(TrainConfig(steps=2, eval_every=0, device="cpu", fast_update=fast), progress=False)
        assert bool(trainer.optimizer.defaults["fused"]) is fast
        runs[fast] = (trainer.train(), trainer.model)
    (h_plain, m_plain), (h_fast, m_fast) = runs[False], runs[True]
    for column in ("loss/total", "grad/norm", "kl/k3", "reward/mean", "entropy/mean"):
        fast, plain = (torch.tensor(h[column].iloc[1:].values) for h in (h_fast, h_plain))
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)
    # AdamW's first steps move each weight by about lr * sign(gradient): an entry whose gradient is rounding
    # noise (~1e-9) may step either way, so a few weights differ by up to 2 * lr per step; nearly all agree
    steps, lr = 2, TrainConfig().lr
    diffs = torch.cat([(p - q).abs().flatten() for p, q in zip(m_fast.parameters(), m_plain.parameters())])
    assert diffs.max() <= 2 * lr * steps + 1e-6
    assert (diffs > 1e-5).float().mean() < 0.01, (diffs > 1e-5).float().mean()


def test_non_finite_parameters_still_names_them():
    model, _, _ = load_base("addition")
    assert non_finite_parameters(model) == []
    with torch.no_grad():
        model.model.layers[1].mlp.up_proj.weight[0, 0] = float("nan")
        model.model.norm.weight[0] = float("inf")
    assert non_finite_parameters(model) == ["model.layers.1.mlp.up_proj.weight", "model.norm.weight"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gradients_equal_the_hf_forward_on_cuda():
    model, tokenizer, task = load_base("addition", device="cuda")
    prompts = [p.prompt for p in task.problems("train", 8, seed=1)]
    batch = rollout(model, tokenizer, prompts, 4, 8, generator=torch.Generator(device="cuda").manual_seed(0))
    model.train()
    lp_hf, g_hf = _loss_and_grads(model, batch, fused=False)
    lp, g = _loss_and_grads(model, batch, fused=True)
    torch.testing.assert_close(lp, lp_hf, atol=1e-4, rtol=1e-4)
    for name in g:
        _assert_close_to_scale(g[name], g_hf[name], tol=1e-4, what=name)


@pytest.mark.parametrize("bucket_rows", [32, 4])
def test_packed_completions_of_very_different_lengths(setup, bucket_rows, monkeypatch):
    """Most rows cut to 1-2 tokens: only the tokens a real token follows run (the packed path), and with 4 rows per
    bucket the attention runs in 6 length buckets; log-probs and gradients still equal the HF forward's (float64)."""
    monkeypatch.setattr(fused, "BUCKET_ROWS", bucket_rows)
    monkeypatch.setattr(fused, "MIN_SAVING", 0.0)  # split whatever it saves
    model, batch = setup
    short = copy.copy(batch)
    lengths = torch.where(
        torch.arange(len(batch.group_ids)) % 4 == 0,
        batch.response_mask.sum(-1),
        1 + torch.arange(len(batch.group_ids)) % 2,
    )
    short.response_mask = (torch.arange(batch.response_mask.shape[1])[None] < lengths[:, None]).float()
    short.completion_ids = batch.completion_ids.masked_fill(short.response_mask == 0, 0)
    _assert_equal_in_float64(model, short)


def test_attention_buckets_sort_rows_by_length_and_drop_empty_rows(monkeypatch):
    monkeypatch.setattr(fused, "BUCKET_ROWS", 2)
    queries = torch.tensor([5, 0, 1, 9, 3, 0, 7, 2])
    buckets = attention_buckets(queries, 4)
    assert [(b.tolist(), w) for b, w in buckets] == [([2, 7], 2), ([4, 0], 5), ([6, 3], 9)]  # 6 rows, 3 buckets of 2
    monkeypatch.setattr(fused, "MAX_BUCKETS", 2)
    assert [(len(b), w) for b, w in attention_buckets(queries, 4)] == [(3, 3), (3, 9)]
    assert attention_buckets(torch.zeros(4, dtype=torch.long), 4) == []
    # work 2*3*7 + 2*4*8 = 106 of one bucket's 4*4*8 = 128: a saving under MIN_SAVING (a quarter) keeps one bucket
    assert [(b.tolist(), w) for b, w in attention_buckets(torch.tensor([3, 4, 3, 4]), 4)] == [([0, 2, 1, 3], 4)]


@pytest.mark.parametrize("bucket_rows", [32, 4])
def test_gradients_in_length_buckets_on_a_dense_batch(setup, bucket_rows, monkeypatch):
    """A batch whose rows all run (no packing) in one or 6 buckets: the HF forward's gradients (float64)."""
    monkeypatch.setattr(fused, "BUCKET_ROWS", bucket_rows)
    monkeypatch.setattr(fused, "MIN_SAVING", 0.0)  # split whatever it saves
    model, batch = setup
    _assert_equal_in_float64(model, batch)
