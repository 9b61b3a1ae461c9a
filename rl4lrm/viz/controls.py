"""What the panels are built from: slider factories, and the layout of a panel that runs an experiment.

A control must show, and send back, exactly the value it was given. A browser slider snaps its value to the grid
``min + k * step``: an ``IntSlider(value=15, min=10, step=10)`` displays 20 and trains 20 once touched, and a
``FloatLogSlider`` on a 0.25-wide exponent grid turns 3e-4 into 10^-3.5 = 3.2e-4. The factories widen the range to
include the value and put the value on the grid.

``RunPanel`` is the frame of the chapters' Run panels: named controls above a Run button, a status line and an
output area; a subclass chooses the controls and writes ``run()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import ipywidgets as W
from IPython.display import display

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


def seed_box(value: int = 0) -> W.BoundedIntText:
    """A seed entry box (any seed NumPy accepts)."""
    return W.BoundedIntText(value=value, min=0, max=2**31 - 1, description="seed", style=STYLE)


class RunPanel:
    """Named controls above a Run button with a status line, and an output area below them.

    A subclass calls ``self.layout(controls)`` in its ``__init__`` and defines ``run()``, which the button calls;
    ``settings()`` reads the controls by name, and ``run()`` wraps its work in ``with self.busy():`` so that the
    button is greyed out while it lasts (and enabled again if it fails).
    """

    def layout(self, controls: dict[str, W.Widget], left: int | None = None) -> None:
        """Builds the panel: ``controls`` in one row, or in two columns with the first ``left`` of them on the left."""
        self.controls = controls
        self.button = W.Button(description="Run", button_style="primary", icon="play")
        self.button.on_click(lambda _: self.run())
        self.status, self.out = W.HTML(), W.Output()
        values = list(controls.values())
        top = W.HBox(values) if left is None else W.HBox([W.VBox(values[:left]), W.VBox(values[left:])])
        self.widget = W.VBox([top, W.HBox([self.button, self.status]), self.out])

    def settings(self) -> dict:
        """The values of the controls, by name."""
        return {name: c.value for name, c in self.controls.items()}

    def show(self, *items) -> None:
        """Replaces what the output area shows by ``items`` (figures, tables, anything ``display`` takes)."""
        with self.out:
            self.out.clear_output(wait=True)
            display(*items)

    @contextmanager
    def busy(self, message: str | None = None) -> Iterator[None]:
        """The Run button greyed out for the duration, and ``message`` (in italics) on the status line first."""
        if message is not None:
            self.status.value = f"<i>{message}</i>"
        self.button.disabled = True
        try:
            yield
        finally:
            self.button.disabled = False

    def _ipython_display_(self):
        display(self.widget)
