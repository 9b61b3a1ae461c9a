"""Per-sandbox cgroups (v1 ``memory`` and ``pids`` controllers): one memory and process cap for all its processes.

``RLIMIT_AS`` bounds each process; a program that forks eight children of 200 MiB each stays under it
and still takes 1.6 GiB. A fresh memory cgroup with ``memory.limit_in_bytes`` (and the swap-inclusive
``memory.memsw.limit_in_bytes`` where present) bounds their sum, the private ``/tmp`` (tmpfs pages are
charged to the writer) included; its OOM killer picks the largest process. ``pids.max`` caps the count
whatever the uid. The launcher's shell writes its own pid into each group's ``cgroup.procs`` and then
execs bubblewrap, so every sandboxed process starts inside.

Only where ``/sys/fs/cgroup/memory`` is a writable v1 hierarchy (root, as on the course machine);
elsewhere (cgroup v2 without delegation, containers, non-root) the per-process rlimits are what is left.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from functools import cache
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "rl4lrm-sandbox"
_counter = itertools.count()


@cache
def cgroup_available() -> tuple[bool, str]:
    """``(True, "")`` where this process can create v1 memory and pids cgroups, else ``(False, reason)``."""
    for controller, knob in [("memory", "memory.limit_in_bytes"), ("pids", "pids.max")]:
        base = ROOT / controller
        if not (base / "cgroup.procs").exists():
            return False, f"no cgroup v1 {controller} hierarchy at {base}"
        probe = base / PARENT / f"probe-{os.getpid()}"
        try:
            probe.mkdir(parents=True, exist_ok=True)
            ok = (probe / knob).exists()
            probe.rmdir()
        except OSError as exc:
            return False, f"cannot create a {controller} cgroup: {exc}"
        if not ok:
            return False, f"{controller} cgroups here have no {knob}"
        _sweep(base / PARENT)
    return True, ""


def _sweep(parent: Path) -> None:
    """Removes the empty groups that processes which have since died left behind (a crash, a SIGKILL)."""
    for group in parent.iterdir():
        owner = group.name.split("-")[0]
        if group.is_dir() and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                group.rmdir()
            except OSError:
                pass  # not empty yet


class SandboxCgroups:
    """The fresh ``memory`` and ``pids`` groups of one sandbox; ``close()`` kills what is left and removes them."""

    def __init__(self, memory_mb: int, max_processes: int):
        name = f"{os.getpid()}-{next(_counter)}"
        self.dirs = [ROOT / "memory" / PARENT / name, ROOT / "pids" / PARENT / name]
        for d in self.dirs:
            d.mkdir(parents=True)
        limit = str(memory_mb << 20)
        memory = self.dirs[0]
        (memory / "memory.limit_in_bytes").write_text(limit)
        if (memory / "memory.memsw.limit_in_bytes").exists():
            (memory / "memory.memsw.limit_in_bytes").write_text(limit)  # no escape into swap
        (self.dirs[1] / "pids.max").write_text(str(max_processes + 2))  # + bubblewrap's two processes

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the launcher joins before it execs bubblewrap."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_kills(self) -> int:
        """How many processes the group's OOM killer killed (``oom_kill`` in ``memory.oom_control``; 0 when
        the kernel does not report it)."""
        try:
            for line in (self.dirs[0] / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def close(self, wait_s: float = 2.0) -> None:
        """SIGKILLs every process still in the groups, waits for them to go, removes the groups."""
        deadline = time.monotonic() + wait_s
        for d in self.dirs:
            while d.exists():
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    d.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break  # left for the next run's sweep; never block the caller for long
                    time.sleep(0.002)
