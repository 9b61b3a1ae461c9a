"""Canned studies: the KL-estimator Monte Carlo, preset comparisons and their panel, exercise checkers."""

import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from rl4lrm.exercises import _wrapped, brief, check_aggregation_weights, check_kl_k3, check_rloo  # noqa: E402
from rl4lrm.experiments.compare import compare_presets, final_table, staged_comparison  # noqa: E402
from rl4lrm.experiments.kl_estimators import kl_estimator_study  # noqa: E402
from rl4lrm.viz import ComparisonPanel, plot_comparison  # noqa: E402

SMALL = dict(
    task="addition",
    prompts_per_step=4,
    group_size=4,
    eval_problems=8,
    eval_samples=2,
    eval_every=1,
    max_new_tokens=6,
    device="cpu",
)


def test_kl_study_reproduces_schulmans_table():
    policy, ref = torch.tensor([1.0, 0.0, -1.0, 0.5]), torch.tensor([0.0, 0.3, 0.0, 0.0])
    table = kl_estimator_study(policy, ref, n_samples=32, n_repeats=400).set_index("estimator")
    true = table["true KL"].iloc[0]
    p, q = torch.softmax(policy, 0), torch.softmax(ref, 0)
    assert true == pytest.approx((p * (p / q).log()).sum().item(), rel=1e-6)
    stderr = table["std"] / 400**0.5
    assert abs(table.loc["k1", "bias"]) < 4 * stderr["k1"] and abs(table.loc["k3", "bias"]) < 4 * stderr["k3"]
    assert table.loc["k3", "std"] < table.loc["k1", "std"]  # k3: unbiased and lower variance
    # as a loss: k1's gradient vanishes in expectation, k2 follows KL(π‖ref), k3 follows KL(ref‖π)
    assert table.loc["k1", "grad error vs KL(π‖ref)"] > 0.8
    assert table.loc["k2", "grad error vs KL(π‖ref)"] < 0.1 < table.loc["k2", "grad error vs KL(ref‖π)"]
    assert table.loc["k3", "grad error vs KL(ref‖π)"] < 0.1 < table.loc["k3", "grad error vs KL(π‖ref)"]


def test_kl_study_validates_inputs():
    with pytest.raises(ValueError, match="shape"):
        kl_estimator_study(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="n_repeats >= 2"):
        kl_estimator_study(torch.zeros(3), torch.zeros(3), n_repeats=1)


def test_compare_presets_returns_every_run_and_a_final_table():
    runs = compare_presets(
        {"grpo": {"preset": "grpo"}, "dapo sym": {"preset": "dapo", "clip_high": 0.2}},
        seeds=(0, 1),
        progress=False,
        steps=2,
        **SMALL,
    )
    assert set(runs["method"]) == {"grpo", "dapo sym"} and set(runs["seed"]) == {0, 1}
    assert len(runs) == 2 * 2 * 3
    table = final_table(runs)
    assert list(table.index) == ["grpo", "dapo sym"] and table[("acc/pass@1", "mean")].between(0, 1).all()


def test_compare_presets_rejects_unknown_methods_before_training():
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        compare_presets(["grpo", "nope"], steps=1, **SMALL)
    with pytest.raises(ValueError, match="steps"):
        compare_presets(["grpo"], steps=0, **SMALL)


def test_staged_comparison_labels_each_stage_and_relays_every_run_so_far():
    settings = {k: v for k, v in SMALL.items() if k != "task"} | {"steps": 1}
    stages = [
        ("addition", {"grpo": {"preset": "grpo", **settings}}, lambda runs: runs.assign(stage="a")),
        (
            "countdown",
            {"grpo": {"preset": "grpo", **settings}, "rloo": {"preset": "rloo", **settings}},
            lambda runs: runs.assign(stage="b"),
        ),
    ]
    seen = []
    runs = staged_comparison(stages, on_run_end=seen.append, progress=False)
    assert runs.groupby("stage", sort=False)["method"].unique().map(list).to_dict() == {
        "a": ["grpo"],
        "b": ["grpo", "rloo"],
    }
    assert [len(df.groupby(["stage", "method"])) for df in seen] == [1, 2, 3]  # one more run each time, labelled
    assert seen[-1]["stage"].notna().all() and len(seen[-1]) == len(runs)


def test_comparison_panel_run_draws_mean_and_std():
    panel = ComparisonPanel(
        presets=("grpo", "reinforce"),
        seeds=2,
        steps=2,
        **{k: v for k, v in SMALL.items() if k != "task"},
        task="addition",
    )
    runs = panel.run()
    assert runs.groupby(["method", "seed"]).ngroups == 4
    assert "held-out pass@1" in panel.status.value and not panel.button.disabled
    assert panel.presets.rows == len(panel.presets.options)  # no selected method scrolled out of view
    fig = plot_comparison(runs)
    assert len(fig.axes[0].collections) == 2  # one ±std band per method
    panel.presets.value = ()
    with pytest.raises(ValueError, match="select 1 to 4 methods"):
        panel.run()
    with pytest.raises(ValueError, match="unknown methods"):
        ComparisonPanel(presets=("nope",))


def test_new_exercise_checkers_accept_the_right_answer_and_catch_wrong_ones():
    rloo = lambda r, G: (r.view(-1, G) - (r.view(-1, G).sum(1, keepdim=True) - r.view(-1, G)) / (G - 1)).reshape(-1)  # noqa: E731
    centred = lambda r, G: (r.view(-1, G) - r.view(-1, G).mean(1, keepdim=True)).reshape(-1)  # noqa: E731
    assert check_rloo(rloo) and not check_rloo(centred)
    assert check_kl_k3(lambda lp, ref: (ref - lp).exp() - 1 - (ref - lp)) and not check_kl_k3(lambda lp, ref: lp - ref)
    token_mean = lambda mask, mode: mask / mask.sum()  # noqa: E731
    assert not check_aggregation_weights(token_mean)

    def stub(*args):
        raise NotImplementedError

    assert not check_rloo(stub)


def test_checker_messages_show_short_numbers(capsys):
    shown = brief({"a": [1 / 3, (2 / 3, 7)], "b": torch.tensor([0.123456])})
    assert shown == {"a": [0.3333, (0.6667, 7)], "b": [0.1235]}
    assert not check_kl_k3(lambda lp, ref: lp - ref)
    message = capsys.readouterr().out
    assert "✗ k3 estimator" in message and not any(len(n) > 7 for n in re.findall(r"\d+\.\d+", message))
    assert max(map(len, message.splitlines())) <= 110  # broken at spaces: Jupyter would break a number
    words = lambda text: text.split()  # noqa: E731
    assert words(_wrapped("✗ a: " + "0.1234 " * 40)) == words("✗ a: " + "0.1234 " * 40)  # nothing lost


def test_length_bias_study_grpo_lengthens_wrong_answers_dr_grpo_does_not():
    from rl4lrm.experiments.length_bias import length_bias_study

    for seed in (0, 1, 2):
        grpo = length_bias_study("seq_mean_token_mean", "grpo", steps=150, seed=seed)
        dr = length_bias_study("seq_mean_token_sum_norm", "dr_grpo", steps=150, seed=seed)
        start = grpo["expected/wrong"].iloc[0]
        assert dr["expected/wrong"].iloc[0] == start
        assert grpo["expected/wrong"].iloc[-1] > start + 10 and grpo["expected/correct"].iloc[-1] < start - 1
        assert abs(dr["expected/wrong"].iloc[-1] - start) < 5 and abs(dr["expected/correct"].iloc[-1] - start) < 5


def test_length_bias_toy_rollouts_are_consistent():
    from rl4lrm.experiments.length_bias import _sample

    z = torch.tensor([-1.0, 2.0], requires_grad=True)
    correct = torch.tensor([True, False] * 50)
    logprobs, mask, lengths = _sample(z, correct, answer_len=3, max_dots=5, gen=torch.Generator().manual_seed(0))
    assert logprobs.shape == mask.shape == (100, 9)
    assert ((lengths >= 4) & (lengths <= 8)).all()  # answer, 0..5 dots, EOS unless the cap was hit
    assert (logprobs[mask == 0] == 0).all() and (logprobs[:, :3] == 0).all()  # answer tokens are not trained
    logprobs.sum().backward()
    assert (z.grad != 0).all()
    right, wrong = lengths[correct].float().mean(), lengths[~correct].float().mean()
    assert right > wrong  # sigmoid(2) > sigmoid(-1): after a right answer this policy writes more dots


def test_length_bias_study_validates():
    from rl4lrm.experiments.length_bias import length_bias_study

    with pytest.raises(ValueError, match="unknown aggregation 'sum'"):
        length_bias_study("sum")
    with pytest.raises(ValueError, match="p_correct"):
        length_bias_study(p_correct=1.0)
    with pytest.raises(ValueError, match="unknown advantage estimator 'nope'"):
        length_bias_study(advantage="nope")
