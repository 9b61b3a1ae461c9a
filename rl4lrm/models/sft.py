"""Supervised fine-tuning (SFT): the recipe that turns a random tiny model into a base model.

RL for reasoning starts from a model that already samples correct answers sometimes (DeepSeek-R1
starts from a pretrained base, TinyZero from Qwen2.5-3B). Our tiny models have no pretraining, so
a short SFT run on reference solutions of the train split plays that role.

A pretraining corpus is not clean, and a pretrained model samples plausible wrong answers next
to right ones. ``SFTConfig.noise`` reproduces that: a fraction of the training answers get one
character replaced at random. The resulting base model usually ranks the right answer first but
often samples a near miss, so sampled pass@1 is well below 1 while pass@k at large k is high —
the situation in which Yue et al. (2025, https://arxiv.org/abs/2504.13837) find RL sharpening
what the base model already knows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from rl4lrm.tasks import Task
from rl4lrm.utils import resolve_device
from rl4lrm.validation import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, check_fields, named_keywords


@named_keywords()
@dataclass
class SFTConfig:
    """Hyperparameters of the SFT recipe (defaults train a tiny model on CPU in about a minute)."""

    steps: int = 1000
    """Optimizer steps. Fewer steps leave a weaker base model (lower pass@1)."""
    batch_size: int = 64
    """Problems per step."""
    chunks: int = 1
    """Pieces each step's batch is cut into, by length, before padding: the shortest examples are padded together
    and the longest together, their losses summed over all the batch's answer tokens, so the step's gradient is the
    one of the whole batch (equal up to float rounding) at less padding. Worth it where lengths vary a lot (written
    searches: 4 pieces pad about 1.4x the real tokens instead of 2.9x); 1 pads the whole batch at once."""
    lr: float = 3e-3
    """Peak AdamW learning rate, reached after ``warmup`` steps, then cosine decay to 10%."""
    warmup: int = 50
    """Linear warm-up steps."""
    train_problems: int = 20000
    """Size of the pool of train-split problems sampled from."""
    noise: float = 0.0
    """Fraction of training answers with one character replaced by another answer character."""
    traces: float = 0.0
    """Fraction of the problem pool shown as a worked solution (``task.worked``: its own prompt, the written steps,
    then the answer) instead of prompt → answer, at the same number of steps: reasoning traces mixed into the
    "pretraining" data, as in OctoThinker's mid-training (Wang et al., 2025, arXiv:2506.20512). Traces are clean;
    ``noise`` corrupts only the direct answers. 0 leaves the recipe (and its random draws) as without it."""
    seed: int = 0
    """Seed for the problem pool and the batch order."""
    device: str = "auto"
    """``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self):
        check_fields(
            self,
            {
                "steps": AT_LEAST_ONE,
                "batch_size": AT_LEAST_ONE,
                "chunks": AT_LEAST_ONE,
                "train_problems": AT_LEAST_ONE,
                "lr": POSITIVE,
                "noise": Range(0, 1, high_open=True),
                "traces": Range(0, 1),
                "warmup": NON_NEGATIVE,
                "seed": NON_NEGATIVE,
            },
        )
        if not self.chunks <= self.batch_size:
            raise ValueError(f"SFTConfig.chunks must be in 1..batch_size={self.batch_size}, got {self.chunks}")
        if not self.warmup <= self.steps:
            raise ValueError(f"SFTConfig.warmup must be in 0..steps={self.steps}, got {self.warmup}")


def sft_example(tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt + answer + EOS`` and labels that score only ``answer + EOS``."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return p + a, [-100] * len(p) + a


def corrupt(answer: str, charset: str, rng: random.Random) -> str:
    """``answer`` with one character replaced by a different character of ``charset``."""
    i = rng.randrange(len(answer))
    return answer[:i] + rng.choice([c for c in charset if c != answer[i]]) + answer[i + 1 :]


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pads a list of (ids, labels) into a training batch."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id)
    labels = torch.full((len(examples), width), -100)
    attn = torch.zeros(len(examples), width, dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)], labels[i, : len(y)], attn[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "labels": labels, "attention_mask": attn}


def batch_loss(model, examples, chunks: int, pad_id: int, device) -> torch.Tensor:
    """Backpropagates the mean token loss of ``examples`` (the loss of one padded batch) and returns it, computed
    in ``chunks`` length-sorted pieces, each padded only to its own longest example (``SFTConfig.chunks``)."""
    if chunks == 1:
        loss = model(**{k: v.to(device) for k, v in collate(examples, pad_id).items()}).loss
        loss.backward()
        return loss.detach()
    ordered = sorted(examples, key=lambda e: len(e[0]))
    answer_tokens = sum(sum(label != -100 for label in labels[1:]) for _, labels in examples)  # what the loss scores
    size = -(-len(ordered) // chunks)
    total = torch.zeros(())
    for start in range(0, len(ordered), size):
        batch = {k: v.to(device) for k, v in collate(ordered[start : start + size], pad_id).items()}
        loss = model(**batch, num_items_in_batch=answer_tokens).loss  # a sum over the piece / the batch's count
        loss.backward()
        total += loss.detach().cpu()
    return total


def noisy_answers(problems, noise: float, rng: random.Random) -> list[str]:
    """The problems' reference answers, a ``noise`` fraction of them with one character corrupted (``corrupt``,
    drawing replacements from the answers' own characters): the noisy "pretraining corpus" of every recipe."""
    charset = "".join(sorted({c for p in problems for c in p.answer}))
    return [corrupt(p.answer, charset, rng) if rng.random() < noise else p.answer for p in problems]


def warmup_cosine(optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipes' learning-rate schedule: linear warm-up over ``warmup`` steps to the optimizer's rate, then
    cosine decay to 10% of it at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.45 * (1 + torch.cos(torch.tensor(frac * torch.pi)).item())

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_sft(model, tokenizer, task: Task, config: SFTConfig | None = None, progress: bool = True) -> list[dict]:
    """Trains ``model`` in place on reference answers of ``task``'s train split.

    Returns:
        The history: one ``{"step", "loss", "lr"}`` dict per step.
    """
    config = config or SFTConfig()
    device = resolve_device(config.device)
    model.to(device).train()
    problems = task.problems("train", config.train_problems, seed=config.seed)
    answers = noisy_answers(problems, config.noise, random.Random(config.seed))
    examples = [sft_example(tokenizer, p.prompt, a) for p, a in zip(problems, answers)]
    if config.traces > 0:  # its own random stream, so that traces=0 leaves the other recipes' draws untouched
        traced = random.Random(f"traces-{config.seed}")
        for i, p in enumerate(problems):
            if traced.random() < config.traces:
                examples[i] = sft_example(tokenizer, *task.worked(p))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sched = warmup_cosine(opt, config.steps, config.warmup)
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    for step in tqdm(range(config.steps), desc=f"SFT {task.name}", disable=not progress):
        idx = torch.randint(len(examples), (config.batch_size,), generator=gen).tolist()
        opt.zero_grad(set_to_none=True)
        loss = batch_loss(model, [examples[i] for i in idx], config.chunks, tokenizer.pad_token_id, device)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append({"step": step, "loss": loss.item(), "lr": sched.get_last_lr()[0]})
    model.eval()
    return history
