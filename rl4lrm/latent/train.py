"""Coconut's curriculum, and the three shipped chain models it is compared with (CoT, no-CoT, latent).

Coconut (Hao et al. 2024, arXiv:2412.06769, section 3) does not train continuous thoughts from scratch. It
starts from a model trained on explicit chain-of-thought (stage 0) and, at stage s, replaces the first s
reasoning steps of every training example with s * c continuous thoughts (c thoughts per step):

    stage 0:  7;+5;*2;-3=  12 \\n 24 \\n 21 <eos>
    stage 1:  7;+5;*2;-3= <bot> [h] <eot> 24 \\n 21 <eos>
    stage 2:  7;+5;*2;-3= <bot> [h][h] <eot> 21 <eos>

The loss is the usual next-token cross-entropy on the remaining language tokens only (prompt and thought
positions are masked); the thoughts get their training signal solely through the gradient of those later
tokens, back through the k sequential forward passes that produced them. The optimizer is reset at each
stage, as in the paper. On the chain task a step is one line (one running value); the last line is the
answer and is never replaced, so the final stage ``n_steps - 1`` answers in one line after its thoughts.

``build_latent_zoo`` trains and saves, from one seed: ``latent-chain-cot`` (explicit steps),
``latent-chain-nocot`` (answer only) and ``latent-chain-latent`` (the last curriculum stage, continued
from the CoT model), and records each stage's held-out accuracy. ``python -m rl4lrm.latent.train
--rebuild`` re-runs it (7 minutes on one CPU thread; it reproduces the shipped files byte for byte);
``load_latent`` loads them.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from rl4lrm.latent.model import LatentConfig, LatentReasoner, latent_tokenizer
from rl4lrm.models.sft import collate, sft_example
from rl4lrm.models.tiny import tiny_model
from rl4lrm.models.zoo import CHECKPOINTS, load_checkpoint
from rl4lrm.tasks import Problem, Task, get_task
from rl4lrm.utils import resolve_device
from rl4lrm.validation import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, check_fields, named_keywords

TASK_KWARGS = {"min_steps": 3, "max_steps": 3, "max_operand": 5, "max_value": 30}
KINDS = ("cot", "nocot", "latent")


@named_keywords()
@dataclass
class CurriculumConfig:
    """The recipe of the three chain models (defaults: the shipped checkpoints)."""

    sft_steps: int = 1500
    """Optimizer steps of the CoT and the no-CoT models (stage 0 of the curriculum is the CoT model)."""
    sft_lr: float = 3e-3
    """Peak learning rate of the CoT / no-CoT runs (warm-up, then cosine decay to 10%)."""
    stages: int = 2
    """Last curriculum stage: stage s replaces the first s steps (lines) with thoughts. On 3-step chains the
    answer line is never replaced, so 2 is the fully latent stage."""
    steps_per_stage: int = 1000
    """Optimizer steps at each stage 1..``stages`` (the optimizer is reset between stages)."""
    thoughts_per_step: int = 1
    """c: continuous thoughts that replace one language step (Coconut: c = 2 on GSM8K, 1 on ProntoQA / ProsQA)."""
    stage_lr: float = 1.5e-3
    """Peak learning rate within a curriculum stage."""
    noise: float = 0.0
    """Std of Gaussian noise on the thoughts during curriculum training (robustness to RL's exploration noise)."""
    batch_size: int = 64
    """Problems per step."""
    train_problems: int = 20000
    """Size of the pool of train-split problems."""
    seed: int = 0
    """Seeds the initialisation, the pool and the batch order."""
    device: str = "cpu"
    """``"auto"``, ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self):
        check_fields(
            self,
            {
                **dict.fromkeys(
                    ("sft_steps", "steps_per_stage", "thoughts_per_step", "batch_size", "train_problems"), AT_LEAST_ONE
                ),
                "stages": Range(0, 7),  # chains have at most 8 steps
                "sft_lr": POSITIVE,
                "stage_lr": POSITIVE,
                "noise": NON_NEGATIVE,
                "seed": NON_NEGATIVE,
            },
        )


def stage_example(tokenizer, problem: Problem, stage: int, thoughts_per_step: int = 1):
    """One curriculum example: (prompt ids, number of thoughts, target ids ending in EOS).

    Stage s replaces the first min(s, n_steps - 1) lines of the solution by s * c thoughts; the target is
    the remaining lines (the answer line always stays).
    """
    lines = problem.answer.split("\n")
    s = min(stage, len(lines) - 1)
    prompt = tokenizer(problem.prompt, add_special_tokens=False)["input_ids"]
    target = tokenizer("\n".join(lines[s:]), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt, s * thoughts_per_step, target


def collate_stage(examples, pad_id: int, device="cpu"):
    """Left-pads prompts and right-pads targets: (prompt_ids, prompt_mask, n_thoughts (N,), target_ids, target_mask)."""
    P, T = max(len(p) for p, _, _ in examples), max(len(t) for _, _, t in examples)
    p_ids = torch.tensor([[pad_id] * (P - len(p)) + p for p, _, _ in examples])  # (N, P)
    p_mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) for p, _, _ in examples])
    t_ids = torch.tensor([t + [pad_id] * (T - len(t)) for _, _, t in examples])  # (N, T)
    t_mask = torch.tensor([[1] * len(t) + [0] * (T - len(t)) for _, _, t in examples])
    k = torch.tensor([n for _, n, _ in examples])
    return tuple(x.to(device) for x in (p_ids, p_mask, k, t_ids, t_mask))


def latent_loss(logits: torch.Tensor, target_ids: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the real target tokens. logits (N, T, V), target_ids / target_mask (N, T)."""
    ce = F.cross_entropy(logits.transpose(1, 2), target_ids, reduction="none")  # (N, T)
    return (ce * target_mask).sum() / target_mask.sum()


def _schedule(opt, steps: int, warmup: int = 50):
    warmup = min(warmup, steps)

    def at(step):
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * frac))

    return torch.optim.lr_scheduler.LambdaLR(opt, at)


def train_text(net, tokenizer, task: Task, answer_only: bool, config: CurriculumConfig, progress=True) -> None:
    """SFT of a plain causal LM on explicit CoT (all lines) or on the answer line only (no CoT)."""
    device = resolve_device(config.device)
    net.to(device).train()
    problems = task.problems("train", config.train_problems, seed=config.seed)
    examples = [
        sft_example(tokenizer, p.prompt, p.answer.split("\n")[-1] if answer_only else p.answer) for p in problems
    ]
    opt = torch.optim.AdamW(net.parameters(), lr=config.sft_lr, weight_decay=0.0)
    sched, gen = _schedule(opt, config.sft_steps), torch.Generator().manual_seed(config.seed)
    for _ in tqdm(range(config.sft_steps), desc="no-CoT SFT" if answer_only else "CoT SFT", disable=not progress):
        idx = torch.randint(len(examples), (config.batch_size,), generator=gen).tolist()
        batch = {k: v.to(device) for k, v in collate([examples[i] for i in idx], tokenizer.pad_token_id).items()}
        loss = net(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
    net.eval()


def train_stage(
    model: LatentReasoner, tokenizer, task: Task, stage: int, config: CurriculumConfig, progress=True
) -> list[float]:
    """One curriculum stage (fresh optimizer); returns the loss history."""
    device = resolve_device(config.device)
    model.to(device).train()
    problems = task.problems("train", config.train_problems, seed=config.seed + stage)
    examples = [stage_example(tokenizer, p, stage, config.thoughts_per_step) for p in problems]
    opt = torch.optim.AdamW(model.parameters(), lr=config.stage_lr, weight_decay=0.0)
    sched, gen = _schedule(opt, config.steps_per_stage), torch.Generator().manual_seed(config.seed + stage)
    history = []
    for _ in tqdm(range(config.steps_per_stage), desc=f"Coconut stage {stage}", disable=not progress):
        idx = torch.randint(len(examples), (config.batch_size,), generator=gen).tolist()
        p_ids, p_mask, k, t_ids, t_mask = collate_stage([examples[i] for i in idx], tokenizer.pad_token_id, device)
        K = int(k.max())
        noise = torch.randn(len(idx), max(K, 1), model.hidden_size, generator=gen).to(device) * config.noise
        loss = latent_loss(model(p_ids, p_mask, k, t_ids, t_mask, noise if config.noise > 0 else None), t_ids, t_mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(loss.item())
    model.eval()
    return history


def latent_accuracy(
    model,
    tokenizer,
    task: Task,
    n_thoughts: int | None = None,
    n_problems: int = 256,
    temperature: float = 0.0,
    seed: int = 0,
) -> dict:
    """Held-out accuracy and mean generated tokens (answer + CoT lines + EOS) of any of the three models.

    ``n_thoughts`` overrides a ``LatentReasoner``'s k (fixed k, halting off) for the call.
    """
    from rl4lrm.evaluation import sample_and_verify

    problems = task.problems("test", n_problems, seed=0)
    saved = getattr(model, "config", None)
    if isinstance(model, LatentReasoner) and n_thoughts is not None:
        model.config = LatentConfig(n_thoughts=n_thoughts, max_thoughts=saved.max_thoughts)
    try:
        gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        out = sample_and_verify(model, tokenizer, task, problems, 1, temperature, 16, generator=gen)
    finally:
        if isinstance(model, LatentReasoner):
            model.config = saved
    return {"accuracy": sum(out["correct"]) / len(problems), "tokens": sum(out["lengths"]) / len(problems)}


def _dir(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown latent zoo model {kind!r}; choose one of {KINDS}")
    return CHECKPOINTS / f"latent-chain-{kind}"


def build_latent_zoo(
    config: CurriculumConfig | None = None, out_root: Path | None = None, progress=True, kinds=KINDS
) -> dict:
    """Trains the CoT, no-CoT and final-stage latent models and saves them (default: the package zoo).

    ``kinds`` picks which to (re)train; the latent model continues from the CoT model, which is loaded from
    ``out_root`` when ``"cot"`` is not retrained (the recipe is deterministic on CPU, so the result is the same).

    Returns:
        ``{"cot": {...}, "nocot": {...}, "stages": [{accuracy, tokens} at stage 0, 1, ...]}`` (greedy, 256 test
        problems; stage 0 is the CoT model itself, writing every step).
    """
    config = config or CurriculumConfig()
    root = Path(out_root) if out_root is not None else CHECKPOINTS
    tokenizer, task = latent_tokenizer(), get_task("chain", **TASK_KWARGS)
    report = {"recipe": asdict(config), "task": TASK_KWARGS}
    nets = {}
    for kind in ("cot", "nocot"):
        if kind in kinds:
            nets[kind] = tiny_model("micro", tokenizer, seed=config.seed)
            train_text(nets[kind], tokenizer, task, kind == "nocot", config, progress)
            nets[kind].cpu().save_pretrained(root / f"latent-chain-{kind}")
            tokenizer.save_pretrained(root / f"latent-chain-{kind}")
        else:
            nets[kind] = load_latent(kind, root=root)[0]
        report[kind] = latent_accuracy(nets[kind], tokenizer, task)
    if "latent" in kinds:
        model = LatentReasoner(nets["cot"], tokenizer)  # stage 0 is the CoT model
        stages = [report["cot"]]
        for stage in range(1, config.stages + 1):
            train_stage(model, tokenizer, task, stage, config, progress)
            stages.append(latent_accuracy(model, tokenizer, task, n_thoughts=stage * config.thoughts_per_step))
        report["stages"] = stages
        model.config = LatentConfig(n_thoughts=config.stages * config.thoughts_per_step)
        out = root / "latent-chain-latent"
        model.net.cpu().save_pretrained(out)
        tokenizer.save_pretrained(out)
        save_file(model.halt.state_dict(), out / "halt.safetensors")
        (out / "latent.json").write_text(json.dumps({"config": asdict(model.config), **report}, indent=1))
    return report


def load_latent(kind: str = "latent", device: str | torch.device = "cpu", root: Path | None = None):
    """Loads a shipped chain model: ``"cot"`` / ``"nocot"`` (plain causal LMs) or ``"latent"`` (a ``LatentReasoner``).

    Returns:
        ``(model, tokenizer, task)``, the model in eval mode on ``device``.
    """
    path = (Path(root) / f"latent-chain-{kind}") if root is not None else _dir(kind)
    _dir(kind)  # validates the name
    net, tokenizer = load_checkpoint(path, device, "python -m rl4lrm.latent.train --rebuild")
    task = get_task("chain", **TASK_KWARGS)
    if kind != "latent":
        return net, tokenizer, task
    meta = json.loads((path / "latent.json").read_text())
    model = LatentReasoner(net, tokenizer, LatentConfig(**meta["config"]))
    model.halt.load_state_dict(load_file(path / "halt.safetensors"))
    return model.to(net.device).eval(), tokenizer, task


def latent_report(root: Path | None = None) -> dict:
    """The build's recorded accuracies (``latent.json``): CoT, no-CoT and each curriculum stage."""
    path = (Path(root) / "latent-chain-latent") if root is not None else _dir("latent")
    return json.loads((path / "latent.json").read_text())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the CoT / no-CoT / Coconut chain checkpoints")
    parser.add_argument("--rebuild", action="store_true", help="run the recipe and save the three checkpoints")
    parser.add_argument("--kinds", nargs="*", default=list(KINDS), help=f"which to retrain (default: all of {KINDS})")
    args = parser.parse_args(argv)
    if args.rebuild:
        print(json.dumps(build_latent_zoo(kinds=tuple(args.kinds)), indent=1))
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
