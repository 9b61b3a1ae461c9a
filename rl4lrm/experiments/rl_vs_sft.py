"""RL versus SFT from one base model: what each learns in distribution, carries out of it, and forgets elsewhere.

Chu et al. (2025, "SFT Memorizes, RL Generalizes", arXiv:2501.17161) fine-tune one base model on one rule set
(GeneralPoints, V-IRL) either with SFT on solutions or with RL on the verifier's reward, then test rule variants
never trained on: RL improves out of distribution, SFT degrades there. Shenfeld et al. (2025, "RL's Razor: Why
Online Reinforcement Learning Forgets Less", arXiv:2509.04259) find that at equal new-task accuracy RL forgets
less of what the base model knew, and that the KL between the fine-tuned and the base model on the new task
predicts the forgetting: on-policy RL moves the policy less.

This module runs the arms from the zoo's ``generalist`` base (2-digit and 3-digit addition and chain arithmetic,
learned from noisy answers), fine-tuning on one part only (default: 2-digit addition), at an equal budget:
* ``sft``: ``rl4lrm.models.sft.train_sft`` on the part's clean reference answers;
* ``rl``: the ``Trainer`` (default: GRPO with no KL term) on the part's verifier;
* ``sft+rl``: SFT for a share of the steps, then RL for the rest.
**Equal budget** means the same number of optimizer steps, each on the same number of sequences: B·G reference
answers for SFT, B prompts × G sampled answers for RL (so SFT sees G times more distinct problems; RL also pays
for sampling). It then measures, on the held-out problems of every part, sampled accuracy (T = 1) and
``sequence_kl``: KL(π_θ ‖ π_base) per answer, on answers sampled from π_θ.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
import torch

from rl4lrm.exercises import brief, report_check
from rl4lrm.losses import POLICY_LOSSES
from rl4lrm.models.sft import SFTConfig, train_sft
from rl4lrm.models.zoo import ZOO, load_base
from rl4lrm.rollout import completion_logits, rollout
from rl4lrm.tasks import Task
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import resolve_device

ARMS = ("sft", "rl", "sft+rl")
"""The fine-tuning arms; ``base`` is always measured too."""
ROLES = {"add2": "in distribution", "add3": "OOD: 3-digit operands", "chain": "other task"}
"""What each part of the ``generalist`` base is to a study that fine-tunes on ``add2``."""


def sequence_kl(logits: torch.Tensor, ref_logits: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """KL(π ‖ π_ref) of each sampled answer: the exact per-token KL over the vocabulary, summed along the answer.

    With the answer's tokens drawn from π, the sum of the per-position KLs (each exact given its prefix) is an
    unbiased estimate of the sequence-level KL (the chain rule of KL), with less variance than summing k1 or
    k3 of the sampled tokens.

    Args:
        logits: π's logits predicting each answer token, (N, T, V).
        ref_logits: π_ref's logits at the same positions, (N, T, V).
        response_mask: 1 on answer tokens (EOS included), (N, T).

    Returns:
        (N,) nats per answer.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)  # (N, T, V)
    logq = torch.log_softmax(ref_logits.float(), dim=-1)  # (N, T, V)
    per_token = (logp.exp() * (logp - logq)).sum(-1)  # (N, T)
    return (per_token * response_mask).sum(-1)  # (N,)


@torch.no_grad()
def measure(
    model, base_model, tokenizer, task: Task, problems, n_samples: int, max_new_tokens: int, seed: int
) -> dict[str, float]:
    """Samples ``n_samples`` answers per problem from ``model`` at T = 1 and scores them twice.

    Returns:
        ``accuracy`` (the verifier's mean over all samples), ``kl`` (mean ``sequence_kl`` to ``base_model``,
        nats per answer) and ``length`` (mean answer tokens, EOS included).
    """
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    prompts = [task.format_prompt(p) for p in problems]
    batch = rollout(model.eval(), tokenizer, prompts, n_samples, max_new_tokens, 1.0, generator=gen)  # N = P*n
    correct = [task.verify(problems[i // n_samples], c).correct for i, c in enumerate(batch.completions)]
    kl = sequence_kl(completion_logits(model, batch)[0], completion_logits(base_model, batch)[0], batch.response_mask)
    return {"accuracy": sum(correct) / len(correct), "kl": kl.mean().item(), "length": batch.lengths.mean().item()}


@dataclass
class RLvsSFTResult:
    """What ``rl_vs_sft_study`` measured."""

    table: pd.DataFrame
    """Long format: ``arm, part, role, accuracy, kl, length`` for the base and every arm on every part."""
    runs: pd.DataFrame
    """One row per arm: optimizer steps, sequences trained on, distinct training problems, wall time."""
    histories: dict[str, pd.DataFrame]
    """Per arm: the SFT history (``stage="sft"``, ``loss``) and the RL history (``stage="rl"``, trainer metrics)."""
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    """The base and the fine-tuned models, by arm."""
    settings: dict = field(default_factory=dict)
    """The study's arguments, the resolved preset axes and the device."""

    def summary(self) -> pd.DataFrame:
        """One row per arm: accuracy and KL to the base on every part (columns ``acc: <role>``, ``KL: <role>``)."""
        wide = self.table.pivot(index="arm", columns="role", values=["accuracy", "kl"])
        roles = list(dict.fromkeys(self.table["role"]))
        out = pd.concat(
            {f"acc: {r}": wide["accuracy"][r] for r in roles} | {f"KL: {r}": wide["kl"][r] for r in roles}, axis=1
        )
        return out.reindex(list(dict.fromkeys(self.table["arm"])))

    def delta(self) -> pd.DataFrame:
        """Accuracy of each arm minus the base's, per role (points)."""
        acc = self.summary().filter(like="acc: ")
        return (100 * (acc - acc.loc["base"])).drop(index="base")


def _sft(model, tokenizer, task, steps, batch_size, lr, seed, device, progress) -> pd.DataFrame:
    config = SFTConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup=0, train_problems=4096, noise=0.0, seed=seed, device=device
    )
    return pd.DataFrame(train_sft(model, tokenizer, task, config, progress=progress)).assign(stage="sft")


def rl_vs_sft_study(
    arms: Sequence[str] = ARMS,
    steps: int = 100,
    base: str = "generalist",
    train_part: str = "add2",
    sft_share: float = 0.5,
    sft_lr: float | None = None,
    eval_problems: int = 128,
    eval_samples: int = 4,
    seed: int = 0,
    progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
    callbacks: Sequence = (),
    **train_config,
) -> RLvsSFTResult:
    """Fine-tunes copies of one base model by each arm at an equal budget, then measures every part.

    Args:
        arms: any of ``ARMS`` (``"sft"``, ``"rl"``, ``"sft+rl"``), in the order to run them.
        steps: optimizer steps of every arm (``sft+rl`` splits them by ``sft_share``).
        base: a zoo entry whose task is a ``mixture`` (default ``generalist``).
        train_part: the mixture part both arms train on; every part is measured.
        sft_share: share of ``sft+rl``'s steps spent on SFT, in (0, 1).
        sft_lr: SFT's peak learning rate (cosine decay to 10%, no warm-up); default RL's ``lr``.
        eval_problems, eval_samples: held-out problems per part (test split, seed 0) and samples per problem.
        seed: seeds training (both arms) and the evaluation's sampling.
        progress: show progress bars.
        on_stage: called with a short message before each stage (widgets show it).
        callbacks: trainer callbacks for the RL stages.
        **train_config: ``TrainConfig`` fields and preset axes for RL: ``prompts_per_step`` (B),
            ``group_size`` (G), ``lr``, ``preset``, ``kl_coef`` (default 0: no leash to the base), ...

    Returns:
        An ``RLvsSFTResult``.
    """
    arms = list(dict.fromkeys(arms))
    if not arms or any(a not in ARMS for a in arms):
        raise ValueError(f"arms must be a non-empty selection of {ARMS}, got {arms}")
    if not 0 < sft_share < 1:
        raise ValueError(f"sft_share must be in (0, 1), got {sft_share}")
    if base not in ZOO or ZOO[base].task != "mixture":
        mixtures = sorted(n for n, e in ZOO.items() if e.task == "mixture")
        raise ValueError(f"base must be a zoo entry whose task is a mixture ({mixtures}), got {base!r}")
    if "sft+rl" in arms and steps < 2:
        raise ValueError(f"sft+rl needs steps >= 2 (some SFT, then some RL), got {steps}")
    defaults = dict(kl_coef=0.0, eval_every=0)
    config = TrainConfig.build(task=base, steps=steps, seed=seed, **{**defaults, **train_config})  # validates
    stage = on_stage or (lambda message: None)
    base_model, tokenizer, mixture = load_base(base, device=resolve_device(config.device))
    train_task = mixture.part(train_part)  # a ValueError names the parts
    batch_size = config.prompts_per_step * config.group_size  # sequences per optimizer step, both arms
    sft_lr = config.lr if sft_lr is None else sft_lr
    if sft_lr <= 0:
        raise ValueError(f"sft_lr must be > 0, got {sft_lr}")

    def rl(model, rl_steps):
        cfg = replace(config, steps=rl_steps)
        trainer = Trainer(
            cfg, model=model, tokenizer=tokenizer, task=train_task, callbacks=callbacks, progress=progress
        )
        return trainer.train().assign(stage="rl")

    models, histories, runs = {"base": base_model}, {}, []
    for arm in arms:
        stage(f"training: {arm} ({steps} steps)")
        model, t0, parts = copy.deepcopy(base_model), time.perf_counter(), []
        sft_steps = {"sft": steps, "rl": 0, "sft+rl": min(steps - 1, max(1, round(sft_share * steps)))}[arm]
        if sft_steps:
            parts.append(
                _sft(model, tokenizer, train_task, sft_steps, batch_size, sft_lr, seed, config.device, progress)
            )
        if steps - sft_steps:
            parts.append(rl(model, steps - sft_steps))
        models[arm], histories[arm] = model.eval(), pd.concat(parts, ignore_index=True)
        rl_steps = steps - sft_steps
        runs.append(
            dict(
                arm=arm,
                **{"SFT steps": sft_steps, "RL steps": rl_steps, "sequences": steps * batch_size},
                **{"distinct problems (at most)": sft_steps * batch_size + rl_steps * config.prompts_per_step},
                **{"sampled answers": rl_steps * batch_size, "wall (s)": time.perf_counter() - t0},
            )
        )
    rows = []
    for label in mixture.parts:
        task = mixture.part(label)
        stage(f"measuring: {label}")
        problems = task.problems("test", eval_problems, seed=0)
        for arm, model in models.items():
            m = measure(model, base_model, tokenizer, task, problems, eval_samples, config.max_new_tokens, seed + 1)
            rows.append(dict(arm=arm, part=label, role=ROLES.get(label, label), **m))
    settings = dict(
        arms=arms,
        steps=steps,
        base=base,
        train_part=train_part,
        sft_share=sft_share,
        sft_lr=sft_lr,
        lr=config.lr,
        prompts_per_step=config.prompts_per_step,
        group_size=config.group_size,
        preset=config.preset,
        kl_coef=config.algorithm.kl_coef,
        eval_problems=eval_problems,
        eval_samples=eval_samples,
        seed=seed,
        device=str(next(base_model.parameters()).device),
    )
    return RLvsSFTResult(pd.DataFrame(rows), pd.DataFrame(runs), histories, models, settings)


# ------------------------------------------------------------------------------------------- exercises
def check_sequence_kl(fn: Callable, cases: int = 50, seed: int = 0) -> bool:
    """Compares ``fn(logits (N, T, V), ref_logits (N, T, V), response_mask (N, T)) -> (N,)`` with
    ``sequence_kl`` on random logits and masks."""
    gen = torch.Generator().manual_seed(seed)

    def attempt():
        for _ in range(cases):
            N, T, V = (int(torch.randint(1, hi, (1,), generator=gen)) for hi in (6, 7, 9))
            logits, ref = torch.randn(N, T, V, generator=gen) * 2, torch.randn(N, T, V, generator=gen) * 2
            lengths = torch.randint(1, T + 1, (N,), generator=gen)
            mask = (torch.arange(T) < lengths[:, None]).float()  # (N, T)
            want = sequence_kl(logits, ref, mask)
            got = torch.as_tensor(fn(logits.clone(), ref.clone(), mask.clone()), dtype=torch.float32).reshape(-1)
            assert got.shape == want.shape, f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}"
            assert torch.allclose(got, want, atol=1e-4), (
                f"N={N}, T={T}, V={V}, lengths={lengths.tolist()}: got {brief(got)}, expected {brief(want)}"
            )

    return report_check("sequence KL", attempt)


def check_sft_loss(fn: Callable, cases: int = 50, seed: int = 0) -> bool:
    """Compares ``fn(logprobs (N, T), response_mask (N, T)) -> scalar`` with SFT's loss written as the library's
    ``vanilla_pg`` policy loss with advantage 1 on every reference token (``token_mean``): value and gradient."""
    gen = torch.Generator().manual_seed(seed)
    pg = POLICY_LOSSES.get("vanilla_pg")

    def attempt():
        for _ in range(cases):
            N, T = int(torch.randint(1, 6, (1,), generator=gen)), int(torch.randint(1, 8, (1,), generator=gen))
            mask = (torch.arange(T) < torch.randint(1, T + 1, (N,), generator=gen)[:, None]).float()  # (N, T)
            logprobs = -torch.rand(N, T, generator=gen) * 3 * mask  # (N, T)
            ours, theirs = logprobs.clone().requires_grad_(), logprobs.clone().requires_grad_()
            want, _ = pg(ours, ours.detach(), torch.ones(N, T), mask, aggregation="token_mean")
            got = torch.as_tensor(fn(theirs, mask.clone()))
            assert got.numel() == 1, f"return one number (a scalar loss), got shape {tuple(got.shape)}"
            assert abs(got.item() - want.item()) < 1e-5, (
                f"lengths {mask.sum(1).int().tolist()}: got {got.item():.5f}, expected {want.item():.5f}"
            )
            want.backward()
            if got.requires_grad:
                got.backward()
            assert theirs.grad is not None and torch.allclose(theirs.grad, ours.grad, atol=1e-6), (
                "the value matches but the gradient does not: build the loss from logprobs with torch operations"
            )

    return report_check("SFT loss as a policy gradient", attempt)
