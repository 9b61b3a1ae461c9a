"""Countdown that searches out loud: held-out pass@1 of the searching base model before and after GRPO on a fixed
wall-clock budget, with what its traces look like (backtracks, length, validity) before and after.

The base model (zoo ``countdown-search``) was trained by SFT on random-order searches that give up at each dead end
with probability 0.2 (``rl4lrm.tasks.countdown_search``); ``--task countdown-search-optimal`` and
``countdown-search-answer`` run its two contrasts (shortest path only, bare answer only). RL rewards only the answer
after ``#``. Each seed trains the ``grpo`` preset for ``--minutes`` of wall time on one CPU thread (rollouts,
updates; the held-out evaluations run outside the budget), evaluating every ``--eval-minutes``, on 32 prompts x 8
samples per step by default: twice the trainer's 16 prompts, fewer but less noisy steps, which held the searching
model's gains better in 5 minutes (README). Held-out metrics, on
``--eval-problems`` test problems x ``--eval-samples`` samples at T=1: pass@1; ``valid``: share of traces the
checker replays without an illegal step; ``backtracks`` and ``length`` (characters before ``#``), means over all
samples; ``gave up``: share of samples with an empty answer; ``cut off``: share stopped by ``--max-new-tokens``
before any answer (192 by default: once RL has taught the model to keep searching, a third of its searches no longer
fit in 128).

    python benchmarks/countdown_search.py [--task countdown-search] [--minutes 5] [--seeds 0 1 2] [--append]

On the 2-core CPU two seeds can run side by side, one thread and one ``--out`` each; ``--merge`` then combines
their outputs into one table (``python benchmarks/countdown_search.py --merge a.csv b.csv --out all.csv``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import hand_stepped_trainer, summarise, write_results

from rl4lrm.evaluation import sample_and_verify
from rl4lrm.tasks.countdown_search import ANSWER_MARK, backtracks, check_trace


def trace_metrics(model, tokenizer, task, problems, samples: int, max_new_tokens: int, seed: int) -> dict:
    """pass@1 and trace statistics of ``samples`` completions per problem at T=1 (module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    out = sample_and_verify(model, tokenizer, task, problems, samples, 1.0, max_new_tokens, 1.0, generator=gen)
    rows = [p for p in problems for _ in range(samples)]
    texts = out["completions"]
    return {
        "pass@1": sum(out["correct"]) / len(texts),
        "valid": sum(check_trace(p, t).valid for p, t in zip(rows, texts)) / len(texts),
        "backtracks": sum(map(backtracks, texts)) / len(texts),
        "length": sum(len(t.partition(ANSWER_MARK)[0]) for t in texts) / len(texts),
        "gave up": sum(t.endswith(ANSWER_MARK) for t in texts) / len(texts),
        "cut off": sum(ANSWER_MARK not in t for t in texts) / len(texts),
    }


def run(args, seed: int) -> tuple[dict, list[dict]]:
    """One seed: evaluate, train for the wall-clock budget, evaluating on the way; the run's row and its curve."""
    axes = {} if args.kl_coef is None else {"kl_coef": args.kl_coef}
    trainer = hand_stepped_trainer(  # the wall-clock budget stops the run
        args.task,
        args.preset,
        seed,
        lr=args.lr,
        prompts_per_step=args.prompts_per_step,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens,
        **axes,
    )
    knobs = (
        "".join(f", kl {v:g}" for v in axes.values())
        + f", lr {args.lr:g}, B {args.prompts_per_step}, G {args.group_size}"
    )
    label = f"{args.task}, {args.preset}{knobs}, {args.max_new_tokens} tokens, {args.minutes:g} min"
    problems = trainer.task.problems("test", args.eval_problems, seed=0)

    def measure(elapsed: float) -> dict:
        m = trace_metrics(
            trainer.model, trainer.tokenizer, trainer.task, problems, args.eval_samples, args.max_new_tokens, 1
        )
        return {"method": label, "seed": seed, "step": trainer.step, "train (s)": elapsed, **m}

    curve = [measure(0.0)]
    spent, next_eval = 0.0, args.eval_minutes * 60
    while spent < args.minutes * 60:
        t0 = time.perf_counter()
        trainer.learn(trainer.collect(), trainer.step, t0)
        spent += time.perf_counter() - t0
        if spent >= next_eval or spent >= args.minutes * 60:
            curve.append(measure(spent))
            print(f"  seed {seed} step {trainer.step} {spent:.0f}s pass@1 {curve[-1]['pass@1']:.3f}", flush=True)
            next_eval += args.eval_minutes * 60
    before, after = curve[0], curve[-1]
    row = {"method": label, "seed": seed, "steps": trainer.step, "train (s)": spent}
    for key in ("pass@1", "valid", "backtracks", "length", "gave up", "cut off"):
        row[f"base {key}"], row[key] = before[key], after[key]
    return row, curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="countdown-search", help="zoo entry")
    parser.add_argument("--preset", default="grpo")
    parser.add_argument("--minutes", type=float, default=5.0, help="training wall time per seed")
    parser.add_argument("--eval-minutes", type=float, default=1.0, help="wall time between held-out evaluations")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--kl-coef", type=float, default=None, help="default: the preset's")
    parser.add_argument("--prompts-per-step", type=int, default=32, help="B: distinct prompts per GRPO step")
    parser.add_argument("--group-size", type=int, default=8, help="G: samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/countdown_search.csv")
    parser.add_argument("--append", action="store_true", help="keep the other runs already in --out")
    parser.add_argument("--merge", nargs="*", metavar="CSV", help="combine these outputs into --out; train nothing")
    args = parser.parse_args()
    if args.merge:
        stems = [str(Path(path).with_suffix("")) for path in args.merge]
        runs = pd.concat([pd.read_csv(f"{stem}.runs.csv") for stem in stems])
        save(args, runs, pd.concat([pd.read_csv(f"{stem}.curves.csv") for stem in stems]))
        return
    torch.set_num_threads(1)
    print(
        f"task={args.task} preset={args.preset} minutes={args.minutes} lr={args.lr} seeds={args.seeds} "
        f"torch={torch.__version__} threads=1 device=cpu",
        flush=True,
    )
    rows, curves = [], []
    for seed in args.seeds:
        row, curve = run(args, seed)
        rows.append(row)
        curves += curve
        print(
            f"seed {seed}: pass@1 {row['base pass@1']:.3f} -> {row['pass@1']:.3f} in {row['steps']} steps", flush=True
        )
    save(args, pd.DataFrame(rows), pd.DataFrame(curves))


def save(args, runs: pd.DataFrame, curves: pd.DataFrame) -> None:
    """Writes the summary, runs and curves to ``--out`` (keeping its other runs with ``--append``) and prints it."""
    if args.append and Path(args.out).exists():  # replace only the (method, seed) pairs run now
        stem = str(Path(args.out).with_suffix(""))
        old_runs, old_curves = pd.read_csv(f"{stem}.runs.csv"), pd.read_csv(f"{stem}.curves.csv")
        done = set(zip(runs["method"], runs["seed"]))
        runs = pd.concat([old_runs[[k not in done for k in zip(old_runs["method"], old_runs["seed"])]], runs])
        curves = pd.concat([old_curves[[k not in done for k in zip(old_curves["method"], old_curves["seed"])]], curves])
    table = summarise(runs)
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(table.to_string(index=False))
    write_results(args.out, table, runs, curves)


if __name__ == "__main__":
    main()
