"""The RL trainer: one visible loop — sample, score, advantages, update epochs, log.

Everything algorithm-specific is looked up by name from the preset's axes (``rl4lrm.presets``);
the loop itself never branches on an algorithm. Extension goes through callbacks
(``on_rollout_end``, ``on_step_end``, ``on_eval_end``, ``on_train_end``). Runs are seeded so that
the same config gives the same metrics on CPU, and ``save``/``load`` resume a run exactly: the
problems and sampling noise of step s depend only on (seed, s), and the optimizer state travels.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from rl4lrm.advantages import ADVANTAGES, zero_std_groups
from rl4lrm.evaluation import evaluate
from rl4lrm.kl import kl_penalty
from rl4lrm.losses import POLICY_LOSSES, aggregate
from rl4lrm.models.zoo import load_base
from rl4lrm.presets import Preset, resolve_preset
from rl4lrm.rollout import RolloutBatch, compute_logprobs, rollout
from rl4lrm.tasks.base import STYLES
from rl4lrm.utils import resolve_device, seed_everything


@dataclass
class TrainConfig:
    """Everything a run needs; defaults train a zoo model on the CPU in about a minute."""

    task: str = "addition"
    """Zoo entry to start from (``rl4lrm.models.zoo.ZOO``): its base model and task."""
    preset: str = "grpo"
    """Algorithm preset (``rl4lrm.presets.PRESETS``); the axis fields below override it."""
    steps: int = 60
    """RL steps (one rollout batch and its updates per step)."""
    prompts_per_step: int = 16
    """B: distinct prompts per step."""
    group_size: int = 8
    """G: samples per prompt. GRPO needs G >= 2 to have a group baseline."""
    lr: float = 3e-4
    """AdamW learning rate (tiny models tolerate far larger rates than 1B+ models' 1e-6; at 1e-3 the
    zoo models collapse within a few steps)."""
    temperature: float = 1.0
    """Rollout sampling temperature (log-probs are taken at the same temperature)."""
    top_p: float = 1.0
    """Rollout nucleus sampling mass."""
    max_new_tokens: int = 16
    """Length cap of a completion; capped rows count as truncated."""
    prompt_style: str = "plain"
    """``"plain"`` prompts for the tiny char-level models, ``"chat"`` (the tokenizer's chat template,
    answer in ``<answer></answer>``) for instruct models such as SmolLM2."""
    minibatches: int = 1
    """Optimizer steps per update epoch (the N rows are split into this many minibatches)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    eval_every: int = 10
    """Evaluate on held-out problems every this many steps (0 = only at the start and end)."""
    eval_problems: int = 128
    """Held-out problems per evaluation (always the same ones: test split, seed 0)."""
    eval_samples: int = 4
    """Samples per held-out problem; ``acc/pass@1`` averages them."""
    track_kl: bool = True
    """Keep a frozen reference copy to log ``kl/<estimator>`` even when ``kl_coef`` is 0."""
    seed: int = 0
    """Seeds the model's problems, sampling and minibatch order."""
    device: str = "auto"
    """``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``."""
    # preset overrides: None keeps the preset's value
    advantage: str | None = None
    policy_loss: str | None = None
    aggregation: str | None = None
    clip_low: float | None = None
    clip_high: float | None = None
    kl_coef: float | None = None
    kl_estimator: str | None = None
    kl_placement: str | None = None
    entropy_coef: float | None = None
    update_epochs: int | None = None

    def __post_init__(self):
        positive = ("steps", "prompts_per_step", "group_size", "max_new_tokens", "minibatches", "eval_problems",
                    "eval_samples")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")
        if self.eval_every < 0:
            raise ValueError(f"TrainConfig.eval_every must be >= 0, got {self.eval_every}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if not self.temperature > 0:
            raise ValueError(f"TrainConfig.temperature must be > 0 for RL sampling, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"TrainConfig.top_p must be in (0, 1], got {self.top_p}")
        if self.prompt_style not in STYLES:
            raise ValueError(f"TrainConfig.prompt_style must be one of {STYLES}, got {self.prompt_style!r}")
        if self.minibatches > self.prompts_per_step * self.group_size:
            raise ValueError(f"TrainConfig.minibatches={self.minibatches} exceeds the batch of "
                             f"{self.prompts_per_step * self.group_size} rows")
        self.algorithm  # validates the preset name and the overrides

    @property
    def algorithm(self) -> Preset:
        """The preset with this config's overrides applied."""
        overrides = {k: getattr(self, k) for k in ("advantage", "policy_loss", "aggregation", "clip_low", "clip_high",
                                                   "kl_coef", "kl_estimator", "kl_placement", "entropy_coef",
                                                   "update_epochs")}
        return resolve_preset(self.preset, **overrides)


class Callback:
    """Base class of trainer callbacks; override the hooks you need."""

    def on_rollout_end(self, trainer: "Trainer", batch: RolloutBatch, rewards: torch.Tensor) -> None: ...

    def on_step_end(self, trainer: "Trainer", metrics: dict) -> None: ...

    def on_eval_end(self, trainer: "Trainer", metrics: dict) -> None: ...

    def on_train_end(self, trainer: "Trainer") -> None: ...


class Trainer:
    """RL on a task with a verifier.

    Args:
        config: the run's ``TrainConfig``.
        model, tokenizer, task: start from these instead of the zoo entry ``config.task``.
        callbacks: ``Callback`` objects called at each hook.
        progress: show a tqdm bar.
    """

    def __init__(self, config: TrainConfig, model=None, tokenizer=None, task=None, callbacks=(), progress=True):
        self.config, self.algo = config, config.algorithm
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        if model is None:
            model, tokenizer, task = load_base(config.task, device=self.device)
        if tokenizer is None or task is None:
            raise ValueError("pass tokenizer and task together with model")
        self.model, self.tokenizer, self.task = model.to(self.device), tokenizer, task
        needs_ref = self.algo.kl_coef > 0 or config.track_kl
        self.ref_model = copy.deepcopy(model).eval().requires_grad_(False) if needs_ref else None
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=0.0)
        self.callbacks, self.progress = list(callbacks), progress
        self.test_problems = task.problems("test", config.eval_problems, seed=0)
        self.step, self.history = 0, []

    # ---------------------------------------------------------------- helpers
    def _generator(self, stream: int) -> torch.Generator:
        """A generator seeded by (seed, step, stream): resuming at step s replays the same noise."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.config.seed * 1_000_003 + self.step * 7 + stream)
        return gen

    def evaluate(self) -> dict[str, float]:
        """Held-out pass@1, length and format rate on the fixed test problems."""
        gen = torch.Generator(device=self.device).manual_seed(12345)
        metrics = evaluate(self.model, self.tokenizer, self.task, self.test_problems, self.config.eval_samples,
                           ks=(1,), temperature=self.config.temperature, max_new_tokens=self.config.max_new_tokens,
                           top_p=self.config.top_p, style=self.config.prompt_style, generator=gen)
        metrics = {f"eval/{k}" if not k.startswith("acc/") else k: v for k, v in metrics.items()}
        for cb in self.callbacks:
            cb.on_eval_end(self, metrics)
        return metrics

    def _should_eval(self) -> bool:
        every = self.config.eval_every
        return self.step == self.config.steps or (every > 0 and self.step % every == 0)

    # ---------------------------------------------------------------- the loop
    def train(self) -> pd.DataFrame:
        """Runs the remaining steps and returns the metrics history as a DataFrame."""
        cfg, algo = self.config, self.algo
        adv_fn, loss_fn = ADVANTAGES.get(algo.advantage), POLICY_LOSSES.get(algo.policy_loss)
        if self.step == 0 and not self.history:
            self.history.append({"step": 0, **self.evaluate()})
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"{algo.name} on {self.task.name}", disable=not self.progress)
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            # 1. sample: B train problems, G completions each
            problems = self.task.problems("train", cfg.prompts_per_step, seed=cfg.seed * 1_000_003 + self.step)
            prompts = [self.task.format_prompt(p, cfg.prompt_style, self.tokenizer) for p in problems]
            batch = rollout(self.model, self.tokenizer, prompts, cfg.group_size, cfg.max_new_tokens,
                            cfg.temperature, cfg.top_p, self._generator(0))
            if self.ref_model is not None:
                with torch.no_grad():
                    batch.ref_logprobs, _ = compute_logprobs(self.ref_model, batch)
            t1 = time.perf_counter()
            # 2. score with the verifier
            expanded = [p for p in problems for _ in range(cfg.group_size)]
            rewards = torch.tensor(self.task.reward(expanded, batch.completions), device=self.device)  # (N,)
            for cb in self.callbacks:
                cb.on_rollout_end(self, batch, rewards)
            scores = rewards
            if algo.kl_coef > 0 and algo.kl_placement == "reward":
                kl_seq = (kl_penalty(batch.old_logprobs, batch.ref_logprobs, "k1") * batch.response_mask).sum(-1)
                scores = rewards - algo.kl_coef * kl_seq
            # 3. advantages
            advantages, adv_metrics = adv_fn(scores, batch.response_mask, cfg.group_size)  # (N, T)
            # 4. update epochs over minibatches
            update_metrics: list[dict] = []
            self.model.train()
            order_gen = self._generator(1)
            for _ in range(algo.update_epochs):
                order = torch.randperm(len(rewards), generator=order_gen, device=self.device)
                for rows in order.chunk(cfg.minibatches):
                    mb = batch.select(rows)
                    logprobs, entropy = compute_logprobs(self.model, mb, with_entropy=True)
                    loss, m = loss_fn(logprobs, mb.old_logprobs, advantages[rows], mb.response_mask,
                                      aggregation=algo.aggregation, clip_low=algo.clip_low, clip_high=algo.clip_high,
                                      max_len=cfg.max_new_tokens)
                    m["entropy/mean"] = aggregate(entropy.detach(), mb.response_mask, "token_mean").item()
                    if algo.entropy_coef > 0:
                        loss = loss - algo.entropy_coef * aggregate(entropy, mb.response_mask, algo.aggregation,
                                                                    cfg.max_new_tokens)
                    if mb.ref_logprobs is not None:
                        kl = kl_penalty(logprobs, mb.ref_logprobs, algo.kl_estimator)  # (n, T)
                        kl_value = aggregate(kl, mb.response_mask, algo.aggregation, cfg.max_new_tokens)
                        m[f"kl/{algo.kl_estimator}"] = kl_value.item()
                        if algo.kl_coef > 0 and algo.kl_placement == "loss":
                            loss = loss + algo.kl_coef * kl_value
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    m["grad/norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm).item()
                    self.optimizer.step()
                    m["loss/total"] = loss.item()
                    update_metrics.append(m)
            self.model.eval()
            self.step += 1
            # 5. log
            metrics = {
                "step": self.step,
                "reward/mean": rewards.mean().item(),
                "reward/std": rewards.std().item() if len(rewards) > 1 else 0.0,
                "reward/frac_zero_std": zero_std_groups(rewards, cfg.group_size).float().mean().item(),
                **adv_metrics,
                **{k: sum(m[k] for m in update_metrics) / len(update_metrics) for k in update_metrics[0]},
                "length/mean": batch.lengths.mean().item(),
                "length/frac_truncated": batch.truncated.float().mean().item(),
                "time/rollout": t1 - t0,
                "time/step": time.perf_counter() - t0,
            }
            if self._should_eval():
                metrics.update(self.evaluate())
            self.history.append(metrics)
            for cb in self.callbacks:
                cb.on_step_end(self, metrics)
            last_eval = next(h for h in reversed(self.history) if "acc/pass@1" in h)
            bar.set_postfix({"reward": f"{metrics['reward/mean']:.2f}", "pass@1": f"{last_eval['acc/pass@1']:.2f}"})
            bar.update(1)
        bar.close()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history_frame()

    def history_frame(self) -> pd.DataFrame:
        """The metrics history, one row per step (row 0 holds the evaluation before training)."""
        return pd.DataFrame(self.history)

    # ---------------------------------------------------------------- checkpoints
    def save(self, path) -> None:
        """Writes model, optimizer, step, history and config to one file."""
        torch.save({"config": asdict(self.config), "step": self.step, "history": self.history,
                    "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}, path)

    def load(self, path) -> None:
        """Restores a checkpoint written by ``save``; ``train()`` then continues where it stopped."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved, current = state["config"], asdict(self.config)
        differing = sorted(k for k in saved if k != "steps" and saved[k] != current.get(k))  # more steps is fine
        if differing:
            raise ValueError(f"checkpoint {path} was written with a different config; differing fields: {differing}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.history = state["step"], state["history"]
