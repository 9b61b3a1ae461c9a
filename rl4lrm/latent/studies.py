"""Studies of reasoning in a continuous latent space (Coconut, Hao et al. 2024, arXiv:2412.06769).

Each returns a pandas DataFrame:

- ``compare_reasoning``: accuracy and generated tokens (answer tokens, CoT tokens) of explicit CoT, no CoT,
  continuous thoughts and latent + RL; continuous thoughts are counted apart, as forward passes;
- ``thought_decoding``: what each continuous thought decodes to, by the LM head and by embedding cosine,
  and whether thought i reads as the i-th intermediate value (``decoding_summary`` aggregates it);
  (``thought_distribution``: the LM head's probabilities per thought for one prompt);
- ``thoughts_sweep``: accuracy against the number of thoughts k used at inference;
- ``curriculum_table``: held-out accuracy after each curriculum stage (recorded by the build);
- ``latent_rl``: GRPO on the latent model through ``rl4lrm.trainer.Trainer`` (fixed k, exploration noise,
  or adaptive compute with a step cost); ``compute_tradeoff`` runs it for several costs.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch

from rl4lrm.latent.model import LatentConfig, LatentReasoner
from rl4lrm.latent.train import latent_report
from rl4lrm.rollout import rollout
from rl4lrm.tasks import Task


@torch.no_grad()
def run_model(
    model,
    tokenizer,
    task: Task,
    n_problems: int = 256,
    temperature: float = 0.0,
    seed: int = 0,
    max_new_tokens: int = 16,
) -> pd.DataFrame:
    """One row per held-out problem: correct, answer tokens, CoT tokens, thoughts (forward passes), completion."""
    problems = task.problems("test", n_problems, seed=0)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    rows = []
    for start in range(0, len(problems), 128):
        chunk = problems[start : start + 128]
        batch = rollout(model, tokenizer, [p.prompt for p in chunk], 1, max_new_tokens, temperature, generator=gen)
        K = model.config.max_thoughts if isinstance(model, LatentReasoner) and model.config.halting else 0
        tokens = batch.response_mask[:, K:].sum(-1)  # (N,) answer (+ CoT) tokens, EOS included
        k = batch.aux.get("n_thoughts", torch.zeros(len(chunk), dtype=torch.long))
        for p, text, n, kk in zip(chunk, batch.completions, tokens.tolist(), k.tolist()):
            stripped = text.rstrip()
            cot = len(stripped) - len(stripped[stripped.rfind("\n") + 1 :])  # char tokenizer: 1 char = 1 token
            rows.append(
                {
                    "correct": float(task.verify(p, text).correct),
                    "generated_tokens": n,
                    "cot_tokens": cot,
                    "answer_tokens": n - cot,
                    "thoughts": kk,
                    "completion": text,
                }
            )
    return pd.DataFrame(rows)


def compare_reasoning(
    models: dict, tokenizer, task: Task, n_problems: int = 256, temperature: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """Accuracy and cost of each model in ``{method: model}`` (CoT, no CoT, latent, latent + RL, ...).

    Returns:
        One row per method: ``accuracy``, ``generated_tokens`` (answer + CoT tokens + EOS), ``cot_tokens``,
        ``answer_tokens`` and ``thoughts`` (continuous thoughts = extra forward passes, not tokens), means.
    """
    rows = []
    for method, model in models.items():
        df = run_model(model, tokenizer, task, n_problems, temperature, seed)
        rows.append(
            {
                "method": method,
                "accuracy": df["correct"].mean(),
                "generated_tokens": df["generated_tokens"].mean(),
                "cot_tokens": df["cot_tokens"].mean(),
                "answer_tokens": df["answer_tokens"].mean(),
                "thoughts": df["thoughts"].mean(),
            }
        )
    return pd.DataFrame(rows)


@torch.no_grad()
def thought_decoding(
    model: LatentReasoner, tokenizer, task: Task, n_thoughts: int | None = None, n_problems: int = 64, top_k: int = 3
) -> pd.DataFrame:
    """Reads each continuous thought through the LM head and through the embedding table.

    Thought i is the hidden state h_{i-1} that the model feeds itself as its i-th input embedding. Coconut
    (section 4) decodes it with the LM head and finds the next reasoning step's value there.

    Returns:
        One row per (problem, thought): ``thought`` (1-based), ``value`` (the true i-th running value),
        ``head_top`` / ``head_probs`` (top-k tokens by the LM head and their probabilities), ``cosine_top``
        (top-k tokens by cosine with the input embeddings), ``head_hit`` (top-1 token is the value's first
        character) and ``head_in_topk``.
    """
    k = model.config.n_thoughts if n_thoughts is None else n_thoughts
    problems = task.problems("test", n_problems, seed=0)
    enc = tokenizer([p.prompt for p in problems], padding=True, return_tensors="pt", add_special_tokens=False)
    device = next(model.parameters()).device
    thoughts = model.thoughts(enc["input_ids"].to(device), enc["attention_mask"].to(device), k)  # (B, k, H)
    probs = torch.softmax(model.net.lm_head(thoughts).float(), -1)  # (B, k, V)
    emb = model.net.get_input_embeddings().weight  # (V, H)
    cos = torch.nn.functional.normalize(thoughts, dim=-1) @ torch.nn.functional.normalize(emb, dim=-1).T  # (B, k, V)
    p_top, head_idx = probs.topk(top_k, -1)  # (B, k, top_k)
    cos_idx = cos.topk(top_k, -1).indices
    name = lambda ids: [tokenizer.convert_ids_to_tokens(int(i)) for i in ids]
    rows = []
    for b, p in enumerate(problems):
        values = p.answer.split("\n")
        for i in range(k):
            value = values[i] if i < len(values) else ""
            head = name(head_idx[b, i])
            rows.append(
                {
                    "problem": p.prompt,
                    "thought": i + 1,
                    "value": value,
                    "head_top": head,
                    "head_probs": [round(x, 3) for x in p_top[b, i].tolist()],
                    "cosine_top": name(cos_idx[b, i]),
                    "head_hit": bool(value) and head[0] == value[0],
                    "head_in_topk": bool(value) and value[0] in head,
                }
            )
    return pd.DataFrame(rows)


@torch.no_grad()
def thought_distribution(
    model: LatentReasoner, tokenizer, prompt: str, n_thoughts: int | None = None, tokens: str = "0123456789\n"
) -> pd.DataFrame:
    """LM-head probabilities of ``tokens`` (and ``<eos>``) at each continuous thought of one prompt.

    Returns:
        A frame with one row per thought (index ``thought 1..k``) and one column per token.
    """
    k = model.config.n_thoughts if n_thoughts is None else n_thoughts
    device = next(model.parameters()).device
    enc = tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(device)
    probs = torch.softmax(model.net.lm_head(model.thoughts(enc["input_ids"], enc["attention_mask"], k)).float(), -1)[0]
    ids = tokenizer.convert_tokens_to_ids(list(tokens)) + [tokenizer.eos_token_id]
    cols = [repr(c)[1:-1] for c in tokens] + ["<eos>"]
    return pd.DataFrame(probs[:, ids].cpu().numpy(), columns=cols, index=[f"thought {i + 1}" for i in range(k)])


def decoding_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per thought index: how often the LM head's top-1 / top-k reading is the i-th value's first character."""
    return df.groupby("thought")[["head_hit", "head_in_topk"]].mean().reset_index()


def thoughts_sweep(
    model: LatentReasoner,
    tokenizer,
    task: Task,
    ks=(0, 1, 2, 3, 4),
    n_problems: int = 256,
    temperature: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy against the number of continuous thoughts k at inference (the model keeps its weights)."""
    saved, rows = model.config, []
    try:
        for k in ks:
            model.config = LatentConfig(n_thoughts=k)
            df = run_model(model, tokenizer, task, n_problems, temperature, seed)
            rows.append({"thoughts": k, "accuracy": df["correct"].mean(), "answer_tokens": df["answer_tokens"].mean()})
    finally:
        model.config = saved
    return pd.DataFrame(rows)


def curriculum_table(report: dict | None = None) -> pd.DataFrame:
    """Held-out greedy accuracy after each curriculum stage (stage 0 = the CoT model), from the build's record."""
    report = report or latent_report()
    c = report["recipe"]["thoughts_per_step"]
    return pd.DataFrame(
        [
            {"stage": s, "thoughts": s * c, "steps_in_language": report["task"]["max_steps"] - s, **acc}
            for s, acc in enumerate(report["stages"])
        ]
    )


def latent_rl(
    model: LatentReasoner,
    tokenizer,
    task: Task,
    steps: int = 30,
    cost: float = 0.0,
    halting: bool = False,
    n_thoughts: int = 2,
    max_thoughts: int = 4,
    noise_std: float = 0.0,
    lr: float = 5e-5,
    prompts_per_step: int = 16,
    group_size: int = 8,
    seed: int = 0,
    copy_model: bool = True,
    halting_only: bool | None = None,
    **train_kwargs,
):
    """GRPO on a latent-thought model through the ordinary ``Trainer`` (no second training loop).

    The reward is ``correct - cost * k`` (``{"correct": 1, "latent_steps": -cost}``) when ``cost > 0``.
    ``halting_only`` (default: on when ``halting``) freezes the language model so that GRPO trains the
    halting head alone: the shipped models were trained to a sharp optimum, and updates to the whole model at
    the rates a freshly initialised head needs (1e-3 and up) wreck its arithmetic within a few steps (so
    does the plain no-CoT model's at 3e-4), while 5e-5 leaves the head untrained.

    Returns:
        ``(history DataFrame, trained model)``; the input model is left untouched when ``copy_model``.
    """
    from rl4lrm.trainer import TrainConfig, Trainer

    model = copy.deepcopy(model) if copy_model else model
    if halting if halting_only is None else halting_only:
        model.net.requires_grad_(False)
    model.config = LatentConfig(n_thoughts=n_thoughts, halting=halting, max_thoughts=max_thoughts, noise_std=noise_std)
    rewards = {"correct": 1.0, "latent_steps": -cost} if cost > 0 else None
    cfg = TrainConfig.build(
        task="chain",
        steps=steps,
        prompts_per_step=prompts_per_step,
        group_size=group_size,
        max_new_tokens=8,
        lr=lr,
        rewards=rewards,
        seed=seed,
        device="cpu",
        **{"eval_every": steps, "eval_problems": 64, "eval_samples": 1, "track_kl": False, **train_kwargs},
    )
    history = Trainer(cfg, model=model, tokenizer=tokenizer, task=task, progress=False).train()
    model.net.requires_grad_(True)
    return history, model


def compute_tradeoff(
    model: LatentReasoner,
    tokenizer,
    task: Task,
    costs=(0.0, 0.1, 0.3),
    steps: int = 30,
    n_problems: int = 256,
    seed: int = 0,
    lr: float = 3e-3,
    **rl_kwargs,
) -> pd.DataFrame:
    """Adaptive compute under several step costs: greedy accuracy and mean thoughts after GRPO with halting
    (the halting head alone is trained, at ``lr``)."""
    rows = []
    for cost in costs:
        _, trained = latent_rl(
            model, tokenizer, task, steps=steps, cost=cost, halting=True, seed=seed, lr=lr, **rl_kwargs
        )
        df = run_model(trained, tokenizer, task, n_problems, 0.0, seed)
        rows.append(
            {
                "cost": cost,
                "accuracy": df["correct"].mean(),
                "thoughts": df["thoughts"].mean(),
                "reward": (df["correct"] - cost * df["thoughts"]).mean(),
            }
        )
    return pd.DataFrame(rows)
