"""reasoning-gym's procedural environments as rl4lrm tasks: any of its ~100 generators, its own scoring as reward.

reasoning-gym (Stojanovski et al., 2025, arXiv:2505.24760, https://github.com/open-thought/reasoning-gym) ships
procedural generators of verifiable problems (arithmetic, logic, puzzles, graphs, ...), each with a
``score_answer(answer, entry)`` in [0, 1]. ``ReasoningGymTask("chain_sum", size=2000, min_terms=2, max_terms=3)``
draws ``size`` problems from one generator (the keyword arguments are the generator's own configuration: its
difficulty knobs, such as the number of terms or digits), splits them by a hash of the question like every lab
task, and uses the generator's score as the training reward (partial credit where the generator gives it) and
``score >= correct_at`` as the verdict for held-out accuracy. The answer is read with ``extract_answer``: the last
``<answer>...</answer>`` if there is one, else the first line. ``gallery`` shows one problem of each of several
generators side by side, and which of them the lab's tiny models could read.

Most generators write English questions hundreds of characters long: our tiny character-level models cannot read
them, so use them with ``prompt_style="chat"`` and a real model (SmolLM2, notebook 18), or pick the few whose
questions stay short. Optional dependency, pinned: ``pip install "rl4lrm[gym]"`` (reasoning-gym 0.1.25).
"""

from __future__ import annotations

import random

import pandas as pd

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, extract_answer

VERSION = "0.1.25"


def _gym():
    try:
        import reasoning_gym
    except ImportError:
        raise ImportError(
            f'reasoning-gym is not installed: pip install "rl4lrm[gym]" (reasoning-gym=={VERSION})'
        ) from None
    return reasoning_gym


@TASKS.register("reasoning_gym")
class ReasoningGymTask(Task):
    """One reasoning-gym generator as a task.

    Args:
        dataset: the generator's name (``reasoning_gym.factory.DATASETS``), e.g. ``"basic_arithmetic"``.
        size: problems drawn from it (both splits together).
        seed: the generator's seed (the same seed gives the same problems).
        correct_at: a completion counts as correct when the generator scores it at least this.
        test_fraction: share of the questions held out by hash.
        **config: the generator's own settings, its difficulty knobs (see its ``*Config`` class).
    """

    def __init__(
        self,
        dataset: str = "basic_arithmetic",
        size: int = 1000,
        seed: int = 0,
        correct_at: float = 1.0,
        test_fraction: float = 0.2,
        **config,
    ):
        gym = _gym()
        known = sorted(gym.factory.DATASETS)
        if dataset not in known:
            raise ValueError(f"unknown reasoning-gym dataset {dataset!r}; choose one of {known}")
        if not 0 < correct_at <= 1:
            raise ValueError(f"correct_at must be in (0, 1], got {correct_at!r}")
        try:
            self.dataset = gym.create_dataset(dataset, size=size, seed=seed, **config)
        except (TypeError, ValueError, AssertionError) as err:  # its config classes validate with asserts
            raise ValueError(f"reasoning-gym {dataset!r} rejected size={size}, seed={seed}, {config}: {err}") from None
        self.name, self.correct_at, self.test_fraction = f"reasoning_gym:{dataset}", correct_at, test_fraction
        self.entries = list(self.dataset)
        self.all = [
            Problem(e["question"], e["question"], str(e["answer"]), {"index": i}, e["question"])
            for i, e in enumerate(self.entries)
        ]
        self.alphabet = "".join(sorted(set("".join(p.prompt + p.answer for p in self.all))))
        self.max_answer_chars = max(64, max(len(p.answer) for p in self.all))

    def sample(self, rng: random.Random) -> Problem:
        return rng.choice(self.all)

    def score(self, problem: Problem, completion: str) -> float:
        """The generator's score of the completion's answer, in [0, 1] (0 when there is no answer)."""
        answer = extract_answer(completion, self.max_answer_chars)
        if answer is None:
            return 0.0
        try:
            return float(self.dataset.score_answer(answer, self.entries[problem.meta["index"]]))
        except Exception:  # a scorer that chokes on odd text gives no credit rather than stopping training
            return 0.0

    def verify(self, problem: Problem, completion: str) -> Verdict:
        answer = extract_answer(completion, self.max_answer_chars)
        value = self.score(problem, completion)
        return Verdict(answer, value >= self.correct_at, answer is not None, f"score {value:g}")

    def reward(self, problems: list[Problem], completions: list[str]) -> list[float]:
        """The generator's scores (partial credit where it gives it), not just 0/1."""
        if len(problems) != len(completions):
            raise ValueError(f"got {len(problems)} problems but {len(completions)} completions")
        return [self.score(p, c) for p, c in zip(problems, completions)]


def gallery(datasets: list[str], seed: int = 0, fits_chars: int = 64) -> pd.DataFrame:
    """One problem from each generator, at its default difficulty: what a model would have to read and answer.

    Args:
        datasets: reasoning-gym generator names.
        seed: the generators' seed.
        fits_chars: the longest question the lab's tiny character-level models read (their context is short).

    Returns:
        One row per generator: ``dataset``, ``question``, ``answer``, ``chars`` (question length) and
        ``tiny model`` (whether the question is ASCII and at most ``fits_chars`` characters long).
    """
    rows = []
    for name in datasets:
        problem = ReasoningGymTask(name, size=1, seed=seed).all[0]
        fits = len(problem.question) <= fits_chars and (problem.question + problem.answer).isascii()
        rows.append(
            {
                "dataset": name,
                "question": problem.question,
                "answer": problem.answer,
                "chars": len(problem.question),
                "tiny model": fits,
            }
        )
    return pd.DataFrame(rows)
