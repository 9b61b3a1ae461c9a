"""The sandbox's settings (``SandboxConfig``) and the verdict of one call (``CallResult``).

A program's calls end in one of five statuses (``STATUSES``): ``ok`` (a plain JSON value came back),
``error`` (the call raised; the message is kept), ``timeout`` (the wall-clock budget ran out), ``killed``
(the sandbox died before answering: a resource limit, a signal, an exit, an output flood) and
``bad_output`` (the value cannot cross as plain JSON data, e.g. an object with its own ``__eq__``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl4lrm.validation import AT_LEAST_ONE, POSITIVE, Range, check_fields, named_keywords

STATUSES = ("ok", "error", "timeout", "killed", "bad_output")


@dataclass(frozen=True)
class CallResult:
    """What one call ``entry(*args)`` returned, as seen from outside the sandbox."""

    status: str
    """One of ``STATUSES``."""
    value: Any = None
    """The returned value as plain JSON data (lists, dicts with string keys, str, int, float, bool, None)
    when ``status == "ok"``, else None. Tuples come back as lists."""
    error: str = ""
    """Why the call did not succeed (exception type and message, the limit hit); ``""`` when ok."""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"CallResult.status must be one of {list(STATUSES)}, got {self.status!r}")


@named_keywords()
@dataclass
class SandboxConfig:
    """Limits and isolation of one sandbox (``rl4lrm.sandbox.run.run_calls``).

    The defaults suit short functions of the kind a coding task asks for: two seconds a call, 256 MiB,
    sixteen processes, no network, an 8 MiB scratch ``/tmp``.
    """

    timeout_s: float = 2.0
    """Wall-clock seconds allowed for each call; loading the program (its top level) gets the same
    budget plus ``startup_s``. When a call overruns, the whole sandbox is killed and that call and every
    later one get ``"timeout"``."""
    startup_s: float = 5.0
    """Extra wall-clock seconds for starting bubblewrap and the interpreter (about 0.03 s when idle;
    generous because a loaded 2-core machine can be slow to schedule a new process)."""
    memory_mb: int = 256
    """Address-space limit (``RLIMIT_AS``) of each process in MiB; where the cgroup v1 memory controller
    is writable, also the memory limit of the whole sandbox (all its processes and its ``/tmp``)."""
    cpu_s: int | None = None
    """CPU-seconds limit (``RLIMIT_CPU``, SIGKILL when exceeded); None: the calls' total wall budget
    rounded up, plus one."""
    max_processes: int = 16
    """``RLIMIT_NPROC`` of the sandbox's user (processes and threads); also the pids cgroup's
    ``pids.max`` where writable. Stops fork bombs."""
    max_open_files: int = 64
    """``RLIMIT_NOFILE``: open file descriptors per process."""
    file_size_mb: int = 8
    """``RLIMIT_FSIZE``: largest file a process may write, in MiB (writes past it fail with EFBIG)."""
    tmp_size_mb: int = 8
    """Size of the private writable ``/tmp`` (a tmpfs, gone with the sandbox), in MiB."""
    max_output_bytes: int = 1_000_000
    """Cap on the bytes one returned value may take as JSON, and on the program's printed output
    (stdout + stderr, counted, not kept); past it the value is ``"bad_output"`` or, for printing and for
    a flood on the result pipe, the sandbox is killed."""
    uid: int = 60001
    """Unprivileged uid (and gid) the program runs as when the caller is root. Concurrent sandboxes use
    ``uid, uid + 1, ...`` so that their process counts (``RLIMIT_NPROC`` is per uid) stay apart."""
    seccomp: bool = True
    """Install a seccomp filter (pyseccomp, when libseccomp loads) that makes network, tracing,
    namespace, mount, module, bpf and keyring system calls fail with EPERM."""
    cgroup: bool = True
    """Put the sandbox in fresh cgroup v1 ``memory`` and ``pids`` groups when ``/sys/fs/cgroup`` is
    writable (as root); skipped silently elsewhere (``rl4lrm.sandbox.cgroup.cgroup_available``)."""

    def __post_init__(self):
        check_fields(
            self,
            {
                "timeout_s": POSITIVE,
                "startup_s": POSITIVE,
                "memory_mb": Range(32),
                "cpu_s": AT_LEAST_ONE,
                "max_processes": AT_LEAST_ONE,
                "max_open_files": Range(16),
                "file_size_mb": AT_LEAST_ONE,
                "tmp_size_mb": AT_LEAST_ONE,
                "max_output_bytes": Range(1024),
                "uid": AT_LEAST_ONE,
            },
        )
