"""Continual RL: tasks trained one after another, what is forgotten, and two remedies (replay, a KL anchor).

A deployed reasoning model keeps meeting new tasks; training on each in turn risks catastrophic forgetting of the
earlier ones (McCloskey and Cohen, 1989; Kirkpatrick et al., 2017, "Overcoming catastrophic forgetting in neural
networks", arXiv:1612.00796). The survey (arXiv 2509.08827, §7) lists continual RL among the open directions.
Shenfeld et al. (2025, "RL's Razor", arXiv:2509.04259) find that on-policy RL forgets less than SFT because it
moves the policy less, which suggests that what RL forgets depends on how far each stage lets the policy move.

This module trains the zoo's ``generalist`` (2-digit addition, 3-digit addition, chain arithmetic) with GRPO on one
part per stage, in a given order, and measures every part after every stage. Each stage starts from where the
previous one ended. The remedies change only how a stage trains:
* ``replay``: a share of each stage's prompts comes from the parts of earlier stages (rehearsal; Rolnick et al.,
  2019, "Experience Replay for Continual Learning", arXiv:1811.11682), so earlier tasks keep sending reward;
* ``KL anchor``: a KL penalty to the model as the stage found it (the trainer's ``kl_coef``), a leash in the
  spirit of EWC's pull towards the previous solution, without its Fisher weights.
Forgetting of a part is its accuracy just after the stage that trained it minus its accuracy at the end.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from rl4lrm.experiments.rl_vs_sft import measure
from rl4lrm.models.zoo import ZOO, load_base
from rl4lrm.tasks import Task, get_task
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import resolve_device

BASE = "generalist"
"""The zoo entry every run starts from: a model that knows the three parts of a ``Mixture``."""


@dataclass(frozen=True)
class Remedy:
    """How each stage trains against forgetting."""

    replay: float = 0.0
    """Share of a stage's prompts drawn from the earlier stages' parts (0: only the current part)."""
    kl_coef: float = 0.0
    """KL penalty to the model as the stage began (0: no anchor)."""
    description: str = ""

    def __post_init__(self):
        if not 0 <= self.replay < 1:
            raise ValueError(f"Remedy.replay must be in [0, 1), got {self.replay}")
        if self.kl_coef < 0:
            raise ValueError(f"Remedy.kl_coef must be >= 0, got {self.kl_coef}")


REMEDIES: dict[str, Remedy] = {
    "none": Remedy(description="each stage trains on its part only"),
    "replay": Remedy(replay=0.5, description="half of each stage's prompts come from the earlier stages' parts"),
    "KL anchor": Remedy(
        kl_coef=0.1, description="KL penalty (β = 0.1, k3 in the loss) to the model the stage began with"
    ),
}
"""The study's arms, by name."""


def replay_weights(current: str, earlier: Sequence[str], replay: float) -> dict[str, float]:
    """Each part's share of a stage's prompts: ``1 - replay`` for the current part, ``replay`` split equally
    among the distinct earlier parts other than the current one (all to the current part when there are none).

    >>> replay_weights("chain", ["add3"], 0.5)
    {'add3': 0.5, 'chain': 0.5}
    """
    if not 0 <= replay < 1:
        raise ValueError(f"replay must be in [0, 1), got {replay}")
    others = [p for p in dict.fromkeys(earlier) if p != current]
    if not replay or not others:
        return {current: 1.0}
    return {part: replay / len(others) for part in others} | {current: 1 - replay}


def stage_task(mixture: Task, current: str, earlier: Sequence[str], replay: float) -> Task:
    """The task a stage trains on: the current part alone, or a mixture with the earlier parts (``replay_weights``).

    Args:
        mixture: the base's ``Mixture`` (its ``parts`` give each part's task and settings).
        current: the part this stage learns.
        earlier: parts of the earlier stages.
        replay: their total share of the prompts, in [0, 1).
    """
    weights = replay_weights(current, earlier, replay)
    if len(weights) == 1:
        return mixture.part(current)
    return get_task("mixture", parts={part: mixture.parts[part] for part in weights}, weights=weights)


def continual_run(
    remedy: str | Remedy = "none",
    stages: Sequence[str] = ("add3", "chain"),
    steps: int = 60,
    seed: int = 0,
    eval_problems: int = 64,
    eval_samples: int = 4,
    progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
    **train_config,
) -> pd.DataFrame:
    """Trains the ``generalist`` on each part of ``stages`` in turn and measures every part after every stage.

    Args:
        remedy: a name of ``REMEDIES`` or a ``Remedy``.
        stages: the parts to learn, in order (a part may come back).
        steps: RL steps per stage.
        seed: seeds training and the evaluation's sampling.
        eval_problems, eval_samples: held-out problems per part (test split, seed 0) and samples per problem.
        progress: show the trainer's progress bars.
        on_stage: called with a short message before each stage (widgets show it).
        **train_config: ``TrainConfig`` fields and preset axes (``lr``, ``prompts_per_step``, ...; default GRPO).

    Returns:
        Long format: ``remedy, lr, seed, stage, after, part, accuracy, kl, trained`` (``stage`` 0 is the base,
        ``after`` the part the stage trained; ``kl`` is the sequence KL to the base, nats per answer; ``trained``
        marks the parts some stage up to this one trained on).
    """
    name, remedy = (remedy, REMEDIES.get(remedy)) if isinstance(remedy, str) else ("custom", remedy)
    if remedy is None:
        raise ValueError(f"unknown remedy {name!r}; choose one of {sorted(REMEDIES)} or pass a Remedy")
    if not stages:
        raise ValueError("stages must name at least one part")
    if "kl_coef" in train_config:
        raise ValueError(f"kl_coef={train_config['kl_coef']} is the remedy's: pass Remedy(kl_coef=...) instead")
    config = TrainConfig.build(
        task=BASE, steps=steps, seed=seed, **{"eval_every": 0, **train_config, "kl_coef": remedy.kl_coef}
    )
    base, tokenizer, mixture = load_base(BASE, device=resolve_device(config.device))
    parts = list(ZOO[BASE].task_kwargs["parts"])
    unknown = [s for s in stages if s not in parts]
    if unknown:
        raise ValueError(f"stages {unknown} are not parts of {BASE!r}; parts: {parts}")
    problems = {p: mixture.part(p).problems("test", eval_problems, seed=0) for p in parts}
    stage_message = on_stage or (lambda message: None)
    model, rows = copy.deepcopy(base), []

    def record(stage: int, after: str, trained: set[str]) -> None:
        for part in parts:
            m = measure(model, base, tokenizer, mixture.part(part), problems[part], eval_samples, 16, seed)
            rows.append(dict(stage=stage, after=after, part=part, accuracy=m["accuracy"], kl=m["kl"]))
            rows[-1]["trained"] = part in trained

    record(0, "base", set())
    for k, part in enumerate(stages, start=1):
        stage_message(f"stage {k}/{len(stages)}: RL on {part} ({steps} steps, remedy: {name})")
        task = stage_task(mixture, part, stages[: k - 1], remedy.replay)
        t0 = time.perf_counter()
        Trainer(replace(config, seed=seed + k), model=model, tokenizer=tokenizer, task=task, progress=progress).train()
        model.eval()
        record(k, part, set(stages[:k]))
        rows[-1]["seconds"] = time.perf_counter() - t0
    return pd.DataFrame(rows).assign(remedy=name, lr=config.lr, seed=seed)


def forgetting(table: pd.DataFrame) -> pd.DataFrame:
    """Per run (remedy, lr, seed): each part's accuracy right after its last training stage, at the end, and the change.

    Only parts trained before the last stage can be forgotten; the last stage's part gives the ``gain`` over the
    base (plasticity), the untrained parts the drift of what no stage touched.
    """
    out = []
    for (remedy, lr, seed), run in table.groupby(["remedy", "lr", "seed"], sort=False):
        last = run["stage"].max()
        final = run[run["stage"] == last].set_index("part")["accuracy"]
        base = run[run["stage"] == 0].set_index("part")["accuracy"]
        for part in final.index:
            learned = run[(run["after"] == part)]
            if learned.empty:
                role, peak = "untrained", base[part]
            elif learned["stage"].max() == last:
                role, peak = "last stage", base[part]
            else:
                stage = learned["stage"].max()
                role, peak = "earlier stage", run[(run["stage"] == stage) & (run["part"] == part)]["accuracy"].item()
            out.append(dict(remedy=remedy, lr=lr, seed=seed, part=part, role=role, before=peak, final=final[part]))
    frame = pd.DataFrame(out)
    frame["change"] = frame["final"] - frame["before"]
    return frame


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``forgetting``'s change, one row per (remedy, lr) and a column per
    role: the earlier stages' parts (forgetting when negative), the last stage's part (its gain over the base) and
    the parts no stage trained (drift)."""
    change = forgetting(table)
    stats = change.groupby(["remedy", "lr", "role"], sort=False)["change"].agg(["mean", "std"]).unstack("role")
    roles = [r for r in ("earlier stage", "last stage", "untrained") if r in set(change["role"])]
    out = pd.DataFrame({f"{role}: {stat}": stats[(stat, role)] for role in roles for stat in ("mean", "std")})
    return out.reset_index()
