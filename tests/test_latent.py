"""Continuous-thought model (Coconut): thoughts in the graph, curriculum inputs, rollout hooks, RL through Trainer."""

import pytest
import torch

from rl4lrm.latent.model import LatentConfig, LatentReasoner, latent_tokenizer
from rl4lrm.latent.train import (
    CurriculumConfig,
    collate_stage,
    latent_loss,
    load_latent,
    stage_example,
)
from rl4lrm.models.tiny import tiny_model
from rl4lrm.rewards import RewardContext, compute_reward
from rl4lrm.rollout import completion_logits, compute_logprobs, rollout
from rl4lrm.tasks import Problem
from rl4lrm.trainer import TrainConfig, Trainer


@pytest.fixture(scope="module")
def tok():
    return latent_tokenizer()


@pytest.fixture
def model(tok):
    torch.manual_seed(0)
    m = LatentReasoner(tiny_model("nano", tok, seed=1), tok)
    with torch.no_grad():  # a halting head that depends on the state, so its gradient path is exercised
        m.halt.weight.normal_(0, 0.5)
    return m


def _prompts(tok, texts=("7;+5;*2;-3=", "12;-3=")):
    enc = tok(list(texts), padding=True, return_tensors="pt", add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


def test_tokenizer_keeps_char_ids(tok):
    from rl4lrm.models.tokenizer import char_tokenizer

    base = char_tokenizer()
    assert tok("7;+5=\n")["input_ids"] == base("7;+5=\n")["input_ids"]
    assert tok.convert_tokens_to_ids(["<bot>", "<eot>", "<lat>"]) == [len(base), len(base) + 1, len(base) + 2]


def test_zero_thoughts_equal_plain_causal_lm(tok, model):
    p_ids, p_mask = _prompts(tok)
    target = tok(["24\n21", "9"], padding=True, return_tensors="pt", add_special_tokens=False, padding_side="right")
    t_ids, t_mask = target["input_ids"], target["attention_mask"]
    logits = model(p_ids, p_mask, 0, t_ids, t_mask)  # (N, T, V)
    N = len(p_ids)
    ids = torch.cat([p_ids, torch.full((N, 1), model.bot_id), torch.full((N, 1), model.eot_id), t_ids], 1)
    attn = torch.cat([p_mask, torch.ones(N, 2, dtype=torch.long), t_mask], 1)
    ref = model.net(input_ids=ids, attention_mask=attn, position_ids=(attn.cumsum(-1) - 1).clamp(min=0)).logits
    ref = ref[:, p_ids.shape[1] + 1 : -1]  # positions <eot>, t_0 .. t_{T-2}
    real = t_mask.bool()
    assert torch.allclose(logits[real], ref[real], atol=1e-4)


def test_thoughts_are_hidden_states_fed_back(tok, model):
    """One thought equals running the model on prompt + <bot> + (its own last hidden state as an embedding)."""
    p_ids, p_mask = _prompts(tok, ["7;+5;*2;-3="])
    h0 = model.thoughts(p_ids, p_mask, 1)[:, 0]  # (1, H)
    embeds = model.net.get_input_embeddings()(torch.cat([p_ids, torch.tensor([[model.bot_id]])], 1))
    out = model.net.model(inputs_embeds=embeds).last_hidden_state[:, -1]
    assert torch.allclose(h0, out, atol=1e-5)
    assert model.thoughts(p_ids, p_mask, 3).shape == (1, 3, model.hidden_size)


def test_gradient_flows_through_the_thoughts(tok, model):
    """The answer's loss reaches the prompt's embedding only through the thoughts when they are all it sees
    of the prompt... here we check the thought embeddings themselves get a gradient, and k changes the output."""
    p_ids, p_mask = _prompts(tok, ["7;+5;*2;-3="])
    t_ids, t_mask = torch.tensor([tok("21")["input_ids"]]), torch.ones(1, 2, dtype=torch.long)
    noise = torch.zeros(1, 2, model.hidden_size, requires_grad=True)  # added to each thought: d loss / d thought
    loss = latent_loss(model(p_ids, p_mask, 2, t_ids, t_mask, noise), t_ids, t_mask)
    loss.backward()
    assert noise.grad[0, 0].abs().sum() > 0 and noise.grad[0, 1].abs().sum() > 0
    with torch.no_grad():
        assert not torch.allclose(model(p_ids, p_mask, 1, t_ids, t_mask), model(p_ids, p_mask, 2, t_ids, t_mask))


def test_curriculum_stages_on_a_hand_made_example(tok):
    problem = Problem(question="", prompt="7;+5;*2;-3=", answer="12\n24\n21", meta={"values": (12, 24, 21)}, key="")
    dec = lambda ids: tok.decode(ids, skip_special_tokens=False)
    for stage, c, k, target in [
        (0, 1, 0, "12\n24\n21<eos>"),
        (1, 1, 1, "24\n21<eos>"),
        (2, 1, 2, "21<eos>"),
        (2, 2, 4, "21<eos>"),
        (5, 1, 2, "21<eos>"),
    ]:
        prompt, n, t = stage_example(tok, problem, stage, c)
        assert dec(prompt) == "7;+5;*2;-3=" and n == k and dec(t) == target, (stage, c)
    p_ids, p_mask, k, _, t_mask = collate_stage([stage_example(tok, problem, 1), ([5, 6], 0, [7])], tok.pad_token_id)
    assert p_mask[1].tolist() == [0] * 9 + [1, 1] and p_ids[1, 0] == tok.pad_token_id  # prompts left-padded
    assert t_mask[1].tolist() == [1, 0, 0, 0, 0, 0] and k.tolist() == [1, 0]  # targets right-padded


@pytest.mark.parametrize(
    "cfg",
    [
        LatentConfig(n_thoughts=2),
        LatentConfig(n_thoughts=2, noise_std=0.5),
        LatentConfig(halting=True, max_thoughts=3, noise_std=0.3),
    ],
)
def test_rollout_and_recomputation_agree(tok, model, cfg):
    model.config = cfg
    batch = rollout(
        model,
        tok,
        ["7;+5;*2;-3=", "12;-3="],
        group_size=4,
        max_new_tokens=6,
        generator=torch.Generator().manual_seed(0),
    )
    assert batch.completion_ids.shape[0] == 8 and batch.group_ids.tolist() == [0] * 4 + [1] * 4
    assert set(batch.aux) == {"noise", "n_thoughts"}
    model.train()
    logprobs, entropy = compute_logprobs(model, batch, with_entropy=True)
    ratio = torch.exp(logprobs - batch.old_logprobs)[batch.response_mask > 0]
    assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-4)
    assert torch.isfinite(entropy).all()
    logits, lse = completion_logits(model, batch)
    assert logits.shape[:2] == batch.completion_ids.shape and lse.shape == batch.completion_ids.shape
    # the noise matters: recomputing without it changes the log-probs
    if cfg.noise_std > 0:
        clean = batch.select(torch.arange(8))
        clean.aux["noise"] = torch.zeros_like(clean.aux["noise"])
        assert not torch.allclose(compute_logprobs(model, clean)[0], logprobs, atol=1e-4)
    if cfg.halting:  # K decision positions, then the answer; k <= K and the decisions match k
        K, k = cfg.max_thoughts, batch.aux["n_thoughts"]
        assert (k <= K).all() and len(set(k.tolist())) > 1
        lat = (batch.completion_ids[:, :K] == model.lat_id).sum(1)
        assert torch.equal(lat, k)
        (logprobs.sum()).backward()
        assert model.halt.weight.grad.abs().sum() > 0


def test_halting_logprob_matches_the_decision_positions(tok, model):
    from rl4lrm.latent.model import halting_logprob

    model.config = LatentConfig(halting=True, max_thoughts=3)
    batch = rollout(model, tok, ["7;+5;*2;-3="], 8, 4, generator=torch.Generator().manual_seed(2))
    k = batch.aux["n_thoughts"]
    _, _, states, _ = model.think(batch.prompt_ids, batch.prompt_mask, lambda j, h: k <= j)
    z = torch.nn.functional.pad(model.halt(states).squeeze(-1), (0, 4))[:, :3]  # (N, K)
    assert torch.allclose(halting_logprob(z, k, 3), batch.old_logprobs[:, :3].sum(-1), atol=1e-5)
    # hand-made: p = 1/2 everywhere -> k continues and one stop cost (k + 1) log 2, k = K costs K log 2
    half = torch.zeros(3, 3)
    want = -torch.log(torch.tensor(2.0)) * torch.tensor([1.0, 3.0, 3.0])
    assert torch.allclose(halting_logprob(half, torch.tensor([0, 2, 3]), 3), want)


def test_exercise_checkers_accept_the_library_and_reject_a_wrong_answer():
    from rl4lrm.latent.exercises import check_halting_logprob, check_stage_example
    from rl4lrm.latent.model import halting_logprob

    def stage(answer, s, c):
        lines = answer.split("\n")
        s = min(s, len(lines) - 1)
        return s * c, "\n".join(lines[s:])

    assert check_stage_example(stage) and check_halting_logprob(halting_logprob)
    assert not check_stage_example(lambda a, s, c: (s * c, a))
    assert not check_halting_logprob(lambda z, k, K: torch.nn.functional.logsigmoid(-z).sum(-1))


def test_latent_steps_reward(tok, model):
    model.config = LatentConfig(halting=True, max_thoughts=3)
    batch = rollout(model, tok, ["7;+5="], 6, 4, generator=torch.Generator().manual_seed(1))
    steps = compute_reward("latent_steps", [None] * 6, batch.completions, RewardContext(batch=batch))
    assert torch.equal(steps, batch.aux["n_thoughts"].float())
    plain = rollout(model.net, tok, ["7;+5="], 2, 4)
    with pytest.raises(ValueError, match="n_thoughts"):
        compute_reward("latent_steps", [None] * 2, plain.completions, RewardContext(batch=plain))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_thoughts": -1}, "n_thoughts"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"halting": True, "max_thoughts": 0}, "max_thoughts"),
        ({"n_thoughts": 1.5}, "n_thoughts"),
    ],
)
def test_latent_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LatentConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stages": 9}, "stages"),
        ({"steps_per_stage": 0}, "steps_per_stage"),
        ({"stage_lr": 0}, "stage_lr"),
        ({"noise": -1}, "noise"),
        ({"thoughts_per_step": 0}, "thoughts_per_step"),
    ],
)
def test_curriculum_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CurriculumConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown latent zoo model"):
        load_latent("coconut")


@pytest.mark.slow
def test_grpo_through_trainer_trades_accuracy_for_compute():
    """Adaptive compute: with a step cost GRPO cuts the thoughts and the cost-adjusted reward rises."""
    model, tok, task = load_latent("latent")
    model.config = LatentConfig(halting=True, max_thoughts=4)
    cfg = TrainConfig(
        task="chain",
        steps=8,
        prompts_per_step=8,
        group_size=8,
        max_new_tokens=6,
        lr=3e-3,
        eval_every=0,
        eval_problems=16,
        eval_samples=1,
        rewards={"correct": 1.0, "latent_steps": -0.25},
        seed=0,
        device="cpu",
    )
    history = Trainer(cfg, model=model, tokenizer=tok, task=task, progress=False).train()
    rows = history.dropna(subset=["reward/mean"])
    assert rows["reward/latent_steps"].iloc[-2:].mean() < rows["reward/latent_steps"].iloc[:2].mean() - 0.3
    assert rows["reward/mean"].iloc[-2:].mean() > rows["reward/mean"].iloc[:2].mean()


def test_studies_and_panel_on_the_shipped_model():
    from rl4lrm.latent.studies import (
        compare_reasoning,
        curriculum_table,
        decoding_summary,
        thought_decoding,
        thoughts_sweep,
    )
    from rl4lrm.latent.viz import LatentPanel

    model, tok, task = load_latent("latent")
    cot, _, _ = load_latent("cot")
    table = compare_reasoning({"cot": cot, "latent": model}, tok, task, n_problems=32).set_index("method")
    assert table.loc["cot", "cot_tokens"] > 3 and table.loc["latent", "cot_tokens"] == 0
    assert table.loc["latent", "thoughts"] == model.config.n_thoughts and table.loc["cot", "thoughts"] == 0
    dec = thought_decoding(model, tok, task, n_problems=4)
    assert len(dec) == 4 * model.config.n_thoughts and len(decoding_summary(dec)) == model.config.n_thoughts
    sweep = thoughts_sweep(model, tok, task, ks=(0, 2), n_problems=32).set_index("thoughts")
    assert sweep.loc[2, "accuracy"] > sweep.loc[0, "accuracy"] + 0.3  # the shipped model needs its thoughts
    assert model.config.n_thoughts == 2  # the sweep restores the model's own setting
    assert curriculum_table()["stage"].tolist() == [0, 1, 2]
    panel = LatentPanel(model, tok, task, n_thoughts=2, rl_steps=0, eval_problems=16)
    result = panel.run()
    assert result["decoding"].shape == (2, 12) and "after" not in result and "accuracy" in panel.status.value


def test_thoughts_pass_the_cache_without_a_deprecation_warning():
    import warnings

    model, tok, _ = load_latent("latent")
    enc = tok(["7;+5;*2;-3="], return_tensors="pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = model.thoughts(enc["input_ids"], enc["attention_mask"], 2)
    assert h.shape[:2] == (1, 2)


def test_panel_measures_adaptive_k_the_same_way_before_and_after():
    # chapter 15's bug: "before" was fixed k = 2 without halting, "after" adaptive k: a drop GRPO did not cause
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.latent.viz import LatentPanel

    model, tok, task = load_latent("latent")
    panel = LatentPanel(model, tok, task, n_thoughts=2, rl_steps=1, halting=True, cost=0.2, lr=3e-3, eval_problems=8)
    assert "stage" not in panel.controls  # only the final stage ships: a stage slider would change nothing
    result = panel.run()
    assert result["fixed k"]["thoughts"] == 2
    assert result["before"]["thoughts"] == 4  # the untrained head (p(stop) 0.38) never stops greedily: K = 4
    assert "after" in result and "halting head before GRPO" in panel.status.value
