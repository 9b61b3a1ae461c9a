"""Running untrusted Python functions on inputs: one sandbox per program, verdicts per call.

``run_calls(source, entry, inputs)`` starts one sandbox (``rl4lrm.sandbox.launch``), sends it the source
and the inputs as JSON on stdin, and reads one JSON line per call from a result pipe, under a wall-clock
deadline per call. Only inputs go in; plain JSON values come out; the expected values never enter the
sandbox, so the comparison happens here, in the caller, on plain data. Whatever happens inside, the whole
sandbox is killed at the end (its process group, its pid namespace and, where there is one, every process
in its cgroup). ``run_programs`` runs many programs in parallel sandboxes, one thread per worker.
"""

from __future__ import annotations

import json
import marshal
import math
import os
import selectors
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from rl4lrm.sandbox.cgroup import SandboxCgroups, cgroup_available
from rl4lrm.sandbox.config import CallResult, SandboxConfig
from rl4lrm.sandbox.launch import bwrap_binary, bwrap_command
from rl4lrm.sandbox.seccomp import seccomp_fd, seccomp_program

_JOIN_CGROUPS = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"'
_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


def _take_uid(base: int) -> int:
    with _uid_lock:
        uid = base
        while uid in _uids_in_use:
            uid += 1
        _uids_in_use.add(uid)
        return uid


def _release_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


@cache
def sandbox_available() -> tuple[bool, str]:
    """``(True, "")`` when a sandbox starts and answers here, else ``(False, reason)`` (no Linux, no bwrap,
    namespaces refused). Cached: the check runs one trivial program (about 0.05 s)."""
    bwrap, reason = bwrap_binary()
    if bwrap is None:
        return False, reason
    try:
        result = _run(SandboxConfig(timeout_s=10.0), "def f(x):\n    return x + 1\n", "f", [[1]])
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return False, f"bwrap failed to start a sandbox: {exc}"
    if result != [CallResult("ok", 2)]:
        return False, f"the probe program did not answer: {result}"
    return True, ""


def run_calls(source: str, entry: str, inputs: list[list], config: SandboxConfig | None = None) -> list[CallResult]:
    """Runs ``source`` once in a fresh sandbox and calls ``entry(*args)`` for each ``args`` in ``inputs``.

    Args:
        source: Python source defining the function ``entry`` (untrusted).
        entry: the function's name.
        inputs: one list of positional arguments per call (plain JSON data).
        config: limits; ``SandboxConfig()`` by default.

    Returns:
        One ``CallResult`` per input, in order. A failure to load the program makes every call an
        ``"error"``; a timeout or a death of the sandbox gives the current call and every later one that
        status.

    Raises:
        RuntimeError: when no sandbox can run here (``sandbox_available()`` says why); programs are never
            run unsandboxed.
    """
    config = config or SandboxConfig()
    if not isinstance(source, str) or not isinstance(entry, str):
        raise TypeError(f"source and entry must be strings, got {type(source).__name__}, {type(entry).__name__}")
    try:  # plain JSON data only, as lists: what a program could also get from a file or stdin
        inputs = json.loads(json.dumps([list(args) for args in inputs], allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"inputs must be lists of plain JSON data: {exc}") from exc
    if not inputs:
        return []
    ok, reason = sandbox_available()
    if not ok:
        raise RuntimeError(f"no sandbox here: {reason}")
    return _run(config, source, entry, inputs)


def run_programs(
    programs: list[tuple[str, str, list[list]]], config: SandboxConfig | None = None, workers: int = 2
) -> list[list[CallResult]]:
    """``run_calls`` for each ``(source, entry, inputs)``, ``workers`` sandboxes at a time, order kept."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_calls(p[0], p[1], p[2], config), programs))


def _run(config: SandboxConfig, source: str, entry: str, inputs: list[list]) -> list[CallResult]:
    request = marshal.dumps({"source": source, "entry": entry, "inputs": inputs})
    budget = config.startup_s + config.timeout_s * (len(inputs) + 1)
    cpu_s = config.cpu_s or math.ceil(budget) + 1
    program, _ = seccomp_program() if config.seccomp else (None, "")
    uid, groups, proc, filter_fd = _take_uid(config.uid), None, None, None
    result_r, result_w = os.pipe()
    try:
        if config.cgroup and cgroup_available()[0]:
            groups = SandboxCgroups(config.memory_mb, config.max_processes)
        if program is not None:
            filter_fd = seccomp_fd(program)
        cmd = bwrap_command(config, uid=uid, result_fd=result_w, seccomp_fd=filter_fd, cpu_s=cpu_s)
        if groups is not None:
            cmd = [
                "/bin/sh",
                "-c",
                _JOIN_CGROUPS,
                "rl4lrm-sandbox",
                str(len(groups.procs_files)),
                *groups.procs_files,
                *cmd,
            ]
        passed = (result_w,) if filter_fd is None else (result_w, filter_fd)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=passed, start_new_session=True, env={},
        )  # fmt: skip
        os.close(result_w)
        result_w = None
        if filter_fd is not None:
            os.close(filter_fd)
            filter_fd = None
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the sandbox died at once; its verdict comes from the pipes below
        return _collect(proc, result_r, len(inputs), config, groups)
    finally:
        for fd in (result_r, result_w, filter_fd):
            if fd is not None:
                os.close(fd)
        if proc is not None:
            _kill(proc)
        if groups is not None:
            groups.close()
        _release_uid(uid)


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILLs the launcher's process group (bubblewrap; its init dies with it and takes the pid namespace)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _parse(line: bytes) -> dict | None:
    """A result line as a dict of plain data, or None when it is not one the runner writes."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    if record.keys() == {"loaded"} or (record.keys() == {"load_error"} and isinstance(record["load_error"], str)):
        return record
    status = record.get("status")
    if status == "ok" and record.keys() == {"status", "value"}:
        return record
    if status in ("error", "bad_output") and record.keys() == {"status", "error"} and isinstance(record["error"], str):
        return record
    return None


def _collect(proc, result_r: int, n: int, config: SandboxConfig, groups) -> list[CallResult]:
    """Reads the verdicts under the deadlines; fills the calls left when the sandbox stops answering."""
    results: list[CallResult] = []
    selector = selectors.DefaultSelector()
    selector.register(result_r, selectors.EVENT_READ, "result")
    selector.register(proc.stdout, selectors.EVENT_READ, "output")
    pending, head, printed, loaded, cap = b"", b"", 0, False, config.max_output_bytes
    deadline = time.monotonic() + config.startup_s + config.timeout_s

    def fill(status: str, error: str) -> list[CallResult]:
        return results + [CallResult(status, None, error)] * (n - len(results))

    with selector:
        while len(results) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "a call" if loaded else "loading the program"
                return fill("timeout", f"{what} took longer than {config.timeout_s:g} s (wall clock)")
            for key, _ in selector.select(remaining):
                fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                data = os.read(fd, 1 << 16)
                if key.data == "output":
                    printed += len(data)
                    head += data[: max(0, 500 - len(head))]
                    if not data:
                        selector.unregister(key.fileobj)
                    elif printed > cap:
                        return fill("killed", f"output flood: printed more than {cap} bytes")
                    continue
                if not data:
                    return fill("killed", _death(proc, groups, head))
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    record = _parse(line)
                    if record is None:
                        return fill("bad_output", "result channel corrupted (not a line the runner writes)")
                    if "load_error" in record:
                        return fill("error", record["load_error"])
                    if "loaded" in record:
                        loaded = True
                    elif len(results) < n:
                        results.append(CallResult(record["status"], record.get("value"), record.get("error", "")))
                    deadline = time.monotonic() + config.timeout_s
                if len(pending) > cap + 4096:
                    return fill("bad_output", f"output flood on the result channel (a line over {cap} bytes)")
    return results


def _death(proc, groups, head: bytes) -> str:
    """Why the sandbox stopped answering: its exit status, its cgroup's OOM kills, the start of its output."""
    try:
        code = proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return "the program closed its result channel"
    why = f"exit status {code}"
    if code and code > 128 and code - 128 in signal.Signals._value2member_map_:
        why = f"killed by {signal.Signals(code - 128).name}"
    if groups is not None and groups.oom_kills():
        why += "; the sandbox's memory limit (cgroup) was hit"
    printed = head.decode(errors="replace").strip()
    return f"the sandbox ended before answering ({why})" + (f"; it printed: {printed[:300]}" if printed else "")
