"""The rollout engine: G sampled completions per prompt, in one batch, with their log-probs.

Rollouts are the hot path of every RL experiment (most of the wall time of GRPO is sampling).
``rollout`` prefills each distinct prompt once, copies its KV cache to the G samples of its
group, then decodes all N = B*G rows together into a preallocated (static) KV cache, recording
the sampling log-probs on the way. For Llama/Qwen2-style models it runs its own compact decode
step over the model's own modules (no per-step ``generate`` machinery: logits processors,
stopping criteria, cache objects, mask builders); any other Hugging Face causal LM goes through
its regular ``forward`` with a ``DynamicCache``. Both return the same ``RolloutBatch``.

``compute_logprobs`` recomputes the same log-probs with a plain training-mode forward; the two
must agree (``tests/test_rollout.py`` checks it and ``benchmarks/rollout_throughput.py``
reports the largest difference), otherwise "on-policy" training silently is not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

FAST_ARCHITECTURES = ("llama", "qwen2")


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

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.completion_ids], dim=1)  # (N, P+T)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.response_mask.long()], dim=1)  # (N, P+T)

    @property
    def lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)  # (N,)

    def to(self, device) -> "RolloutBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device)
        return RolloutBatch(**moved)

    def select(self, rows: torch.Tensor) -> "RolloutBatch":
        """The sub-batch of the given row indices (used for minibatches)."""
        picked = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in picked.items():
            if isinstance(value, torch.Tensor):
                picked[name] = value[rows]
        picked["completions"] = [self.completions[i] for i in rows.tolist()]
        return RolloutBatch(**picked)


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on the first real token of each left-padded row."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def sample_tokens(logits: torch.Tensor, temperature: float, top_p: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples one token per row and returns it with its log-prob under ``softmax(logits / T)``.

    Args:
        logits: (N, V) next-token logits.
        temperature: 0 means greedy (log-probs then use T = 1).
        top_p: nucleus mass kept (1 keeps everything).
        generator: a ``torch.Generator`` for reproducible sampling, or None.
    """
    logprobs = torch.log_softmax(logits.float() / (temperature or 1.0), dim=-1)  # (N, V)
    if temperature == 0:
        tokens = logprobs.argmax(-1)
    else:
        probs = logprobs.exp()
        if top_p < 1.0:
            sorted_probs, order = probs.sort(-1, descending=True)
            # keep the smallest prefix whose mass reaches top_p (the first token is always kept)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= top_p
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
        # inverse-CDF sampling draws N uniforms; torch.multinomial draws N*V exponentials
        cdf = probs.cumsum(-1)  # (N, V)
        u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
        tokens = (cdf <= u).sum(-1).clamp(max=cdf.shape[-1] - 1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)


class _StaticCacheDecoder:
    """Llama/Qwen2 forward over the model's own modules with a preallocated KV cache."""

    def __init__(self, model, rows: int, max_len: int):
        cfg = model.config
        self.model = model
        self.layers = model.model.layers
        attn = self.layers[0].self_attn
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling
        p = next(model.parameters())
        shape = (len(self.layers), rows, self.n_kv, max_len, self.head_dim)
        self.k = torch.empty(shape, dtype=p.dtype, device=p.device)
        self.v = torch.empty(shape, dtype=p.dtype, device=p.device)
        positions = torch.arange(max_len, device=p.device)[None]
        self.cos, self.sin = model.model.rotary_emb(p.new_empty(1), positions)  # (1, max_len, D)

    def repeat_rows(self, repeats: int, filled: int) -> None:
        """Copies each row's first ``filled`` cache slots to ``repeats`` consecutive rows."""
        rows = self.k.shape[1] // repeats
        for cache in (self.k, self.v):
            cache[:, :, :, :filled] = cache[:, :rows, :, :filled].repeat_interleave(repeats, dim=1)

    def keep_rows(self, keep: torch.Tensor, filled: int) -> None:
        """Moves the cache rows ``keep`` (indices) to the front, dropping finished rows."""
        for cache in (self.k, self.v):
            cache[:, : len(keep), :, :filled] = cache[:, keep, :, :filled]

    def attend(self, q, k, v, mask):
        if q.shape[2] > 1:  # prefill
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling,
                                                  enable_gqa=self.n_heads != self.n_kv)
        # one query per row: two batched matmuls beat CPU SDPA's flash kernel by several times
        n, L = q.shape[0], k.shape[2]
        q = q.view(n, self.n_kv, self.n_heads // self.n_kv, self.head_dim)  # (n, kv, rep, D)
        scores = (q @ k.transpose(-1, -2)) * self.scaling  # (n, kv, rep, L)
        scores = scores.masked_fill(~mask.view(n, 1, 1, L), float("-inf"))
        return (scores.softmax(-1) @ v).view(n, self.n_heads, 1, self.head_dim)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, start: int, mask: torch.Tensor) -> torch.Tensor:
        """Runs ``ids`` (n, s) written at cache slots ``start..start+s``; returns last logits (n, V).

        ``mask`` (n, 1, s, start+s) says which cache slots each query may attend to.
        """
        n, s = ids.shape
        end = start + s
        cos, sin = self.cos[0, positions], self.sin[0, positions]  # (n, s, D)
        x = self.model.model.embed_tokens(ids)  # (n, s, H)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(n, s, self.n_heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(n, s, self.n_kv, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(n, s, self.n_kv, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            self.k[i, :n, :, start:end] = k
            self.v[i, :n, :, start:end] = v
            o = self.attend(q, self.k[i, :n, :, :end], self.v[i, :n, :, :end], mask)  # (n, heads, s, D)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(n, s, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.model.lm_head(self.model.model.norm(x[:, -1]))  # (n, V)


def _decode(step, first_logits, rows: int, max_new_tokens: int, eos_id: int, pad_id: int,
            temperature, top_p, generator, compact=None):
    """The shared sampling loop.

    ``step(tokens, t)`` feeds the tokens just sampled by the still-active rows and returns their
    next logits. When ``compact(keep)`` is given, finished rows are dropped from the batch (the
    decoder stops spending compute on them); otherwise they keep decoding and are masked out.
    """
    device = first_logits.device
    tokens = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=device)  # (N, T)
    logprobs = torch.zeros(rows, max_new_tokens, device=device)  # (N, T)
    mask = torch.zeros(rows, max_new_tokens, device=device)  # (N, T)
    truncated = torch.zeros(rows, dtype=torch.bool, device=device)  # (N,)
    active = torch.arange(rows, device=device)  # global ids of the rows being decoded
    done = torch.zeros(rows, dtype=torch.bool, device=device)  # per active row
    logits = first_logits
    for t in range(max_new_tokens):
        tok, lp = sample_tokens(logits, temperature, top_p, generator)
        alive = ~done
        tokens[active, t] = torch.where(alive, tok, pad_id)
        logprobs[active, t] = lp * alive
        mask[active, t] = alive.float()
        done = done | (tok == eos_id)
        if t == max_new_tokens - 1:
            truncated[active] = ~done
            break
        if t % 4 == 3:  # a host sync every few steps: stop, or drop finished rows
            n_done = int(done.sum())
            if n_done == len(active):
                break
            if compact is not None and n_done * 4 >= len(active):
                keep = (~done).nonzero().squeeze(-1)
                compact(keep)
                active, done, tok = active[keep], done[keep], tok[keep]
        logits = step(tok, t)
    return tokens, logprobs, mask, truncated


def _fast_rollout(model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator):
    B, P = prompt_ids.shape
    N = B * group_size
    dec = _StaticCacheDecoder(model, N, P + max_new_tokens)
    causal = torch.ones(P, P, dtype=torch.bool, device=prompt_ids.device).tril()
    mask = causal[None, None] & prompt_mask.bool()[:, None, None, :]  # (B, 1, P, P)
    # left padding leaves pad queries with no key at all; letting them see everything keeps the
    # softmax finite (their outputs are never used, but a NaN would leak through 0 * NaN)
    mask = mask | ~mask.any(-1, keepdim=True)
    first = dec.forward(prompt_ids, positions_from_mask(prompt_mask), 0, mask)  # (B, V)
    dec.repeat_rows(group_size, P)
    key_ok = torch.ones(N, P + max_new_tokens, dtype=torch.bool, device=prompt_ids.device)  # (N, P+T)
    key_ok[:, :P] = prompt_mask.bool().repeat_interleave(group_size, 0)
    next_pos = prompt_mask.sum(-1).repeat_interleave(group_size)  # (N,)
    filled = P

    def step(tok, t):
        nonlocal filled
        filled = P + t + 1
        return dec.forward(tok[:, None], (next_pos + t)[:, None], P + t, key_ok[:, None, None, :filled])

    def compact(keep):
        nonlocal key_ok, next_pos
        dec.keep_rows(keep, filled)
        key_ok, next_pos = key_ok[keep], next_pos[keep]

    return _decode(step, first.repeat_interleave(group_size, 0), N, max_new_tokens, eos_id, pad_id,
                   temperature, top_p, generator, compact)


def _hf_rollout(model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator):
    ids = prompt_ids.repeat_interleave(group_size, 0)  # (N, P)
    attn = prompt_mask.repeat_interleave(group_size, 0)  # (N, P)
    cache = DynamicCache()
    out = model(input_ids=ids, attention_mask=attn, position_ids=positions_from_mask(attn),
                past_key_values=cache, use_cache=True, logits_to_keep=1)
    next_pos = attn.sum(-1)  # (N,)

    def step(tok, t):
        nonlocal attn
        attn = torch.cat([attn, torch.ones_like(attn[:, :1])], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=attn, position_ids=(next_pos + t)[:, None],
                    past_key_values=cache, use_cache=True)
        return out.logits[:, -1]

    return _decode(step, out.logits[:, -1], ids.shape[0], max_new_tokens, eos_id, pad_id, temperature, top_p, generator)


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
) -> RolloutBatch:
    """Samples ``group_size`` completions for every prompt.

    Args:
        model: a Hugging Face causal LM (put in eval mode for the duration of the call).
        tokenizer: its tokenizer; needs a pad and an EOS token.
        prompts: B prompt strings, already formatted (no special tokens are added).
        group_size: G samples per prompt.
        max_new_tokens: length cap T; rows that reach it without EOS are flagged ``truncated``.
        temperature: sampling temperature; 0 decodes greedily.
        top_p: nucleus sampling mass in (0, 1].
        generator: optional ``torch.Generator`` (on the model's device) for reproducible samples.
        engine: ``"fast"`` (static-cache decoder, Llama/Qwen2 only), ``"hf"`` (the model's own
            forward with a ``DynamicCache``, any causal LM) or ``"auto"`` (fast when supported).

    Returns:
        A ``RolloutBatch`` of N = B*G rows.
    """
    if not prompts:
        raise ValueError("prompts is empty: rollout needs at least one prompt")
    if group_size < 1 or max_new_tokens < 1:
        raise ValueError(f"group_size and max_new_tokens must be >= 1, got {group_size} and {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got temperature={temperature}, top_p={top_p}")
    if engine not in ("auto", "fast", "hf"):
        raise ValueError(f"unknown engine {engine!r}; choose 'auto', 'fast' or 'hf'")
    fast_ok = model.config.model_type in FAST_ARCHITECTURES
    if engine == "fast" and not fast_ok:
        raise ValueError(f"engine='fast' supports {FAST_ARCHITECTURES}, not {model.config.model_type!r}; use 'hf'")
    device = next(model.parameters()).device
    enc = tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    prompt_ids, prompt_mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)  # (B, P)
    run = _fast_rollout if (engine == "fast" or (engine == "auto" and fast_ok)) else _hf_rollout
    was_training = model.training
    model.eval()
    try:
        tokens, logprobs, mask, truncated = run(
            model, prompt_ids, prompt_mask, group_size, max_new_tokens,
            tokenizer.eos_token_id, tokenizer.pad_token_id, temperature, top_p, generator,
        )
    finally:
        model.train(was_training)
    keep = int(mask.sum(0).nonzero().max()) + 1  # drop trailing all-pad columns
    tokens, logprobs, mask = tokens[:, :keep], logprobs[:, :keep], mask[:, :keep]
    return RolloutBatch(
        prompt_ids=prompt_ids.repeat_interleave(group_size, 0),
        prompt_mask=prompt_mask.repeat_interleave(group_size, 0),
        completion_ids=tokens,
        response_mask=mask,
        old_logprobs=logprobs,
        group_ids=torch.arange(len(prompts), device=device).repeat_interleave(group_size),
        truncated=truncated,
        completions=tokenizer.batch_decode(tokens, skip_special_tokens=True),
        group_size=group_size,
        temperature=temperature,
    )


def compute_logprobs(model, batch: RolloutBatch, temperature: float | None = None, with_entropy: bool = False):
    """Log-probs of the batch's completion tokens under ``model`` (with gradients if enabled).

    One full forward over prompt + completion, computing logits only for completion positions.

    Args:
        model: the causal LM (policy or frozen reference).
        batch: a ``RolloutBatch``.
        temperature: defaults to the batch's sampling temperature (0 counts as 1).
        with_entropy: also return the per-token entropy of ``softmax(logits / T)``.

    Returns:
        ``logprobs`` (N, T), zero where ``response_mask`` is 0, and ``entropy`` (N, T) or None.
    """
    temperature = (batch.temperature if temperature is None else temperature) or 1.0
    T = batch.completion_ids.shape[1]
    attn = batch.attention_mask
    out = model(input_ids=batch.input_ids, attention_mask=attn, position_ids=positions_from_mask(attn),
                logits_to_keep=T + 1, use_cache=False)
    logits = out.logits[:, :-1].float() / temperature  # (N, T, V): position t predicts token t
    norm = torch.logsumexp(logits, dim=-1)  # (N, T)
    logprobs = (logits.gather(-1, batch.completion_ids[..., None]).squeeze(-1) - norm) * batch.response_mask
    entropy = None
    if with_entropy:
        entropy = (norm - (torch.softmax(logits, -1) * logits).sum(-1)) * batch.response_mask  # (N, T)
    return logprobs, entropy
