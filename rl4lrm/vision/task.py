"""Counting shapes in a tiny image: a visual question with an exactly checkable answer.

Each problem is a small RGB image (by default 12 x 12 pixels: a 4 x 4 grid of 3-pixel cells, some holding a
2 x 2 square of red, green, blue or yellow at a random offset inside its cell) and a question such as
``"r+b?"``: how many red squares plus how many blue ones. The reference completion writes what it *sees*
before what it *computes*,

    "r+b?"  ->  "3+2=5"       (3 red, 2 blue, answer 5),

so a wrong answer can be split into a **perception** error (a count misread: "2+2=4") and a **reasoning**
error (counts read right, arithmetic wrong: "3+2=6"); ``error_kind`` reads that split from the completion.
Yellow squares are distractors (never asked), and because cells of 3 pixels straddle patches of 4, one square
is often cut across two or four patches: counting is not a lookup in one patch.

The image travels *inside the prompt* as one pixel token per pixel (``<p0>`` .. ``<p4>``, palette indices,
row-major), so a problem is still a string and the ordinary ``Trainer``, samplers and rollout batches carry
it unchanged. The vision model (``rl4lrm.vision.model``) never embeds those tokens as text: it turns them back
into RGB pixels, cuts patches and projects them into the LM's embedding space, as LLaVA replaces its
``<image>`` placeholder with projected patch features (Liu et al. 2023, arXiv:2304.08485).
"""

from __future__ import annotations

import random
import re

import numpy as np

from rl4lrm.tasks.base import Problem, Task, Verdict, check_int, read_answer

PALETTE = np.array(
    [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.8, 0.0], [0.0, 0.3, 1.0], [1.0, 0.9, 0.0]], dtype=np.float32
)  # (K, 3): background, red, green, blue, yellow
COLOURS = "rgby"
"""Colour letters; a letter's palette index is its position + 1 (0 is the background)."""
ASKED = "rgb"
"""Colours a question may ask about (yellow is a distractor)."""
PIXEL_TOKENS = [f"<p{i}>" for i in range(len(PALETTE))]
"""One token per palette colour; an image is ``size * size`` of them, row-major."""
ERROR_KINDS = ("correct", "perception", "reasoning", "format")
_WORKED = re.compile(r"(\d+)\+(\d+)=(-?\d+)")
_INTEGER = re.compile(r"-?\d+")


def image_tokens(pixels: np.ndarray) -> str:
    """The prompt text of an image: one ``<pK>`` token per pixel, row-major.

    Args:
        pixels: (S, S) int array of palette indices.
    """
    return "".join(PIXEL_TOKENS[int(k)] for k in pixels.reshape(-1))


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """Palette indices (S, S) -> float RGB image (S, S, 3) in [0, 1]."""
    return PALETTE[np.asarray(pixels)]


class CountingTask(Task):
    """Questions "X+Y?" about the number of X- and Y-coloured squares in a tiny generated image."""

    name = "counting"
    alphabet = "0123456789+=?-" + COLOURS
    max_answer_chars = 8

    def __init__(
        self, grid: int = 4, cell: int = 3, max_count: int = 3, max_distractors: int = 2, strict: bool = False
    ):
        """Validates and stores the settings.

        Args:
            grid: cells per side (the image is ``grid * cell`` pixels wide), 2..8.
            cell: pixels per cell side, 2..6; a square is ``cell - 1`` pixels wide at a random offset in its cell.
            max_count: most squares of each asked colour (each count is uniform in 0..max_count), 1..9.
            max_distractors: most yellow squares (uniform in 0..max_distractors), 0..9.
            strict: grade the written counts too: a completion is correct only as ``"a+b=c"`` with both counts
                read right and the sum right (a grounded verifier; the default grades the final answer only).
        """
        check_int("grid", grid, 2, 8)
        check_int("cell", cell, 2, 6)
        check_int("max_count", max_count, 1, 9)
        check_int("max_distractors", max_distractors, 0, 9)
        if 3 * max_count + max_distractors > grid * grid:
            raise ValueError(
                f"3 * max_count + max_distractors = {3 * max_count + max_distractors} squares do not fit in "
                f"grid * grid = {grid * grid} cells; lower max_count or raise grid"
            )
        self.grid, self.cell, self.max_count, self.max_distractors = grid, cell, max_count, max_distractors
        self.strict = bool(strict)

    @property
    def size(self) -> int:
        """Image side in pixels."""
        return self.grid * self.cell

    def render(self, squares: list[tuple[str, int, int, int, int]]) -> np.ndarray:
        """Palette indices (S, S) of an image holding ``squares``: (colour, cell row, cell col, dy, dx) each."""
        pixels = np.zeros((self.size, self.size), dtype=np.int64)
        side = self.cell - 1
        for colour, r, c, dy, dx in squares:
            y, x = r * self.cell + dy, c * self.cell + dx
            pixels[y : y + side, x : x + side] = COLOURS.index(colour) + 1
        return pixels

    def sample(self, rng: random.Random) -> Problem:
        counts = {c: rng.randint(0, self.max_count) for c in ASKED}
        counts["y"] = rng.randint(0, self.max_distractors)
        cells = rng.sample(range(self.grid * self.grid), sum(counts.values()))
        colours = [c for c in COLOURS for _ in range(counts[c])]
        squares = [
            (col, i // self.grid, i % self.grid, rng.randint(0, 1), rng.randint(0, 1)) for col, i in zip(colours, cells)
        ]
        x, y = rng.sample(ASKED, 2)
        pixels = self.render(squares)
        answer = counts[x] + counts[y]
        question = f"{x}+{y}?"
        return Problem(
            question=f"How many {_NAMES[x]} squares plus {_NAMES[y]} squares are in the image?",
            prompt=image_tokens(pixels) + question,
            answer=str(answer),
            meta={"counts": counts, "asked": (x, y), "squares": squares, "target": f"{counts[x]}+{counts[y]}={answer}"},
            key="".join(str(int(k)) for k in pixels.reshape(-1)) + question,
        )

    def pixels(self, problem: Problem) -> np.ndarray:
        """The problem's image as palette indices (S, S)."""
        return self.render(problem.meta["squares"])

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """The answer is the integer after the last ``=`` of the first line (the counts before it are not graded)."""
        parsed, failed = read_answer(completion, self.max_answer_chars)
        if failed:
            return failed
        value = parsed.rpartition("=")[2].strip()
        if not _INTEGER.fullmatch(value):
            return Verdict(value or None, False, False, "not an integer")
        correct = int(value) == int(problem.answer)
        if correct and self.strict and read_counts(completion) != _truth(problem):
            return Verdict(value, False, True, "counts misread")
        return Verdict(value, correct, True, "ok" if correct else "wrong value")


def _truth(problem: Problem) -> tuple[int, int, int]:
    x, y = problem.meta["asked"]
    return problem.meta["counts"][x], problem.meta["counts"][y], int(problem.answer)


_NAMES = {"r": "red", "g": "green", "b": "blue", "y": "yellow"}


def read_counts(completion: str) -> tuple[int, int, int] | None:
    """``(count of X, count of Y, answer)`` written in a completion ``"a+b=c"`` (first line), or None."""
    match = _WORKED.fullmatch(completion.partition("\n")[0].strip())
    return None if match is None else tuple(int(g) for g in match.groups())


def error_kind(problem: Problem, completion: str) -> str:
    """Why a completion is right or wrong: one of ``ERROR_KINDS``.

    ``"correct"``: the final answer is right (whatever the counts say); ``"format"``: not ``"a+b=c"`` and not
    right; ``"perception"``: a written count differs from the image's; ``"reasoning"``: both counts right, the
    sum wrong.
    """
    if completion.partition("\n")[0].rpartition("=")[2].strip() == problem.answer:  # what ``verify`` grades
        return "correct"
    read = read_counts(completion)
    if read is None:
        return "format"
    x, y = problem.meta["asked"]
    truth = problem.meta["counts"]
    return "perception" if (read[0], read[1]) != (truth[x], truth[y]) else "reasoning"
