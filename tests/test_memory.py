"""Memory-based RL: the memory sampler's config, injection, bookkeeping, checkpoints and the study's tables."""

import io

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

from rl4lrm.experiments.memory import ARMS, MemoryRun, memory_runs, run_table, summary, train_arm
from rl4lrm.models.zoo import load_task
from rl4lrm.rollout import compute_logprobs, rollout
from rl4lrm.sampling import SAMPLERS, MemoryConfig, MemorySampler, inject_rows
from rl4lrm.trainer import TrainConfig, Trainer

matplotlib.use("Agg")

# small countdown runs: B=4 prompts, G=4 samples, a pool of 8 problems
FAST = dict(
    task="countdown", prompts_per_step=4, group_size=4, eval_problems=8, eval_samples=1, eval_every=0, device="cpu"
)


def _trainer(steps=1, sampler="memory", **sampling):
    config = TrainConfig.build(**FAST, steps=steps, sampler=sampler, sampling={"pool_size": 8, **sampling})
    return Trainer(config, progress=False)


def _answer_ids(trainer, problem):
    """The token ids of the problem's canonical answer, EOS included: a verified solution."""
    tok = trainer.tokenizer
    return tok(problem.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


# ----------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [("inject", -1), ("capacity", -2), ("keep", "best"), ("pool_size", -1)])
def test_memory_config_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        MemoryConfig(**{field: value})


def test_memory_sampler_needs_a_pool_and_room_for_fresh_samples():
    assert SAMPLERS.get("memory") is MemorySampler
    with pytest.raises(ValueError, match="pool_size"):
        TrainConfig(**FAST, sampler="memory")
    with pytest.raises(ValueError, match="inject=4 must be below group_size=4"):
        TrainConfig(**FAST, sampler="memory", sampling={"pool_size": 8, "inject": 4})
    with pytest.raises(ValueError, match="no setting"):
        TrainConfig(**FAST, sampler="memory", sampling={"pool_size": 8, "size": 3})
    cfg = TrainConfig(**FAST, sampler="memory", sampling={"pool_size": 8, "inject": 3, "keep": "latest"})
    assert cfg.sampling == MemoryConfig(pool_size=8, inject=3, keep="latest")


# ----------------------------------------------------------------------------------------- remember
def test_remember_keeps_shortest_first_or_latest_and_evicts_the_oldest():
    task = load_task("countdown")

    def memory(**kw):
        return MemorySampler(MemoryConfig(pool_size=8, **kw), task, seed=0)

    for keep, expected in [("shortest", [1, 2]), ("first", [1, 2, 3]), ("latest", [4, 5, 6, 7])]:
        m = memory(keep=keep)
        for ids in ([1, 2, 3], [1, 2], [4, 5, 6, 7]):
            m.remember("a", ids, str(ids))
        assert m.memory["a"] == (expected, str(expected)), keep
    m = memory(capacity=2)
    for key in "abc":
        m.remember(key, [1], key)
    assert list(m.memory) == ["b", "c"]  # the oldest entry went first
    m.remember("b", [2], "b again")  # shortest keeps [1]: nothing moves
    m.remember("d", [1], "d")
    assert list(m.memory) == ["c", "d"]


# ----------------------------------------------------------------------------------------- injection
def test_inject_rows_writes_the_solution_and_its_current_logprobs():
    trainer = _trainer()
    model, tok = trainer.model, trainer.tokenizer
    problems = trainer.task.problems("train", 2, seed=3)
    prompts = [trainer.task.format_prompt(p, "plain", tok) for p in problems]
    batch = rollout(model, tok, prompts, 3, 4, generator=torch.Generator().manual_seed(0))  # short: 4 tokens
    before = batch.completion_ids.clone(), batch.old_logprobs.clone()
    long = _answer_ids(trainer, problems[1]) + [tok.eos_token_id] * 3  # wider than the batch
    new = inject_rows(batch, [5], [long], ["text"], model, tok.pad_token_id)
    T = batch.completion_ids.shape[1]
    assert new.completion_ids.shape[1] == len(long) > T
    assert new.completion_ids[5].tolist() == long and new.response_mask[5].sum() == len(long)
    assert new.completions[5] == "text" and not new.truncated[5]
    for row in range(5):  # the other rows are the old ones, right-padded
        assert torch.equal(new.completion_ids[row, :T], batch.completion_ids[row])
        assert torch.equal(new.old_logprobs[row, :T], batch.old_logprobs[row])
        assert (new.completion_ids[row, T:] == tok.pad_token_id).all() and new.response_mask[row, T:].sum() == 0
    with torch.no_grad():
        current, _ = compute_logprobs(model, new)
    assert torch.allclose(new.old_logprobs[5], current[5], atol=1e-5)  # the ratio starts at 1
    assert (new.old_logprobs[5, : len(long)] < 0).all()
    assert torch.equal(batch.completion_ids, before[0]) and torch.equal(batch.old_logprobs, before[1])  # a copy
    with pytest.raises(ValueError, match="one solution and text per row"):
        inject_rows(batch, [0, 1], [long], ["x"], model, tok.pad_token_id)


def test_control_arm_samples_exactly_what_the_flat_sampler_does():
    flat, control = _trainer(sampler="flat"), _trainer(inject=0)
    a, b = flat.collect(), control.collect()
    assert [p.key for p in a.problems] == [p.key for p in b.problems]
    assert a.batch.completions == b.batch.completions
    assert torch.equal(a.batch.old_logprobs, b.batch.old_logprobs) and torch.equal(a.rewards, b.rewards)
    assert b.metrics["memory/injected"] == 0


def test_all_wrong_groups_get_the_remembered_solution():
    trainer = _trainer(inject=2)
    G, sampler = trainer.config.group_size, trainer.sampler
    for p in sampler.source.pool:  # a verified solution of every pool problem
        assert trainer.task.verify(p, p.answer).correct
        sampler.remember(p.key, _answer_ids(trainer, p), p.answer)
    fresh = _trainer(sampler="flat").collect().batch  # what the sampler draws before it injects
    ctx = trainer.sampling_context()
    out = sampler.sample(ctx)
    fresh_correct = torch.tensor(trainer.task.reward(ctx.per_row(out.problems), fresh.completions)).view(-1, G)
    wrong = (fresh_correct == 0).all(1)  # (B,)
    assert 0 < wrong.sum() < len(wrong)  # this seeded step has both kinds of group
    assert out.metrics["memory/injected"] == 2 * wrong.sum().item()
    assert out.metrics["memory/hit_rate"] == 1.0
    correct = out.scores.correct.view(-1, G)
    for b in range(len(out.problems)):
        rows = range(b * G, (b + 1) * G)
        if wrong[b]:
            assert [out.batch.completions[r] for r in rows[-2:]] == [out.problems[b].answer] * 2
            assert correct[b, -2:].tolist() == [1, 1] and correct[b, :-2].sum() == 0
        else:
            assert [out.batch.completions[r] for r in rows] == fresh.completions[b * G : (b + 1) * G]
    with torch.no_grad():
        current, _ = compute_logprobs(trainer.model, out.batch)
    injected = [b * G + j for b in wrong.nonzero().squeeze(-1).tolist() for j in (G - 2, G - 1)]
    assert torch.allclose(out.batch.old_logprobs[injected], current[injected], atol=1e-5)


# ----------------------------------------------------------------------------------------- training
def test_memory_training_logs_and_resumes_exactly(tmp_path):
    straight = _trainer(steps=3)
    df = straight.train()
    steps = df[df.step > 0]
    for column in ["memory/size", "memory/injected", "memory/hit_rate", "memory/pool_solved", "memory/fresh_correct"]:
        assert steps[column].notna().all(), column
    assert (steps["reward/frac_zero_std"] <= steps["memory/fresh_frac_zero_std"]).all()  # injection only adds signal
    assert (steps["memory/pool_solved"].diff().dropna() >= 0).all()
    assert steps["memory/size"].iloc[-1] == len(straight.sampler.memory) <= 8
    first = _trainer(steps=2)
    first.train()
    first.save(tmp_path / "ckpt.pt")
    state = first.sampler.state_dict()
    assert torch.load(io.BytesIO(_saved(state)), weights_only=True) == state  # plain lists and strings
    resumed = _trainer(steps=3)
    resumed.load(tmp_path / "ckpt.pt")
    assert resumed.sampler.memory == first.sampler.memory and resumed.sampler.solved == first.sampler.solved
    resumed.train()
    comparable = [{k: v for k, v in row.items() if not k.startswith("time/")} for row in resumed.history]
    assert comparable == [{k: v for k, v in row.items() if not k.startswith("time/")} for row in straight.history]
    assert resumed.sampler.memory == straight.sampler.memory


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------- the study
def _run(arm, seed, acc, zero, fresh_zero, solved, injected, pool_acc):
    history = pd.DataFrame(
        {
            "step": [0, 1, 2],
            "acc/pass@1": [0.1, float("nan"), acc],
            "reward/frac_zero_std": [float("nan"), zero, zero],
            "memory/fresh_frac_zero_std": [float("nan"), fresh_zero, fresh_zero],
            "memory/fresh_correct": [float("nan"), 0.2, 0.4],
            "memory/pool_solved": [float("nan"), solved / 2, solved],
            "memory/injected": [float("nan"), injected, 0],
        }
    )
    return MemoryRun(arm, seed, history, pool_acc)


def test_run_table_and_summary_by_hand():
    runs = [
        _run("flat", 0, 0.2, 0.5, 0.5, 0.6, 0, 0.3),
        _run("flat", 1, 0.4, 0.3, 0.3, 0.8, 0, 0.5),
        _run("memory", 0, 0.3, 0.25, 0.5, 0.7, 3, 0.6),
    ]
    table = run_table(runs)
    assert table.acc_start.tolist() == [0.1] * 3 and table.acc_end.tolist() == [0.2, 0.4, 0.3]
    assert table.injected.tolist() == [0, 0, 3] and table.fresh_correct.tolist() == pytest.approx([0.3] * 3)
    s = summary(runs).set_index("arm")
    assert s.loc["flat", "acc_end"] == pytest.approx(0.3) and s.loc["flat", "seeds"] == 2
    assert s.loc["flat", "acc_end_std"] == pytest.approx(0.1414, abs=1e-4)
    assert s.loc["memory", "zero_signal"] == 0.25 and s.loc["memory", "fresh_zero_signal"] == 0.5
    assert s.loc["flat", "pool_solved"] == pytest.approx(0.7) and s.loc["memory", "pool_acc"] == 0.6
    with pytest.raises(ValueError, match="at least one run"):
        summary([])


def test_study_rejects_unknown_arms():
    assert ARMS["flat"]["inject"] == 0 and ARMS["memory"]["inject"] >= 1
    with pytest.raises(ValueError, match="unknown arms"):
        memory_runs(["replay"], progress=False)
    with pytest.raises(ValueError, match="unknown arm"):
        train_arm("replay", steps=1)


def test_plot_memory_draws_each_arm_and_names_missing_columns():
    from rl4lrm.experiments.memory import training_curves
    from rl4lrm.viz.memory import plot_memory

    runs = [_run("flat", 0, 0.2, 0.5, 0.5, 0.6, 0, 0.3), _run("memory", 0, 0.3, 0.25, 0.5, 0.7, 3, 0.6)]
    fig = plot_memory(training_curves(runs))
    assert len(fig.axes) == 3 and all(len(ax.lines) == 2 for ax in fig.axes)
    assert fig.axes[0].lines[1].get_ydata().tolist() == [0.1, 0.3]  # the memory arm's held-out evaluations
    with pytest.raises(ValueError, match="memory/pool_solved"):
        plot_memory(training_curves(runs).drop(columns="memory/pool_solved"))
    plt.close("all")
