"""The notebook run of ``make test`` (nbval plus notebooks/conftest.py) fails the cells it should, and only those."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def checked_cell(source: str, stored_stdout: str):
    """A cell tagged for nbval's output check, with the output a notebook would store for it."""
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["nbval-check-output"]}, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored_stdout)]
    return cell


@pytest.mark.slow
def test_cells_that_raise_write_to_stderr_or_change_a_checked_output_fail(tmp_path):
    cells = [
        nbformat.v4.new_code_cell("print('fine')"),
        nbformat.v4.new_code_cell("import warnings; warnings.warn('course noise', FutureWarning)"),
        nbformat.v4.new_code_cell("import logging; logging.getLogger('lib').warning('Timeout during comparison')"),
        nbformat.v4.new_code_cell("raise ValueError('broken cell')"),
        checked_cell("print(6 * 7)", "41\n"),
        checked_cell("print(6 * 7)", "42\n"),
        nbformat.v4.new_code_cell("x = 1  # unchecked cells may print anything\nprint(x)"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "nb.ipynb")
    shutil.copy(NOTEBOOKS / "conftest.py", tmp_path / "conftest.py")
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTHONWARNINGS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         f"--junitxml={report}", "--rootdir", str(tmp_path), str(tmp_path / "nb.ipynb")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    cases = {case.get("name"): case for case in ET.parse(report).iter("testcase")}
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert len(cases) == 7, done.stdout[-2000:]
    assert failed == {"Cell 1", "Cell 2", "Cell 3", "Cell 4"}, done.stdout[-3000:]
    failures = {name: cases[name].find("failure") for name in failed}
    messages = {name: (f.get("message") or "") + (f.text or "") for name, f in failures.items()}
    assert "stderr" in messages["Cell 1"] and "course noise" in messages["Cell 1"]
    assert "Timeout during comparison" in messages["Cell 2"]
    assert "broken cell" in messages["Cell 3"]
    assert "Cell outputs differ" in messages["Cell 4"]


def test_committed_notebooks_store_outputs_only_for_checked_cells():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            checked = "nbval-check-output" in cell.metadata.get("tags", [])
            assert bool(cell.outputs) == checked, f"{path.name} code cell {i}: stored outputs ≠ tag"
            assert not any(out.output_type == "error" for out in cell.outputs), f"{path.name} code cell {i}"


def test_exercise_checks_do_not_echo_their_verdict():
    """A checker prints ✓/✗ and returns a bool for ``assert``; a cell that ends in a bare call would also show
    ``Out: False`` under the message, so exercise cells end the call with ``;``."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            last = cell.source.rstrip().splitlines()[-1:] if cell.cell_type == "code" else []
            assert not (last and last[0].startswith("check_") and last[0].endswith(")")), f"{path.name} cell {i}"
