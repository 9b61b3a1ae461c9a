"""A mixture of tasks: one problem stream drawn from several registered tasks, each verified by its own task.

A pretrained model has seen many kinds of problems; fine-tuning on one of them can change how it does on the
others. A ``Mixture`` is the lab's stand-in for that broad corpus: ``train_sft`` on a mixture gives a base model
that knows several tasks (the zoo's ``generalist``), and each part stays reachable on its own (``part``), so a
study can fine-tune on one part and measure the others (notebook 06: forgetting).

Every part keeps its own train/test split: a mixture problem belongs to the split its part puts it in, so the
test problems of ``mixture.part("add2")`` are exactly those of the part's task built alone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict

_SEP = "|"  # between a part's label and its problem key; labels may not contain it


@TASKS.register("mixture")
class Mixture(Task):
    """Draws a part with probability proportional to its weight, then a problem of that part's task."""

    name = "mixture"

    def __init__(self, parts: Mapping[str, tuple[str, dict]], weights: Mapping[str, float] | None = None):
        """Builds every part's task and checks the weights.

        Args:
            parts: ``{label: (task name, task kwargs)}``, e.g. ``{"add": ("addition", {"digits": 2}),
                "chain": ("chain", {})}``; at least one part.
            weights: ``{label: weight > 0}`` for every label (default: equal weights).
        """
        if not isinstance(parts, Mapping) or not parts:
            raise ValueError(f"parts must be a non-empty mapping {{label: (task name, kwargs)}}, got {parts!r}")
        for label, spec in parts.items():
            if not isinstance(label, str) or not label or _SEP in label:
                raise ValueError(f"part labels must be non-empty strings without {_SEP!r}, got {label!r}")
            if not (isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[1], Mapping)):
                raise ValueError(f"part {label!r} must be (task name, kwargs), got {spec!r}")
            if spec[0] == self.name:
                raise ValueError(f"part {label!r}: a mixture cannot contain a mixture")
        weights = dict.fromkeys(parts, 1.0) if weights is None else dict(weights)
        if set(weights) != set(parts):
            raise ValueError(f"weights must name exactly the parts {sorted(parts)}, got {sorted(weights)}")
        bad = {k: w for k, w in weights.items() if isinstance(w, bool) or not isinstance(w, int | float) or w <= 0}
        if bad:
            raise ValueError(f"weights must be numbers > 0, got {bad}")
        self.parts, self.weights = parts, weights
        self._tasks: dict[str, Task] = {label: TASKS.get(name)(**kwargs) for label, (name, kwargs) in parts.items()}
        self._labels = list(parts)
        self._cum = []
        total = 0.0
        for label in self._labels:
            total += weights[label]
            self._cum.append(total)
        self.alphabet = "".join(dict.fromkeys("".join(t.alphabet for t in self._tasks.values())))
        self.max_answer_chars = max(t.max_answer_chars for t in self._tasks.values())

    def part(self, label: str) -> Task:
        """The task of part ``label`` on its own (its problems, split and verifier)."""
        if label not in self._tasks:
            raise ValueError(f"unknown part {label!r}; parts: {self._labels}")
        return self._tasks[label]

    def sample(self, rng: random.Random) -> Problem:
        u = rng.random() * self._cum[-1]
        label = next((lab for lab, c in zip(self._labels, self._cum) if u < c), self._labels[-1])
        problem = self._tasks[label].sample(rng)
        return replace(problem, meta={**problem.meta, "part": label}, key=f"{label}{_SEP}{problem.key}")

    def split_of(self, problem: Problem) -> str:
        """The split the problem's own part puts it in (so a part's test problems never train the mixture)."""
        label, _, key = problem.key.partition(_SEP)
        return self._tasks[label].split_of(replace(problem, key=key))

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """The verdict of the problem's part; a problem of no part is "not a problem of this mixture"."""
        task = self._tasks.get(problem.meta.get("part")) if isinstance(problem.meta, dict) else None
        if task is None:
            return Verdict(None, False, False, "not a problem of this mixture")
        return task.verify(problem, completion)
