"""Store the outputs that ``pytest --nbval-lax notebooks`` compares, and only those.

A code cell tagged ``nbval-check-output`` (cell metadata ``tags``; JupyterLab's property inspector edits them) holds
a hand-made case whose printout is the same on every run, so nbval checks that a fresh run prints exactly what the
notebook stores. Every other cell is committed without outputs (the notebooks stay small and readable). After a
deliberate change to what a tagged cell prints, run this script on the notebook: it executes the notebook in quick
mode (``RL4LRM_QUICK=1``), keeps the outputs of tagged cells, clears the rest, and leaves every source untouched.

    python notebooks/store_checked_outputs.py notebooks/00_the_lab.ipynb [more.ipynb ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

TAG = "nbval-check-output"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and TAG in cell.metadata.get("tags", [])


def store(path: Path, timeout_s: int = 600) -> int:
    """Run ``path`` in quick mode and keep only the tagged cells' outputs; returns how many cells are tagged."""
    nb = nbformat.read(path, as_version=4)
    executed = nbformat.read(path, as_version=4)
    os.environ["RL4LRM_QUICK"] = "1"
    NotebookClient(executed, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    n_checked = 0
    for cell, ran in zip(nb.cells, executed.cells, strict=True):
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
            n_checked += 1
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    return n_checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to run and store (NN_topic.ipynb)")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"{str(path)!r} is not a notebook file (expected an existing .ipynb)")
        print(f"{path}: {store(path)} checked cell(s) stored", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
