"""Tiny causal language models built from ``transformers`` configs (Llama- or Qwen2-style).

They are real Hugging Face models (``generate``, ``save_pretrained``, ``from_pretrained`` all
work), only small: from about 0.1M to 3.5M parameters, so a 2-core CPU trains one in minutes.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedModel, Qwen2Config

TINY_PRESETS: dict[str, dict[str, int]] = {
    # name: hidden size, layers, attention heads, MLP width (about 0.1M / 0.6M / 3.5M parameters)
    "nano": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=192),
    "micro": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=384),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, intermediate_size=768),
    # micro's parameter count (0.67M vs 0.65M) in another shape: 8 layers of width 80 instead of 3 of width 128
    "micro-deep": dict(hidden_size=80, num_hidden_layers=8, num_attention_heads=4, intermediate_size=240),
    # micro's size as a GPT-2 block (0.64M): its MLP has two matrices, not SwiGLU's three, so 4x width, not 3x
    "micro-gpt2": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=512),
}
ARCHITECTURES = {"llama": LlamaConfig, "qwen2": Qwen2Config, "gpt2": GPT2Config}
"""Llama: RoPE, RMSNorm, SwiGLU; Qwen2: Llama plus q/k/v biases; GPT-2 (Radford et al., 2019): learned absolute
positions, LayerNorm, a GELU MLP, biases everywhere."""


def _config_kwargs(arch: str, preset: dict[str, int]) -> dict:
    """The preset in the config's own vocabulary, without dropout (dropout would make a training-mode
    recomputation of the log-probs differ from the sampler's, see ``rl4lrm.rollout``)."""
    if arch == "gpt2":
        return dict(
            n_embd=preset["hidden_size"],
            n_layer=preset["num_hidden_layers"],
            n_head=preset["num_attention_heads"],
            n_inner=preset["intermediate_size"],
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    return dict(num_key_value_heads=preset["num_attention_heads"], **preset)  # Qwen2's default is 32 kv heads


def tiny_model(preset: str, tokenizer, arch: str = "llama", max_positions: int = 256, seed: int = 0) -> PreTrainedModel:
    """Builds a randomly initialised tiny causal LM whose vocabulary matches ``tokenizer``.

    Args:
        preset: one of ``TINY_PRESETS`` (``"nano"``, ``"micro"``, ``"small"``, and micro's size in other shapes:
            ``"micro-deep"``, ``"micro-gpt2"``).
        tokenizer: the tokenizer whose ids the model reads (its pad/bos/eos ids go into the config).
        arch: ``"llama"``, ``"qwen2"`` (Qwen2 adds biases to the q/k/v projections) or ``"gpt2"``.
        max_positions: longest sequence (prompt + completion) the model is meant for.
        seed: initialisation seed.

    Returns:
        A float32 ``LlamaForCausalLM``, ``Qwen2ForCausalLM`` or ``GPT2LMHeadModel`` in eval mode, with tied
        embeddings.
    """
    if preset not in TINY_PRESETS:
        raise ValueError(f"unknown tiny model preset {preset!r}; choose one of {sorted(TINY_PRESETS)}")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    config = ARCHITECTURES[arch](
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **_config_kwargs(arch, TINY_PRESETS[preset]),
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.float().eval()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
