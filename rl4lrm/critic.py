"""Critic-based PPO: a learned value model and its clipped value loss (the ``gae`` advantage reads its values).

PPO for LLMs (Schulman et al., 2017, arXiv:1707.06347; Ouyang et al., 2022, arXiv:2203.02155)
learns V(s_t), the expected final reward from the state "prompt + first t completion tokens", and
turns it into per-token advantages with generalized advantage estimation (Schulman et al., 2016,
"High-Dimensional Continuous Control Using GAE", arXiv:1506.02438):

    δ_t = r_t + γ V(s_{t+1}) − V(s_t),    A_t = Σ_l (γλ)^l δ_{t+l},    return_t = A_t + V(s_t).

λ = 1 gives the Monte-Carlo return minus V (unbiased, high variance), λ = 0 the one-step TD error
(low variance, biased by the critic's errors). Critic-free methods (GRPO, RLOO, ...) replace V
with a baseline from other samples of the same prompt; this module is what they save. The GAE recursion
itself is pure tensor math and lives with the other estimators (``rl4lrm.advantages.token``).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from rl4lrm.decoding import positions_from_mask


class ScalarHeadModel(nn.Module):
    """A copy of a policy's transformer trunk with a scalar head: one number per position.

    Initialising the trunk from the policy gives the model the policy's features from step 0; the
    zero-initialised head makes every initial output 0. It has its own parameters (no weight sharing
    with the policy). The critic (``ValueModel``) and the process reward model
    (``rl4lrm.rewards.prm.ProcessRewardModel``) are this model, read at different positions.

    Args:
        policy: A Hugging Face causal LM whose ``base_model`` is the trunk (Llama, Qwen2, GPT-2, ...).
    """

    def __init__(self, policy):
        super().__init__()
        self.trunk = copy.deepcopy(policy.base_model)
        self.head = nn.Linear(policy.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def position_scores(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The head's output at every position, shape (N, L), for (N, L) ids with left or right padding."""
        hidden = self.trunk(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions_from_mask(attention_mask),
            use_cache=False,
        ).last_hidden_state
        return self.head(hidden.float()).squeeze(-1)  # (N, L)


class ValueModel(ScalarHeadModel):
    """A separate critic: a copy of the policy's trunk with a scalar head (``ScalarHeadModel``); every
    initial value is 0, so the first advantages are the plain returns."""

    def forward(self, batch) -> Tensor:
        """Values of the states before each completion token.

        Args:
            batch: a ``RolloutBatch``.

        Returns:
            values: shape (N, T), zero where ``response_mask`` is 0. ``values[:, t]`` is read at
                the position that predicts token t, i.e. after the prompt and t completion tokens.
        """
        scores = self.position_scores(batch.input_ids, batch.attention_mask)  # (N, P+T)
        T = batch.completion_ids.shape[1]
        start = batch.prompt_ids.shape[1] - 1
        return scores[:, start : start + T] * batch.response_mask  # (N, T)


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, response_mask: Tensor, value_clip: float | None = 0.2
) -> tuple[Tensor, dict[str, float]]:
    """PPO's clipped value loss, averaged over valid tokens.

    0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2): like the policy's ratio clip, the
    critic cannot move a value by more than c from its value at sampling time in one batch.

    Args:
        values: Current critic values, with grad, shape (N, T).
        old_values: Values at sampling time, shape (N, T).
        returns: Regression targets (GAE λ-returns), shape (N, T).
        response_mask: 1 on response tokens, shape (N, T).
        value_clip: c > 0, or None for the unclipped squared error.

    Returns:
        loss: scalar tensor; metrics: ``critic/loss``, ``critic/clip_frac``,
        ``critic/explained_var`` (1 - Var(R - V) / Var(R) over valid tokens).
    """
    if value_clip is not None and value_clip <= 0:
        raise ValueError(f"value_clip must be > 0 or None, got {value_clip}")
    mask = response_mask.to(values.dtype)  # (N, T)
    returns, old_values = returns.detach(), old_values.detach()
    err = (values - returns).pow(2)  # (N, T)
    if value_clip is None:
        per_token, clipped_frac = err, 0.0
    else:
        clipped_v = old_values + (values - old_values).clamp(-value_clip, value_clip)  # (N, T)
        err_clipped = (clipped_v - returns).pow(2)  # (N, T)
        per_token = torch.maximum(err, err_clipped)
        clipped_frac = (((err_clipped > err).to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1)).item()
    loss = 0.5 * (per_token * mask).sum() / mask.sum().clamp(min=1)
    with torch.no_grad():
        valid = mask.bool()
        var_r = returns[valid].var(unbiased=False) if valid.sum() > 1 else torch.tensor(0.0)
        explained = 1 - (returns - values)[valid].var(unbiased=False) / var_r if var_r > 0 else torch.tensor(0.0)
    return loss, {
        "critic/loss": loss.item(),
        "critic/clip_frac": clipped_frac,
        "critic/explained_var": explained.item(),
    }
