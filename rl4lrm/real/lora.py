"""LoRA (Hu et al., 2021, https://arxiv.org/abs/2106.09685) through peft, as an option of a real-model run.

LoRA freezes the weights W and trains a low-rank update: ``W x + (alpha / r) B A x`` with A (r, in) and
B (out, r), B starting at zero so the adapted model starts as the base model. Only A and B get gradients and
AdamW moments: for SmolLM2-135M with r=16 on every projection, about 4.9M trained parameters (3.6%) instead of
135M, so the optimizer state shrinks by ~27x. The rollout engine samples from the adapted weights
(``rl4lrm.decoding.effective_weight``), so the fast decoder still serves a LoRA policy.

peft is an optional dependency (the ``lora`` extra); ``add_lora`` says how to install it when it is missing.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

import torch

from rl4lrm.validation import AT_LEAST_ONE, POSITIVE, Range, check_fields, named_keywords

LORA_INSTALL = 'pip install -e ".[lora]"  (or: pip install "peft>=0.21")'
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@named_keywords()
@dataclass
class LoRAConfig:
    """Where the low-rank adapters go and how big they are."""

    rank: int = 16
    """r: rank of each update B A. Larger r trains more parameters (linear in r)."""
    alpha: float = 32.0
    """The update is scaled by alpha / r (peft's ``lora_alpha``); 2r is the common choice."""
    dropout: float = 0.0
    """Dropout on the adapter's input during training (0 keeps the update's log-probs exact between the
    rollout and the update, which on-policy RL wants)."""
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS
    """Names of the linear modules that get an adapter; the default covers every projection of a Llama or
    Qwen2 block (attention and MLP), as the LoRA-for-RL recipes do."""
    init_zero: bool = True
    """B starts at 0 (peft's default, the adapted model starts as the base model); False draws B at random,
    which tests use to check that the rollout engine applies the adapters."""

    def __post_init__(self):
        check_fields(self, {"rank": AT_LEAST_ONE, "alpha": POSITIVE, "dropout": Range(0, 1, high_open=True)})
        if not self.target_modules or not all(isinstance(m, str) for m in self.target_modules):
            raise ValueError(
                f"LoRAConfig.target_modules must be a non-empty tuple of names, got {self.target_modules!r}"
            )
        self.target_modules = tuple(self.target_modules)


def peft_available() -> bool:
    """True when peft is installed (the ``lora`` extra)."""
    return importlib.util.find_spec("peft") is not None


def add_lora(model, config: LoRAConfig | None = None):
    """Wraps a causal LM in LoRA adapters; only the adapters then require grad.

    Args:
        model: a transformers causal LM (Llama, Qwen2, ...).
        config: adapter settings; the default ``LoRAConfig()`` when None.

    Returns:
        A peft ``PeftModel``: call it like the model; ``Trainer`` trains it as it is.

    Raises:
        ImportError: when peft is missing, naming the extra to install.
    """
    if not peft_available():
        raise ImportError(f"LoRA needs the peft package (the 'lora' extra); install it with `{LORA_INSTALL}`")
    from peft import LoraConfig, get_peft_model  # optional extra: imported only when asked for

    config = config or LoRAConfig()
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in config.target_modules if m not in present]
    if missing:
        raise ValueError(
            f"LoRAConfig.target_modules: {missing} are not modules of this model; some that are: "
            f"{sorted(n for n in present if n)[:12]}"
        )
    peft_config = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        init_lora_weights=config.init_zero,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft asks transformers a deprecated question (a FutureWarning)
        warnings.simplefilter("ignore")
        return get_peft_model(model, peft_config)


def adapter_parameters(in_features: int, out_features: int, rank: int) -> int:
    """Parameters of one LoRA adapter on an (out, in) linear map: A (rank, in) plus B (out, rank)."""
    return rank * (in_features + out_features)


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """``{"total": ..., "trained": ...}``: all parameters and those that require grad."""
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trained": trained}


def training_state_bytes(model: torch.nn.Module) -> dict[str, int]:
    """Bytes of the training state AdamW keeps: weights, gradients and two moments of the trained parameters.

    The activations come on top and scale with batch x length; this is the part LoRA shrinks.
    """
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return {"weights": weights, "grads": trained, "adam": 2 * trained, "total": weights + 3 * trained}
