"""Unsupervised rewards: majority vote (hand-made groups, loop reference), self-certainty and negative
entropy (closed forms, a per-row full-softmax loop reference, padding), context errors, and the study."""

import math
import random
from types import SimpleNamespace

import pytest
import torch

from rl4lrm.experiments.unsupervised import (
    AGREEMENT_COLUMNS,
    agreement_table,
    auroc,
    confident_collapse,
    unsupervised_study,
)
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rewards import RewardContext, RewardMix, compute_reward
from rl4lrm.rewards.unsupervised import (
    canonical_answer,
    group_majority,
    token_self_certainty,
)
from rl4lrm.rollout import RolloutBatch
from rl4lrm.tasks import Problem, Task, Verdict, get_task

PROBLEM = Problem(question="?", prompt="?", answer="7", meta={}, key="k")


class EchoTask(Task):
    """The answer is the completion itself; a leading "!" makes it malformed; nothing is ever correct."""

    name, alphabet = "echo", "0123456789"

    def sample(self, rng):
        return PROBLEM

    def verify(self, problem, completion):
        if not completion.strip():
            return Verdict(None, False, False, "no answer")
        return Verdict(completion, False, not completion.startswith("!"), "ok")


def vote(completions, group_size):
    ctx = RewardContext(group_size=group_size, task=EchoTask())
    return compute_reward("majority_vote", [PROBLEM] * len(completions), completions, ctx).tolist()


# ----------------------------------------------------------------------------- majority vote


def test_canonical_answer():
    assert canonical_answer("46") == canonical_answer(" 046") == canonical_answer("+46") == canonical_answer("46.0")
    assert canonical_answer("0.5") == canonical_answer(".50") and canonical_answer("1e2") == canonical_answer("100")
    assert canonical_answer("3 + 4") == "3+4" != canonical_answer("4+3")
    assert canonical_answer("8/2") == "8/2"  # an expression, not the number 4
    assert canonical_answer(None) is None and canonical_answer("  ") is None
    assert canonical_answer("1e99999999") == "1e99999999"  # no billion-digit Fraction


@pytest.mark.parametrize(
    "completions, group_size, expected",
    [
        (["5", "5", "3", "5"], 4, [1, 1, 0, 1]),  # clear majority
        (["3", "5", "5", "3"], 4, [1, 0, 0, 1]),  # tie: the answer seen first in the group wins
        (["5", "3", "3", "5"], 4, [1, 0, 0, 1]),
        (["!5", "", "!5", " "], 4, [0, 0, 0, 0]),  # nothing parsable: no vote, no reward
        (["!5", "!5", "!5", "3"], 4, [0, 0, 0, 1]),  # malformed answers do not vote, even as a majority
        (["46", " 046", "46.0", "47"], 4, [1, 1, 1, 0]),  # equal numbers, different text
        (["1", "2", "2", "2", "1", "1"], 3, [0, 1, 1, 0, 1, 1]),  # groups are independent
        (["4", "!4", "9"], 1, [1, 0, 1]),  # G = 1: every well-formed answer wins its own vote
    ],
)
def test_majority_vote_hand_made_groups(completions, group_size, expected):
    assert vote(completions, group_size) == expected


def test_majority_vote_on_a_real_task_ignores_the_truth():
    task = get_task("addition", digits=2)
    problem = task.problems("train", 1, seed=0)[0]
    wrong = str(int(problem.answer) + 1)
    completions = [wrong, "0" + wrong, problem.answer, "x1"]
    ctx = RewardContext(group_size=4, task=task)
    assert compute_reward("majority_vote", [problem] * 4, completions, ctx).tolist() == [1, 1, 0, 0]
    assert compute_reward("correct", [problem] * 4, completions, ctx).tolist() == [0, 0, 1, 0]


def _vote_reference(answers, group_size):
    """Slow majority vote: count by hand, keep the earliest of the most voted."""
    out = []
    for start in range(0, len(answers), group_size):
        group = answers[start : start + group_size]
        keys = [None if a.startswith("!") or not a.strip() else canonical_answer(a) for a in group]
        best, best_count = None, 0
        for key in keys:
            count = sum(k == key for k in keys) if key is not None else 0
            if count > best_count or (count == best_count and count > 0 and keys.index(key) < keys.index(best)):
                best, best_count = key, count
        out += [float(best is not None and k == best) for k in keys]
    return out


def test_majority_vote_matches_loop_reference():
    rng = random.Random(0)
    pool = ["1", "01", "1.0", "2", " 2", "3", "x", "x ", "!1", "", "!x"]
    for _ in range(200):
        G, B = rng.randint(1, 6), rng.randint(1, 4)
        answers = [rng.choice(pool) for _ in range(B * G)]
        assert vote(answers, G) == _vote_reference(answers, G), (answers, G)


def test_group_majority_errors_and_counts():
    assert group_majority([None, "a", "b", "b"], 2) == [("a", 1), ("b", 2)]
    assert group_majority([None, None], 2) == [(None, 0)]
    with pytest.raises(ValueError, match="divisible"):
        group_majority(["a", "b", "c"], 2)


# ----------------------------------------------------------------------------- self-certainty, entropy


def test_token_self_certainty_closed_form():
    p = torch.tensor([0.5, 1 / 6, 1 / 6, 1 / 6])
    logits = torch.stack([p.log() + 3.0, torch.zeros(4)])[None]  # (1, 2, 4): shifted logits, then flat
    expected = -math.log(4) + (math.log(2) + 3 * math.log(6)) / 4  # -log V - mean log p
    sc = token_self_certainty(logits)  # (1, 2)
    assert sc[0, 0].item() == pytest.approx(expected, abs=1e-6)
    assert sc[0, 1].item() == pytest.approx(0.0, abs=1e-6)
    kl = (0.25 * (0.25 / p).log()).sum()  # the definition, KL(U || p)
    assert sc[0, 0].item() == pytest.approx(kl.item(), abs=1e-6)


class FixedLogits(torch.nn.Module):
    """A stand-in causal LM whose next-token logits depend only on the row: ``row_logits[i]`` (V,)."""

    def __init__(self, row_logits):
        super().__init__()
        self.row_logits = row_logits
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask, position_ids, logits_to_keep, use_cache):
        n = input_ids.shape[0]
        return SimpleNamespace(logits=self.row_logits[:n, None, :].expand(n, logits_to_keep, -1).clone())


def make_batch(prompt_lens, completion_lens, P, T, vocab, temperature=1.0, junk=True, seed=0):
    """A hand-made RolloutBatch: left-padded prompts, right-padded completions, junk ids in the padding."""
    gen = torch.Generator().manual_seed(seed)
    N = len(prompt_lens)
    ids = torch.randint(4, vocab, (N, P + T), generator=gen)  # junk everywhere, padding included
    if not junk:
        ids[:, :P][torch.arange(P)[None] < P - torch.tensor(prompt_lens)[:, None]] = 0
        ids[:, P:][torch.arange(T)[None] >= torch.tensor(completion_lens)[:, None]] = 0
    prompt_mask = (torch.arange(P)[None] >= P - torch.tensor(prompt_lens)[:, None]).long()  # (N, P)
    response_mask = (torch.arange(T)[None] < torch.tensor(completion_lens)[:, None]).float()  # (N, T)
    return RolloutBatch(
        prompt_ids=ids[:, :P],
        prompt_mask=prompt_mask,
        completion_ids=ids[:, P:],
        response_mask=response_mask,
        old_logprobs=torch.zeros(N, T),
        group_ids=torch.arange(N),
        truncated=torch.zeros(N, dtype=torch.bool),
        completions=["x"] * N,
        group_size=1,
        temperature=temperature,
    )


def scores(name, model, batch, **params):
    ctx = RewardContext(group_size=batch.group_size, batch=batch, model=model)
    return compute_reward(name, [PROBLEM] * len(batch.completions), batch.completions, ctx, **params)


def test_peaked_beats_flat_with_hand_computed_values():
    V = 8
    peaked = torch.tensor([4.0] + [0.0] * (V - 1))
    model = FixedLogits(torch.stack([peaked, torch.zeros(V)]))
    batch = make_batch([2, 3], [3, 1], P=3, T=3, vocab=V)
    sc, ne = scores("self_certainty", model, batch), scores("neg_entropy", model, batch)
    p = torch.softmax(peaked, 0)
    assert sc[0] > sc[1] and ne[0] > ne[1]  # the peaked row is the more certain one
    assert sc[0].item() == pytest.approx((-math.log(V) - p.log().mean()).item(), abs=1e-5)
    assert ne[0].item() == pytest.approx((p * p.log()).sum().item(), abs=1e-5)
    assert sc[1].item() == pytest.approx(0.0, abs=1e-6) and ne[1].item() == pytest.approx(-math.log(V), abs=1e-6)
    hot = torch.softmax(peaked / 2, 0)  # temperature 2 flattens the peaked row
    assert scores("self_certainty", model, batch, temperature=2.0)[0].item() == pytest.approx(
        (-math.log(V) - hot.log().mean()).item(), abs=1e-5
    )


def _reference(model, batch, temperature):
    """Slow reference: each row alone, unpadded, one full softmax per response token."""
    sc, ent = [], []
    P = batch.prompt_ids.shape[1]
    for i in range(len(batch.completions)):
        prompt = batch.prompt_ids[i][batch.prompt_mask[i].bool()]
        L = int(batch.response_mask[i].sum())
        seq = torch.cat([prompt, batch.completion_ids[i, :L]])[None]
        logits = model(input_ids=seq).logits[0].double() / temperature  # (len, V)
        row_sc, row_ent = [], []
        for t in range(L):
            p = torch.softmax(logits[len(prompt) - 1 + t], 0)  # predicts completion token t
            V = p.shape[0]
            row_sc.append(sum((1 / V) * math.log((1 / V) / p[v].item()) for v in range(V)))
            row_ent.append(-(p * p.log()).sum().item())
        sc.append(sum(row_sc) / L)
        ent.append(sum(row_ent) / L)
        assert P >= len(prompt)
    return torch.tensor(sc), torch.tensor(ent)


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer()
    return tiny_model("nano", tok, seed=3), tok


def test_self_certainty_and_entropy_match_loop_reference(tiny):
    model, tok = tiny
    batch = make_batch([1, 4, 2, 4, 3], [5, 1, 3, 2, 5], P=4, T=5, vocab=len(tok), temperature=0.7)
    with torch.no_grad():
        ref_sc, ref_ent = _reference(model, batch, 0.7)
    sc = scores("self_certainty", model, batch)
    assert torch.allclose(sc, ref_sc.float(), atol=1e-4), (sc, ref_sc)
    assert torch.allclose(scores("neg_entropy", model, batch), -ref_ent.float(), atol=1e-4)
    assert torch.allclose(scores("self_certainty", model, batch, chunk_rows=2), sc, atol=1e-5)
    clean = make_batch([1, 4, 2, 4, 3], [5, 1, 3, 2, 5], P=4, T=5, vocab=len(tok), temperature=0.7, junk=False)
    assert torch.equal(clean.response_mask, batch.response_mask)
    # the same real tokens with pad ids instead of junk in the padding: padding never counts
    clean.prompt_ids = torch.where(clean.prompt_mask.bool(), batch.prompt_ids, clean.prompt_ids)
    clean.completion_ids = torch.where(clean.response_mask.bool(), batch.completion_ids, clean.completion_ids)
    assert torch.allclose(scores("self_certainty", model, clean), sc, atol=1e-5)


def test_forward_restores_training_mode_and_needs_no_grad(tiny):
    model, tok = tiny
    batch = make_batch([2, 2], [2, 2], P=2, T=2, vocab=len(tok))
    model.train()
    try:
        out = scores("self_certainty", model, batch)
        assert model.training and not out.requires_grad
    finally:
        model.eval()


@pytest.mark.parametrize(
    "name, ctx, missing",
    [
        ("majority_vote", RewardContext(group_size=2), "task"),
        ("self_certainty", RewardContext(model=object()), "batch"),
        ("self_certainty", RewardContext(batch=object()), "model"),
        ("neg_entropy", RewardContext(), "batch', 'model"),
    ],
)
def test_missing_context_fields_are_value_errors(name, ctx, missing):
    with pytest.raises(ValueError, match=f"needs RewardContext fields \\['{missing}'\\]"):
        compute_reward(name, [PROBLEM] * 2, ["1", "2"], ctx)


def test_batch_rows_must_match_completions(tiny):
    model, tok = tiny
    batch = make_batch([2, 2], [2, 2], P=2, T=2, vocab=len(tok))
    with pytest.raises(ValueError, match="2 rows but there are 3 completions"):
        compute_reward("neg_entropy", [PROBLEM] * 3, ["1"] * 3, RewardContext(batch=batch, model=model))


def test_reward_mix_of_unsupervised_rewards(tiny):
    model, tok = tiny
    batch = make_batch([2, 2, 2, 2], [2, 2, 1, 2], P=2, T=2, vocab=len(tok))
    batch.completions, batch.group_size = ["5", "5", "3", "3"], 2
    ctx = RewardContext(group_size=2, task=EchoTask(), batch=batch, model=model)
    mix = RewardMix({"majority_vote": 1.0, "self_certainty": 0.5, "neg_entropy": 0.1})
    total, parts, token = mix([PROBLEM] * 4, batch.completions, ctx)
    assert mix.requires == {"task", "batch", "model"} and token is None
    assert torch.allclose(total, parts["majority_vote"] + 0.5 * parts["self_certainty"] + 0.1 * parts["neg_entropy"])


# ----------------------------------------------------------------------------- the study


def test_agreement_table_hand_made():
    import pandas as pd

    scores_ = pd.DataFrame(
        {
            "group": [0] * 4 + [1] * 4,
            "correct": [0, 0, 0, 1, 1, 1, 0, 0],
            "majority_vote": [1, 1, 1, 0, 1, 1, 0, 0],  # group 0: 3 of 4 agree on a wrong answer
            "self_certainty": [1.0, 2, 3, 4, 5, 6, 7, 8],
            "neg_entropy": [0.0] * 8,
        }
    )
    table = agreement_table(scores_, 4).set_index("reward")
    assert list(table.reset_index().columns) == list(AGREEMENT_COLUMNS)
    mv = table.loc["majority_vote"]
    assert mv["maj_acc"] == 0.5 and mv["maj_confident_wrong"] == 0.5 and mv["maj_none"] == 0.0
    assert table.loc["correct", "pearson"] == pytest.approx(1.0) and math.isnan(table.loc["neg_entropy", "pearson"])


def test_auroc_matches_pair_count():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (40,), generator=gen).double().numpy()
    y = (torch.rand(40, generator=gen) < 0.4).numpy()
    pairs = [(a > b) + 0.5 * (a == b) for a, la in zip(x, y) for b, lb in zip(x, y) if la and not lb]
    assert auroc(x, y) == pytest.approx(sum(pairs) / len(pairs))


def test_unsupervised_study_columns_and_seed():
    a = unsupervised_study("addition", prompts=4, group_size=4, max_new_tokens=6, seed=1)
    b = unsupervised_study("addition", prompts=4, group_size=4, max_new_tokens=6, seed=1)
    assert list(a.columns) == ["model", *AGREEMENT_COLUMNS, "pass@1"]
    assert list(a["reward"]) == ["correct", "majority_vote", "self_certainty", "neg_entropy"]
    assert a.equals(b)


def test_confident_collapse_majority_one_truth_zero():
    collapsed = confident_collapse("countdown", prompts=12, group_size=4, max_new_tokens=12, seed=0)
    assert len(collapsed) > 0
    assert (collapsed["majority_vote"] == 1.0).all() and (collapsed["correct"] == 0.0).all()
    assert (collapsed["parsed"] != collapsed["answer"]).all()
    assert collapsed["self_certainty_pct"].between(0, 1).all()


def test_trainer_runs_on_unsupervised_rewards():
    from rl4lrm.trainer import TrainConfig, Trainer

    config = TrainConfig(
        task="addition",
        steps=1,
        prompts_per_step=2,
        group_size=4,
        eval_problems=4,
        eval_every=0,
        device="cpu",
        rewards={"majority_vote": 1.0, "self_certainty": 0.1, "neg_entropy": 0.1},
    )
    history = Trainer(config, progress=False).train()
    row = history.iloc[-1]
    assert 0 <= row["reward/majority_vote"] <= 1 and row["reward/self_certainty"] > 0 > row["reward/neg_entropy"]
    assert "reward/correct" in history  # the verifier is still logged, never trained on
