"""Verifiable (rule-based) rewards: exact match, numeric tolerance, mathematical equivalence, format.

RL with verifiable rewards (RLVR) scores a completion with a program instead of a learned reward model:
DeepSeek-R1 (DeepSeek-AI, 2025, arXiv:2501.12948) used an accuracy reward on the final answer plus a
format reward for ``<think>...</think><answer>...</answer>``; Tülu 3 (Lambert et al., 2024,
arXiv:2411.15124) named the approach RLVR. The verifier decides what the policy learns, so its false
negatives (right answers marked wrong) matter: ``false_negatives`` tabulates typical ones and which
extraction or equivalence check repairs each. ``math_equiv`` delegates to Hugging Face's
``math-verify`` (https://github.com/huggingface/Math-Verify), which parses LaTeX and plain expressions
into SymPy and compares them.

Answer extraction, the ``extract`` parameter of ``exact_match``, ``numeric`` and ``math_equiv``:

- ``"strict"``: the content of the last ``<answer>...</answer>``, else the whole first line
  (``rl4lrm.tasks.base.extract_answer``, the lab's task verifiers' rule).
- ``"lenient"``: the last number anywhere in the text (``math_equiv``: math-verify's own search of
  the whole text, which prefers ``\\boxed{}`` and "final answer is" and otherwise takes the last
  expression).

Numbers (``numeric`` and lenient extraction) are ASCII only: an optional sign, digits with optional
thousands separators in groups of three (``12,345``), an optional decimal part, or a simple fraction
``3/4``. Commas: digits joined by commas whose groups after the first all have three digits are one
numeral with thousands separators when the first group has 1-3 digits and no leading zero (``46,000``);
otherwise (``0,046``, ``1234,567``) they are a decimal comma or a typo, and not a number at all, so
``"0,046"`` never equals 46 nor 0.046. Any other comma separates a list (``1,2,3`` holds three numbers).
Non-ASCII digits (``"٤٦"``) are not numbers here, as in the task verifiers, although Python's
``float`` would accept them; number words (``"forty-six"``) are not either. Nothing is ever ``eval``-ed,
and numbers longer than ``MAX_NUMBER_CHARS`` characters are rejected before conversion.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pandas as pd
import torch

from rl4lrm.rewards.base import RewardContext, register_reward
from rl4lrm.rewards.math_worker import _TAGS, MAX_MATH_CHARS, WORKER, too_costly
from rl4lrm.tasks.base import Problem, extract_answer

EXTRACT_MODES = ("strict", "lenient")
FORMAT_PATTERNS = ("think_answer", "answer_tag")
MAX_ANSWER_CHARS = 1000  # extracted answers are cut here: they stay cheap to compare and to log
MAX_NUMBER_CHARS = 64  # longer numerals are not parsed (int("9" * 10**6) is slow, then refused)
# [0-9], not \d: \d also matches non-ASCII digits. A run of digit groups joined by commas is read whole and
# then classified (``_numerals``), so that "0,046" is never split into "0" and "046".
_NUMBER = re.compile(r"[+-]?[0-9]+(?:,[0-9]+)*(?:\.[0-9]+)?(?:/[0-9]+)?")
_THOUSANDS_LEAD = re.compile(r"[+-]?[1-9][0-9]{0,2}")


def _check_choice(param: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{param} must be one of {choices}, got {value!r}")


def _check_tol(param: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"{param} must be a finite number >= 0, got {value!r}")


def _numerals(run: str) -> list[str]:
    """The numerals in one match of ``_NUMBER``, by the comma rule of the module docstring."""
    head, dot, tail = run.partition(".") if "/" not in run.partition(".")[0] else (run, "", "")
    groups = head.split(",")
    if len(groups) == 1:
        return [run]
    if all(len(g) == 3 for g in groups[1:]):  # thousands separators, or a decimal comma: one token
        return [run] if _THOUSANDS_LEAD.fullmatch(groups[0]) else []
    groups[-1] += dot + tail  # a list: "1,2,3" is three numbers
    return groups


def parse_number(text: str | None) -> Fraction | None:
    """The exact value of a numeral such as ``"-1,234.5"`` or ``"3/4"``, or None if it is not one.

    The whole stripped string must be one numeral of the grammar in the module docstring.
    """
    if text is None:
        return None
    text = text.strip()
    if len(text) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(text) or _numerals(text) != [text]:
        return None
    numerator, _, denominator = text.replace(",", "").partition("/")
    if denominator and int(denominator) == 0:
        return None
    return Fraction(numerator) / (int(denominator) if denominator else 1)


def last_number(text: str) -> str | None:
    """The last numeral anywhere in ``text`` (lenient extraction), or None. Linear time."""
    last = None
    for match in _NUMBER.finditer(text):
        last = (_numerals(match.group(0)) or [last])[-1]  # "0,046" is no numeral: the previous one stays last
    return last


def get_answer(completion: str, mode: str = "strict") -> str | None:
    """The answer a completion gives, under extraction ``mode`` (``"strict"`` or ``"lenient"``).

    Returns:
        The answer string (at most ``MAX_ANSWER_CHARS`` characters plus "…"), or None if there is none.
    """
    _check_choice("extract", mode, EXTRACT_MODES)
    if mode == "strict":
        return extract_answer(completion, MAX_ANSWER_CHARS)
    return last_number(completion or "")


def _tensor(values) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float32)


@register_reward("exact_match")
def exact_match(
    problems: list[Problem], completions: list[str], ctx: RewardContext, extract: str = "strict"
) -> torch.Tensor:
    """1.0 when the extracted answer equals ``problem.answer`` up to whitespace (runs collapsed to one
    space, ends stripped), else 0.0.

    Args:
        problems: N problems. completions: N completion strings. ctx: unused.
        extract: ``"strict"`` or ``"lenient"`` (module docstring).

    Returns:
        Rewards in {0, 1}, shape (N,).
    """
    _check_choice("extract", extract, EXTRACT_MODES)
    out = []
    for problem, completion in zip(problems, completions):
        answer = get_answer(completion, extract)
        out.append(answer is not None and " ".join(answer.split()) == " ".join(problem.answer.split()))
    return _tensor(out)


def numbers_close(a: Fraction, b: Fraction, rel_tol: float = 0.0, abs_tol: float = 0.0) -> bool:
    """``|a - b| <= max(rel_tol * max(|a|, |b|), abs_tol)`` in exact rational arithmetic (as
    ``math.isclose``, but without float rounding, so 10**20 and 10**20 + 1 stay different)."""
    return abs(a - b) <= max(Fraction(rel_tol) * max(abs(a), abs(b)), Fraction(abs_tol))


def _check_numeric_references(task, problems: list[Problem]) -> None:
    for problem in problems:
        if parse_number(problem.answer) is None:
            raise ValueError(
                f"reference answer {problem.answer!r} of problem {problem.key!r} is not a number; "
                "use 'correct' (the task's verifier) or 'math_equiv'"
            )


@register_reward("numeric", check_task=_check_numeric_references)
def numeric(
    problems: list[Problem],
    completions: list[str],
    ctx: RewardContext,
    extract: str = "strict",
    rel_tol: float = 0.0,
    abs_tol: float = 0.0,
) -> torch.Tensor:
    """1.0 when the extracted answer is a number equal to ``problem.answer`` within the tolerances.

    ``"46.0"``, ``"46"`` and ``"92/2"`` are the same number. The default tolerances (0) demand exact
    rational equality: a relative tolerance would accept 1000001 for 1000000 at ``rel_tol=1e-6``,
    wrong for integer tasks; set them for answers such as ``0.333`` vs ``1/3``.

    Args:
        problems: N problems whose ``answer`` is a numeral. completions: N strings. ctx: unused.
        extract: ``"strict"`` or ``"lenient"``.
        rel_tol: relative tolerance, >= 0. abs_tol: absolute tolerance, >= 0.

    Returns:
        Rewards in {0, 1}, shape (N,).

    Raises:
        ValueError: for a bad parameter, or a problem whose reference answer is not a number (a
            configuration error, e.g. Countdown's expressions: use ``correct`` there).
    """
    _check_choice("extract", extract, EXTRACT_MODES)
    _check_tol("rel_tol", rel_tol)
    _check_tol("abs_tol", abs_tol)
    out = []
    for problem, completion in zip(problems, completions):
        reference = parse_number(problem.answer)
        if reference is None:
            raise ValueError(
                f"numeric reward: reference answer {problem.answer!r} of problem {problem.key!r} is not a number"
            )
        value = parse_number(get_answer(completion, extract))
        out.append(value is not None and numbers_close(value, reference, rel_tol, abs_tol))
    return _tensor(out)


def _math_verify_equal(prediction: str, reference: str, mode: str) -> bool:
    """math-verify's verdict under ``math_worker``'s rules and hard time limit; False on any error."""
    text = prediction if mode == "strict" else _TAGS.sub("\n", prediction)[-MAX_MATH_CHARS:]
    if len(text) > MAX_MATH_CHARS or too_costly(text) or too_costly(reference):
        return False
    return WORKER.equal(prediction, reference, mode)


@register_reward("math_equiv")
def math_equiv(
    problems: list[Problem], completions: list[str], ctx: RewardContext, extract: str = "strict"
) -> torch.Tensor:
    """1.0 when the answer is mathematically equivalent to ``problem.answer`` according to math-verify
    (``\\frac{92}{2}``, ``\\boxed{46}``, ``46.0`` and ``92/2`` all equal ``46``), else 0.0.

    Rules against false positives (``rl4lrm.rewards.math_worker`` implements them): a percent sign must be
    matched by the reference (``46\\%`` is not 46); a relation other than ``=`` (``46 \\approx 47``,
    ``46 < 47``) is wrong; with ``=``, every side but bare variable names must equal the reference
    (``x = 46`` passes, ``47 = 46`` and ``x = 47 = 46`` fail); in lenient mode an extracted expression that
    the text continues with an operator (``46+1/10^{9}``) is wrong; numbers compare to 12 decimal places.
    Bounded time everywhere, on any thread: towers of powers and huge exponents or factorials
    (``10^{10^{10}}``) are rejected before SymPy sees them, and every comparison runs in a worker process
    that is killed after ``math_worker.HARD_TIMEOUT_S`` seconds (verdict 0).

    Args:
        problems: N problems whose answer is a value (not, e.g., a Countdown expression, whose value
            is the target but which asks for a specific form). completions: N strings. ctx: unused.
        extract: ``"strict"`` (the extracted answer, read whole as one LaTeX expression) or
            ``"lenient"`` (math-verify's own search of the whole completion, tags removed, last
            ``MAX_MATH_CHARS`` characters).

    Returns:
        Rewards in {0, 1}, shape (N,). Never raises on any completion string.
    """
    _check_choice("extract", extract, EXTRACT_MODES)
    out = []
    for problem, completion in zip(problems, completions):
        if extract == "strict":
            answer = extract_answer(completion, MAX_MATH_CHARS)
            out.append(answer is not None and _math_verify_equal(answer, problem.answer, "strict"))
        else:
            out.append(bool(completion) and _math_verify_equal(completion, problem.answer, "lenient"))
    return _tensor(out)


def _tag_span(text: str, tag: str) -> tuple[int, int] | None:
    """(start, end) of the only ``<tag>...</tag>`` pair in ``text``, or None unless there is exactly one
    opening and one closing tag, in that order."""
    open_, close = f"<{tag}>", f"</{tag}>"
    if text.count(open_) != 1 or text.count(close) != 1:
        return None
    start, end = text.find(open_), text.find(close)
    return (start, end + len(close)) if start < end else None


def is_well_formed(completion: str, pattern: str = "think_answer") -> bool:
    """Whether ``completion`` follows the template ``pattern``.

    ``"think_answer"``: the whole text is ``<think>R</think><answer>A</answer>`` with only whitespace
    around and between the blocks, one of each tag, and a non-empty ``A``. ``"answer_tag"``: exactly
    one ``<answer>A</answer>`` with non-empty ``A`` anywhere. Tag counting instead of a backtracking
    regex keeps this linear on adversarial inputs.
    """
    _check_choice("pattern", pattern, FORMAT_PATTERNS)
    text = completion or ""
    answer = _tag_span(text, "answer")
    if answer is None or not text[answer[0] + len("<answer>") : answer[1] - len("</answer>")].strip():
        return False
    if pattern == "answer_tag":
        return True
    think = _tag_span(text, "think")
    return (
        think is not None
        and not text[: think[0]].strip()
        and not text[think[1] : answer[0]].strip()
        and not text[answer[1] :].strip()
    )


@register_reward("format")
def format_reward(
    problems: list[Problem], completions: list[str], ctx: RewardContext, pattern: str = "think_answer"
) -> torch.Tensor:
    """DeepSeek-R1's format reward: 1.0 when the completion follows the template, else 0.0.

    Args:
        problems: N problems (unused). completions: N strings. ctx: unused.
        pattern: ``"think_answer"`` (strict full match of ``<think>...</think><answer>...</answer>``)
            or ``"answer_tag"`` (just one non-empty answer tag); see ``is_well_formed``.

    Returns:
        Rewards in {0, 1}, shape (N,).
    """
    _check_choice("pattern", pattern, FORMAT_PATTERNS)
    return _tensor(is_well_formed(c, pattern) for c in completions)


FALSE_NEGATIVE_EXAMPLES = (
    "46",
    "<answer> 46 </answer>",
    "The answer is 46.",
    "46.0",
    "92/2",
    "\\frac{92}{2}",
    "<answer>\\boxed{46}</answer>",
    "1. add 40 and 6\n2. that gives 46",
    "forty-six",
    "٤٦",
    "47",
)
_CHECKS = (  # (column, reward, extract) in order of increasing tolerance
    ("exact_match/strict", "exact_match", "strict"),
    ("numeric/strict", "numeric", "strict"),
    ("math_equiv/strict", "math_equiv", "strict"),
    ("numeric/lenient", "numeric", "lenient"),
    ("math_equiv/lenient", "math_equiv", "lenient"),
)


def false_negatives(reference: str = "46", completions=FALSE_NEGATIVE_EXAMPLES) -> pd.DataFrame:
    """A table of completions scored by a naive verifier and by each reward and extraction mode.

    Shows the false negatives of string comparison (``naive``: ``completion == reference``) and the
    first, least tolerant check that accepts each completion. A lenient check also brings false
    positives: "1. add 40 and 6\\n2. that gives 46" passes the lenient numeric check only because
    the number it finds last happens to be right.

    Args:
        reference: the correct answer, a numeral for the numeric checks.
        completions: the completions to score.

    Returns:
        One row per completion: ``completion``, ``naive``, one 0/1 column per check in ``_CHECKS``,
        and ``fixed_by`` (the first check that accepts it, "—" if none).
    """
    completions = list(completions)
    problems = [Problem(question="", prompt="", answer=reference, meta={}, key=reference)] * len(completions)
    ctx = RewardContext()
    rewards = {"exact_match": exact_match, "numeric": numeric, "math_equiv": math_equiv}
    table = pd.DataFrame({"completion": completions, "naive": [float(c == reference) for c in completions]})
    for column, name, mode in _CHECKS:
        table[column] = rewards[name](problems, completions, ctx, extract=mode).tolist()
    checks = ["naive"] + [column for column, _, _ in _CHECKS]
    table["fixed_by"] = [next((c for c in checks if row[c] == 1.0), "—") for _, row in table.iterrows()]
    return table
