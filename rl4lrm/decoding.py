"""Decoding engines behind ``rl4lrm.rollout``: a sampling loop and two ways to run the model.

``fast_rollout`` runs Llama/Qwen2-style models through their own weights (fused once per rollout)
with a preallocated (static) KV cache: each prompt is prefilled once and its cache copied to the G
samples of its group; single-query attention is two batched matmuls; rows that finished are dropped
from the batch (checked every step on the CPU, every 4 steps on a GPU). ``hf_rollout`` runs any
causal LM through its regular ``forward`` with a ``DynamicCache``. Both share ``decode_loop``, the loop
that samples tokens and records log-probs.

Both can sample in a lower precision than the model's (``PRECISIONS``): the fast decoder casts its fused weights,
KV cache and activations, the HF path runs under ``torch.autocast``. Sampling then runs a slightly different
policy from the one the update trains (``rl4lrm.trainer.TrainConfig.rollout_precision`` says how the trainer
measures and corrects that).
"""

from __future__ import annotations

import functools
import inspect
import weakref

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from rl4lrm.utils import eval_mode

FAST_ARCHITECTURES = ("llama", "qwen2")
PRECISIONS = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Sampling precisions by name; ``"auto"`` samples in the model's own dtype."""


def sampling_dtype(model, precision: str) -> torch.dtype:
    """The dtype a rollout of ``model`` computes in under ``precision`` (a key of ``PRECISIONS``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    return PRECISIONS[precision] or next(model.parameters()).dtype


def unwrap_adapters(model):
    """The transformers model inside a peft ``PeftModel`` (LoRA), else ``model`` itself.

    The fast decoder walks ``model.model.layers``; a LoRA-wrapped layer still exposes the frozen base weight as
    ``.weight``, and ``effective_weight`` adds the adapter's delta back.
    """
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def effective_weight(module) -> torch.Tensor:
    """A linear module's weight as its forward applies it: for a peft LoRA layer, base + scaling * B @ A of each
    active adapter (unless merged or disabled), so the fused decoder samples from the adapted policy."""
    weight = module.weight
    if getattr(module, "merged", True) or getattr(module, "disable_adapters", True) or not hasattr(module, "lora_A"):
        return weight
    for name in module.active_adapters:
        if name in module.lora_A:
            weight = weight + module.get_delta_weight(name)
    return weight


@functools.cache
def _cache_argument(forward) -> str:
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def cache_kwargs(model, cache) -> dict:
    """``{name: cache}`` for ``model``'s forward: ``cache`` where transformers has it (5.2x, which deprecates the old
    name and drops it in 5.40), else ``past_key_values`` (4.56 ... 5.1x), so no version warns or breaks. A peft
    wrapper's forward takes ``**kwargs``, so the model inside it decides."""
    return {_cache_argument(type(unwrap_adapters(model)).forward): cache}  # a peft wrapper passes it on


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on the first real token of each left-padded row."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def trim_pad_columns(mask: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``mask`` (N, T) and each of ``tensors`` (N, T, ...) cut after the last column any row uses."""
    keep = int(mask.sum(0).nonzero().max()) + 1
    return tuple(x[:, :keep] for x in (mask, *tensors))


def sample_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, generator
) -> tuple[torch.Tensor, torch.Tensor]:
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


_KV_WORKSPACE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (k, v) kept between CPU rollouts


def _kv_buffers(model, shape: tuple[int, ...], dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value caches of ``shape`` (layers, rows, kv heads, slots, head dim), in ``dtype``.

    On the CPU a fresh multi-megabyte tensor costs a page fault per 4 KiB the first time it is written (copying
    the prompt cache to 128 rows took 0.85 ms in fresh memory, 0.23 ms in reused memory), so the buffers of the
    last rollout are kept with the model and reused (sliced) when they are big enough; two rollouts of one model
    must therefore not run at the same time (from two threads). On a GPU the caching allocator already reuses
    memory.
    """
    if device.type != "cpu":
        return tuple(torch.empty(shape, dtype=dtype, device=device) for _ in range(2))
    kept = _KV_WORKSPACE.get(model)
    if kept is None or kept[0].dtype != dtype or any(have < need for have, need in zip(kept[0].shape, shape)):
        grown = tuple(max(need, have) for need, have in zip(shape, kept[0].shape if kept is not None else shape))
        kept = tuple(torch.empty(grown, dtype=dtype) for _ in range(2))
        _KV_WORKSPACE[model] = kept
    index = tuple(slice(0, size) for size in shape)
    return kept[0][index], kept[1][index]


class _StaticCacheDecoder:
    """Llama/Qwen2 forward over the model's own weights with a preallocated KV cache.

    A tiny model's decode step is made of many small ops (a few microseconds each) around a few small
    matmuls, so this forward keeps the op count low: the weights are fused once per rollout (q|k|v in one
    matrix, gate|up in another) with the RMSNorm weights and the attention scaling folded in, activations
    stay 2-D (rows, hidden), residual adds ride on ``addmm``, and rotary uses ``roll`` with the sign of
    ``rotate_half`` folded into the sine table. The arithmetic is the model's; only the rounding order
    differs (log-probs agree with a training-mode forward to about 1e-5).

    With ``dtype`` other than the model's, the weights are fused in the model's dtype and then cast, and the
    activations and the KV cache are kept in ``dtype``: the whole forward runs in that precision.
    """

    def __init__(self, model, rows: int, max_len: int, dtype: torch.dtype, own_cache: bool = False):
        """``own_cache``: a zeroed KV cache of its own rather than the buffers ``_kv_buffers`` shares between
        rollouts (a decoder kept between rollouts needs one)."""
        model = unwrap_adapters(model)
        cfg = model.config
        self.dtype = dtype
        self.embed_tokens = model.model.embed_tokens  # the module, not the model: a kept decoder must not keep it
        layers = model.model.layers
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = layers[0].self_attn.head_dim
        self.eps = layers[0].input_layernorm.variance_epsilon
        p = next(model.parameters())
        shape = (len(layers), rows, self.n_kv, max_len, self.head_dim)
        if own_cache:
            self.k, self.v = (torch.zeros(shape, dtype=dtype, device=p.device) for _ in range(2))
        else:
            self.k, self.v = _kv_buffers(model, shape, dtype, p.device)
        cos, sin = model.model.rotary_emb(p.new_empty(1), torch.arange(max_len, device=p.device)[None])  # (1, L, D)
        sign = torch.ones(self.head_dim, dtype=sin.dtype, device=p.device)
        sign[: self.head_dim // 2] = -1  # rotate_half(x) = roll(x, D/2) * sign
        self.cos, self.sin = cos[0].to(dtype), (sin[0] * sign).to(dtype)  # (max_len, D)
        self.blocks, self.lm_head = self._fuse(model)

    def _fuse(self, model):
        """The per-layer fused weights (``self.blocks``) and the head fused with the final norm."""
        dtype = self.dtype

        def cast(x):
            return None if x is None else x.to(dtype)

        def fused(modules, scales, norm):  # W (out, in) stacked, scaled per module, times the norm weight
            weight = torch.cat([effective_weight(m) * c for m, c in zip(modules, scales)]) * norm.weight
            bias = torch.cat([m.bias * c for m, c in zip(modules, scales)]) if modules[0].bias is not None else None
            return cast(weight.t()), cast(bias)  # (in, out) for torch.mm / torch.addmm

        blocks = []
        for layer in model.model.layers:
            a, mlp = layer.self_attn, layer.mlp
            qkv = fused((a.q_proj, a.k_proj, a.v_proj), (a.scaling, 1.0, 1.0), layer.input_layernorm)
            gate_up = fused((mlp.gate_proj, mlp.up_proj), (1.0, 1.0), layer.post_attention_layernorm)
            blocks.append(
                (
                    *qkv,
                    cast(effective_weight(a.o_proj).t()),
                    cast(a.o_proj.bias),
                    *gate_up,
                    mlp.act_fn,
                    cast(effective_weight(mlp.down_proj).t()),
                    cast(mlp.down_proj.bias),
                )
            )
        return blocks, fused((model.lm_head,), (1.0,), model.model.norm)

    def load_weights(self, model) -> None:
        """Fuses ``model``'s weights (the same architecture) again, into this decoder's tensors in place, so that
        anything holding their addresses (a captured CUDA graph) computes with the new ones. The tensors must be
        the decoder's own: a weight used as it is (the model's dtype, no LoRA) is a view of a parameter until
        cloned (``rl4lrm.cuda_graphs.GraphDecoder`` does)."""
        blocks, lm_head = self._fuse(unwrap_adapters(model))
        for old, new in zip((*self.blocks, self.lm_head), (*blocks, lm_head)):
            for o, n in zip(old, new):
                if isinstance(o, torch.Tensor):
                    o.copy_(n)

    def repeat_rows(self, rows: int, repeats: int, filled: int) -> None:
        """Copies each of the first ``rows`` rows' first ``filled`` cache slots to ``repeats`` consecutive rows."""
        for cache in (self.k, self.v):
            cache[:, : rows * repeats, :, :filled] = cache[:, :rows, :, :filled].repeat_interleave(repeats, dim=1)

    def keep_rows(self, keep: torch.Tensor, filled: int) -> None:
        """Moves the cache rows ``keep`` (indices) to the front, dropping finished rows."""
        for cache in (self.k, self.v):
            cache[:, : len(keep), :, :filled] = cache[:, keep, :, :filled]

    def attend(self, q, k, v, bias):
        """q (n, heads, s, D) against cache slots k, v (n, kv, L, D); bias (n, 1, s, L) is 0 or -inf."""
        n, _, s, D = q.shape
        if s > 1:  # prefill
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0, enable_gqa=self.n_heads != self.n_kv)
            return o.transpose(1, 2).reshape(n * s, -1)
        # one query per row: two batched matmuls beat CPU SDPA's flash kernel here, and a contiguous q
        # avoids matmul's slow path for strided operands
        q = q.reshape(n, self.n_kv, self.n_heads // self.n_kv, D).contiguous()  # (n, kv, rep, D)
        scores = torch.matmul(q, k.transpose(-1, -2)).add_(bias)  # (n, kv, rep, L)
        return torch.matmul(scores.softmax(-1), v).view(n, -1)  # (n, heads*D)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, start, bias: torch.Tensor) -> torch.Tensor:
        """Runs ``ids`` (n, s) written at cache slots ``start..start+s``; returns last logits (n, V).

        ``start`` is an int, and then ``bias`` (n, 1, s, start+s), in the decoder's dtype, is 0 where a query may
        attend to a cache slot and -inf elsewhere. Or it is a (1,) tensor holding the slot of a single query
        (s = 1), and then the query attends over every slot of the cache with ``bias`` (n, 1, 1, slots): no shape
        depends on the slot's value, as a CUDA graph needs (``rl4lrm.cuda_graphs``).
        """
        n, s = ids.shape
        static = isinstance(start, torch.Tensor)
        end = self.k.shape[3] if static else start + s
        H, K, D = self.n_heads, self.n_kv, self.head_dim
        cos, sin = self.cos[positions].view(n * s, 1, D), self.sin[positions].view(n * s, 1, D)
        x = self.embed_tokens(ids).view(n * s, -1).to(self.dtype)  # (n*s, hidden)
        for i, (w_qkv, b_qkv, w_o, b_o, w_gu, b_gu, act, w_down, b_down) in enumerate(self.blocks):
            qkv = _linear(F.rms_norm(x, x.shape[-1:], None, self.eps), w_qkv, b_qkv).view(n * s, H + 2 * K, D)
            qk = qkv[:, : H + K]  # rotary on q and k at once
            qk = torch.addcmul(qk * cos, qk.roll(D // 2, -1), sin)
            new_k = qk[:, H:].view(n, s, K, D).transpose(1, 2)  # (n, kv, s, D)
            new_v = qkv[:, H + K :].view(n, s, K, D).transpose(1, 2)
            if static:
                self.k[i, :n].index_copy_(2, start, new_k)
                self.v[i, :n].index_copy_(2, start, new_v)
            else:
                self.k[i, :n, :, start:end] = new_k
                self.v[i, :n, :, start:end] = new_v
            q = qk[:, :H].view(n, s, H, D).transpose(1, 2)  # (n, heads, s, D)
            o = self.attend(q, self.k[i, :n, :, :end], self.v[i, :n, :, :end], bias)  # (n*s, heads*D)
            x = _linear(o, w_o, b_o, residual=x)
            gate, up = _linear(F.rms_norm(x, x.shape[-1:], None, self.eps), w_gu, b_gu).chunk(2, dim=-1)
            x = _linear(act(gate).mul_(up), w_down, b_down, residual=x)
        last = x.view(n, s, -1)[:, -1]
        return _linear(F.rms_norm(last, last.shape[-1:], None, self.eps), *self.lm_head)  # (n, V)


def _linear(x, w_t, bias=None, residual=None):
    """x @ w_t (+ bias) (+ residual), the additions fused into one ``addmm`` where there is one."""
    if residual is None:
        return torch.mm(x, w_t) if bias is None else torch.addmm(bias, x, w_t)
    return torch.addmm(residual if bias is None else residual + bias, x, w_t)


def decode_loop(
    step,
    first_logits,
    rows: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    temperature,
    top_p,
    generator,
    compact=None,
):
    """The shared sampling loop (also behind ``rl4lrm.latent.model``'s answer).

    ``step(tokens, t)`` feeds the tokens just sampled by the still-active rows and returns their
    next logits (N, V); what a row samples after its EOS is never recorded, so ``step`` need not mask it.
    When ``compact(keep)`` is given, finished rows are dropped from the batch (the
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
    # stopping or dropping rows reads a count on the host: free on the CPU, a stall of the queue on a GPU
    check_every = 1 if device.type == "cpu" else 4
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
        if t % check_every == check_every - 1:  # stop, or drop finished rows
            n_done = int(done.sum())
            if n_done == len(active):
                break
            if compact is not None and n_done * 4 >= len(active):
                keep = (~done).nonzero().squeeze(-1)
                compact(keep)
                active, done, tok = active[keep], done[keep], tok[keep]
        logits = step(tok, t)
    return tokens, logprobs, mask, truncated


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean attention mask as an additive one: 0 where allowed, -inf elsewhere."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, float("-inf"))


def prefill(dec: _StaticCacheDecoder, prompt_ids, prompt_mask, group_size: int, dtype):
    """Runs the B prompts through ``dec`` once and copies their caches to the G rows of each group.

    Returns:
        The first logits of the N = B*G rows (N, V), the additive key bias of their prompt slots (N, P): -inf on
        prompt pads, and each row's next position (N,).
    """
    P = prompt_ids.shape[1]
    causal = torch.ones(P, P, dtype=torch.bool, device=prompt_ids.device).tril()
    mask = causal[None, None] & prompt_mask.bool()[:, None, None, :]  # (B, 1, P, P)
    # left padding leaves pad queries with no key at all; letting them see everything keeps the
    # softmax finite (their outputs are never used, but a NaN would leak through 0 * NaN)
    mask = mask | ~mask.any(-1, keepdim=True)
    first = dec.forward(prompt_ids, positions_from_mask(prompt_mask), 0, _additive(mask, dtype))  # (B, V)
    dec.repeat_rows(len(prompt_ids), group_size, P)
    prompt_bias = _additive(prompt_mask.bool().repeat_interleave(group_size, 0), dtype)  # (N, P)
    return first.repeat_interleave(group_size, 0), prompt_bias, prompt_mask.sum(-1).repeat_interleave(group_size)


def fast_rollout(
    model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator, dtype
):
    B, P = prompt_ids.shape
    N = B * group_size
    dec = _StaticCacheDecoder(model, N, P + max_new_tokens, dtype)
    first, prompt_bias, next_pos = prefill(dec, prompt_ids, prompt_mask, group_size, dtype)
    key_bias = torch.zeros(N, P + max_new_tokens, dtype=dtype, device=prompt_ids.device)  # (N, P+T): 0 or -inf
    key_bias[:, :P] = prompt_bias
    filled = P

    def step(tok, t):
        nonlocal filled
        filled = P + t + 1
        return dec.forward(tok[:, None], (next_pos + t)[:, None], P + t, key_bias[:, None, None, :filled])

    def compact(keep):
        nonlocal key_bias, next_pos
        dec.keep_rows(keep, filled)
        key_bias, next_pos = key_bias[keep], next_pos[keep]

    return decode_loop(step, first, N, max_new_tokens, eos_id, pad_id, temperature, top_p, generator, compact)


def hf_rollout(
    model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator, dtype
):
    lowered = dtype != next(model.parameters()).dtype  # autocast: products in dtype, reductions in float32
    autocast = torch.autocast(prompt_ids.device.type, dtype=dtype, enabled=lowered)
    with eval_mode(model), autocast:  # no dropout while sampling (the static-cache decoder never applies any)
        ids = prompt_ids.repeat_interleave(group_size, 0)  # (N, P)
        attn = prompt_mask.repeat_interleave(group_size, 0)  # (N, P)
        cache = DynamicCache()
        out = model(
            input_ids=ids,
            attention_mask=attn,
            position_ids=positions_from_mask(attn),
            **cache_kwargs(model, cache),
            use_cache=True,
            logits_to_keep=1,
        )
        next_pos = attn.sum(-1)  # (N,)

        def step(tok, t):
            nonlocal attn
            attn = torch.cat([attn, torch.ones_like(attn[:, :1])], dim=1)
            out = model(
                input_ids=tok[:, None],
                attention_mask=attn,
                position_ids=(next_pos + t)[:, None],
                **cache_kwargs(model, cache),
                use_cache=True,
            )
            return out.logits[:, -1]

        return decode_loop(
            step, out.logits[:, -1], ids.shape[0], max_new_tokens, eos_id, pad_id, temperature, top_p, generator
        )
