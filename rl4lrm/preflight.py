"""Checks of a model, tokenizer, task and reward mix together, before any training step.

A ``TrainConfig`` validates its own fields; what it cannot see until the trainer has the model and the
task fails here with a clear message instead of at the first step (or worse, silently): a reward that
reads something the task lacks, a chat prompt for a tokenizer without a chat template, completions that
run past the model's positions, and tokenizer ids past the model's vocabulary.
"""

from __future__ import annotations

import torch

from rl4lrm.tasks import Problem, Task


def _hf_config(model):
    """The Hugging Face config of ``model`` or of the network it wraps (``.net``), or None."""
    for owner in (getattr(model, "net", None), model):
        config = getattr(owner, "config", None)
        if config is not None and hasattr(config, "max_position_embeddings"):
            return config
    return None


def check_vocabulary(model: torch.nn.Module, tokenizer) -> None:
    """Raises a ValueError when the tokenizer can produce ids that the model has no embedding for.

    Such ids index past the embedding table: an IndexError (or a CUDA device-side assert) at the first
    forward pass that meets one.
    """
    owner = getattr(model, "net", model)
    embeddings = owner.get_input_embeddings() if hasattr(owner, "get_input_embeddings") else None
    if isinstance(embeddings, torch.nn.Embedding) and len(tokenizer) > embeddings.num_embeddings:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} ids but the model's embedding table has "
            f"{embeddings.num_embeddings} rows; ids {embeddings.num_embeddings}..{len(tokenizer) - 1} "
            "would index past it (resize the embeddings or use the model's own tokenizer)"
        )


def check_prompt_style(style: str, tokenizer) -> None:
    """Raises a ValueError for ``style="chat"`` with a tokenizer that has no chat template."""
    if style == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"prompt_style='chat' needs a tokenizer with a chat template; "
            f"{type(tokenizer).__name__} has none (use prompt_style='plain')"
        )


def check_positions(model, tokenizer, prompts: list[str], max_new_tokens: int) -> None:
    """Raises a ValueError when the longest prompt plus ``max_new_tokens`` exceeds the model's positions."""
    config = _hf_config(model)
    if config is None or not prompts:
        return
    longest = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    if longest + max_new_tokens > config.max_position_embeddings:
        raise ValueError(
            f"prompts of up to {longest} tokens plus max_new_tokens={max_new_tokens} exceed the "
            f"model's {config.max_position_embeddings} positions; lower max_new_tokens to at most "
            f"{config.max_position_embeddings - longest}"
        )


def check_setup(config, model, tokenizer, task: Task, reward_mix, problems: list[Problem]) -> None:
    """Every check above for one run (``problems``: a sample of the prompts it will see).

    Raises:
        ValueError: naming the setting and what to change.
    """
    check_vocabulary(model, tokenizer)
    check_prompt_style(config.prompt_style, tokenizer)
    reward_mix.check_task(task, problems)
    prompts = [task.format_prompt(p, config.prompt_style, tokenizer) for p in problems]
    check_positions(model, tokenizer, prompts, config.max_new_tokens)
