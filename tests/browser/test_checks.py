"""The browser checks can fail: a notebook with a raising cell, a widget shown as text, a widget whose model is
missing, and a Run button whose callback raises, each reported; and a clear error when Chromium is missing."""

from __future__ import annotations

import json
from pathlib import Path

import chromium
import pytest
from labpage import NotebookPage

pytestmark = pytest.mark.browser

CELLS = [
    "import ipywidgets as W\nprint('fine')",
    # what a notebook shows when the widget manager is missing: the widget's text repr
    "print(repr(W.HBox([W.Button(description='x')])))",
    # a view of a widget model the kernel never made
    "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'f' * 32, 'version_major': 2,"
    " 'version_minor': 0}, 'text/plain': 'VBox()'}, raw=True)",
    # a panel whose Run button raises and draws nothing
    "run = W.Button(description='Run')\nrun.on_click(lambda _: 1 / 0)\ndisplay(W.VBox([run, W.Output()]))",
    "raise ValueError('boom')",
]


def broken_notebook(root: Path) -> str:
    cells = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src} for src in CELLS
    ]
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    name = "zz_browser_checks.ipynb"
    (root / name).write_text(json.dumps(nb))
    return name


def test_checks_report_errors_and_broken_widgets(page, lab_server, screenshots):
    nb = NotebookPage(page, lab_server, broken_notebook(lab_server.root))
    nb.open()
    nb.run_all(timeout_s=300)
    problems = "\n".join(nb.problems(settle_s=20))
    nb.screenshot(screenshots / "zz_browser_checks")
    assert "cell 4: error output ValueError: boom" in problems
    assert "kernel error message: ValueError: boom" in problems
    assert "cell 1: widget shown as text: HBox(children=(Button(" in problems
    assert "cell 2: Error displaying widget" in problems
    assert not any(line.startswith("cell 0") or line.startswith("cell 3") for line in problems.splitlines())

    assert nb.buttons() == [{"cell": 3, "name": "Run"}]
    click = nb.click(0, timeout_s=120)
    assert "kernel error message: ZeroDivisionError: division by zero" in click.problems
    assert "the panel drew no new plot or table" in click.problems


def test_missing_chromium_says_how_to_install(monkeypatch):
    monkeypatch.setenv("RL4LRM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(chromium, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(FileNotFoundError, match="apt-get install -y chromium"):
        chromium.chromium_path()
