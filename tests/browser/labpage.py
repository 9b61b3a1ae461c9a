"""Drives one notebook in JupyterLab through Playwright: open, run all, find what failed, press the panels' buttons.

Everything reads JupyterLab's own state through ``window.jupyterapp`` (the server runs with
``--LabApp.expose_app_in_browser``): the notebook model's outputs, the kernel's status, and every IOPub message
the kernel sends. The last matters for the widgets' buttons: an exception in a button's callback is not an output
of any cell (JupyterLab shows it only in its log console), so the tests listen to the kernel directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

# A panel's button and what it is called: Run trains or evaluates, Sample (SampleExplorer) draws a group
BUTTONS = ("Run", "Sample")
POLL_S = 1.0
WIDGET_RENDER_S = 60  # how long a widget may show "Loading widget..." after its cell ran

# `panel(path)`: the NotebookPanel of that file. `__rl4lrm` collects IOPub errors and stderr, and counts busy states.
SETUP_JS = """
(path) => {
  const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);
  const state = window.__rl4lrm = {errors: [], stderr: [], busy: 0, runAll: null};
  const listen = (kernel) => {
    if (!kernel) return;
    kernel.iopubMessage.connect((_, msg) => {
      const type = msg.header.msg_type, c = msg.content;
      if (type === 'error') state.errors.push(`${c.ename}: ${c.evalue}`);
      else if (type === 'stream' && c.name === 'stderr') state.stderr.push(c.text);
      else if (type === 'status' && c.execution_state === 'busy') state.busy += 1;
    });
  };
  listen(panel.sessionContext.session.kernel);
  panel.sessionContext.kernelChanged.connect((_, change) => listen(change.newValue));
}
"""
PANEL_JS = "const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === path);"
READY_JS = f"""
(path) => {{
  const app = window.jupyterapp;
  if (!app) return false;
  {PANEL_JS}
  if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}}
"""
STATE_JS = f"""
(path) => {{
  {PANEL_JS}
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const running = [];
  panel.content.widgets.forEach((cell, i) => {{
    const prompt = cell.node.querySelector('.jp-InputArea-prompt');
    if (cell.model.type === 'code' && prompt && prompt.textContent.includes('*')) running.push(i);
  }});
  return {{status: kernel ? kernel.status : 'no kernel', running, busy: window.__rl4lrm.busy,
           runAll: window.__rl4lrm.runAll}};
}}
"""
# widget views and their failures live in the output areas; text/plain reprs of widgets are what a notebook shows
# when the widget manager is missing, and "object at 0x" when a panel's _ipython_display_ was not used
PROBLEMS_JS = f"""
(path) => {{
  {PANEL_JS}
  const found = [];
  const reprs = [/(^|\\n)\\s*[A-Z]\\w*\\((children|description|value|options|layout|outputs|min|max)=/,
                 /<[\\w.]+ object at 0x[0-9a-fA-F]+>/];
  panel.content.widgets.forEach((cell, i) => {{
    if (cell.model.type !== 'code') return;
    for (const out of cell.model.outputs.toJSON()) {{
      if (out.output_type === 'error') found.push(`cell ${{i}}: error output ${{out.ename}}: ${{out.evalue}}`);
    }}
    for (const node of cell.node.querySelectorAll('.jp-OutputArea-output')) {{
      const text = node.innerText || '';
      const mime = node.getAttribute('data-mime-type') || '';
      const error = '[data-mime-type="application/vnd.jupyter.error"]';
      if (mime === 'application/vnd.jupyter.error' || node.querySelector(error))
        found.push(`cell ${{i}}: error shown: ${{text.slice(0, 300)}}`);
      if (text.includes('Error displaying widget')) found.push(`cell ${{i}}: ${{text.slice(0, 300)}}`);
      if (text.includes('Loading widget...')) found.push(`cell ${{i}}: widget still "Loading widget..."`);
      const isText = mime === 'text/plain' || mime.endsWith('stdout') || node.querySelector('.jp-RenderedText');
      for (const re of reprs)
        if (isText && re.test(text)) found.push(`cell ${{i}}: widget shown as text: ${{text.slice(0, 200)}}`);
    }}
  }});
  for (const e of window.__rl4lrm.errors) found.push(`kernel error message: ${{e}}`);
  return [...new Set(found)];
}}
"""
# the buttons of the panels, in notebook order, with the index of their cell
BUTTONS_JS = f"""
(path) => {{
  {PANEL_JS}
  const names = {list(BUTTONS)!r};
  const out = [];
  panel.content.widgets.forEach((cell, i) => {{
    for (const b of cell.node.querySelectorAll('button.jupyter-button'))
      if (names.includes(b.textContent.trim())) out.push({{cell: i, name: b.textContent.trim()}});
  }});
  return out;
}}
"""
# marks everything drawn in the button's panel now, so that "drawn again" can be told from "left as it was"
MARK_JS = """
([button]) => {
  const area = button.closest('.jp-OutputArea-output');
  const nodes = [...area.querySelectorAll('.widget-output .jp-OutputArea-output')];
  nodes.forEach(n => n.dataset.rl4lrmBefore = '1');
  return {srcs: [...area.querySelectorAll('img')].map(i => i.src), html: area.querySelector('.widget-output')
          ? [...area.querySelectorAll('.widget-output')].map(o => o.innerHTML).join('') : ''};
}
"""
AFTER_JS = """
([button]) => {
  const area = button.closest('.jp-OutputArea-output');
  const fresh = [...area.querySelectorAll('.widget-output .jp-OutputArea-output')].filter(n => !n.dataset.rl4lrmBefore);
  const imgs = [...area.querySelectorAll('img')];
  return {fresh: fresh.length, drawn: fresh.filter(n => n.querySelector('img, table, svg, canvas')).length,
          loading: imgs.filter(i => !i.complete).length, srcs: imgs.map(i => i.src), disabled: button.disabled,
          html: [...area.querySelectorAll('.widget-output')].map(o => o.innerHTML).join('')};
}
"""


class LabError(AssertionError):
    """The notebook did not run cleanly in the browser."""


@dataclass
class Click:
    """What pressing one panel button did."""

    cell: int
    name: str
    seconds: float
    redrawn: int  # new outputs with an image or table in the panel's Output areas
    images_changed: bool  # the images' data differ (the same seed redraws the same pixels)
    problems: list[str] = field(default_factory=list)


class NotebookPage:
    """One notebook open in JupyterLab in a Playwright ``page``."""

    def __init__(self, page, server, path: str):
        self.page, self.server, self.path = page, server, path

    def open(self, timeout_s: float = 180) -> None:
        """Opens the notebook and waits until its kernel is started and idle."""
        self.page.goto(f"{self.server.url}/lab/tree/{self.path}?reset&token={self.server.token}")
        self.page.wait_for_function(READY_JS, arg=self.path, timeout=timeout_s * 1000, polling=500)
        self.page.evaluate(SETUP_JS, self.path)

    def state(self) -> dict:
        return self.page.evaluate(STATE_JS, self.path)

    def run_all(self, timeout_s: float) -> float:
        """Runs every cell (JupyterLab's Run All) and waits until done; returns the seconds it took.

        Done means: the Run All command has returned, the kernel is idle and no prompt shows ``[*]``, twice in a
        row. JupyterLab stops at the first cell that raises, so an error ends the wait too.
        """
        start = time.monotonic()
        self.page.evaluate(
            """() => { window.jupyterapp.commands.execute('notebook:run-all-cells').then(
                 ok => window.__rl4lrm.runAll = ok ? 'ok' : 'stopped', e => window.__rl4lrm.runAll = String(e)); }"""
        )
        self._wait_idle(start, timeout_s, lambda s: s["runAll"] is not None, "Run All")
        return time.monotonic() - start

    def _wait_idle(self, start: float, timeout_s: float, started, what: str) -> None:
        quiet = 0
        while quiet < 2:
            if time.monotonic() - start > timeout_s:
                raise LabError(f"{self.path}: {what} not done after {timeout_s:.0f} s (state {self.state()})")
            s = self.state()
            if s["status"] in ("dead", "unknown", "no kernel"):
                raise LabError(f"{self.path}: the kernel is {s['status']} during {what}:\n{self.server.log_tail()}")
            quiet = quiet + 1 if started(s) and s["status"] == "idle" and not s["running"] else 0
            time.sleep(POLL_S)

    def problems(self, settle_s: float = WIDGET_RENDER_S) -> list[str]:
        """What went wrong: error outputs, kernel errors, widgets that failed to render or never rendered.

        Widgets still loading get up to ``settle_s`` to finish before they count as failures.
        """
        deadline = time.monotonic() + settle_s
        while True:
            found = self.page.evaluate(PROBLEMS_JS, self.path)
            if not any("Loading widget" in p for p in found) or time.monotonic() > deadline:
                return found
            time.sleep(POLL_S)

    def stderr(self) -> list[str]:
        return self.page.evaluate("() => window.__rl4lrm.stderr")

    def buttons(self) -> list[dict]:
        return self.page.evaluate(BUTTONS_JS, self.path)

    def click(self, k: int, timeout_s: float) -> Click:
        """Presses the ``k``-th panel button, waits until the kernel is idle again, and tells what changed."""
        info = self.buttons()[k]
        button = self.page.locator(".jp-NotebookPanel button.jupyter-button").filter(has_text=info["name"])
        # the k-th button of all BUTTONS in notebook order is the j-th button with its own name
        j = sum(1 for b in self.buttons()[:k] if b["name"] == info["name"])
        button = button.nth(j)
        button.scroll_into_view_if_needed()
        handle = button.element_handle()
        before = self.page.evaluate(MARK_JS, [handle])
        busy = self.state()["busy"]
        errors_before = len(self.page.evaluate("() => window.__rl4lrm.errors"))
        start = time.monotonic()
        button.click()
        self._wait_idle(start, timeout_s, lambda s: s["busy"] > busy, f"{info['name']} (cell {info['cell']})")
        # the kernel is idle; the browser may still be decoding the last image
        deadline = time.monotonic() + 30
        after = self.page.evaluate(AFTER_JS, [handle])
        while (after["loading"] or after["disabled"]) and time.monotonic() < deadline:
            time.sleep(0.5)
            after = self.page.evaluate(AFTER_JS, [handle])
        seconds = time.monotonic() - start
        errors = self.page.evaluate("() => window.__rl4lrm.errors")[errors_before:]
        problems = [f"kernel error message: {e}" for e in errors]
        if after["disabled"]:
            problems.append("the button is still disabled")
        if not after["drawn"]:
            problems.append("the panel drew no new plot or table")
        return Click(info["cell"], info["name"], seconds, after["drawn"], after["srcs"] != before["srcs"], problems)

    def screenshot(self, stem: Path, window: int = 6000) -> list[Path]:
        """The whole notebook, however long, as ``{stem}-1.png``, ``{stem}-2.png``, ...: pages ``window`` px tall.

        The browser window is made tall for the shots (the notebook scrolls inside JupyterLab's layout, so a
        "full page" screenshot would show one screen), the side bar is closed, and the notebook scrolled a page at
        a time.
        """
        size = self.page.viewport_size
        scroller = f"""{PANEL_JS} const outer = panel.content.node.querySelector('.jp-WindowedPanel-outer')
                       || panel.content.node;"""
        self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        self.page.set_viewport_size({"width": size["width"], "height": window})
        paths = []
        try:
            self.page.wait_for_timeout(500)
            # the notebook ends at its last cell (JupyterLab pads below it, to scroll past the end)
            total, visible = self.page.evaluate(
                f"""(path) => {{ {scroller} const last = panel.content.widgets.at(-1).node.getBoundingClientRect();
                    const bottom = last.bottom - outer.getBoundingClientRect().top + outer.scrollTop + 20;
                    return [Math.ceil(Math.min(outer.scrollHeight, bottom)), Math.floor(outer.clientHeight)]; }}""",
                self.path,
            )
            for k, top in enumerate(range(0, max(int(total), 1), max(int(visible), 1))):
                self.page.evaluate(f"([path, top]) => {{ {scroller} outer.scrollTop = top; }}", [self.path, top])
                self.page.wait_for_timeout(300)
                paths.append(stem.with_name(f"{stem.name}-{k + 1}.png"))
                self.page.screenshot(path=str(paths[-1]))
        finally:
            self.page.set_viewport_size(size)
        return paths

    def screenshot_cell(self, cell: int, path: Path, window: int = 3000) -> None:
        """One cell (a panel, after its button ran), in a window ``window`` px tall so tall panels fit."""
        size = self.page.viewport_size
        self.page.set_viewport_size({"width": size["width"], "height": window})
        try:
            self.page.evaluate(
                f"""([path, i]) => {{ {PANEL_JS} const node = panel.content.widgets[i].node;
                    node.dataset.rl4lrmCell = String(i); node.scrollIntoView({{block: 'start'}}); }}""",
                [self.path, cell],
            )
            self.page.wait_for_timeout(300)
            self.page.locator(f'[data-rl4lrm-cell="{cell}"]').screenshot(path=str(path))
        finally:
            self.page.set_viewport_size(size)

    def shutdown(self) -> None:
        """Shuts the notebook's kernel down (the fixture also shuts down whatever is left)."""
        self.page.evaluate(f"""async (path) => {{ {PANEL_JS} await panel.sessionContext.shutdown(); }}""", self.path)
