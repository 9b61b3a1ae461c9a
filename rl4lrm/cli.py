"""The ``rl4lrm`` command line: ``rl4lrm train --task countdown --preset grpo --steps 200``."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from rl4lrm.checkpoint import check_writable
from rl4lrm.models.zoo import ZOO
from rl4lrm.presets import PRESET_AXES, PRESETS
from rl4lrm.sampling import SAMPLERS, SamplingConfig


def _axis_override(text: str) -> tuple[str, object]:
    """Parses ``--set NAME=VALUE`` for a preset axis, converting VALUE to the axis's type."""
    name, sep, value = text.partition("=")
    if not sep or name not in PRESET_AXES:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(PRESET_AXES)}; got {text!r}")
    kind = type(getattr(PRESETS["grpo"], name))  # every preset has the same field types
    try:
        return name, kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be of type {kind.__name__}, got {value!r}") from None


def _sampling_override(text: str) -> tuple[str, object]:
    """Parses ``--sampling NAME=VALUE`` for a ``SamplingConfig`` field (``branching=4,2`` for tuples)."""
    names = [f.name for f in fields(SamplingConfig)]
    name, sep, value = text.partition("=")
    if not sep or name not in names:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME one of {', '.join(names)}; got {text!r}")
    default = getattr(SamplingConfig(), name)
    try:
        return name, tuple(int(v) for v in value.split(",")) if isinstance(default, tuple) else type(default)(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be like {default!r}, got {value!r}") from None


def _train(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.trainer import TrainConfig, Trainer
    from rl4lrm.viz.plots import plot_curves

    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if f.name != "sampling" and getattr(args, f.name, None) is not None}
    config = TrainConfig(**overrides, **dict(args.set), sampling=dict(args.sampling))
    try:  # an unwritable --out fails now, not after the whole run
        out = check_writable(args.out)
    except OSError as err:
        raise ValueError(f"--out: {err}") from None
    trainer = Trainer(config)
    history = trainer.train()
    history.to_csv(out / "metrics.csv", index=False)
    plot_curves(history, title=f"{config.preset} on {config.task}").savefig(out / "curves.png", dpi=110)
    trainer.save(out / "checkpoint.pt")
    first, last = history.iloc[0], history.iloc[-1]
    summary = {"held-out pass@1 before": round(first["acc/pass@1"], 4), "held-out pass@1 after": round(last["acc/pass@1"], 4),
               "train reward (last step)": round(last["reward/mean"], 4), "mean length": round(last["length/mean"], 2),
               "wall time (s)": round(history["time/step"].sum(), 1)}
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'metrics.csv'}, {out / 'curves.png'} and {out / 'checkpoint.pt'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl4lrm", description="RL for reasoning models, on tiny models")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="RL-train a zoo base model and write metrics.csv and curves.png")
    train.add_argument("--task", choices=sorted(ZOO), default="addition", help="zoo base model and its task")
    train.add_argument("--preset", choices=sorted(PRESETS), default="grpo", help="algorithm preset")
    train.add_argument("--steps", type=int, help="RL steps (default 60)")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--group-size", dest="group_size", type=int, help="samples per prompt G")
    train.add_argument("--prompts-per-step", dest="prompts_per_step", type=int, help="prompts per step B")
    train.add_argument("--temperature", type=float, help="sampling temperature")
    train.add_argument("--kl-coef", dest="kl_coef", type=float, help="KL coefficient (overrides the preset)")
    train.add_argument("--eval-every", dest="eval_every", type=int, help="evaluate every N steps")
    train.add_argument("--seed", type=int, help="random seed")
    train.add_argument("--device", help="auto, cpu or cuda")
    train.add_argument("--set", type=_axis_override, action="append", default=[], metavar="NAME=VALUE",
                       help="override any preset axis, e.g. --set aggregation=token_mean --set clip_high=0.28")
    train.add_argument("--sampler", choices=SAMPLERS.names(), help="sampling strategy (default flat)")
    train.add_argument("--sampling", type=_sampling_override, action="append", default=[], metavar="NAME=VALUE",
                       help="sampler setting, e.g. --sampling pool_size=512 --sampling branching=4,2")
    train.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    train.set_defaults(func=_train)
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:  # bad settings: one clear line instead of a traceback
        parser.error(str(err))


if __name__ == "__main__":
    main()
