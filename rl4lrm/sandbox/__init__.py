"""Real isolation for running untrusted programs (the code tasks' verifier, chapter 11).

``run_calls(source, entry, inputs)`` runs a Python program once in a fresh bubblewrap sandbox and calls
its function on each input; ``run_programs`` does it for many programs in parallel; ``sandbox_available``
says whether a sandbox can run here. ``config`` holds ``SandboxConfig`` and ``CallResult``; ``launch``
the bubblewrap command line (namespaces, read-only minimal filesystem, clean environment); ``runner`` the
stdlib-only program inside (rlimits, uid drop, the calls); ``seccomp`` the system-call filter;
``cgroup`` the per-sandbox memory and pids cgroups; ``run`` the caller's side (deadlines, caps, kill).
"""

from rl4lrm.sandbox.config import STATUSES, CallResult, SandboxConfig
from rl4lrm.sandbox.run import run_calls, run_programs, sandbox_available

__all__ = ["STATUSES", "CallResult", "SandboxConfig", "run_calls", "run_programs", "sandbox_available"]
