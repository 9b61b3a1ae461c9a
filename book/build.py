"""Builds the course book to book/_build/html: vendored scripts, chapters executed in quick mode, offline HTML.

Steps:
1. vendor MathJax 3, RequireJS and the ipywidgets embed manager from npm into ``book/_vendor/npm`` (once; pinned
   versions) and copy only the files the pages load into ``book/_vendor/static/vendor`` (Sphinx serves that folder
   as ``_static/vendor``), so no page loads a script, stylesheet or font from a remote host;
2. link ``book/notebooks`` to ``../notebooks`` (Jupyter Book reads only files under its root);
3. ``jupyter-book build book`` with ``RL4LRM_QUICK=1``: every chapter is executed (``execute_notebooks: force``), a
   cell that raises fails the build, and nbclient stores the widget state so the widgets render in the HTML;
4. fail if a built page still points a script or a stylesheet at a remote host.

``python book/build.py`` (or ``make book``); ``--execute off`` rebuilds the pages without running the notebooks
(for editing the text pages; the chapters then show the outputs committed in the notebooks, usually none).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

BOOK = Path(__file__).resolve().parent
ROOT = BOOK.parent
HTML = BOOK / "_build" / "html"
STAMP = HTML / ".built"
NPM_PREFIX = BOOK / "_vendor" / "npm"
STATIC = BOOK / "_vendor" / "static" / "vendor"

# html-manager 1.x is the embed manager of ipywidgets 8 (@jupyter-widgets/controls 5)
PACKAGES = {"mathjax": "3.2.2", "requirejs": "2.3.8", "@jupyter-widgets/html-manager": "1.0.15"}

# (package, glob under the package, destination folder under STATIC); nothing else is copied
FILES = [
    ("mathjax", "es5/tex-chtml-full.js", "mathjax"),
    ("mathjax", "es5/output/chtml/fonts/woff-v2/*.woff", "mathjax/output/chtml/fonts/woff-v2"),
    ("requirejs", "require.js", "requirejs"),
    ("@jupyter-widgets/html-manager", "dist/embed-amd.js", "html-manager"),
    # Font Awesome's fonts, which embed-amd.js loads next to itself (the icons of buttons)
    ("@jupyter-widgets/html-manager", "dist/*.woff2", "html-manager"),
    ("@jupyter-widgets/html-manager", "dist/*.woff", "html-manager"),
    ("@jupyter-widgets/html-manager", "dist/*.ttf", "html-manager"),
    ("@jupyter-widgets/html-manager", "dist/*.eot", "html-manager"),
    ("@jupyter-widgets/html-manager", "dist/*.svg", "html-manager"),
]

# what a cell timeout or a dead kernel leaves in jupyter-book's output (nbclient's exceptions)
TRANSIENT = ("CellTimeoutError", "DeadKernelError", "Timeout waiting for")

# a <script src=...> or <link ... href=...> (stylesheets, preloaded fonts) that leaves the machine
REMOTE = re.compile(r"<script[^>]*\ssrc=\"(?:https?:)?//[^\"]*\"|<link[^>]*\shref=\"(?:https?:)?//[^\"]*\"[^>]*>")


def installed_version(package: str) -> str | None:
    manifest = NPM_PREFIX / "node_modules" / package / "package.json"
    if not manifest.exists():
        return None
    match = re.search(r'"version"\s*:\s*"([^"]+)"', manifest.read_text())
    return match.group(1) if match else None


def vendor() -> None:
    """npm-installs the pinned packages (skipped when present) and copies the needed files into STATIC."""
    missing = [f"{name}@{version}" for name, version in PACKAGES.items() if installed_version(name) != version]
    if missing:
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("book/build.py: npm is needed once to vendor MathJax, RequireJS and the widget manager")
        print(f"vendoring {' '.join(missing)} with npm", flush=True)
        options = ["--prefix", str(NPM_PREFIX), "--no-audit", "--no-fund", "--ignore-scripts", "--no-save"]
        subprocess.run([npm, "install", *options, *[f"{n}@{v}" for n, v in PACKAGES.items()]], check=True)
    shutil.rmtree(STATIC, ignore_errors=True)
    for package, pattern, dest in FILES:
        sources = sorted((NPM_PREFIX / "node_modules" / package).glob(pattern))
        if not sources:
            sys.exit(f"book/build.py: {package} has no {pattern}")
        (STATIC / dest).mkdir(parents=True, exist_ok=True)
        for source in sources:
            shutil.copy2(source, STATIC / dest / source.name)


def link_notebooks() -> None:
    link = BOOK / "notebooks"
    if not link.is_symlink():
        if link.exists():
            sys.exit(f"book/build.py: {link} exists and is not the link to ../notebooks")
        link.symlink_to(Path("..") / "notebooks", target_is_directory=True)


def remote_references(html_dir: Path) -> list[str]:
    """``file: tag`` for every script or stylesheet link in the built pages that points at a remote host."""
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        for match in REMOTE.finditer(page.read_text(encoding="utf-8")):
            found.append(f"{page.relative_to(html_dir)}: {match.group(0)[:200]}")
    return found


def run_echoed(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Runs ``command``, echoing its output line by line as it comes; returns its exit status and its output."""
    lines = []
    with subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    return proc.returncode, "".join(lines)


def build(execute: str = "force") -> Path:
    start = time.perf_counter()
    vendor()
    link_notebooks()
    env = dict(os.environ, RL4LRM_QUICK="1", PYTHONUNBUFFERED="1")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    # --all: Sphinx re-reads (and so re-executes) only the pages whose source changed; a change to the library
    # changes no notebook, but it changes the outputs
    command = [str(jupyter_book), "build", str(BOOK), "--builder", "html", "--all"]
    if execute != "force":  # the same configuration with another execution mode
        config = BOOK / "_build" / f"_config.{execute}.yml"
        config.parent.mkdir(exist_ok=True)
        text = (BOOK / "_config.yml").read_text()
        config.write_text(re.sub(r"execute_notebooks: \w+", f"execute_notebooks: {execute}", text))
        command += ["--config", str(config)]
    STAMP.unlink(missing_ok=True)
    for attempt in (1, 2):
        returncode, output = run_echoed(command, env)
        if returncode == 0:
            break
        # A kernel that stops answering (seen now and then on a loaded machine: the cell's reply never arrives while
        # the kernel sits idle) ends as a cell timeout; build once more. A cell that raises fails at once.
        if attempt == 2 or not any(sign in output for sign in TRANSIENT):
            sys.exit(f"book/build.py: jupyter-book failed (exit status {returncode})")
        print("book/build.py: a notebook's kernel stopped answering; building once more", flush=True)
    remote = remote_references(HTML)
    if remote:
        sys.exit("book/build.py: pages load from remote hosts:\n" + "\n".join(remote))
    if execute == "force":  # tests/browser/test_book.py checks the book this stamp is newer than its sources
        STAMP.write_text(f"{time.time()}\n")
    print(f"book built in {time.perf_counter() - start:.0f} s: {HTML / 'index.html'}", flush=True)
    return HTML


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = "force: run every chapter in quick mode (default); off: render the outputs stored in the notebooks"
    parser.add_argument("--execute", choices=["force", "off"], default="force", help=what)
    build(parser.parse_args(argv).execute)


if __name__ == "__main__":
    main()
