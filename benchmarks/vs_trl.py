"""Our GRPO step against TRL's ``GRPOTrainer`` on the same tiny model, task and config, on one CPU thread.

Both frameworks train the zoo's ``addition`` model with the export's crosswalk (``rl4lrm.export``: the same
``GRPOConfig`` a ``rl4lrm export --framework trl`` script builds): B=16 prompts x G=8 samples, 16 new tokens,
lr 3e-4, beta 0.04 (k3 in the loss, a frozen reference), clip 0.2, per-sequence-then-batch aggregation (TRL's
``loss_type="grpo"``), one update epoch of one minibatch, our reward as a TRL reward function
(``rl4lrm.rewards.trl``). Each run is a fresh spawned process with one torch thread, run one at a time.

1. **Speed**: ``--pairs`` pairs of runs of ``--speed-steps`` steps, ours then TRL's in each pair (alternating, so a
   busy CPU slows both alike). A step's time is the whole step, sampling included (ours: ``time/step``; TRL:
   ``on_step_begin`` to ``on_step_end``); the first ``--warmup`` steps are left out. steps/s = 1 / mean step time.
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


def run_ours(seed: int, steps: int, evaluate: bool) -> dict:
    """One run of our trainer: per-step times and rewards, and held-out pass@1 before/after."""
    from rl4lrm.trainer import Trainer

    config = _config(seed, steps)
    trainer = Trainer(config, progress=False)
    before = _held_out(trainer.model, trainer.tokenizer, trainer.task, config) if evaluate else float("nan")
    history = trainer.train().iloc[1:]  # row 0 is the (empty) evaluation before training
    after = _held_out(trainer.model, trainer.tokenizer, trainer.task, config) if evaluate else float("nan")
    return {
        "step_times": history["time/step"].tolist(),
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

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times, self.t0 = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.t0)

    model, tokenizer, task = load_base(TASK)
    before = _held_out(model, tokenizer, task, config) if evaluate else float("nan")
    timer = StepTimer()
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
            callbacks=[timer],
        )
        trainer.remove_callback(PrinterCallback)  # the log stays in trainer.state.log_history
        trainer.train()
        rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    model.eval()
    after = _held_out(model, tokenizer, task, config) if evaluate else float("nan")
    return {"step_times": timer.times, "rewards": rewards, "pass1_before": before, "pass1_after": after}


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


RUNNERS = {"ours": run_ours, "trl": run_trl}


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
        print(f"  {job[0]:>4} seed={job[1]} steps={job[2]} mean step {_mean(result['step_times'][1:]):.3f}s", flush=True)
        results.append(result)
    return results


def _mean(xs) -> float:
    return sum(xs) / max(len(xs), 1)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="alternating ours/TRL speed pairs")
    parser.add_argument("--speed-steps", type=int, default=20, help="steps per speed run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps of a speed run left out of its mean")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the learning-curve runs")
    parser.add_argument("--steps", type=int, default=60, help="steps per learning-curve run")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 pair of 4 steps, 1 seed of 4 steps")
    parser.add_argument("--out", default=str(RESULTS / "vs_trl.csv"))
    parser.add_argument("--skip-curves", action="store_true", help="speed pairs only")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.speed_steps, args.warmup, args.seeds, args.steps = 1, 4, 1, 1, 4
    print(f"vs_trl: task={TASK} torch={torch.__version__} threads=1", flush=True)
    speed_jobs = [(fw, 0, args.speed_steps, False) for _ in range(args.pairs) for fw in ("ours", "trl")]
    speed = run_jobs(speed_jobs)
    runs = [
        {
            "kind": "speed",
            "framework": r["framework"],
            "pair": i // 2,
            "seed": r["seed"],
            "steps_per_s": 1.0 / _mean(r["step_times"][args.warmup :]),
        }
        for i, r in enumerate(speed)
    ]
    curves = []
    if not args.skip_curves:
        curve_jobs = [(fw, seed, args.steps, True) for seed in range(args.seeds) for fw in ("ours", "trl")]
        for r in run_jobs(curve_jobs):
            runs.append(
                {
                    "kind": "curve",
                    "framework": r["framework"],
                    "seed": r["seed"],
                    "steps_per_s": 1.0 / _mean(r["step_times"][args.warmup :]),
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


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per framework: speed (mean ± std over the pairs), the ratio ours/TRL per pair, and the learning
    numbers (mean ± std over seeds)."""
    rows = []
    speed = runs[runs["kind"] == "speed"]
    ours = speed[speed["framework"] == "ours"].set_index("pair")["steps_per_s"]
    trl = speed[speed["framework"] == "trl"].set_index("pair")["steps_per_s"]
    ratio = ours / trl
    for fw, s in (("ours", ours), ("trl", trl)):
        row = {
            "framework": fw,
            "steps_per_s": s.mean(),
            "steps_per_s_std": s.std(ddof=0),
            "ratio_vs_trl": ratio.mean() if fw == "ours" else 1.0,
            "ratio_min": ratio.min() if fw == "ours" else 1.0,
        }
        curve = runs[(runs["kind"] == "curve") & (runs["framework"] == fw)]
        for col in ("pass1_before", "pass1_after", "reward_first10", "reward_last10"):
            if col in curve:
                row[col], row[f"{col}_std"] = curve[col].mean(), curve[col].std(ddof=0)
        rows.append(row)
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
