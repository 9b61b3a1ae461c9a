"""Runs each course notebook as one test: every cell must run, and none may print to stderr.

``pytest notebooks`` collects every ``NN_*.ipynb`` here (``make test`` sets ``RL4LRM_QUICK=1``). A notebook fails
when a cell raises (as with nbmake, which executes it) and also when any cell writes to stderr: warnings, library
log messages and progress bars land there, shown pink in JupyterLab, and a student should meet none that the
course itself causes. With ``--nbmake`` nbmake collects the notebooks instead and this check is off.
"""

from __future__ import annotations

import os

import pytest
from nbmake.nb_run import NotebookRun

TIMEOUT_S = int(os.environ.get("RL4LRM_NOTEBOOK_TIMEOUT", "600"))  # seconds per cell


def stderr_outputs(nb) -> list[tuple[int, str]]:
    """``(cell index, text)`` of every stderr stream output of an executed notebook."""
    return [(i, "".join(out.get("text", "")))
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "stream" and out.get("name") == "stderr"]


class CourseNotebook(pytest.Item):
    def runtest(self):
        result = NotebookRun(self.path, TIMEOUT_S).execute()
        if result.error is not None:
            raise NotebookCellError(f"{result.error.summary}\n{result.error.trace}")
        noise = stderr_outputs(result.nb)
        if noise:
            shown = "\n".join(f"cell {i}: {text.strip()[:500]}" for i, text in noise)
            raise NotebookCellError(f"{len(noise)} cell(s) wrote to stderr (warnings or log messages):\n{shown}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, NotebookCellError):
            return f"{self.path.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"notebook {self.path.name}"


class NotebookCellError(Exception):
    """A cell raised, or wrote to stderr."""


class CourseNotebookFile(pytest.File):
    def collect(self):
        yield CourseNotebook.from_parent(self, name=self.path.name)


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".ipynb" and not parent.config.getoption("nbmake", default=False):
        return CourseNotebookFile.from_parent(parent, path=file_path)
    return None
