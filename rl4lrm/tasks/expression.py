"""A safe evaluator for the integer arithmetic that Countdown answers are written in.

TinyZero checks Countdown equations with Python's ``eval`` behind a character whitelist; a model
under RL pressure will eventually emit whatever the checker lets through, so this module parses
instead. Grammar (recursive descent, usual precedence, left-associative)::

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


class _Parser:
    """Recursive descent over a token list; one method per grammar rule."""

    def __init__(self, tokens: list[tuple[str, int]], max_depth: int, max_value: int, integer_steps: bool):
        self.tokens, self.pos, self.depth = tokens, 0, 0
        self.max_depth, self.max_value, self.integer_steps = max_depth, max_value, integer_steps
        self.literals: list[int] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.pos][0]
            self.pos += 1
            value = self.apply(op, value, self.term())
        return value

    def term(self) -> Fraction:
        value = self.atom()
        while self.peek() in ("*", "/"):
            op = self.tokens[self.pos][0]
            self.pos += 1
            value = self.apply(op, value, self.atom())
        return value

    def atom(self) -> Fraction:
        if self.pos == len(self.tokens):
            raise ExpressionError("expression ends where a number or '(' was expected")
        token, where = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            self.depth += 1
            if self.depth > self.max_depth:  # also keeps the recursion far from Python's limit
                raise ExpressionError(f"parentheses nested deeper than {self.max_depth}")
            value = self.expr()
            if self.peek() != ")":
                raise ExpressionError(f"'(' at position {where} is never closed")
            self.pos += 1
            self.depth -= 1
            return value
        if token == "-":
            raise ExpressionError(f"unary minus at position {where} is not allowed")
        if token[0] not in DIGITS:
            raise ExpressionError(f"unexpected {token!r} at position {where}")
        # Compare lengths first: int() refuses strings over 4300 digits with its own error.
        if len(token) > len(str(self.max_value)) or int(token) > self.max_value:
            raise ExpressionError(f"number {token[:20]} at position {where} is over {self.max_value}")
        self.literals.append(int(token))
        return Fraction(int(token))

    def apply(self, op: str, a: Fraction, b: Fraction) -> Fraction:
        if op == "/" and b == 0:
            raise ExpressionError("division by zero")
        value = OPERATORS[op](a, b)
        if self.integer_steps and value.denominator != 1:
            raise ExpressionError(f"{a}/{b} is not an integer")
        if abs(value) > self.max_value:
            raise ExpressionError(f"intermediate value {a}{op}{b} is over {self.max_value}")
        return value


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
        max_depth: deepest allowed nesting of parentheses.
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
    parser = _Parser(_tokenize(expr), max_depth, max_value, integer_steps)
    value = parser.expr()
    if parser.pos < len(parser.tokens):
        token, where = parser.tokens[parser.pos]
        raise ExpressionError(f"unexpected {token!r} at position {where}")
    return value, parser.literals
