"""What ``pytest --nbval-lax notebooks`` checks on top of nbval: no cell may write to stderr.

nbval runs each notebook in one kernel, one test per code cell (run it with ``RL4LRM_QUICK=1``; ``make test``
checks the same rules on the book's run of each chapter instead, ``tests/browser/test_book.py``). A cell
fails when it raises; a cell tagged ``nbval-check-output`` (the hand-made cases, whose printout is the same on
every run) also fails when its output differs from the one stored in the notebook (``python
notebooks/store_checked_outputs.py`` stores them again after a deliberate change). This file adds one more rule:
a cell fails when it writes to stderr. Warnings, library log messages and progress bars land there, shown pink in
JupyterLab, and a student should meet none that the course itself causes.
"""

from __future__ import annotations

import pytest
from nbval.plugin import IPyNbCell


def stderr_text(outputs) -> str:
    """Everything a cell's outputs (nbformat dicts, as nbval collects them) wrote to stderr."""
    return "".join(
        out.get("text", "") for out in outputs if out.get("output_type") == "stream" and out.get("name") == "stderr"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    if isinstance(item, IPyNbCell):
        noise = stderr_text(getattr(item, "test_outputs", []))
        if noise:
            item.raise_cell_error("Cell wrote to stderr (a warning, a log message or a progress bar)", noise[:2000])
    return result
