"""The sandbox's seccomp filter: system calls an untrusted program has no business making fail with EPERM.

Built once with pyseccomp (ctypes over libseccomp), exported as a compiled BPF program and handed to
bubblewrap's ``--seccomp FD``, which installs it (with ``no_new_privs``) just before it starts the runner.
Everything else is allowed: this is a deny list on top of the namespaces and the uid drop, not the only
wall. Calls from a foreign architecture (32-bit ``int 0x80`` on x86-64) kill the process, libseccomp's
default for a filter that names only the native architecture.
"""

from __future__ import annotations

import errno
import os
from functools import cache

DENIED = (
    # network: the sandbox's network namespace has no interfaces; this makes the attempt fail loudly too
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    # reading or steering other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    # new namespaces, mounts and root changes (ways around the walls)
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsmount",
    "open_tree",
    "move_mount",
    # the kernel's large attack surfaces
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "personality",
)
"""System calls answered with EPERM (those unknown to this kernel's libseccomp are skipped)."""

_CLONE_NAMESPACES = (0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00020000)
"""clone() flags that create namespaces: CLONE_NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWNS."""


@cache
def seccomp_program() -> tuple[bytes | None, str]:
    """The compiled filter as BPF bytes, and ``""``; or ``(None, reason)`` where libseccomp is missing."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError, AttributeError) as exc:  # OSError/AttributeError: no libseccomp.so
        return None, f"seccomp filter unavailable: {exc}"
    try:
        flt = sc.SyscallFilter(sc.ALLOW)
        for name in DENIED:
            try:
                flt.add_rule(sc.ERRNO(errno.EPERM), name)
            except (OSError, ValueError, RuntimeError):
                pass  # a system call this kernel or libseccomp does not know
        # clone3 passes its flags in a struct the filter cannot read: ENOSYS makes libc fall back to clone
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for flag in _CLONE_NAMESPACES:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        read, write = os.pipe()
        try:
            with os.fdopen(write, "wb", closefd=True) as sink:
                flt.export_bpf(sink)
            with os.fdopen(read, "rb", closefd=False) as source:
                program = source.read()
        finally:
            os.close(read)
    except (OSError, ValueError, RuntimeError) as exc:
        return None, f"seccomp filter could not be built: {exc}"
    return program, ""


def seccomp_fd(program: bytes) -> int:
    """A readable pipe holding ``program`` (for ``bwrap --seccomp FD``); the caller closes it."""
    read, write = os.pipe()
    try:
        os.write(write, program)  # a few hundred bytes: fits the pipe buffer, never blocks
    finally:
        os.close(write)
    return read
