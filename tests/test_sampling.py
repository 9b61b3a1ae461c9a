"""Sampling strategies: group filters, dynamic sampling, the problem source, the curriculum, tree rollouts.

Each registered function gets a hand-computed example and a loop reference on random inputs; the
samplers run inside a real ``Trainer`` on the tiny zoo models; a short tree-RL run must learn.
"""

import itertools
import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rl4lrm.advantages import ADVANTAGES, node_values, tree_advantage
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import load_base, load_task
from rl4lrm.rollout import RolloutBatch, compute_logprobs, concat_batches, rollout
from rl4lrm.sampling import (
    FILTERS,
    SAMPLERS,
    CurriculumConfig,
    CurriculumSampler,
    DifficultyTracker,
    DynamicConfig,
    DynamicSampler,
    FlatConfig,
    MemoryConfig,
    TreeConfig,
    TreeRollout,
    TreeSampler,
    curriculum_weights,
    tree_rollout,
)
from rl4lrm.sampling.base import ProblemSource
from rl4lrm.sampling.dynamic import group_signal_probability
from rl4lrm.trainer import Callback, TrainConfig, Trainer

# small countdown runs: B=4 prompts, G=4 samples, the zoo's default length cap (16)
FAST = dict(
    task="countdown", prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=1, eval_every=0, device="cpu"
)


def _trainer(steps=1, **kwargs):
    return Trainer(TrainConfig.build(**{**FAST, "steps": steps, **kwargs}), progress=False)


def _comparable(history):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in history]


@pytest.fixture(scope="module")
def addition():
    return load_base("addition")


# ----------------------------------------------------------------------------------------- filters
def _keep_reference(rewards, G, name, low, high):
    """Loop reference of the filters: one bool per group."""
    out = []
    for g in range(len(rewards) // G):
        group = [float(r) for r in rewards[g * G : (g + 1) * G]]
        if name == "zero_variance":
            out.append(any(r != group[0] for r in group))
        else:
            out.append(low <= sum(group) / G <= high)
    return out


# G = 4: all wrong, all right, 1/4, 3/4, equal floats, 2/4, floats that differ by one part in a million
HAND = torch.tensor(
    [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0.5, 0.5, 0.5, 0.5, 0, 1, 0, 1, 0.3, 0.3, 0.3, 0.300001]
)


@pytest.mark.parametrize(
    "name, low, high, expected",
    [
        ("zero_variance", 0.2, 0.8, [False, False, True, True, False, True, True]),
        ("zero_variance", 0.4, 0.4, [False, False, True, True, False, True, True]),  # the band is ignored
        ("pass_band", 0.25, 0.75, [False, False, True, True, True, True, True]),  # both edges inclusive
        ("pass_band", 0.3, 0.7, [False, False, False, False, True, True, True]),
        ("pass_band", 0.0, 0.0, [True, False, False, False, False, False, False]),
        ("pass_band", 1.0, 1.0, [False, True, False, False, False, False, False]),
        ("pass_band", 0.0, 1.0, [True] * 7),
    ],
)
def test_filters_hand_example(name, low, high, expected):
    keep = FILTERS.get(name)(HAND, 4, low, high)
    assert keep.dtype == torch.bool and keep.tolist() == expected


@pytest.mark.parametrize("name", ["zero_variance", "pass_band"])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("G", [2, 4, 5])
def test_filters_match_loop_reference(name, binary, G):
    gen = torch.Generator().manual_seed(G)
    for trial in range(20):
        B = 1 + trial % 13
        rewards = (torch.rand(B * G, generator=gen) < 0.5).float() if binary else torch.rand(B * G, generator=gen)
        if not binary and trial % 2:  # some all-equal float groups
            rewards.view(B, G)[::2] = rewards.view(B, G)[::2, :1]
        low, high = sorted(torch.rand(2, generator=gen).tolist()) if trial % 3 else (0.25, 0.75)
        keep = FILTERS.get(name)(rewards, G, low, high)
        assert keep.shape == (B,)
        assert keep.tolist() == _keep_reference(rewards.tolist(), G, name, low, high)


def test_filters_accept_int_and_bool_rewards():
    ints = torch.tensor([0, 1, 1, 1, 0, 0, 0, 0])
    assert FILTERS.get("zero_variance")(ints, 4).tolist() == [True, False]
    assert FILTERS.get("pass_band")(ints.bool(), 4, 0.5, 0.75).tolist() == [True, False]


def test_filter_and_sampler_registries():
    assert FILTERS.names() == ["pass_band", "zero_variance"]
    assert SAMPLERS.names() == ["curriculum", "dynamic", "flat", "memory", "tree"]
    with pytest.raises(ValueError, match="already registered"):
        FILTERS.register("zero_variance")(lambda rewards, group_size, low, high: rewards)
    with pytest.raises(ValueError, match="already registered"):
        SAMPLERS.register("flat")(object)
    with pytest.raises(ValueError, match="pass_band.*zero_variance.*nope"):
        DynamicConfig(filter="nope")


def test_group_signal_probability_matches_enumeration():
    for G in (1, 2, 4, 6):
        for p in (0.0, 0.1, 0.5, 0.93, 1.0):
            mixed = sum(
                p ** sum(o) * (1 - p) ** (G - sum(o)) for o in itertools.product((0, 1), repeat=G) if 0 < sum(o) < G
            )
            assert group_signal_probability(torch.tensor(p, dtype=torch.float64), G).item() == pytest.approx(mixed)
    assert group_signal_probability(torch.tensor(0.5), 4).item() == pytest.approx(1 - 2 / 16)


# ----------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "config, field, value",
    [
        (DynamicConfig, "max_rounds", 0),
        (TreeConfig, "segment_len", 0),
        (FlatConfig, "pool_size", -1),
        (DynamicConfig, "band_low", 0.9),
        (DynamicConfig, "band_high", 0.1),
        (DynamicConfig, "band_low", -0.1),
        (DynamicConfig, "band_high", 1.5),
        (CurriculumConfig, "target", -0.2),
        (CurriculumConfig, "target", 1.2),
        (CurriculumConfig, "width", 0.0),
        (CurriculumConfig, "width", -1.0),
        (CurriculumConfig, "decay", 0.0),
        (CurriculumConfig, "decay", 1.5),
        (CurriculumConfig, "allocation", "uniform"),
        (TreeConfig, "branching", ()),
        (TreeConfig, "branching", (2, 0)),
        (DynamicConfig, "max_rounds", 1.5),
        (DynamicConfig, "filter", "nope"),
        (TreeConfig, "pool_size", -1),
    ],
)
def test_sampler_configs_name_the_bad_field(config, field, value):
    with pytest.raises(ValueError, match=f"{field}|{value!r}"):
        config(**{field: value})


def test_sampler_configs_defaults_and_leaves():
    cfg = TreeConfig(branching=[3, 2, 2])
    assert cfg.branching == (3, 2, 2) and cfg.leaves == 12
    assert TreeConfig().leaves == 8
    assert {s: SAMPLERS.get(s).Config for s in SAMPLERS} == {
        "flat": FlatConfig,
        "dynamic": DynamicConfig,
        "curriculum": CurriculumConfig,
        "memory": MemoryConfig,
        "tree": TreeConfig,
    }


def test_train_config_sampler_validation():
    with pytest.raises(ValueError, match="nope.*curriculum.*dynamic.*flat.*tree"):
        TrainConfig(sampler="nope")
    with pytest.raises(ValueError, match=r"branching.*group_size|group_size.*branching") as err:
        TrainConfig(sampler="tree", group_size=4, sampling={"branching": (2, 3)})
    assert "6" in str(err.value) and "4" in str(err.value)
    TrainConfig(sampler="tree", group_size=6, sampling={"branching": (2, 3)})
    with pytest.raises(ValueError, match="tree"):
        TrainConfig(sampler="flat", overrides={"advantage": "tree"})
    with pytest.raises(ValueError, match="pool_size"):
        TrainConfig(prompts_per_step=8, sampling={"pool_size": 7})
    TrainConfig(prompts_per_step=8, sampling={"pool_size": 8})
    cfg = TrainConfig(sampler="dynamic", sampling={"filter": "pass_band", "band_low": 0.25})
    assert isinstance(cfg.sampling, DynamicConfig) and cfg.sampling.band_low == 0.25
    cfg = TrainConfig(sampler="tree", sampling={"branching": [2, 4]})
    assert isinstance(cfg.sampling, TreeConfig) and cfg.sampling.branching == (2, 4)
    assert TrainConfig(sampler="tree", sampling=TreeConfig(branching=(2, 4))).sampling.branching == (2, 4)
    with pytest.raises(ValueError, match="decay"):
        TrainConfig(sampler="curriculum", sampling={"decay": 0})
    # each sampler takes only its own settings, and says which those are
    with pytest.raises(ValueError, match=r"FlatConfig has no setting \['branching'\].*pool_size"):
        TrainConfig(sampling={"branching": (2, 4)})
    with pytest.raises(ValueError, match="DynamicConfig"):
        TrainConfig(sampler="dynamic", sampling=TreeConfig())


def test_curriculum_needs_a_pool():
    with pytest.raises(ValueError, match="pool_size"):
        _trainer(sampler="curriculum")


# ----------------------------------------------------------------------------------------- concat_batches
def test_concat_batches_pads_and_renumbers(addition):
    model, tok, _ = addition
    gen = torch.Generator().manual_seed(0)
    a = rollout(model, tok, ["1+2=", "5+6="], group_size=2, max_new_tokens=1, generator=gen)
    b = rollout(model, tok, ["12+34=", "7=", "99+1="], group_size=2, max_new_tokens=8, generator=gen)
    Pa, Ta = a.prompt_ids.shape[1], a.completion_ids.shape[1]
    Pb, Tb = b.prompt_ids.shape[1], b.completion_ids.shape[1]
    assert Pa < Pb and Ta < Tb  # a's prompts and completions are both narrower
    pad = tok.pad_token_id
    c = concat_batches([a, b], pad)
    assert c.prompt_ids.shape == (10, Pb) and c.completion_ids.shape == (10, Tb)
    assert c.group_size == 2 and c.temperature == 1.0 and c.ref_logprobs is None
    # a's prompts get more padding on the left, its completions on the right
    assert torch.equal(c.prompt_ids[:4, Pb - Pa :], a.prompt_ids) and c.prompt_ids[:4, : Pb - Pa].eq(pad).all()
    assert torch.equal(c.prompt_mask[:4, Pb - Pa :], a.prompt_mask) and c.prompt_mask[:4, : Pb - Pa].eq(0).all()
    assert torch.equal(c.completion_ids[:4, :Ta], a.completion_ids) and c.completion_ids[:4, Ta:].eq(pad).all()
    assert torch.equal(c.response_mask[:4, :Ta], a.response_mask) and c.response_mask[:4, Ta:].eq(0).all()
    assert torch.equal(c.old_logprobs[:4, :Ta], a.old_logprobs) and c.old_logprobs[:4, Ta:].eq(0).all()
    for name in ("prompt_ids", "prompt_mask", "completion_ids", "response_mask", "old_logprobs"):
        assert torch.equal(getattr(c, name)[4:], getattr(b, name)), name
    assert c.group_ids.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert c.completions == a.completions + b.completions
    assert torch.equal(c.truncated, torch.cat([a.truncated, b.truncated]))
    # the padded batch is a valid batch: a full recomputation gives each part's sampling log-probs
    recomputed, _ = compute_logprobs(model, c)
    expected = torch.cat([torch.nn.functional.pad(a.old_logprobs, (0, Tb - Ta)), b.old_logprobs])
    assert (recomputed - expected).abs().max() < 1e-4
    assert ((recomputed != 0) & (c.response_mask == 0)).sum() == 0


def test_concat_batches_group_ids_of_selected_groups_stay_distinct(addition):
    model, tok, _ = addition
    gen = torch.Generator().manual_seed(1)
    a = rollout(model, tok, ["1+2=", "12+34=", "5+5="], group_size=2, max_new_tokens=4, generator=gen)
    b = rollout(model, tok, ["7=", "99+1="], group_size=2, max_new_tokens=4, generator=gen)
    c = concat_batches([a.select(torch.tensor([4, 5])), b, a.select(torch.tensor([0, 1]))], tok.pad_token_id)
    groups = c.group_ids.view(-1, 2)
    assert (groups == groups[:, :1]).all() and len(groups[:, 0].unique()) == 4
    assert concat_batches([a], tok.pad_token_id).completions == a.completions


def test_concat_batches_ref_logprobs_and_errors(addition):
    model, tok, _ = addition
    a = rollout(model, tok, ["1+2="], group_size=2, max_new_tokens=3, generator=torch.Generator().manual_seed(0))
    b = rollout(model, tok, ["12+34="], group_size=2, max_new_tokens=6, generator=torch.Generator().manual_seed(0))
    a.ref_logprobs, b.ref_logprobs = a.old_logprobs - 1, b.old_logprobs - 2
    c = concat_batches([a, b], tok.pad_token_id)
    T = c.completion_ids.shape[1]
    widen = [torch.nn.functional.pad(x.ref_logprobs, (0, T - x.ref_logprobs.shape[1])) for x in (a, b)]
    assert torch.equal(c.ref_logprobs, torch.cat(widen))
    b.ref_logprobs = None
    assert concat_batches([a, b], tok.pad_token_id).ref_logprobs is None
    other = rollout(model, tok, ["1+2="], group_size=3, max_new_tokens=3)
    with pytest.raises(ValueError, match="group size"):
        concat_batches([a, other], tok.pad_token_id)
    cold = rollout(model, tok, ["1+2="], group_size=2, max_new_tokens=3, temperature=0.5)
    with pytest.raises(ValueError, match="temperature"):
        concat_batches([a, cold], tok.pad_token_id)
    with pytest.raises(ValueError, match="at least one"):
        concat_batches([], tok.pad_token_id)


def test_concat_batches_pads_per_column_aux_tensors_of_agent_episodes():
    """Agent episodes carry (N, T) observation and attention masks in ``aux``: batches of different widths join, and
    the joined batch recomputes each part's log-probs through the policy's own hook."""
    from rl4lrm.agents.rollout import load_agent

    policy, tok, task = load_agent()
    prompts = [task.format_prompt(p, "plain", tok) for p in task.problems("test", 2)]
    short = rollout(policy, tok, prompts, 2, 6, generator=torch.Generator().manual_seed(0))
    wide = rollout(policy, tok, prompts, 2, 40, generator=torch.Generator().manual_seed(0))
    assert short.completion_ids.shape[1] < wide.completion_ids.shape[1]
    assert {"attend", "obs_mask"} <= set(short.aux) and short.aux["obs_mask"].shape == short.completion_ids.shape
    joined = concat_batches([short, wide], tok.pad_token_id)
    T = joined.completion_ids.shape[1]
    for name, value in joined.aux.items():
        parts = (short.aux[name], wide.aux[name])
        if value.dim() >= 2 and value.shape[1] == T:  # per column: the narrow part padded with zeros
            width = parts[0].shape[1]
            assert torch.equal(value[:4, :width], parts[0]) and not value[:4, width:].any(), name
            assert torch.equal(value[4:], parts[1]), name
        else:
            assert torch.equal(value, torch.cat(parts)), name
    recomputed, _ = compute_logprobs(policy, joined)
    assert (recomputed * joined.response_mask - joined.old_logprobs).abs().max() < 1e-4


# ----------------------------------------------------------------------------------------- problem source
def test_problem_source_stream_matches_the_flat_history():
    task = load_task("countdown")
    src = ProblemSource(task, 0, seed=3)
    assert src.pool is None
    for step in (0, 1, 7):
        assert src.draw(5, step) == task.problems("train", 5, seed=3 * 1_000_003 + step)
        assert src.draw(5, step, 1) == src.draw(5, step, 1)  # a pure function of (seed, step, round)
        keys = [{p.key for p in src.draw(5, step, r)} for r in range(3)]
        assert keys[0] != keys[1] and keys[1] != keys[2] and keys[0] != keys[2]
    assert src.draw(5, 0) != src.draw(5, 1)
    for step in range(4):  # a later round is not a later step's round 0 (a retry would repeat next step's prompts)
        assert {p.key for p in src.draw(5, step, 1)} != {p.key for p in src.draw(5, step + 1, 0)}
    assert ProblemSource(task, 0, seed=4).draw(5, 0) != src.draw(5, 0)


def test_problem_source_pool_never_repeats_within_a_step():
    task = load_task("countdown")
    src = ProblemSource(task, 20, seed=1)
    assert src.pool == task.problems("train", 20, seed=1)
    pool_keys = {p.key for p in src.pool}
    assert len(pool_keys) == 20
    for step in range(3):
        drawn = [p.key for r in range(4) for p in src.draw(5, step, r)]
        assert len(set(drawn)) == 20 and set(drawn) == pool_keys  # the four rounds walk through the pool
        assert [p.key for p in src.draw(5, step, 2)] == drawn[10:15]  # reproducible
        with pytest.raises(RuntimeError, match="pool_size=20"):
            src.draw(5, step, 4)
    assert [p.key for p in src.draw(5, 0)] != [p.key for p in src.draw(5, 1)]  # each step reshuffles


# ----------------------------------------------------------------------------------------- dynamic sampling
def _dynamic_reference(trainer):
    """Loop reference of dynamic sampling: rounds of B groups until B pass the filter, in order."""
    cfg, scfg = trainer.config, trainer.sampler.config
    B, G = cfg.prompts_per_step, cfg.group_size
    problems, completions, rewards, tokens = [], [], [], 0.0
    for r in range(scfg.max_rounds):
        round_problems = trainer.sampler.source.draw(B, trainer.step, r)
        _, batch, round_scores = trainer.sampling_context().draw(round_problems, r)
        round_rewards = round_scores.total
        tokens += batch.response_mask.sum().item()
        keep = _keep_reference(round_rewards.tolist(), G, scfg.filter, scfg.band_low, scfg.band_high)
        for g in range(B):
            if keep[g] and len(problems) < B:
                problems.append(round_problems[g])
                completions += batch.completions[g * G : (g + 1) * G]
                rewards += round_rewards[g * G : (g + 1) * G].tolist()
        if len(problems) == B:
            return problems, completions, rewards, tokens, r + 1
    return None


@pytest.mark.parametrize(
    "sampling",
    [
        {"filter": "zero_variance"},
        {"filter": "pass_band", "band_low": 0.25, "band_high": 0.5},
        {"filter": "zero_variance", "pool_size": 40},
    ],
)
def test_dynamic_sampler_matches_loop_reference(sampling):
    trainer = _trainer(sampler="dynamic", sampling=sampling)
    assert isinstance(trainer.sampler, DynamicSampler)
    B, G = 4, 4
    rounds_seen = set()
    for step in range(3):
        trainer.step = step
        out = trainer.sampler.sample(trainer.sampling_context())
        problems, completions, rewards, tokens, rounds = _dynamic_reference(trainer)
        assert out.problems == problems and out.batch.completions == completions
        assert out.rewards.tolist() == rewards
        assert len(out.problems) == len(out.prompts) == B and out.batch.completion_ids.shape[0] == B * G
        assert out.rewards.shape == (B * G,)
        keep = FILTERS.get(trainer.sampler.config.filter)(
            out.rewards, G, trainer.sampler.config.band_low, trainer.sampler.config.band_high
        )
        assert keep.all()
        m = out.metrics
        assert m["sampling/rounds"] == rounds >= 1 and m["sampling/groups_drawn"] == rounds * B
        assert m["sampling/frac_kept"] == pytest.approx(B / (rounds * B))
        assert m["tokens/generated"] == tokens >= out.batch.response_mask.sum().item()
        # every kept group is a whole group of one problem, with its prompt
        prompts = [trainer.task.format_prompt(p, "plain") for p in out.problems]
        assert out.prompts == prompts
        groups = out.batch.group_ids.view(B, G)
        assert (groups == groups[:, :1]).all() and len(groups[:, 0].unique()) == B
        rounds_seen.add(rounds)
    assert max(rounds_seen) > 1  # the refill was exercised


def test_dynamic_batch_group_ids_index_the_sampled_prompts():
    """``RolloutBatch.group_ids`` is "the index of the prompt each row answers": for the batch a sampler
    hands to the trainer, that is the index into ``Sampled.prompts`` (as flat, curriculum and tree give)."""
    trainer = _trainer(sampler="dynamic")
    for step in range(3):
        trainer.step = step
        out = trainer.sampler.sample(trainer.sampling_context())
        assert out.batch.group_ids.tolist() == torch.arange(4).repeat_interleave(4).tolist(), (
            step,
            out.metrics["sampling/rounds"],
        )


class _Spy(Callback):
    def __init__(self):
        self.batches = []

    def on_rollout_end(self, trainer, batch, rewards):
        self.batches.append((batch, rewards.clone()))


@pytest.mark.parametrize(
    "sampling", [{"filter": "zero_variance"}, {"filter": "pass_band", "band_low": 0.25, "band_high": 0.75}]
)
def test_dynamic_sampler_in_training(sampling):
    spy = _Spy()
    trainer = Trainer(
        TrainConfig(**FAST, steps=2, sampler="dynamic", sampling=sampling), callbacks=[spy], progress=False
    )
    df = trainer.train()
    assert len(spy.batches) == 2
    for (batch, rewards), (_, row) in zip(spy.batches, df.iloc[1:].iterrows()):
        assert batch.completion_ids.shape[0] == 16 and rewards.shape == (16,)
        grouped = rewards.view(4, 4)
        if sampling["filter"] == "zero_variance":
            assert not (grouped == grouped[:, :1]).all(1).any()
            assert row["reward/frac_zero_std"] == 0
        else:
            assert ((grouped.mean(1) >= 0.25) & (grouped.mean(1) <= 0.75)).all()
        assert row["sampling/rounds"] >= 1
        assert row["tokens/generated"] >= batch.response_mask.sum().item()
        assert batch.ref_logprobs is not None and batch.ref_logprobs.shape == batch.old_logprobs.shape


def test_dynamic_sampler_gives_up_after_max_rounds():
    # a G=4 group of 0/1 rewards has a mean in {0, .25, .5, .75, 1}: never 0.37
    trainer = _trainer(
        sampler="dynamic", sampling={"filter": "pass_band", "band_low": 0.37, "band_high": 0.37, "max_rounds": 2}
    )
    with pytest.raises(RuntimeError, match="max_rounds=2") as err:
        trainer.sampler.sample(trainer.sampling_context())
    assert "kept 0 of the 4" in str(err.value)
    with pytest.raises(RuntimeError, match="max_rounds"):
        trainer.train()
    assert trainer.step == 0  # nothing was trained on an empty batch


def test_dynamic_sampler_finite_pool_runs_dry():
    trainer = _trainer(
        sampler="dynamic", sampling={"filter": "pass_band", "band_low": 0.37, "band_high": 0.37, "pool_size": 4}
    )
    with pytest.raises(RuntimeError, match="pool_size=4"):
        trainer.sampler.sample(trainer.sampling_context())


# ----------------------------------------------------------------------------------------- curriculum
def test_difficulty_tracker_hand_example():
    t = DifficultyTracker(3, decay=1.0)
    assert t.pass_rate.tolist() == [0.5, 0.5, 0.5] and not t.seen.any()
    t.update(torch.tensor([1]), torch.tensor([1.0, 1.0, 0.0, 1.0]), 4)
    assert t.pass_rate[1].item() == pytest.approx((3 + 1) / (4 + 2))
    assert t.pass_rate[[0, 2]].tolist() == [0.5, 0.5] and t.seen.tolist() == [False, True, False]
    t.update(torch.tensor([1, 0]), torch.tensor([0, 0, 0, 0, 1, 0, 0, 0]), 4)  # int rewards
    assert t.successes.tolist() == [1, 3, 0] and t.trials.tolist() == [4, 8, 0]


def test_difficulty_tracker_decay_forgets_old_counts():
    t = DifficultyTracker(2, decay=0.5)
    t.update(torch.tensor([0]), torch.tensor([1.0, 1.0, 1.0, 0.0]), 4)
    assert (t.successes[0].item(), t.trials[0].item()) == (3, 4)  # nothing to decay yet
    t.update(torch.tensor([0]), torch.tensor([0.0, 0.0, 1.0, 0.0]), 4)
    assert (t.successes[0].item(), t.trials[0].item()) == (3 * 0.5 + 1, 4 * 0.5 + 4)
    assert t.pass_rate[0].item() == pytest.approx((2.5 + 1) / (6 + 2))
    t.update(torch.tensor([1]), torch.tensor([1.0, 1.0, 1.0, 1.0]), 4)  # problem 0 untouched: not decayed
    assert (t.successes[0].item(), t.trials[0].item()) == (2.5, 6)
    # the newest group counts 1/decay times more than the one before it
    a, b = DifficultyTracker(1, 0.25), DifficultyTracker(1, 0.25)
    a.update(torch.tensor([0]), torch.ones(4), 4), a.update(torch.tensor([0]), torch.zeros(4), 4)
    b.update(torch.tensor([0]), torch.zeros(4), 4), b.update(torch.tensor([0]), torch.ones(4), 4)
    assert a.pass_rate.item() < 0.5 < b.pass_rate.item()


def test_difficulty_tracker_repeated_indices_match_loop_reference():
    gen = torch.Generator().manual_seed(0)
    n, G, decay = 6, 4, 0.7
    t = DifficultyTracker(n, decay)
    succ, trials = [0.0] * n, [0.0] * n
    for _ in range(10):
        index = torch.randint(0, n, (5,), generator=gen)  # with repeats, as proportional allocation draws
        rewards = (torch.rand(5 * G, generator=gen) < 0.4).float()
        t.update(index, rewards, G)
        for i in set(index.tolist()):  # one decay per update, then every group of the update counts fully
            succ[i] *= decay
            trials[i] *= decay
        for g, i in enumerate(index.tolist()):
            succ[i] += rewards[g * G : (g + 1) * G].sum().item()
            trials[i] += G
        assert t.successes.tolist() == pytest.approx(succ) and t.trials.tolist() == pytest.approx(trials)
    t.update(torch.tensor([2, 2]), torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0]), 4)
    assert t.successes[2].item() == pytest.approx(succ[2] * decay + 4)
    assert t.trials[2].item() == pytest.approx(trials[2] * decay + 8)
    state = t.state_dict()
    u = DifficultyTracker(n, decay)
    u.load_state_dict(state)
    assert torch.equal(u.successes, t.successes) and torch.equal(u.trials, t.trials)
    t.update(torch.tensor([0]), torch.ones(4), 4)
    assert not torch.equal(u.successes, t.successes)  # the state is a copy, not a view


def test_curriculum_weights_peak_at_target_and_are_symmetric():
    grid = torch.linspace(0, 1, 101, dtype=torch.float64)
    for target, width in [(0.5, 0.2), (0.3, 0.1), (0.8, 0.5)]:
        w = curriculum_weights(grid, target, width)
        assert grid[w.argmax()].item() == pytest.approx(target)
        assert w.max().item() == pytest.approx(1.0) and (w > 0).all() and (w <= 1).all()
        d = torch.linspace(0, 0.2, 9, dtype=torch.float64)
        assert torch.allclose(
            curriculum_weights(target + d, target, width), curriculum_weights(target - d, target, width)
        )
        assert curriculum_weights(torch.tensor(target + width), target, width).item() == pytest.approx(math.exp(-0.5))


def test_curriculum_one_group_picks_distinct_prompts():
    trainer = _trainer(sampler="curriculum", sampling={"pool_size": 8, "allocation": "one_group"})
    assert isinstance(trainer.sampler, CurriculumSampler) and len(trainer.sampler.source.pool) == 8
    for step in range(4):
        trainer.step = step
        out = trainer.sampler.sample(trainer.sampling_context())
        index = trainer.sampler.last_index
        assert len(index.unique()) == 4 and out.metrics["curriculum/distinct_prompts"] == 4
        assert out.problems == [trainer.sampler.source.pool[i] for i in index.tolist()]
        assert out.batch.completion_ids.shape[0] == 16
        assert out.batch.group_ids.tolist() == torch.arange(4).repeat_interleave(4).tolist()
        assert out.metrics["tokens/generated"] == out.batch.response_mask.sum().item()
    assert (trainer.sampler.tracker.trials > 0).sum() >= 4


def test_curriculum_proportional_allows_repeats():
    trainer = _trainer(sampler="curriculum", sampling={"pool_size": 4, "allocation": "proportional"})
    distinct = []
    for step in range(5):
        trainer.step = step
        out = trainer.sampler.sample(trainer.sampling_context())
        distinct.append(out.metrics["curriculum/distinct_prompts"])
        assert distinct[-1] == len(trainer.sampler.last_index.unique()) <= 4
        assert len(out.problems) == 4 and out.batch.completion_ids.shape[0] == 16
    assert min(distinct) < 4  # 4 draws from 4 prompts with replacement: distinct with prob 4!/4^4


def test_curriculum_prefers_prompts_near_the_target():
    trainer = _trainer(sampler="curriculum", sampling={"pool_size": 12, "width": 0.05})
    tracker = trainer.sampler.tracker
    unseen = torch.tensor([1, 5, 6, 10])
    solved = torch.ones(12, dtype=torch.bool)
    solved[unseen] = False
    tracker.successes[solved], tracker.trials[solved] = 100.0, 100.0  # pass rate ~0.99: far from 0.5
    out = trainer.sampler.sample(trainer.sampling_context())
    assert sorted(trainer.sampler.last_index.tolist()) == unseen.tolist()
    assert out.metrics["curriculum/selected_pass_rate"] == pytest.approx(0.5)
    assert tracker.trials[unseen].tolist() == [4.0] * 4  # the chosen prompts were updated


def test_curriculum_training_logs_and_resumes_exactly(tmp_path):
    kwargs = dict(
        sampler="curriculum", sampling={"pool_size": 8, "allocation": "proportional", "decay": 0.9}, eval_every=2
    )  # the 2-step run evaluates at its end: so does the 3-step one
    straight = _trainer(steps=3, **kwargs)
    df = straight.train()
    for column in [
        "curriculum/selected_pass_rate",
        "curriculum/pool_pass_rate",
        "curriculum/frac_seen",
        "curriculum/distinct_prompts",
        "tokens/generated",
        "tokens/cumulative",
    ]:
        assert df[column].iloc[1:].notna().all(), column
    assert (df["curriculum/distinct_prompts"].iloc[1:] <= 4).all()
    assert (df["curriculum/frac_seen"].iloc[1:].diff().dropna() >= 0).all()
    first = _trainer(steps=2, **kwargs)
    first.train()
    first.save(tmp_path / "ckpt.pt")
    resumed = _trainer(steps=3, **kwargs)
    assert not torch.equal(resumed.sampler.tracker.trials, first.sampler.tracker.trials)
    resumed.load(tmp_path / "ckpt.pt")
    assert torch.equal(resumed.sampler.tracker.successes, first.sampler.tracker.successes)
    assert torch.equal(resumed.sampler.tracker.trials, first.sampler.tracker.trials)
    assert resumed.sampler.tracker.trials.dtype == torch.float64
    resumed.train()
    assert _comparable(resumed.history) == _comparable(straight.history)
    assert torch.equal(resumed.sampler.tracker.successes, straight.sampler.tracker.successes)
    assert torch.equal(resumed.sampler.tracker.trials, straight.sampler.tracker.trials)


# ----------------------------------------------------------------------------------------- tree rollouts
def _prompts(task, n, seed=1):
    return [task.format_prompt(p, "plain") for p in task.problems("test", n, seed=seed)]


def _path(tree, node):
    nodes = []
    while node >= 0:
        nodes.append(node)
        node = tree.parent[node].item()
    return nodes[::-1]


def check_tree(tree, tok, prompts, branching, segment_len, max_new_tokens):
    """Every structural invariant of a ``TreeRollout``, checked with plain loops."""
    B, G, D = len(prompts), math.prod(branching), len(branching)
    batch, eos, pad = tree.batch, tok.eos_token_id, tok.pad_token_id
    N, T = batch.completion_ids.shape
    M = len(tree.parent)
    assert N == B * G and batch.group_size == G and tree.row_nodes.shape == (N, D + 1)
    assert batch.group_ids.tolist() == [i // G for i in range(N)]
    prompt_tokens = tok(prompts, add_special_tokens=False)["input_ids"]
    for i in range(N):  # each row carries its own prompt, left-padded
        p = prompt_tokens[i // G]
        assert batch.prompt_ids[i, -len(p) :].tolist() == p and batch.prompt_mask[i].sum().item() == len(p)
    # the node table: roots first, parents before children, depth and root inherited
    assert tree.parent[:B].tolist() == [-1] * B and tree.depth[:B].tolist() == [0] * B
    assert tree.root[:B].tolist() == list(range(B)) and tree.n_tokens[:B].tolist() == [0] * B
    assert tree.segments[:B] == [""] * B
    for n in range(B, M):
        up = tree.parent[n].item()
        assert 0 <= up < n and tree.depth[n] == tree.depth[up] + 1 and tree.root[n] == tree.root[up]
        assert tree.n_tokens[n] >= 1
    children = [[] for _ in range(M)]
    for n in range(B, M):
        children[tree.parent[n].item()].append(n)
    # the tokens of each node, read off the rows; rows through a node agree on its whole span
    node_tokens, node_start, leaf_rows = {}, {}, {}
    for i in range(N):
        nodes = tree.row_nodes[i].tolist()
        assert nodes[0] == i // G
        k = nodes.index(-1) if -1 in nodes else D + 1
        assert all(x == -1 for x in nodes[k:])  # -1 only after an early leaf
        for j in range(1, k):
            assert tree.parent[nodes[j]].item() == nodes[j - 1] and tree.depth[nodes[j]] == j
        assert nodes[:k] == _path(tree, nodes[k - 1])
        expected_nodes, t = [], 0
        for n in nodes[1:k]:
            span = batch.completion_ids[i, t : t + tree.n_tokens[n]].tolist()
            assert node_tokens.setdefault(n, span) == span and node_start.setdefault(n, t) == t
            expected_nodes += [n] * tree.n_tokens[n].item()
            t += tree.n_tokens[n].item()
        assert tree.token_node[i].tolist() == expected_nodes + [-1] * (T - t)
        assert batch.response_mask[i].tolist() == [1.0] * t + [0.0] * (T - t)
        assert batch.completion_ids[i, t:].eq(pad).all() and batch.old_logprobs[i, t:].eq(0).all()
        leaf_rows.setdefault(nodes[k - 1], []).append(i)
        # a row ends at EOS, or at the length cap (then it is flagged truncated)
        last = batch.completion_ids[i, t - 1].item()
        assert batch.truncated[i].item() == (last != eos)
        if last != eos:
            assert k == D + 1 and t == max_new_tokens
        # its completion starts with its depth-1 node's segment
        first = nodes[1]
        assert batch.completion_ids[i, : tree.n_tokens[first]].tolist() == node_tokens[first]
        assert batch.completions[i].startswith(tok.decode(node_tokens[first], skip_special_tokens=True))
    assert batch.completions == tok.batch_decode(batch.completion_ids, skip_special_tokens=True)
    for n in range(B, M):
        assert tok.decode(node_tokens[n], skip_special_tokens=False) == tree.segments[n]
        d = tree.depth[n].item()
        ended = node_tokens[n][-1] == eos
        assert eos not in node_tokens[n][:-1]
        if d < D:  # an inner level: a full segment and branching[d] children, or an early leaf at EOS
            assert (len(node_tokens[n]) == segment_len) or ended
            assert len(children[n]) == (0 if ended else branching[d])
            if ended:
                assert len(leaf_rows[n]) == math.prod(branching[d:])  # stands for its whole subtree
        else:
            assert len(node_tokens[n]) <= max_new_tokens - (D - 1) * segment_len
            assert not children[n] and len(leaf_rows[n]) == 1
    for r in range(B):
        assert len(children[r]) == branching[0]
    assert set(leaf_rows) == {n for n in range(B, M) if not children[n]}
    # token accounting: shared prefixes counted once
    distinct = {(n, t) for i in range(N) for t, n in enumerate(tree.token_node[i].tolist()) if n >= 0}
    assert tree.tokens_generated == tree.n_tokens.sum().item() == len(distinct)
    assert tree.tokens_in_batch == batch.response_mask.sum().item() >= tree.tokens_generated
    expanded = [n for n in range(M) if children[n]]
    assert tree.prefill_tokens == sum(
        len(prompt_tokens[tree.root[n]]) + sum(tree.n_tokens[_path(tree, n)]).item() for n in expanded
    )
    return leaf_rows


def test_tree_rollout_structure_and_logprobs(addition):
    model, tok, task = addition
    prompts = _prompts(task, 3)
    tree = tree_rollout(
        model,
        tok,
        prompts,
        branching=(2, 3),
        segment_len=2,
        max_new_tokens=8,
        generator=torch.Generator().manual_seed(0),
    )
    assert isinstance(tree, TreeRollout) and tree.batch.completion_ids.shape[0] == 18
    check_tree(tree, tok, prompts, (2, 3), 2, 8)
    assert tree.tokens_in_batch > tree.tokens_generated  # depth-1 segments are shared by 3 rows each
    recomputed, _ = compute_logprobs(model, tree.batch)
    assert (recomputed - tree.batch.old_logprobs).abs().max() < 1e-4
    again = tree_rollout(model, tok, prompts, (2, 3), 2, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.batch.completion_ids, tree.batch.completion_ids)
    assert torch.equal(again.row_nodes, tree.row_nodes)


def test_tree_rollout_early_leaves_are_duplicated(addition):
    # 2-digit sums plus EOS fill a 3-token first segment: many trees end at depth 1
    model, tok, task = addition
    early = 0
    for seed in range(4):
        prompts = _prompts(task, 3, seed=seed)
        branching = (2, 2, 2) if seed % 2 else (2, 3)
        tree = tree_rollout(
            model,
            tok,
            prompts,
            branching,
            segment_len=3,
            max_new_tokens=10,
            temperature=1.5,
            generator=torch.Generator().manual_seed(seed),
        )
        leaf_rows = check_tree(tree, tok, prompts, branching, 3, 10)
        early += sum(tree.depth[n].item() < len(branching) for n in leaf_rows)
        model.train()
        recomputed, _ = compute_logprobs(model, tree.batch)
        model.eval()
        assert (recomputed - tree.batch.old_logprobs).abs().max() < 1e-4
    assert early > 0


def test_tree_rollout_with_unit_branching_is_a_plain_rollout(addition):
    model, tok, task = addition
    prompts = _prompts(task, 2)
    tree = tree_rollout(
        model, tok, prompts, (1, 1), segment_len=2, max_new_tokens=6, generator=torch.Generator().manual_seed(3)
    )
    check_tree(tree, tok, prompts, (1, 1), 2, 6)
    assert tree.tokens_generated == tree.tokens_in_batch  # nothing shared


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_tree_rollout_on_random_models_hits_the_length_cap(arch):
    # a random model rarely samples EOS: most rows run to max_new_tokens through 3 levels
    tok = char_tokenizer()
    if arch == "gpt2":  # not a fast-engine architecture: the levels go through the model's own forward
        model = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tok),
                n_embd=32,
                n_layer=1,
                n_head=2,
                n_positions=64,
                eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id,
            )
        ).eval()
    else:
        model = tiny_model("nano", tok, arch, seed=3)
    prompts = ["12+34=", "1+2=", "345+678="]
    tree = tree_rollout(
        model, tok, prompts, (2, 1, 2), segment_len=2, max_new_tokens=7, generator=torch.Generator().manual_seed(0)
    )
    check_tree(tree, tok, prompts, (2, 1, 2), 2, 7)
    capped = tree.batch.truncated
    assert capped.sum() >= 6 and tree.batch.response_mask[capped].sum(-1).eq(7).all()
    last = tree.token_node[capped][:, -1]  # the last level of a capped row gets what the segments leave: 3
    assert tree.n_tokens[last].eq(3).all()
    recomputed, _ = compute_logprobs(model, tree.batch)
    assert (recomputed - tree.batch.old_logprobs).abs().max() < 1e-4


def test_tree_rollout_validation(addition):
    model, tok, task = addition
    prompts = _prompts(task, 2)
    with pytest.raises(ValueError, match="prompts"):
        tree_rollout(model, tok, [], (2, 2), 2, 8)
    for branching in [(2, 0), (), (0,)]:
        with pytest.raises(ValueError, match="branching"):
            tree_rollout(model, tok, prompts, branching, 2, 8)
    with pytest.raises(ValueError, match="segment_len"):
        tree_rollout(model, tok, prompts, (2, 2), 0, 8)
    with pytest.raises(ValueError, match="max_new_tokens=8"):
        tree_rollout(model, tok, prompts, (2, 2, 2), 4, 8)  # two 4-token levels leave nothing for the last
    tree_rollout(model, tok, prompts, (2, 2, 2), 4, 9, generator=torch.Generator().manual_seed(0))

    class NonCausal(torch.nn.Module):  # rl4lrm.rollout's hook marks a policy that does not decode left to right
        def sample_rollout(self, *args):
            raise AssertionError("tree_rollout must refuse before sampling")

    with pytest.raises(ValueError, match="left-to-right causal LM.*NonCausal.*'flat'"):
        tree_rollout(NonCausal(), tok, prompts, (2, 2), 2, 8)


# ----------------------------------------------------------------------------------------- node values
def _hand_tree():
    """Two prompts, branching (2, 2), N = 8 rows, T = 5.

    Nodes: roots 0, 1; depth 1: 2, 3 (under 0), 4, 5 (under 1); depth 2: 6, 7 (under 2), 8, 9 (under 5).
    Nodes 3 and 4 end with EOS at depth 1 (early leaves, two rows each).
    """
    parent = torch.tensor([-1, -1, 0, 0, 1, 1, 2, 2, 5, 5])
    root = torch.tensor([0, 1, 0, 0, 1, 1, 0, 0, 1, 1])
    depth = torch.tensor([0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    n_tokens = torch.tensor([0, 0, 2, 2, 1, 2, 2, 3, 1, 2])
    row_nodes = torch.tensor(
        [[0, 2, 6], [0, 2, 7], [0, 3, -1], [0, 3, -1], [1, 4, -1], [1, 4, -1], [1, 5, 8], [1, 5, 9]]
    )
    token_node = torch.tensor(
        [
            [2, 2, 6, 6, -1],
            [2, 2, 7, 7, 7],
            [3, 3, -1, -1, -1],
            [3, 3, -1, -1, -1],
            [4, -1, -1, -1, -1],
            [4, -1, -1, -1, -1],
            [5, 5, 8, -1, -1],
            [5, 5, 9, 9, -1],
        ]
    )
    mask = (token_node >= 0).float()
    N, T = token_node.shape
    batch = RolloutBatch(
        prompt_ids=torch.ones(N, 2, dtype=torch.long),
        prompt_mask=torch.ones(N, 2, dtype=torch.long),
        completion_ids=torch.where(token_node >= 0, 5, 0),
        response_mask=mask,
        old_logprobs=torch.zeros(N, T),
        group_ids=torch.arange(2).repeat_interleave(4),
        truncated=torch.zeros(N, dtype=torch.bool),
        completions=[""] * N,
        group_size=4,
        temperature=1.0,
    )
    return TreeRollout(
        batch=batch,
        parent=parent,
        root=root,
        depth=depth,
        n_tokens=n_tokens,
        token_node=token_node,
        row_nodes=row_nodes,
        segments=[""] * 10,
        prefill_tokens=0,
    )


def test_node_values_and_tree_advantage_hand_example():
    tree = _hand_tree()
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
    values, leaves = node_values(rewards, tree)
    # V: roots (1+0+1+1)/4, (0+0+1+1)/4; node 2: rows 0-1; 3: rows 2-3; 4: rows 4-5; 5: rows 6-7; leaves
    assert values.tolist() == pytest.approx([0.75, 0.5, 0.5, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    assert leaves.tolist() == [4, 4, 2, 2, 2, 2, 1, 1, 1, 1]
    adv, metrics = tree_advantage(rewards, tree.batch.response_mask, 4, tree=tree)
    s2 = 1 / math.sqrt(2)
    A = {
        2: (-0.25 - 0.25) * s2,
        3: (0.25 + 0.25) * s2,
        4: (-0.5 - 0.5) * s2,
        5: (0.5 + 0.5) * s2,
        6: 0.25 + 0.5,
        7: -0.75 - 0.5,
        8: 0.5 + 0.0,
        9: 0.5 + 0.0,
    }
    expected = torch.tensor([[A.get(n, 0.0) for n in row] for row in tree.token_node.tolist()])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert adv[tree.token_node < 0].eq(0).all()
    assert metrics["adv/abs_max"] == pytest.approx(1.25)
    # a response mask that hides tokens zeroes them too; int rewards are accepted
    mask = tree.batch.response_mask.clone()
    mask[1, 4] = 0
    adv2, _ = tree_advantage(rewards.long(), mask, 4, tree=tree)
    assert adv2[1, 4] == 0 and torch.allclose(adv2 * mask, expected * mask, atol=1e-6)
    # all rows equal: no signal anywhere
    flat, _ = tree_advantage(torch.ones(8), tree.batch.response_mask, 4, tree=tree)
    assert flat.abs().max() == 0


def test_tree_advantage_needs_the_tree():
    tree = _hand_tree()
    with pytest.raises(ValueError, match="tree"):
        tree_advantage(torch.ones(8), tree.batch.response_mask, 4)
    assert ADVANTAGES.get("tree") is tree_advantage and tree_advantage.requires == frozenset({"tree"})
    assert TreeSampler.provides == ("tree",)


def _values_reference(rewards, tree):
    M = len(tree.parent)
    values, leaves = [0.0] * M, [0] * M
    for m in range(M):
        rows = [i for i in range(len(rewards)) if m in tree.row_nodes[i].tolist()]
        leaves[m] = len(rows)
        values[m] = sum(rewards[i] for i in rows) / max(len(rows), 1)
    return values, leaves


def _advantage_reference(rewards, tree):
    values, leaves = _values_reference(rewards, tree)
    out = []
    for row in tree.token_node.tolist():
        adv_row = []
        for n in row:
            up = tree.parent[n].item() if n >= 0 else -1
            if n < 0 or up < 0:
                adv_row.append(0.0)
                continue
            root = _path(tree, n)[0]
            adv_row.append(((values[n] - values[root]) + (values[n] - values[up])) / math.sqrt(leaves[n]))
        out.append(adv_row)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_node_values_and_tree_advantage_match_loop_reference(addition, seed):
    model, tok, task = addition
    prompts = _prompts(task, 3, seed=seed)
    branching = [(2, 3), (2, 2, 2), (3, 2)][seed]
    tree = tree_rollout(
        model,
        tok,
        prompts,
        branching,
        segment_len=3 - seed % 2,
        max_new_tokens=10,
        temperature=1.3,
        generator=torch.Generator().manual_seed(seed),
    )
    gen = torch.Generator().manual_seed(seed)
    for rewards in [
        (torch.rand(len(tree.batch.completions), generator=gen) < 0.5).float(),
        torch.randn(len(tree.batch.completions), generator=gen),
    ]:
        values, leaves = node_values(rewards, tree)
        ref_values, ref_leaves = _values_reference(rewards.tolist(), tree)
        assert values.tolist() == pytest.approx(ref_values, abs=1e-6) and leaves.tolist() == ref_leaves
        adv, _ = tree_advantage(rewards, tree.batch.response_mask, tree.batch.group_size, tree=tree)
        assert torch.allclose(adv, torch.tensor(_advantage_reference(rewards.tolist(), tree)), atol=1e-5)


# ----------------------------------------------------------------------------------------- trainer runs
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(sampler="flat"),
        dict(sampler="dynamic"),
        dict(sampler="curriculum", sampling={"pool_size": 16}),
        dict(sampler="tree", advantage="tree", sampling={"branching": (2, 2), "segment_len": 3}),
        dict(sampler="tree", advantage="grpo", sampling={"branching": (2, 2), "segment_len": 3}),
    ],
)
def test_every_sampler_trains_and_counts_tokens(kwargs):
    spy = _Spy()
    trainer = Trainer(TrainConfig.build(**FAST, steps=2, **kwargs), callbacks=[spy], progress=False)
    df = trainer.train()
    assert trainer.step == 2 and len(df) == 3
    generated = df["tokens/generated"].iloc[1:]
    assert generated.notna().all() and (generated > 0).all()
    assert df["tokens/cumulative"].iloc[1:].tolist() == pytest.approx(generated.cumsum().tolist())
    assert df["reward/mean"].iloc[1:].notna().all() and df["loss/policy"].iloc[1:].notna().all()
    for (batch, rewards), tokens in zip(spy.batches, generated):
        assert batch.completion_ids.shape[0] == 16 and rewards.shape == (16,)
        if kwargs["sampler"] == "tree":
            assert tokens <= batch.response_mask.sum().item()  # shared prefixes were generated once
        else:
            assert tokens >= batch.response_mask.sum().item()
    if kwargs["sampler"] == "tree":
        for column in ("tree/tokens_shared", "tree/prefill_tokens", "tree/nodes"):
            assert df[column].iloc[1:].notna().all(), column
        assert (df["tree/tokens_shared"].iloc[1:] >= 0).all()


def test_tree_sampler_feeds_its_tree_to_the_advantage():
    trainer = _trainer(sampler="tree", advantage="tree", sampling={"branching": (2, 2), "segment_len": 3})
    out = trainer.sampler.sample(trainer.sampling_context())
    tree = out.context["tree"]
    assert out.batch is tree.batch and out.problems == trainer.task.problems("train", 4, seed=0)
    tok = trainer.tokenizer
    check_tree(tree, tok, out.prompts, (2, 2), 3, 16)
    expanded = [p for p in out.problems for _ in range(4)]
    assert out.rewards.tolist() == trainer.task.reward(expanded, tree.batch.completions)
    assert out.metrics["tokens/generated"] == tree.tokens_generated
    assert out.metrics["tree/tokens_shared"] == tree.tokens_in_batch - tree.tokens_generated
    assert out.metrics["tree/nodes"] == len(tree.parent) - 4
    rewards, context = trainer._context(out)
    assert context["tree"] is tree
    adv, _ = trainer.advantage_fn(rewards, tree.batch.response_mask, 4, **context)
    assert torch.allclose(adv, torch.tensor(_advantage_reference(out.rewards.tolist(), tree)), atol=1e-5)


@pytest.mark.parametrize("seed, step", [(0, 0), (2, 0), (0, 3)])
def test_flat_sampler_reproduces_the_pre_sampler_trainer(seed, step):
    trainer = _trainer(seed=seed)
    trainer.step = step
    out = trainer.sampler.sample(trainer.sampling_context())
    cfg, task = trainer.config, trainer.task
    problems = task.problems("train", 4, seed=seed * 1_000_003 + step)
    assert out.problems == problems
    # the trainer before samplers: rollout with the generator seeded by (seed, step, stream 0)
    prompts = [task.format_prompt(p, "plain") for p in problems]
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step * 7 + 0)
    batch = rollout(
        trainer.model, trainer.tokenizer, prompts, cfg.group_size, cfg.max_new_tokens, cfg.temperature, cfg.top_p, gen
    )
    assert out.prompts == prompts and out.batch.completions == batch.completions
    assert torch.equal(out.batch.completion_ids, batch.completion_ids)
    assert out.rewards.tolist() == task.reward([p for p in problems for _ in range(4)], batch.completions)
    assert out.metrics == {"tokens/generated": batch.response_mask.sum().item()}
    assert out.batch.group_ids.tolist() == torch.arange(4).repeat_interleave(4).tolist()


@pytest.mark.slow
def test_tree_rl_raises_training_reward():
    cfg = TrainConfig(
        task="addition",
        steps=25,
        prompts_per_step=16,
        group_size=8,
        sampler="tree",
        sampling={"branching": (4, 2), "segment_len": 2},
        eval_problems=8,
        eval_samples=1,
        eval_every=0,
        track_kl=False,
        device="cpu",
        seed=0,
        overrides={"advantage": "tree"},
    )
    df = Trainer(cfg, progress=False).train()
    rewards = df["reward/mean"].iloc[1:].tolist()
    assert len(rewards) == 25
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.05


def test_tree_config_without_room_for_the_last_level_fails_at_construction():
    with pytest.raises(ValueError, match="max_new_tokens=16"):
        TrainConfig(sampler="tree", group_size=8, sampling={"branching": (2, 2, 2), "segment_len": 8})


def test_curriculum_with_a_very_narrow_band_still_fills_the_batch():
    config = TrainConfig(
        task="countdown",
        steps=2,
        prompts_per_step=4,
        group_size=4,
        eval_problems=8,
        eval_every=0,
        track_kl=False,
        device="cpu",
        sampler="curriculum",
        sampling={"pool_size": 8, "width": 0.001, "target": 0.0},
    )
    history = Trainer(config, progress=False).train()
    assert (history["curriculum/distinct_prompts"].dropna() == 4).all()
