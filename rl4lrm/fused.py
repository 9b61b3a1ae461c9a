"""A training forward for Llama/Qwen2 that computes each distinct prompt once: fewer tokens than the HF forward.

A GRPO batch holds G completions of each prompt, and the HF forward runs every row whole: N * (P + T) tokens.
The prompt's hidden states, keys and values are the same in the G rows of a group, and the last completion
token predicts nothing, so ``shared_prompt_logits`` runs U * P + N * (T - 1) tokens (U distinct prompts): the
prompts once, then the completions attending to their prompt's keys and values (gathered per row; the backward
adds the G gradients into the one computation). On the ``addition`` zoo batch (B=16, G=8, P=6, T=4) that is 480
tokens instead of 1280, and the update (reference forward, forward, backward) costs 70 ms of one CPU thread
instead of 144. The zoo models' update is matmul-bound (a width-128 matmul over 1,000 tokens is ~0.3 ms), so
the saving is in the tokens; of the op-level changes below (as ``rl4lrm.decoding``'s sampling decoder has them),
the first saves about 12% of the forward and backward, the others fewer ops than measurable:

- prompt and completion tokens on one token axis, so each projection is one matmul (only attention is split);
- q|k|v in one matrix and gate|up in another, concatenated from the parameters at each call (``torch.cat`` is
  differentiable: the backward splits the gradient back to ``q_proj.weight``, ...);
- the RMSNorm weights folded into the next matrix (``rms(x) * w @ W.T == rms(x) @ (W * w).T``) and the attention
  scaling into the q rows, so a norm is one ``F.rms_norm`` and attention runs at ``scale=1``;
- rotary on q and k at once, with ``roll`` and the sign of ``rotate_half`` folded into the sine table;
- completions of very different lengths packed: a completion token runs only when a real token follows it;
- the completions' attention in length buckets: rows sorted by length and split into up to ``MAX_BUCKETS`` groups
  of at least ``BUCKET_ROWS``, each attending over its own longest row rather than the batch's, and the LM head on
  the run tokens only. Attention was the one step left on the padded grid, and a search trace's lengths spread
  widely: on a GRPO batch of the ``countdown-search`` base model (256 rows, mean length 39 of 164 columns) it took
  47% of the update's time (torch profiler, one CPU thread). Bucketed, the forward and backward take 0.94 s
  instead of 1.58 (4.2x the HF forward's speed instead of 2.5x), and 2.26 s instead of 2.75 after 20 GRPO steps
  (mean length 92 of 192); ``addition``'s short, alike completions keep one bucket
  (``benchmarks/fused_update.py``, ``results/fused_update.csv``).

The function is the model's; only the rounding order differs (log-probs agree with the HF forward to ~2e-6 on short
completions and 3e-5 on 192-token search traces, gradients to float32 rounding, ``tests/test_fused.py``). Models
it does not cover (another architecture, a subclass, attention dropout while training, sliding windows) go through
their own forward: ``supports`` says which.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FUSED_ARCHITECTURES = ("llama", "qwen2")
BUCKET_ROWS = 32  # rows per attention bucket at least: fewer, larger calls where lengths are alike
MAX_BUCKETS = 8
MIN_SAVING = 0.25  # the share of the attention's work a split must save, else one bucket


def supports(model) -> bool:
    """True when ``fused_logits`` computes exactly ``model``'s forward: a plain Llama/Qwen2 causal LM (not a
    subclass, whose forward may differ), without attention dropout while training and without sliding windows."""
    cfg = getattr(model, "config", None)
    if cfg is None or cfg.model_type not in FUSED_ARCHITECTURES:
        return False
    if type(model).__name__ not in ("LlamaForCausalLM", "Qwen2ForCausalLM"):
        return False
    if model.training and getattr(cfg, "attention_dropout", 0.0):
        return False
    return not getattr(cfg, "use_sliding_window", False) and not getattr(cfg, "pretraining_tp", 1) > 1


def _fused(modules, scales, norm=None):
    """The weights (out, in) of ``modules`` stacked, each scaled, times the norm weight; and their biases."""
    weight = torch.cat([m.weight * c if c != 1.0 else m.weight for m, c in zip(modules, scales)])  # (out, in)
    if norm is not None:
        weight = weight * norm.weight
    bias = None
    if modules[0].bias is not None:
        bias = torch.cat([m.bias * c if c != 1.0 else m.bias for m, c in zip(modules, scales)])  # (out,)
    return weight, bias


def attention_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive (N, 1, L, L) mask of a padded causal batch: 0 where query i may attend to key j (j <= i, j a
    real token), -inf elsewhere. A query with no key at all (a left pad) may attend to every key, which keeps its
    softmax finite; its output reaches no real position, so neither values nor gradients change."""
    L = attention_mask.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=attention_mask.device).tril()  # (L, L)
    return additive_mask(causal[None, None] & attention_mask.bool()[:, None, None, :], dtype)  # (N, 1, L, L)


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where ``allowed`` (..., queries, keys), -inf elsewhere; a query allowed no key is allowed every key."""
    allowed = allowed | ~allowed.any(-1, keepdim=True)
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(~allowed, float("-inf"))


def distinct_prompts(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor):
    """Each distinct (prompt, mask) row once: ``(ids (U, P), mask (U, P), inverse (N,))`` with
    ``ids[inverse] == prompt_ids``, in any row order (a shuffled minibatch too).

    Rows are hashed to one integer each (a weighted sum that cannot overflow for ids below 2**24) and the hashes
    deduplicated, which is about 20x faster on the CPU than ``torch.unique(dim=0)``'s row sort; the result is
    checked against the rows, and a hash collision falls back to ``torch.unique(dim=0)``.
    """
    rows = torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], 1)  # (N, 2P)
    P = prompt_ids.shape[1]
    if int(rows.max()) < 2**24 and rows.shape[1] < 2**8:
        weights = torch.randint(1, 2**31, (rows.shape[1],), generator=torch.Generator().manual_seed(0))
        hashes = (rows * weights.to(rows.device)).sum(-1)  # (N,) below 2**63
        _, inverse = torch.unique(hashes, return_inverse=True)  # (N,)
        first = torch.empty(int(inverse.max()) + 1, dtype=torch.long, device=rows.device)
        first.scatter_(0, inverse, torch.arange(len(rows), device=rows.device))  # (U,) one row of each
        if torch.equal(rows[first][inverse], rows):
            return prompt_ids[first], prompt_mask[first], inverse
    keys, inverse = torch.unique(rows, dim=0, return_inverse=True)
    return keys[:, :P], keys[:, P:].to(prompt_mask.dtype), inverse


def _linear(x, weight, bias=None, residual=None):
    """x @ weight.T (+ bias) (+ residual) for 2-D x, the residual add riding on ``addmm``."""
    if residual is None:
        return F.linear(x, weight, bias)
    return torch.addmm(residual if bias is None else residual + bias, x, weight.t())


def _grid(packed: torch.Tensor, run: torch.Tensor | None, N: int, S: int) -> torch.Tensor:
    """The M run tokens' rows (M, ...) placed at their ``run`` indices of an (N, S, ...) grid, zeros elsewhere
    (``run`` None: all N * S tokens ran, in grid order)."""
    if run is None:
        return packed.view(N, S, *packed.shape[1:])
    grid = packed.new_zeros((N * S, *packed.shape[1:])).index_copy(0, run, packed)  # differentiable in packed
    return grid.view(N, S, *packed.shape[1:])


def _packed(grid: torch.Tensor, run: torch.Tensor | None) -> torch.Tensor:
    """The inverse of ``_grid``: rows (N, S, ...) -> the run tokens' rows (M, ...)."""
    flat = grid.reshape(grid.shape[0] * grid.shape[1], *grid.shape[2:])  # (N*S, ...)
    return flat if run is None else flat[run]


def attention_buckets(queries: torch.Tensor, keys: int) -> list[tuple[torch.Tensor, int]]:
    """Rows grouped for the completions' attention: ``(row indices, width)`` pairs, the rows sorted by ``queries``
    (N,), the number of completion tokens each row runs, and split into up to ``MAX_BUCKETS`` groups of at least
    ``BUCKET_ROWS`` rows, each group's width its most queries; rows that run no token are left out. One group when
    the split would save less than ``MIN_SAVING`` of the attention's work (rows x width x (``keys`` prompt columns
    + width)): a small batch, or lengths alike. The lengths are read on the host once (one sync on a GPU)."""
    order = torch.argsort(queries, stable=True)
    lengths = queries[order].tolist()  # ascending
    skip = lengths.count(0)
    order, lengths = order[skip:], lengths[skip:]
    count = max(1, min(MAX_BUCKETS, len(order) // BUCKET_ROWS))
    buckets, end = [], 0
    for rows in order.tensor_split(count):
        if len(rows):
            end += len(rows)
            buckets.append((rows, lengths[end - 1]))

    def work(rows, width):
        return len(rows) * width * (keys + width)

    if len(buckets) > 1 and sum(work(*b) for b in buckets) > (1 - MIN_SAVING) * work(order, lengths[-1]):
        return [(order, lengths[-1])]
    return buckets


def _bucket_plan(rows, w: int, queries, starts, prompt_mask, full_mask, P: int, dtype):
    """What one bucket's attention needs, built once for all layers: ``(rows, index, valid, bias)``.

    ``index`` (n, w) holds the packed position of each row's completion token t (w the bucket's longest row),
    ``valid`` (n, w) which of them the row runs, and ``bias`` (n, 1, w, P + w) the additive mask over the
    prompt and the bucket's completion columns (``additive_mask``)."""
    t = torch.arange(w, device=rows.device)  # (w,)
    valid = t[None] < queries[rows, None]  # (n, w)
    index = torch.where(valid, starts[rows, None] + t[None], 0)  # (n, w): invalid slots read token 0, unused
    causal = torch.ones(w, w, dtype=torch.bool, device=rows.device).tril()  # (w, w)
    allowed = torch.cat(
        [
            prompt_mask.bool()[rows, None, None, :].expand(len(rows), 1, w, P),  # every prompt token
            causal[None, None] & full_mask[rows, None, None, P : P + w].bool(),  # earlier completion tokens
        ],
        -1,
    )  # (n, 1, w, P + w)
    return rows, index, valid, additive_mask(allowed, dtype)


def shared_prompt_logits(
    model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion_ids: torch.Tensor, completion_mask
) -> torch.Tensor:
    """The logits that predict each completion token, computing every distinct prompt once.

    Equal to ``model(cat(prompt, completion), logits_to_keep=T + 1).logits[:, :-1]`` for left-padded prompts
    and right-padded completions, differentiably. The G rows of a group share their prompt, so the prompt's
    hidden states, keys and values are the same in all of them: they are computed once per distinct prompt
    (U rows) and gathered for the completions' attention; the gradient of each gathered copy flows back to the
    one computation. A completion token runs only when a real token follows it (the last one predicts nothing
    and pads predict masked positions), so the forward covers U * P + sum(length - 1) tokens instead of
    N * (P + T); positions that predict no real token hold logits of 0 when packed.

    Args:
        model: a model ``supports`` accepts.
        prompt_ids: (N, P) left-padded prompts.
        prompt_mask: (N, P) 1 on real prompt tokens.
        completion_ids: (N, T) completions.
        completion_mask: (N, T) the attention mask of the completion columns (1 on real tokens).

    Returns:
        Logits (N, T, V) in the model's dtype, row t predicting completion token t.
    """
    inner, layers = model.model, model.model.layers
    N, P = prompt_ids.shape
    T = completion_ids.shape[1]
    S = T - 1  # completion tokens whose output predicts a later token
    H, K = model.config.num_attention_heads, model.config.num_key_value_heads
    D, eps = layers[0].self_attn.head_dim, layers[0].input_layernorm.variance_epsilon
    prompt_mask = prompt_mask.long()
    u_ids, u_mask, inverse = distinct_prompts(prompt_ids, prompt_mask)  # (U, P), (U, P), (N,)
    U, Np = len(u_ids), len(u_ids) * P  # Np prompt tokens, then M completion tokens, on one token axis
    full_mask = torch.cat([prompt_mask, completion_mask.long()], 1)  # (N, P+T)
    # completion token t is run only when a real token follows it (its output predicts one, or its key is read)
    steps = torch.arange(1, T + 1, device=full_mask.device)  # (T,)
    last = (completion_mask.long() * steps).max(-1).values  # (N,) 1 + the index of each row's last real token
    run = (steps[:S] < last[:, None]).flatten().nonzero().squeeze(1)  # (M,) indices into the (N, S) grid
    if len(run) > 0.8 * N * S:  # packing would save less than its gathers and scatters cost: run the grid
        run = None
    positions = torch.cat(
        [(u_mask.cumsum(-1) - 1).clamp(min=0).flatten(), _packed((full_mask.cumsum(-1) - 1)[:, P : P + S], run)]
    )  # (Np + M,), as positions_from_mask
    x = inner.embed_tokens(torch.cat([u_ids.flatten(), _packed(completion_ids[:, :S], run)]))  # (Np + M, hidden)
    cos, sin = inner.rotary_emb(x, positions[None])  # (1, Np + M, D) each
    sign = torch.ones(D, dtype=sin.dtype, device=sin.device)
    sign[: D // 2] = -1  # rotate_half(x) == roll(x, D/2) * sign
    cos, sin = cos[0, :, None], (sin[0] * sign)[:, None]  # (Np + M, 1, D): broadcast over heads
    bias_p = attention_bias(u_mask, x.dtype)  # (U, 1, P, P)
    # the completions' attention, bucket by bucket: each row's queries are its run tokens 0 .. last - 2
    queries = (last - 1).clamp(min=0)  # (N,)
    starts = (queries.cumsum(0) - queries) if run is not None else torch.arange(N, device=x.device) * S  # (N,)
    plan = [
        _bucket_plan(*b, queries, starts, prompt_mask, full_mask, P, x.dtype) for b in attention_buckets(queries, P)
    ]
    ran = torch.cat([index[valid] for _, index, valid, _ in plan]) if plan else None  # packed positions, in order
    M = x.shape[0] - Np
    hidden, gqa = x.shape[-1], H != K
    for layer in layers:
        a, mlp = layer.self_attn, layer.mlp
        w_qkv, b_qkv = _fused((a.q_proj, a.k_proj, a.v_proj), (a.scaling, 1.0, 1.0), layer.input_layernorm)
        qkv = _linear(F.rms_norm(x, (hidden,), None, eps), w_qkv, b_qkv).view(-1, H + 2 * K, D)  # (tokens, H+2K, D)
        qk = qkv[:, : H + K]
        qk = torch.addcmul(qk * cos, qk.roll(D // 2, -1), sin)  # rotary on q and k at once
        q, k, v = qk[:, :H], qk[:, H:], qkv[:, H + K :]
        kp = k[:Np].view(U, P, K, D).transpose(1, 2)  # (U, K, P, D)
        vp = v[:Np].view(U, P, K, D).transpose(1, 2)
        o = F.scaled_dot_product_attention(
            q[:Np].view(U, P, H, D).transpose(1, 2), kp, vp, attn_mask=bias_p, scale=1.0, enable_gqa=gqa
        )  # (U, H, P, D)
        o = o.transpose(1, 2).reshape(Np, H * D)
        if M > 0:
            outs = []
            for rows, index, valid, bias in plan:
                qc, kc, vc = (z[Np:][index].transpose(1, 2) for z in (q, k, v))  # (n, H or K, w, D)
                kc, vc = torch.cat([kp[inverse[rows]], kc], 2), torch.cat([vp[inverse[rows]], vc], 2)  # (n, K, P+w, D)
                oc = F.scaled_dot_product_attention(qc, kc, vc, attn_mask=bias, scale=1.0, enable_gqa=gqa)
                outs.append(oc.transpose(1, 2)[valid].reshape(-1, H * D))  # (run tokens of the bucket, H*D)
            oc = o.new_zeros((M, H * D))  # a token no real query reads (dense grid, past a row's end) stays 0
            o = torch.cat([o, oc.index_copy(0, ran, torch.cat(outs)) if plan else oc])  # (tokens, H*D)
        x = _linear(o, a.o_proj.weight, a.o_proj.bias, residual=x)
        w_gu, b_gu = _fused((mlp.gate_proj, mlp.up_proj), (1.0, 1.0), layer.post_attention_layernorm)
        gate, up = _linear(F.rms_norm(x, (hidden,), None, eps), w_gu, b_gu).chunk(2, dim=-1)  # (tokens, I) each
        x = _linear(mlp.act_fn(gate) * up, mlp.down_proj.weight, mlp.down_proj.bias, residual=x)
    x = torch.cat([x[:Np].view(U, P, hidden)[:, -1], x[Np:]])  # (U + M, hidden): the last prompt position
    # predicts token 0; the head runs on these tokens only, and the logits go to the grid
    w_head, b_head = _fused((model.lm_head,), (1.0,), inner.norm)
    logits = F.linear(F.rms_norm(x, (hidden,), None, inner.norm.variance_epsilon), w_head, b_head)  # (U + M, V)
    return torch.cat([logits[:U][inverse, None], _grid(logits[U:], run, N, S)], 1)  # (N, T, V), 0 where none ran
