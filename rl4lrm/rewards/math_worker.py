"""math-verify in a worker process with a hard time limit, and the rules ``math_equiv`` adds to it.

math-verify (https://github.com/huggingface/Math-Verify) parses answers into SymPy. Its own timeouts use
``signal.alarm``, which only a main thread may set, and a signal cannot interrupt one long C-level
operation either: ``10^{10^{10}}`` (12 characters) asks SymPy for an integer with ten billion digits and
holds the GIL for minutes. So every comparison runs in one long-lived worker process (started on first
use, about 2 s to import SymPy), one at a time, and the worker is killed and restarted when a comparison
takes longer than ``HARD_TIMEOUT_S``: the verdict is then 0. Before that, ``too_costly`` rejects the known
shapes of such answers (towers of powers, huge exponents and factorials) without SymPy at all, so a
hostile completion costs microseconds, not a restart. The worker runs this file as a script with ``-I``
(no rl4lrm, no torch: a small process), its memory capped at ``WORKER_MEMORY_BYTES`` where the OS allows.

Rules ``judge`` adds to math-verify's equivalence (they remove false positives; see ``math_equiv``):

1. A percent sign must be matched by the reference: ``46\\%`` is not ``46`` (nor ``0.46``).
2. An answer with a relation other than ``=`` (``\\approx``, ``<``, ``\\neq``, ``\\le``, ...) is wrong
   unless the reference has one too: ``46 \\approx 47`` states no value.
3. An answer with ``=`` is right only if every side that is not a bare variable name equals the reference:
   ``x = 46`` and ``2 + 44 = 46`` pass, ``47 = 46`` and ``x = 47 = 46`` fail (math-verify keeps the last side).
4. Lenient mode: when math-verify's extracted expression is continued in the text by an operator or a
   percent sign (``46+1/10^{9}``, of which it extracts ``46``), the answer is the longer expression, and
   it is wrong; when it ends a chain of ``=`` on its line, the arithmetic before each ``=`` must equal
   the reference too (``so 40 + 6 = 46`` passes, ``47 = 46`` fails).
5. Numbers compare exactly up to ``FLOAT_ROUNDING`` decimal places (math-verify rounds at 6 by default).
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import subprocess
import sys
import threading

MATH_TIMEOUT_S = 2  # math-verify's own timeout per parse and comparison, inside the worker
HARD_TIMEOUT_S = 3 * MATH_TIMEOUT_S + 1  # the worker is killed when one comparison takes longer
STARTUP_TIMEOUT_S = 120  # importing SymPy on a loaded 2-core machine
WORKER_MEMORY_BYTES = 2 * 1024**3
MAX_MATH_CHARS = 2000  # math-verify reads at most this many trailing characters
FLOAT_ROUNDING = 12
MAX_EXPONENT_DIGITS = 4  # 10^{9999} is cheap; 10^{99999} and beyond are not answers anyone expects
MAX_FACTORIAL_DIGITS = 4

_TAGS = re.compile(r"</?(?:think|answer)>")
_POWER = re.compile(r"\^|\*\*")
_NEXT_POWER = re.compile(r"\s*(?:\^|\*\*)")
_EXPONENT_TOKEN = re.compile(r"\s*(?:[+-]?[0-9]+(?:\.[0-9]+)?|\\[A-Za-z]+|[A-Za-z])")
_BIG_FACTORIAL = re.compile(rf"[0-9]{{{MAX_FACTORIAL_DIGITS + 1},}}\s*\)?\s*!")
_BIG_NUMERAL = re.compile(rf"[0-9]{{{MAX_EXPONENT_DIGITS + 1},}}")
_PERCENT = re.compile(r"%|\\%|\\percent\b")
_RELATION = re.compile(
    r"\\(?:approx|sim|simeq|cong|neq|ne|le|leq|ge|geq|lt|gt|leqslant|geqslant|propto)(?![A-Za-z])"
    r"|[<>≈≠≤≥]|!="
)
_VARIABLE = re.compile(r"\s*(?:\\[A-Za-z]+|[A-Za-z])(?:_\{?[A-Za-z0-9]+\}?)?\s*")
_CONTINUES = re.compile(r"\s*(?:[-+*/^×·%]|\\%|\\cdot|\\times|\\div|\\frac|\\pm)")
_NUMERIC_SUFFIX = re.compile(r"(?:[0-9+\-*/().^{}\s]|\\frac|\\cdot|\\times)*$")


def _exponent(text: str, start: int) -> tuple[str, int]:
    """The exponent that begins at ``start`` (a braced group, bounded, or one token) and where it ends."""
    i = start
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i + 1 : j], j + 1
            j += 1
        return text[i + 1 :], len(text)
    match = _EXPONENT_TOKEN.match(text, i)
    return (match.group(0), match.end()) if match else ("", i)


def too_costly(text: str) -> bool:
    """Whether an answer asks for numbers too large to compute: a power inside an exponent or a chain of
    powers (``10^{10^{10}}``, ``9^9^9``, ``2**3**40``), an exponent with a numeral over
    ``MAX_EXPONENT_DIGITS`` digits, or the factorial of one over ``MAX_FACTORIAL_DIGITS`` digits. Linear time."""
    if _BIG_FACTORIAL.search(text):
        return True
    for match in _POWER.finditer(text):
        exponent, end = _exponent(text, match.end())
        if _POWER.search(exponent) or _NEXT_POWER.match(text, end):
            return True
        if _BIG_NUMERAL.search(exponent):
            return True
    return False


# ---------------------------------------------------------------- inside the worker


def judge(prediction: str, reference: str, mode: str, timeout: int | None = MATH_TIMEOUT_S) -> bool:
    """math-verify's verdict with the rules of the module docstring (runs in the worker; SymPy imported lazily).

    Strict mode reads the whole ``prediction`` as one LaTeX expression; lenient mode lets math-verify search
    the text (tags removed, last ``MAX_MATH_CHARS`` characters).
    """
    from math_verify import LatexExtractionConfig, parse, verify

    def as_math(text: str):
        text = text if text.startswith("$") and text.endswith("$") and len(text) > 1 else f"${text}$"
        return parse(text, extraction_config=[LatexExtractionConfig()], parsing_timeout=timeout)

    def same(gold, pred) -> bool:
        return bool(gold and pred and verify(gold, pred, float_rounding=FLOAT_ROUNDING, timeout_seconds=timeout))

    gold = as_math(reference) or parse(reference, parsing_timeout=timeout)
    if mode == "strict":
        text = prediction
        pred = as_math(prediction) if len(prediction) <= MAX_MATH_CHARS else []
    else:
        text = _TAGS.sub("\n", prediction)[-MAX_MATH_CHARS:]
        pred = parse(text, parsing_timeout=timeout)
    if not gold or not pred:
        return False
    answer = pred[-1] if isinstance(pred[-1], str) else text
    if mode == "lenient":
        at = text.rfind(answer)
        if at >= 0 and _CONTINUES.match(text, at + len(answer)):
            return False
        # the "= chain" that ends at the extracted answer on its line: "47 = 46" states 47 too
        before = text[text.rfind("\n", 0, max(at, 0)) + 1 : max(at, 0)].split("=")
        if at >= 0 and len(before) > 1 and not before[-1].strip():
            for side in before[:-1]:
                value = _NUMERIC_SUFFIX.search(side).group(0).strip()
                if re.search(r"[0-9]", value) and not same(gold, as_math(value)):
                    return False
    if _PERCENT.search(answer) and not _PERCENT.search(reference):
        return False
    if _RELATION.search(answer) and not _RELATION.search(reference):
        return False
    sides = answer.strip("$").split("=")
    if len(sides) > 1 and "=" not in reference:
        values = [side for side in sides if not _VARIABLE.fullmatch(side)]
        return bool(values) and all(same(gold, as_math(side.strip())) for side in values)
    return same(gold, pred)


def _serve() -> None:
    """The worker's loop: one JSON request ``[prediction, reference, mode]`` per line, "1" or "0" back."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):  # not on every OS
        pass
    import math_verify  # noqa: F401  (imported before "ready", so the first request is not charged for it)

    print("ready", flush=True)
    for line in sys.stdin:
        try:
            verdict = judge(*json.loads(line))
        except BaseException:  # noqa: BLE001 (a TimeoutException, a MemoryError, a SymPy error: all mean 0)
            verdict = False
        print(int(verdict), flush=True)


# ---------------------------------------------------------------- the parent's side


class MathWorker:
    """The worker process as seen from the parent: ``equal(prediction, reference, mode)``; thread-safe."""

    def __init__(self, hard_timeout_s: float = HARD_TIMEOUT_S):
        self.hard_timeout_s = hard_timeout_s
        self.lock = threading.Lock()
        self.proc, self.lines, self.pid = None, None, None
        self.restarts = 0  # how many comparisons ran out of time (each kills the worker)

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.lines, self.pid = queue.Queue(), os.getpid()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        try:
            ready = self.lines.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            ready = None
        if ready != "ready":
            self.stop()
            raise RuntimeError("the math-verify worker did not start; is math-verify installed?")

    @staticmethod
    def _read(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line.strip())
        lines.put(None)  # the worker exited

    def stop(self) -> None:
        if self.proc is not None and self.pid == os.getpid():
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def equal(self, prediction: str, reference: str, mode: str) -> bool:
        """The worker's ``judge``; False when it takes longer than ``hard_timeout_s`` (the worker restarts)."""
        with self.lock:
            if self.proc is None or self.pid != os.getpid() or self.proc.poll() is not None:
                self.proc = None  # a forked child never shares its parent's worker
                self._start()
            self.proc.stdin.write(json.dumps([prediction, reference, mode]) + "\n")
            self.proc.stdin.flush()
            try:
                answer = self.lines.get(timeout=self.hard_timeout_s)
            except queue.Empty:
                answer = None
                self.restarts += 1
            if answer is None:
                self.stop()
            return answer == "1"


WORKER = MathWorker()
atexit.register(WORKER.stop)

if __name__ == "__main__":
    _serve()
