"""Chapter 09's pieces: solution scores from step scores, best-of-N / majority / oracle curves, label flipping, the
ORM's records, the verifier config, the RL reward arms, a small end-to-end study, the panel and the checkers."""

import math

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from rl4lrm.experiments.process_exercises import check_best_of_n_pick, check_solution_score  # noqa: E402
from rl4lrm.experiments.process_outcome import VerifierConfig, noise_study, rerank_study  # noqa: E402
from rl4lrm.experiments.process_rl import REWARD_ARMS, proxy_vs_gold, reward_arms, rl_study  # noqa: E402
from rl4lrm.models.zoo import load_task  # noqa: E402
from rl4lrm.rewards.prm import step_record  # noqa: E402
from rl4lrm.rewards.rerank import (  # noqa: E402
    aggregate_steps,
    answer_ids,
    best_of_n,
    flip_labels,
    majority_at_n,
    oracle_at_n,
    outcome_record,
)


def test_aggregate_steps_hand_example():
    steps = [[0.9, 0.5, 0.8], [], [0.2]]
    torch.testing.assert_close(aggregate_steps(steps, "min"), torch.tensor([0.5, 0.0, 0.2]))
    torch.testing.assert_close(aggregate_steps(steps, "prod"), torch.tensor([0.36, 0.0, 0.2]))
    torch.testing.assert_close(aggregate_steps(steps, "last"), torch.tensor([0.8, 0.0, 0.2]))
    with pytest.raises(ValueError, match="min"):
        aggregate_steps(steps, "mean")


def test_best_of_n_hand_example():
    # problem 0: the verifier ranks the right sample first; problem 1: it ranks a wrong one first
    scores = torch.tensor([[0.9, 0.1, 0.2], [0.9, 0.1, 0.2]])
    correct = torch.tensor([[1.0, 0, 0], [0.0, 1, 0]])
    # N = M: every subset is the whole pool, so exactly one of two problems is right
    assert best_of_n(scores, correct, [3], draws=5).item() == pytest.approx(0.5)
    # N = 1 is a random sample: the mean correctness, 1/3, up to the sampling of subsets
    assert best_of_n(scores, correct, [1], draws=400).item() == pytest.approx(1 / 3, abs=0.05)
    with pytest.raises(ValueError, match="pool size"):
        best_of_n(scores, correct, [4])


def test_majority_and_oracle_hand_example():
    answers = [["3", "3", "5", None], ["7", "8", None, None]]
    ids, valid = answer_ids(answers)
    assert ids.tolist() == [[0, 0, 2, 3], [0, 1, 2, 2]] and valid.tolist()[1] == [True, True, False, False]
    correct = torch.tensor([[1.0, 1, 0, 0], [0.0, 1, 0, 0]])
    # all four: "3" wins problem 0 (2 votes); problem 1 ties 7/8 and the malformed ones never win
    acc = majority_at_n(ids, valid, correct, [4], draws=400).item()
    assert acc == pytest.approx(0.5 + 0.5 * 0.5, abs=0.06)
    torch.testing.assert_close(oracle_at_n(correct, [1, 4]), torch.tensor([(0.5 + 0.25) / 2, 1.0]))


def test_flip_labels_flips_exactly_the_fraction():
    records = [{"prefix_ok": [1.0, 1.0, 0.0]} for _ in range(10)]
    flipped = flip_labels(records, "prefix_ok", 0.1, seed=3)
    changed = sum(a != b for r, f in zip(records, flipped) for a, b in zip(r["prefix_ok"], f["prefix_ok"]))
    assert changed == 3 and records[0]["prefix_ok"] == [1.0, 1.0, 0.0]  # the input is not modified
    assert flip_labels(records, "prefix_ok", 0.0) == [{"prefix_ok": [1.0, 1.0, 0.0]} for _ in range(10)]
    with pytest.raises(ValueError, match="fraction"):
        flip_labels(records, "prefix_ok", 1.5)


def test_outcome_and_step_records_on_chain():
    task = load_task("chain")
    problem = task.problems("test", 1, seed=0)[0]
    right, wrong = problem.answer, problem.answer + "\n1"  # an extra line makes the final answer wrong
    assert outcome_record(task, problem, right)["outcome"] == [1.0]
    assert outcome_record(task, problem, right)["chars"] == [len(right) - 1]
    assert outcome_record(task, problem, wrong)["outcome"] == [0.0]
    assert outcome_record(task, problem, "  ")["chars"] == []
    rec = step_record(task, problem, wrong)
    assert rec["prefix_ok"] == [True] * task.num_steps(problem) + [False]


def test_config_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="label must be one of"):
        VerifierConfig(label="soft")
    with pytest.raises(ValueError, match="noise must be in"):
        VerifierConfig(noise=0.7)
    with pytest.raises(ValueError, match="train_problems"):
        VerifierConfig(train_problems=2)


def test_reward_arms_need_a_prm():
    assert reward_arms(["outcome"]) == {"outcome": {"preset": "grpo", "rewards": {"correct": 1.0}}}
    with pytest.raises(ValueError, match="needs a trained PRM"):
        reward_arms(["process (PRM)"])
    with pytest.raises(ValueError, match="unknown reward arms"):
        reward_arms(["vibes"])
    assert set(REWARD_ARMS) >= {"outcome", "process (true steps)"}


@pytest.mark.slow
def test_small_studies_end_to_end():
    config = VerifierConfig(train_problems=32, samples_per_problem=2, steps=20)
    curves, verifiers, pool = rerank_study(config, n_problems=16, m=4, ns=(1, 4), draws=4)
    assert set(curves["method"]) == {"PRM (min)", "PRM (prod)", "PRM (last)", "ORM", "majority vote", "oracle (pass@N)"}
    assert curves["accuracy"].between(0, 1).all() and pool.correct.shape == (16, 4)
    oracle = curves[curves["method"] == "oracle (pass@N)"].set_index("N")["accuracy"]
    assert oracle[4] >= oracle[1]
    noise = noise_study((0.0, 0.3), n_problems=16, m=4, draws=2, clean=verifiers)
    assert noise["flipped labels"].tolist()[0] == 0 and noise["flipped labels"].tolist()[1] > 0
    assert all(0 <= a <= 1 for a in noise["step AUC"] if not math.isnan(a))
    runs = rl_study(reward_arms(["outcome", "process (PRM)"], prm=verifiers.prm), steps=2, eval_every=2,
                    prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=2, device="cpu")  # fmt: skip
    assert set(runs["method"]) == {"outcome", "process (PRM)"} and (runs.groupby("method")["tokens"].max() > 0).all()
    assert "reward/prm" in runs


def test_proxy_vs_gold_table():
    import pandas as pd

    history = pd.DataFrame({"step": [0, 1, 2], "reward/prm": [None, 0.5, 0.7], "reward/correct": [None, 0.4, 0.2],
                            "kl/k3": [None, 0.0, 0.1]})  # fmt: skip
    table = proxy_vs_gold(history, window=2)
    assert list(table.columns) == ["proxy (PRM)", "gold (verifier)", "KL to start"]
    assert table.loc[2, "proxy (PRM)"] == pytest.approx(0.6)


@pytest.mark.slow
def test_panel_runs():
    from rl4lrm.viz.process_outcome import ProcessOutcomePanel

    panel = ProcessOutcomePanel(n_max=4, rl_steps=0, verifier_steps=50)
    result = panel.run()
    assert set(result["curves"]["N"]) == {1, 2, 4} and result["runs"] is None
    assert "best-of-4" in panel.status.value


def test_checkers_pass_the_library_and_fail_a_wrong_answer():
    assert check_solution_score(lambda s, how: aggregate_steps([s], how).item())
    assert not check_solution_score(lambda s, how: sum(s) / len(s) if s else 0.0)
    pick = lambda scores, correct: correct.gather(1, scores.argmax(1, keepdim=True)).mean().item()  # noqa: E731
    assert check_best_of_n_pick(pick)
    assert not check_best_of_n_pick(lambda scores, correct: correct.max(1).values.mean().item())  # that is the oracle
