"""The book's table of contents lists every course notebook, and the README keeps the markers the book includes."""

import re
from pathlib import Path

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


def test_readme_keeps_the_markers_the_book_includes():
    readme = (ROOT / "README.md").read_text()
    pages = " ".join(page.read_text() for page in (ROOT / "book").glob("*.md"))
    included = set(re.findall(r"<!-- (book:[\w-]+):start -->", pages))
    assert included, "the book includes nothing from the README"
    for name in included:
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        assert readme.count(start) == 1 and readme.count(end) == 1, f"README.md needs one {start} and one {end}"
        assert readme.index(start) < readme.index(end)
