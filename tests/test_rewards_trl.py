"""The TRL contract: our rewards called exactly as TRL's GRPOTrainer calls them, and one real GRPOTrainer step."""

import math
import pickle

import pytest
import torch

pytest.importorskip("trl")

from rl4lrm.rewards import RewardContext, RewardMix, shaping, verifiable  # noqa: F401 (importing registers rewards)
from rl4lrm.rewards.trl import (
    TokenBatch,
    as_trl_reward,
    completion_text,
    problem_from_json,
    problem_to_json,
    to_trl_dataset,
)
from rl4lrm.tasks.addition import Addition
from rl4lrm.tasks.countdown import Countdown

TASK = Addition(2)


def trl_call(reward_func, rows, completions, completion_ids=None):
    """Calls ``reward_func`` the way ``GRPOTrainer._calculate_rewards`` (TRL 1.x) does: every dataset
    column but prompt/completion/completion_ids as a keyword list, plus the trainer's extras."""
    keys = [key for key in rows[0] if key not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {key: [row[key] for row in rows] for key in keys}
    reward_kwargs["trainer_state"] = object()
    reward_kwargs["log_extra"] = lambda *args, **kwargs: None
    reward_kwargs["log_metric"] = lambda *args, **kwargs: None
    prompts = [row["prompt"] for row in rows]
    return reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids, **reward_kwargs)


def grouped_rows(problems, group_size):
    rows = to_trl_dataset(TASK, problems, as_list=True)
    return [row for row in rows for _ in range(group_size)]  # TRL repeats each prompt num_generations times


def test_dataset_columns_and_problem_round_trip():
    problems = TASK.problems("train", 3, seed=0)
    rows = to_trl_dataset(TASK, problems, as_list=True)
    assert [set(r) for r in rows] == [{"prompt", "answer", "problem"}] * 3
    assert [r["prompt"] for r in rows] == [p.prompt for p in problems]
    assert [problem_from_json(r["problem"]) for r in rows] == problems
    countdown = Countdown().problems("train", 2, seed=0)  # meta holds a tuple of numbers
    assert [problem_from_json(problem_to_json(p)) for p in countdown] == countdown
    assert isinstance(problem_from_json(problem_to_json(countdown[0])).meta["numbers"], tuple)
    dataset = to_trl_dataset(TASK, problems)
    assert type(dataset).__name__ == "Dataset" and dataset.column_names == ["prompt", "answer", "problem"]
    chat = to_trl_dataset(TASK, problems, style="chat", as_list=True)
    assert chat[0]["prompt"][0]["role"] == "user" and problems[0].question in chat[0]["prompt"][0]["content"]
    with pytest.raises(ValueError, match=r"style must be one of \('plain', 'chat'\), got 'html'"):
        to_trl_dataset(TASK, problems, style="html")


def test_called_like_grpo_trainer_standard_format():
    problems = TASK.problems("train", 2, seed=0)
    rows = grouped_rows(problems, 3)
    a, b = problems[0].answer, problems[1].answer
    completions = [a, f"<answer>{a}.0</answer>", "7", b, "", f"{b} is it"]
    numeric = as_trl_reward("numeric", TASK)
    assert numeric.__name__ == "numeric"
    assert trl_call(numeric, rows, completions) == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    lenient = as_trl_reward("numeric", TASK, extract="lenient", func_name="numeric_lenient")
    assert lenient.__name__ == "numeric_lenient"
    assert trl_call(lenient, rows, completions) == [1.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert trl_call(as_trl_reward("correct", TASK), rows, completions) == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    out = trl_call(numeric, rows, completions)
    assert isinstance(out, list) and all(type(v) is float for v in out)


def test_called_like_grpo_trainer_conversational_format():
    problems = TASK.problems("train", 1, seed=0)
    rows = [dict(r) for r in to_trl_dataset(TASK, problems, style="chat", as_list=True)] * 3
    a = problems[0].answer
    completions = [
        [{"role": "assistant", "content": f"<think>add</think><answer>{a}</answer>"}],
        [{"role": "assistant", "content": [{"type": "text", "text": f"<answer>{a}</answer>"}]}],
        [{"role": "assistant", "content": "<answer>0</answer>"}],
    ]
    assert trl_call(as_trl_reward("exact_match", TASK), rows, completions) == [1.0, 1.0, 0.0]
    assert trl_call(as_trl_reward("format", TASK), rows, completions) == [1.0, 0.0, 0.0]
    assert (
        completion_text(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}, {"role": "tool", "content": "t"}]
        )
        == "x"
    )
    assert completion_text(None) == "" and completion_text([]) == ""


def test_length_rewards_read_completion_ids():
    problems = TASK.problems("train", 1, seed=0)
    rows = grouped_rows(problems, 4)
    eos = 2
    ids = [[5, eos], [5, 6, 7, 8, 9, 10, eos], [5, 6, 7, 8, 9, 10, 11, 12], []]
    ctx = RewardContext(max_new_tokens=8)
    overlong = as_trl_reward("soft_overlong", TASK, ctx=ctx, cache_len=4)
    assert trl_call(overlong, rows, ["x"] * 4, ids) == [0.0, -0.75, -1.0, 0.0]
    with pytest.raises(ValueError, match="needs completion_ids"):
        trl_call(overlong, rows, ["x"] * 4)
    # cosine: truncation from the tokenizer's EOS (TRL's rule), else from hitting max_new_tokens
    tok = type("Tok", (), {"eos_token_id": eos})()
    cos = as_trl_reward("cosine_length", TASK, ctx=RewardContext(max_new_tokens=100, tokenizer=tok))
    a = problems[0].answer
    got = trl_call(cos, rows, [a, a, a, a], [[5, eos], [5, 6], [5, eos], [5] * 100])
    first = 1 + 0.5 * (1 + math.cos(math.pi * 2 / 100))
    assert got == pytest.approx([first, -10.0, first, -10.0])
    batch = TokenBatch.from_ids([[1, 2], [3]], max_new_tokens=2)
    assert batch.lengths.tolist() == [2.0, 1.0] and batch.truncated.tolist() == [True, False]


def test_mix_none_rows_and_errors():
    problems = TASK.problems("train", 1, seed=0)
    rows = grouped_rows(problems, 3)
    rows[2] = dict(rows[2], problem=None)  # e.g. a row from another source that our reward does not apply to
    a = problems[0].answer
    mix = RewardMix({"numeric": 1.0, "format": (0.5, {"pattern": "answer_tag"})})
    f = as_trl_reward(mix, TASK)
    assert f.__name__ == "numeric+format"
    assert trl_call(f, rows, [f"<answer>{a}</answer>", a, a]) == [1.5, 1.0, None]
    assert trl_call(f, [dict(r, problem=None) for r in rows], ["x"] * 3) == [None, None, None]
    with pytest.raises(ValueError, match="go inside the RewardMix spec"):
        as_trl_reward(mix, TASK, extract="lenient")
    with pytest.raises(ValueError, match="unknown reward 'nope'; known: "):
        as_trl_reward("nope", TASK)
    with pytest.raises(TypeError, match="must be a reward name or a RewardMix, got 3"):
        as_trl_reward(3, TASK)
    with pytest.raises(ValueError, match="needs a 'problem' dataset column"):
        as_trl_reward("numeric", TASK)(prompts=["1+1="], completions=["2"], completion_ids=None, answer=["2"])
    with pytest.raises(ValueError, match=r"extract must be one of \('strict', 'lenient'\), got 'x'"):
        trl_call(as_trl_reward("numeric", TASK, extract="x"), rows, ["1"] * 3)


def test_pickles():
    f = pickle.loads(pickle.dumps(as_trl_reward("numeric", TASK, ctx=RewardContext(max_new_tokens=8))))
    assert f.__name__ == "numeric"
    rows = grouped_rows(TASK.problems("train", 1, seed=0), 1)
    assert trl_call(f, rows, [rows[0]["answer"]]) == [1.0]


class Recorder:
    """Passes TRL's calls through to a reward function and keeps its outputs."""

    def __init__(self, func):
        self.func, self.__name__, self.outputs = func, func.__name__, []

    def __call__(self, **kwargs):
        out = self.func(**kwargs)
        self.outputs.append(out)
        return out


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers deprecations raised inside TRL
def test_real_grpo_trainer_step(tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    from rl4lrm.models.zoo import load_base

    torch.manual_seed(0)
    model, tokenizer, task = load_base("addition")
    dataset = to_trl_dataset(task, task.problems("train", 4, seed=0))
    ctx = RewardContext(max_new_tokens=8, tokenizer=tokenizer)
    numeric = Recorder(as_trl_reward("numeric", task))
    overlong = Recorder(as_trl_reward("soft_overlong", task, ctx=ctx, cache_len=4))
    config = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=[numeric, overlong], args=config, train_dataset=dataset
    )
    trainer.train()
    logs = trainer.state.log_history[0]
    assert trainer.state.global_step == 1
    assert len(numeric.outputs) == len(overlong.outputs) == 1 and len(numeric.outputs[0]) == 4
    assert logs["rewards/numeric/mean"] == pytest.approx(sum(numeric.outputs[0]) / 4)
    assert logs["rewards/soft_overlong/mean"] == pytest.approx(sum(overlong.outputs[0]) / 4)
    assert all(v in (0.0, 1.0) for v in numeric.outputs[0]) and all(-1 <= v <= 0 for v in overlong.outputs[0])
