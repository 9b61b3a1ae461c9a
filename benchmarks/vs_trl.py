"""Our GRPO step against TRL's ``GRPOTrainer`` on the same tiny model, task and config, on one CPU thread.

Both frameworks train the zoo's ``addition`` model with the export's crosswalk (``rl4lrm.export``: the same
``GRPOConfig`` a ``rl4lrm export --to trl`` script builds): B=16 prompts x G=8 samples, 16 new tokens,
lr 3e-4, beta 0.04 (k3 in the loss, a frozen reference), clip 0.2, per-sequence-then-batch aggregation (TRL's
``loss_type="grpo"``), one update epoch of one minibatch, our reward as a TRL reward function
(``rl4lrm.rewards.trl``). Each run is a fresh spawned process with one torch thread, run one at a time.

1. **Speed**: ``--pairs`` rounds of runs of ``--speed-steps`` steps: ours as before the fused update
   (``fast_update=False``: the HF forward and the per-tensor AdamW, ``ours-hf``), ours, TRL's, in turn
   (alternating, so a busy CPU slows all alike). A step's time runs from one step's end to the next (sampling,
   scoring, update, logging), the first ``--warmup`` steps left out; steps/s = 1 / mean step time, both in CPU
   seconds of the process (``time.process_time``: what one thread costs, robust to other processes on a shared
   machine) and in wall seconds (what a user waits, inflated by whatever else runs).
2. **Learning**: ``--seeds`` seeds x ``--steps`` steps each; reward per step (TRL's logged ``reward``, ours
   ``reward/mean``) and held-out pass@1 before and after, measured for both by ``rl4lrm.evaluation.evaluate`` on
   the same 128 test problems x 4 samples with the same generator (what ``Trainer.evaluate`` does).

Run from the repository root: ``python benchmarks/vs_trl.py`` (default about 15 minutes on one thread), or
``--quick`` for a smoke run. Writes ``benchmarks/results/vs_trl.csv`` (the summary), ``vs_trl.runs.csv`` (one row
per run) and ``vs_trl.curves.csv`` (reward per step).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import pandas as pd
import torch

RESULTS = Path(__file__).parent / "results"
TASK = "addition"


def _config(seed: int, steps: int):
    from rl4lrm.trainer import TrainConfig

    return TrainConfig(task=TASK, steps=steps, seed=seed, eval_every=0, device="cpu")


def _held_out(model, tokenizer, task, config) -> float:
    """Held-out pass@1 exactly as ``Trainer.evaluate`` measures it."""
    from rl4lrm.evaluation import evaluate

    gen = torch.Generator().manual_seed(12345)
    problems = task.problems("test", config.eval_problems, seed=0)
    metrics = evaluate(
        model,
        tokenizer,
        task,
        problems,
        config.eval_samples,
        ks=(1,),
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        top_p=config.top_p,
        style=config.prompt_style,
        generator=gen,
    )
    return metrics["acc/pass@1"]


class Clock:
    """Wall and CPU (process) time at each step's end; ``wall`` and ``cpu`` are the steps' durations, end to end
    (everything the loop does between two steps' ends: sampling, scoring, update, logging)."""

    def __init__(self):
        self.marks = []

    def mark(self) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def durations(self, which: int) -> list[float]:
        return [b[which] - a[which] for a, b in zip(self.marks, self.marks[1:])]


def run_ours(seed: int, steps: int, evaluate: bool, fused: bool = True) -> dict:
    """One run of our trainer: per-step times and rewards, and held-out pass@1 before/after."""
    from rl4lrm.trainer import Callback, Trainer

    clock = Clock()

    class Tick(Callback):
        def on_step_end(self, trainer, metrics):
            clock.mark()

    config = _config(seed, steps)
    config.fast_update = fused
    trainer = Trainer(config, callbacks=[Tick()], progress=False)
    before = _held_out(trainer.model, trainer.tokenizer, trainer.task, config) if evaluate else float("nan")
    clock.mark()
    history = trainer.train().iloc[1:]  # row 0 is the (empty) evaluation before training
    after = _held_out(trainer.model, trainer.tokenizer, trainer.task, config) if evaluate else float("nan")
    return {
        "wall": clock.durations(0),
        "cpu": clock.durations(1),
        "rewards": history["reward/mean"].tolist(),
        "pass1_before": before,
        "pass1_after": after,
    }


def run_trl(seed: int, steps: int, evaluate: bool) -> dict:
    """The same run in TRL's ``GRPOTrainer`` with the exported ``GRPOConfig``."""
    import logging
    import tempfile
    import warnings

    _hide_broken_peft()
    from transformers import PrinterCallback, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import GRPOConfig, GRPOTrainer

    from rl4lrm.export import export_recipe
    from rl4lrm.models.zoo import load_base
    from rl4lrm.rewards.base import RewardContext, RewardMix
    from rl4lrm.rewards.trl import as_trl_reward, to_trl_dataset

    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    logging.getLogger("trl").setLevel(logging.ERROR)
    config = _config(seed, steps)
    settings = export_recipe(config, "trl").settings

    clock = Clock()

    class Tick(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.mark()

        def on_step_end(self, args, state, control, **kwargs):
            clock.mark()

    model, tokenizer, task = load_base(TASK)
    before = _held_out(model, tokenizer, task, config) if evaluate else float("nan")
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out,
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            logging_steps=1,
            disable_tqdm=True,
            dataloader_num_workers=0,
            **settings,
        )
        dataset = to_trl_dataset(task, task.problems("train", steps * config.prompts_per_step, seed=seed))
        ctx = RewardContext(max_new_tokens=config.max_new_tokens, group_size=config.group_size, tokenizer=tokenizer)
        reward = as_trl_reward(RewardMix({"correct": 1.0}), task, ctx=ctx)
        trainer = GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=[reward],
            args=args,
            train_dataset=dataset,
            callbacks=[Tick()],
        )
        trainer.remove_callback(PrinterCallback)  # the log stays in trainer.state.log_history
        trainer.train()
        rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    model.eval()
    after = _held_out(model, tokenizer, task, config) if evaluate else float("nan")
    return {
        "wall": clock.durations(0),
        "cpu": clock.durations(1),
        "rewards": rewards,
        "pass1_before": before,
        "pass1_after": after,
    }


def _hide_broken_peft() -> None:
    """Makes transformers, accelerate and TRL treat peft as absent when the installed peft does not import against
    this transformers (peft 0.17 imports ``HybridCache``, which transformers 5 removed); no LoRA here anyway."""
    import sys

    try:
        import peft  # noqa: F401
    except ImportError:
        for name in [m for m in sys.modules if m == "peft" or m.startswith("peft.")]:
            del sys.modules[name]
        sys.modules["peft"] = None  # importlib.util.find_spec("peft") is then None: "not installed"


RUNNERS = {"ours": run_ours, "ours-hf": lambda *a: run_ours(*a, fused=False), "trl": run_trl}


def _job(job: tuple) -> dict:
    framework, seed, steps, evaluate = job
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return {"framework": framework, "seed": seed, **RUNNERS[framework](seed, steps, evaluate)}


def run_jobs(jobs: list[tuple]) -> list[dict]:
    """Each job in its own fresh spawned process, one after the other (no two runs share the CPU)."""
    results = []
    ctx = mp.get_context("spawn")
    for job in jobs:
        with ctx.Pool(1) as pool:
            result = pool.apply(_job, (job,))
        cpu, wall = _mean(result["cpu"][1:]), _mean(result["wall"][1:])
        print(f"  {job[0]:>7} seed={job[1]} steps={job[2]} step cpu {cpu:.3f}s wall {wall:.3f}s", flush=True)
        results.append(result)
    return results


def _mean(xs) -> float:
    return sum(xs) / max(len(xs), 1)


FRAMEWORKS = ("ours-hf", "ours", "trl")  # the order of each speed round


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="speed rounds (ours with the HF forward, ours, TRL)")
    parser.add_argument("--speed-steps", type=int, default=20, help="steps per speed run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps of a speed run left out of its mean")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the learning-curve runs")
    parser.add_argument("--steps", type=int, default=60, help="steps per learning-curve run")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 4 steps, 1 seed of 4 steps")
    parser.add_argument("--out", default=str(RESULTS / "vs_trl.csv"))
    parser.add_argument("--skip-curves", action="store_true", help="speed rounds only")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.speed_steps, args.warmup, args.seeds, args.steps = 1, 4, 1, 1, 4
    print(f"vs_trl: task={TASK} torch={torch.__version__} threads=1", flush=True)
    speed_jobs = [(fw, 0, args.speed_steps, False) for _ in range(args.pairs) for fw in FRAMEWORKS]
    runs = [_speed_row(r, i // len(FRAMEWORKS), args.warmup, "speed") for i, r in enumerate(run_jobs(speed_jobs))]
    curves = []
    if not args.skip_curves:
        curve_jobs = [(fw, seed, args.steps, True) for seed in range(args.seeds) for fw in ("ours", "trl")]
        for r in run_jobs(curve_jobs):
            runs.append(
                {
                    **_speed_row(r, -1, args.warmup, "curve"),
                    "pass1_before": r["pass1_before"],
                    "pass1_after": r["pass1_after"],
                    "reward_first10": _mean(r["rewards"][:10]),
                    "reward_last10": _mean(r["rewards"][-10:]),
                }
            )
            curves += [
                {"framework": r["framework"], "seed": r["seed"], "step": s + 1, "reward": x}
                for s, x in enumerate(r["rewards"])
            ]
    runs = pd.DataFrame(runs)
    table = summarise(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    runs.to_csv(out.with_suffix(".runs.csv"), index=False)
    if curves:
        pd.DataFrame(curves).to_csv(out.with_suffix(".curves.csv"), index=False)
    print(table.to_string(index=False))
    return table


def _speed_row(result: dict, round_: int, warmup: int, kind: str) -> dict:
    return {
        "kind": kind,
        "framework": result["framework"],
        "round": round_,
        "seed": result["seed"],
        "steps_per_cpu_s": 1.0 / _mean(result["cpu"][warmup:]),
        "steps_per_s": 1.0 / _mean(result["wall"][warmup:]),
    }


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per framework: speed in steps per CPU second and per wall second (mean ± std over the rounds), the
    ratio to TRL's (the mean of the per-round ratios, and the smallest), and the learning numbers (mean ± std
    over seeds)."""
    rows = []
    speed = runs[runs["kind"] == "speed"]
    by = {fw: speed[speed["framework"] == fw].set_index("round") for fw in FRAMEWORKS}
    for fw in FRAMEWORKS:
        row = {"framework": fw}
        for col in ("steps_per_cpu_s", "steps_per_s"):
            ratio = by[fw][col] / by["trl"][col]
            row[col], row[f"{col}_std"] = by[fw][col].mean(), by[fw][col].std(ddof=0)
            row[f"{col}_vs_trl"], row[f"{col}_vs_trl_min"] = ratio.mean(), ratio.min()
        curve = runs[(runs["kind"] == "curve") & (runs["framework"] == fw)]
        for col in ("pass1_before", "pass1_after", "reward_first10", "reward_last10"):
            if col in curve and len(curve):
                row[col], row[f"{col}_std"] = curve[col].mean(), curve[col].std(ddof=0)
        rows.append(row)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
