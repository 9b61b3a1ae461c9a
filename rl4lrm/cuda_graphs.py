"""The CUDA-graph rollout engine (``rollout(..., engine="graph")``): the fast decoder's decode step, captured once and
replayed.

On a GPU a tiny model's decode step is launch-bound: a few hundred small kernels, each finished before the host has
queued the next (matrix products were 9-31% of the fast engine's time on an H200). A CUDA graph records the kernels of
one step once; replaying it queues them all with one launch. A graph replays fixed addresses and fixed shapes, so:

- the decoder (its fused weights and its KV cache) is kept with the model between rollouts, and each rollout copies
  the model's current weights into it in place (``GraphDecoder.load_weights``);
- the step writes its key and value at a slot held in a tensor and attends over every slot of the cache, the slots
  not written yet masked out, so that no shape depends on the step;
- one graph is captured per bucket of row counts (powers of two, up to the cache's rows). When finished rows are
  dropped, the step replays the smallest bucket that holds the rows still decoding; the rows past them compute
  values that nobody reads.

Sampling stays outside the graph: it is a dozen small kernels, and the caller's ``torch.Generator`` keeps its own
state. On the CPU nothing is captured and the same static step runs eagerly (the unit tests check its arithmetic
against the fast engine there; ``make test-gpu`` checks the captured graphs).
"""

from __future__ import annotations

import weakref
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rl4lrm.decoding import _StaticCacheDecoder, decode_loop, prefill, unwrap_adapters

_KEPT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its GraphDecoder


def bucket(n: int, rows: int) -> int:
    """The rows a step over ``n`` live rows replays: the smallest power of two >= n (at least 8), at most ``rows``."""
    return min(rows, max(8, 1 << (n - 1).bit_length()))


def _own(x):
    return x.clone() if isinstance(x, torch.Tensor) else x


class GraphDecoder:
    """A fast decoder with static inputs and one CUDA graph per bucket of rows (``bucket``).

    Args:
        model: a Llama/Qwen2-style causal LM (``rl4lrm.decoding.FAST_ARCHITECTURES``).
        rows: the most rows a rollout may decode (B*G).
        slots: the most cache slots a rollout may fill (prompt width + max new tokens).
        dtype: the dtype it computes in.

    It holds its own copy of the weights in ``dtype`` (for SmolLM2-135M in float32, 0.6 GiB with the embedding
    table) besides its KV cache, for as long as the model lives.
    """

    def __init__(self, model, rows: int, slots: int, dtype: torch.dtype):
        self.dec = dec = _StaticCacheDecoder(model, rows, slots, dtype, own_cache=True)
        self.rows, self.slots, self.dtype = rows, slots, dtype
        device = dec.k.device
        self.capture = device.type == "cuda"
        # its own copies: a weight that is a view of a parameter would be overwritten by ``load_weights``; the
        # embedding table, which the eager decoder reads from the model, could be replaced there (a state dict
        # loaded with ``assign=True``) and the graph would read freed memory. Its own cache, zeroed: the CPU
        # decoder's is shared with other rollouts, and every slot must stay finite, since a masked slot's NaN
        # would still leak through 0 * NaN in softmax @ v
        dec.blocks = [tuple(_own(x) for x in block) for block in dec.blocks]
        dec.lm_head = tuple(_own(x) for x in dec.lm_head)
        dec.embed_tokens = torch.nn.Embedding.from_pretrained(_own(dec.embed_tokens.weight.detach()))
        self.ids = torch.zeros(rows, 1, dtype=torch.long, device=device)  # the tokens just sampled
        self.positions = torch.zeros(rows, 1, dtype=torch.long, device=device)  # their position ids
        self.slot = torch.zeros(1, dtype=torch.long, device=device)  # the cache slot they are written at
        self.key_bias = torch.zeros(rows, slots, dtype=dtype, device=device)  # 0, or -inf on prompt pads
        self.slot_index = torch.arange(slots, device=device)
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}

    def fits(self, model, rows: int, slots: int, dtype: torch.dtype) -> bool:
        """Whether a rollout of ``rows`` x ``slots`` in ``dtype`` on ``model``'s device can reuse this decoder."""
        return (
            rows <= self.rows
            and slots <= self.slots
            and dtype == self.dtype
            and next(model.parameters()).device == self.dec.k.device
        )

    def load_weights(self, model) -> None:
        """Copies ``model``'s current weights into the decoder (in place: the graphs keep their addresses)."""
        self.dec.load_weights(model)
        self.dec.embed_tokens.weight.copy_(unwrap_adapters(model).model.embed_tokens.weight)

    def start(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, group_size: int):
        """Prefills the prompts (eagerly) and sets the static inputs for N = B*G rows.

        Returns:
            The first logits (N, V) and each row's next position (N,).
        """
        first, prompt_bias, next_pos = prefill(self.dec, prompt_ids, prompt_mask, group_size, self.dtype)
        self.key_bias.zero_()  # rows past N decode too, when their bucket holds them: they stay finite
        self.key_bias[: len(first), : prompt_bias.shape[1]] = prompt_bias
        self.ids.zero_()
        self.positions.zero_()
        return first, next_pos

    def _step(self, n: int) -> torch.Tensor:
        """The captured computation: one decode step of the first ``n`` rows, logits (n, V)."""
        bias = self.key_bias[:n].masked_fill(self.slot_index > self.slot, float("-inf"))  # (n, slots)
        return self.dec.forward(self.ids[:n], self.positions[:n], self.slot, bias[:, None, None, :])

    def _capture(self, n: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        # warm up on a side stream first (cuBLAS handles, lazy initialisation), as torch.cuda.graphs asks; the
        # inputs are already those of the step being decoded, so the warm-up writes what the replay then rewrites
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._step(n)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: AsyncTrainer samples in a thread while its learner keeps launching kernels in another
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            logits = self._step(n)
        return graph, logits

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, slot: int) -> torch.Tensor:
        """Decodes ``tokens`` (n,) at ``positions`` (n,), written at cache ``slot``; returns their logits (n, V).

        The logits are a view of the graph's output: read them before the next step.
        """
        n = len(tokens)
        self.ids[:n, 0] = tokens
        self.positions[:n, 0] = positions
        self.slot.fill_(slot)
        rows = bucket(n, self.rows)
        if not self.capture:
            return self._step(rows)[:n]
        if rows not in self.graphs:
            self.graphs[rows] = self._capture(rows)
        graph, logits = self.graphs[rows]
        graph.replay()
        return logits[:n]

    def keep_rows(self, keep: torch.Tensor, filled: int) -> None:
        """Moves rows ``keep`` (indices) to the front of the cache and of the key bias."""
        self.dec.keep_rows(keep, filled)
        self.key_bias[: len(keep)] = self.key_bias[keep]


def graph_decoder(model, rows: int, slots: int, dtype: torch.dtype) -> GraphDecoder:
    """The ``GraphDecoder`` kept with ``model``, with its current weights; a new one (new graphs) when the kept one
    is too small, in another dtype or on another device. Two rollouts of one model must not run at once."""
    kept = _KEPT.get(model)
    if kept is not None and kept.fits(model, rows, slots, dtype):
        kept.load_weights(model)
        return kept
    if kept is not None:  # grow, so that alternating sizes do not capture again and again
        rows, slots = max(rows, kept.rows), max(slots, kept.slots)
    _KEPT[model] = GraphDecoder(model, rows, slots, dtype)
    return _KEPT[model]


class _OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[("view" if func.is_view else "compute", func.__name__.split(".")[0])] += 1
        return func(*args, **(kwargs or {}))


@torch.no_grad()
def step_ops(model, rows: int = 8, slots: int = 32) -> Counter:
    """The operations one decode step of ``model`` dispatches, counted by ``(kind, name)``: kind ``"compute"`` (each
    runs at least one kernel, which a GPU launches from the host one after another unless a graph replays them) or
    ``"view"`` (metadata only, no kernel). The step is ``GraphDecoder``'s static one, run eagerly, on a fresh decoder
    of ``rows`` x ``slots`` in the model's dtype."""
    dec = GraphDecoder(model, rows, slots, next(model.parameters()).dtype)
    with _OpCounter() as counter:
        dec._step(rows)
    return counter.ops


def graph_rollout(
    model, prompt_ids, prompt_mask, group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator, dtype
):
    """``rl4lrm.decoding.fast_rollout``'s contract, decoding through ``graph_decoder(model, ...)``."""
    B, P = prompt_ids.shape
    dec = graph_decoder(model, B * group_size, P + max_new_tokens, dtype)
    first, next_pos = dec.start(prompt_ids, prompt_mask, group_size)
    filled = P

    def step(tok, t):
        nonlocal filled
        filled = P + t + 1
        return dec.step(tok, next_pos + t, P + t)

    def compact(keep):
        nonlocal next_pos
        dec.keep_rows(keep, filled)
        next_pos = next_pos[keep]

    return decode_loop(
        step, first, B * group_size, max_new_tokens, eos_id, pad_id, temperature, top_p, generator, compact
    )
