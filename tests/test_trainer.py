"""The trainer: config validation, reproducibility, exact resume, callbacks, and learning."""

import pytest
import torch

from rl4lrm.trainer import Callback, TrainConfig, Trainer

FAST = dict(
    task="addition",
    prompts_per_step=4,
    group_size=4,
    max_new_tokens=6,
    eval_problems=8,
    eval_samples=2,
    eval_every=2,
    device="cpu",
)


def _comparable(history):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in history]


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 0),
        ("group_size", 0),
        ("lr", 0.0),
        ("temperature", 0.0),
        ("top_p", 1.5),
        ("eval_every", -1),
        ("minibatches", 1000),
        ("preset", "nope"),
        ("advantage", "nope"),
        ("clip_low", 1.5),
        ("kl_placement", "loss!"),
        ("rollout_precision", "fp8"),
        ("rollout_engine", "vllm"),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}|{value}"):
        TrainConfig.build(**{field: value})


def test_same_seed_same_metrics():
    a = Trainer(TrainConfig(steps=3, seed=3, **FAST), progress=False)
    b = Trainer(TrainConfig(steps=3, seed=3, **FAST), progress=False)
    a.train(), b.train()
    assert _comparable(a.history) == _comparable(b.history)
    c = Trainer(TrainConfig(steps=3, seed=4, **FAST), progress=False)
    c.train()
    assert _comparable(c.history) != _comparable(a.history)


def test_resume_from_checkpoint_continues_identically(tmp_path):
    straight = Trainer(TrainConfig(steps=4, minibatches=2, **FAST, overrides={"update_epochs": 2}), progress=False)
    straight.train()
    first = Trainer(TrainConfig(steps=2, minibatches=2, **FAST, overrides={"update_epochs": 2}), progress=False)
    first.train()
    first.save(tmp_path / "ckpt.pt")
    resumed = Trainer(TrainConfig(steps=4, minibatches=2, **FAST, overrides={"update_epochs": 2}), progress=False)
    resumed.load(tmp_path / "ckpt.pt")
    resumed.train()
    assert _comparable(resumed.history) == _comparable(straight.history)
    for p, q in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(p, q)


def test_resume_rejects_a_different_config(tmp_path):
    t = Trainer(TrainConfig(steps=1, **FAST), progress=False)
    t.train()
    t.save(tmp_path / "ckpt.pt")
    other = Trainer(TrainConfig(steps=1, lr=3e-3, **FAST), progress=False)
    with pytest.raises(ValueError, match="lr"):
        other.load(tmp_path / "ckpt.pt")


def test_callbacks_and_history_columns():
    seen = []

    class Spy(Callback):
        def on_rollout_end(self, trainer, batch, rewards):
            seen.append(("rollout", rewards.shape[0]))

        def on_step_end(self, trainer, metrics):
            seen.append(("step", metrics["step"]))

        def on_train_end(self, trainer):
            seen.append(("end", trainer.step))

    df = Trainer(TrainConfig(steps=2, **FAST), callbacks=[Spy()], progress=False).train()
    assert seen == [("rollout", 16), ("step", 1), ("rollout", 16), ("step", 2), ("end", 2)]
    for column in [
        "reward/mean",
        "reward/frac_zero_std",
        "loss/policy",
        "kl/k3",
        "entropy/mean",
        "clip/frac",
        "length/mean",
        "acc/pass@1",
        "grad/norm",
    ]:
        assert column in df, column
    assert df["acc/pass@1"].notna().sum() == 2  # before training and at step 2


@pytest.mark.parametrize("placement", ["loss", "reward"])
def test_kl_placements_run(placement):
    df = Trainer(
        TrainConfig(steps=1, **FAST, overrides={"kl_coef": 0.1, "kl_placement": placement}), progress=False
    ).train()
    assert torch.isfinite(torch.tensor(df["loss/total"].iloc[-1]))


def test_grpo_raises_training_reward():
    """The smoke run: 25 GRPO steps on the addition base model raise the reward."""
    config = TrainConfig(
        task="addition", steps=25, prompts_per_step=8, group_size=8, eval_every=25, eval_problems=64, device="cpu"
    )
    df = Trainer(config, progress=False).train()
    rewards = df["reward/mean"].dropna()
    assert rewards.iloc[-5:].mean() > rewards.iloc[:5].mean() + 0.1
    assert df["acc/pass@1"].iloc[-1] > df["acc/pass@1"].iloc[0]


def test_chat_prompt_style_uses_the_chat_template():
    """Instruct models train on chat-formatted prompts: the template reaches the rollouts."""
    from rl4lrm.models.zoo import load_base

    model, tok, task = load_base("addition")
    tok.chat_template = "{% for m in messages %}[{{ m['content'][-6:] }}]{% endfor %}"
    seen = []

    class Spy(Callback):
        def on_rollout_end(self, trainer, batch, rewards):
            seen.extend(tok.batch_decode(batch.prompt_ids, skip_special_tokens=True))

    config = TrainConfig(steps=1, prompt_style="chat", **FAST)
    Trainer(config, model=model, tokenizer=tok, task=task, callbacks=[Spy()], progress=False).train()
    assert seen and all(p.startswith("[") and p.endswith("]") for p in seen)
    with pytest.raises(ValueError, match="prompt_style"):
        TrainConfig(prompt_style="markdown")


def test_critic_presets_refuse_policies_that_do_not_decode_left_to_right():
    from rl4lrm.models.zoo import load_base

    class NonCausal(torch.nn.Module):  # rl4lrm.rollout's hook marks a diffusion or latent-thought policy
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def sample_rollout(self, *args):
            raise AssertionError("not reached")

    _, tok, task = load_base("addition")
    with pytest.raises(ValueError, match="'gae'.*NonCausal.*'grpo'"):
        Trainer(
            TrainConfig(preset="ppo", steps=1, device="cpu"),
            model=NonCausal(),
            tokenizer=tok,
            task=task,
            progress=False,
        )
