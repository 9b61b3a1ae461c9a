"""Multi-turn rollouts: the policy writes tool calls, the environment writes observations, in one batch.

Every row advances one token per step: a row that just closed a tool call (``]``) is fed the tokens of the
observation ``{...}`` from a queue, the others sample. Policy tokens and observation tokens end up interleaved in
one completion, and the loss must only see the policy's:

    J(theta) = E[ sum_t m_t * A_t * log pi_theta(y_t | y_<t) ],   m_t = 1 on policy tokens, 0 on observations

(Search-R1's "retrieved token masking", arXiv:2503.09516; ReTool does the same for interpreter outputs,
arXiv:2504.11536). ``AgentConfig.mask_observations=False`` puts observations in the loss: the policy is then
trained to *predict tool outputs it cannot know*, and its log-probs of those tokens (from the same forward) enter
the ratio and the KL as if the policy had chosen them.

``AgentPolicy`` wraps a causal LM and defines the two hooks of ``rl4lrm.rollout`` (``sample_rollout``,
``completion_logits``), so the ordinary ``Trainer`` runs GRPO on episodes. Observation tokens stay visible to
attention in the training forward (``aux["attend"]``): only the loss mask (``response_mask``) drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

from rl4lrm.agents.env import CLOSE, OBS_CLOSE, OBS_OPEN, OPEN, AgentEnv, KnowledgeBase
from rl4lrm.decoding import cache_kwargs, positions_from_mask, sample_tokens, trim_pad_columns
from rl4lrm.rollout import RolloutBatch, logits_over
from rl4lrm.utils import eval_mode
from rl4lrm.validation import AT_LEAST_ONE, NON_NEGATIVE, check_fields, named_keywords


@named_keywords()
@dataclass
class AgentConfig:
    """How an ``AgentPolicy`` runs episodes (read at every rollout, so changing it changes RL)."""

    mask_observations: bool = True
    """Drop observation tokens from ``response_mask`` (the loss). False trains the policy on the tool's outputs."""
    tools: bool = True
    """Run the tools; False answers every call with ``{no tools}`` (the answer-only baseline)."""
    max_turns: int = 4
    """Tool calls per episode before the environment ends it (answers do not count)."""
    kb_seed: int = 0
    """Seed of the ``KnowledgeBase`` (the task's ``seed``: another world gives other facts)."""

    def __post_init__(self):
        check_fields(self, {"max_turns": AT_LEAST_ONE, "kb_seed": NON_NEGATIVE})


def observation_mask(ids: torch.Tensor, open_id: int, close_id: int) -> torch.Tensor:
    """1 on the tokens of every observation, braces included, of transcripts written by the environment.

    A token is inside an observation when more ``{`` than ``}`` came before it or it is a brace itself:
    ``inside_t = (#open up to t) - (#close before t) > 0``. (The rollout records the mask as it feeds the tokens,
    which stays right even when a policy writes braces itself; this rebuilds it from the text.)

    Args:
        ids: token ids, shape (N, T). open_id, close_id: the ids of ``{`` and ``}``.

    Returns:
        Float mask, shape (N, T).
    """
    opened = (ids == open_id).long().cumsum(-1)  # (N, T) opens up to and including t
    closed = (ids == close_id).long().cumsum(-1) - (ids == close_id).long()  # (N, T) closes strictly before t
    return ((opened - closed) > 0).float()


class AgentPolicy(torch.nn.Module):
    """A causal LM that runs tool-using episodes (``rl4lrm.agents.env``) as its rollouts.

    Args:
        net: a Hugging Face causal LM.
        tokenizer: its tokenizer (observations are encoded with it).
        config: the ``AgentConfig``.
    """

    def __init__(self, net, tokenizer, config: AgentConfig | None = None):
        super().__init__()
        self.net, self.config = net, config or AgentConfig()
        self.vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.kb = KnowledgeBase(self.config.kb_seed)

    def _encode(self, tokenizer, text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def sample_rollout(
        self, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
    ) -> RolloutBatch:
        """Runs N = B*G episodes of at most ``max_new_tokens`` tokens (policy and observation tokens together).

        Returns:
            A ``RolloutBatch`` whose ``completions`` are the full transcripts and whose ``aux`` holds
            ``attend`` (N, T) 1 on every real completion token, ``obs_mask`` (N, T) 1 on observation tokens,
            ``turn_rewards`` (N, T) each call's per-turn reward on its ``]``, and ``tool_calls`` (N,).
        """
        cfg, eos, pad = self.config, tokenizer.eos_token_id, tokenizer.pad_token_id
        if self.kb.seed != cfg.kb_seed:
            self.kb = KnowledgeBase(cfg.kb_seed)
        with eval_mode(self):
            ids = prompt_ids.repeat_interleave(group_size, 0)  # (N, P)
            attn = prompt_mask.repeat_interleave(group_size, 0)  # (N, P)
            N, T, device = ids.shape[0], max_new_tokens, ids.device
            texts = tokenizer.batch_decode(prompt_ids, skip_special_tokens=True)
            envs = [AgentEnv(texts[i // group_size], self.kb, cfg.tools, cfg.max_turns) for i in range(N)]
            cache = DynamicCache()
            out = self.net(
                input_ids=ids,
                attention_mask=attn,
                position_ids=positions_from_mask(attn),
                **cache_kwargs(self.net, cache),
                use_cache=True,
                logits_to_keep=1,
            )
            logits = out.logits[:, -1]  # (N, V)
            tokens = torch.full((N, T), pad, dtype=torch.long, device=device)  # (N, T)
            logprobs = torch.zeros(N, T, device=device)  # (N, T)
            attend = torch.zeros(N, T, device=device)  # (N, T) every real token
            obs = torch.zeros(N, T, device=device)  # (N, T) observation tokens
            turn_rewards = torch.zeros(N, T, device=device)  # (N, T)
            queue: list[list[int]] = [[] for _ in range(N)]  # observation tokens still to feed
            call: list[str | None] = [None] * N  # text of the open tool call
            done = [False] * N
            for t in range(T):
                tok, lp = sample_tokens(logits, temperature, top_p, generator)  # (N,), (N,)
                forced = [i for i in range(N) if queue[i] and not done[i]]
                if forced:
                    rows = torch.tensor(forced, device=device)
                    tok[rows] = torch.tensor([queue[i].pop(0) for i in forced], device=device)
                    lsm = torch.log_softmax(logits[rows].float() / (temperature or 1.0), dim=-1)  # (F, V)
                    lp[rows] = lsm.gather(-1, tok[rows, None]).squeeze(-1)
                    obs[rows, t] = 1.0
                alive = torch.tensor([not d for d in done], device=device)  # (N,)
                tokens[:, t] = torch.where(alive, tok, pad)
                logprobs[:, t] = lp * alive
                attend[:, t] = alive.float()
                is_forced = set(forced)
                for i, token in enumerate(tok.tolist()):
                    if done[i]:
                        continue
                    if i not in is_forced:
                        char = self.vocab[token]
                        if token == eos:
                            done[i] = True
                        elif char == OPEN:
                            call[i] = ""
                        elif char == CLOSE and call[i] is not None:
                            turn = envs[i].step(call[i])
                            call[i] = None
                            turn_rewards[i, t] = turn.reward
                            if turn.observation is not None:
                                queue[i] = self._encode(tokenizer, OBS_OPEN + turn.observation + OBS_CLOSE)
                        elif call[i] is not None:
                            call[i] += char
                    if envs[i].done and not queue[i]:
                        done[i] = True
                if all(done) or t == T - 1:
                    break
                attn = torch.cat([attn, alive[:, None].long()], dim=1)  # (N, P + t + 1)
                out = self.net(
                    input_ids=tokens[:, t : t + 1],
                    attention_mask=attn,
                    position_ids=(attn.sum(-1, keepdim=True) - 1).clamp(min=0),
                    **cache_kwargs(self.net, cache),
                    use_cache=True,
                )
                logits = out.logits[:, -1]
        attend, tokens, logprobs, obs, turn_rewards = trim_pad_columns(attend, tokens, logprobs, obs, turn_rewards)
        response_mask = attend - obs if cfg.mask_observations else attend  # (N, T)
        return RolloutBatch(
            prompt_ids=ids,
            prompt_mask=prompt_mask.repeat_interleave(group_size, 0),
            completion_ids=tokens,
            response_mask=response_mask,
            old_logprobs=logprobs * response_mask,
            group_ids=torch.arange(len(prompt_ids), device=device).repeat_interleave(group_size),
            truncated=torch.tensor([not d for d in done], device=device),
            completions=tokenizer.batch_decode(tokens, skip_special_tokens=True),
            group_size=group_size,
            temperature=temperature,
            aux={
                "attend": attend,
                "obs_mask": obs,
                "turn_rewards": turn_rewards,
                "tool_calls": torch.tensor([float(e.tool_calls) for e in envs], device=device),
            },
        )

    def completion_logits(self, batch: RolloutBatch, temperature: float):
        """One training forward over prompt + the whole transcript (observations attended to, ``aux["attend"]``).

        Returns:
            ``logits`` (N, T, V) float32 divided by ``temperature``, position t predicting token t, and ``lse`` (N, T).
        """
        attn = torch.cat([batch.prompt_mask, batch.aux["attend"].long()], dim=1)  # (N, P+T)
        return logits_over(self.net, batch, attn, temperature)


def load_agent(config: AgentConfig | None = None, device: str | torch.device = "cpu", name: str = "agentic"):
    """The zoo's tool-use base model wrapped as an ``AgentPolicy``: ``(policy, tokenizer, task)``."""
    from rl4lrm.models.zoo import load_base  # the zoo registers the task through this package: import it late

    net, tokenizer, task = load_base(name, device=device)
    config = config or AgentConfig(kb_seed=task.kb.seed)
    return AgentPolicy(net, tokenizer, config), tokenizer, task
