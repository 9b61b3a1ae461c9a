"""Decoding engines behind ``rl4lrm.rollout``: a sampling loop and two ways to run the model.

``fast_rollout`` runs Llama/Qwen2-style models through their own modules with a preallocated
(static) KV cache: each prompt is prefilled once and its cache copied to the G samples of its
group; single-query attention is two batched matmuls; rows that finished are dropped from the
batch every few steps. ``hf_rollout`` runs any causal LM through its regular ``forward`` with a
``DynamicCache``. Both share ``_decode``, the loop that samples tokens and records log-probs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache

FAST_ARCHITECTURES = ("llama", "qwen2")


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
        # Fused weights, built once per rollout: one matmul for q|k|v and one for gate|up cut the
        # number of small ops per decode step, which is what a tiny model's step time is made of.
        self.blocks = []
        for layer in self.layers:
            a, mlp = layer.self_attn, layer.mlp
            projections, gate_up = (a.q_proj, a.k_proj, a.v_proj), (mlp.gate_proj, mlp.up_proj)
            self.blocks.append((
                layer.input_layernorm, torch.cat([m.weight for m in projections]),
                torch.cat([m.bias for m in projections]) if a.q_proj.bias is not None else None, a.o_proj,
                layer.post_attention_layernorm, torch.cat([m.weight for m in gate_up]),
                torch.cat([m.bias for m in gate_up]) if mlp.gate_proj.bias is not None else None,
                mlp.act_fn, mlp.down_proj,
            ))

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
        qk_heads = self.n_heads + self.n_kv
        cos, sin = self.cos[0, positions, None], self.sin[0, positions, None]  # (n, s, 1, D)
        x = self.model.model.embed_tokens(ids)  # (n, s, H)
        for i, (norm1, w_qkv, b_qkv, o_proj, norm2, w_gu, b_gu, act, down) in enumerate(self.blocks):
            h = F.rms_norm(x, norm1.weight.shape, norm1.weight, norm1.variance_epsilon)
            qkv = F.linear(h, w_qkv, b_qkv).view(n, s, qk_heads + self.n_kv, self.head_dim)
            qk, v = qkv[:, :, :qk_heads], qkv[:, :, qk_heads:]  # rotary on q and k at once
            half = self.head_dim // 2
            qk = qk * cos + torch.cat([-qk[..., half:], qk[..., :half]], dim=-1) * sin
            q, k = qk[:, :, : self.n_heads].transpose(1, 2), qk[:, :, self.n_heads :].transpose(1, 2)
            self.k[i, :n, :, start:end] = k
            self.v[i, :n, :, start:end] = v.transpose(1, 2)
            o = self.attend(q, self.k[i, :n, :, :end], self.v[i, :n, :, :end], mask)  # (n, heads, s, D)
            x = x + o_proj(o.transpose(1, 2).reshape(n, s, -1))
            gate, up = F.linear(F.rms_norm(x, norm2.weight.shape, norm2.weight, norm2.variance_epsilon),
                                w_gu, b_gu).chunk(2, dim=-1)
            x = x + down(act(gate) * up)
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


def fast_rollout(model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator):
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


def hf_rollout(model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator):
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
