"""Every course notebook in JupyterLab in headless Chromium, in quick mode: Run All, then each panel's button.

A notebook fails on an error output, an error message from its kernel (a button's callback raising lands only
there), a widget that shows "Error displaying widget", a widget's text repr instead of its control, a widget still
"Loading widget..." a minute after its cell ran, or a panel whose Run (Sample) button draws nothing new.
Screenshots go to ``build/screenshots/lab/``: the whole notebook after Run All, and each panel after its button.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from labpage import NotebookPage

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUN_ALL_TIMEOUT_S = 600  # quick mode takes 10-60 s a notebook on a quiet 2-core CPU; CI shares its cores
CLICK_TIMEOUT_S = 300
# a panel object made in a cell and shown with display(...): each brings one Run (or Sample) button
PANEL = re.compile(r"=\s*[A-Z]\w*(Panel|Dashboard|Explorer)\(")

pytestmark = pytest.mark.browser


def expected_buttons(path: Path) -> int:
    nb = json.loads(path.read_text())
    return sum(len(PANEL.findall("".join(c["source"]))) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_lab(name, page, lab_server, screenshots):
    nb = NotebookPage(page, lab_server, name)
    stem = Path(name).stem
    start = time.monotonic()
    nb.open()
    seconds = nb.run_all(RUN_ALL_TIMEOUT_S)
    problems = nb.problems()
    nb.screenshot(screenshots / stem)
    report = [f"{name}: Run All {seconds:.0f} s"]
    assert not problems, f"{name} after Run All:\n" + "\n".join(problems)

    buttons = nb.buttons()
    want = expected_buttons(REPO / "notebooks" / name)
    assert len(buttons) >= want, f"{name}: {want} panels made, {len(buttons)} Run/Sample buttons rendered"
    failures = []
    for k in range(len(buttons)):
        click = nb.click(k, CLICK_TIMEOUT_S)
        nb.screenshot_cell(click.cell, screenshots / f"{stem}-cell{click.cell}-after-{click.name.lower()}.png")
        report.append(
            f"  {click.name} in cell {click.cell}: {click.seconds:.0f} s, {click.redrawn} output(s) redrawn, "
            f"images {'changed' if click.images_changed else 'identical (same seed)'}"
        )
        failures += [f"{click.name} in cell {click.cell}: {p}" for p in click.problems]
    failures += nb.problems(settle_s=30)
    nb.shutdown()
    report.append(f"  total {time.monotonic() - start:.0f} s")
    print("\n".join(report))
    assert not failures, f"{name} after pressing its buttons:\n" + "\n".join(failures)
