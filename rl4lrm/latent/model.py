"""Reasoning in a continuous latent space: a tiny Coconut model that thinks in hidden states, not tokens.

Chain-of-thought reasons in *tokens*: every intermediate step is sampled, written out and read back through
the embedding table. Coconut (Hao et al. 2024, "Training Large Language Models to Reason in a Continuous
Latent Space", arXiv:2412.06769) replaces some of those steps with **continuous thoughts**: after the prompt
and a ``<bot>`` token, the last hidden state of the final layer (after the final norm, before the LM head),
h_j, is fed back as the next input embedding, k times,

    e_{j+1} = h_j (+ eps_j, optional Gaussian exploration noise),     h_{j+1} = f_theta(prompt, <bot>, e_1..e_{j+1}),

then ``<eot>`` closes the latent segment and the answer is decoded as usual. A thought is never collapsed
to one token, so it can carry several candidate values at once; and it costs one forward pass, not a line
of tokens. ``rl4lrm.latent.train`` holds Coconut's curriculum that teaches this.

``LatentReasoner`` wraps a ``tiny_model`` Llama and defines the two hooks of ``rl4lrm.rollout``, so the
ordinary ``rl4lrm.trainer.Trainer`` runs GRPO on it: ``sample_rollout`` thinks, then samples the answer;
``completion_logits`` recomputes the same thoughts *with gradients*, so the policy gradient of the answer
flows back through every thought into the model. The noise and the number of thoughts of each row travel in
``RolloutBatch.aux`` (``"noise"`` (N, K, H), ``"n_thoughts"`` (N,)), which makes recomputation exact.

**Adaptive compute** (``LatentConfig.halting``): a halting head gives p(stop | h_j) = sigmoid(w.h_j + b)
before each latent step j; the number of thoughts k is sampled, and its decisions enter the policy as K
extra completion positions in front of the answer (a two-way choice ``<lat>`` = think on, ``<eot>`` = stop,
with log-probs log(1 - p) and log p), so GRPO credits them like tokens. With the reward
``correct - cost * k`` (``rl4lrm.rewards.compute``'s ``latent_steps``) the policy trades accuracy for compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedTokenizerFast

from rl4lrm.decoding import cache_kwargs, decode_loop, positions_from_mask, trim_pad_columns
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rollout import RolloutBatch, token_logprobs
from rl4lrm.utils import eval_mode
from rl4lrm.validation import NON_NEGATIVE, check_fields, named_keywords

BOT, EOT, LAT = "<bot>", "<eot>", "<lat>"
_OFF = -1e4  # logit of impossible choices at halting positions (finite: 0 * -inf would make the entropy NaN)


@named_keywords()
@dataclass
class LatentConfig:
    """How a ``LatentReasoner`` thinks at sampling time (read by ``sample_rollout``, so changing it changes RL)."""

    n_thoughts: int = 2
    """k: continuous thoughts before ``<eot>`` when ``halting`` is off (Coconut: c thoughts per replaced step)."""
    halting: bool = False
    """Adaptive compute: sample k from the halting head instead of using ``n_thoughts`` (0..``max_thoughts``)."""
    max_thoughts: int = 4
    """Cap on k with ``halting`` on (the K extra decision positions of each completion). At temperature 0 the
    halting head stops as soon as p(stop) > 0.5."""
    noise_std: float = 0.0
    """Std of Gaussian noise added to each fed-back thought at sampling time: exploration in latent space
    (0 = the answer tokens are the only source of randomness). Stored in ``aux`` so recomputation is exact."""

    def __post_init__(self):
        check_fields(self, {"n_thoughts": NON_NEGATIVE, "max_thoughts": NON_NEGATIVE, "noise_std": NON_NEGATIVE})
        if self.halting and self.max_thoughts < 1:
            raise ValueError(f"LatentConfig.max_thoughts must be >= 1 with halting on, got {self.max_thoughts}")


def latent_tokenizer() -> PreTrainedTokenizerFast:
    """``char_tokenizer()`` plus ``<bot>``, ``<eot>``, ``<lat>`` appended as special tokens (other ids unchanged)."""
    tokenizer = char_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": [BOT, EOT, LAT]})
    return tokenizer


def halting_logprob(stop_logits: torch.Tensor, k: torch.Tensor, max_thoughts: int) -> torch.Tensor:
    """log-probability of running exactly k thoughts: sum_{j<k} log(1 - p_j) + log p_k (no p_K term: at
    ``max_thoughts`` the model must stop).

    Args:
        stop_logits: (N, K) halting-head logits z_j, p_j = sigmoid(z_j), K >= ``max_thoughts``.
        k: (N,) thoughts run, in 0..max_thoughts.

    Returns:
        (N,) log-probabilities of the halting decisions.
    """
    j = torch.arange(stop_logits.shape[1], device=k.device)[None]  # (1, K)
    go_on = torch.nn.functional.logsigmoid(-stop_logits) * (j < k[:, None])  # (N, K): log(1 - p_j), j < k
    stop = torch.nn.functional.logsigmoid(stop_logits) * ((j == k[:, None]) & (k[:, None] < max_thoughts))  # (N, K)
    return (go_on + stop).sum(-1)  # (N,)


class LatentReasoner(torch.nn.Module):
    """A causal LM that runs k continuous thoughts between ``<bot>`` and ``<eot>`` before answering.

    Args:
        net: a Hugging Face Llama-style causal LM (``net.model`` gives final-norm hidden states, ``net.lm_head``
            the logits) whose vocabulary includes the three latent tokens.
        tokenizer: a ``latent_tokenizer()``.
        config: the sampling-time ``LatentConfig``.
    """

    def __init__(self, net, tokenizer, config: LatentConfig | None = None):
        super().__init__()
        self.net, self.config = net, config or LatentConfig()
        self.bot_id, self.eot_id, self.lat_id = tokenizer.convert_tokens_to_ids([BOT, EOT, LAT])
        hidden = net.config.hidden_size
        self.halt = torch.nn.Linear(hidden, 1)
        with torch.no_grad():  # start at p(stop) = sigmoid(-0.5) = 0.38 whatever the state: k is spread out
            self.halt.weight.zero_()
            self.halt.bias.fill_(-0.5)

    @property
    def hidden_size(self) -> int:
        return self.net.config.hidden_size

    def _feed(self, embeds, mask, new_mask, cache):
        """Runs ``embeds`` (N, n, H) through the model after the cached prefix; returns hidden (N, n, H) and mask."""
        mask = torch.cat([mask, new_mask], dim=1)  # (N, L + n)
        pos = positions_from_mask(mask)[:, -embeds.shape[1] :]  # (N, n)
        out = self.net.model(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=pos,
            **cache_kwargs(self.net.model, cache),
            use_cache=True,
        )
        return out.last_hidden_state, mask

    def think(self, prompt_ids, prompt_mask, decide, noise=None):
        """The latent segment: prompt + ``<bot>``, then thoughts until ``decide`` stops each row.

        Args:
            prompt_ids, prompt_mask: (N, P) left-padded prompts.
            decide: ``decide(j, h_j) -> (N,) bool``, True for rows that stop before thought j + 1 (called for
                j = 0, 1, ...; once a row stops, later answers for it are ignored).
            noise: (N, K, H) added to thought j + 1 (``noise[:, j]``), or None.

        Returns:
            ``(cache, mask, states, k)``: the KV cache and attention mask so far, the hidden states h_0..h_J
            at each decision (N, J + 1, H), and the number of thoughts per row (N,).
        """
        N, device = prompt_ids.shape[0], prompt_ids.device
        embed = self.net.get_input_embeddings()
        ids = torch.cat([prompt_ids, torch.full((N, 1), self.bot_id, device=device)], dim=1)  # (N, P+1)
        cache = DynamicCache()
        first_mask = torch.cat([prompt_mask, torch.ones_like(prompt_mask[:, :1])], 1)  # (N, P+1)
        h, mask = self._feed(embed(ids), prompt_mask[:, :0], first_mask, cache)
        h = h[:, -1]  # (N, H): h_0, the state after <bot>
        states, j = [h], 0
        active = torch.ones(N, dtype=torch.bool, device=device)  # (N,) rows still thinking
        k = torch.zeros(N, dtype=torch.long, device=device)  # (N,) thoughts run so far
        while True:
            active = active & ~decide(j, h)  # (N,)
            if not active.any():
                break
            thought = h if noise is None else h + noise[:, j]  # (N, H): the continuous thought e_{j+1}
            h, mask = self._feed(thought[:, None], mask, active[:, None].long(), cache)
            h = h[:, -1]
            k, j = k + active.long(), j + 1
            states.append(h)
        return cache, mask, torch.stack(states, dim=1), k

    def _answer(self, cache, mask, ids, ids_mask):
        """Logits after ``<eot>`` + ``ids``: (N, T+1, V) predicting ids[0], ..., ids[T-1], and the next one."""
        eot = torch.full((ids.shape[0], 1), self.eot_id, device=ids.device)
        h, mask = self._feed(
            self.net.get_input_embeddings()(torch.cat([eot, ids], 1)),
            mask,
            torch.cat([torch.ones_like(eot), ids_mask], 1),
            cache,
        )
        return self.net.lm_head(h).float(), mask

    def halting_logits(self, states, k, K: int, temperature: float):
        """Logits (N, K, V) of the K decision positions: ``<eot>`` (stop) vs ``<lat>`` (think on) at each state.

        ``states`` is (N, J+1, H) with J <= K; positions past a row's stop are padded (they are masked out).
        """
        z = self.halt(states[:, :K]).squeeze(-1).float()  # (N, J'): stop logit at each decision
        z = torch.nn.functional.pad(z, (0, K - z.shape[1]))  # (N, K)
        logits = torch.full((*z.shape, self.net.config.vocab_size), _OFF, device=z.device)  # (N, K, V)
        logits[..., self.eot_id] = z
        logits[..., self.lat_id] = 0.0
        return logits / temperature

    def decisions(self, k, K: int):
        """Decision tokens (N, K) and their mask: ``<lat>`` k times, then ``<eot>`` (unless k = K), then pads."""
        j = torch.arange(K, device=k.device)[None]  # (1, K)
        ids = torch.where(j < k[:, None], self.lat_id, self.eot_id)  # (N, K)
        mask = (j <= k[:, None]) & (k[:, None] < K) | (j < k[:, None])  # (N, K): a forced stop at K is no decision
        return ids.masked_fill(~mask, 0), mask.float()

    # ------------------------------------------------------------------ rl4lrm.rollout hooks
    @torch.no_grad()
    def sample_rollout(
        self, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
    ) -> RolloutBatch:
        """Thinks (k fixed, or sampled by the halting head), then samples the answer; one ``RolloutBatch``.

        ``completion_ids`` are the answer tokens, preceded by K halting decisions when ``config.halting``;
        ``completions`` hold the decoded answer text; ``aux`` holds ``noise`` (N, K, H) and ``n_thoughts`` (N,).
        """
        cfg, T = self.config, temperature or 1.0
        with eval_mode(self):
            p_ids = prompt_ids.repeat_interleave(group_size, 0)  # (N, P)
            p_mask = prompt_mask.repeat_interleave(group_size, 0)
            N, K = p_ids.shape[0], cfg.max_thoughts if cfg.halting else cfg.n_thoughts
            noise = torch.randn(N, max(K, 1), self.hidden_size, generator=generator, device=p_ids.device)
            noise = noise * cfg.noise_std  # (N, K, H)

            def decide(j, h):
                if j >= K:
                    return torch.ones(N, dtype=torch.bool, device=h.device)
                if not cfg.halting:
                    return torch.zeros(N, dtype=torch.bool, device=h.device)
                p_stop = torch.sigmoid(self.halt(h).squeeze(-1).float() / T)  # (N,)
                if temperature == 0:
                    return p_stop > 0.5
                return torch.rand(N, generator=generator, device=h.device) < p_stop

            cache, mask, states, k = self.think(p_ids, p_mask, decide, noise)
            logits, mask = self._answer(cache, mask, p_ids[:, :0], p_mask[:, :0])

            def step(tok, t):  # feeds the tokens just sampled, returns the next logits (N, V)
                nonlocal mask
                h, mask = self._feed(
                    self.net.get_input_embeddings()(tok[:, None]), mask, torch.ones_like(tok[:, None]), cache
                )
                return self.net.lm_head(h[:, -1]).float()

            ids, logps, resp, truncated = decode_loop(
                step,
                logits[:, -1],
                N,
                max_new_tokens,
                tokenizer.eos_token_id,
                tokenizer.pad_token_id,
                temperature,
                top_p,
                generator,
            )
            resp, ids, logps = trim_pad_columns(resp, ids, logps)
            texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
            if cfg.halting:  # the K decisions go in front of the answer, scored like tokens
                d_ids, d_mask = self.decisions(k, K)
                d_logp = token_logprobs(self.halting_logits(states, k, K, T), d_ids) * d_mask  # (N, K)
                ids, logps = torch.cat([d_ids, ids], 1), torch.cat([d_logp, logps], 1)  # (N, K + T)
                resp = torch.cat([d_mask, resp], 1)
        return RolloutBatch(
            prompt_ids=p_ids,
            prompt_mask=p_mask,
            completion_ids=ids,
            response_mask=resp,
            old_logprobs=logps,
            group_ids=torch.arange(len(prompt_ids), device=ids.device).repeat_interleave(group_size),
            truncated=truncated,
            completions=texts,
            group_size=group_size,
            temperature=temperature,
            aux={"noise": noise, "n_thoughts": k},
        )

    def completion_logits(self, batch: RolloutBatch, temperature: float):
        """Recomputes the batch's logits with its stored thoughts in the graph (gradients flow through them).

        Returns:
            ``logits`` (N, T, V) float32 divided by ``temperature`` (halting decisions first, when on), and
            their logsumexp (N, T).
        """
        k, K = batch.aux["n_thoughts"], (self.config.max_thoughts if self.config.halting else 0)
        cache, mask, states, _ = self.think(
            batch.prompt_ids, batch.prompt_mask, lambda j, h: k <= j, batch.aux["noise"]
        )
        ans_ids, ans_mask = batch.completion_ids[:, K:], batch.response_mask[:, K:]
        logits, _ = self._answer(cache, mask, ans_ids, ans_mask.long())
        logits = logits[:, :-1] / temperature  # (N, T_ans, V)
        if K:
            logits = torch.cat([self.halting_logits(states, k, K, temperature), logits], 1)  # (N, K + T_ans, V)
        return logits, torch.logsumexp(logits, dim=-1)

    # ------------------------------------------------------------------ teacher forcing (training, studies)
    def forward(self, prompt_ids, prompt_mask, n_thoughts, target_ids, target_mask, noise=None):
        """Logits (N, T, V) predicting ``target_ids`` after prompt, ``<bot>``, ``n_thoughts`` thoughts, ``<eot>``.

        Each thought is one more forward pass with the previous ones in the graph (Coconut's multi-pass
        training). ``n_thoughts`` is an int or a (N,) tensor; ``target_mask`` (N, T) is 1 on real target tokens.
        """
        k = torch.as_tensor(n_thoughts, device=prompt_ids.device).expand(prompt_ids.shape[0])  # (N,)
        cache, mask, _, _ = self.think(prompt_ids, prompt_mask, lambda j, h: k <= j, noise)
        logits, _ = self._answer(cache, mask, target_ids, target_mask)
        return logits[:, :-1]  # (N, T, V)

    @torch.no_grad()
    def thoughts(self, prompt_ids, prompt_mask, n_thoughts: int) -> torch.Tensor:
        """The continuous thoughts e_1..e_k the model feeds itself (no noise), shape (N, k, H)."""
        k = torch.full((prompt_ids.shape[0],), n_thoughts, device=prompt_ids.device)  # (N,)
        _, _, states, _ = self.think(prompt_ids, prompt_mask, lambda j, h: k <= j)
        return states[:, :n_thoughts]
