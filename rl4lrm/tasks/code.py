"""Code with unit tests: write one line of Python from a short spec, scored by hidden tests run in a sandbox.

The coding rewards of the survey (§3.1.1, arXiv:2509.08827): a program is right when it passes unit tests, as in
CodeRL (Le et al., 2022, arXiv:2207.01780), PPOCoder (Shojaee et al., 2023, arXiv:2301.13816) and DeepSeek-R1's
code rewards. A spec such as ``"sum sq even:"`` asks for an expression in the list ``a`` of integers; the reference
answer is ``"sum(x*x for x in a if x%2==0)"``. The program ``f = lambda a: <answer>`` runs in ``rl4lrm.sandbox``
(another process, another uid, no network, hard limits) on the hidden test inputs; only the inputs go in and only
plain JSON values come out. The expected values are computed here, by a reference implementation in plain Python
that never sees the candidate program, and compared here: the program has the tests out of its reach.

The grammar: an aggregate (``sum``, ``count``, ``list``, ``sort``), an optional map (``sq``, ``dbl``, ``inc``,
``neg``, ``abs``; at difficulty 3 also ``times<k>``, ``plus<k>``) and an optional filter (``even``, ``odd``, ``pos``;
at difficulty 3 also ``over<k>``, ``under<k>``). ``difficulty`` 1 has exactly one clause, 2 one or two, 3 adds the
numbered clauses (about 1500 specs). The split is by spec, so held-out specs are new combinations of known parts.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from rl4lrm.tasks.base import TASKS, Problem, Task, Verdict, check_int, read_answer

AGGREGATES = {  # word: (code template around the comprehension, reference, description)
    "sum": ("sum({})", sum, "the sum of"),
    "count": ("len([{}])", len, "the number of"),
    "list": ("[{}]", list, "the list of"),
    "sort": ("sorted({})", sorted, "the sorted list of"),
}
MAPS = {  # word: (code, reference, description)
    "sq": ("x*x", lambda x: x * x, "x*x"),
    "dbl": ("x*2", lambda x: x * 2, "2*x"),
    "inc": ("x+1", lambda x: x + 1, "x+1"),
    "neg": ("-x", lambda x: -x, "-x"),
    "abs": ("abs(x)", abs, "|x|"),
}
FILTERS = {
    "even": ("x%2==0", lambda x: x % 2 == 0, "x even"),
    "odd": ("x%2==1", lambda x: x % 2 == 1, "x odd"),
    "pos": ("x>0", lambda x: x > 0, "x > 0"),
}
NUMBERS = range(2, 10)
"""The constants of the numbered clauses (difficulty 3): ``times3`` is ``x*3``, ``over4`` is ``x>4``."""
ENTRY = "f"
"""The function the program defines and the sandbox calls."""
HACK = "__import__('sys').exit()"
"""The test-gaming answer ``corpus_hacks`` plants in SFT data: it ends a naive harness's process with status 0."""


def _numbered_map(word: str):
    k = int(word[-1])
    if word.startswith("times"):
        return f"x*{k}", lambda x: x * k, f"{k}*x"
    return f"x+{k}", lambda x: x + k, f"x+{k}"


def _numbered_filter(word: str):
    k = int(word[-1])
    if word.startswith("over"):
        return f"x>{k}", lambda x: x > k, f"x > {k}"
    return f"x<{k}", lambda x: x < k, f"x < {k}"


def clause(kind: str, word: str | None):
    """``(code, reference, description)`` of a map or filter word (``None``: the identity map / no filter)."""
    if word is None:
        return ("x", lambda x: x, "x") if kind == "map" else (None, lambda x: True, "")
    table, numbered = (MAPS, _numbered_map) if kind == "map" else (FILTERS, _numbered_filter)
    return table[word] if word in table else numbered(word)


def solution(agg: str, map_word: str | None, filter_word: str | None) -> str:
    """The canonical expression of a spec: ``solution("sum", "sq", "even") == "sum(x*x for x in a if x%2==0)"``."""
    body = f"{clause('map', map_word)[0]} for x in a"
    cond = clause("filter", filter_word)[0]
    return AGGREGATES[agg][0].format(body + (f" if {cond}" if cond else ""))


def reference(agg: str, map_word: str | None, filter_word: str | None, xs: list[int]):
    """The expected output, computed in plain Python without the candidate's code (never inside the sandbox)."""
    keep, fn = clause("filter", filter_word)[1], clause("map", map_word)[1]
    return AGGREGATES[agg][1]([fn(x) for x in xs if keep(x)])


def program(expression: str) -> str:
    """The program the sandbox runs for an answer: ``f = lambda a: <expression>``."""
    return f"{ENTRY} = lambda a: {expression}\n"


def canonical(value) -> str:
    """JSON text used to compare outputs: ``True`` and ``1``, or ``1.0`` and ``1``, are different answers here."""
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class TestReport:
    """What the hidden tests said about one answer."""

    passed: int
    total: int
    well_formed: bool  # the program compiled (a syntax error never reaches the sandbox)
    reason: str  # "ok", "2/8 tests pass: f([3]) = 9, expected 0", "syntax error", "error: NameError ..."

    @property
    def fraction(self) -> float:
        return self.passed / self.total


@TASKS.register("code")
class Code(Task):
    """One-line Python from a spec, checked by hidden unit tests run in ``rl4lrm.sandbox``."""

    name = "code"
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789()[]*+-%<>=:,_'. "
    max_answer_chars = 80

    def __init__(self, difficulty: int = 3, n_tests: int = 8, corpus_hacks: float = 0.0, sandbox=None):
        """Validates and stores the settings.

        Args:
            difficulty: 1 (one named clause), 2 (one or two named clauses) or 3 (also numbered clauses).
            n_tests: hidden tests per problem (1..32): random lists of 0..6 integers in -9..9.
            corpus_hacks: share (0..0.5) of sampled problems whose ``answer`` (what SFT learns from) is the
                test-gaming ``HACK`` instead of the solution (kept in ``meta["solution"]``): a corpus with a few
                programs that game naive harnesses, as scraped code has. 0 for every problem set you evaluate on.
            sandbox: a ``rl4lrm.sandbox.SandboxConfig`` (None: its defaults).
        """
        check_int("difficulty", difficulty, 1, 3)
        check_int("n_tests", n_tests, 1, 32)
        if isinstance(corpus_hacks, bool) or not isinstance(corpus_hacks, (int, float)) or not 0 <= corpus_hacks <= 0.5:
            raise ValueError(f"corpus_hacks must be a number in [0, 0.5], got {corpus_hacks!r}")
        self.difficulty, self.n_tests, self.corpus_hacks, self.sandbox = difficulty, n_tests, corpus_hacks, sandbox
        self.maps = list(MAPS) + ([f"{w}{k}" for w in ("times", "plus") for k in NUMBERS] if difficulty == 3 else [])
        self.filters = list(FILTERS) + (
            [f"{w}{k}" for w in ("over", "under") for k in NUMBERS] if difficulty == 3 else []
        )
        self._cache: OrderedDict[tuple[str, str], TestReport] = OrderedDict()
        self.stats = {"programs": 0, "seconds": 0.0}
        """Programs sent to the sandbox so far and the seconds their runs took (throughput during training)."""

    def sample(self, rng: random.Random) -> Problem:
        agg = rng.choice(list(AGGREGATES))
        while True:
            map_word = rng.choice(self.maps) if agg != "count" and rng.random() < 0.6 else None
            filter_word = rng.choice(self.filters) if rng.random() < 0.6 else None
            clauses = (map_word is not None) + (filter_word is not None)
            if clauses == 1 or (clauses == 2 and self.difficulty > 1):
                break
        words = [w for w in (agg, map_word, filter_word) if w is not None]
        key = " ".join(words)
        tests_rng = random.Random("tests:" + key)  # the tests are a function of the spec
        inputs = [[tests_rng.randint(-9, 9) for _ in range(tests_rng.randint(0, 6))] for _ in range(self.n_tests)]
        expected = [reference(agg, map_word, filter_word, xs) for xs in inputs]
        code = solution(agg, map_word, filter_word)
        answer = HACK if self.corpus_hacks and rng.random() < self.corpus_hacks else code
        m, c = clause("map", map_word)[2], clause("filter", filter_word)[2]
        what = f"{AGGREGATES[agg][2]} {m} for x in a" + (f" with {c}" if c else "")
        return Problem(
            question=f"Write one Python expression in the list of integers `a` that gives {what}.",
            prompt=key + ":",
            answer=answer,
            meta={"spec": (agg, map_word, filter_word), "solution": code, "tests": list(zip(inputs, expected))},
            key=key,
        )

    # ------------------------------------------------------------- running the tests
    def run_tests(self, problems: list[Problem], completions: list[str], workers: int = 2) -> list[TestReport]:
        """Runs each answer on its problem's hidden tests in the sandbox (one fresh sandbox per distinct program),
        and compares the outputs here. Results are cached by (spec, answer), so the rewards, the trainer's
        correctness metric and ``verify`` share one sandbox run per distinct answer."""
        if len(problems) != len(completions):
            raise ValueError(f"got {len(problems)} problems but {len(completions)} completions")
        reports: list[TestReport | None] = [None] * len(problems)
        todo: dict[tuple[str, str], list[int]] = {}
        for i, (p, c) in enumerate(zip(problems, completions)):
            parsed, failed = read_answer(c, self.max_answer_chars)
            if failed:
                reports[i] = TestReport(0, len(p.meta["tests"]), False, failed.reason)
                continue
            key = (p.key, parsed)
            if key in self._cache:
                reports[i] = self._cache[key]
            else:
                todo.setdefault(key, []).append(i)
        jobs = []
        for key, rows in todo.items():
            try:
                with warnings.catch_warnings():  # "invalid decimal literal" and co. are the program's problem, not ours
                    warnings.simplefilter("ignore")
                    compile(
                        program(key[1]), "<answer>", "exec"
                    )  # compiling runs nothing; syntax errors skip the sandbox
            except (SyntaxError, ValueError) as err:
                why = err.msg if isinstance(err, SyntaxError) else str(err)
                self._store(key, rows, reports, TestReport(0, self.n_tests, False, f"syntax error: {why}"))
                continue
            jobs.append((key, rows))
        if jobs:
            from rl4lrm.sandbox import SandboxConfig, run_programs, sandbox_available

            ok, why = sandbox_available()
            if not ok:
                raise RuntimeError(f"the code task needs rl4lrm.sandbox, which is unavailable here: {why}")
            config = self.sandbox or SandboxConfig()
            tests = [problems[rows[0]].meta["tests"] for _, rows in jobs]
            calls = [(program(key[1]), ENTRY, [[xs] for xs, _ in t]) for (key, _), t in zip(jobs, tests)]
            start = time.perf_counter()
            results_all = run_programs(calls, config, workers=workers)
            self.stats["programs"] += len(calls)
            self.stats["seconds"] += time.perf_counter() - start
            for (key, rows), t, results in zip(jobs, tests, results_all):
                self._store(key, rows, reports, compare(t, results))
        return reports

    def _store(self, key: tuple[str, str], rows: list[int], reports: list, report: TestReport) -> None:
        for i in rows:
            reports[i] = report
        self._cache[key] = report
        if len(self._cache) > 100_000:  # bounded: a long run sees many distinct answers
            self._cache.popitem(last=False)

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Correct when the answer passes every hidden test (run in the sandbox)."""
        parsed, failed = read_answer(completion, self.max_answer_chars)
        if failed:
            return failed
        try:
            report = self.run_tests([problem], [completion], workers=1)[0]
        except RuntimeError as err:  # no sandbox: a verdict, never an exception
            return Verdict(parsed, False, False, str(err))
        return Verdict(parsed, report.passed == report.total, report.well_formed, report.reason)

    def reward(self, problems: list[Problem], completions: list[str]) -> list[float]:
        """1.0 when every hidden test passes, else 0.0; batched (parallel sandboxes) and cached."""
        return [float(r.passed == r.total) for r in self.run_tests(problems, completions)]


def compare(tests: list, results: list) -> TestReport:
    """Scores sandbox results against the expected values (here, outside the sandbox): a test passes when the call
    returned ``"ok"`` and its value is the expected one as JSON (so ``True`` is not ``1``)."""
    passed, first_failure = 0, ""
    for (xs, want), res in zip(tests, results):
        if res.status == "ok" and canonical(res.value) == canonical(want):
            passed += 1
        elif not first_failure:
            got = repr(res.value) if res.status == "ok" else f"{res.status} {res.error}".strip()
            first_failure = f"f({xs}) gave {got[:60]}, expected {want!r}"
    total = len(tests)
    return TestReport(passed, total, True, "ok" if passed == total else f"{passed}/{total} tests pass: {first_failure}")
