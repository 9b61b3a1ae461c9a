"""Tests for dense step rewards, the implicit PRM, Monte-Carlo step labels and the learned PRM."""

import math
import random

import pandas as pd
import pytest
import torch

import rl4lrm.rewards.dense as dense
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rewards import RewardContext, RewardMix, compute_reward
from rl4lrm.rewards.prm import evaluate_prm, mc_step_labels, prm_scores, train_prm
from rl4lrm.rollout import RolloutBatch, rollout
from rl4lrm.tasks import Chain, Problem, get_task
from rl4lrm.utils import auroc as auc

TASK = Chain()
# 7; +5; *2; -3  ->  12, 24, 21
PROBLEM = Problem(
    "",
    "7;+5;*2;-3=",
    "12\n24\n21",
    {"start": 7, "ops": (("+", 5), ("*", 2), ("-", 3)), "values": (12, 24, 21)},
    "7;+5;*2;-3",
)
TOK = char_tokenizer()


def make_batch(tokenizer, prompts, completions, ids=None):
    """A RolloutBatch of the given texts (or completion token ids), prompts left- and completions right-padded."""
    if ids is None:
        ids = [tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for c in completions]
    T = max(len(x) for x in ids)
    comp = torch.full((len(ids), T), tokenizer.pad_token_id)
    mask = torch.zeros(len(ids), T)
    for i, x in enumerate(ids):
        comp[i, : len(x)], mask[i, : len(x)] = torch.tensor(x), 1.0
    enc = tokenizer(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    return RolloutBatch(
        enc["input_ids"],
        enc["attention_mask"],
        comp,
        mask,
        torch.zeros(len(ids), T),
        torch.arange(len(ids)),
        torch.zeros(len(ids), dtype=torch.bool),
        list(completions),
        1,
        1.0,
    )


def step_rewards(completions, **params):
    batch = make_batch(TOK, [PROBLEM.prompt] * len(completions), completions)
    ctx = RewardContext(task=TASK, batch=batch, tokenizer=TOK)
    return compute_reward("step_correct", [PROBLEM] * len(completions), completions, ctx, **params)


@pytest.mark.parametrize(
    "completion, expected_positions, total",
    [
        ("12\n24\n21", [1, 4, 7], 1.0),  # all right: 1/3 on the last digit of each step
        ("13\n24\n21", [], 0.0),  # first step wrong: nothing after the first error
        ("12\n24\n20", [1, 4], 2 / 3),  # last step wrong
        ("12\nab\n21", [1], 1 / 3),  # malformed line
        ("", [], 0.0),  # empty
        ("12\n24\n21\n9", [1, 4, 7], 1.0),  # an extra line earns nothing
        ("12\n2", [1], 1 / 3),  # truncated mid-number
        ("12\n\n21", [1], 1 / 3),  # empty line
    ],
)
def test_step_correct_hand_made(completion, expected_positions, total):
    row = step_rewards([completion])[0]
    assert row.nonzero().flatten().tolist() == expected_positions
    assert math.isclose(row.sum().item(), total, abs_tol=1e-6)
    assert torch.allclose(row[expected_positions], torch.full((len(expected_positions),), 1 / 3))


def test_step_correct_error_penalty_sits_on_the_first_wrong_step():
    rows = step_rewards(["13\n24\n21", "12\n24\n21\n9", "12\n\n21", "12\n24\n21"], error_penalty=1.0)
    assert rows[0].tolist()[:2] == [0.0, -1.0] and rows[0].sum() == -1.0  # on "3", nothing after
    assert rows[1, 9] == -1.0 and math.isclose(rows[1].sum().item(), 0.0, abs_tol=1e-6)  # the extra "9"
    assert rows[2, 3] == -1.0  # an empty line: its newline token carries the penalty
    assert math.isclose(rows[3].sum().item(), 1.0, abs_tol=1e-6)
    with pytest.raises(ValueError, match="error_penalty"):
        step_rewards(["12"], error_penalty=-1.0)


def test_step_rewards_are_zero_off_the_response_and_need_a_step_task():
    rows = step_rewards(["12\n24\n21", "12"])
    assert rows.shape == (2, 9) and (rows[1, 3:] == 0).all()
    batch = make_batch(TOK, ["1+1="], ["2"])
    with pytest.raises(ValueError, match="step_verdicts"):
        compute_reward(
            "step_correct",
            [get_task("addition").sample(random.Random(0))],
            ["2"],
            RewardContext(task=get_task("addition"), batch=batch, tokenizer=TOK),
        )


class MultiCharTokenizer:
    """A tokenizer whose tokens span several characters and cross step boundaries."""

    pieces = {0: "<pad>", 2: "<eos>", 5: "12", 6: "\n2", 7: "4\n", 8: "2", 9: "1", 10: "\n"}
    pad_token_id, eos_token_id = 0, 2

    def batch_decode(self, rows, skip_special_tokens=True):
        return ["".join(self.pieces[i] for i in row if i not in (0, 2)) for row in rows]


def test_alignment_with_multi_char_tokens():
    tok = MultiCharTokenizer()
    ids = [[5, 6, 7, 8, 9, 2]]  # "12" "\n2" "4\n" "2" "1" <eos>  ->  "12\n24\n21"
    batch = make_batch(TOK, [PROBLEM.prompt], ["12\n24\n21"], ids=ids)
    assert dense.token_char_ends(tok, ids[0]) == [2, 4, 6, 7, 8, 8]
    row = compute_reward(
        "step_correct", [PROBLEM], ["12\n24\n21"], RewardContext(task=TASK, batch=batch, tokenizer=tok)
    )[0]
    # "12" ends in token 0, "24" ends on its "4" inside token 2 ("4\n"), "21" ends in token 4 ("1")
    assert torch.allclose(row, torch.tensor([1, 0, 1, 0, 1, 0]) / 3.0)


def test_dense_reward_in_a_mix_sums_over_tokens():
    completions = ["12\n24\n21", "12\n25\n21"]
    batch = make_batch(TOK, [PROBLEM.prompt] * 2, completions)
    ctx = RewardContext(task=TASK, batch=batch, tokenizer=TOK)
    total, parts, token = RewardMix({"correct": 1.0, "step_correct": 0.5})([PROBLEM] * 2, completions, ctx)
    assert torch.allclose(total, torch.tensor([1.0 + 0.5, 1.0 + 0.5 / 3]))
    assert torch.allclose(token, 0.5 * parts["step_correct"])


# --- step rewards to token advantages -------------------------------------------------------------


def test_step_returns_and_comparison_table():
    step = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0], [0.0, 0.5, 0.0, 0.0, 0.0]])  # (N, T)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0.0]])
    returns = dense.step_returns(step, mask)
    assert returns.tolist() == [[1.0, 1.0, 0.5, 0.5, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0]]
    assert dense.step_returns(step, mask, torch.tensor([1.0, 0.0]))[0, 0] == 2.0
    table = dense.compare_step_and_outcome(step, torch.tensor([1.0, 0.0]), mask, group_size=2)
    assert isinstance(table, pd.DataFrame) and len(table) == 9
    assert set(table[table.row == 0].grpo_advantage.round(4)) == {0.7071}  # one value per row for GRPO
    assert table[table.row == 1].step_return.tolist() == [0.5, 0.5, 0.0, 0.0]


# --- the implicit PRM ------------------------------------------------------------------------------


def tiny_pair_and_batch():
    policy, ref = tiny_model("nano", TOK, seed=0), tiny_model("nano", TOK, seed=1)
    batch = rollout(
        policy,
        TOK,
        ["7;+5;*2=", "3;*3="],
        group_size=2,
        max_new_tokens=6,
        temperature=1.0,
        generator=torch.Generator().manual_seed(0),
    )
    return policy, ref, batch


def manual_logprobs(model, batch):
    """Loop reference: log p(token t) from one unpadded forward per row."""
    out = torch.zeros(batch.completion_ids.shape)
    for i in range(len(batch.completions)):
        prompt = batch.prompt_ids[i][batch.prompt_mask[i].bool()]
        n = int(batch.response_mask[i].sum())
        ids = torch.cat([prompt, batch.completion_ids[i, :n]])[None]
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        for t in range(n):
            out[i, t] = logp[len(prompt) + t - 1, ids[0, len(prompt) + t]]
    return out


def test_implicit_prm_is_beta_times_the_log_ratio():
    policy, ref, batch = tiny_pair_and_batch()
    problems = [PROBLEM] * len(batch.completions)
    reward = compute_reward(
        "implicit_prm", problems, batch.completions, RewardContext(batch=batch, model=policy, ref_model=ref), beta=0.1
    )
    with torch.no_grad():
        expected = 0.1 * (manual_logprobs(policy, batch) - manual_logprobs(ref, batch)) * batch.response_mask
    assert torch.allclose(reward, expected, atol=1e-5) and reward.abs().sum() > 0
    same = compute_reward(
        "implicit_prm", problems, batch.completions, RewardContext(batch=batch, model=policy, ref_model=policy)
    )
    assert (same == 0).all()
    other = compute_reward(
        "implicit_prm",
        problems,
        batch.completions,
        RewardContext(batch=batch, model=policy, ref_model=ref),
        beta=0.1,
        implicit_model=ref,
    )
    assert (other == 0).all()  # a separately given implicit model replaces ctx.model


def test_implicit_prm_loss_hand_computed():
    logprobs = torch.tensor([[-1.0, -2.0], [-1.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[-2.0, -2.0], [-1.0, -5.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, metrics = dense.implicit_prm_loss(logprobs, ref, mask, torch.tensor([1.0, 0.0]), beta=0.5)
    # sequence logits: 0.5 * (1 + 0) = 0.5 and 0.5 * 0 = 0 (the second token is masked)
    expected = (math.log1p(math.exp(-0.5)) + math.log(2)) / 2
    assert math.isclose(loss.item(), expected, rel_tol=1e-6) and metrics["implicit_prm/acc"] == 1.0
    loss.backward()
    assert logprobs.grad[1, 1] == 0


# --- Monte-Carlo labels and the learned PRM -------------------------------------------------------


def oracle(prompts, n):
    """Continues any prefix with the true remaining steps (from the true running values)."""
    out = []
    for prompt in prompts:
        head, _, written = prompt.partition("=")
        k = written.count("\n") + 1 if written else 0
        values = [int(v) for v in PROBLEM.answer.split("\n")]
        out += ["".join(f"\n{v}" for v in values[k:])] * n
    return out


def own_value(prompts, n):
    """Continues from its own last written value: a wrong step stays wrong to the end."""
    out = []
    for prompt in prompts:
        head, _, written = prompt.partition("=")
        value = int(written.split("\n")[-1])
        ops = PROBLEM.meta["ops"][written.count("\n") + 1 :]
        text = ""
        for op, b in ops:
            value = {"+": value + b, "-": value - b, "*": value * b}[op]
            text += f"\n{value}"
        out += [text] * n
    return out


def test_mc_labels_hand_made():
    completions = ["12\n24\n21", "13\n26\n23", "12\n25\n22"]
    records = mc_step_labels(None, TOK, TASK, [PROBLEM] * 3, 4, completions=completions, sampler=oracle)
    assert all(r["soft"] == [1.0] * len(r["soft"]) for r in records[:1])  # an always-right continuer: all 1
    assert records[1]["soft"] == [1.0, 1.0, 0.0]  # it recovers from any slip, except on the final line
    assert records[1]["prefix_ok"] == [False, False, False] and records[2]["step_ok"] == [True, False, False]
    records = mc_step_labels(None, TOK, TASK, [PROBLEM] * 3, 2, completions=completions, sampler=own_value)
    assert [r["hard"] for r in records] == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert [r["hard"] for r in records] == [[float(x) for x in r["prefix_ok"]] for r in records]
    assert records[0]["chars"] == [1, 4, 7]


def test_mc_labels_from_rollouts_have_the_right_shape():
    model = tiny_model("nano", TOK, seed=0)
    problems = TASK.problems("train", 3)
    records = mc_step_labels(
        model,
        TOK,
        TASK,
        problems,
        2,
        completions=[p.answer for p in problems],
        max_new_tokens=8,
        generator=torch.Generator().manual_seed(0),
    )
    for p, r in zip(problems, records):
        assert len(r["soft"]) == len(r["hard"]) == TASK.num_steps(p) and r["prefix_ok"] == [True] * TASK.num_steps(p)
        assert all(s in (0.0, 0.5, 1.0) for s in r["soft"]) and r["hard"] == [float(s > 0) for s in r["soft"]]


def test_auc():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5], [0, 1]) == 0.5 and math.isnan(auc([0.1], [1]))


@pytest.mark.slow
def test_prm_beats_chance_on_held_out_problems():
    from rl4lrm.models.zoo import load_base

    policy, tok, task = load_base("chain")
    gen = torch.Generator().manual_seed(0)
    train = mc_step_labels(policy, tok, task, task.problems("train", 256, seed=0), 4, generator=gen)
    test = mc_step_labels(policy, tok, task, task.problems("test", 128, seed=0), 4, generator=gen)
    prm, history = train_prm(policy, tok, task, train, label="hard", steps=80, batch_size=32, lr=3e-3)
    metrics = evaluate_prm(prm, tok, task, test)
    # chance is an AUC of 0.5; the full recipe (512 problems, 8 rollouts, 300 steps) reaches about 0.78 / 0.73
    assert metrics["prm/auc_mc"] > 0.62 and metrics["prm/auc_gt"] > 0.6, metrics
    # and as a reward: PRM probabilities over num_steps on each step's last token
    problems = test[:4]
    completions = [r["completion"] for r in problems]
    batch = make_batch(tok, [r["problem"].prompt for r in problems], completions)
    reward = compute_reward(
        "prm",
        [r["problem"] for r in problems],
        completions,
        RewardContext(task=task, batch=batch, tokenizer=tok),
        prm=prm,
    )
    scores = prm_scores(prm, tok, task, problems)
    for i, r in enumerate(problems):
        n = task.num_steps(r["problem"])
        assert torch.allclose(reward[i, r["chars"]], torch.tensor(scores[i]) / n, atol=1e-5)
        assert math.isclose(reward[i].sum().item(), sum(scores[i]) / n, abs_tol=1e-5)


def test_prm_reward_needs_a_model():
    batch = make_batch(TOK, [PROBLEM.prompt], ["12"])
    with pytest.raises(ValueError, match="prm"):
        compute_reward("prm", [PROBLEM], ["12"], RewardContext(task=TASK, batch=batch, tokenizer=TOK))


# --- training PRIME's implicit PRM on outcome labels ---------------------------------------------


@pytest.fixture(scope="module")
def trained_implicit():
    from rl4lrm.models.zoo import load_base
    from rl4lrm.rewards.implicit import train_implicit_prm

    policy, tok, task = load_base("chain")
    phi, metrics = train_implicit_prm(
        policy,
        tok,
        task,
        task.problems("train", 128, seed=0),
        task.problems("test", 64, seed=0),
        n_samples=8,
        steps=60,
        batch_size=64,
        lr=1e-3,
        seed=0,
    )
    return policy, phi, tok, task, metrics


def load_policy_state(name):
    from rl4lrm.models.zoo import load_base

    return list(load_base(name)[0].state_dict().values())


@pytest.mark.slow
def test_implicit_prm_training_lowers_the_loss_and_ranks_held_out_outcomes(trained_implicit):
    policy, phi, _, _, m = trained_implicit
    # measured over seeds 0-2: loss 0.69 -> 0.60; held-out AUC 0.74-0.78 (steps vs prefix_ok 0.78-0.82)
    assert (
        m["implicit/train_loss_start"] > 0.65 and m["implicit/train_loss_end"] < m["implicit/train_loss_start"] - 0.04
    ), m
    assert m["implicit/auc"] > 0.6 and m["implicit/auc_step_gt"] > 0.6, m
    assert 0.2 < m["implicit/pass"] < 0.8  # both classes are well represented
    assert not any(p.requires_grad for p in phi.parameters()) and not phi.training
    assert all(
        torch.equal(a, b) for a, b in zip(policy.state_dict().values(), load_policy_state("chain"))
    )  # π_ref untouched


def test_implicit_prm_reward_with_a_trained_model(trained_implicit):
    policy, phi, tok, task, _ = trained_implicit
    problems = task.problems("test", 3, seed=1)
    batch = rollout(
        policy,
        tok,
        [task.format_prompt(p) for p in problems],
        group_size=2,
        max_new_tokens=16,
        generator=torch.Generator().manual_seed(0),
    )
    rows = [p for p in problems for _ in range(2)]
    reward = compute_reward(
        "implicit_prm",
        rows,
        batch.completions,
        RewardContext(batch=batch, model=policy, ref_model=policy),
        implicit_model=phi,
    )
    assert reward.shape == batch.completion_ids.shape and (reward[batch.response_mask == 0] == 0).all()
    with torch.no_grad():
        expected = 0.05 * (manual_logprobs(phi, batch) - manual_logprobs(policy, batch)) * batch.response_mask
    assert torch.allclose(reward, expected, atol=1e-5) and reward.abs().sum() > 0


def test_trained_implicit_prm_row_is_registered():
    from rl4lrm.experiments.rewards import REWARD_METHODS

    spec = REWARD_METHODS["verifier + trained implicit PRM (chain)"]
    assert spec["train_implicit"] and spec["task"] == "chain" and "implicit_prm" in spec["rewards"]
