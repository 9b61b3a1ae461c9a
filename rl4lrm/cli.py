"""The ``rl4lrm`` command line: ``rl4lrm train --task countdown --preset grpo --steps 200``, and
``rl4lrm export --to trl|verl|openrlhf`` with the same flags, which writes the same recipe for that framework.

Its options are generated from the fields of ``TrainConfig`` and ``Preset`` and their docstrings, so the
command line and the library cannot drift: every run setting is a flag (``--group-size 8``), every preset
axis is a flag that overrides the preset (``--clip-high 0.28``), and the chosen sampler's settings are
``--sampling NAME=VALUE`` pairs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from rl4lrm.checkpoint import check_writable
from rl4lrm.crosswalk import TRL_NAMES
from rl4lrm.export import FRAMEWORKS
from rl4lrm.fielddocs import field_docs, first_sentence
from rl4lrm.models.zoo import ZOO
from rl4lrm.presets import PRESET_AXES, PRESETS, Preset
from rl4lrm.sampling import SAMPLERS
from rl4lrm.trainer import TrainConfig

# TrainConfig fields the command line sets another way: the preset axes are flags of their own, the
# sampler's settings are --sampling pairs, the reward mix is --reward pairs
_NOT_FLAGS = ("overrides", "sampling", "rewards")
_CHOICES = {"task": lambda: sorted(ZOO), "preset": lambda: sorted(PRESETS), "sampler": lambda: SAMPLERS.names()}


def _pair(text: str) -> tuple[str, str]:
    """Parses ``NAME=VALUE``."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _typed(kind):
    """An argparse ``type`` for an int, float or str field that names the type in its error."""

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def _sampling_value(config_cls, name: str, text: str):
    """Converts ``--sampling NAME=VALUE`` by the type of the sampler config's field (``4,2`` for tuples)."""
    kinds = typing.get_type_hints(config_cls)
    if name not in kinds:
        return text  # the config names the unknown setting and its known ones
    kind = kinds[name]
    try:
        if typing.get_origin(kind) is tuple:
            return tuple(int(v) for v in text.split(","))
        return kind(text)
    except (TypeError, ValueError):
        raise ValueError(f"sampling setting {name} must be of type {kind}, got {text!r}") from None


def _add_field_flags(group, cls, skip=()) -> None:
    """One ``--dashed-name`` flag per int, float, str or bool field of ``cls``, its help the field's docstring."""
    docs, kinds = field_docs(cls), typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        kind = kinds[f.name]
        default = "" if f.default is MISSING else f" (default {f.default!r})"
        flag = "--" + f.name.replace("_", "-")
        help_text = first_sentence(docs[f.name]) + default
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = _CHOICES[f.name]() if f.name in _CHOICES else None
            group.add_argument(
                flag,
                dest=f.name,
                type=_typed(kind),
                choices=choices,
                default=None,
                help=help_text,
                metavar=None if choices else kind.__name__.upper(),
            )


def config_from_args(args) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``train`` arguments (unset flags keep the dataclass's and preset's defaults)."""
    run = {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if f.name not in _NOT_FLAGS and getattr(args, f.name) is not None
    }
    overrides = {name: getattr(args, name) for name in PRESET_AXES if getattr(args, name) is not None}
    sampler = SAMPLERS.get(run.get("sampler", "flat"))
    sampling = {name: _sampling_value(sampler.Config, name, value) for name, value in args.sampling}
    rewards = None
    if args.reward:
        try:
            rewards = {name: float(weight) for name, weight in args.reward}
        except ValueError:
            raise ValueError(f"--reward takes NAME=WEIGHT with a number as weight, got {args.reward}") from None
    return TrainConfig(**run, overrides=overrides, sampling=sampling, rewards=rewards)


def _train(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.trainer import Trainer
    from rl4lrm.viz.plots import plot_curves

    config = config_from_args(args)
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
    summary = {
        "train reward (last step)": round(last["reward/mean"], 4),
        "mean length": round(last["length/mean"], 2),
        "wall time (s)": round(history["time/step"].sum(), 1),
    }
    if "acc/pass@1" in history:
        summary = {
            "held-out pass@1 before": round(first["acc/pass@1"], 4),
            "held-out pass@1 after": round(last["acc/pass@1"], 4),
            **summary,
        }
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'metrics.csv'}, {out / 'curves.png'} and {out / 'checkpoint.pt'}")


def _export(args) -> None:
    from rl4lrm.export import export_recipe, render

    exported = export_recipe(config_from_args(args), args.to)
    out = Path(args.out or ("run_trl.py" if args.to == "trl" else f"run_{args.to}.sh"))
    if out.exists() and not args.force:
        raise ValueError(f"--out {out} exists; pass --force to overwrite it")
    out.write_text(render(exported))
    for line in exported.dropped:
        print(f"not carried over: {line}")
    print(f"wrote {out}")


def _add_run_flags(command: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The flags of a run (TrainConfig, the preset's axes, --sampling, --reward); returns the last group."""
    _add_field_flags(command.add_argument_group("run (TrainConfig)"), TrainConfig, skip=_NOT_FLAGS)
    _add_field_flags(
        command.add_argument_group("algorithm: override the preset's axes (Preset)"), Preset, skip=("name", "paper")
    )
    extra = command.add_argument_group("sampler settings, rewards and output")
    extra.add_argument(
        "--sampling",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the chosen sampler's config, e.g. --sampling pool_size=512 "
        "--sampling branching=4,2 (rl4lrm.sampling: FlatConfig, DynamicConfig, "
        "CurriculumConfig, MemoryConfig, TreeConfig)",
    )
    extra.add_argument(
        "--reward",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=WEIGHT",
        help="a term of the training reward, e.g. --reward correct=1 --reward length_penalty=0.1 "
        "(default: the task's verifier alone)",
    )
    return extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl4lrm", description="RL for reasoning models, on tiny models")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="RL-train a zoo base model and write metrics.csv and curves.png",
        description="RL-train a zoo base model. Every option below is a field of "
        "rl4lrm.trainer.TrainConfig or rl4lrm.presets.Preset; its help is the "
        "field's docstring.",
    )
    extra = _add_run_flags(train)
    extra.add_argument("--out", default="runs/latest", help="output folder (default runs/latest)")
    train.set_defaults(func=_train, parser=train)
    export = sub.add_parser(
        "export",
        help="write the same recipe as a TRL script or a verl / OpenRLHF command (rl4lrm.export)",
        description="Write the run the same flags would train here as a script for a production framework; "
        "settings it cannot express are listed at the top of the file and printed.",
    )
    extra = _add_run_flags(export)
    extra.add_argument("--to", required=True, choices=FRAMEWORKS, help="the framework")
    extra.add_argument("--out", default=None, help="the file to write (default run_trl.py or run_<framework>.sh)")
    extra.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    export.set_defaults(func=_export, parser=export)
    return parser


def _unknown_flags(command: argparse.ArgumentParser, unknown: list[str]) -> str:
    """argparse's "unrecognized arguments" with, per unknown flag, its name here: a TRL keyword's flag
    (``--beta`` is ``--kl-coef``) or the closest flags."""
    flags = sorted(set(re.findall(r"--[\w-]+", command.format_usage())))
    notes = []
    for flag in (arg.partition("=")[0] for arg in unknown if arg.startswith("--")):
        ours = TRL_NAMES.get(flag[2:].replace("-", "_"))
        close = difflib.get_close_matches(flag, flags, n=3)
        if ours:
            notes.append(f"TRL's {flag} is --{ours.replace('_', '-')} here")
        elif close:
            notes.append(f"{flag}: did you mean {' or '.join(close)}?")
    return f"unrecognized arguments: {' '.join(unknown)}" + "".join(f"; {note}" for note in notes)


def main(argv=None) -> None:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        args.parser.error(_unknown_flags(args.parser, unknown))
    try:
        args.func(args)
    except ValueError as err:  # bad settings: one clear line instead of a traceback
        parser.error(str(err))


if __name__ == "__main__":
    main()
