"""Efficient reasoning, measured: how much a model thinks, where, and what each length control buys (notebook 14).

The model is the zoo's ``thinking`` (``rl4lrm.tasks.thinking``): it adds 2- to 4-digit numbers and, at its first
token, chooses to answer at once or to write the column additions first, sometimes twice (a re-check). The studies:

- ``sample_answers`` / ``thinking_profile``: per difficulty, how often the model thinks and re-checks, how accurate
  each mode is, and how many tokens it spends: overthinking (re-checks) and underthinking (answering 4-digit sums at
  once) made visible;
- ``budget_sweep``: accuracy against tokens under budget forcing (``rl4lrm.budget``), at inference only;
- ``efficiency_runs``: RL with each length control of ``METHODS`` (× seeds), every trained model then measured the
  same way, for one accuracy-vs-tokens plot (``pareto_front`` marks the methods no other beats on both axes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from tqdm.auto import tqdm

from rl4lrm.budget import budget_forcing
from rl4lrm.models.zoo import load_base, load_task
from rl4lrm.tasks.base import Problem, Task
from rl4lrm.tasks.thinking import rechecks
from rl4lrm.trainer import TrainConfig, Trainer

BASE = "thinking"
"""The zoo model every study starts from."""
MAX_NEW_TOKENS = 80
"""Room for the longest answer the base model writes: a 4-digit sum thought through twice (a re-check) is 74 tokens."""


@dataclass(frozen=True)
class Method:
    """One way to train for shorter (or better-placed) thinking: a training reward and a schedule of length caps."""

    rewards: dict | None = None
    """The ``TrainConfig.rewards`` mix (None: correctness only)."""
    caps: tuple[int, ...] = (MAX_NEW_TOKENS,)
    """``max_new_tokens`` of each training stage, the steps split evenly between them (ThinkPrune lowers it)."""
    warmup: float = 0.0
    """Share of the steps trained on correctness alone before ``rewards`` take over (Kimi k1.5 warms its length
    reward up: applied from the start it slowed early training)."""
    source: str = ""
    """Where the method comes from."""


METHODS: dict[str, Method] = {
    "GRPO": Method(source="correctness only (Shao et al., 2024)"),
    "length penalty": Method({"correct": 1.0, "length_penalty": 0.5}, source="-|y|/L, a plain pressure to be short"),
    "Kimi length": Method(
        {"correct": 1.0, "kimi_length": 0.5}, warmup=0.5, source="Kimi Team, 2025, arXiv:2501.12599 (warmed up)"
    ),
    "Kimi, no warm-up": Method({"correct": 1.0, "kimi_length": 0.5}, source="the same reward from step 0"),
    "L1 target": Method(
        {"correct": 1.0, "target_length": (0.5, {"target": 24})}, source="Aggarwal & Welleck, 2025, arXiv:2503.04697"
    ),
    "ThinkPrune": Method(caps=(64, 52, 40), source="Hou et al., 2025, arXiv:2504.01296"),
    "AdaptThink": Method({"correct": 1.0, "no_think_bonus": 0.2}, source="Zhang et al., 2025, arXiv:2505.13417"),
}


def sample_answers(
    model,
    tokenizer,
    task: Task,
    problems: list[Problem],
    samples: int = 4,
    budget: int | None = None,
    temperature: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Samples ``samples`` answers per problem (under a thinking ``budget``, ``rl4lrm.budget.budget_forcing``) and
    describes each.

    Returns:
        One row per answer: ``problem``, ``digits``, ``completion``, ``thinks``, ``rechecks``, ``correct``,
        ``tokens``, ``forced``.
    """
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    out = budget_forcing(
        model,
        tokenizer,
        [p.prompt for p in problems],
        budget,
        samples,
        max_new_tokens=MAX_NEW_TOKENS,
        temperature=temperature,
        generator=gen,
    )
    rows = [p for p in problems for _ in range(samples)]
    return pd.DataFrame(
        {
            "problem": [p.prompt for p in rows],
            "digits": [p.meta["digits"] for p in rows],
            "completion": out.completions,
            "thinks": [task.thinks(c) for c in out.completions],
            "rechecks": [rechecks(c) for c in out.completions],
            "correct": [task.verify(p, c).correct for p, c in zip(rows, out.completions)],
            "tokens": out.tokens,
            "forced": out.forced,
        }
    )


def thinking_profile(answers: pd.DataFrame) -> pd.DataFrame:
    """Per difficulty (``digits``) and overall: share of answers that think and that re-check, accuracy of each mode
    (thinking, answering at once), accuracy and mean tokens (NaN where a mode never occurs)."""

    def describe(df: pd.DataFrame) -> pd.Series:
        think, quick = df[df.thinks], df[~df.thinks]
        return pd.Series(
            {
                "p(think)": df.thinks.mean(),
                "p(recheck)": df.rechecks.mean(),
                "acc": df.correct.mean(),
                "acc thinking": think.correct.mean() if len(think) else float("nan"),
                "acc at once": quick.correct.mean() if len(quick) else float("nan"),
                "tokens": df.tokens.mean(),
                "answers": float(len(df)),
            }
        )

    table = pd.DataFrame({d: describe(df) for d, df in answers.groupby("digits")}).T
    table.loc["all"] = describe(answers)
    table.index.name = "digits"
    return table


def budget_sweep(
    model,
    tokenizer,
    task: Task,
    problems: list[Problem],
    budgets: Sequence[int | None] = (0, 8, 16, 24, 32, 40, 48, 64, None),
    samples: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy and mean tokens at each thinking budget (None: no budget), by budget forcing at inference.

    Returns:
        One row per budget: ``budget`` (None shown as NaN), ``acc``, ``tokens``, ``p(think)``, ``forced``.
    """
    rows = []
    for budget in budgets:
        answers = sample_answers(model, tokenizer, task, problems, samples, budget, seed=seed)
        rows.append(
            {
                "budget": float("nan") if budget is None else budget,
                "acc": answers.correct.mean(),
                "tokens": answers.tokens.mean(),
                "p(think)": answers.thinks.mean(),
                "forced": answers.forced.mean(),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class EfficiencyRun:
    """One trained method and seed: its history and its answers on the held-out problems."""

    method: str
    seed: int
    history: pd.DataFrame
    answers: pd.DataFrame
    model: torch.nn.Module | None = field(default=None, repr=False)


def training_curves(runs: Sequence[EfficiencyRun]) -> pd.DataFrame:
    """The runs' histories in one long frame with ``method`` and ``seed`` columns (``rl4lrm.viz.plot_comparison``)."""
    return pd.concat([r.history.assign(method=r.method, seed=r.seed) for r in runs], ignore_index=True)


def train_method(method: Method, steps: int, seed: int = 0, progress: bool = False, **config) -> tuple:
    """Trains the zoo's ``thinking`` model with ``method`` for ``steps`` steps: the warm-up share on correctness
    alone, then the rest with the method's rewards, split evenly across its caps.

    Returns:
        ``(model, tokenizer, task, history)``: the history of every stage, its ``step`` running on.
    """
    model, tokenizer, task = load_base(BASE, device=config.get("device", "cpu"))
    warm = round(steps * method.warmup)
    stages = [(method.caps[0], None, warm)] if warm else []
    rest = steps - warm
    stages += [
        (cap, method.rewards, rest // len(method.caps) + (i < rest % len(method.caps)))
        for i, cap in enumerate(method.caps)
    ]
    histories, done = [], 0
    for cap, rewards, n in stages:
        if n == 0:
            continue
        run = TrainConfig.build(
            **{"task": BASE, "eval_every": 0, **config},
            steps=n,
            seed=seed * 1000 + done,  # each stage its own problems and noise
            rewards=rewards,
            max_new_tokens=cap,
        )
        trainer = Trainer(run, model, tokenizer, task, progress=progress)
        history = trainer.train()
        if histories:  # a later stage's step-0 row repeats the last step of the one before
            history = history[history.step > 0]
        histories.append(history.assign(step=history.step + done, cap=cap))
        done += n
    return trainer.model, tokenizer, task, pd.concat(histories, ignore_index=True)


def efficiency_runs(
    methods: Sequence[str] | dict[str, Method] = tuple(METHODS),
    seeds: Sequence[int] = (0,),
    steps: int = 60,
    eval_problems: int = 192,
    samples: int = 4,
    keep_models: bool = False,
    on_run_end: Callable[[list[EfficiencyRun]], None] | None = None,
    progress: bool = True,
    **config,
) -> list[EfficiencyRun]:
    """Trains each method (names of ``METHODS``, or ``{label: Method}``) for each seed and samples its answers
    to the same held-out problems (test split, seed 0).

    Args:
        methods: which methods. seeds: one run per seed. steps: RL steps per run.
        eval_problems, samples: the held-out problems and samples per problem every model is measured on.
        keep_models: keep each trained model on its run (for widgets).
        on_run_end: called with the runs so far after each run (live plots).
        progress: a bar over runs.
        **config: ``TrainConfig`` fields shared by every run (lr, prompts_per_step, ...).

    Returns:
        One ``EfficiencyRun`` per (method, seed).
    """
    if not isinstance(methods, dict):
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {list(METHODS)}")
        methods = {m: METHODS[m] for m in methods}
    if not methods or not seeds:
        raise ValueError("efficiency_runs needs at least one method and one seed")
    task = load_task(BASE)
    problems = task.problems("test", eval_problems, seed=0)
    runs: list[EfficiencyRun] = []
    jobs = [(label, method, seed) for label, method in methods.items() for seed in seeds]
    for label, method, seed in tqdm(jobs, desc="length controls", disable=not progress):
        model, tokenizer, task, history = train_method(method, steps, seed, **config)
        answers = sample_answers(model, tokenizer, task, problems, samples, seed=seed)
        runs.append(EfficiencyRun(label, seed, history, answers, model if keep_models else None))
        if on_run_end is not None:
            on_run_end(runs)
    return runs


def summary(runs: Sequence[EfficiencyRun], base: pd.DataFrame | dict[int, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per method, and one for the base model (its ``sample_answers``, or ``{seed: answers}``) named "base":
    mean and std over seeds of accuracy and mean tokens, and the share of thinking answers on the easiest and the
    hardest problems.

    Returns:
        Columns ``method``, ``acc``, ``acc_std``, ``tokens``, ``tokens_std``, ``think easy``, ``think hard``,
        ``recheck`` (the share of answers that re-check) and ``seeds``.
    """
    base = {0: base} if isinstance(base, pd.DataFrame) else dict(base or {})
    per_run = [("base", seed, answers) for seed, answers in base.items()]
    per_run += [(r.method, r.seed, r.answers) for r in runs]
    if not per_run:
        raise ValueError("summary needs at least one run or the base model's answers")
    rows = []
    for method, seed, answers in per_run:
        easy, hard = answers.digits.min(), answers.digits.max()
        rows.append(
            {
                "method": method,
                "seed": seed,
                "acc": answers.correct.mean(),
                "tokens": answers.tokens.mean(),
                "think easy": answers.thinks[answers.digits == easy].mean(),
                "think hard": answers.thinks[answers.digits == hard].mean(),
                "recheck": answers.rechecks.mean(),
            }
        )
    frame = pd.DataFrame(rows).groupby("method", sort=False)
    table = frame[["acc", "tokens", "think easy", "think hard", "recheck"]].mean()
    table["acc_std"], table["tokens_std"] = frame["acc"].std(), frame["tokens"].std()
    table["seeds"] = frame.size()
    columns = ["method", "acc", "acc_std", "tokens", "tokens_std", "think easy", "think hard", "recheck", "seeds"]
    return table.reset_index()[columns]


def pareto_front(points: pd.DataFrame) -> pd.Series:
    """Whether each row (``tokens``, ``acc``) is on the Pareto front: no other row is at least as accurate with at
    most as many tokens and strictly better on one of the two.

    Returns:
        A boolean Series aligned with ``points``.
    """
    tokens, acc = points["tokens"].to_numpy(), points["acc"].to_numpy()
    dominated = [
        any(t2 <= t and a2 >= a and (t2 < t or a2 > a) for t2, a2 in zip(tokens, acc)) for t, a in zip(tokens, acc)
    ]
    return pd.Series([not d for d in dominated], index=points.index)
