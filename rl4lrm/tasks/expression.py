"""A safe evaluator for the integer arithmetic that Countdown answers are written in.

TinyZero checks Countdown equations with Python's ``eval`` behind a character whitelist; a model
under RL pressure will eventually emit whatever the checker lets through, so this module parses
instead. Grammar (usual precedence, left-associative; evaluated without recursion, so any nesting limit is safe)::

    expr := term (("+" | "-") term)*
    term := atom (("*" | "/") atom)*
    atom := NUMBER | "(" expr ")"

Values are exact ``Fraction``s. Every limit (length, nesting, magnitude) fails with an
``ExpressionError`` that says what went wrong, so verifiers can turn it into a verdict.
"""

from __future__ import annotations

import operator
from fractions import Fraction

DIGITS = "0123456789"  # ASCII only: str.isdigit() would also accept digits like "٣"
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


class ExpressionError(ValueError):
    """The expression is malformed or breaks a limit; the message says which and where."""


def _tokenize(expr: str) -> list[tuple[str, int]]:
    """Splits ``expr`` into ``(token, position)`` pairs: numbers, operators and parentheses."""
    tokens, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "+-*/()":
            tokens.append((c, i))
            i += 1
        elif c in DIGITS:
            j = i
            while j < len(expr) and expr[j] in DIGITS:
                j += 1
            if c == "0" and j - i > 1:
                raise ExpressionError(f"number {expr[i:j]!r} at position {i} has a leading zero")
            tokens.append((expr[i:j], i))
            i = j
        else:
            raise ExpressionError(f"unexpected character {c!r} at position {i}")
    return tokens


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


class _Evaluator:
    """The grammar above, evaluated without recursion (shunting-yard: an operand stack and an operator
    stack), so that no ``max_depth`` can reach Python's recursion limit; errors are those of a
    left-to-right recursive descent, reported at the same tokens."""

    def __init__(self, max_depth: int, max_value: int, integer_steps: bool):
        self.max_depth, self.max_value, self.integer_steps = max_depth, max_value, integer_steps
        self.literals: list[int] = []
        self.values: list[Fraction] = []
        self.ops: list[tuple[str, int]] = []  # operators and open parentheses, with their positions

    def run(self, tokens: list[tuple[str, int]]) -> Fraction:
        expect_operand, depth = True, 0
        for token, where in tokens:
            if expect_operand and token == "(":
                depth += 1
                if depth > self.max_depth:
                    raise ExpressionError(f"parentheses nested deeper than {self.max_depth}")
                self.ops.append((token, where))
            elif expect_operand:
                self.operand(token, where)
                expect_operand = False
            elif token in _PRECEDENCE:  # left-associative: reduce everything that binds at least as tightly
                while self.ops and self.ops[-1][0] != "(" and _PRECEDENCE[self.ops[-1][0]] >= _PRECEDENCE[token]:
                    self.reduce()
                self.ops.append((token, where))
                expect_operand = True
            elif token == ")" and depth > 0:
                while self.ops[-1][0] != "(":
                    self.reduce()
                self.ops.pop()
                depth -= 1
            else:
                raise ExpressionError(f"unexpected {token!r} at position {where}")
        if expect_operand:
            raise ExpressionError("expression ends where a number or '(' was expected")
        while self.ops:
            if self.ops[-1][0] == "(":
                raise ExpressionError(f"'(' at position {self.ops[-1][1]} is never closed")
            self.reduce()
        return self.values[0]

    def operand(self, token: str, where: int) -> None:
        if token == "-":
            raise ExpressionError(f"unary minus at position {where} is not allowed")
        if token[0] not in DIGITS:
            raise ExpressionError(f"unexpected {token!r} at position {where}")
        # Compare lengths first: int() refuses strings over 4300 digits with its own error.
        if len(token) > len(str(self.max_value)) or int(token) > self.max_value:
            raise ExpressionError(f"number {token[:20]} at position {where} is over {self.max_value}")
        self.literals.append(int(token))
        self.values.append(Fraction(int(token)))

    def reduce(self) -> None:
        op = self.ops.pop()[0]
        b, a = self.values.pop(), self.values.pop()
        if op == "/" and b == 0:
            raise ExpressionError("division by zero")
        value = OPERATORS[op](a, b)
        if self.integer_steps and value.denominator != 1:
            raise ExpressionError(f"{a}/{b} is not an integer")
        if abs(value) > self.max_value:
            raise ExpressionError(f"intermediate value {a}{op}{b} is over {self.max_value}")
        self.values.append(value)


def evaluate(
    expr: str,
    *,
    max_chars: int = 64,
    max_depth: int = 8,
    max_value: int = 10**12,
    integer_steps: bool = True,
) -> tuple[Fraction, list[int]]:
    """Evaluates an arithmetic expression over non-negative integer literals, without ``eval``.

    Args:
        expr: e.g. ``"(9 - 3) * 4"``. Whitespace is allowed; unary minus and leading zeros not.
        max_chars: longer inputs are rejected before any parsing.
        max_depth: deepest allowed nesting of parentheses (any value: the evaluator does not recurse).
        max_value: largest allowed magnitude of a literal or any intermediate result.
        integer_steps: reject divisions whose result is not an integer (Countdown's rule).

    Returns:
        ``(value, literals)``: the exact value and the integer literals in order of appearance.

    Raises:
        ExpressionError: with a message naming the problem (and its position when it has one).
    """
    if len(expr) > max_chars:
        raise ExpressionError(f"too long: {len(expr)} characters, limit {max_chars}")
    if not expr.strip():
        raise ExpressionError("empty expression")
    evaluator = _Evaluator(max_depth, max_value, integer_steps)
    return evaluator.run(_tokenize(expr)), evaluator.literals
