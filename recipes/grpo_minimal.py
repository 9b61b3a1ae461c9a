"""GRPO in one file: the whole algorithm on the zoo's addition model, readable top to bottom.

Group Relative Policy Optimization (Shao et al., 2024, DeepSeekMath, https://arxiv.org/abs/2402.03300)
is PPO without a critic. For each prompt q it samples a group of G completions o_1..o_G from the
current policy, scores each with a verifier (R_i = 1 if the sum is right, else 0), and uses the
group itself as the baseline:

    A_i = (R_i - mean(R_1..R_G)) / (std(R_1..R_G) + eps)        (same A_i for every token of o_i)

The policy then maximises PPO's clipped surrogate, averaged over each completion's tokens and then
over completions, minus a KL penalty that keeps it near the frozen starting model pi_ref:

    J(theta) = 1/G sum_i 1/|o_i| sum_t [ min(r_it A_i, clip(r_it, 1 - eps_c, 1 + eps_c) A_i) - beta KL_it ]
    r_it  = pi_theta(o_it | q, o_i<t) / pi_old(o_it | q, o_i<t)
    KL_it = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1          (Schulman's k3 estimator: unbiased, >= 0)

One step: sample B prompts x G completions -> score -> advantages -> one gradient step on -J ->
every `eval_every` steps, held-out pass@1. The library's `rl4lrm.trainer.Trainer` runs the same
algorithm (preset "grpo") with every axis swappable; this recipe writes it out inline and seeds
exactly as the Trainer does, so both print the same numbers (tests/test_recipe.py checks it).
From the library it borrows only plumbing: the zoo model, the task's problems and verifier, the
batched sampler (`rollout`), one forward for log-probs (`compute_logprobs`) and `evaluate`.

    python recipes/grpo_minimal.py --steps 60
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import torch

from rl4lrm.evaluation import evaluate
from rl4lrm.models.zoo import load_base
from rl4lrm.rollout import compute_logprobs, rollout
from rl4lrm.utils import resolve_device, seed_everything


@dataclasses.dataclass
class Args:
    task: str = "addition"
    """Zoo entry: its base model (trained by supervised learning) and its task."""
    steps: int = 60
    """RL steps; each samples one batch and takes `minibatches` gradient steps on it."""
    prompts_per_step: int = 16
    """B: prompts per step."""
    group_size: int = 8
    """G: completions per prompt (>= 2, the group is the baseline)."""
    lr: float = 3e-4
    """AdamW learning rate."""
    beta: float = 0.04
    """KL coefficient (DeepSeekMath's 0.04)."""
    clip_eps: float = 0.2
    """PPO clip range eps_c."""
    adv_eps: float = 1e-6
    """Added to the group std so that nearly-constant groups do not explode."""
    temperature: float = 1.0
    """Sampling temperature (log-probs are taken at the same temperature)."""
    max_new_tokens: int = 16
    """Length cap of a completion."""
    minibatches: int = 1
    """Gradient steps per batch (1 = strictly on-policy: the ratio is 1 at the step)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    eval_every: int = 10
    """Held-out evaluation every this many steps (and at the end)."""
    eval_problems: int = 128
    """Held-out test problems (always the same ones)."""
    eval_samples: int = 4
    """Samples per held-out problem; pass@1 averages them."""
    seed: int = 0
    """Seeds problems, sampling and minibatch order."""
    device: str = "auto"
    """"auto" (CUDA if present), "cpu" or "cuda"."""


def seq_mean_token_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1/N sum_i 1/|o_i| sum_t x_it: the mean over each completion's tokens, then over completions."""
    weights = mask / (mask.sum(-1, keepdim=True).clamp(min=1) * len(mask))  # (N, T): 1 / (N |o_i|) on real tokens
    return (x * weights).sum()


def train(args: Args) -> list[dict]:
    """Runs GRPO and returns one metrics dict per step (row 0: the evaluation before training)."""
    B, G = args.prompts_per_step, args.group_size
    if G < 2:
        raise ValueError(f"group_size must be >= 2 for a group baseline, got {G}")
    seed_everything(args.seed)
    device = resolve_device(args.device)
    policy, tokenizer, task = load_base(args.task, device=device)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)  # pi_ref: the frozen starting model
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, weight_decay=0.0)
    test_problems = task.problems("test", args.eval_problems, seed=0)

    def generator(seed: int) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(seed)

    def held_out() -> dict:  # same test problems and sampling noise at every evaluation
        metrics = evaluate(
            policy,
            tokenizer,
            task,
            test_problems,
            args.eval_samples,
            ks=(1,),
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            generator=generator(12345),
        )
        return {"acc/pass@1": metrics["acc/pass@1"]}

    history = [{"step": 0, **held_out()}]
    base = args.seed * 1_000_003  # the Trainer's seeds: step s's problems and noise depend only on (seed, s)
    for step in range(args.steps):
        # 1. Sample G completions for each of B fresh training prompts (N = B*G rows, a group's rows contiguous).
        problems = task.problems("train", B, seed=base + step)
        batch = rollout(
            policy,
            tokenizer,
            [p.prompt for p in problems],
            G,
            args.max_new_tokens,
            args.temperature,
            generator=generator(base + step * 7),
        )
        mask = batch.response_mask  # (N, T) 1 on generated tokens, EOS included

        # 2. Score each completion with the task's verifier.
        rewards = torch.tensor(
            task.reward([p for p in problems for _ in range(G)], batch.completions), device=device
        )  # (N,)

        # 3. Group-relative advantages: centre and scale within each prompt's group.
        grouped = rewards.view(B, G)  # (B, G)
        centered = grouped - grouped.mean(dim=1, keepdim=True)  # (B, G)
        std = (centered.pow(2).sum(dim=1, keepdim=True) / (G - 1)).sqrt()  # (B, 1) sample std, as in the paper
        scaled = centered / (std + args.adv_eps)  # (B, G)
        # a group whose rewards are all equal teaches nothing: exactly 0, not a rounding residue / eps
        no_signal = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)  # (B, 1)
        advantages = torch.where(no_signal, torch.zeros_like(scaled), scaled).reshape(-1, 1) * mask  # (N, T)
        with torch.no_grad():
            ref_logprobs, _ = compute_logprobs(reference, batch)  # (N, T) log pi_ref

        # 4. Gradient steps on minibatches of the batch (one by default, so pi_old is the current policy).
        policy.train()
        order = torch.randperm(B * G, generator=generator(base + step * 7 + 1), device=device)
        losses, kls, clipped = [], [], []
        for rows in order.chunk(args.minibatches):
            m, adv, old = mask[rows], advantages[rows], batch.old_logprobs[rows]  # (n, T) each
            logprobs, _ = compute_logprobs(policy, batch.select(rows))  # (n, T) log pi_theta, with gradients
            ratio = torch.exp((logprobs - old).clamp(-20, 20))  # (n, T) r_it; the clamp keeps exp finite
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - args.clip_eps, 1 + args.clip_eps) * adv)  # (n, T)
            log_ref_ratio = (ref_logprobs[rows] - logprobs).clamp(-20, 20)  # (n, T) log(pi_ref / pi_theta)
            kl = torch.exp(log_ref_ratio) - 1 - log_ref_ratio  # (n, T) k3
            loss = seq_mean_token_mean(-surrogate, m) + args.beta * seq_mean_token_mean(kl, m)  # -J(theta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
            kls.append(((kl.detach() * m).sum() / m.sum()).item())  # per token, for the log
            clipped.append(((surrogate < ratio * adv).float() * m).sum().item() / m.sum().item())
        policy.eval()

        # 5. Log, and evaluate on held-out problems now and then.
        metrics = {
            "step": step + 1,
            "reward/mean": rewards.mean().item(),
            "loss/total": sum(losses) / len(losses),
            "kl/k3": sum(kls) / len(kls),
            "clip/frac": sum(clipped) / len(clipped),
            "length/mean": batch.lengths.float().mean().item(),
        }
        if step + 1 == args.steps or (args.eval_every > 0 and (step + 1) % args.eval_every == 0):
            metrics.update(held_out())
        history.append(metrics)
    return history


def print_table(history: list[dict]) -> None:
    """One row per evaluation: the step's training reward and loss, the held-out pass@1."""
    print(f"{'step':>5} {'reward/mean':>12} {'loss/total':>11} {'kl/k3':>8} {'length':>7} {'pass@1':>7}")
    for row in history:
        if "acc/pass@1" in row:  # row 0, before training, has only the evaluation
            train = (
                f"{row['reward/mean']:>12.3f} {row['loss/total']:>11.4f} {row['kl/k3']:>8.4f} "
                f"{row['length/mean']:>7.2f}"
                if row["step"]
                else f"{'':>12} {'':>11} {'':>8} {'':>7}"
            )
            print(f"{row['step']:>5} {train} {row['acc/pass@1']:>7.3f}")


def parse_args(argv=None) -> Args:
    """Every field of ``Args`` is a flag (``--prompts-per-step 8``), so the two cannot drift."""
    parser = argparse.ArgumentParser(description="GRPO in one file (Shao et al., 2024)")
    for f in dataclasses.fields(Args):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, help=f"(default: {f.default})"
        )
    return Args(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    print_table(train(parse_args()))
