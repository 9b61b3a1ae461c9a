"""Bad settings fail at construction, naming the field, what is allowed and the value; setups that used to
fail at the first step fail before training."""

import dataclasses
import math

import pytest
import torch

from rl4lrm import sampling
from rl4lrm.advantages import ADVANTAGES
from rl4lrm.diffusion.model import DiffusionPretrainConfig, DiffusionSamplingConfig
from rl4lrm.latent.model import LatentConfig
from rl4lrm.latent.train import CurriculumConfig
from rl4lrm.models.sft import SFTConfig
from rl4lrm.presets import PRESETS, Preset
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.validation import Range, check_fields

CONFIGS = [
    TrainConfig,
    sampling.FlatConfig,
    sampling.DynamicConfig,
    sampling.CurriculumConfig,
    sampling.MemoryConfig,
    sampling.TreeConfig,
    DiffusionSamplingConfig,
    DiffusionPretrainConfig,
    LatentConfig,
    CurriculumConfig,
    SFTConfig,
]
FAST = dict(
    task="addition", prompts_per_step=2, group_size=2, max_new_tokens=6, eval_problems=4, eval_samples=1, device="cpu"
)


def _float_fields(cls):
    hints = __import__("typing").get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if "float" in str(hints[f.name])]


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_every_float_field_refuses_nan_and_inf(cls, bad):
    for name in _float_fields(cls):
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.{name} must be a finite number.*got {bad}"):
            cls(**{name: bad})


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Preset) if f.type == "float"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_every_preset_float_refuses_nan_and_inf(name, bad):
    with pytest.raises(ValueError, match=rf"Preset\('grpo'\)\.{name} must be a finite number"):
        dataclasses.replace(PRESETS["grpo"], **{name: bad})


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("lr", "0.1", "a finite number"),
        ("seed", "a", "an int"),
        ("seed", 1.0, "an int"),
        ("steps", True, "an int"),
        ("rewards", ["correct"], "a dict or None"),
        ("max_grad_norm", -1.0, "> 0"),
        ("max_grad_norm", 0, "> 0"),
        ("seed", -1, r"in \[0, "),
        ("track_kl", 1, "True or False"),
        ("overrides", [1], "a dict"),
        ("prompt_style", "fancy", "one of"),
        ("sampling", [1], "a dict or a FlatConfig"),
    ],
)
def test_wrong_types_and_ranges_are_one_value_error_naming_the_field(field, value, allowed):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field}.*{allowed}"):
        TrainConfig(**{field: value})


def test_bad_overrides_name_the_preset_field():
    with pytest.raises(ValueError, match=r"Preset\('grpo'\)\.kl_coef must be a finite number"):
        TrainConfig(overrides={"kl_coef": "0"})
    with pytest.raises(ValueError, match=r"cannot override \['nope'\]"):
        TrainConfig(overrides={"nope": 1})


@pytest.mark.parametrize(
    "keyword, match",
    [
        (
            "beta",
            r"TRL's beta is kl_coef here; kl_coef is an axis of the preset, set through "
            r"TrainConfig\(overrides=\{'kl_coef': \.\.\.\}\) or TrainConfig\.build\(kl_coef=\.\.\.\)",
        ),
        ("num_generations", r"TRL's num_generations is group_size here: TrainConfig\(group_size=\.\.\.\)"),
        ("learning_rate", r"TRL's learning_rate is lr here"),
        ("kl_coef", r"no field 'kl_coef': kl_coef is an axis of the preset"),
        ("clip_eps", r"did you mean the preset axis clip_low\?"),
        ("stepz", r"no field 'stepz': did you mean steps\?"),
        ("zzz", r"no field 'zzz': its fields are \['task', 'preset'"),
    ],
)
def test_an_unknown_keyword_says_where_that_setting_lives(keyword, match):
    with pytest.raises(TypeError, match=match):
        TrainConfig(**{keyword: 1})


def test_all_bad_fields_are_reported_together():
    with pytest.raises(ValueError) as err:
        TrainConfig(lr=math.nan, temperature=-1.0, seed="x")
    assert all(f"TrainConfig.{name}" in str(err.value) for name in ("lr", "temperature", "seed"))


@pytest.mark.parametrize(
    "sampler, settings, match",
    [
        ("flat", {"nope": 1}, r"no setting \['nope'\].*pool_size"),
        ("tree", {"branching": 4}, "branching must be a tuple"),
        ("curriculum", {"decay": 0.0}, r"decay must be in \(0, 1\]"),
        ("dynamic", {"band_low": math.nan}, "band_low must be a finite"),
    ],
)
def test_sampler_settings(sampler, settings, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(sampler=sampler, sampling=settings)


@pytest.mark.parametrize("name", ADVANTAGES.names())
def test_group_size_below_the_estimators_minimum_is_refused(name):
    minimum = ADVANTAGES.get(name).min_group_size
    if minimum < 2:
        pytest.skip(f"{name} learns from a single sample per prompt")
    extra = {"sampler": "tree", "sampling": {"branching": (1,)}} if name == "tree" else {}
    with pytest.raises(ValueError, match=rf"advantage '{name}' needs TrainConfig.group_size >= {minimum}"):
        TrainConfig(overrides={"advantage": name, "pass_k": 1}, group_size=1, **extra)


def test_group_baselines_declare_their_minimum():
    assert {n for n in ADVANTAGES.names() if ADVANTAGES.get(n).min_group_size == 2} == {
        "grpo",
        "dr_grpo",
        "group_mean_batch_std",
        "rloo",
        "reinforce_pp_baseline",
        "passk",
        "tree",
    }
    TrainConfig(preset="reinforce", group_size=1)  # a batch-mean baseline learns from G = 1


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"correct": math.nan}, "weight of reward 'correct' must be a finite number"),
        ({"numeric": (1.0, {"rel_tol": math.inf})}, "reward 'numeric': parameters"),
        ({"correct": (1.0, "x")}, "params of reward 'correct' must be a dict"),
    ],
)
def test_reward_mix_values(spec, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(rewards=spec)


def test_range_text_and_membership():
    assert str(Range(0, low_open=True)) == "> 0" and str(Range(0, 1, high_open=True)) == "in [0, 1)"
    assert 0 not in Range(0, low_open=True) and 1 in Range(0, 1) and math.nan not in Range(0, 1)

    @dataclasses.dataclass
    class Mine:
        k: tuple[int, ...] = (1,)
        x: float | None = None

    check_fields(Mine())
    with pytest.raises(ValueError, match=r"Mine\.k must be a tuple of an int, got \(1, 'a'\)"):
        check_fields(Mine(k=(1, "a")))


# -- setups that used to fail at the first step


def test_a_reward_that_needs_what_the_task_lacks_fails_before_training():
    with pytest.raises(ValueError, match="reward 'step_correct' cannot score task 'addition'.*step_verdicts"):
        Trainer(TrainConfig(rewards={"step_correct": 1.0}, **FAST), progress=False)
    with pytest.raises(ValueError, match="reward 'numeric' cannot score task 'countdown'.*not a number"):
        Trainer(TrainConfig(**{**FAST, "task": "countdown"}, rewards={"numeric": 1.0}), progress=False)


def test_chat_prompts_need_a_chat_template():
    with pytest.raises(ValueError, match="prompt_style='chat' needs a tokenizer with a chat template"):
        Trainer(TrainConfig(prompt_style="chat", **FAST), progress=False)


def test_completions_past_the_models_positions_fail_before_training():
    with pytest.raises(ValueError, match=r"max_new_tokens=100000 exceed the model's \d+ positions"):
        Trainer(TrainConfig(**{**FAST, "max_new_tokens": 100000}), progress=False)


def test_load_hf_refuses_a_tokenizer_larger_than_the_vocabulary(tmp_path):
    from rl4lrm.models.loaders import load_hf
    from rl4lrm.models.tiny import tiny_model
    from rl4lrm.models.tokenizer import char_tokenizer

    tok = char_tokenizer()
    model = tiny_model("nano", tok)
    model.resize_token_embeddings(len(tok) - 3)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(
        ValueError,
        match=rf"tokenizer has {len(tok)} ids but the model's embedding table has "
        rf"{len(tok) - 3} rows",
    ):
        load_hf(tmp_path, device="cpu")
    assert torch.is_tensor(model.get_input_embeddings().weight)
