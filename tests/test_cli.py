"""Tests for rl4lrm.cli: argument parsing, error messages, and one real (2-step) training run."""

import json
from dataclasses import fields

import pandas as pd
import pytest

from rl4lrm.checkpoint import load_checkpoint
from rl4lrm.cli import _train, build_parser, config_from_args, main
from rl4lrm.fielddocs import field_docs, first_sentence
from rl4lrm.models.zoo import ZOO
from rl4lrm.presets import PRESETS, Preset
from rl4lrm.trainer import TrainConfig


def test_parser_accepts_the_documented_command():
    args = build_parser().parse_args(["train", "--task", "countdown", "--preset", "grpo", "--steps", "200"])
    assert (args.command, args.task, args.preset, args.steps) == ("train", "countdown", "grpo", 200)
    assert args.func is _train
    assert args.lr is None and args.kl_coef is None  # unset flags keep TrainConfig's / the preset's values


def test_parser_defaults_and_dashed_flags():
    args = build_parser().parse_args(
        ["train", "--group-size", "4", "--prompts-per-step", "8", "--kl-coef", "0", "--eval-every", "5"]
    )
    config = config_from_args(args)
    assert (config.task, config.preset, args.out) == ("addition", "grpo", "runs/latest")  # unset: the defaults
    assert (args.group_size, args.prompts_per_step, args.kl_coef, args.eval_every) == (4, 8, 0.0, 5)


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([])
    assert exit_.value.code == 2
    assert "train" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, bad, choices", [("--preset", "ppo9", sorted(PRESETS)), ("--task", "chess", sorted(ZOO))]
)
def test_unknown_choice_exits_2_listing_the_choices(capsys, flag, bad, choices):
    with pytest.raises(SystemExit) as exit_:
        main(["train", flag, bad])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert repr(bad) in err
    assert all(repr(c) in err for c in choices), err


@pytest.mark.parametrize(
    "command, argv, expected",
    [
        ("train", ["--beta", "0.04"], "unrecognized arguments: --beta 0.04; TRL's --beta is --kl-coef here"),
        ("export", ["--to", "trl", "--num-generations=4"], "TRL's --num-generations is --group-size here"),
        ("train", ["--stepz", "3"], "--stepz: did you mean --steps"),
        ("train", ["--zzz", "1"], "unrecognized arguments: --zzz 1\n"),
    ],
)
def test_an_unknown_flag_is_named_with_its_flag_here(capsys, tmp_path, command, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        main([command, *argv, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"rl4lrm {command}: error: " in err and expected in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--steps", "0"], "TrainConfig.steps"),
        (["--group-size", "0"], "TrainConfig.group_size"),
        (["--lr", "0"], "TrainConfig.lr"),
        (["--kl-coef", "-1"], "kl_coef"),
        (["--device", "tpu"], "'tpu'"),
    ],
)
def test_bad_values_exit_2_naming_the_setting(capsys, tmp_path, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "rl4lrm: error:" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # failed before training or writing anything


def test_train_end_to_end(capsys, tmp_path):
    out = tmp_path / "run"
    main(["train", "--task", "addition", "--steps", "2", "--eval-every", "2", "--out", str(out)])
    stdout = capsys.readouterr().out

    metrics = pd.read_csv(out / "metrics.csv")
    assert {"step", "reward/mean", "acc/pass@1"} <= set(metrics.columns)
    assert metrics["step"].tolist() == [0, 1, 2]  # row 0: evaluation before training
    assert metrics["acc/pass@1"].notna().tolist() == [True, False, True]  # before the first step and every 2nd
    assert metrics["reward/mean"].iloc[1:].between(0, 1).all()

    png = (out / "curves.png").read_bytes()
    assert len(png) > 1000 and png.startswith(b"\x89PNG")
    assert (out / "checkpoint.pt").stat().st_size > 0

    summary = json.loads(stdout[stdout.index("{") : stdout.index("}") + 1])
    assert summary["held-out pass@1 after"] == round(metrics["acc/pass@1"].iloc[-1], 4)
    assert summary["held-out pass@1 before"] == round(metrics["acc/pass@1"].iloc[0], 4)
    assert 0 <= summary["held-out pass@1 after"] <= 1
    assert "metrics.csv" in stdout and "curves.png" in stdout


def test_preset_axes_are_flags_with_their_types():
    args = build_parser().parse_args(
        ["train", "--aggregation", "token_mean", "--clip-high", "0.28", "--update-epochs", "2"]
    )
    config = config_from_args(args)
    assert config.overrides == {"aggregation": "token_mean", "clip_high": 0.28, "update_epochs": 2}
    assert isinstance(config.algorithm.update_epochs, int)


def test_boolean_axes_are_on_off_flags():
    assert config_from_args(build_parser().parse_args(["train", "--whiten-advantages"])).overrides == {
        "whiten_advantages": True
    }
    assert config_from_args(build_parser().parse_args(["train", "--no-whiten-advantages"])).overrides == {
        "whiten_advantages": False
    }


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--update-epochs", "two"], "expected int, got 'two'"),
        (["--set", "clip_high=0.2"], "unrecognized arguments"),
        (["--kl-coef", "x"], "expected float, got 'x'"),
        (["--whiten-advantages", "maybe"], "unrecognized arguments"),
    ],
)
def test_bad_flag_values_exit_2_naming_the_type(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", *argv])
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_overrides_reach_the_trainer(capsys, tmp_path):
    main(
        [
            "train",
            "--steps",
            "1",
            "--eval-every",
            "0",
            "--update-epochs",
            "2",
            "--clip-high",
            "0.28",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    saved = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]
    assert saved["overrides"] == {"update_epochs": 2, "clip_high": 0.28}


def test_help_is_generated_from_every_field_and_its_docstring():
    """Each TrainConfig field (but the three set by pairs) and each preset axis is a flag whose help is the
    first sentence of the field's docstring: the command line cannot drift from the library."""
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {a.dest: a.help for a in train._actions}
    for cls, skip in ((TrainConfig, ("overrides", "sampling", "rewards")), (Preset, ("name", "paper"))):
        docs = field_docs(cls)
        for f in fields(cls):
            if f.name in skip:
                continue
            assert f.name in helps, f"--{f.name.replace('_', '-')} is missing"
            assert helps[f.name].startswith(first_sentence(docs[f.name])), f.name
    assert {"sampling", "reward", "out"} <= set(helps)


def test_reward_pairs_build_the_reward_mix(tmp_path):
    args = build_parser().parse_args(["train", "--reward", "correct=1", "--reward", "length_penalty=0.1"])
    assert config_from_args(args).rewards == {"correct": 1.0, "length_penalty": 0.1}
    with pytest.raises(ValueError, match="NAME=WEIGHT"):
        config_from_args(build_parser().parse_args(["train", "--reward", "correct=high"]))


def test_sampler_and_sampling_settings_reach_the_config(tmp_path):
    main(
        [
            "train",
            "--task",
            "countdown",
            "--steps",
            "1",
            "--eval-every",
            "0",
            "--prompts-per-step",
            "2",
            "--sampler",
            "tree",
            "--sampling",
            "branching=2,2,2",
            "--sampling",
            "segment_len=3",
            "--out",
            str(tmp_path),
        ]
    )
    config = load_checkpoint(tmp_path / "checkpoint.pt")["config"]
    assert config["sampler"] == "tree"
    assert tuple(config["sampling"]["branching"]) == (2, 2, 2) and config["sampling"]["segment_len"] == 3
    assert "tokens/generated" in pd.read_csv(tmp_path / "metrics.csv")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--sampling", "nope=1"], "pool_size"),  # the message lists the valid names
        (["--sampling", "pool_size=big"], "'big'"),
        (["--sampler", "beam"], "'flat'"),
        (["--sampler", "tree", "--sampling", "branching=3,3"], "group_size=8"),  # 9 leaves for G = 8
    ],
)
def test_bad_sampling_settings_exit_2_naming_them(capsys, tmp_path, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *argv, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err
