"""A tiny masked diffusion language model (LLaDA-style) and the recipe that pre-trains it on addition.

A masked diffusion LM (LLaDA, Nie et al. 2025, arXiv:2502.09992) does not write left to right. It sees
the prompt and a completion of fixed length L in which some tokens are replaced by ``<mask>``, and a
*bidirectional* transformer predicts every masked token at once. Training draws a noise level
t ~ U(0, 1], masks each completion token independently with probability t, and minimises

    L(theta) = - E_{t, x_t} [ (1 / t) * sum_{i masked} log p_theta(y_i | prompt, x_t) ] / L,

an upper bound on the negative log-likelihood (the 1/t weight makes it the ELBO of the continuous-time
masking process). Sampling starts from an all-masked completion and unmasks a few tokens per step
(``rl4lrm.diffusion.sampling``). The completion is ``answer + EOS + <pad>...`` up to L tokens, so
the model also learns where the answer stops.

``DiffusionLM`` wraps a ``transformers`` ``BertForMaskedLM`` (no causal mask, no dropout, so a
training-mode forward equals an eval-mode one, which the RL ratio needs). It defines the two hooks of
``rl4lrm.rollout`` (``sample_rollout`` and ``completion_logits``), so ``rl4lrm.trainer.Trainer`` trains it
with GRPO like any causal LM; the d1 recipe (Zhao et al. 2025, arXiv:2504.12216) supplies the log-prob
estimator. ``load_diffusion_base`` loads the shipped checkpoint; ``python -m rl4lrm.diffusion.model
--rebuild`` re-runs ``build_diffusion_base``.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from rl4lrm.decoding import positions_from_mask
from rl4lrm.models.sft import noisy_answers, warmup_cosine
from rl4lrm.models.tokenizer import char_tokenizer
from rl4lrm.models.zoo import CHECKPOINTS, load_checkpoint
from rl4lrm.tasks import Task, get_task
from rl4lrm.utils import resolve_device
from rl4lrm.validation import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, check_fields, named_keywords

DIFFUSION_DIR = CHECKPOINTS / "diffusion-addition"
MASK_TOKEN = "<mask>"
REMASKING = ("low_confidence", "random")


@named_keywords()
@dataclass
class DiffusionSamplingConfig:
    """How the iterative unmasking sampler decodes (LLaDA's sampler; ``rl4lrm.diffusion.sampling``).

    The trainer passes temperature, top-p and the completion length; the rest is read from
    ``model.sampling``, so changing it changes what RL samples.
    """

    steps: int = 8
    """Denoising steps (forward passes) for the whole completion; at most the completion length L. Fewer
    steps commit several tokens per forward (faster, and the tokens of one step are sampled independently)."""
    remasking: str = "low_confidence"
    """Which masked positions are committed at each step: ``"low_confidence"`` keeps the ones whose sampled
    token has the highest probability (LLaDA's default), ``"random"`` picks them uniformly."""
    block_length: int | None = None
    """Semi-autoregressive decoding: the completion is cut into blocks of this many tokens, decoded left to
    right, each with ``steps / n_blocks`` steps. None is one block of length L. L and ``steps`` must be
    divisible by the number of blocks."""
    p_mask_prompt: float = 0.15
    """d1's one-step log-prob estimator masks each prompt token with this probability (0.15 in d1), a
    random perturbation that regularises the policy-gradient updates."""

    def __post_init__(self):
        check_fields(
            self,
            {
                "steps": AT_LEAST_ONE,
                "remasking": REMASKING,
                "block_length": AT_LEAST_ONE,
                "p_mask_prompt": Range(0, 1, high_open=True),
            },
        )


@named_keywords()
@dataclass
class DiffusionPretrainConfig:
    """The masked-diffusion pre-training recipe (defaults build the shipped checkpoint in a few CPU minutes)."""

    steps: int = 4000
    """Optimizer steps (about 4 minutes on one CPU thread)."""
    batch_size: int = 64
    """Problems per step."""
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up over ``warmup`` steps, then cosine decay to 10%).

    2e-3 stalls this post-LayerNorm encoder at about 5% accuracy."""
    warmup: int = 100
    """Warm-up steps."""
    gen_length: int = 8
    """L: completion length (answer + EOS + pads). RL and evaluation use ``max_new_tokens = L``."""
    noise: float = 0.45
    """Fraction of training answers with one character corrupted (as ``rl4lrm.models.sft``): the base model
    samples plausible near misses, so RL has room to improve it."""
    prompt_mask_prob: float = 0.15
    """Half of the rows also get prompt tokens masked with this probability, so that d1's prompt masking at RL
    time is not out of distribution."""
    train_problems: int = 20000
    """Size of the pool of train-split problems."""
    hidden_size: int = 128
    """Transformer width (with 3 layers, 4 heads and an MLP 3x as wide: 0.53M parameters)."""
    layers: int = 3
    """Transformer layers."""
    seed: int = 0
    """Seed of the initialisation, the problem pool, the masks and the batch order."""
    device: str = "cpu"
    """``"auto"``, ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self):
        check_fields(
            self,
            {
                **dict.fromkeys(
                    ("steps", "batch_size", "gen_length", "train_problems", "hidden_size", "layers"), AT_LEAST_ONE
                ),
                "warmup": NON_NEGATIVE,
                "lr": POSITIVE,
                "noise": Range(0, 1, high_open=True),
                "prompt_mask_prob": Range(0, 1, high_open=True),
                "seed": NON_NEGATIVE,
            },
        )
        if not self.warmup <= self.steps:
            raise ValueError(f"DiffusionPretrainConfig.warmup must be in 0..steps={self.steps}, got {self.warmup}")


def diffusion_tokenizer() -> PreTrainedTokenizerFast:
    """``char_tokenizer()`` plus a ``<mask>`` special token appended at the end (the other ids are unchanged)."""
    tokenizer = char_tokenizer()
    tokenizer.add_special_tokens({"mask_token": MASK_TOKEN})
    return tokenizer


class DiffusionLM(torch.nn.Module):
    """A bidirectional transformer that predicts masked completion tokens from prompt + partial completion.

    Args:
        net: a ``BertForMaskedLM`` (any model taking ``input_ids, attention_mask, position_ids`` and returning
            ``.logits`` works) whose vocabulary includes the mask token.
        mask_token_id: the id of ``<mask>``.
        gen_length: L, the completion length the model was trained on.
        sampling: the sampler's settings (``DiffusionSamplingConfig``).
    """

    def __init__(self, net, mask_token_id: int, gen_length: int, sampling: DiffusionSamplingConfig | None = None):
        super().__init__()
        self.net, self.mask_token_id, self.gen_length = net, mask_token_id, gen_length
        self.sampling = sampling or DiffusionSamplingConfig()

    def forward(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
        """Logits at the completion positions.

        Args:
            prompt_ids: (N, P) left-padded prompt ids (may contain the mask id). prompt_mask: (N, P), 1 on real tokens.
            completion: (N, T) completion ids with ``<mask>`` where the model should predict.

        Returns:
            Float32 logits, shape (N, T, V).
        """
        attn = torch.cat([prompt_mask, torch.ones_like(completion)], dim=1)  # (N, P+T): every completion slot is real
        ids = torch.cat([prompt_ids, completion], dim=1)  # (N, P+T)
        out = self.net(input_ids=ids, attention_mask=attn, position_ids=positions_from_mask(attn))
        return out.logits[:, prompt_ids.shape[1] :].float()  # (N, T, V)

    # the two hooks of rl4lrm.rollout; their code lives with the sampler and the estimators
    def sample_rollout(
        self, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
    ):
        """``rl4lrm.rollout``'s sampling hook: ``diffusion_sampling.diffusion_rollout`` with ``self.sampling``."""
        from rl4lrm.diffusion.sampling import diffusion_rollout

        return diffusion_rollout(
            self, tokenizer, prompt_ids, prompt_mask, group_size, max_new_tokens, temperature, top_p, generator
        )

    def completion_logits(self, batch, temperature: float):
        """``rl4lrm.rollout``'s scoring hook: d1's one-step logits under the batch's stored prompt mask.

        Returns:
            ``logits`` (N, T, V) float32 divided by ``temperature``, and their logsumexp (N, T).
        """
        from rl4lrm.diffusion.sampling import one_step_logits

        logits = (
            one_step_logits(
                self, batch.prompt_ids, batch.prompt_mask, batch.completion_ids.shape[1], batch.aux["prompt_noise"]
            )
            / temperature
        )  # (N, T, V)
        return logits, torch.logsumexp(logits, dim=-1)  # (N, T, V), (N, T)


def mask_completion(completion: torch.Tensor, t: torch.Tensor, mask_token_id: int, generator=None):
    """The forward (noising) process: each completion token becomes ``<mask>`` with probability t of its row.

    Args:
        completion: (N, T) clean token ids. t: (N,) noise levels in (0, 1].

    Returns:
        ``(noisy, masked)``: (N, T) ids with masks, and the (N, T) bool mask of replaced positions.
    """
    u = torch.rand(completion.shape, generator=generator, device=completion.device)  # (N, T)
    masked = u < t[:, None]  # (N, T)
    return completion.masked_fill(masked, mask_token_id), masked


def masked_diffusion_loss(
    logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """LLaDA's objective: cross-entropy on the masked tokens, weighted 1/t, averaged over the L positions.

    Args:
        logits: (N, T, V) predictions at the completion positions. targets: (N, T) clean ids.
        masked: (N, T) bool, the positions that were masked. t: (N,) the rows' noise levels.

    Returns:
        Scalar: mean over rows of ``sum_{i masked} CE_i / t / T``.
    """
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (N, T)
    per_row = (ce * masked).sum(-1) / t / targets.shape[1]  # (N,)
    return per_row.mean()


def completion_targets(tokenizer, answers: list[str], gen_length: int) -> torch.Tensor:
    """(N, L) ids of ``answer + EOS`` right-padded with ``<pad>`` (answers longer than L - 1 are an error)."""
    rows = []
    for answer in answers:
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(ids) > gen_length:
            raise ValueError(f"answer {answer!r} needs {len(ids)} tokens with EOS, more than gen_length={gen_length}")
        rows.append(ids + [tokenizer.pad_token_id] * (gen_length - len(ids)))
    return torch.tensor(rows)


def new_diffusion_model(tokenizer, config: DiffusionPretrainConfig) -> DiffusionLM:
    """A randomly initialised ``DiffusionLM`` (Bert encoder without dropout) for ``tokenizer``."""
    bert = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=4,
        intermediate_size=3 * config.hidden_size,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id,
        type_vocab_size=1,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        net = BertForMaskedLM(bert)
    return DiffusionLM(net, tokenizer.mask_token_id, config.gen_length).float().eval()


def pretrain_diffusion(
    model: DiffusionLM, tokenizer, task: Task, config: DiffusionPretrainConfig, progress: bool = True
) -> list[dict]:
    """Trains ``model`` in place with the masked-diffusion objective on (noisy) reference answers.

    Returns:
        The history: one ``{"step", "loss"}`` dict per step.
    """
    device = resolve_device(config.device)
    model.to(device).train()
    problems = task.problems("train", config.train_problems, seed=config.seed)
    answers = noisy_answers(problems, config.noise, random.Random(config.seed))
    enc = tokenizer([p.prompt for p in problems], padding=True, return_tensors="pt", add_special_tokens=False)
    prompts, prompt_masks = enc["input_ids"].to(device), enc["attention_mask"].to(device)  # (M, P)
    targets = completion_targets(tokenizer, answers, config.gen_length).to(device)  # (M, L)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    sched = warmup_cosine(opt, config.steps, config.warmup)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    history = []
    for step in tqdm(range(config.steps), desc="masked diffusion pre-training", disable=not progress):
        idx = torch.randint(len(problems), (config.batch_size,), generator=gen, device=device)
        p_ids, p_mask, y = prompts[idx], prompt_masks[idx], targets[idx]  # (n, P), (n, P), (n, L)
        t = torch.rand(len(idx), generator=gen, device=device).clamp_min(1e-3)  # (n,) noise level in (0, 1]
        noisy, masked = mask_completion(y, t, model.mask_token_id, gen)  # (n, L)
        half = torch.rand(len(idx), 1, generator=gen, device=device) < 0.5  # (n, 1) rows whose prompt gets noise
        hide = (torch.rand(p_ids.shape, generator=gen, device=device) < config.prompt_mask_prob) & half & (p_mask > 0)
        loss = masked_diffusion_loss(model(p_ids.masked_fill(hide, model.mask_token_id), p_mask, noisy), y, masked, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append({"step": step, "loss": loss.item()})
    model.eval()
    return history


def save_diffusion(model: DiffusionLM, tokenizer, out: Path, recipe: DiffusionPretrainConfig) -> Path:
    """Writes the Bert weights and config, the tokenizer and ``diffusion.json`` (L, sampler, recipe) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {"gen_length": model.gen_length, "sampling": asdict(model.sampling), "recipe": asdict(recipe)}
    (out / "diffusion.json").write_text(json.dumps(meta, indent=1))
    return out


def build_diffusion_base(
    out_dir: str | Path | None = None, config: DiffusionPretrainConfig | None = None, progress: bool = True
) -> Path:
    """Runs the pre-training recipe on 2-digit addition and saves the checkpoint (default: the zoo folder)."""
    config = config or DiffusionPretrainConfig()
    tokenizer, task = diffusion_tokenizer(), get_task("addition", digits=2)
    model = new_diffusion_model(tokenizer, config)
    pretrain_diffusion(model, tokenizer, task, config, progress=progress)
    return save_diffusion(model.cpu(), tokenizer, Path(out_dir) if out_dir is not None else DIFFUSION_DIR, config)


def load_diffusion_base(device: str | torch.device = "cpu", path: str | Path | None = None):
    """Loads the shipped masked diffusion LM.

    Returns:
        ``(model, tokenizer, task)``: a ``DiffusionLM`` in eval mode on ``device``, its tokenizer (with
        ``<mask>``) and the 2-digit addition task.
    """
    path = Path(path) if path is not None else DIFFUSION_DIR
    net, tokenizer = load_checkpoint(path, device, "python -m rl4lrm.diffusion.model --rebuild", BertForMaskedLM)
    meta = json.loads((path / "diffusion.json").read_text())
    model = DiffusionLM(net, tokenizer.mask_token_id, meta["gen_length"], DiffusionSamplingConfig(**meta["sampling"]))
    return model.eval(), tokenizer, get_task("addition", digits=2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the masked diffusion LM checkpoint")
    parser.add_argument("--rebuild", action="store_true", help="run the pre-training recipe and save the checkpoint")
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps")
    args = parser.parse_args(argv)
    if args.rebuild:
        config = DiffusionPretrainConfig() if args.steps is None else DiffusionPretrainConfig(steps=args.steps)
        print(f"built {build_diffusion_base(config=config)}")
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
