"""Slider factories for the panels: a control must show, and send back, exactly the value it was given.

A browser slider snaps its value to the grid ``min + k * step``: an ``IntSlider(value=15, min=10, step=10)``
displays 20 and trains 20 once touched, and a ``FloatLogSlider`` on a 0.25-wide exponent grid turns 3e-4 into
10^-3.5 = 3.2e-4. These factories widen the range to include the value and put the value on the grid.
"""

from __future__ import annotations

import math

import ipywidgets as W

STYLE = {"description_width": "120px"}  # room for the panels' longest labels ("curriculum stage", ...)
WIDTH = "400px"


def int_slider(value: int, lo: int, hi: int, step: int = 1, **kw) -> W.IntSlider:
    """An ``IntSlider`` over ``[min(lo, value), max(hi, value)]`` whose grid contains ``value``.

    The step shrinks to ``gcd(step, value - lo)`` when ``value`` is off the grid (15 with ``lo=10, step=10``
    gets step 5), so the front end never rounds it.
    """
    lo, hi = min(lo, value), max(hi, value)
    step = math.gcd(step, value - lo) or step
    kw.setdefault("style", STYLE)
    kw.setdefault("layout", W.Layout(width=WIDTH))
    return W.IntSlider(value=value, min=lo, max=hi, step=step, **kw)


def log_slider(
    value: float, lo: float, hi: float, step: float = 0.25, readout_format: str = ".1e", **kw
) -> W.FloatLogSlider:
    """A base-10 ``FloatLogSlider`` from about ``lo`` to ``hi`` (widened to include ``value``) whose exponent grid
    passes through ``log10(value)``, so 3e-4 reads 3.0e-04 and not 3.2e-04.

    Args:
        value, lo, hi: the value and the range, as numbers (not exponents); all > 0.
        step: the exponent step (0.25: four stops per decade).
    """
    if min(value, lo, hi) <= 0:
        raise ValueError(f"a log slider needs positive numbers, got value={value}, lo={lo}, hi={hi}")
    e = math.log10(value)
    e_lo = e - step * math.ceil((e - math.log10(min(lo, value))) / step - 1e-9)  # on the grid through e
    e_hi = e + step * math.ceil((math.log10(max(hi, value)) - e) / step - 1e-9)
    kw.setdefault("style", STYLE)
    kw.setdefault("layout", W.Layout(width=WIDTH))
    return W.FloatLogSlider(value=value, base=10, min=e_lo, max=e_hi, step=step, readout_format=readout_format, **kw)
