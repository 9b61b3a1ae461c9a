"""Tiny VLM: counting images and their verifier, patches, the image prefix, rollout hooks, RL through Trainer."""

import pandas as pd
import pytest
import torch

from rl4lrm.rollout import compute_logprobs, rollout
from rl4lrm.tasks import Problem
from rl4lrm.vision.model import VisionConfig, VisionLM, new_vision_model, patchify, vision_tokenizer
from rl4lrm.vision.task import PIXEL_TOKENS, CountingTask, error_kind, image_tokens, read_counts


@pytest.fixture(scope="module")
def tok():
    return vision_tokenizer()


@pytest.fixture(scope="module")
def task():
    return CountingTask()


@pytest.fixture
def model(tok):
    return new_vision_model(tok, VisionConfig(), preset="nano", seed=1)


def test_tokenizer_keeps_char_ids_and_appends_pixels(tok):
    from rl4lrm.models.tokenizer import char_tokenizer

    base = char_tokenizer()
    assert tok("r+b?3+2=5")["input_ids"] == base("r+b?3+2=5")["input_ids"]
    assert tok.convert_tokens_to_ids(PIXEL_TOKENS) == list(range(len(base), len(base) + len(PIXEL_TOKENS)))
    assert tok("<p0><p4>r+b?", add_special_tokens=False)["input_ids"][:2] == [len(base), len(base) + 4]


def test_problems_are_reproducible_split_and_counted_right(task, tok):
    train, test = task.problems("train", 50, seed=3), task.problems("test", 50, seed=3)
    assert [p.key for p in train] == [p.key for p in task.problems("train", 50, seed=3)]
    assert not {p.key for p in train} & {p.key for p in test}
    for p in train:
        pixels = task.pixels(p)
        for colour, n in p.meta["counts"].items():  # squares of (cell - 1)^2 pixels never overlap: area / 4 counts them
            assert (pixels == "rgby".index(colour) + 1).sum() == n * (task.cell - 1) ** 2
        x, y = p.meta["asked"]
        assert p.answer == str(p.meta["counts"][x] + p.meta["counts"][y])
        assert p.prompt == image_tokens(pixels) + f"{x}+{y}?"
        assert len(tok(p.prompt, add_special_tokens=False)["input_ids"]) == task.size**2 + 4
        assert task.verify(p, p.meta["target"]).correct


def test_hand_made_image_and_verifier():
    task = CountingTask(grid=2, cell=3, max_count=1, max_distractors=0)
    pixels = task.render([("r", 0, 0, 0, 0), ("b", 1, 1, 1, 1)])
    assert pixels.tolist() == [
        [1, 1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 3, 3],
        [0, 0, 0, 0, 3, 3],
    ]
    p = Problem(
        "", image_tokens(pixels) + "r+b?", "2", {"counts": {"r": 1, "g": 0, "b": 1, "y": 0}, "asked": ("r", "b")}, "k"
    )
    assert task.verify(p, "1+1=2").correct and task.verify(p, "2").correct
    assert not task.verify(p, "1+1=3").correct and task.verify(p, "1+1=3").well_formed
    assert not task.verify(p, "1+1=x").well_formed and task.verify(p, "").reason == "no answer"


def test_error_kind_on_hand_made_completions(task):
    p = Problem("", "", "5", {"counts": {"r": 3, "g": 1, "b": 2, "y": 0}, "asked": ("r", "b")}, "k")
    assert error_kind(p, "3+2=5") == "correct"
    assert error_kind(p, "2+3=5") == "correct"  # the answer is graded, not the counts
    assert error_kind(p, "2+2=4") == "perception"
    assert error_kind(p, "3+1=4") == "perception"
    assert error_kind(p, "3+2=6") == "reasoning"
    assert error_kind(p, "6") == "format" and error_kind(p, "") == "format"
    assert read_counts("3+2=5\nxx") == (3, 2, 5) and read_counts("3+2") is None


def test_strict_verifier_grades_the_counts():
    p = Problem("", "", "5", {"counts": {"r": 3, "g": 1, "b": 2, "y": 0}, "asked": ("r", "b")}, "k")
    strict = CountingTask(strict=True)
    assert strict.verify(p, "3+2=5").correct and CountingTask().verify(p, "4+1=5").correct
    assert strict.verify(p, "4+1=5").reason == "counts misread" and not strict.verify(p, "5").correct


@pytest.mark.parametrize(
    "kwargs, match",
    [({"grid": 1}, "grid"), ({"max_count": 0}, "max_count"), ({"grid": 2, "max_count": 2}, "do not fit")],
)
def test_task_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CountingTask(**kwargs)


def test_vision_config_validation():
    with pytest.raises(ValueError, match="patch_size=5 must divide image_size=12"):
        VisionConfig(patch_size=5)
    with pytest.raises(ValueError, match="encoder_dim"):
        VisionConfig(encoder_dim=0)


def test_patchify_shapes_and_order():
    images = torch.arange(2 * 4 * 4 * 3, dtype=torch.float32).view(2, 4, 4, 3)
    patches = patchify(images, 2)  # (2, 4, 12)
    assert patches.shape == (2, 4, 12)
    assert torch.equal(patches[1, 3].view(2, 2, 3), images[1, 2:4, 2:4])  # bottom-right patch, row-major
    assert torch.equal(patches[0, 1].view(2, 2, 3), images[0, 0:2, 2:4])
    assert patchify(images, 4).shape == (2, 1, 48) and patchify(images, 1).shape == (2, 16, 3)


def test_image_prefix_replaces_pixel_tokens(task, tok, model):
    problems = task.problems("test", 3, seed=0)
    enc = tok([p.prompt for p in problems], return_tensors="pt", add_special_tokens=False, padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    images = model.images(ids, mask)
    assert torch.equal(images[0], model.palette[torch.as_tensor(task.pixels(problems[0]))])
    embeds, emask = model.embed_prompt(ids, mask)
    n = model.config.n_patches
    assert embeds.shape == (3, n + 4, model.net.config.hidden_size) and emask.shape == (3, n + 4)
    assert torch.allclose(embeds[:, :n], model.encode_image(images))
    assert torch.allclose(embeds[:, n:], model.net.get_input_embeddings()(ids[:, -4:]))
    # the answer depends on the image: change one pixel, the logits change
    other = ids.clone()
    other[0, 0] = model.pixel0 + 1 if other[0, 0] != model.pixel0 + 1 else model.pixel0
    c_ids, c_mask = torch.tensor([[5, 6]] * 3), torch.ones(3, 2, dtype=torch.long)
    assert not torch.allclose(model(ids, mask, c_ids, c_mask)[0], model(other, mask, c_ids, c_mask)[0])
    with pytest.raises(ValueError, match="pixel tokens"):
        model.embed_prompt(ids[:, 1:], mask[:, 1:])


def test_rollout_logprobs_agree_with_training_forward(task, tok, model):
    prompts = [p.prompt for p in task.problems("train", 4, seed=0)]
    prompts[1] = prompts[1][: -len("r+b?")] + "r?"  # a shorter question: left padding between image and text
    gen = torch.Generator().manual_seed(0)
    batch = rollout(model, tok, prompts, group_size=3, max_new_tokens=6, temperature=1.0, generator=gen)
    assert batch.completion_ids.shape[0] == 12 and batch.group_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    logprobs, entropy = compute_logprobs(model, batch, with_entropy=True)
    assert torch.allclose(logprobs, batch.old_logprobs, atol=1e-4)
    assert (entropy >= 0).all()
    # gradients reach the LM, the projector and the patch encoder
    (logprobs.sum()).backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0 and model.projector[0].weight.grad.abs().sum() > 0
    greedy = rollout(model, tok, prompts, 1, 6, temperature=0.0)
    assert greedy.completions == rollout(model, tok, prompts, 1, 6, temperature=0.0).completions


def test_exercise_checkers_accept_the_library_and_reject_a_wrong_answer(capsys):
    from rl4lrm.vision.exercises import check_error_kind, check_patchify

    assert check_patchify(patchify)
    assert not check_patchify(lambda x, p: patchify(x.transpose(1, 2), p))
    assert check_error_kind(error_kind)
    assert not check_error_kind(lambda problem, completion: "perception")

    def stub(x, p):
        raise NotImplementedError

    assert not check_patchify(stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_smoke_sft_then_grpo_raises_reward(tok):
    """SFT a nano VLM briefly on an easy version of the task, then GRPO through the ordinary Trainer."""
    from rl4lrm.vision.studies import vision_rl
    from rl4lrm.vision.train import VisionSFTConfig, train_vision

    task = CountingTask(grid=2, cell=2, max_count=1, max_distractors=0)
    torch.manual_seed(0)
    m = new_vision_model(tok, VisionConfig(image_size=4, patch_size=2, encoder_dim=16), preset="nano", seed=0)
    train_vision(m, tok, task, VisionSFTConfig(steps=40, lr=3e-3, warmup=5, train_problems=500), progress=False)
    history, trained = vision_rl(m, tok, task, steps=20, lr=3e-3, prompts_per_step=8, group_size=8, eval_every=0)
    rewards = history["reward/mean"].dropna().to_numpy()
    assert rewards[-5:].mean() > rewards[:5].mean() + 0.15
    assert trained is not m


def test_shipped_base_loads_and_reads_images_imperfectly():
    from rl4lrm.vision.studies import answer_table, summarize
    from rl4lrm.vision.train import load_vision_base

    model, tok, task = load_vision_base()
    assert isinstance(model, VisionLM) and isinstance(task, CountingTask)
    numbers = summarize(model, tok, task, n_problems=64, n_samples=2)
    assert 0.25 < numbers["greedy"] < 0.8, numbers  # room for RL
    assert numbers["greedy/perception"] > numbers["greedy/reasoning"]  # a perception-limited base
    table = answer_table(model, tok, task, task.problems("test", 8, seed=0))
    assert set(table["kind"]) <= {"correct", "perception", "reasoning", "format"} and len(table) == 8


def test_panel_run_measures_trains_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.vision.train import load_vision_base
    from rl4lrm.vision.viz import VisionPanel

    model, tok, task = load_vision_base()
    panel = VisionPanel(model, tok, task, rl_steps=3, eval_problems=16)
    result = panel.run()
    assert list(result["frame"]["model"]) == ["base", "GRPO"] and "history" in result
    assert result["models"]["GRPO"] is not model


def test_answer_grid_title_sits_above_the_images_titles():
    import matplotlib

    matplotlib.use("Agg")
    from rl4lrm.vision.viz import plot_answers

    task = CountingTask()
    problems = task.problems("test", 4, seed=0)
    table = pd.DataFrame([{"asked": "b+r", "completion": "1+2=3", "kind": "correct"}] * 4)
    fig = plot_answers(task, problems, table, title="GRPO")
    renderer = fig.canvas.get_renderer()
    assert fig.get_suptitle() == "GRPO"
    title = fig.texts[0].get_window_extent(renderer)  # the suptitle, the figure's only text
    tops = max(ax.title.get_window_extent(renderer).y1 for ax in fig.axes)
    assert title.y0 >= tops - 2  # above the images' titles, not among them (2 px of text padding)
