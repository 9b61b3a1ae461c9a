"""Field-by-field validation of config dataclasses, from their type annotations and per-field ranges.

Every config class calls ``check_fields(self, ranges)`` in its ``__post_init__``: each field's value must
match its annotation (``int`` refuses ``True`` and ``1.0``; ``float`` accepts ints but refuses NaN and
±inf; ``X | None`` also accepts None; ``tuple[int, ...]`` checks every element), then lie in its
``Range`` or among its allowed values. All the bad fields are reported in one ``ValueError`` that names
``Class.field``, what is allowed and the bad value, at construction, before any work. A keyword the class has no
field for fails too, through ``named_keywords``: its ``TypeError`` names the closest fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, wraps


@dataclass(frozen=True)
class Range:
    """An interval of allowed numbers; ``None`` leaves a side unbounded."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """Exclude ``low`` itself (``Range(0, low_open=True)`` is "> 0")."""
    high_open: bool = False
    """Exclude ``high`` itself."""

    def __contains__(self, value) -> bool:
        if value != value:  # NaN compares False with every bound
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
UNIT = Range(0, 1)


@cache
def _hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls)


def _matches(value, hint) -> bool:
    """Whether ``value`` has the annotated type (unknown generic forms are accepted)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arm) for arm in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if origin in (list, dict):
        return isinstance(value, origin)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arm) for arm in args)
    names = {type(None): "None", bool: "True or False", int: "an int", float: "a finite number", str: "a string"}
    if hint in names:
        return names[hint]
    if origin is tuple:
        return f"a tuple of {_describe(args[0])}" if args and args[-1] is Ellipsis else "a tuple"
    return f"a {getattr(origin or hint, '__name__', hint)}"


def _allowed(spec) -> str:
    if isinstance(spec, Range):
        return str(spec)
    return f"one of {spec.names() if hasattr(spec, 'names') else list(spec)}"


def check_fields(obj, ranges: dict[str, object] | None = None, label: str | None = None) -> None:
    """Checks every field of the dataclass instance ``obj`` against its annotation and its allowed values.

    Args:
        obj: a dataclass instance (called from its ``__post_init__``).
        ranges: per field, a ``Range`` or a container of allowed values (anything with ``in``; a registry
            lists its ``names()``). Not applied to None.
        label: how errors name the object (default: its class name).

    Raises:
        ValueError: listing every bad field as ``Label.field must be ..., got value``.
    """
    label = label or type(obj).__name__
    hints, ranges, problems = _hints(type(obj)), ranges or {}, []
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints.get(f.name)
        if hint is not None and not _matches(value, hint):
            problems.append(f"{label}.{f.name} must be {_describe(hint)}, got {value!r}")
        elif value is not None and f.name in ranges and value not in ranges[f.name]:
            problems.append(f"{label}.{f.name} must be {_allowed(ranges[f.name])}, got {value!r}")
    if problems:
        raise ValueError("; ".join(problems))


def from_mapping(cls: type, value, label: str):
    """``value`` as an instance of the dataclass ``cls``: an instance as is, or a dict of its fields.

    Raises:
        ValueError: for another type or an unknown key, naming ``label`` and the valid keys.
    """
    if isinstance(value, cls):
        return value
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    if not isinstance(value, dict):
        raise ValueError(f"{label}={value!r}: must be a {cls.__name__} or a dict of its fields {names}")
    unknown = sorted(set(value) - set(names), key=str)
    if unknown:
        raise ValueError(f"{label}: unknown keys {unknown}; {cls.__name__} has {names}")
    return cls(**value)


def named_keywords(where: Callable[[str], str] = lambda name: ""):
    """A class decorator for a config dataclass: a keyword it has no field for raises a ``TypeError`` that names the
    keyword, the closest field names and, through ``where(name)``, where that setting lives instead, rather than
    Python's bare "unexpected keyword argument". The signature (and so a notebook's completion) stays the dataclass's.
    """

    def decorate(cls):
        init, names = cls.__init__, [f.name for f in dataclasses.fields(cls) if f.init]

        @wraps(init)
        def __init__(self, *args, **kwargs):
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                raise TypeError("; ".join(_no_field(cls.__name__, k, names, where(k)) for k in unknown))
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        return cls

    return decorate


def _no_field(label: str, name: str, names: list[str], where: str) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    hint = where or (f"did you mean {' or '.join(close)}?" if close else f"its fields are {names}")
    return f"{label} has no field {name!r}: {hint}"
