"""rl4lrm.tasks.gym: reasoning-gym generators as tasks, end to end on a handful of them."""

from __future__ import annotations

import pytest

from rl4lrm.tasks import ReasoningGymTask, get_task

pytest.importorskip("reasoning_gym", reason="reasoning-gym is in the test extra: pip install -e '.[test]'")

HANDFUL = ["basic_arithmetic", "chain_sum", "leg_counting", "letter_counting", "word_sorting", "gcd"]


@pytest.mark.parametrize("name", HANDFUL)
def test_a_generator_splits_prompts_and_scores_with_its_own_verifier(name):
    task = get_task("reasoning_gym", dataset=name, size=200, seed=0)
    train, test = task.problems("train", 20, seed=0), task.problems("test", 10, seed=0)
    assert not {p.key for p in train} & {p.key for p in test}
    problem = test[0]
    assert task.format_prompt(problem) == problem.question
    right, wrong = f"<answer>{problem.answer}</answer>", "<answer>@@@</answer>"
    assert task.verify(problem, right).correct and task.reward([problem], [right]) == [1.0]
    assert not task.verify(problem, wrong).correct and task.reward([problem], [wrong]) == [0.0]
    assert not task.verify(problem, "").well_formed  # no answer at all


def test_the_generators_settings_are_its_difficulty_knobs():
    easy = ReasoningGymTask("chain_sum", size=50, min_terms=2, max_terms=2, min_digits=1, max_digits=1)
    hard = ReasoningGymTask("chain_sum", size=50, min_terms=4, max_terms=4, min_digits=3, max_digits=3)
    assert max(abs(int(p.answer)) for p in easy.all) <= 18 < max(abs(int(p.answer)) for p in hard.all)


def test_bad_names_and_settings_are_named():
    with pytest.raises(ValueError, match=r"unknown reasoning-gym dataset 'chian_sum'; choose one of \[.*'chain_sum'"):
        ReasoningGymTask("chian_sum")
    with pytest.raises(ValueError, match=r"reasoning-gym 'chain_sum' rejected .*'min_terms': 5"):
        ReasoningGymTask("chain_sum", min_terms=5, max_terms=2)
    with pytest.raises(ValueError, match="correct_at must be in"):
        ReasoningGymTask("chain_sum", correct_at=0)


def test_grpo_trains_on_a_generator_with_a_tiny_model_of_its_alphabet():
    from rl4lrm.models.tiny import tiny_model
    from rl4lrm.models.tokenizer import char_tokenizer
    from rl4lrm.trainer import TrainConfig, Trainer

    task = ReasoningGymTask("chain_sum", size=100, min_terms=2, max_terms=2, min_digits=1, max_digits=1)
    tokenizer = char_tokenizer(task.alphabet)
    model = tiny_model("nano", tokenizer, max_positions=128)
    config = TrainConfig(
        steps=2,
        prompts_per_step=2,
        group_size=4,
        max_new_tokens=4,
        eval_every=1,
        eval_problems=4,
        eval_samples=1,
        device="cpu",
    )
    history = Trainer(config, model=model, tokenizer=tokenizer, task=task, progress=False).train()
    assert len(history.dropna(subset=["acc/pass@1"])) == 3 and history["reward/mean"].dropna().between(0, 1).all()


def test_the_gallery_shows_one_problem_per_generator_and_what_a_tiny_model_could_read():
    from rl4lrm.tasks.gym import gallery

    table = gallery(["basic_arithmetic", "leg_counting"], fits_chars=64)
    assert list(table["dataset"]) == ["basic_arithmetic", "leg_counting"]
    assert (table["chars"] == table["question"].str.len()).all()
    assert list(table["tiny model"]) == list(table["chars"] <= 64)  # leg counting writes a paragraph
    assert not table["tiny model"].all() and table["tiny model"].any()
