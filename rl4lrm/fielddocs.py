"""The docstrings written under dataclass fields, read from the source (as CleanRL's tyro does).

Configs document each field with a string literal on the line below it; ``field_docs`` returns them so
that the command line's help and the tests read the same text the code shows.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import fields


def field_docs(cls: type) -> dict[str, str]:
    """``{field name: docstring}`` for the dataclass ``cls`` and its dataclass bases ('' where a field has none)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if "__dataclass_fields__" not in vars(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return {f.name: docs.get(f.name, "") for f in fields(cls)}


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring, on one line (for ``--help``)."""
    text = " ".join(doc.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]
