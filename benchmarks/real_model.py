"""SmolLM2-135M-Instruct GRPO with the course's trainer: load time, the fast engine against the HF forward, rollout
tokens/s, seconds per step, peak memory and the update's MFU, for full fine-tuning and LoRA side by side.

The task is 1-digit addition in chat form (``ChatTask``, lenient verifier), where the base model is sometimes
right, so GRPO's groups carry a signal. On the CPU the run is a few small steps (figures, not learning); on a
GPU (``--device cuda``, part of ``make test-gpu``) the batch is the size of a real run's step. Each fine-tuning mode
runs in a fresh process, so that the CPU's peak RSS (which cannot be reset) is that mode's own.

    python benchmarks/real_model.py [--device auto|cpu|cuda] [--steps N] [--engine auto|graph]
        [--out benchmarks/results/real_model.csv]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.models.loaders import load_smollm2
from rl4lrm.real import ChatTask, engine_check
from rl4lrm.real.studies import base_accuracy, real_config, run_grpo
from rl4lrm.tasks.addition import Addition
from rl4lrm.utils import resolve_device, seed_everything


def measure(job: tuple[bool, str, int, int, str]) -> dict:
    """Loads SmolLM2 and runs GRPO with one fine-tuning mode (``lora``) in this process; returns its table row."""
    lora, device_name, steps, seed, engine = job
    device = resolve_device(device_name)
    gpu = device.type == "cuda"
    # CPU: 2 prompts x 4 samples x 32 tokens; GPU: 16 x 8 x 128 (a real step's shape at a short length)
    shape = dict(prompts_per_step=16, group_size=8, max_new_tokens=128) if gpu else {}
    task = ChatTask(Addition(digits=1))
    seed_everything(seed)
    start = time.perf_counter()
    model, tokenizer = load_smollm2(device=str(device))
    load_s = time.perf_counter() - start
    prompts = [task.format_prompt(p, "chat", tokenizer) for p in task.problems("test", 4, seed=seed)]
    check = engine_check(model, tokenizer, prompts, group_size=4 if gpu else 2, max_new_tokens=32)
    base = base_accuracy(model, tokenizer, task, n=32 if gpu else 8, samples=4 if gpu else 2)
    config = real_config("quick", lora=lora, device=str(device), steps=steps, seed=seed, rollout_engine=engine, **shape)
    run = run_grpo(model, tokenizer, task, config, lora=lora)
    print(run.table().to_string(index=False), flush=True)
    steps_df = run.history[run.history["step"] > 0]
    return {
        "device": torch.cuda.get_device_name(device) if gpu else "cpu",
        "fine-tuning": "LoRA r=16" if lora else "full",
        "load s": round(load_s, 1),
        "engine max |dlogp|": check["max_abs_diff"],
        "fast/hf tok/s": round(check["speedup"], 2),
        **({"graph/hf tok/s": round(check["graph_speedup"], 2)} if gpu else {}),
        **({"graph max |dlogp|": check["graph_max_abs_diff"]} if gpu else {}),
        "GRPO engine": engine,
        "base pass@1": base["acc/pass@1"],
        "steps": steps,
        "B x G x T": f"{config.prompts_per_step} x {config.group_size} x {config.max_new_tokens}",
        "trained params": run.params["trained"],
        "state GiB": round(run.state_gib, 3),
        "peak memory GiB": round(run.peak_memory_gib, 2),
        "rollout tok/s": round(run.rollout_tokens_per_s, 1),
        "s/step": round(run.seconds_per_step, 2),
        "update MFU": None if run.update_mfu is None else round(run.update_mfu, 4),
        "reward/mean": round(float(steps_df["reward/mean"].mean()), 3),
        "wall s": round(run.summary["wall_s"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None, help="GRPO steps per run (default: 2 CPU, 5 GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", default="auto", help="the GRPO runs' rollout engine (graph: CUDA graphs)")
    parser.add_argument("--out", default=None, help="CSV path (default benchmarks/results/real_model_<device>.csv)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    steps = args.steps or (5 if device.type == "cuda" else 2)
    print(f"device={device} torch={torch.__version__} seed={args.seed} steps={steps}", flush=True)
    rows = []
    for lora in (False, True):  # one fresh process per mode: its own peak memory
        with mp.get_context("spawn").Pool(1) as pool:
            rows.append(pool.apply(measure, ((lora, str(device), steps, args.seed, args.engine),)))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    suffix = "" if args.engine == "auto" else f"_{args.engine}"
    out = Path(args.out or Path(__file__).parent / "results" / f"real_model_{device.type}{suffix}.csv")
    table.to_csv(out, index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
