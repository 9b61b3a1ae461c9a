"""A Monte-Carlo study of the KL estimators k1, k2, k3 on distributions whose KL is known exactly.

Policy π = softmax(θ) and reference π_ref = softmax(θ_ref) over a small vocabulary: KL(π‖π_ref) and its
gradient are closed-form, so the bias and variance of each sample estimate (``rl4lrm.kl``) can be
measured, both as a *value* (what you log) and as a *gradient* when the estimate is used as a loss on
samples from π (what GRPO's KL term does). Expected result (Schulman, 2020, "Approximating KL
Divergence", http://joschu.net/blog/kl-approx.html): k1 and k3 are unbiased values, k2 is biased;
as a loss, k1's gradient is zero in expectation, k2's is the gradient of KL(π‖π_ref) and k3's that of
the reverse KL(π_ref‖π).
"""

from __future__ import annotations

import pandas as pd
import torch

from rl4lrm.kl import kl_estimator_names, kl_penalty


def _closed_form(theta: torch.Tensor, ref_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logp, logq = torch.log_softmax(theta, -1), torch.log_softmax(ref_logits, -1)
    forward = (logp.exp() * (logp - logq)).sum()  # KL(π‖π_ref)
    reverse = (logq.exp() * (logq - logp)).sum()  # KL(π_ref‖π)
    return forward, reverse


def kl_estimator_study(
    policy_logits: torch.Tensor,
    ref_logits: torch.Tensor,
    n_samples: int = 64,
    n_repeats: int = 500,
    seed: int = 0,
    estimators: tuple[str, ...] = ("k1", "k2", "k3"),
) -> pd.DataFrame:
    """Value and gradient statistics of KL estimators.

    Each repeat draws ``n_samples`` tokens from π, averages the estimator over them (the value) and
    differentiates that average with respect to θ (the gradient), as a KL term in a loss does.

    Args:
        policy_logits: θ, logits of π, shape (V,).
        ref_logits: logits of π_ref, shape (V,).
        n_samples: tokens per estimate.
        n_repeats: independent estimates, for the mean and the standard deviation.
        seed: seeds the sampling.
        estimators: names from ``rl4lrm.kl.kl_estimator_names()``, e.g. add ``"k3+"`` (k3's value with
            k2's gradient) or ``"abs"``.

    Returns:
        One row per estimator: ``true KL`` (forward), ``mean``, ``bias``, ``std`` (of one estimate),
        ``grad error vs KL(π‖ref)`` and ``grad error vs KL(ref‖π)`` (norm of the mean gradient minus
        each closed-form gradient, relative to that gradient's norm), ``grad std`` (mean per-coordinate
        std of one gradient estimate).
    """
    if policy_logits.shape != ref_logits.shape or policy_logits.dim() != 1:
        raise ValueError(
            f"need two logit vectors of one shape (V,), got {tuple(policy_logits.shape)} and {tuple(ref_logits.shape)}"
        )
    if n_samples < 1 or n_repeats < 2:
        raise ValueError(f"need n_samples >= 1 and n_repeats >= 2, got {n_samples} and {n_repeats}")
    unknown = [name for name in estimators if name not in kl_estimator_names()]
    if unknown:
        raise ValueError(f"unknown KL estimators {unknown}; known: {kl_estimator_names()}")
    theta = policy_logits.detach().double().requires_grad_(True)
    ref = ref_logits.detach().double()
    forward, reverse = _closed_form(theta, ref)
    (grad_forward,) = torch.autograd.grad(forward, theta, retain_graph=True)
    (grad_reverse,) = torch.autograd.grad(reverse, theta)
    gen = torch.Generator().manual_seed(seed)
    probs = torch.softmax(theta.detach(), -1)
    tokens = torch.multinomial(probs.expand(n_repeats, -1), n_samples, replacement=True, generator=gen)  # (R, S)
    rows = []
    for name in estimators:
        logp = torch.log_softmax(theta, -1)[tokens]  # (R, S)
        logq = torch.log_softmax(ref, -1)[tokens]  # (R, S)
        values = kl_penalty(logp, logq, name).mean(dim=1)  # (R,)
        # one gradient per repeat, in one batched backward pass
        (grads,) = torch.autograd.grad(
            values, theta, grad_outputs=torch.eye(n_repeats, dtype=values.dtype), is_grads_batched=True
        )  # (R, V)
        mean_grad = grads.mean(0)
        rows.append(
            {
                "estimator": name,
                "true KL": forward.item(),
                "mean": values.mean().item(),
                "bias": values.mean().item() - forward.item(),
                "std": values.std().item(),
                "grad error vs KL(π‖ref)": ((mean_grad - grad_forward).norm() / grad_forward.norm()).item(),
                "grad error vs KL(ref‖π)": ((mean_grad - grad_reverse).norm() / grad_reverse.norm()).item(),
                "grad std": grads.std(0).mean().item(),
            }
        )
    return pd.DataFrame(rows)
