"""Tiny generative judges: their data (problem, candidate, critique, verdict), SFT recipe and loader.

A generative verifier (GenRM; Zhang et al., 2024, "Generative Verifiers: Reward Modeling as
Next-Token Prediction", https://arxiv.org/abs/2408.15240) is a language model trained with the plain
next-token loss to say whether a solution is correct; its reward is the probability of the "yes"
token. GenRM-CoT first writes a verification rationale, then the verdict. Our judges are the smallest
version of GenRM-CoT: from ``"12+34=47|"`` (problem prompt, candidate answer, separator) they write a
critique that recomputes the answer, a space, and a verdict token: ``"46 N"``. The reasonable judge
starts from the zoo's ``addition`` model (it can already add, and learns to recompute after the
candidate and compare); the candidate sits next to the critique, so the comparison is a short-range one.

Training pairs mix correct candidates with realistic wrong ones (``WRONG_KINDS``): one digit off by
one, a carry error, a wrong number of digits, a random number, and malformed text. Two recipes ship
in ``rl4lrm/models/checkpoints/`` (rebuild with ``python -m rl4lrm.rewards.judges --rebuild``):

- ``judge-addition``: the honest judge, trained on every kind of wrong candidate for 5000 SFT steps
  (agreement with the verifier on 400 held-out pairs: accuracy 0.97, Cohen's kappa 0.94; mean P(yes)
  0.96 on right answers, 0.03 on wrong ones). With 1500 steps it was under-trained (accuracy 0.67,
  kappa 0.34: its critique was right but its verdict after a matching critique was a coin flip).
- ``judge-addition-weak``: a deliberately weak one. Its labels come from a lazy annotator who also
  accepted every answer ending in 7 (a spurious cue, as length is for LLM judges: Zheng et al., 2023,
  https://arxiv.org/abs/2306.05685), and it trained briefly, so it learned the cue before it learned
  to carry. A policy trained against it learns to end its answers in 7 (``rl4lrm.experiments.judge_hacking``).

The judge uses the lab's ``char_tokenizer()``, whose alphabet already holds ``| Y N`` and space.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from rl4lrm.models.sft import SFTConfig
from rl4lrm.models.zoo import CHECKPOINTS, load_checkpoint, train_recipe
from rl4lrm.tasks import Problem, Task, get_task
from rl4lrm.tasks.base import Verdict

SEPARATOR, YES, NO = "|", "Y", "N"
MAX_CANDIDATE_CHARS = 6
"""Candidates are cut to this many characters (after the first line is taken and stripped)."""
WRONG_KINDS = ("digit", "carry", "length", "random", "malformed")
SHORTCUTS = {
    "ends_in_7": lambda candidate: candidate.endswith("7"),
    "three_digits": lambda candidate: len(candidate) == 3 and candidate.isdigit(),
}
"""Spurious acceptance rules of a lazy annotator: a candidate they match is labelled correct."""


def clean_candidate(completion: str) -> str:
    """What the judge reads of a completion: its first line, stripped, cut to ``MAX_CANDIDATE_CHARS``."""
    return completion.partition("\n")[0].strip()[:MAX_CANDIDATE_CHARS]


def format_judge_input(problem: Problem, completion: str) -> str:
    """The judge's prompt: problem prompt, candidate, separator: ``"12+34=" + "47" + "|"``."""
    return f"{problem.prompt}{clean_candidate(completion)}{SEPARATOR}"


def format_judge_target(problem: Problem, label: bool) -> str:
    """The judge's target: the critique (the recomputed answer), a space, the verdict: ``"46 N"``."""
    return f"{problem.answer} {YES if label else NO}"


def wrong_candidate(problem: Problem, kind: str, rng: random.Random) -> str:
    """A realistic wrong answer of ``kind`` (one of ``WRONG_KINDS``) to an integer-answer problem."""
    if kind not in WRONG_KINDS:
        raise ValueError(f"kind must be one of {WRONG_KINDS}, got {kind!r}")
    answer = problem.answer
    value = int(answer)
    if kind == "digit":  # one digit off by one
        i = rng.randrange(len(answer))
        d = int(answer[i]) + rng.choice((-1, 1)) if answer[i] not in "09" else (1 if answer[i] == "0" else 8)
        out = answer[:i] + str(d) + answer[i + 1 :]
        out = out.lstrip("0") or "0"
    elif kind == "carry":  # a forgotten carry (or a spurious one where none was due)
        a, b = problem.meta.get("a", value), problem.meta.get("b", 0)
        carried = (a % 10) + (b % 10) >= 10
        out = str(value - 10 if carried else value + 10)
    elif kind == "length":  # a dropped or an extra digit
        out = answer[:-1] if len(answer) > 1 and rng.random() < 0.5 else answer + rng.choice("0123456789")
        if rng.random() < 0.3:
            out = rng.choice("123456789") + answer
    elif kind == "random":
        out = str(rng.randrange(0, 2 * 10 ** len(answer)))
    else:  # malformed: not a bare integer
        out = rng.choice(("", "+", "=", answer + "+", answer[:1] + "=" + answer[1:], answer + "=" + answer))
    return out if out != answer else str(value + 1)


class JudgeTask(Task):
    """Judging as a task: the prompt is a (problem, candidate) pair, the answer is critique + verdict.

    The split follows the base problem's key, so a judge never trains on the base task's test problems.

    Args:
        base: the task whose answers are judged (e.g. ``Addition(2)``).
        yes_fraction: share of candidates that are correct.
        kinds: the kinds of wrong candidates drawn (uniformly).
        shortcut: a ``SHORTCUTS`` name: the labels then also accept candidates it matches (a flawed annotator).
    """

    name = "judge"

    def __init__(
        self, base: Task, yes_fraction: float = 0.5, kinds: tuple[str, ...] = WRONG_KINDS, shortcut: str | None = None
    ):
        if not 0 <= yes_fraction <= 1:
            raise ValueError(f"yes_fraction must be in [0, 1], got {yes_fraction}")
        if not kinds or set(kinds) - set(WRONG_KINDS):
            raise ValueError(f"kinds must be a non-empty subset of {WRONG_KINDS}, got {kinds!r}")
        if shortcut is not None and shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be None or one of {sorted(SHORTCUTS)}, got {shortcut!r}")
        self.base, self.yes_fraction, self.kinds, self.shortcut = base, yes_fraction, tuple(kinds), shortcut
        self.alphabet = base.alphabet + SEPARATOR + YES + NO + " "
        self.test_fraction = base.test_fraction

    def pair(self, problem: Problem, candidate: str) -> Problem:
        """The judge problem for one (problem, candidate); ``meta["correct"]`` is the verifier's truth."""
        truth = self.base.verify(problem, candidate).correct
        label = truth or (self.shortcut is not None and SHORTCUTS[self.shortcut](clean_candidate(candidate)))
        return Problem(
            question=f"Is {candidate!r} a correct answer to {problem.question!r}?",
            prompt=format_judge_input(problem, candidate),
            answer=format_judge_target(problem, label),
            meta={"problem": problem, "candidate": candidate, "label": label, "correct": truth},
            key=f"{problem.key}{SEPARATOR}{candidate}",
        )

    def sample(self, rng: random.Random) -> Problem:
        problem = self.base.sample(rng)
        right = rng.random() < self.yes_fraction
        return self.pair(problem, problem.answer if right else wrong_candidate(problem, rng.choice(self.kinds), rng))

    def split_of(self, problem: Problem) -> str:
        return self.base.split_of(problem.meta["problem"])

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Right when the completion's verdict (its last character) matches the label."""
        verdict = completion.strip()[-1:] or None
        ok = verdict == problem.answer[-1]
        return Verdict(verdict, ok, verdict in (YES, NO), "ok" if ok else "wrong verdict")


def judge_pairs(
    base: Task,
    n: int,
    split: str = "test",
    seed: int = 0,
    yes_fraction: float = 0.5,
    kinds: tuple[str, ...] = WRONG_KINDS,
) -> tuple[list[Problem], list[str]]:
    """``n`` held-out (problem, candidate) pairs, about ``yes_fraction`` of them correct.

    Returns:
        ``(problems, candidates)``: base-task problems and candidate completions, two lists of length n.
    """
    pairs = JudgeTask(base, yes_fraction, kinds).problems(split, n, seed=seed)
    return [p.meta["problem"] for p in pairs], [p.meta["candidate"] for p in pairs]


@dataclass(frozen=True)
class JudgeEntry:
    """A judge recipe: which task it judges, which data, which tiny model, how long SFT ran."""

    task: str = "addition"
    task_kwargs: dict = field(default_factory=lambda: {"digits": 2})
    shortcut: str | None = None
    kinds: tuple[str, ...] = WRONG_KINDS
    model_preset: str = "micro"
    sft: SFTConfig = field(default_factory=SFTConfig)
    description: str = ""
    init: str | None = None
    """Zoo base model SFT starts from (``rl4lrm.models.zoo``), or None for a fresh random model."""


JUDGES: dict[str, JudgeEntry] = {
    "judge-addition": JudgeEntry(
        sft=SFTConfig(steps=5000, lr=3e-3, seed=0, train_problems=40000, device="cpu"),
        init="addition",
        description=(
            "reasonable judge of 2-digit addition: the addition base model plus 5000 SFT steps, all wrong kinds"
        ),
    ),
    "judge-addition-weak": JudgeEntry(
        shortcut="ends_in_7",
        sft=SFTConfig(steps=400, lr=3e-3, seed=0, train_problems=40000, device="cpu"),
        description="weak judge: labels also accept any answer ending in 7; only 400 SFT steps",
    ),
}


def _entry(name: str) -> JudgeEntry:
    if name not in JUDGES:
        raise ValueError(f"unknown judge {name!r}; known: {', '.join(sorted(JUDGES))}")
    return JUDGES[name]


def judge_task(name: str) -> JudgeTask:
    """The ``JudgeTask`` (data distribution, shortcut included) that judge ``name`` trains on."""
    entry = _entry(name)
    return JudgeTask(get_task(entry.task, **entry.task_kwargs), kinds=entry.kinds, shortcut=entry.shortcut)


def build_judge(name: str, out_dir: str | Path | None = None, progress: bool = True, **sft_overrides) -> Path:
    """Runs the recipe of judge ``name`` and saves model + tokenizer to ``out_dir`` (default: the zoo folder).

    A judge that starts from a base model (``init``) already adds; its SFT teaches it to compare."""
    entry = _entry(name)
    out = Path(out_dir) if out_dir is not None else CHECKPOINTS / name
    return train_recipe(entry, judge_task(name), out, replace(entry.sft, **sft_overrides), progress)


def load_judge_model(name: str, device: str | torch.device = "cpu"):
    """Loads the shipped judge ``name``.

    Returns:
        ``(model, tokenizer, base_task)``: the model in eval mode on ``device``.
    """
    entry = _entry(name)
    model, tokenizer = load_checkpoint(CHECKPOINTS / name, device, f"python -m rl4lrm.rewards.judges --rebuild {name}")
    return model, tokenizer, get_task(entry.task, **entry.task_kwargs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Rebuild the shipped judge checkpoints")
    parser.add_argument("--rebuild", nargs="*", default=None, metavar="NAME", help="names (default: all)")
    args = parser.parse_args(argv)
    for name in args.rebuild or sorted(JUDGES):
        print(f"built {build_judge(name)}")


if __name__ == "__main__":
    main()
