"""The notebook run of ``make test`` (notebooks/conftest.py) fails on a cell that writes to stderr."""

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbmake.nb_run import NotebookRun

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("notebook_check", NOTEBOOKS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(tmp_path, *cells):
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    result = NotebookRun(path, 60).execute()
    assert result.error is None
    return result.nb


def test_stderr_outputs_finds_warnings_and_logging_but_not_stdout(check, tmp_path):
    nb = run(
        tmp_path,
        "print('fine')",
        "import warnings; warnings.warn('course noise', FutureWarning)",
        "import logging; logging.getLogger('lib').warning('Timeout during comparison')",
    )
    found = check.stderr_outputs(nb)
    assert [i for i, _ in found] == [1, 2]
    assert "course noise" in found[0][1] and "Timeout" in found[1][1]
    assert check.stderr_outputs(run(tmp_path, "print('fine')")) == []
