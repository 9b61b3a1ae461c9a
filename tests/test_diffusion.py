"""The masked diffusion LM: noising and loss by hand, the unmasking sampler, the likelihood estimators, the
rollout hooks (aux mask, ratio 1 at the first update) and a GRPO smoke run through the trainer."""

import math

import pytest
import torch

from rl4lrm.diffusion.model import (
    DiffusionPretrainConfig,
    DiffusionSamplingConfig,
    completion_targets,
    diffusion_tokenizer,
    load_diffusion_base,
    mask_completion,
    masked_diffusion_loss,
    new_diffusion_model,
)
from rl4lrm.diffusion.sampling import (
    check_schedule,
    diffusion_sample,
    exact_elbo,
    finish_completions,
    mc_elbo,
    one_step_estimate,
    remask_refine,
    transfer_schedule,
)
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.rollout import compute_logprobs, concat_batches, rollout
from rl4lrm.trainer import Callback, TrainConfig, Trainer

PROMPTS = ["1+2=", "33+44=", "9+10="]


@pytest.fixture(scope="module")
def tok():
    return diffusion_tokenizer()


@pytest.fixture(scope="module")
def tiny(tok):
    model = new_diffusion_model(tok, DiffusionPretrainConfig(gen_length=4, hidden_size=32, layers=1, seed=3))
    model.sampling = DiffusionSamplingConfig(steps=4)
    return model


def _enc(tok, prompts=PROMPTS):
    enc = tok(prompts, padding=True, return_tensors="pt", add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


def test_tokenizer_keeps_char_ids_and_appends_mask(tok):
    base = char_tokenizer()
    assert tok.get_vocab() == {**base.get_vocab(), "<mask>": len(base)}
    assert tok.mask_token_id == len(base)


def test_masking_rate_follows_t():
    y = torch.zeros(4, 20000, dtype=torch.long)
    t = torch.tensor([0.1, 0.5, 0.9, 1.0])
    noisy, masked = mask_completion(y, t, 7, torch.Generator().manual_seed(0))
    assert torch.allclose(masked.float().mean(1), t, atol=0.02)
    assert bool(masked[3].all()) and bool((noisy[masked] == 7).all()) and bool((noisy[~masked] == 0).all())


def test_loss_is_masked_cross_entropy_over_t_by_hand():
    logits = torch.zeros(1, 2, 3)
    logits[0, 0] = torch.tensor([math.log(2.0), 0.0, 0.0])  # p(token 0) = 2/4 at position 0
    targets = torch.tensor([[0, 1]])
    masked = torch.tensor([[True, False]])  # only position 0 counts
    t = torch.tensor([0.25])
    expected = -math.log(0.5) / 0.25 / 2  # CE of the masked token, weight 1/t, averaged over L = 2
    assert masked_diffusion_loss(logits, targets, masked, t).item() == pytest.approx(expected, rel=1e-6)
    assert masked_diffusion_loss(logits, targets, torch.zeros_like(masked), t).item() == 0.0


def test_completion_targets_pad_after_eos(tok):
    y = completion_targets(tok, ["46", "123"], 5)
    assert tok.convert_ids_to_tokens(y[0].tolist()) == ["4", "6", "<eos>", "<pad>", "<pad>"]
    with pytest.raises(ValueError, match="gen_length=3"):
        completion_targets(tok, ["123"], 3)


@pytest.mark.parametrize("remasking,block", [("low_confidence", None), ("random", None), ("low_confidence", 2)])
def test_sampler_unmasks_everything_on_schedule(tok, tiny, remasking, block):
    ids, mask = _enc(tok)
    out = diffusion_sample(
        tiny,
        ids,
        mask,
        4,
        steps=2 if block else 4,
        remasking=remasking,
        block_length=block,
        generator=torch.Generator().manual_seed(0),
        return_states=True,
    )
    assert not bool((out.completion == tok.mask_token_id).any())
    assert len(out.states) == (2 if block else 4) + 1 and bool((out.states[0] == tok.mask_token_id).all())
    masked_left = [int((s == tok.mask_token_id).sum(1)[0]) for s in out.states]
    assert masked_left == ([4, 2, 0] if block else [4, 3, 2, 1, 0])
    for prev, nxt in zip(out.states, out.states[1:]):  # a committed token never changes
        kept = prev != tok.mask_token_id
        assert torch.equal(prev[kept], nxt[kept])
    if block:  # block 1 (positions 2, 3) starts only after block 0 is full
        assert bool((out.commit_step[:, :2] == 0).all() and (out.commit_step[:, 2:] == 1).all())
    assert bool((out.confidence > 0).all() and (out.confidence <= 1).all())


def test_rollout_leaves_the_prompt_and_cuts_at_eos(tok, tiny):
    ids, mask = _enc(tok)
    batch = tiny.sample_rollout(tok, ids, mask, 2, 4, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(batch.prompt_ids, ids.repeat_interleave(2, 0))
    assert batch.group_ids.tolist() == [0, 0, 1, 1, 2, 2]
    ids2, rmask, trunc, texts = finish_completions(tok, torch.tensor([[5, 2, 6, 7], [5, 6, 7, 8]]))
    assert ids2.tolist()[0] == [5, 2, 0, 0] and rmask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert trunc.tolist() == [False, True] and texts[0] == tok.decode([5])


def test_validation_errors_name_the_bad_value(tok, tiny):
    with pytest.raises(ValueError, match="steps=5 exceeds"):
        check_schedule(4, 5, None)
    with pytest.raises(ValueError, match="block_length=3 must divide"):
        check_schedule(4, 2, 3)
    with pytest.raises(ValueError, match="steps=3 must be a positive multiple"):
        check_schedule(4, 3, 2)
    with pytest.raises(ValueError, match="remasking"):
        DiffusionSamplingConfig(remasking="greedy")
    with pytest.raises(ValueError, match="steps"):
        DiffusionSamplingConfig(steps=0)
    with pytest.raises(ValueError, match="p_mask_prompt"):
        DiffusionSamplingConfig(p_mask_prompt=1.0)
    with pytest.raises(ValueError, match="max_new_tokens=6 must equal"):
        rollout(tiny, tok, PROMPTS, 2, max_new_tokens=6)
    assert transfer_schedule(8, 3) == [3, 3, 2] and sum(transfer_schedule(7, 7)) == 7


def test_one_step_equals_elbo_for_a_single_token(tok, tiny):
    ids, mask = _enc(tok)
    y = torch.tensor([[5], [2], [9]])
    one = one_step_estimate(tiny, ids, mask, y, p_mask=0.0)[:, 0]
    assert torch.allclose(one, exact_elbo(tiny, ids, mask, y), atol=1e-6)
    assert torch.allclose(mc_elbo(tiny, ids, mask, y, 3).std(1), torch.zeros(3), atol=1e-6)  # no randomness left


@pytest.mark.slow
def test_mc_elbo_converges_to_the_enumerated_elbo(tok, tiny):
    ids, mask = _enc(tok)
    y = torch.tensor([[5, 6, 2], [7, 2, 0], [8, 8, 9]])
    exact = exact_elbo(tiny, ids, mask, y)
    samples = mc_elbo(tiny, ids, mask, y, 3000, torch.Generator().manual_seed(0))
    se = samples.std(1) / 3000**0.5
    assert bool(((samples.mean(1) - exact).abs() < 4 * se + 1e-4).all())


def test_aux_mask_travels_and_recomputation_is_exact(tok, tiny):
    batch = rollout(tiny, tok, PROMPTS, 3, 4, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert batch.aux["prompt_noise"].shape == batch.prompt_ids.shape
    tiny.train()
    logprobs, _ = compute_logprobs(tiny, batch)
    tiny.eval()
    assert torch.equal(logprobs, batch.old_logprobs)
    rows = torch.tensor([4, 0, 7])
    sub = batch.select(rows)
    assert torch.equal(compute_logprobs(tiny, sub)[0], batch.old_logprobs[rows])
    both = concat_batches([sub, batch.select(torch.tensor([1, 2]))], tok.pad_token_id)
    assert torch.equal(both.aux["prompt_noise"], batch.aux["prompt_noise"][torch.tensor([4, 0, 7, 1, 2])])
    other = dict(batch.aux, prompt_noise=~batch.aux["prompt_noise"] & (batch.prompt_mask > 0))
    batch.aux = other  # a different mask gives different estimates: the stored one is what makes the ratio 1
    assert not torch.equal(compute_logprobs(tiny, batch)[0], batch.old_logprobs)


def test_remask_refine_only_touches_the_least_confident(tok, tiny):
    ids, mask = _enc(tok)
    out = diffusion_sample(tiny, ids, mask, 4, 4, generator=torch.Generator().manual_seed(0))
    refined = remask_refine(tiny, ids, mask, out.completion, out.confidence, n_remask=1)
    changed = refined != out.completion
    lowest = out.confidence.argmin(1)
    assert bool((changed.sum(1) <= 1).all())
    assert all(not changed[i].any() or changed[i, lowest[i]] for i in range(len(ids)))


@pytest.fixture(scope="module")
def shipped():
    return load_diffusion_base()


def test_shipped_checkpoint_is_imperfect_but_able(shipped):
    from rl4lrm.evaluation import evaluate

    model, tok, task = shipped
    metrics = evaluate(
        model,
        tok,
        task,
        task.problems("test", 64, seed=0),
        4,
        max_new_tokens=model.gen_length,
        generator=torch.Generator().manual_seed(0),
    )
    assert 0.15 < metrics["acc/pass@1"] < 0.85 and metrics["format/ok"] > 0.9


class _RatioProbe(Callback):
    def __init__(self):
        self.max_diff = []

    def on_rollout_end(self, trainer, batch, rewards):
        trainer.model.train()
        self.max_diff.append((compute_logprobs(trainer.model, batch)[0] - batch.old_logprobs).abs().max().item())
        trainer.model.eval()


@pytest.mark.slow
def test_grpo_through_the_trainer_raises_heldout_accuracy(shipped):
    import copy

    model, tok, task = shipped
    probe = _RatioProbe()
    cfg = TrainConfig(
        preset="grpo",
        steps=25,
        prompts_per_step=16,
        group_size=8,
        max_new_tokens=model.gen_length,
        lr=2e-4,
        eval_every=25,
        eval_problems=64,
        eval_samples=4,
        seed=0,
        device="cpu",
    )
    history = Trainer(
        cfg, model=copy.deepcopy(model), tokenizer=tok, task=task, callbacks=[probe], progress=False
    ).train()
    assert max(probe.max_diff) == 0.0  # the same prompt mask: ratio exactly 1 before each first update
    assert history["ratio/mean"].iloc[1:].sub(1).abs().max() < 1e-6
    assert history["kl/k3"].iloc[-1] > 0  # the policy moved away from the reference
    acc = history["acc/pass@1"].dropna()
    assert acc.iloc[-1] > acc.iloc[0] + 0.03, acc.tolist()


def test_panel_run_decodes_evaluates_and_trains(shipped):
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.diffusion.viz import DiffusionPanel, unmasking_grid

    model, tok, task = shipped
    before = {k: v.clone() for k, v in model.state_dict().items()}
    panel = DiffusionPanel(model, tok, task, steps=4, block_length=4, rl_steps=2, eval_problems=8, eval_samples=1)
    result = panel.run()
    assert len(result["states"]) == 5 and "after" in result and len(result["history"]) == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # trained a copy
    text, status = unmasking_grid(result["states"], tok)
    assert (status[0] == 0).all() and (status[-1] > 0).all() and (status[1:] == 2).sum() == 8
    assert "▒" in text[0][0]


def test_exercise_checkers_accept_the_library_and_reject_a_wrong_answer(capsys):
    from rl4lrm.diffusion.exercises import check_diffusion_loss, check_transfer_schedule

    assert check_diffusion_loss(masked_diffusion_loss)
    assert not check_diffusion_loss(lambda lg, y, m, t: masked_diffusion_loss(lg, y, m, torch.ones_like(t)))
    assert check_transfer_schedule(transfer_schedule)
    assert not check_transfer_schedule(lambda n, s: [n // s] * s)


def test_studies_return_their_tables(shipped):
    from rl4lrm.diffusion.studies import (
        estimator_study,
        estimator_summary,
        self_correction_study,
        steps_study,
    )

    model, tok, task = shipped
    per_seq = estimator_study(model, tok, task, n_problems=3, samples_per_problem=2, n_one_step=3, n_reference=4)
    assert len(per_seq) == 6 and (per_seq["reference"] <= 0).all() and (per_seq["one_step"] <= 0).all()
    summary = estimator_summary(per_seq)
    assert list(summary.index) == ["one-step (d1)", "MC ELBO, 1 sample"]
    table = steps_study(model, tok, task, steps=(1, 8), remasking=("random",), n_problems=8, samples=1)
    assert table[["steps", "remasking"]].values.tolist() == [[1, "random"], [8, "random"]]
    assert model.sampling.steps == 8 and model.sampling.remasking == "low_confidence"  # restored afterwards
    fix = self_correction_study(model, tok, task, settings=((8, "low_confidence"),), n_problems=8, samples=2)
    row = fix.iloc[0]
    assert row["accuracy after remask pass"] == pytest.approx(
        row["accuracy"] + row["fixed by pass"] - row["broken by pass"]
    )


def test_panel_block_length_dropdown_shows_whole_completion(shipped):
    # a Dropdown whose value is None shows nothing selected: "whole completion" must be a real option value
    from rl4lrm.diffusion.viz import DiffusionPanel

    model, tok, task = shipped
    panel = DiffusionPanel(model, tok, task)
    dropdown = panel.controls["block_length"]
    assert dropdown.index == 0 and dropdown.label == "whole completion" and panel.settings()["block_length"] is None
    dropdown.label = "4"
    assert panel.settings()["block_length"] == 4
    assert DiffusionPanel(model, tok, task, block_length=4).controls["block_length"].label == "4"
