"""The shipped base VLM: SFT of the encoder, projector and LM together on counting questions, and its checkpoint.

LLaVA trains in two stages (the projector alone on captions, then projector + LM on instructions); our model
is trained from scratch, so one stage trains all three parts on reference completions ``"3+2=5"`` of the train
split (cross-entropy on the completion tokens only). The recipe stops early on purpose: the base reads the
counts right only part of the time, so that RL has room to work, and most of its errors are perception errors
(``rl4lrm.vision.task.error_kind``).

``build_vision_base`` re-runs the recipe (``python -m rl4lrm.vision.train --rebuild``; deterministic on CPU,
byte for byte) and saves ``rl4lrm/models/checkpoints/vision-counting/``; ``load_vision_base`` loads it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from rl4lrm.models.sft import warmup_cosine
from rl4lrm.models.zoo import CHECKPOINTS, load_checkpoint
from rl4lrm.rollout import left_pad
from rl4lrm.utils import resolve_device
from rl4lrm.validation import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, check_fields, named_keywords
from rl4lrm.vision.model import VisionConfig, VisionLM, new_vision_model, vision_state, vision_tokenizer
from rl4lrm.vision.task import CountingTask

VISION_DIR = CHECKPOINTS / "vision-counting"
TASK_KWARGS = {"grid": 4, "cell": 3, "max_count": 3, "max_distractors": 2}
"""The shipped model's task (``CountingTask``'s defaults)."""


@named_keywords()
@dataclass
class VisionSFTConfig:
    """The recipe of the shipped base VLM (defaults: the shipped checkpoint)."""

    steps: int = 800
    """Optimizer steps. Fewer leave a weaker reader of the image (more perception errors)."""
    batch_size: int = 64
    """Problems per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate (warm-up, then cosine decay to 10%)."""
    warmup: int = 50
    """Linear warm-up steps."""
    train_problems: int = 20000
    """Size of the pool of train-split problems."""
    preset: str = "micro"
    """Size of the language model (``rl4lrm.models.tiny.TINY_PRESETS``)."""
    encoder_dim: int = 64
    """Width of the patch encoder (``VisionConfig.encoder_dim``)."""
    seed: int = 0
    """Seeds the initialisation, the pool and the batch order."""
    device: str = "cpu"
    """``"auto"``, ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self):
        check_fields(
            self,
            {
                "steps": AT_LEAST_ONE,
                "batch_size": AT_LEAST_ONE,
                "train_problems": AT_LEAST_ONE,
                "lr": POSITIVE,
                "warmup": NON_NEGATIVE,
                "encoder_dim": AT_LEAST_ONE,
                "seed": NON_NEGATIVE,
            },
        )
        if not self.warmup <= self.steps:
            raise ValueError(f"VisionSFTConfig.warmup must be in 0..steps={self.steps}, got {self.warmup}")


def sft_batch(tokenizer, problems, device="cpu"):
    """Prompts (N, P) left-padded and reference completions + EOS (N, T) right-padded, with their masks."""
    prompts = tokenizer([p.prompt for p in problems], add_special_tokens=False)["input_ids"]
    p_ids, p_mask = left_pad(prompts, tokenizer.pad_token_id, device)
    targets = tokenizer([p.meta["target"] for p in problems], add_special_tokens=False)["input_ids"]
    targets = [t + [tokenizer.eos_token_id] for t in targets]
    width = max(len(t) for t in targets)
    c_ids = torch.tensor([t + [tokenizer.pad_token_id] * (width - len(t)) for t in targets], device=device)  # (N, T)
    c_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in targets], device=device)  # (N, T)
    return p_ids, p_mask, c_ids, c_mask


def sft_loss(model: VisionLM, p_ids, p_mask, c_ids, c_mask) -> torch.Tensor:
    """Mean cross-entropy of the reference completion tokens (EOS included)."""
    logits = model(p_ids, p_mask, c_ids, c_mask)  # (N, T, V)
    loss = F.cross_entropy(logits.transpose(1, 2), c_ids, reduction="none")  # (N, T)
    return (loss * c_mask).sum() / c_mask.sum()


def train_vision(model: VisionLM, tokenizer, task: CountingTask, config: VisionSFTConfig, progress=True) -> list[dict]:
    """Trains ``model`` (encoder, projector and LM) in place; returns one ``{"step", "loss"}`` dict per step."""
    device = resolve_device(config.device)
    model.to(device).train()
    problems = task.problems("train", config.train_problems, seed=config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sched = warmup_cosine(opt, config.steps, config.warmup)
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    for step in tqdm(range(config.steps), desc="SFT vision", disable=not progress):
        idx = torch.randint(len(problems), (config.batch_size,), generator=gen).tolist()
        loss = sft_loss(model, *sft_batch(tokenizer, [problems[i] for i in idx], device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append({"step": step, "loss": loss.item()})
    model.eval()
    return history


def save_vision(model: VisionLM, tokenizer, out: Path, recipe: VisionSFTConfig | None = None) -> Path:
    """Saves the LM (``save_pretrained``), the tokenizer, the encoder + projector and the configs to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.net.cpu().save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file(vision_state(model), out / "vision.safetensors")
    meta = {"vision": asdict(model.config), "task": TASK_KWARGS, "recipe": asdict(recipe) if recipe else None}
    (out / "vision.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def build_vision_base(out_dir: str | Path | None = None, config: VisionSFTConfig | None = None, progress=True) -> Path:
    """Runs the recipe and saves the base VLM (default: the zoo's ``vision-counting``)."""
    config = config or VisionSFTConfig()
    task = CountingTask(**TASK_KWARGS)
    tokenizer = vision_tokenizer()
    cfg = VisionConfig(image_size=task.size, patch_size=4, encoder_dim=config.encoder_dim)
    model = new_vision_model(tokenizer, cfg, config.preset, config.seed)
    train_vision(model, tokenizer, task, config, progress)
    return save_vision(model, tokenizer, Path(out_dir) if out_dir is not None else VISION_DIR, config)


def load_vision_base(device: str | torch.device = "cpu", path: str | Path | None = None):
    """The shipped base VLM.

    Returns:
        ``(model, tokenizer, task)``: a ``VisionLM`` in eval mode on ``device``, its tokenizer and ``CountingTask``.
    """
    path = Path(path) if path is not None else VISION_DIR
    net, tokenizer = load_checkpoint(path, "cpu", "python -m rl4lrm.vision.train --rebuild")
    meta = json.loads((path / "vision.json").read_text())
    model = VisionLM(net, tokenizer, VisionConfig(**meta["vision"]))
    missing, unexpected = model.load_state_dict(load_file(path / "vision.safetensors"), strict=False)
    missing = [k for k in missing if not k.startswith("net.")]  # the LM came with from_pretrained
    if missing or unexpected:
        raise ValueError(
            f"{path / 'vision.safetensors'} does not match VisionLM: missing {missing}, unexpected {unexpected}"
        )
    return model.to(resolve_device(str(device))).eval(), tokenizer, CountingTask(**meta["task"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the shipped base VLM (vision-counting)")
    parser.add_argument("--rebuild", action="store_true", help="re-run the recipe and overwrite the checkpoint")
    parser.add_argument("--out", default=None, help="output folder (default: the zoo)")
    args = parser.parse_args(argv)
    if args.rebuild:
        print(f"built {build_vision_base(args.out)}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
