"""CustomTask: rows in TRL's shape and a TRL-style reward function as an rl4lrm task."""

import pytest
import torch

from rl4lrm.tasks import TASKS, Addition, CustomTask, get_task
from rl4lrm.trainer import TrainConfig, Trainer


def exact(prompts, completions, answer, **kwargs):
    """A reward function as TRL users write them: 1.0 when the first line is the answer column."""
    return [float(c.split("\n")[0].strip() == a) for c, a in zip(completions, answer)]


def addition_rows(split, n, seed=0):
    return [{"prompt": p.prompt, "answer": p.answer, "digits": 2} for p in Addition().problems(split, n, seed)]


def test_rows_become_problems_with_explicit_splits():
    task = CustomTask(addition_rows("train", 20), exact, test=addition_rows("test", 5))
    assert len(task.splits["train"]) == 20 and len(task.splits["test"]) == 5
    picked = task.problems("train", 8, seed=1)
    assert picked == task.problems("train", 8, seed=1) and picked != task.problems("train", 8, seed=2)
    assert len({p.key for p in picked}) == 8  # no repeats while the split has enough rows
    test = task.problems("test", 12)
    assert len(test) == 12 and {p.key for p in test} == {p.key for p in task.splits["test"]}  # cycles
    assert all(task.split_of(p) == "test" for p in test)
    assert set("0123456789+=") == set(task.alphabet)
    assert task.format_prompt(test[0]) == test[0].prompt and test[0].answer.isdigit()


def test_without_test_rows_a_stable_hash_holds_out_a_fraction():
    rows = addition_rows("train", 60) + addition_rows("test", 20)
    a, b = CustomTask(rows, exact), CustomTask(list(reversed(rows)), exact)
    assert {p.key for p in a.splits["test"]} == {p.key for p in b.splits["test"]}
    assert 0 < len(a.splits["test"]) < len(rows) / 2
    assert not {p.key for p in a.splits["test"]} & {p.key for p in a.splits["train"]}
    with pytest.raises(ValueError, match="split empty; pass test rows"):
        CustomTask(rows[:1], exact)


def test_reward_function_gets_trl_arguments_and_is_the_training_reward():
    seen = {}

    def spy(prompts, completions, **columns):
        seen.update(prompts=prompts, completions=completions, **columns)
        return [0.25 * len(c) for c in completions]

    task = CustomTask(
        [{"prompt": "1+1=", "answer": "2", "level": 1}, {"prompt": "2+2=", "answer": "4"}],
        spy,
        test=[{"prompt": "3+3=", "answer": "6"}],
    )
    problems = task.splits["train"]
    assert task.reward([problems[0], problems[0], problems[1]], ["2", "22", "4"]) == [0.25, 0.5, 0.25]
    assert seen == {
        "prompts": ["1+1=", "1+1=", "2+2="],
        "completions": ["2", "22", "4"],
        "answer": ["2", "2", "4"],
        "level": [1, 1, None],
    }


def test_verify_counts_a_reward_at_correct_at_as_correct():
    task = CustomTask(addition_rows("train", 4), exact, test=addition_rows("test", 2), correct_at=0.5)
    p = task.splits["test"][0]
    assert task.verify(p, p.answer + "\nmore").correct and not task.verify(p, "x").correct


def test_a_datasets_dataset_and_a_conversational_prompt():
    datasets = pytest.importorskip("datasets")
    train = datasets.Dataset.from_list(addition_rows("train", 6))
    test = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "What is 1 + 2?"}], "answer": "3"}])
    task = CustomTask(train, exact, test=test)
    assert [p.prompt for p in task.splits["train"]] == train["prompt"]

    class Template:  # what format_prompt needs from a chat tokenizer
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    problem = task.splits["test"][0]
    assert task.format_prompt(problem, "plain", Template()) == "<user>What is 1 + 2?<assistant>"
    with pytest.raises(ValueError, match="tokenizer"):
        task.format_prompt(problem)
    assert task.reward([problem], ["3"]) == [1.0]


@pytest.mark.parametrize(
    "data, match",
    [
        ([], "train is empty"),
        ([{"question": "1+1=", "answer": "2"}], r"no prompt column 'prompt'; its columns are \['answer', 'question'\]"),
        ([{"prompt": 3}], "must be a string or a list"),
        ("1+1=", "list of dicts or a datasets.Dataset"),
        ([("1+1=", "2")], r"train\[0\] must be a dict"),
    ],
)
def test_bad_data_is_named(data, match):
    with pytest.raises(ValueError, match=match):
        CustomTask(data, exact, test=[{"prompt": "1+1="}])


def test_empty_test_rows_and_a_non_callable_reward_are_rejected():
    with pytest.raises(ValueError, match="test is empty"):
        CustomTask(addition_rows("train", 3), exact, test=[])
    with pytest.raises(ValueError, match="callable"):
        CustomTask(addition_rows("train", 3), "exact")


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda prompts, completions, **kw: [1.0], "returned 1 rewards for 2 completions"),
        (lambda prompts, completions, **kw: ["1", "0"], "finite numbers, got '1'"),
        (lambda prompts, completions, **kw: [None, 1.0], "finite numbers, got None"),
        (lambda prompts, completions, **kw: [float("nan"), 1.0], "finite numbers, got nan"),
        (lambda prompts, completions, **kw: 1.0, "must return a list of 2 floats"),
    ],
)
def test_bad_reward_function_outputs_are_named(fn, match):
    task = CustomTask(addition_rows("train", 3), fn, test=addition_rows("test", 1))
    with pytest.raises(ValueError, match=match):
        task.reward(task.splits["train"][:2], ["1", "2"])


def test_tensor_rewards_are_accepted_and_the_task_is_registered():
    task = get_task(
        "custom",
        train=addition_rows("train", 3),
        test=addition_rows("test", 1),
        reward_fn=lambda prompts, completions, **kw: torch.ones(len(completions)),
    )
    assert "custom" in TASKS.names() and isinstance(task, CustomTask)
    assert task.reward(task.splits["train"][:2], ["a", "b"]) == [1.0, 1.0]


def test_trainer_trains_on_custom_rows_with_the_zoo_model():
    from rl4lrm.models.zoo import load_base

    model, tokenizer, addition = load_base("addition", device="cpu")
    task = CustomTask(addition_rows("train", 64), exact, test=addition_rows("test", 16))
    config = TrainConfig(steps=2, prompts_per_step=4, group_size=4, eval_every=1, eval_problems=8, device="cpu")
    history = Trainer(config, model=model, tokenizer=tokenizer, task=task, progress=False).train()
    assert len(history) == 3 and history["acc/pass@1"].notna().all()
    assert history["reward/mean"].iloc[1:].gt(0).any()  # the zoo model adds: some completions earn the reward
    assert history["acc/pass@1"].iloc[0] > 0.3  # held-out verdicts from the reward function agree with it
    originals = Addition().problems("test", 4)  # the rows of task.splits["test"][:4], in order
    completions = [p.answer for p in originals] + ["0", "x", " " + originals[0].answer + "\n1"]
    picks = [0, 1, 2, 3, 0, 1, 0]
    ours = task.reward([task.splits["test"][i] for i in picks], completions)
    assert ours == addition.reward([originals[i] for i in picks], completions)  # the verifier's verdicts
