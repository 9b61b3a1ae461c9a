"""Opens every page of the built book in Chromium and checks that it works offline.

Each page (the chapters and the text pages of ``book/_toc.yml``) is served from ``book/_build/html`` on localhost and
must: carry the banner saying that chapters show quick-mode outputs, load nothing from another host (every such
request is recorded and aborted), load every local file it asks for (no 404), raise no JavaScript error, render its
math with MathJax (``mjx-container``, no TeX error), show every image (``naturalWidth > 0``) and render the widgets
of the stored widget state (controls in the DOM, no "Error displaying widget"). A full-page screenshot of each goes
to ``build/screenshots/book/``.

The session fixture runs ``book/build.py`` (every chapter in quick mode, about 13 minutes on 2 cores) unless the built
book is newer than everything it is built from; without npm (needed once, to vendor the JavaScript) it fails
with the install command. Chromium is conftest's ``browser`` fixture (``chromium.py``).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
EXECUTED = BOOK / "_build" / "jupyter_execute" / "notebooks"  # the chapters as the build ran them
CHECKED = "nbval-check-output"  # the tag of a hand-made case whose printout is the same on every run
SCREENSHOTS = ROOT / "build" / "screenshots" / "book"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def toc_pages() -> list[str]:
    """The root and every ``file:`` of book/_toc.yml that is not commented out, as paths without a suffix."""
    text = (BOOK / "_toc.yml").read_text()
    root = re.search(r"^root:\s*(\S+)", text, re.M).group(1)
    return [root, *re.findall(r"^\s*- file:\s*(\S+)", text, re.M)]


def sources() -> list[Path]:
    """Everything the book is built from: a change to any of these makes the built book stale."""
    files = [ROOT / "README.md", *BOOK.glob("*.md"), *BOOK.glob("*.yml"), *BOOK.glob("assets/*"), BOOK / "build.py"]
    files += sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "rl4lrm").rglob("*.py"))
    return files


@pytest.fixture(scope="session")
def book_html() -> Path:
    stamp = HTML / ".built"  # book/build.py writes it after a build that succeeded
    newest = max(path.stat().st_mtime for path in sources())
    if not stamp.exists() or stamp.stat().st_mtime < newest:
        if shutil.which("npm") is None and not (BOOK / "_vendor" / "npm" / "node_modules").is_dir():
            pytest.fail(
                "building the book needs npm once, to vendor MathJax, RequireJS and the widget manager: "
                "install it (`apt-get install -y npm`) and run the tests again"
            )
        subprocess.run([sys.executable, str(BOOK / "build.py")], check=True, cwd=ROOT)
    return HTML


@pytest.fixture(scope="session")
def server(book_html):
    handler = functools.partial(QuietHandler, directory=str(book_html))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass


# what a rendered ipywidgets control looks like in the DOM (the embed manager replaces each view's <script>)
CONTROLS = ".widget-button, .widget-slider, .widget-dropdown, .widget-checkbox, .widget-toggle-buttons, .widget-hbox"


def block_remote(page) -> list[str]:
    """Aborts every request of ``page`` that leaves the machine; returns the list their URLs are appended to."""
    remote = []

    def route(route):
        url = urlparse(route.request.url)
        if url.scheme in ("file", "data", "blob", "about") or url.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return remote


# the embed manager renders each widget view (a <script> holding its model id) into a .widget-subarea next to it
ALL_VIEWS_RENDERED = """() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
    .every(view => { const area = view.parentElement.querySelector('.widget-subarea');
                     return area !== null && area.childElementCount > 0; })"""

WAIT_FOR_MATH = """async () => {
    if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return false;
    await MathJax.startup.promise;
    return true;
}"""

WAIT_FOR_IMAGES = """async () => {
    const pending = [...document.images].filter(img => !img.complete);
    await Promise.all(pending.map(img => new Promise(done => { img.onload = img.onerror = done; })));
    return [...document.images].filter(img => img.naturalWidth === 0).map(img => img.src.slice(0, 120));
}"""


BROKEN_FONTS = (
    "async () => { await document.fonts.ready; "
    "return [...document.fonts].filter(f => f.status === 'error').map(f => f.family); }"
)


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_renders_offline(page_path, browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    remote, missing, errors = block_remote(page), [], []
    page.on("response", lambda response: missing.append(response.url) if response.status >= 400 else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{server}/{page_path}.html", wait_until="load")
        banner = page.locator(".bd-header-announcement")
        assert banner.count() == 1 and "quick-mode outputs" in banner.inner_text(), "no quick-mode banner"
        has_math = page.locator("span.math, div.math").count() > 0
        has_widgets = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count() > 0
        if has_math:
            assert page.evaluate(WAIT_FOR_MATH), "MathJax did not start"
            assert page.locator("mjx-container").count() > 0, "the page has math but MathJax rendered none"
            assert page.locator("mjx-merror").count() == 0, "MathJax reports a TeX error"
        if has_widgets:  # every stored view rendered, and real controls among them
            page.wait_for_function(ALL_VIEWS_RENDERED, timeout=30_000)
            page.wait_for_selector(CONTROLS, state="attached", timeout=30_000)
        page.wait_for_load_state("networkidle")
        html = page.content()
        assert "Error displaying widget" not in html, "a widget failed to render"
        broken = page.evaluate(WAIT_FOR_IMAGES)
        assert not broken, f"images that did not render: {broken}"
        fonts = page.evaluate(BROKEN_FONTS)
        assert not fonts, f"fonts that failed to load: {fonts}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).name}.png"), full_page=True)
    finally:
        context.close()
    assert not remote, f"requests to remote hosts: {remote}"
    assert not missing, f"local files that failed to load: {missing}"
    assert not errors, f"JavaScript errors: {errors}"


def test_chapter_opens_from_a_file_url(browser, book_html):
    """Opened straight from disk (file://), a chapter still renders its math, with MathJax's fonts, and its widgets."""
    page = browser.new_page()
    remote = block_remote(page)
    try:
        page.goto((book_html / "notebooks" / "01_first_rlvr_run.html").as_uri(), wait_until="load")
        assert page.evaluate(WAIT_FOR_MATH) and page.locator("mjx-container").count() > 0
        page.wait_for_selector(CONTROLS, state="attached", timeout=30_000)
        assert not page.evaluate(BROKEN_FONTS)
    finally:
        page.close()
    assert not remote, f"requests to remote hosts: {remote}"


def printed(outputs: list[dict]) -> list[tuple[str, str]]:
    """What a cell printed, as (kind, text): streams joined however they were chunked, results as their text/plain."""
    out: list[tuple[str, str]] = []
    for o in outputs:
        if o["output_type"] == "stream":
            text = "".join(o["text"])
            if out and out[-1][0] == o["name"]:
                out[-1] = (o["name"], out[-1][1] + text)
            else:
                out.append((o["name"], text))
        elif o["output_type"] in ("execute_result", "display_data"):
            out.append(("result", "".join(o.get("data", {}).get("text/plain", ""))))
        else:
            out.append((o["output_type"], o.get("evalue", "")))
    return out


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
def test_chapter_ran_without_stderr_and_printed_its_stored_outputs(name, book_html):
    """The book's run of each chapter (quick mode) is its test run: a cell that raises fails the build; here no cell
    may write to stderr (warnings, log messages and progress bars a student should not meet), and each cell tagged
    ``nbval-check-output`` must print what the notebook stores (``notebooks/store_checked_outputs.py``)."""
    stored = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    ran = json.loads((EXECUTED / name).read_text())["cells"]
    assert len(ran) == len(stored), f"{name}: the book ran {len(ran)} cells, the notebook has {len(stored)}"
    problems = []
    for i, (cell, done) in enumerate(zip(stored, ran)):
        if cell["cell_type"] != "code":
            continue
        noise = "".join(text for kind, text in printed(done["outputs"]) if kind == "stderr")
        if noise:
            problems.append(f"cell {i} wrote to stderr:\n{noise[:2000]}")
        if CHECKED in cell.get("metadata", {}).get("tags", []) and printed(done["outputs"]) != printed(cell["outputs"]):
            problems.append(
                f"cell {i} printed\n{printed(done['outputs'])}\ninstead of its stored\n{printed(cell['outputs'])}"
            )
    assert not problems, f"{name}:\n" + "\n".join(problems)
