"""GRPO on tool-using episodes: observation masking on vs off, tools vs answer-only (notebook 12).

The zoo model ``agentic`` (0.65M-parameter Llama, SFT on tool-use episodes with imperfect habits) trains with GRPO
through ``rl4lrm.trainer.Trainer`` (the ``AgentPolicy`` rollout hook) for ``--steps`` steps of
``prompts_per_step`` x ``group_size`` episodes, in each variant of ``rl4lrm.agents.studies.VARIANTS`` given. The
table gives held-out episode accuracy before and after (``--eval-problems`` test problems x 2 episodes, T = 1),
tool calls and calculator calls per episode after, the observation tokens' NLL after (how confidently the policy
predicts tool outputs it cannot know), and wall time.

    python benchmarks/agents.py [--steps 60] [--seeds 0 1 2] [--variants masked unmasked ...]

Writes ``--out`` (one row per variant and seed).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from rl4lrm.agents.rollout import load_agent
from rl4lrm.agents.studies import VARIANTS, compare


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--eval-problems", type=int, default=128)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "agents.csv"))
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    policy, tokenizer, task = load_agent()
    runs = compare(
        policy,
        tokenizer,
        task,
        variants=args.variants,
        steps=args.steps,
        seeds=args.seeds,
        eval_problems=args.eval_problems,
        lr=args.lr,
        prompts_per_step=args.prompts_per_step,
        group_size=args.group_size,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    numeric = runs.drop(columns=["seed"]).groupby("variant", sort=False)
    mean, std = numeric.mean(), numeric.std(ddof=1).fillna(0.0)
    show = pd.DataFrame(index=mean.index)
    for col in ("acc_before", "acc_after", "tool_calls_after", "calcs_after", "obs_nll_after", "wall_s"):
        show[col] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean[col], std[col])]
    print(
        f"GRPO, {args.steps} steps x {args.prompts_per_step} prompts x {args.group_size} episodes, lr {args.lr}, "
        f"seeds {args.seeds} (mean ± std)"
    )
    print(show.to_string())
    if {"masked", "unmasked"} <= set(mean.index):
        print(
            "accuracy after, masked / unmasked: "
            f"{mean.loc['masked', 'acc_after'] / max(mean.loc['unmasked', 'acc_after'], 1e-9):.2f}"
        )
    print(
        f"device cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, total {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
