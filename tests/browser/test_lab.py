"""Course notebooks in JupyterLab in headless Chromium, in quick mode: Run All, then each panel's button.

By default the chapters a new user opens first (00, 01, and 02 with two panels): JupyterLab's part (a button, its
callback in the live kernel, an Output drawn again) is the same machinery in every chapter, every panel's ``run()`` has
a unit test, and the book's build executes every chapter, whose widgets ``test_book.py`` renders in Chromium.
``RL4LRM_LAB=all`` runs every chapter here too (about a minute each on 2 cores), ``RL4LRM_LAB=05,14`` the ones named.

A notebook fails on an error output, an error message from its kernel (a button's callback raising lands only
there), a widget that shows "Error displaying widget", a widget's text repr instead of its control, a widget still
"Loading widget..." a minute after its cell ran, or a panel whose Run (Sample) button draws nothing new.
Screenshots go to ``build/screenshots/lab/``: the whole notebook after Run All, and each panel after its button.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from labpage import NotebookPage

REPO = Path(__file__).resolve().parents[2]
ALL_NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DEFAULT_CHAPTERS = ("00", "01", "02")
RUN_ALL_TIMEOUT_S = 600  # quick mode takes 10-60 s a notebook on a quiet 2-core CPU; CI shares its cores
CLICK_TIMEOUT_S = 300
# a panel object made in a cell and shown with display(...): each brings one Run (or Sample) button
PANEL = re.compile(r"=\s*[A-Z]\w*(Panel|Dashboard|Explorer)\(")

pytestmark = pytest.mark.browser


def chosen_notebooks(setting: str | None) -> list[str]:
    """The notebooks ``RL4LRM_LAB`` names: unset, the default chapters; ``all``; or chapter numbers like ``05,14``."""
    if setting is not None and setting.strip().lower() == "all":
        return ALL_NOTEBOOKS
    numbers = DEFAULT_CHAPTERS if setting is None else [n.strip() for n in setting.split(",") if n.strip()]
    by_number = {name[:2]: name for name in ALL_NOTEBOOKS}
    unknown = [n for n in numbers if n not in by_number]
    if unknown or not numbers:
        raise ValueError(f"RL4LRM_LAB={setting!r}: no chapter {unknown}; use 'all' or numbers from {sorted(by_number)}")
    return [by_number[n] for n in numbers]


NOTEBOOKS = chosen_notebooks(os.environ.get("RL4LRM_LAB"))


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


def test_lab_setting_names_chapters_or_fails_with_the_choices():
    assert [n[:2] for n in chosen_notebooks(None)] == list(DEFAULT_CHAPTERS)
    assert chosen_notebooks("ALL") == ALL_NOTEBOOKS
    assert [n[:2] for n in chosen_notebooks(" 14, 05")] == ["14", "05"]
    with pytest.raises(ValueError, match=r"no chapter \['99'\].*'00'"):
        chosen_notebooks("05,99")
    with pytest.raises(ValueError, match="use 'all'"):
        chosen_notebooks(",")
