"""Headless Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Playwright's own browser download needs the internet, which CI machines here lack, so the tests drive the
distribution's Chromium instead. A missing binary is an error with the install command, never a skip: a browser
test that quietly does not run checks nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# RL4LRM_CHROMIUM points at another Chromium build (a local Chrome, Playwright's own download)
CHROMIUM = Path(os.environ.get("RL4LRM_CHROMIUM", "/usr/bin/chromium"))
# no sandbox: the tests run as root in containers, where Chromium's sandbox refuses to start; the rest keeps
# Chromium off the network (updates, sync, QUIC probes) and off a GPU the machine does not have
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING = (
    "Chromium not found at {path}: the browser tests need it. Install Debian's build with "
    "`apt-get install -y chromium` (`make test` does this when apt-get is available), "
    "or set RL4LRM_CHROMIUM to another Chromium binary."
)


def chromium_path() -> Path:
    """The Chromium binary, or a ``FileNotFoundError`` that says how to install it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which(CHROMIUM.name) if not os.environ.get("RL4LRM_CHROMIUM") else None
        if found is None:
            raise FileNotFoundError(MISSING.format(path=CHROMIUM))
        return Path(found)
    return CHROMIUM


def launch(playwright, **kwargs):
    """A headless Chromium ``Browser`` from a started ``sync_playwright()`` object."""
    return playwright.chromium.launch(executable_path=str(chromium_path()), args=ARGS, headless=True, **kwargs)
