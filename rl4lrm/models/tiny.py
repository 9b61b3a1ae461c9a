"""Tiny causal language models built from ``transformers`` configs (Llama- or Qwen2-style).

They are real Hugging Face models (``generate``, ``save_pretrained``, ``from_pretrained`` all
work), only small: from about 0.1M to 3.5M parameters, so a 2-core CPU trains one in minutes.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedModel, Qwen2Config

TINY_PRESETS: dict[str, dict[str, int]] = {
    # name: hidden size, layers, attention heads, MLP width (about 0.1M / 0.6M / 3.5M parameters)
    "nano": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=192),
    "micro": dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=384),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=8, intermediate_size=768),
}
ARCHITECTURES = {"llama": LlamaConfig, "qwen2": Qwen2Config}


def tiny_model(preset: str, tokenizer, arch: str = "llama", max_positions: int = 256, seed: int = 0) -> PreTrainedModel:
    """Builds a randomly initialised tiny causal LM whose vocabulary matches ``tokenizer``.

    Args:
        preset: one of ``TINY_PRESETS`` (``"nano"``, ``"micro"``, ``"small"``).
        tokenizer: the tokenizer whose ids the model reads (its pad/bos/eos ids go into the config).
        arch: ``"llama"`` or ``"qwen2"`` (Qwen2 adds biases to the q/k/v projections).
        max_positions: longest sequence (prompt + completion) the model is meant for.
        seed: initialisation seed.

    Returns:
        A float32 ``LlamaForCausalLM`` or ``Qwen2ForCausalLM`` in eval mode, with tied embeddings.
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
        num_key_value_heads=TINY_PRESETS[preset]["num_attention_heads"],  # Qwen2's default is 32
        **TINY_PRESETS[preset],
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    return model.float().eval()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
