"""Budget forcing: capping how long a model thinks, at inference, with no training.

s1 (Muennighoff et al., 2025, "s1: Simple test-time scaling", arXiv:2501.19393, §3.1) controls thinking at decode
time: when the thinking reaches its token budget, the end-of-thinking delimiter is written for the model, which
then answers from what it has. (s1 also lengthens thinking by writing "Wait" where the model would stop; a
column-addition trace is complete when it ends, so this lab has nothing for that half to add.)

The delimiter defaults to the thinking task's ``#`` (``rl4lrm.tasks.thinking``); a chat model's would be its
end-of-thinking tag, such as ``</think>``. Decoding runs in two phases:

1. sample up to ``budget`` tokens;
2. every row that neither finished nor wrote the delimiter gets it appended (it is *forced*), and every unfinished
   row continues for at most ``answer_tokens`` more.

``budget=0`` forces every row to answer at once; ``budget=None`` decodes as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl4lrm.rollout import rollout
from rl4lrm.tasks.thinking import ANSWER_MARK


@dataclass(frozen=True)
class BudgetedCompletions:
    """N = B*G completions decoded under a thinking budget, G per prompt, rows of a prompt contiguous."""

    completions: list[str]
    tokens: list[int]
    """Tokens each row generated (a forced delimiter counts as its tokens, the EOS too)."""
    forced: list[bool]
    """Whether the budget cut the row's thinking."""


def budget_forcing(
    model,
    tokenizer,
    prompts: list[str],
    budget: int | None,
    group_size: int = 1,
    answer_tokens: int = 8,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    delimiter: str = ANSWER_MARK,
) -> BudgetedCompletions:
    """Samples ``group_size`` completions per prompt with at most ``budget`` tokens of thinking.

    Args:
        model, tokenizer: a causal LM and its tokenizer (``rl4lrm.rollout.rollout``'s).
        prompts: B prompt strings.
        budget: the most tokens before the answer mark: 0 answers at once, None leaves the model alone (then
            ``max_new_tokens`` caps the whole completion).
        group_size: G samples per prompt.
        answer_tokens: the most tokens a row may write after a budget stopped it (the answer and EOS).
        max_new_tokens: the length cap when ``budget`` is None.
        temperature: sampling temperature for both phases; 0 is greedy.
        generator: a ``torch.Generator`` for reproducible samples.
        delimiter: the text that ends the thinking (written for the model when the budget runs out).

    Returns:
        A ``BudgetedCompletions`` of N = B*G rows.
    """
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise ValueError(f"budget must be an int >= 0 (tokens of thinking) or None (no budget), got {budget!r}")
    if isinstance(answer_tokens, bool) or not isinstance(answer_tokens, int) or answer_tokens < 1:
        raise ValueError(f"answer_tokens must be an int >= 1, got {answer_tokens!r}")
    if not isinstance(delimiter, str) or not delimiter:
        raise ValueError(f"delimiter must be the non-empty text that ends the thinking, got {delimiter!r}")
    sample = dict(temperature=temperature, generator=generator)
    if budget is None:
        batch = rollout(model, tokenizer, prompts, group_size, max_new_tokens, **sample)
        return BudgetedCompletions(batch.completions, batch.lengths.tolist(), [False] * len(batch.completions))
    rows = [p for p in prompts for _ in range(group_size)]
    if budget == 0:
        texts, lengths, open_rows = [""] * len(rows), [0] * len(rows), list(range(len(rows)))
    else:
        batch = rollout(model, tokenizer, prompts, group_size, budget, **sample)
        texts, lengths = list(batch.completions), batch.lengths.tolist()
        open_rows = [i for i, cut in enumerate(batch.truncated.tolist()) if cut]
    forced = [False] * len(rows)
    mark_tokens = len(tokenizer(delimiter, add_special_tokens=False)["input_ids"])
    for i in open_rows:
        if delimiter not in texts[i]:
            texts[i], lengths[i], forced[i] = texts[i] + delimiter, lengths[i] + mark_tokens, True
    if open_rows:
        tail = rollout(model, tokenizer, [rows[i] + texts[i] for i in open_rows], 1, answer_tokens, **sample)
        for i, text, n in zip(open_rows, tail.completions, tail.lengths.tolist()):
            texts[i], lengths[i] = texts[i] + text, lengths[i] + n
    return BudgetedCompletions(texts, lengths, forced)
