"""The book's table of contents lists every course notebook, each chapter links the next, the README keeps the markers
the book includes, and a chapter whose cell raises fails the build (book/_config.yml)."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOC = ROOT / "book" / "_toc.yml"


def toc_files() -> list[str]:
    """Every ``file:`` entry of book/_toc.yml that is not commented out."""
    return re.findall(r"^\s*- file:\s*(\S+)\s*$", TOC.read_text(), re.M)


def test_every_notebook_is_a_chapter():
    notebooks = {f"notebooks/{path.stem}" for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    listed = set(toc_files())
    missing = sorted(notebooks - listed)
    assert not missing, f"notebooks missing from book/_toc.yml (add each to its part): {missing}"


def test_every_toc_entry_exists():
    for entry in toc_files():
        path = ROOT / "book" / entry
        if entry.startswith("notebooks/"):
            path = ROOT / f"{entry}.ipynb"
        else:
            path = path.with_suffix(".md")
        assert path.exists(), f"book/_toc.yml lists {entry}, which does not exist"


def test_chapters_are_listed_in_course_order():
    chapters = [entry for entry in toc_files() if entry.startswith("notebooks/")]
    assert chapters == sorted(chapters), "chapters in book/_toc.yml are out of order"


def test_every_chapter_ends_with_a_link_to_the_next():
    """A reader who finishes a chapter is sent on: its last cell links the next chapter's notebook."""
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for chapter, following in zip(chapters, chapters[1:]):
        last = nbformat.read(chapter, as_version=4).cells[-1]
        assert f"]({following.name})" in last.source, f"{chapter.name}'s last cell does not link {following.name}"


def test_readme_keeps_the_markers_the_book_includes():
    readme = (ROOT / "README.md").read_text()
    pages = " ".join(page.read_text() for page in (ROOT / "book").glob("*.md"))
    included = set(re.findall(r"<!-- (book:[\w-]+):start -->", pages))
    assert included, "the book includes nothing from the README"
    for name in included:
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        assert readme.count(start) == 1 and readme.count(end) == 1, f"README.md needs one {start} and one {end}"
        assert readme.index(start) < readme.index(end)


@pytest.mark.slow
def test_a_cell_that_raises_fails_the_build(tmp_path):
    """The book's own configuration, on a one-chapter book whose only cell raises: the build must fail."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    if not jupyter_book.exists():
        pytest.skip("jupyter-book is not installed (the book extra)")
    shutil.copy(ROOT / "book" / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: broken\n")
    (tmp_path / "intro.md").write_text("# A book with a broken chapter\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('a broken chapter')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "broken.ipynb")
    result = subprocess.run([str(jupyter_book), "build", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0, "the book built although a chapter raised"
    assert "ExecutionError" in result.stdout + result.stderr, "the build failed, but not on the raising cell"
