"""Real isolation for running untrusted programs (the code tasks' verifier, chapter 11).

``run_calls(source, entry, inputs)`` runs a Python program once in a fresh bubblewrap sandbox and calls
its function on each input; ``run_programs`` does it for many programs in parallel; ``sandbox_available``
says whether a sandbox can run here. ``config`` holds ``SandboxConfig`` and ``CallResult``; ``launch``
the bubblewrap command line (namespaces, read-only minimal filesystem, clean environment); ``runner`` the
stdlib-only program inside (rlimits, uid drop, the calls); ``seccomp`` the system-call filter;
``cgroup`` the per-sandbox memory and pids cgroups; ``run`` the caller's side (deadlines, caps, kill).

The walls, each tested in ``tests/test_sandbox.py``: an unprivileged uid (root launches, the runner drops
to ``SandboxConfig.uid`` before compiling the program); hard rlimits on address space, CPU seconds, file
size, open files and processes; pid, network, IPC and UTS namespaces, a new session; a filesystem of the
interpreter, its shared libraries and a size-capped private ``/tmp``, all else absent or read-only; an
empty environment; a seccomp deny list (network, ptrace, namespaces, mounts, bpf, keyrings, modules);
cgroup v1 memory and pids limits over the whole sandbox; a wall-clock deadline per call and byte caps on
what comes out, then SIGKILL of everything (group, namespace, cgroup). Values cross only as strict JSON.

What is left where the course machine's conditions do not hold. Without root (tested by becoming uid
60100) there is no uid to drop to: bubblewrap runs in a user namespace as the caller's uid, so
``RLIMIT_NPROC`` counts the caller's own processes too, and there are no cgroups (nor where cgroups are v2
or not writable): memory is then bounded per process only, by ``RLIMIT_AS``, so a program that forks can
take ``max_processes x memory_mb``. Without libseccomp the network namespace still leaves no route out,
but ptrace and namespace calls are no longer refused by a filter (the uid and the pid namespace still
keep them from reaching the caller). Not a wall: the CPU time and memory bandwidth a program takes from
its neighbours while it runs (no CPU cgroup quota).
"""

from rl4lrm.sandbox.config import STATUSES, CallResult, SandboxConfig
from rl4lrm.sandbox.run import run_calls, run_programs, sandbox_available

__all__ = ["STATUSES", "CallResult", "SandboxConfig", "run_calls", "run_programs", "sandbox_available"]
