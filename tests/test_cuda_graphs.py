"""The CUDA-graph engine: its static step (run eagerly on the CPU) against the fast engine, the decoder kept between
rollouts, and (gpu-marked) the captured graphs on CUDA."""

import gc
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import GPT2Config, GPT2LMHeadModel

from rl4lrm import cuda_graphs
from rl4lrm.cuda_graphs import _KEPT, GraphDecoder, bucket, graph_decoder, graph_rollout, step_ops
from rl4lrm.decoding import fast_rollout
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import compute_logprobs, left_pad, prompt_token_ids, rollout

PROMPTS = ["12+34=", "1+2=", "345+678=", "7="]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def both_engines(model, tok, prompts, group_size, max_new_tokens, seed=0, dtype=torch.float32):
    """(fast engine, graph engine) outputs: tokens, log-probs, mask, truncated, from the same seed."""
    ids, mask = left_pad(prompt_token_ids(tok, prompts), tok.pad_token_id, next(model.parameters()).device)
    args = (ids, mask, group_size, max_new_tokens, tok.eos_token_id, tok.pad_token_id, 1.0, 1.0)
    device = ids.device
    with torch.no_grad():
        fast = fast_rollout(model, *args, torch.Generator(device).manual_seed(seed), dtype)
        graph = graph_rollout(model, *args, torch.Generator(device).manual_seed(seed), dtype)
    return fast, graph


def _agree(fast, graph, tol=1e-5):
    assert torch.equal(fast[0], graph[0]) and torch.equal(fast[2], graph[2]) and torch.equal(fast[3], graph[3])
    assert (fast[1] - graph[1]).abs().max() < tol


def test_buckets_are_powers_of_two_capped_by_the_rows():
    assert [bucket(n, 64) for n in (1, 8, 9, 16, 17, 33, 64)] == [8, 8, 16, 16, 32, 64, 64]
    assert bucket(5, 6) == 6 and bucket(40, 48) == 48


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_static_step_samples_what_the_fast_engine_samples(tok, arch):
    """Random weights: rows stop at scattered steps, so rows are dropped and buckets hold rows past the live ones."""
    model = tiny_model("nano", tok, arch, seed=3).eval()
    fast, graph = both_engines(model, tok, PROMPTS, group_size=6, max_new_tokens=20)
    lengths = fast[2].sum(1)
    assert lengths.min() < lengths.max()  # the batch shrank on the way
    _agree(fast, graph)


def test_buckets_shrink_with_the_rows_still_decoding(monkeypatch):
    """Search traces end anywhere from a few tokens to the cap: the step moves down through the buckets, each
    holding rows past the live ones, and samples exactly what the fast engine samples."""
    used = []
    monkeypatch.setattr(cuda_graphs, "bucket", lambda n, rows: used.append(bucket(n, rows)) or bucket(n, rows))
    model, tok, task = load_base("countdown-search")
    prompts = [task.format_prompt(p) for p in task.problems("test", 16)]
    _agree(*both_engines(model, tok, prompts, 8, 96))
    assert used[0] == 128 and {8, 16, 32, 64} <= set(used)


def test_static_step_in_bfloat16_matches_the_fast_engine(tok):
    model, tok, _ = load_base("addition")
    fast, graph = both_engines(model, tok, PROMPTS, 8, 12, dtype=torch.bfloat16)
    assert (fast[1] - graph[1]).abs().max() < 0.05  # bf16 rounding of a different reduction order
    assert (fast[0] == graph[0]).float().mean() > 0.9


def test_kept_decoder_follows_the_weights_and_grows(tok):
    model = tiny_model("nano", tok, "llama", seed=4).eval()
    both_engines(model, tok, PROMPTS, 8, 12)
    kept = _KEPT[model]
    with torch.no_grad():  # what an optimizer step does: the parameters change in place
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    fast, graph = both_engines(
        model, tok, PROMPTS[:3], 4, 12, seed=1
    )  # smaller: the same decoder, rows past N decode too
    assert _KEPT[model] is kept
    _agree(fast, graph)
    # new parameter tensors altogether (the embedding table included), as load_state_dict(assign=True) makes them
    model.load_state_dict({k: v + 0.05 * torch.randn_like(v) for k, v in model.state_dict().items()}, assign=True)
    fast, graph = both_engines(model, tok, PROMPTS, 8, 12, seed=3)
    assert _KEPT[model] is kept
    _agree(fast, graph)
    fast, graph = both_engines(model, tok, PROMPTS * 3, 4, 30, seed=2)  # wider and longer: a new, grown decoder
    assert _KEPT[model] is not kept and (_KEPT[model].rows, _KEPT[model].slots) == (48, 8 + 30)
    _agree(fast, graph)


def test_kept_decoder_owns_its_tensors_and_lets_the_model_go(tok):
    model = tiny_model("nano", tok, "llama", seed=5).eval()
    dec = graph_decoder(model, 8, 16, torch.float32).dec
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    mine = [x for block in dec.blocks for x in block if isinstance(x, torch.Tensor)]
    mine += [dec.lm_head[0], dec.embed_tokens.weight, dec.k, dec.v]
    assert not params & {x.untyped_storage().data_ptr() for x in mine}  # load_weights never writes a parameter
    ref = weakref.ref(model)
    del model, dec, mine
    gc.collect()
    assert ref() is None


def test_a_step_is_the_same_program_for_any_number_of_rows(tok):
    small, deep = (tiny_model(preset, tok, "llama") for preset in ("nano", "small"))  # 2 and 4 layers
    ops = step_ops(small)
    assert step_ops(small, rows=64, slots=80) == ops  # one graph per bucket, whatever the step or the length
    assert ops["compute", "index_copy_"] == 2 * 2 and ops["compute", "embedding"] == 1
    per_layer = sum(n for (kind, _), n in step_ops(deep).items() if kind == "compute") - sum(
        n for (kind, _), n in ops.items() if kind == "compute"
    )
    assert per_layer % 2 == 0 and 20 <= per_layer // 2 <= 40  # about 30 kernels per layer


class _HostReads(TorchDispatchMode):
    """Records the operations that read a tensor's values on the host: on a GPU each waits for the device, which a
    graph capture refuses (``.item()``, ``int()``, ``nonzero``, ``torch.equal``, boolean-mask indexing...)."""

    SYNCING = {"_local_scalar_dense", "nonzero", "equal", "is_nonzero", "masked_select", "unique_dim", "_unique2"}

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        masks = name == "index" and any(i is not None and i.dtype == torch.bool for i in args[1])
        if name in self.SYNCING or masks:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


def test_the_static_step_never_reads_values_on_the_host(tok):
    dec = GraphDecoder(tiny_model("nano", tok, "qwen2"), 16, 24, torch.float32)
    with _HostReads() as reads:
        dec.step(torch.tensor([3, 4, 5]), torch.tensor([7, 7, 6]), 9)  # the inputs' copies, the replayed step
    assert reads.seen == []
    with _HostReads() as reads:  # the recorder sees what a capture would refuse
        int(torch.arange(3).max())
        torch.arange(3)[torch.arange(3) > 0]
    assert reads.seen == ["_local_scalar_dense", "index"]


def test_graph_engine_asks_for_cuda_and_a_fast_architecture(tok):
    model, tok, _ = load_base("addition")
    with pytest.raises(ValueError, match="engine='graph' captures CUDA graphs and needs a CUDA device, not cpu"):
        rollout(model, tok, PROMPTS, 2, 4, engine="graph")
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match="engine='graph' supports .*'llama'.*not 'gpt2'"):
        rollout(gpt2, tok, PROMPTS, 2, 4, engine="graph")


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_cuda_graphs_sample_what_the_fast_engine_samples(tok, arch):
    model = tiny_model("nano", tok, arch, seed=3).cuda().eval()
    fast, graph = both_engines(model, tok, PROMPTS * 8, group_size=8, max_new_tokens=24)
    assert len(_KEPT[model].graphs) >= 1
    _agree(fast, graph, tol=1e-4)


@pytest.mark.gpu
@cuda
def test_cuda_graphs_replay_every_bucket():
    model, tok, task = load_base("countdown-search")
    model = model.cuda()
    prompts = [task.format_prompt(p) for p in task.problems("test", 16)]
    _agree(*both_engines(model, tok, prompts, 8, 96), tol=1e-4)
    assert len(_KEPT[model].graphs) >= 3  # captured, and replayed in several buckets as rows finished
    model.cpu()


@pytest.mark.gpu
@cuda
def test_cuda_graphs_follow_the_weights_and_match_the_training_forward():
    model, tok, _ = load_base("addition")
    model = model.cuda()
    gen = torch.Generator("cuda").manual_seed(0)
    rollout(model, tok, PROMPTS, 8, 12, generator=gen, engine="graph")
    graphs = dict(_KEPT[model].graphs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    batch = rollout(model, tok, PROMPTS, 8, 12, generator=gen, engine="graph")
    assert all(_KEPT[model].graphs[n] is g for n, g in graphs.items())  # replayed, not captured again
    recomputed, _ = compute_logprobs(model, batch)
    assert (recomputed - batch.old_logprobs).abs().max() < 1e-3
    model.cpu()
