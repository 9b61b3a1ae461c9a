"""Generative rewards: a judge model reads the problem and a completion and its verdict is the reward.

Instead of a program (the task's verifier), a language model decides whether an answer is right: an
LLM-as-a-judge (Zheng et al., 2023, https://arxiv.org/abs/2306.05685) prompted with a question, or a
generative verifier (GenRM; Zhang et al., 2024, "Generative Verifiers: Reward Modeling as Next-Token
Prediction", https://arxiv.org/abs/2408.15240) trained with the next-token loss to write a critique and
then "yes" or "no". The reward is GenRM's score, the probability of the "yes" token,

    r = P(yes) / (P(yes) + P(no))   at the verdict position (after the critique),

renormalised over the two verdict tokens so that mass on other tokens does not lower it. Two judges:

- ``TinyJudge``: the lab's char-level judges (``rl4lrm.rewards.judges``): ``"12+34=47|"`` → ``"46 N"``.
- ``LLMJudge``: SmolLM2-135M-Instruct asked "Is the answer to 'What is 12 + 34?' = 47 correct? Answer
  yes or no.", scored on its next token only (no generation: it is slow on a CPU).

A learned judge is only a proxy of correctness, and a policy optimised against a proxy finds its
errors (reward hacking; Gao et al., 2023, https://arxiv.org/abs/2210.10760): measure the judge's
``judge_agreement`` with the verifier before training on it (``rl4lrm.experiments.judge_hacking``).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from rl4lrm.decoding import positions_from_mask
from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.rewards.judges import (
    NO,
    YES,
    clean_candidate,
    format_judge_input,
    load_judge_model,
)
from rl4lrm.rollout import left_pad, prompt_token_ids, rollout
from rl4lrm.tasks import Problem, Task

MODES = ("prob", "greedy", "sample")
LLM_JUDGE_NAME = "smollm2"
LLM_JUDGE_PROMPT = "Is the answer to '{question}' = {candidate} correct? Answer yes or no."


@torch.no_grad()
def next_token_logits(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Logits of the token after each text, one left-padded forward pass: (N, V)."""
    ids, mask = left_pad(prompt_token_ids(tokenizer, texts), tokenizer.pad_token_id, next(model.parameters()).device)
    # positions restart at 0 on each row's first real token, as in training and in rollouts
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask))
    return out.logits[:, -1].float()  # (N, V)


def yes_probability(logits: torch.Tensor, yes_ids: list[int], no_ids: list[int]) -> torch.Tensor:
    """P(yes) / (P(yes) + P(no)) from next-token logits (N, V), summing each side's token variants: (N,)."""
    probs = logits.softmax(-1)  # (N, V)
    p_yes, p_no = probs[:, yes_ids].sum(-1), probs[:, no_ids].sum(-1)  # (N,)
    return p_yes / (p_yes + p_no).clamp_min(1e-12)


class TinyJudge:
    """A char-level generative judge: writes a critique, then P(yes) is read at the verdict token.

    Args:
        model, tokenizer: a judge trained by ``rl4lrm.rewards.judges.build_judge``.
        name: for display.
    """

    def __init__(self, model, tokenizer, name: str = "judge"):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.yes_ids, self.no_ids = [tokenizer.convert_tokens_to_ids(YES)], [tokenizer.convert_tokens_to_ids(NO)]

    @torch.no_grad()
    def critique(
        self,
        problems: list[Problem],
        completions: list[str],
        temperature: float = 0.0,
        max_chars: int = 8,
        generator: torch.Generator | None = None,
    ) -> list[str]:
        """The judge's critiques (the recomputed answer, text before the first space), greedy by default."""
        prompts = [format_judge_input(p, c) for p, c in zip(problems, completions)]
        out = rollout(self.model, self.tokenizer, prompts, 1, max_chars, temperature=temperature, generator=generator)
        return [text.split(" ")[0] for text in out.completions]

    @torch.no_grad()
    def p_yes(
        self,
        problems: list[Problem],
        completions: list[str],
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """P(yes) after the judge's own critique (greedy at ``temperature=0``, else sampled): (N,)."""
        critiques = self.critique(problems, completions, temperature, generator=generator)
        texts = [format_judge_input(p, c) + crit + " " for p, c, crit in zip(problems, completions, critiques)]
        return yes_probability(next_token_logits(self.model, self.tokenizer, texts), self.yes_ids, self.no_ids).cpu()


class LLMJudge:
    """An instruct LLM asked a yes/no question about each answer; P(yes) is read from its next token.

    Args:
        model, tokenizer: a chat model (``rl4lrm.models.loaders.load_smollm2``).
        prompt: the question, with ``{question}`` and ``{candidate}`` fields.
    """

    def __init__(self, model, tokenizer, prompt: str = LLM_JUDGE_PROMPT, name: str = LLM_JUDGE_NAME):
        self.model, self.tokenizer, self.prompt, self.name = model, tokenizer, prompt, name
        self.yes_ids, self.no_ids = self._variants("yes"), self._variants("no")

    def _variants(self, word: str) -> list[int]:
        """Ids of the single-token spellings of ``word`` ("yes", "Yes", " yes", ...)."""
        ids = set()
        for text in (word, word.capitalize(), word.upper(), " " + word, " " + word.capitalize()):
            tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(tokens) == 1:
                ids.add(tokens[0])
        if not ids:
            raise ValueError(f"no single-token spelling of {word!r} in this tokenizer")
        return sorted(ids)

    def format(self, problem: Problem, completion: str) -> str:
        """The chat-formatted question, ending where the assistant's answer begins."""
        text = self.prompt.format(question=problem.question, candidate=clean_candidate(completion) or "(nothing)")
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )

    @torch.no_grad()
    def p_yes(self, problems: list[Problem], completions: list[str], batch_size: int = 32, **_) -> torch.Tensor:
        """P(yes) / (P(yes) + P(no)) of the first answer token: (N,)."""
        texts = [self.format(p, c) for p, c in zip(problems, completions)]
        out = [
            yes_probability(
                next_token_logits(self.model, self.tokenizer, texts[i : i + batch_size]), self.yes_ids, self.no_ids
            )
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(out).cpu()


@lru_cache(maxsize=4)
def _load(name: str, device: str):
    if name == LLM_JUDGE_NAME:
        from rl4lrm.models.loaders import (
            load_smollm2,  # optional extra: imported only when asked for
        )

        return LLMJudge(*load_smollm2(device))
    model, tokenizer, _ = load_judge_model(name, device)
    return TinyJudge(model, tokenizer, name)


def get_judge(judge, device: str = "cpu"):
    """A judge object: ``judge`` itself if it has ``p_yes``, else the shipped judge of that name (cached).

    Names: ``rl4lrm.rewards.judges.JUDGES`` (``"judge-addition"``, ``"judge-addition-weak"``) or ``"smollm2"``.
    """
    return judge if hasattr(judge, "p_yes") else _load(str(judge), str(device))


def judge_scores(
    judge, problems: list[Problem], completions: list[str], mode: str = "prob", generator: torch.Generator | None = None
) -> torch.Tensor:
    """The judge's reward per completion: (N,) floats in [0, 1].

    Args:
        judge: a judge object or name (``get_judge``).
        mode: ``"prob"`` (default): P(yes) after a greedy critique, a smooth reward that keeps the judge's
            confidence; ``"greedy"``: 1.0 when P(yes) > 0.5 (the judge's argmax verdict); ``"sample"``:
            the critique sampled at temperature 1, then the verdict drawn from P(yes) (a noisy 0/1 reward).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    judge = get_judge(judge)
    p = judge.p_yes(problems, completions, temperature=1.0 if mode == "sample" else 0.0, generator=generator)
    if mode == "greedy":
        return (p > 0.5).float()
    if mode == "sample":
        return torch.bernoulli(p, generator=generator)
    return p


@register_reward("judge")
def judge_reward(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    judge: str = "judge-addition",
    mode: str = "prob",
    device: str = "cpu",
) -> torch.Tensor:
    """A generative judge's verdict as the reward: P(yes) by default (``judge_scores``).

    Use it in a mix: ``TrainConfig(rewards={"judge": (1.0, {"judge": "judge-addition-weak"})})``.
    """
    return judge_scores(get_judge(judge, device), problems, completions, mode)


def agreement_metrics(verdicts, truth) -> dict[str, float]:
    """Agreement of binary verdicts with the truth (1 = correct): accuracy, precision, recall, Cohen's kappa.

    Cohen's kappa (Cohen, 1960) discounts the agreement expected by chance from the two yes-rates,
    kappa = (p_o - p_e) / (1 - p_e) with p_e = y_j y_t + (1 - y_j)(1 - y_t): 0 for a judge that says
    "yes" at random or always, 1 for perfect agreement. Undefined ratios (no "yes" verdicts for precision,
    no correct answers for recall, p_e = 1 for kappa) are reported as 0.0.

    Args:
        verdicts: (N,) the judge's 0/1 verdicts. truth: (N,) the verifier's 0/1 labels.
    """
    v, t = torch.as_tensor(verdicts).bool().flatten(), torch.as_tensor(truth).bool().flatten()
    if len(v) != len(t) or len(v) == 0:
        raise ValueError(f"need two non-empty lists of equal length, got {len(v)} verdicts and {len(t)} labels")
    tp, fp, fn = (v & t).sum().item(), (v & ~t).sum().item(), (~v & t).sum().item()
    n, p_o = len(v), (v == t).float().mean().item()
    y_j, y_t = v.float().mean().item(), t.float().mean().item()
    p_e = y_j * y_t + (1 - y_j) * (1 - y_t)
    return {
        "accuracy": p_o,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "kappa": (p_o - p_e) / (1 - p_e) if p_e < 1 else 0.0,
        "yes_rate": y_j,
        "base_rate": y_t,
        "n": float(n),
    }


def judge_agreement(
    judge, task: Task, problems: list[Problem], candidates: list[str], threshold: float = 0.5, mode: str = "prob"
) -> dict[str, float]:
    """How well a judge's verdicts (P(yes) > ``threshold``) agree with the task's verifier.

    Returns:
        ``agreement_metrics`` plus ``p_yes/right`` and ``p_yes/wrong``, the mean reward of right and wrong answers.
    """
    score = judge_scores(judge, problems, candidates, mode)  # (N,)
    truth = torch.tensor([task.verify(p, c).correct for p, c in zip(problems, candidates)])
    out = agreement_metrics(score > threshold, truth)
    out["p_yes/right"] = score[truth].mean().item() if truth.any() else float("nan")
    out["p_yes/wrong"] = score[~truth].mean().item() if (~truth).any() else float("nan")
    return out
