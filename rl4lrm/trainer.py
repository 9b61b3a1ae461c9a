"""The RL trainer: one visible loop — sample, score, advantages, update epochs, log.

Everything algorithm-specific is looked up by name from the preset's axes (``rl4lrm.presets``);
the loop itself never branches on an algorithm. Extension goes through callbacks
(``on_rollout_end``, ``on_step_end``, ``on_eval_end``, ``on_train_end``). Runs are seeded so that
the same config gives the same metrics on CPU, and ``save``/``load`` resume a run exactly: the
problems and sampling noise of step s depend only on (seed, s), and the optimizer state travels.
"""

from __future__ import annotations

import copy
import difflib
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields

import pandas as pd
import torch
from tqdm.auto import tqdm

from rl4lrm.advantages import (
    ADVANTAGES,
    advantage_metrics,
    check_advantage,
    whiten,
    zero_std_groups,
)
from rl4lrm.aggregation import aggregate
from rl4lrm.checkpoint import load_checkpoint, save_checkpoint
from rl4lrm.critic import ValueModel, value_loss
from rl4lrm.crosswalk import TRL_NAMES
from rl4lrm.decoding import PRECISIONS
from rl4lrm.evaluation import evaluate
from rl4lrm.kl import kl_penalty
from rl4lrm.losses import POLICY_LOSSES, truncated_is_weights
from rl4lrm.models.zoo import load_base
from rl4lrm.preflight import check_setup
from rl4lrm.presets import PRESET_AXES, Preset, resolve_preset
from rl4lrm.rewards import RewardContext, RewardMix
from rl4lrm.rollout import (
    ENGINES,
    RolloutBatch,
    check_precision,
    compute_logprobs,
    decodes_left_to_right,
    pick_engine,
    rollout,
)
from rl4lrm.sampling import SAMPLERS, FlatConfig, Sampled, SamplingContext, Scores
from rl4lrm.schedules import LR_SCHEDULES, scheduled_lr
from rl4lrm.tasks.base import STYLES
from rl4lrm.utils import resolve_device, seed_everything
from rl4lrm.validation import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    Range,
    check_fields,
    named_keywords,
)


def _where_it_lives(name: str) -> str:
    """Where a keyword ``TrainConfig`` has no field for lives: a TRL name's rl4lrm field, a preset axis' home, or
    the preset axes it is close to ("" when it is closer to a run field, which ``named_keywords`` then suggests)."""
    ours = TRL_NAMES.get(name, name)
    said = f"TRL's {name} is {ours} here" if ours != name else ""

    def home(axis: str) -> str:
        return f"set through TrainConfig(overrides={{{axis!r}: ...}}) or TrainConfig.build({axis}=...)"

    if ours in PRESET_AXES:
        return f"{said + '; ' if said else ''}{ours} is an axis of the preset, {home(ours)}"
    if said:
        return f"{said}: TrainConfig({ours}=...)"
    axes = difflib.get_close_matches(name, PRESET_AXES, n=2)
    if axes and not difflib.get_close_matches(name, [f.name for f in fields(TrainConfig)], n=1):
        return f"did you mean the preset axis {' or '.join(axes)}? It is {home(axes[0])}"
    return ""


@named_keywords(_where_it_lives)
@dataclass
class TrainConfig:
    """Everything a run needs; defaults train a zoo model on the CPU in about a minute.

    Each knob has one home: the algorithm's axes live on ``rl4lrm.presets.Preset`` (changed through
    ``overrides``), each sampler's settings on its own config (``rl4lrm.sampling``, set through
    ``sampling``), and the run's own settings here.
    """

    task: str = "addition"
    """Zoo entry to start from (``rl4lrm.models.zoo.ZOO``): its base model and task."""
    preset: str = "grpo"
    """Algorithm preset (``rl4lrm.presets.PRESETS``)."""
    overrides: dict = field(default_factory=dict)
    """Preset axes to change, e.g. ``{"kl_coef": 0.0, "clip_high": 0.28}`` (``rl4lrm.presets.Preset``
    documents each axis and its range)."""
    steps: int = 60
    """RL steps (one rollout batch and its updates per step)."""
    prompts_per_step: int = 16
    """B: distinct prompts per step."""
    group_size: int = 8
    """G: samples per prompt. Group baselines (GRPO, RLOO, ...) need G >= 2."""
    rewards: dict | None = None
    """The training reward: ``{name: weight}`` or ``{name: (weight, params)}`` over ``rl4lrm.rewards.REWARDS``
    (``rl4lrm.rewards.RewardMix``). None trains on the task's verifier, ``{"correct": 1.0}``. Held-out
    accuracy and ``reward/correct`` always use the verifier, whatever the training reward. Length shaping is
    a reward too: ``{"correct": 1.0, "length_penalty": 0.1}``."""
    sampler: str = "flat"
    """Sampling strategy (``rl4lrm.sampling.SAMPLERS``): ``flat``, ``dynamic`` (DAPO's filter and refill),
    ``curriculum`` (online difficulty estimates), ``memory`` (remembered solutions replayed into all-wrong
    groups) or ``tree`` (branching rollouts; G = prod(branching))."""
    sampling: dict | FlatConfig = field(default_factory=dict)
    """Settings of the chosen sampler: a dict of its config's fields (``rl4lrm.sampling``: ``FlatConfig``,
    ``DynamicConfig``, ``CurriculumConfig``, ``MemoryConfig``, ``TreeConfig``), or an instance of that config."""
    lr: float = 3e-4
    """AdamW learning rate (tiny models tolerate far larger rates than 1B+ models' 1e-6; at 1e-3 the
    zoo models collapse within a few steps)."""
    lr_schedule: str = "constant"
    """Learning-rate schedule after the warm-up: ``constant``, ``linear`` (decay to 0 at the last step) or
    ``cosine`` (to 0 at the last step), as TRL's ``lr_scheduler_type``."""
    warmup_steps: int = 0
    """Steps of linear learning-rate warm-up from 0 (TRL: ``warmup_steps``)."""
    temperature: float = 1.0
    """Rollout sampling temperature (log-probs are taken at the same temperature)."""
    top_p: float = 1.0
    """Rollout nucleus sampling mass."""
    rollout_precision: str = "auto"
    """The rollout engine's arithmetic: ``"auto"`` (the model's dtype), ``"float32"``, ``"bfloat16"`` or
    ``"float16"``. A lower precision than the model's samples from a slightly different policy than the one the
    update trains (the *training-inference mismatch*): each step then also recomputes the batch's log-probs in
    the model's precision and logs the gap (``offpolicy/kl``), and the preset's ``tis_cap`` corrects it with
    truncated importance weights. Held-out evaluation always samples in the model's precision."""
    rollout_engine: str = "auto"
    """How rollouts decode (``rl4lrm.rollout.rollout``'s ``engine``): ``"auto"`` (``"fast"`` for Llama/Qwen2-style
    models, else ``"hf"``), ``"fast"``, ``"graph"`` (the fast decoder's step captured as CUDA graphs; a model on a
    CUDA device) or ``"hf"``. Held-out evaluation always uses ``"auto"``."""
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
    """Evaluate on held-out problems every this many steps, and before the first and after the last step
    (0 = never)."""
    eval_problems: int = 128
    """Held-out problems per evaluation (always the same ones: test split, seed 0)."""
    eval_samples: int = 4
    """Samples per held-out problem; ``acc/pass@1`` averages them."""
    track_kl: bool = False
    """Also keep a frozen reference model when the preset's KL term does not need one, to log
    ``kl/<estimator>`` (one more forward per step). A reference runs whenever ``kl_coef > 0``;
    ``kl/ref_model`` logs 1 when one is in use."""
    fast_update: bool = True
    """The update's fast paths, each the same arithmetic as the plain one in another rounding order: log-probs
    (update, reference, off-policy checks) through ``rl4lrm.fused``'s forward where it applies (Llama/Qwen2: the
    HF forward's function with each distinct prompt computed once per batch, about half the tokens at G = 8;
    log-probs and gradients equal the HF forward's to ~1e-6) and torch's fused AdamW kernel (weights equal the
    per-tensor loop's to ~1e-8). False runs the model's own forward and the per-tensor AdamW."""
    seed: int = 0
    """Seeds the model's problems, sampling and minibatch order."""
    device: str = "auto"
    """``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self):
        check_fields(self, _TRAIN_RANGES)
        if self.minibatches > self.prompts_per_step * self.group_size:
            raise ValueError(
                f"TrainConfig.minibatches={self.minibatches} exceeds the batch of "
                f"{self.prompts_per_step * self.group_size} rows"
            )
        try:  # the preset name and the overrides, each checked by Preset
            algo = self.algorithm
        except ValueError as err:
            raise ValueError(f"TrainConfig.overrides: {err}" if self.overrides else str(err)) from None
        try:  # validates the reward names, weights and parameters
            RewardMix({"correct": 1.0} if self.rewards is None else self.rewards)
        except ValueError as err:
            raise ValueError(f"TrainConfig.rewards: {err}") from None
        sampler = SAMPLERS.get(self.sampler)
        try:
            self.sampling = sampler.make_config(self.sampling)
            sampler.check(self.sampling, self)
        except ValueError as err:
            raise ValueError(f"TrainConfig.sampling: {err}") from None
        advantage = ADVANTAGES.get(algo.advantage)
        missing = _requires(advantage) - _TRAINER_CONTEXT - set(sampler.provides)
        if missing:
            raise ValueError(
                f"advantage {algo.advantage!r} needs {sorted(missing)}, which sampler={self.sampler!r} "
                f"does not provide; samplers that do: "
                f"{[n for n in SAMPLERS if missing <= set(SAMPLERS.get(n).provides)]}"
            )
        check_advantage(algo.advantage, algo, self.group_size)

    @property
    def algorithm(self) -> Preset:
        """The preset with this config's overrides applied."""
        return resolve_preset(self.preset, **self.overrides)

    @classmethod
    def build(cls, **settings) -> TrainConfig:
        """A config from run fields and preset axes given side by side, as studies and panels take them:
        ``TrainConfig.build(steps=50, kl_coef=0.0)`` is ``TrainConfig(steps=50, overrides={"kl_coef": 0.0})``."""
        overrides = {
            **settings.pop("overrides", {}),
            **{k: settings.pop(k) for k in list(settings) if k in PRESET_AXES},
        }
        return cls(**settings, overrides=overrides)


_TRAIN_RANGES = {
    **dict.fromkeys(
        ("steps", "prompts_per_step", "group_size", "max_new_tokens", "minibatches", "eval_problems", "eval_samples"),
        AT_LEAST_ONE,
    ),
    "eval_every": NON_NEGATIVE,
    "warmup_steps": NON_NEGATIVE,
    "lr_schedule": LR_SCHEDULES,
    "lr": POSITIVE,
    "temperature": POSITIVE,
    "top_p": Range(0, 1, low_open=True),
    "rollout_precision": tuple(PRECISIONS),
    "rollout_engine": ENGINES,
    "max_grad_norm": POSITIVE,
    "prompt_style": STYLES,
    "seed": Range(0, 2**32 - 1),  # NumPy's seed range
}


class Callback:
    """Base class of trainer callbacks; override the hooks you need."""

    def on_rollout_end(self, trainer: Trainer, batch: RolloutBatch, rewards: torch.Tensor) -> None: ...

    def on_step_end(self, trainer: Trainer, metrics: dict) -> None: ...

    def on_eval_end(self, trainer: Trainer, metrics: dict) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


@dataclass
class Experience:
    """One scored rollout batch, ready for updates; kept in the replay buffer when ``replay > 0``."""

    batch: RolloutBatch
    advantages: torch.Tensor  # (N, T)
    step: int  # the trainer step that sampled it (its policy's age)
    old_values: torch.Tensor | None = None  # (N, T) critic values at sampling time
    returns: torch.Tensor | None = None  # (N, T) critic targets
    loss_mask: torch.Tensor | None = None  # (N, T) tokens the loss sees, when not the response mask (overlong filter)


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
        self.advantage_fn, self.loss_fn = ADVANTAGES.get(self.algo.advantage), POLICY_LOSSES.get(self.algo.policy_loss)
        self.reward_mix = RewardMix({"correct": 1.0} if config.rewards is None else config.rewards)
        check_setup(
            config,
            self.model,
            tokenizer,
            task,
            self.reward_mix,  # what used to fail at the first step
            task.problems("test", min(config.eval_problems, 64), seed=0),
        )
        # a sampler in another precision than the learner's is slightly off-policy on every batch
        lowered = check_precision(self.model, config.rollout_precision, config.rollout_engine)
        self.mismatched = lowered != next(model.parameters()).dtype
        if decodes_left_to_right(self.model):
            pick_engine(self.model, config.rollout_engine)  # refuses an engine that cannot run it, before step 1
        needs_ref = self.algo.kl_coef > 0 or config.track_kl  # no reference forward when nothing reads it
        self.ref_model = reference_policy(model) if needs_ref else None
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=0.0, fused=config.fast_update and _fusable(self.model)
        )
        self.critic = self.critic_optimizer = None
        if "values" in _requires(self.advantage_fn):
            if not decodes_left_to_right(self.model):
                raise ValueError(
                    f"advantage {self.algo.advantage!r} reads a critic's value before every token, which "
                    f"needs a left-to-right causal LM, not a {type(self.model).__name__}; use a "
                    f"critic-free advantage such as 'grpo', 'rloo' or 'reinforce_pp'"
                )
            self.critic = ValueModel(self.model).to(self.device)
            self.critic_optimizer = torch.optim.AdamW(
                self.critic.parameters(), lr=self.algo.critic_lr, weight_decay=0.0
            )
        self.buffer: deque[Experience] = deque(maxlen=self.algo.replay + 1)
        self.sampler = SAMPLERS.get(config.sampler)(config.sampling, task, config.seed)
        self.callbacks, self.progress = list(callbacks), progress
        self.test_problems = task.problems("test", config.eval_problems, seed=0)
        self.step, self.history = 0, []

    # ---------------------------------------------------------------- helpers
    def generator(self, stream: int, round: int = 0, step: int | None = None) -> torch.Generator:
        """A generator seeded by (seed, step, stream, round): resuming at step s replays the same noise.

        Stream 0 samples rollouts, stream 1 orders minibatches; ``round`` > 0 serves samplers that draw
        several batches in one step. ``step`` defaults to the current one.
        """
        step = self.step if step is None else step
        gen = torch.Generator(device=self.device)
        gen.manual_seed(self.config.seed * 1_000_003 + step * 7 + stream + round * 1_000_000_007)
        return gen

    def evaluate(self) -> dict[str, float]:
        """Held-out pass@1, length and format rate on the fixed test problems."""
        gen = torch.Generator(device=self.device).manual_seed(12345)
        metrics = evaluate(
            self.model,
            self.tokenizer,
            self.task,
            self.test_problems,
            self.config.eval_samples,
            ks=(1,),
            temperature=self.config.temperature,
            max_new_tokens=self.config.max_new_tokens,
            top_p=self.config.top_p,
            style=self.config.prompt_style,
            generator=gen,
        )
        metrics = {f"eval/{k}" if not k.startswith("acc/") else k: v for k, v in metrics.items()}
        for cb in self.callbacks:
            cb.on_eval_end(self, metrics)
        return metrics

    def _should_eval(self) -> bool:
        every = self.config.eval_every
        return every > 0 and (self.step == self.config.steps or self.step % every == 0)

    def sampling_context(self, model: torch.nn.Module | None = None, step: int | None = None) -> SamplingContext:
        """What the sampler sees of a step: policy, task, batch settings, seeded noise and the scorer.

        ``model`` and ``step`` default to the trainer's policy and current step (``collect`` passes others).
        """
        cfg = self.config
        model = self.model if model is None else model
        step = self.step if step is None else step
        return SamplingContext(
            model=model,
            tokenizer=self.tokenizer,
            task=self.task,
            step=step,
            seed=cfg.seed,
            prompts_per_step=cfg.prompts_per_step,
            group_size=cfg.group_size,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            precision=cfg.rollout_precision,
            engine=cfg.rollout_engine,
            prompt_style=cfg.prompt_style,
            generator=lambda stream, round=0: self.generator(stream, round, step),
            score=lambda problems, batch, group_size=None: self.score(problems, batch, group_size, model),
        )

    def score(self, problems, batch: RolloutBatch, group_size: int | None = None, model=None) -> Scores:
        """Scores N completions (``problems[i]`` is the problem of row i) with the reward mix and the verifier.

        ``group_size`` defaults to the run's G (ReMax scores its greedy baseline as groups of one); ``model``,
        the policy rewards that read one see (self-certainty, entropy), to the trainer's.
        """
        cfg = self.config
        ctx = RewardContext(
            group_size=group_size or cfg.group_size,
            max_new_tokens=cfg.max_new_tokens,
            task=self.task,
            batch=batch,
            model=self.model if model is None else model,
            tokenizer=self.tokenizer,
            ref_model=self.ref_model,
        )
        total, parts, token = self.reward_mix(problems, batch.completions, ctx)
        parts = {name: (part.sum(-1) if part.dim() == 2 else part).to(self.device) for name, part in parts.items()}
        correct = parts.get("correct")
        if correct is None:
            correct = torch.tensor(self.task.reward(problems, batch.completions), device=self.device)
        return Scores(total.to(self.device), parts, correct, None if token is None else token.to(self.device))

    def _context(self, sampled: Sampled) -> tuple[torch.Tensor, dict]:
        """The scalar rewards the advantage estimator reads, (N,), and the context it asks for.

        Dense rewards and a KL placed in the reward go on their tokens (``token_rewards``) when the
        estimator takes them, and are summed into the scalar rewards otherwise.
        """
        cfg, algo, requires = self.config, self.algo, _requires(self.advantage_fn)
        problems, prompts, batch, rewards = sampled.problems, sampled.prompts, sampled.batch, sampled.rewards
        context = {
            "gamma": algo.gamma,
            "lam": algo.lam,
            "k": algo.pass_k,
            "eps": algo.std_eps,
            "whiten_std": algo.whiten_std,
            "singleton": algo.singleton,
            **sampled.context,
        }
        dense = sampled.scores.token  # (N, T) or None: dense rewards, already summed into the scalar rewards
        if dense is not None and "token_rewards" in requires:
            context["token_rewards"] = dense  # placed on their tokens instead
            rewards = rewards - dense.sum(-1)
        if algo.kl_coef > 0 and algo.kl_placement == "reward":
            k1 = kl_penalty(batch.old_logprobs, batch.ref_logprobs, "k1", algo.kl_clamp)  # (N, T)
            token_rewards = -algo.kl_coef * k1 * batch.response_mask
            if "token_rewards" in requires:
                context["token_rewards"] = context.get("token_rewards", 0) + token_rewards  # (N, T)
            else:
                rewards = rewards + token_rewards.sum(-1)  # the sequence's total KL penalty
        if "baseline_rewards" in requires:  # ReMax: one greedy completion per prompt
            greedy = rollout(self.model, self.tokenizer, prompts, 1, cfg.max_new_tokens, temperature=0.0)
            base = self.score(problems, greedy, group_size=1).total  # (B,) under the same reward mix
            context["baseline_rewards"] = base.repeat_interleave(cfg.group_size)  # (N,)
        if "values" in requires:
            with torch.no_grad():
                context["values"] = self.critic(batch)  # (N, T)
        return rewards, context

    @torch.no_grad()
    def _behaviour_correction(self, exp: Experience) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """The log-probs the ratio refers to, optional truncated IS weights, and drift metrics.

        A fresh batch without ``tis_cap`` uses its sampling log-probs. A replayed batch was sampled by
        an older policy, and a batch sampled in a lower precision (``rollout_precision``) by a slightly
        different one: the drift from the current policy is measured, and with ``tis_cap`` the ratio is
        taken against the current policy while min(pi_current / pi_sampler, cap) corrects the sampling.
        """
        behaviour, cap = exp.batch.old_logprobs, self.algo.tis_cap
        if exp.step == self.step and cap == 0 and not self.mismatched:
            return behaviour, None, {}
        current, _ = compute_logprobs(self.model, exp.batch, fused=self.config.fast_update)  # (N, T)
        weights, is_metrics = truncated_is_weights(current, behaviour, exp.batch.response_mask, max(cap, 1.0))
        metrics = {"offpolicy/staleness": float(self.step - exp.step), "offpolicy/kl": is_metrics.pop("is/kl")}
        if cap == 0:  # measured only: the ratio keeps referring to the sampling policy
            return behaviour, None, metrics
        return current, weights, {**metrics, **is_metrics}

    def _update(self, exp: Experience, old_logprobs, is_weights, rows: torch.Tensor) -> dict[str, float]:
        """One optimizer step of the policy (and the critic) on the given rows of an experience."""
        cfg, algo = self.config, self.algo
        mb = exp.batch.select(rows)
        logprobs, entropy = compute_logprobs(self.model, mb, with_entropy=True, fused=cfg.fast_update)  # (n, T)
        mask = mb.response_mask if exp.loss_mask is None else exp.loss_mask[rows]  # (n, T) what the loss sees
        loss, m = self.loss_fn(
            logprobs,
            old_logprobs[rows],
            exp.advantages[rows],
            mask,
            aggregation=algo.aggregation,
            clip_low=algo.clip_low,
            clip_high=algo.clip_high,
            max_len=cfg.max_new_tokens,
            dual_clip_c=algo.dual_clip_c,
            is_weights=None if is_weights is None else is_weights[rows],
        )
        m["entropy/mean"] = aggregate(entropy.detach(), mb.response_mask, "token_mean").item()
        if algo.entropy_coef > 0:
            loss = loss - algo.entropy_coef * aggregate(entropy, mask, algo.aggregation, cfg.max_new_tokens)
        if mb.ref_logprobs is not None:
            kl = kl_penalty(logprobs, mb.ref_logprobs, algo.kl_estimator, algo.kl_clamp)  # (n, T)
            if algo.kl_coef > 0 and algo.kl_placement == "loss":
                loss = loss + algo.kl_coef * aggregate(kl, mask, algo.aggregation, cfg.max_new_tokens)
            # logged per token, whatever the loss's aggregation, and k3 always: runs compare on one scale
            for name in dict.fromkeys((algo.kl_estimator, "k3")):
                per_token = kl if name == algo.kl_estimator else kl_penalty(logprobs, mb.ref_logprobs, name)
                m[f"kl/{name}"] = aggregate(per_token.detach(), mb.response_mask, "token_mean").item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        m["grad/norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm).item()
        if not math.isfinite(loss.item()) or not math.isfinite(m["grad/norm"]):
            # stop before the optimizer step: the weights (and any checkpoint saved from them) stay good
            raise FloatingPointError(
                f"step {self.step + 1}: the loss ({loss.item()}) or the gradient norm "
                f"({m['grad/norm']}) is not finite (non-finite advantages: "
                f"{not torch.isfinite(exp.advantages).all().item()}); stopped before updating "
                f"the weights, which stay as the last good step left them"
            )
        self.optimizer.step()
        m["loss/total"] = loss.item()
        if self.critic is not None:
            v_loss, vm = value_loss(
                self.critic(mb), exp.old_values[rows], exp.returns[rows], mb.response_mask, algo.value_clip
            )
            self.critic_optimizer.zero_grad(set_to_none=True)
            v_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
            self.critic_optimizer.step()
            m.update(vm)
        return m

    # ---------------------------------------------------------------- the loop
    def train(self) -> pd.DataFrame:
        """Runs the remaining steps and returns the metrics history as a DataFrame."""
        bar = self._start()  # the held-out evaluation before the first step, and the progress bar
        while self.step < self.config.steps:
            t0 = time.perf_counter()
            # 1. sample B groups of G completions with the current policy (the sampler picks the prompts and how)
            sampled = self.collect()
            # 2.-5. advantages, update epochs and the log, on a batch the current policy sampled
            metrics = self.learn(sampled, self.step, t0, {"time/rollout": time.perf_counter() - t0})
            self._tick(bar, metrics)
        return self._finish(bar)

    def collect(self, model: torch.nn.Module | None = None, step: int | None = None) -> Sampled:
        """Samples and scores one step's batch (the sampler's ``Sampled``), with reference log-probs when a
        reference model runs.

        Args:
            model: the policy that samples; default the trainer's own. An asynchronous producer
                (``rl4lrm.async_rl``) passes its copy, which may be a few versions behind.
            step: the step whose problems and noise are drawn (``generator``); default the current one.
        """
        sampled = self.sampler.sample(self.sampling_context(model, step))
        if self.ref_model is not None:
            with torch.no_grad():
                batch = sampled.batch
                batch.ref_logprobs, _ = compute_logprobs(self.ref_model, batch, fused=self.config.fast_update)
        return sampled

    def learn(self, sampled: Sampled, version: int, started: float, log: dict | None = None) -> dict:
        """One step on a scored batch: advantages, update epochs, log; returns the step's metrics.

        Args:
            sampled: the batch (``collect``).
            version: the step of the policy that sampled it. Older than ``self.step``, the batch is off-policy:
                ``_behaviour_correction`` measures the drift and, with ``tis_cap``, corrects it.
            started: ``time.perf_counter()`` when the step began; ``time/step`` counts from it.
            log: metrics measured outside (the rollout's time, an asynchronous run's lag), logged with the step.
        """
        cfg, algo = self.config, self.algo
        batch, rewards = sampled.batch, sampled.rewards  # N = B*G rows, rewards (N,)
        for cb in self.callbacks:
            cb.on_rollout_end(self, batch, rewards)
        # 2. the context the advantage estimator asks for
        scalar_rewards, context = self._context(sampled)
        # 3. advantages
        advantages, adv_metrics = self.advantage_fn(scalar_rewards, batch.response_mask, cfg.group_size, **context)
        exp = Experience(batch, advantages, version)
        if self.critic is not None:  # the critic regresses on the λ-returns, before any whitening
            exp.old_values, exp.returns = context["values"], advantages + context["values"]
        if algo.whiten_advantages:
            exp.advantages = whiten(advantages, batch.response_mask, algo.whiten_std)  # (N, T)
            adv_metrics.update(advantage_metrics(exp.advantages, batch.response_mask))
        if algo.overlong_filter:  # DAPO: a truncated completion leaves the loss, not its group's baseline
            exp.loss_mask = overlong_filter_mask(batch.response_mask, batch.truncated)  # (N, T)
            adv_metrics["overlong/frac_filtered"] = batch.truncated.float().mean().item()
        self.buffer.append(exp)
        # 4. update epochs over minibatches of the fresh batch and the replayed ones
        corrections = [self._behaviour_correction(e) for e in self.buffer]
        update_metrics: list[dict] = [c[2] for c in corrections if c[2]]
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(self.step, cfg.steps, cfg.lr, cfg.warmup_steps, cfg.lr_schedule)
        order_gen = self.generator(1)
        for _ in range(algo.update_epochs):
            for e, (old_logprobs, is_weights, _) in zip(self.buffer, corrections):
                order = torch.randperm(len(e.advantages), generator=order_gen, device=self.device)
                for rows in order.chunk(cfg.minibatches):
                    update_metrics.append(self._update(e, old_logprobs, is_weights, rows))
        self.model.eval()
        bad = non_finite_parameters(self.model)
        if bad:
            raise FloatingPointError(
                f"step {self.step + 1}: parameters {bad[:5]} became NaN or inf; stopped "
                f"(save() refuses such weights, so the last good checkpoint stays)"
            )
        self.step += 1
        # 5. log
        correct = sampled.scores.correct > 0.5
        lengths = batch.lengths
        tokens_before = self.history[-1].get("tokens/cumulative", 0.0)
        metrics = {
            "step": self.step,
            **sampled.metrics,
            "tokens/cumulative": tokens_before + sampled.metrics["tokens/generated"],
            "reward/mean": rewards.mean().item(),
            "reward/std": rewards.std().item() if len(rewards) > 1 else 0.0,
            "reward/frac_zero_std": zero_std_groups(rewards, cfg.group_size).float().mean().item(),
            "reward/correct": sampled.scores.correct.float().mean().item(),
            **{f"reward/{name}": part.float().mean().item() for name, part in sampled.scores.parts.items()},
            **adv_metrics,
            **_mean_over(update_metrics),
            "length/mean": lengths.mean().item(),
            "length/correct_mean": lengths[correct].mean().item() if correct.any() else float("nan"),
            "length/wrong_mean": lengths[~correct].mean().item() if (~correct).any() else float("nan"),
            "length/frac_truncated": batch.truncated.float().mean().item(),
            "kl/ref_model": float(self.ref_model is not None),
            "lr": self.optimizer.param_groups[0]["lr"],
            **(log or {}),
            "time/step": time.perf_counter() - started,
        }
        if self._should_eval():
            metrics.update(self.evaluate())
        self.history.append(metrics)
        for cb in self.callbacks:
            cb.on_step_end(self, metrics)
        return metrics

    def _start(self) -> tqdm:
        """Evaluates before the first step (once per run) and opens the progress bar."""
        cfg = self.config
        if self.step == 0 and not self.history:
            self.history.append({"step": 0, **(self.evaluate() if cfg.eval_every > 0 else {})})
        return tqdm(
            total=cfg.steps, initial=self.step, desc=f"{self.algo.name} on {self.task.name}", disable=not self.progress
        )

    def _tick(self, bar: tqdm, metrics: dict) -> None:
        last_eval = next((h for h in reversed(self.history) if "acc/pass@1" in h), None)
        postfix = {"reward": f"{metrics['reward/mean']:.2f}"}
        if last_eval is not None:
            postfix["pass@1"] = f"{last_eval['acc/pass@1']:.2f}"
        bar.set_postfix(postfix)
        bar.update(1)

    def _finish(self, bar: tqdm) -> pd.DataFrame:
        bar.close()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history_frame()

    def history_frame(self) -> pd.DataFrame:
        """The metrics history, one row per step (row 0 holds the evaluation before training)."""
        return pd.DataFrame(self.history)

    # ---------------------------------------------------------------- checkpoints
    def save(self, path) -> None:
        """Writes model, optimizers, critic, replay buffer, step, history and config to one file, atomically
        and with a checksum (``rl4lrm.checkpoint``): a crash mid-write keeps the previous file.

        Raises:
            FloatingPointError: when a parameter is NaN or infinite; the file at ``path`` is then left as it was.
        """
        bad = non_finite_parameters(self.model)
        if bad:
            raise FloatingPointError(
                f"not saving {path}: parameters {bad[:5]} hold NaN or inf; the last good checkpoint stays as it was"
            )
        state = {
            "config": asdict(self.config),
            "step": self.step,
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": [_plain_experience(e) for e in self.buffer],
            "sampler": self.sampler.state_dict(),
        }
        if self.critic is not None:
            state["critic"], state["critic_optimizer"] = self.critic.state_dict(), self.critic_optimizer.state_dict()
        save_checkpoint(state, path)

    def load(self, path) -> None:
        """Restores a checkpoint written by ``save``; ``train()`` then continues where it stopped.

        Raises:
            rl4lrm.checkpoint.CheckpointError: for a file that is not a checkpoint, is corrupted or lacks keys.
            ValueError: for a checkpoint of a run with a different config.
        """
        keys = _CHECKPOINT_KEYS + (("critic", "critic_optimizer") if self.critic is not None else ())
        state = load_checkpoint(path, map_location=self.device, required=keys)
        saved, current = state["config"], asdict(self.config)
        differing = sorted(k for k in saved if k != "steps" and saved[k] != current.get(k))  # more steps is fine
        if differing:
            raise ValueError(f"checkpoint {path} was written with a different config; differing fields: {differing}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.buffer.extend(_experience_from_plain(e) for e in state["buffer"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.history = state["step"], state["history"]


_CHECKPOINT_KEYS = ("config", "step", "history", "model", "optimizer", "buffer", "sampler")


def _plain_experience(exp: Experience) -> dict:
    """An ``Experience`` as plain data (a checkpoint holds no class instances, so loading runs no code)."""
    plain = {f.name: getattr(exp, f.name) for f in fields(exp)}
    plain["batch"] = {f.name: getattr(exp.batch, f.name) for f in fields(exp.batch)}
    return plain


def _experience_from_plain(plain: dict) -> Experience:
    return Experience(**{**plain, "batch": RolloutBatch(**plain["batch"])})


def overlong_filter_mask(response_mask: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """DAPO's overlong filtering: the response mask with the rows of truncated completions zeroed.

    Args:
        response_mask: 1 on response tokens, shape (N, T).
        truncated: True where the length cap stopped a row before its EOS, shape (N,).

    Returns:
        The loss mask, shape (N, T): token-level aggregation then divides by the kept tokens only.
    """
    return response_mask * (~truncated.bool()).to(response_mask.dtype)[:, None]  # (N, T)


def non_finite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters that hold a NaN or an infinity."""
    params = [p.detach() for p in model.parameters() if p.is_floating_point()]
    if params and torch.isfinite(torch.stack(torch._foreach_norm(params))).all():  # one check for a healthy model
        return []  # (a norm that overflows a finite tensor only sends it to the per-parameter check)
    return [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]


def reference_policy(model):
    """The frozen reference policy π_ref of the KL term: a frozen deep copy of ``model``, or, for a peft (LoRA)
    model, ``AdaptersOff``: the same model with its adapters switched off, since its base weights never train and a
    second copy would cost the memory LoRA is there to save."""
    if hasattr(model, "disable_adapter"):  # a peft PeftModel
        return AdaptersOff(model)
    return copy.deepcopy(model).eval().requires_grad_(False)


class AdaptersOff:
    """A LoRA policy's base model as a reference without a copy: calling it runs the peft model inside
    ``disable_adapter()`` and without gradients. Not a module of its own, so nothing done to the reference (eval
    mode, freezing, a device move) reaches the policy's parameters."""

    def __init__(self, peft_model):
        self.peft_model = peft_model

    def __call__(self, *args, **kwargs):
        with torch.no_grad(), self.peft_model.disable_adapter():
            return self.peft_model(*args, **kwargs)


def _fusable(model: torch.nn.Module) -> bool:
    """Whether torch's fused AdamW kernel takes the model's parameters (floating point, on the CPU or CUDA)."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in model.parameters())


# advantage context the trainer computes itself (``_context``); samplers may provide more
_TRAINER_CONTEXT = frozenset({"baseline_rewards", "values", "token_rewards"})


def _requires(advantage_fn) -> frozenset:
    """The context an advantage estimator asks for (``register_advantage(..., requires=...)``)."""
    return getattr(advantage_fn, "requires", frozenset())


def _mean_over(rows: list[dict]) -> dict[str, float]:
    """Per-key mean over a list of metric dicts whose keys may differ (e.g. replayed batches only)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: sum(row[k] for row in rows if k in row) / sum(k in row for row in rows) for k in keys}
