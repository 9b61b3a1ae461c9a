"""The rollout engine: G sampled completions per prompt, in one batch, with their log-probs.

Rollouts are the hot path of every RL experiment (most of the wall time of GRPO is sampling).
``rollout`` prefills each distinct prompt once, copies its KV cache to the G samples of its
group, then decodes all N = B*G rows together, recording the sampling log-probs on the way and
dropping finished rows. For Llama/Qwen2-style models it runs a compact decode step over the
model's own modules with a static KV cache (no per-step ``generate`` machinery: logits
processors, stopping criteria, cache objects, mask builders); any other Hugging Face causal LM
goes through its regular ``forward`` with a ``DynamicCache`` (``rl4lrm.decoding``).

``compute_logprobs`` recomputes the same log-probs with a plain training-mode forward; the two
must agree (``tests/test_rollout.py`` checks it and ``benchmarks/rollout_throughput.py``
reports the largest difference), otherwise "on-policy" training silently is not.

Policies that do not decode left to right (the masked diffusion LM of ``rl4lrm.diffusion.model``, the
continuous-thought model of ``rl4lrm.latent.model``) plug into the same trainer, advantages and losses by
defining two methods, which ``rollout_ids`` and ``completion_logits`` hand over to:
``model.sample_rollout(tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p,
generator) -> RolloutBatch`` and ``model.completion_logits(batch, temperature) -> (logits, lse)``. What such a
policy needs to recompute its log-probs exactly (a likelihood estimator's random mask, noise on latent
thoughts) travels with the batch in ``RolloutBatch.aux``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from rl4lrm.cuda_graphs import graph_rollout
from rl4lrm.decoding import (
    FAST_ARCHITECTURES,
    fast_rollout,
    hf_rollout,
    positions_from_mask,
    sampling_dtype,
    trim_pad_columns,
)
from rl4lrm.fused import shared_prompt_logits, supports

ENGINES = ("auto", "fast", "graph", "hf")
"""``rollout``'s engines: ``"auto"`` picks ``"fast"`` for Llama/Qwen2-style models and ``"hf"`` for the rest."""


@dataclass
class RolloutBatch:
    """N = B*G completions, G per prompt, rows of a group contiguous.

    Prompts are left-padded and completions right-padded, so ``input_ids`` is the full sequence.
    Log-probs are those of the sampling distribution ``softmax(logits / temperature)`` (before any
    top-p truncation), which is what a training-mode recomputation at the same temperature gives.
    """

    prompt_ids: torch.Tensor  # (N, P) left-padded
    prompt_mask: torch.Tensor  # (N, P) 1 on real prompt tokens
    completion_ids: torch.Tensor  # (N, T) right-padded with the pad id
    response_mask: torch.Tensor  # (N, T) float, 1 on generated tokens up to and including EOS
    old_logprobs: torch.Tensor  # (N, T) log-prob of each sampled token, 0 where masked
    group_ids: torch.Tensor  # (N,) index of the prompt each row answers
    truncated: torch.Tensor  # (N,) bool, True when the length cap stopped the row before EOS
    completions: list[str]  # decoded completions (special tokens dropped)
    group_size: int
    temperature: float
    ref_logprobs: torch.Tensor | None = None  # (N, T), filled by the trainer when a KL term needs it
    aux: dict[str, torch.Tensor] = field(default_factory=dict)  # per-row tensors (N, ...) a non-causal policy
    # needs to recompute its log-probs (see the module docstring); sliced and concatenated with the rows

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)  # (N, P+T)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.response_mask.long()], dim=1)  # (N, P+T)

    @property
    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)  # (N,)

    def select(self, rows: torch.Tensor) -> RolloutBatch:
        """The sub-batch of the given row indices (used for minibatches)."""
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in picked.items():
            if isinstance(value, torch.Tensor):
                picked[name] = value[rows]
        picked["completions"] = [self.completions[i] for i in rows.tolist()]
        picked["aux"] = {name: value[rows] for name, value in self.aux.items()}
        return RolloutBatch(**picked)


def bos_id(tokenizer) -> int | None:
    """The BOS id this tokenizer's own encoding puts first (``add_special_tokens=True``), else None.

    Prompts are encoded without special tokens, because a chat template already writes its special
    tokens as text and a second BOS would be one the model never saw. A tokenizer whose encoding
    starts with BOS (Llama 2, Mistral, Gemma) was trained with it in front of every text, and a model
    fed prompts without it can fall to 0 accuracy with no error; ``prompt_token_ids`` puts it back.
    Tokenizers that declare a BOS but do not add it (GPT-2, SmolLM2, the lab's char tokenizer) get none.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    added = tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos]
    return bos if added and tokenizer("a", add_special_tokens=False)["input_ids"][:1] != [bos] else None


def prompt_token_ids(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt: its text without special tokens, behind the tokenizer's BOS when its own
    encoding adds one (``bos_id``) and the text does not already start with it (a chat template's)."""
    ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    bos = bos_id(tokenizer)
    return ids if bos is None else [row if row[:1] == [bos] else [bos, *row] for row in ids]


def left_pad(rows: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pads token id lists into ``ids`` (n, width) and ``mask`` (n, width), 1 on real tokens."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)  # (n, width)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)  # (n, width)
    return ids, mask


def decodes_left_to_right(model) -> bool:
    """False for a policy that samples and scores its own way through the hooks of the module docstring
    (``sample_rollout``, ``completion_logits``): the diffusion and latent-thought models. Token-by-token
    machinery (tree branching, a critic's per-token values) needs True."""
    return not hasattr(model, "sample_rollout")


def pick_engine(model, engine: str):
    """The decoding function (``rl4lrm.decoding``) that ``rollout`` runs a left-to-right ``model`` with under
    ``engine`` (one of ``ENGINES``); raises ValueError where that engine cannot run it."""
    fast_ok = model.config.model_type in FAST_ARCHITECTURES
    if engine in ("fast", "graph") and not fast_ok:
        raise ValueError(f"engine={engine!r} supports {FAST_ARCHITECTURES}, not {model.config.model_type!r}; use 'hf'")
    device = next(model.parameters()).device
    if engine == "graph" and device.type != "cuda":
        raise ValueError(f"engine='graph' captures CUDA graphs and needs a CUDA device, not {device}; use 'fast'")
    return {"graph": graph_rollout, "hf": hf_rollout}.get(engine, fast_rollout if fast_ok else hf_rollout)


def check_precision(model, precision: str, engine: str = "auto") -> torch.dtype:
    """The dtype ``rollout`` samples ``model`` in under ``precision``; raises ValueError where it cannot.

    A policy with its own sampler (``decodes_left_to_right`` False) samples in its own dtype only, and the
    ``"hf"`` engine can only lower the precision (``torch.autocast``), not raise it.
    """
    dtype, own = sampling_dtype(model, precision), next(model.parameters()).dtype
    if dtype == own:
        return dtype
    if not decodes_left_to_right(model):
        raise ValueError(
            f"precision={precision!r}: a {type(model).__name__} samples with its own sampler, in its own dtype "
            f"({own}); use precision='auto'"
        )
    hf = engine == "hf" or model.config.model_type not in FAST_ARCHITECTURES
    if hf and dtype.itemsize > own.itemsize:
        raise ValueError(
            f"precision={precision!r} is above the model's {own}: the 'hf' engine only lowers the precision "
            f"(torch.autocast), and the fast engine supports {FAST_ARCHITECTURES}, not "
            f"{model.config.model_type!r}; cast the model instead"
        )
    return dtype


@torch.no_grad()
def rollout(
    model,
    tokenizer,
    prompts: list[str],
    group_size: int = 8,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    engine: str = "auto",
    precision: str = "auto",
) -> RolloutBatch:
    """Samples ``group_size`` completions for every prompt.

    Args:
        model: a Hugging Face causal LM (sampled as in eval mode: no dropout).
        tokenizer: its tokenizer; needs a pad and an EOS token.
        prompts: B prompt strings, already formatted; the only special token added is the BOS that the
            tokenizer's own encoding adds (``prompt_token_ids``).
        group_size: G samples per prompt.
        max_new_tokens: length cap T; rows that reach it without EOS are flagged ``truncated``.
        temperature: sampling temperature; 0 decodes greedily.
        top_p: nucleus sampling mass in (0, 1].
        generator: optional ``torch.Generator`` (on the model's device) for reproducible samples.
        engine: ``"fast"`` (static-cache decoder, Llama/Qwen2 only), ``"graph"`` (the same decoder with its decode
            step captured as CUDA graphs, on a CUDA device: ``rl4lrm.cuda_graphs``), ``"hf"`` (the model's own
            forward with a ``DynamicCache``, any causal LM) or ``"auto"`` (fast when supported).
        precision: the arithmetic of the sampling forward: ``"auto"`` (the model's dtype), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``. A lower one than the model's samples faster where the hardware has
            fast low-precision products, from a slightly different policy: ``old_logprobs`` are the sampler's.

    Returns:
        A ``RolloutBatch`` of N = B*G rows.
    """
    if not prompts:
        raise ValueError("prompts is empty: rollout needs at least one prompt")
    prompt_ids, prompt_mask = left_pad(
        prompt_token_ids(tokenizer, prompts), tokenizer.pad_token_id, next(model.parameters()).device
    )  # (B, P) each
    return rollout_ids(
        model,
        tokenizer,
        prompt_ids,
        prompt_mask,
        group_size,
        max_new_tokens,
        temperature,
        top_p,
        generator,
        engine,
        precision,
    )


@torch.no_grad()
def rollout_ids(
    model,
    tokenizer,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    group_size: int = 8,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    engine: str = "auto",
    precision: str = "auto",
) -> RolloutBatch:
    """``rollout`` from token ids: continues B left-padded sequences (prompts, or prompts plus a
    partial completion, as tree rollouts do); each sequence is prefilled once for its G samples.

    Args:
        prompt_ids: (B, P) left-padded token ids; prompt_mask: (B, P) 1 on real tokens.
        The other arguments are those of ``rollout``.
    """
    if group_size < 1 or max_new_tokens < 1:
        raise ValueError(f"group_size and max_new_tokens must be >= 1, got {group_size} and {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got temperature={temperature}, top_p={top_p}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {list(ENGINES)}")
    dtype = check_precision(model, precision, engine)
    if not decodes_left_to_right(model):  # it brings its own sampler
        return model.sample_rollout(
            tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
        )
    device = prompt_ids.device
    run = pick_engine(model, engine)
    tokens, logprobs, mask, truncated = run(
        model,
        prompt_ids,
        prompt_mask,
        group_size,
        max_new_tokens,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        temperature,
        top_p,
        generator,
        dtype,
    )
    mask, tokens, logprobs = trim_pad_columns(mask, tokens, logprobs)
    return RolloutBatch(
        prompt_ids=prompt_ids.repeat_interleave(group_size, 0),
        prompt_mask=prompt_mask.repeat_interleave(group_size, 0),
        completion_ids=tokens,
        response_mask=mask,
        old_logprobs=logprobs,
        group_ids=torch.arange(len(prompt_ids), device=device).repeat_interleave(group_size),
        truncated=truncated,
        completions=tokenizer.batch_decode(tokens, skip_special_tokens=True),
        group_size=group_size,
        temperature=temperature,
    )


def concat_batches(batches: list[RolloutBatch], pad_id: int) -> RolloutBatch:
    """Stacks rollout batches of the same group size and temperature into one.

    Prompts stay left-padded and completions right-padded (with ``pad_id``) to the widest batch;
    group ids are renumbered 0, 1, ... in row order, so they index the concatenated groups. An ``aux`` tensor that
    follows the completion's columns (its second dimension is its batch's completion width in every batch, as an
    agent's observation mask) is right-padded with zeros like the completions; other ``aux`` tensors are stacked.
    Used by samplers that draw several rounds (dynamic sampling) or build a batch group by group.
    """
    if not batches:
        raise ValueError("concat_batches needs at least one batch")
    G, temperature = batches[0].group_size, batches[0].temperature
    if any(b.group_size != G or b.temperature != temperature for b in batches):
        raise ValueError(
            "concat_batches needs batches with one group size and one temperature, got "
            f"{[(b.group_size, b.temperature) for b in batches]}"
        )
    P = max(b.prompt_ids.shape[1] for b in batches)
    T = max(b.completion_ids.shape[1] for b in batches)

    def left(x, width, value):  # (n, p) -> (n, width), padded on the left
        return torch.nn.functional.pad(x, (width - x.shape[1], 0), value=value)

    def right(x, width, value):  # (n, t) -> (n, width), padded on the right
        return torch.nn.functional.pad(x, (0, width - x.shape[1]), value=value)

    group_ids, offset = [], 0
    for b in batches:  # renumber 0..(groups - 1): a group's rows are contiguous, its old id may be any index
        _, local = torch.unique_consecutive(b.group_ids, return_inverse=True)
        group_ids.append(local + offset)
        offset += int(local.max()) + 1
    refs = [b.ref_logprobs for b in batches]
    aux_keys = {frozenset(b.aux) for b in batches}
    if len(aux_keys) > 1:
        raise ValueError(f"concat_batches needs batches with the same aux tensors, got {[sorted(k) for k in aux_keys]}")

    def stacked_aux(name):  # (n, t, ...) per completion column, right-padded; anything else as it is
        parts = [b.aux[name] for b in batches]
        by_column = all(x.dim() >= 2 and x.shape[1] == b.completion_ids.shape[1] for x, b in zip(parts, batches))
        if by_column:
            parts = [torch.nn.functional.pad(x.movedim(1, -1), (0, T - x.shape[1])).movedim(-1, 1) for x in parts]
        return torch.cat(parts)

    return RolloutBatch(
        prompt_ids=torch.cat([left(b.prompt_ids, P, pad_id) for b in batches]),
        prompt_mask=torch.cat([left(b.prompt_mask, P, 0) for b in batches]),
        completion_ids=torch.cat([right(b.completion_ids, T, pad_id) for b in batches]),
        response_mask=torch.cat([right(b.response_mask, T, 0.0) for b in batches]),
        old_logprobs=torch.cat([right(b.old_logprobs, T, 0.0) for b in batches]),
        group_ids=torch.cat(group_ids),
        truncated=torch.cat([b.truncated for b in batches]),
        completions=[c for b in batches for c in b.completions],
        group_size=G,
        temperature=temperature,
        ref_logprobs=None if any(r is None for r in refs) else torch.cat([right(r, T, 0.0) for r in refs]),
        aux={name: stacked_aux(name) for name in batches[0].aux},
    )


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, lse: torch.Tensor | None = None) -> torch.Tensor:
    """log softmax(logits)[token] for each position, without a second (N, T, V) float copy.

    ``log_softmax(logits).gather(...)`` would materialise a full (N, T, V) tensor; gathering the
    logit first and subtracting the logsumexp only keeps (N, T) results. For bf16 logits, cast to
    float32 first if exact log-probs matter (the logsumexp is then in float32).

    Args:
        logits: Unnormalised scores, shape (N, T, V).
        tokens: Token ids, shape (N, T), int64.
        lse: ``logsumexp(logits, -1)`` if the caller already has it, shape (N, T).

    Returns:
        Log-probabilities of ``tokens``, shape (N, T).
    """
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (N, T)
    return picked - (torch.logsumexp(logits, dim=-1) if lse is None else lse)  # (N, T)


def entropy_from_logits(logits: torch.Tensor, lse: torch.Tensor | None = None) -> torch.Tensor:
    """Entropy of the categorical distribution at each position.

    H = logsumexp(z) - sum_v softmax(z)_v z_v, which needs one (N, T, V) softmax and no
    log-softmax copy (the formulation verl uses).

    Args:
        logits: Unnormalised scores, shape (N, T, V).
        lse: ``logsumexp(logits, -1)`` if the caller already has it, shape (N, T).

    Returns:
        Entropy in nats, shape (N, T).
    """
    probs = torch.softmax(logits, dim=-1)  # (N, T, V)
    return (torch.logsumexp(logits, dim=-1) if lse is None else lse) - (probs * logits).sum(dim=-1)  # (N, T)


def completion_logits(model, batch: RolloutBatch, temperature: float | None = None, fused: bool = True):
    """The temperature-scaled logits that predict each completion token, and their logsumexp.

    One forward over prompt + completion that keeps logits only for completion positions; every quantity
    computed from the policy's distribution over a batch (log-probs, entropy, self-certainty) starts here.
    Llama/Qwen2 models go through ``rl4lrm.fused.shared_prompt_logits`` (the same function, each distinct prompt
    computed once, gradients equal to the HF forward's up to rounding) unless ``fused`` is False.

    Args:
        model: the causal LM.
        batch: a ``RolloutBatch``.
        temperature: defaults to the batch's sampling temperature (0 counts as 1).
        fused: use the fused forward where ``rl4lrm.fused.supports`` the model; False runs the model's own.

    Returns:
        ``logits`` (N, T, V) float32, position t predicting token t, and ``lse`` (N, T).
    """
    temperature = (batch.temperature if temperature is None else temperature) or 1.0
    if not decodes_left_to_right(model):  # it scores its own way
        return model.completion_logits(batch, temperature)
    if fused and supports(model):
        logits = shared_prompt_logits(
            model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.response_mask
        )  # (N, T, V)
        logits = logits.float() / temperature
        return logits, torch.logsumexp(logits, dim=-1)  # (N, T, V), (N, T)
    return logits_over(model, batch, batch.attention_mask, temperature)


def logits_over(model, batch: RolloutBatch, attention_mask: torch.Tensor, temperature: float):
    """``completion_logits``' forward with a given ``attention_mask`` (N, P+T) over prompt + completion: a policy
    whose completions hold tokens it attends to but did not write (tool observations) passes its own."""
    T = batch.completion_ids.shape[1]
    out = model(
        input_ids=batch.input_ids,
        attention_mask=attention_mask,
        position_ids=positions_from_mask(attention_mask),
        logits_to_keep=T + 1,
        use_cache=False,
    )
    logits = out.logits[:, :-1].float() / temperature  # (N, T, V)
    return logits, torch.logsumexp(logits, dim=-1)  # (N, T, V), (N, T)


def compute_logprobs(
    model, batch: RolloutBatch, temperature: float | None = None, with_entropy: bool = False, fused: bool = True
):
    """Log-probs of the batch's completion tokens under ``model`` (with gradients if enabled).

    One full forward over prompt + completion, computing logits only for completion positions.

    Args:
        model: the causal LM (policy or frozen reference).
        batch: a ``RolloutBatch``.
        temperature: defaults to the batch's sampling temperature (0 counts as 1).
        with_entropy: also return the per-token entropy of ``softmax(logits / T)``.
        fused: as in ``completion_logits``.

    Returns:
        ``logprobs`` (N, T), zero where ``response_mask`` is 0, and ``entropy`` (N, T) or None.
    """
    logits, lse = completion_logits(model, batch, temperature, fused)  # (N, T, V), (N, T): lse shared by both
    logprobs = token_logprobs(logits, batch.completion_ids, lse) * batch.response_mask  # (N, T)
    entropy = entropy_from_logits(logits, lse) * batch.response_mask if with_entropy else None  # (N, T)
    return logprobs, entropy
