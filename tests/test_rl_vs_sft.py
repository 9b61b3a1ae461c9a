"""Tests for the RL-versus-SFT study: the addition variant with longer operands, task mixtures, the sequence KL,
the study itself (a tiny smoke run), its figures, panel and exercise checkers."""

import random

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rl4lrm.experiments.rl_vs_sft import (  # noqa: E402
    ARMS,
    ROLES,
    RLvsSFTResult,
    check_sequence_kl,
    check_sft_loss,
    rl_vs_sft_study,
    sequence_kl,
)
from rl4lrm.models.zoo import ZOO, load_task  # noqa: E402
from rl4lrm.tasks import Addition, Chain, Mixture, Problem, get_task  # noqa: E402

# --- the addition variant ---------------------------------------------------------------------


def test_min_digits_one_is_the_old_addition():
    old, new = Addition(digits=2), Addition(digits=2, min_digits=1)
    assert [p.key for p in old.problems("train", 50, seed=3)] == [p.key for p in new.problems("train", 50, seed=3)]


def test_min_digits_bounds_every_operand():
    task = Addition(digits=3, min_digits=3)
    rng = random.Random(0)
    for _ in range(500):
        p = task.sample(rng)
        assert 100 <= p.meta["a"] <= 999 and 100 <= p.meta["b"] <= 999
        assert task.verify(p, p.answer).correct
    assert {len(str(Addition(digits=2, min_digits=2).sample(rng).meta["a"])) for _ in range(200)} == {2}


@pytest.mark.parametrize("kwargs, message", [({"min_digits": 0}, "min_digits.*1..2"), ({"min_digits": 3}, "1..2.*3")])
def test_min_digits_out_of_range_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Addition(digits=2, **kwargs)


# --- mixtures ---------------------------------------------------------------------------------

PARTS = {"add": ("addition", {"digits": 2}), "chain": ("chain", {})}


def test_mixture_problems_keep_their_part_split_and_verifier():
    mix = Mixture(PARTS)
    problems = mix.problems("test", 200, seed=1)
    assert {p.meta["part"] for p in problems} == {"add", "chain"}
    for p in problems:
        part = mix.part(p.meta["part"])
        bare = Problem(p.question, p.prompt, p.answer, p.meta, p.key.split("|", 1)[1])
        assert part.split_of(bare) == "test" and mix.split_of(p) == "test"
        assert mix.verify(p, p.answer).correct and not mix.verify(p, p.answer + "1").correct
    # a part's own test problems are those of its task built alone
    assert [p.key for p in mix.part("add").problems("test", 20)] == [
        p.key for p in Addition(digits=2).problems("test", 20)
    ]
    assert set(mix.alphabet) == set(Addition.alphabet) | set(Chain.alphabet)


def test_mixture_weights_set_the_part_frequencies():
    mix = Mixture(PARTS, weights={"add": 3.0, "chain": 1.0})
    rng = random.Random(0)
    share = sum(mix.sample(rng).meta["part"] == "add" for _ in range(4000)) / 4000
    assert share == pytest.approx(0.75, abs=0.03)


def test_mixture_verify_never_raises_on_a_foreign_problem():
    foreign = Addition().problems("test", 1)[0]
    verdict = Mixture(PARTS).verify(foreign, foreign.answer)
    assert not verdict.correct and "not a problem of this mixture" in verdict.reason


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"parts": {}}, "non-empty"),
        ({"parts": {"a|b": ("addition", {})}}, "without '\\|'"),
        ({"parts": {"a": "addition"}}, "must be \\(task name, kwargs\\)"),
        ({"parts": {"a": ("nope", {})}}, "unknown task 'nope'"),
        ({"parts": {"a": ("mixture", {})}}, "cannot contain a mixture"),
        ({"parts": PARTS, "weights": {"add": 1.0}}, "exactly the parts"),
        ({"parts": PARTS, "weights": {"add": 1.0, "chain": 0}}, "> 0"),
    ],
)
def test_mixture_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Mixture(**kwargs)


def test_mixture_names_its_parts_and_is_registered():
    assert isinstance(get_task("mixture", parts=PARTS), Mixture)
    with pytest.raises(ValueError, match="unknown part 'x'.*'add', 'chain'"):
        Mixture(PARTS).part("x")


def test_generalist_parts_are_the_roles():
    assert ZOO["generalist"].task == "mixture" and set(load_task("generalist").parts) == set(ROLES)


# --- sequence KL ------------------------------------------------------------------------------


def test_sequence_kl_matches_a_loop_over_tokens_and_vocabulary():
    gen = torch.Generator().manual_seed(0)
    logits, ref = torch.randn(3, 4, 5, generator=gen), torch.randn(3, 4, 5, generator=gen)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]).float()
    got = sequence_kl(logits, ref, mask)
    for n in range(3):
        want = 0.0
        for t in range(int(mask[n].sum())):
            p, q = logits[n, t].softmax(-1), ref[n, t].softmax(-1)
            want += sum(p[v] * (p[v].log() - q[v].log()) for v in range(5)).item()
        assert got[n].item() == pytest.approx(want, abs=1e-5)
    assert (got > 0).all()
    assert torch.allclose(sequence_kl(logits, logits, mask), torch.zeros(3), atol=1e-6)


def test_exercise_checkers_accept_the_library_and_reject_mistakes(capsys):
    assert check_sequence_kl(sequence_kl)
    reverse = lambda logits, ref, mask: sequence_kl(ref, logits, mask)  # noqa: E731 (KL(ref || pi))
    assert not check_sequence_kl(reverse)
    assert check_sft_loss(lambda lp, mask: -(lp * mask).sum() / mask.sum())
    per_answer = lambda lp, mask: -((lp * mask).sum(1) / mask.sum(1)).mean()  # noqa: E731 (seq_mean_token_mean)
    assert not check_sft_loss(per_answer)
    detached = lambda lp, mask: torch.tensor((-(lp * mask).sum() / mask.sum()).item())  # noqa: E731
    assert not check_sft_loss(detached)
    assert "gradient" in capsys.readouterr().out


# --- the study ----------------------------------------------------------------------------------

TINY = dict(steps=2, eval_problems=4, eval_samples=2, prompts_per_step=2, group_size=2, max_new_tokens=8)


@pytest.fixture(scope="module")
def tiny_result():
    stages = []
    result = rl_vs_sft_study(on_stage=stages.append, **TINY)
    result.stages = stages
    return result


def test_tiny_study_measures_every_arm_on_every_part(tiny_result):
    r = tiny_result
    assert isinstance(r, RLvsSFTResult)
    assert list(dict.fromkeys(r.table["arm"])) == ["base", *ARMS]
    assert set(r.table["role"]) == set(ROLES.values()) and len(r.table) == 4 * 3
    assert r.table["accuracy"].between(0, 1).all() and (r.table["kl"] > -1e-4).all()
    assert r.table.query("arm == 'base'")["kl"].abs().max() < 1e-5  # the base against itself
    runs = r.runs.set_index("arm")
    assert runs["sequences"].tolist() == [2 * 4] * 3  # equal budget: steps x B*G sequences per arm
    assert runs.loc["sft+rl", ["SFT steps", "RL steps"]].tolist() == [1, 1]
    assert runs.loc["rl", "sampled answers"] == 8 and runs.loc["sft", "sampled answers"] == 0
    assert set(r.histories["sft+rl"]["stage"]) == {"sft", "rl"} and set(r.histories["sft"]["stage"]) == {"sft"}
    assert list(r.summary().index) == ["base", *ARMS] and r.summary().shape[1] == 6
    assert list(r.delta().index) == list(ARMS)
    assert r.settings["kl_coef"] == 0.0 and r.settings["sft_lr"] == r.settings["lr"]
    assert any("training: sft" in s for s in r.stages) and any("measuring: chain" in s for s in r.stages)


def test_study_leaves_the_zoo_model_alone_and_base_weights_intact(tiny_result):
    from rl4lrm.models.zoo import load_base

    fresh, _, _ = load_base("generalist")
    base = tiny_result.models["base"].state_dict()
    assert all(torch.equal(v, base[k]) for k, v in fresh.state_dict().items())
    moved = tiny_result.models["sft"].state_dict()
    assert any(not torch.equal(v, moved[k]) for k, v in base.items())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arms": ["dpo"]}, "arms must be"),
        ({"arms": []}, "arms must be"),
        ({"sft_share": 1.0}, "sft_share"),
        ({"base": "addition"}, "mixture.*generalist"),
        ({"train_part": "nope"}, "unknown part 'nope'"),
        ({"steps": 1}, "steps >= 2"),
        ({"sft_lr": 0.0}, "sft_lr"),
        ({"kl_coef": -1.0}, "kl_coef"),
    ],
)
def test_study_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rl_vs_sft_study(**{**TINY, "steps": 2, **kwargs})


def test_figures_draw_every_arm(tiny_result):
    from rl4lrm.viz import plot_razor, plot_rl_vs_sft

    fig = plot_rl_vs_sft(tiny_result, title="t")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["base", *ARMS] and len(fig.axes) == 2
    seeds = pd.concat([tiny_result.table.assign(seed=s) for s in (0, 1)])
    ax = plot_razor(seeds, "in distribution", "other task").axes[0]
    assert ax.get_legend_handles_labels()[1] == list(ARMS)
    with pytest.raises(ValueError, match="unknown role 'x'"):
        plot_razor(seeds, "x", "other task")


def test_panel_reads_its_controls_at_run_time():
    from rl4lrm.viz import RLvsSFTPanel

    study = {k: v for k, v in TINY.items() if k != "steps"}
    panel = RLvsSFTPanel(arms=("sft",), steps=2, **study)
    panel.controls["arms"].value = ("rl", "sft")  # the clicks' order; the study's order wins
    panel.controls["seed"].value = 3
    panel.controls["kl_coef"].value = 0.05
    settings = panel.settings()
    assert settings["arms"] == ["sft", "rl"] and settings["seed"] == 3 and settings["kl_coef"] == 0.05
    result = panel.run()
    assert result.settings["arms"] == ["sft", "rl"] and result.settings["seed"] == 3
    assert result.settings["kl_coef"] == 0.05
    assert panel.progress.value == panel.progress.max and "points" in panel.status.value
    panel.controls["arms"].value = ()
    assert panel.run() is None and "select at least one arm" in panel.status.value
    with pytest.raises(ValueError, match="arms must be"):
        RLvsSFTPanel(arms=("ppo",))
