"""Model-based RL: the learned verifier (features, fit, reward) and the study's runs."""

import pytest
import torch

from rl4lrm.experiments.model_based import (
    answers_after,
    build_run,
    fit_verifier,
    model_based_run,
    rerank_curve,
    run_summary,
    train_run,
)
from rl4lrm.models.zoo import load_base
from rl4lrm.rewards import REWARDS, RewardContext, compute_reward
from rl4lrm.rewards.learned import LOGPROB_NAMES, SURFACE_NAMES, VerifierModel, answer_text, surface_features


@pytest.fixture(scope="module")
def base():
    return load_base("addition", device="cpu")


def test_surface_features_hand_made():
    f = dict(zip(SURFACE_NAMES, surface_features("127").tolist()))
    assert f["len=3"] == f["first=1"] == f["last=7"] == f["bare_integer"] == 1.0
    assert sum(f.values()) == 4.0
    g = dict(zip(SURFACE_NAMES, surface_features("12+345").tolist()))
    assert g["len>4"] == 1.0 and g["bare_integer"] == 0.0
    assert surface_features("").sum() == 1.0  # only len=0
    assert answer_text(" 46\n99") == "46"


@pytest.mark.parametrize("view", ["hidden", "logprob"])
def test_features_shape_and_logprob_values(base, view):
    model, tok, task = base
    vm = VerifierModel(model, tok, task, view=view)
    p = task.problems("test", 3, seed=0)
    x = vm.features(p, [p[0].answer, "1", "12+4"])
    assert x.shape == (3, len(vm.names)) and torch.isfinite(x).all()
    if view == "logprob":
        logp = dict(zip(LOGPROB_NAMES, x[0, : len(LOGPROB_NAMES)].tolist()))
        assert all(v <= 0 for v in logp.values())
        # the base model's own greedy answer is likelier than a wrong one-digit answer
        assert logp["logp/mean"] > x[1, LOGPROB_NAMES.index("logp/mean")]


def test_fit_separates_and_is_exploitable_by_its_cue(base):
    model, tok, task = base
    vm = VerifierModel(model, tok, task, view="logprob", l2=0.01)
    x = torch.zeros(40, len(vm.names))
    last7 = vm.names.index("last=7")
    x[:20, last7] = 1.0  # the positives all end in 7: a cue the model learns
    y = torch.cat([torch.ones(20), torch.zeros(20)])
    vm.fit(x, y)
    p = vm.predict(x)
    assert p[:20].min() > 0.9 and p[20:].max() < 0.1
    assert vm.coefficients()["last=7"] > 1.0 and vm.n_labels == 40


def test_errors_name_the_value(base):
    model, tok, task = base
    with pytest.raises(ValueError, match="view must be one of"):
        VerifierModel(model, tok, task, view="vibes")
    with pytest.raises(ValueError, match="l2 must be"):
        VerifierModel(model, tok, task, l2=-1.0)
    vm = VerifierModel(model, tok, task)
    with pytest.raises(ValueError, match="need features"):
        vm.fit(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="learned_verifier"):
        compute_reward("learned_verifier", [], [], RewardContext())
    with pytest.raises(ValueError, match="mode must be one of"):
        model_based_run("planning")


def test_registered_reward_is_the_model_score(base):
    model, tok, task = base
    vm, _, _ = fit_verifier(model, tok, task, labels=64, view="logprob")
    p = task.problems("test", 4, seed=1)
    answers = [q.answer for q in p]
    assert "learned_verifier" in REWARDS
    r = compute_reward("learned_verifier", p, answers, RewardContext(), verifier=vm)
    assert torch.allclose(r, vm.score(p, answers))


def test_logprob_model_reranks_better_than_random(base):
    model, tok, task = base
    vm, _, _ = fit_verifier(model, tok, task, labels=64, view="logprob")
    curve = rerank_curve(model, tok, task, vm, ns=(1, 4), problems=48, draws=4)
    at4 = curve.set_index("n").loc[4]
    assert at4["learned"] > at4["random"] + 0.15 and at4["oracle"] >= at4["learned"] - 0.05


def test_a_fixed_run_built_then_trained_logs_its_labels():
    # chapter 17 builds the run to keep its trainer; its summary must still count the labels
    trainer, vm = build_run("fixed", steps=1, labels=16, every=1, refit_labels=4, prompts_per_step=4, eval_problems=8)
    h = train_run(trainer, vm, "fixed")
    assert run_summary(h)["labels"] == vm.n_labels == 20 and set(h["mode"]) == {"fixed"}


def test_dyna_run_refits_with_true_labels():
    h = model_based_run(
        "dyna", steps=2, labels=16, every=1, refit_labels=4, prompts_per_step=4, group_size=4, eval_problems=8
    )
    assert h["model/labels"].dropna().tolist() == [20.0, 24.0]
    assert h["reward/learned_verifier"].notna().sum() == 2
    s = run_summary(h)
    assert s["labels"] == 24.0 and s["gap"] == pytest.approx(s["proxy"] - s["true"])


def test_answers_after_scores_what_the_policy_says(base):
    model, tok, task = base
    vm, _, _ = fit_verifier(model, tok, task, labels=32, view="logprob")
    a = answers_after(model, tok, task, vm, problems=6, samples=2)
    assert len(a) == 12 and set(a.correct) <= {0, 1} and a.correct.dtype.kind == "i" and a.learned.between(0, 1).all()
    right = [task.verify(p, ans).correct for p, ans in zip(task.problems("test", 6, 0), a.answer[::2])]
    assert a.correct[::2].tolist() == [int(r) for r in right]
    trainer, none = build_run("verifier", steps=1)
    assert none is None and trainer.config.rewards is None
    with pytest.raises(ValueError, match="view must be one of"):
        build_run("fixed", view="pixels")
