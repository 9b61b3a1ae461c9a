"""Checkers for notebook 10's exercises: the decontamination rule and the async producer's staleness bound."""

from __future__ import annotations

import random
from collections.abc import Callable

from rl4lrm.async_rl import admits
from rl4lrm.corpus import CurationConfig, curate
from rl4lrm.exercises import report_check


def check_contaminated(fn: Callable[[str, list[str], int], bool], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(prompt, test_prompts, n)`` (does the prompt share a character n-gram with a test prompt?) with
    ``curate``'s decontamination step (``CurationConfig(dedupe=False, ngram=n, ngram_unit="char")``), on random
    prompts of the lab's kind (``12+34=``), some shorter than n."""
    rng = random.Random(seed)

    def prompt() -> str:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 3))) + "+" + str(rng.randint(0, 99)) + "="

    def attempt():
        for _ in range(cases):
            n, tests, row = rng.randint(2, 8), [prompt() for _ in range(rng.randint(1, 4))], prompt()
            config = CurationConfig(dedupe=False, ngram=n, ngram_unit="char")
            want = len(curate([{"prompt": row}], [{"prompt": t} for t in tests], config=config).kept) == 0
            got = bool(fn(row, list(tests), n))
            assert got == want, f"prompt {row!r}, test prompts {tests}, n={n}: expected {want}, got {got}"

    return report_check("decontamination rule", attempt)


def check_admits(fn: Callable[[int, int, int], bool], cases: int = 300, seed: int = 0) -> bool:
    """Compares ``fn(step, version, staleness)`` (may weights of ``version`` sample the batch of ``step``?) with
    ``rl4lrm.async_rl.admits`` on random steps, versions up to the step, and bounds 0 to 4."""
    rng = random.Random(seed)

    def attempt():
        for _ in range(cases):
            step = rng.randint(0, 20)
            version, staleness = rng.randint(0, step), rng.randint(0, 4)
            want, got = admits(step, version, staleness), bool(fn(step, version, staleness))
            assert got == want, f"step {step}, version {version}, staleness {staleness}: expected {want}, got {got}"

    return report_check("staleness bound", attempt)
