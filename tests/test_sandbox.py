"""rl4lrm.sandbox: calibration programs score right, and a corpus of hostile programs stays contained.

Each hostile program is run for real in a bubblewrap sandbox and the test asserts what the caller sees
(its status, its value) and, where it matters, what the host sees afterwards (files, processes).
"""

import errno
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rl4lrm.sandbox import (
    STATUSES,
    CallResult,
    SandboxConfig,
    cgroup,
    launch,
    run_calls,
    run_programs,
    sandbox_available,
)
from rl4lrm.sandbox import run as run_module
from rl4lrm.sandbox.cgroup import cgroup_available
from rl4lrm.sandbox.launch import RUNNER
from rl4lrm.sandbox.seccomp import seccomp_program

FAST = SandboxConfig(timeout_s=1.0)
FIND_RESULT_FD = "import os, sys\nFD = int(sys.argv[1].split('result_fd=')[1].split(',')[0])\n"
"""Program prelude finding the runner's result pipe: its settings are on its command line, in reach."""


def run1(source: str, config: SandboxConfig = FAST, entry: str = "f", args: list | None = None) -> CallResult:
    """The verdict of a one-call program ``f()``."""
    (result,) = run_calls(source, entry, [args or []], config)
    return result


def test_the_sandbox_runs_here():
    assert sandbox_available() == (True, "")
    assert seccomp_program()[1] == ""
    assert cgroup_available() == (True, "") or os.geteuid() != 0


# ---------------------------------------------------------------- calibration: honest programs score right


def test_values_come_back_in_order():
    src = "def add(a, b):\n    return a + b\n"
    assert run_calls(src, "add", [[1, 2], [3, 4], ["x", "y"], [[1], [2]]], FAST) == [
        CallResult("ok", 3),
        CallResult("ok", 7),
        CallResult("ok", "xy"),
        CallResult("ok", [1, 2]),
    ]


def test_plain_data_crosses_as_json():
    src = "def f():\n    return {'a': (1, 2.5), 'b': None, 'c': True, 'd': 'é'}\n"
    assert run1(src) == CallResult("ok", {"a": [1, 2.5], "b": None, "c": True, "d": "é"})


def test_only_plain_json_data_crosses():
    src = (
        "import collections\ndef f(k):\n    return [collections.Counter('aab'), collections.defaultdict(list),"
        " (1, (2,)), 'a\\n\"\\\\', -0.5, 10**20, True, None][k]\n"
    )
    results = run_calls(src, "f", [[k] for k in range(8)], FAST)
    assert [r.value for r in results] == [{"a": 2, "b": 1}, {}, [1, [2]], 'a\n"\\', -0.5, 10**20, True, None]
    assert [type(r.value) for r in results[:2]] == [dict, dict]
    bad = "def f(k):\n    return [float('nan'), {1: 2}, '\\ud800', {1, 2}, b'x', f][k]\n"
    assert [r.status for r in run_calls(bad, "f", [[k] for k in range(6)], FAST)] == ["bad_output"] * 6
    with pytest.raises(TypeError, match="plain JSON"):
        run_calls(src, "f", [[{1, 2}]], FAST)


def test_exceptions_are_per_input():
    src = "def inv(x):\n    return 1 / x\n"
    results = run_calls(src, "inv", [[2], [0], [4]], FAST)
    assert [r.status for r in results] == ["ok", "error", "ok"]
    assert results[1].error == "ZeroDivisionError: division by zero" and results[1].value is None
    assert [results[0].value, results[2].value] == [0.5, 0.25]


def test_state_persists_across_calls_of_one_program():
    src = "seen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)\n"
    assert [r.value for r in run_calls(src, "f", [[0], [0], [0]], FAST)] == [1, 2, 3]


def test_load_failures_are_errors_for_every_input():
    syntax = run_calls("def f(:\n", "f", [[1], [2]], FAST)
    assert [r.status for r in syntax] == ["error", "error"] and syntax[0].error.startswith("SyntaxError")
    missing = run_calls("x = 1\n", "f", [[1]], FAST)
    assert missing[0].status == "error" and "no function 'f'" in missing[0].error
    raising = run_calls("raise ValueError('at import')\ndef f():\n    return 1\n", "f", [[]], FAST)
    assert raising == [CallResult("error", None, "ValueError: at import")]


def test_sys_exit_is_an_error_of_that_call():
    src = "import sys\ndef f(x):\n    if x:\n        sys.exit(3)\n    return 0\n"
    assert [r.status for r in run_calls(src, "f", [[1], [0]], FAST)] == ["error", "ok"]


def test_the_standard_library_imports():
    src = "import collections, functools, heapq, itertools, json, math, re, fractions, decimal\ndef f():\n"
    src += "    return [math.comb(5, 2), str(fractions.Fraction(1, 3)), re.sub('a', 'b', 'aa')]\n"
    assert run1(src) == CallResult("ok", [10, "1/3", "bb"])


def test_run_programs_keeps_order():
    programs = [(f"def f(x):\n    return x * {k}\n", "f", [[1], [2]]) for k in range(5)]
    programs.append(("def f(x):\n    return 1 / 0\n", "f", [[1]]))
    results = run_programs(programs, FAST, workers=2)
    assert [[r.value for r in rs] for rs in results[:5]] == [[k, 2 * k] for k in range(5)]
    assert results[5][0].status == "error"
    assert run_calls("def f():\n    return 1\n", "f", [], FAST) == []


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="SandboxConfig.timeout_s"):
        SandboxConfig(timeout_s=0)
    with pytest.raises(ValueError, match="SandboxConfig.memory_mb"):
        SandboxConfig(memory_mb=1)
    with pytest.raises(ValueError, match="CallResult.status"):
        CallResult("fine")
    assert set(STATUSES) == {"ok", "error", "timeout", "killed", "bad_output"}


# ---------------------------------------------------------------- hostile programs: each one contained


LONER = SandboxConfig(timeout_s=5.0, uid=62_345)
"""Settings with a uid of their own, so that the process checks see no other test's sandboxes."""


def _sandbox_processes(uid: int = LONER.uid) -> list[int]:
    """Pids of host processes running as ``uid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]) == uid:
                pids.append(int(entry))
    return pids


def test_it_runs_as_an_unprivileged_uid_in_its_own_session():
    src = "import os\ndef f():\n    return [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()]\n"
    assert run1(src).value == [FAST.uid, FAST.uid, FAST.uid, []]
    src = "import os\ndef f():\n    return [os.getpid(), os.getppid(), os.getsid(0), os.getpgid(0)]\n"
    # pid 2 under bubblewrap's init, in the session and group that init leads (the caller's would read 0)
    assert run1(src).value == [2, 1, 1, 1]
    src = "import os\ndef f(k):\n    [os.setuid, os.setgid, os.seteuid][k](0)\n"
    assert [r.error for r in run_calls(src, "f", [[0], [1], [2]], FAST)] == [
        "PermissionError: [Errno 1] Operation not permitted"
    ] * 3


def test_fork_bomb_is_capped_by_nproc():
    src = (
        "import os\ndef f():\n    n = 0\n    try:\n        while True:\n            if os.fork() == 0:\n"
        "                import time; time.sleep(30); os._exit(0)\n            n += 1\n"
        "    except OSError as e:\n        return [n, e.errno]\n"
    )
    config = SandboxConfig(timeout_s=5.0, max_processes=8, uid=LONER.uid)
    result = run1(src, config)
    assert result.status == "ok" and result.value[0] < 8 and result.value[1] == 11  # EAGAIN
    assert _sandbox_processes() == []  # the sleeping children went with the sandbox


def test_memory_hog_hits_the_address_space_limit():
    src = "def f():\n    x = bytearray(1 << 30)\n    return len(x)\n"
    result = run1(src, SandboxConfig(timeout_s=2.0, memory_mb=128))
    assert result == CallResult("error", None, "MemoryError: ")


def test_forked_memory_hogs_hit_the_sandbox_cgroup():
    if not cgroup_available()[0]:
        pytest.skip(cgroup_available()[1])  # never on the course machine (root, cgroup v1)
    src = (
        "import os\ndef f():\n    kids = []\n    for _ in range(4):\n        pid = os.fork()\n"
        "        if pid == 0:\n            x = bytearray(100 << 20)\n            for i in range(0, len(x), 4096):\n"
        "                x[i] = 1\n            import time; time.sleep(1); os._exit(0)\n        kids.append(pid)\n"
        "    return [os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids]\n"
    )
    # each child stays under RLIMIT_AS (200 MiB), together they would take 400 MiB of a 200 MiB sandbox
    result = run1(src, SandboxConfig(timeout_s=10.0, memory_mb=200))
    assert result.status == "killed" or (result.status == "ok" and -signal.SIGKILL in result.value), result
    without = run1(src, SandboxConfig(timeout_s=10.0, memory_mb=200, cgroup=False))
    assert without == CallResult("ok", [0, 0, 0, 0])  # the rlimits alone let the 400 MiB through


def test_the_limits_are_hard():
    src = (
        "import resource\ndef f(name):\n    limit = getattr(resource, name)\n"
        "    soft, hard = resource.getrlimit(limit)\n"
        "    resource.setrlimit(limit, (hard + 1, hard + 1))\n"
    )
    names = ["RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC"]
    results = run_calls(src, "f", [[name] for name in names], FAST)
    assert [r.error for r in results] == ["ValueError: not allowed to raise maximum limit"] * len(names)
    files = "def f():\n    return [open('/dev/null') for _ in range(1000)]\n"
    assert run1(files, SandboxConfig(timeout_s=1.0, max_open_files=32)).error.startswith("OSError: [Errno 24]")


def test_disk_hog_hits_the_file_size_and_tmp_limits():
    big = "def f():\n    with open('/tmp/big', 'wb') as fh:\n        fh.write(b'x' * (64 << 20))\n"
    result = run1(big, SandboxConfig(timeout_s=2.0, file_size_mb=4))
    assert result.status == "error" and "File too large" in result.error
    many = (
        "def f():\n    for k in range(100):\n        with open(f'/tmp/f{k}', 'wb') as fh:\n"
        "            fh.write(b'x' * (3 << 20))\n"
    )
    result = run1(many, SandboxConfig(timeout_s=2.0, file_size_mb=4, tmp_size_mb=8))
    assert result.status == "error" and "No space left" in result.error
    root = "def f():\n    open('/evil', 'w')\n"
    assert run1(root).status == "error"


def test_secrets_of_the_caller_are_out_of_reach(tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    monkeypatch.setenv("RL4LRM_SECRET_TOKEN", "hunter2")
    src = (
        "import os\ndef f(path):\n    seen = dict(os.environ)\n    try:\n        seen['file'] = open(path).read()\n"
        "    except OSError as e:\n        seen['file'] = type(e).__name__\n"
        "    seen['exists'] = [p for p in ['/root', '/home', '/work', '/etc', '/proc', '/bin/sh', '/usr/bin'] "
        "if os.path.exists(p)]\n    return seen\n"
    )
    seen = run1(src, args=[str(secret)]).value
    assert "hunter2" not in str(seen) and "RL4LRM_SECRET_TOKEN" not in seen
    assert seen["file"] == "FileNotFoundError" and seen["exists"] == []
    assert "/work" not in str(run1("import sys\ndef f():\n    return sys.path\n").value)


def test_no_network():
    src = "import socket\ndef f():\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\n"
    result = run1(src)
    assert result.status == "error" and result.error.startswith("PermissionError")  # seccomp: EPERM


def test_the_namespace_alone_has_no_route_out():
    src = "import socket\ndef f():\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\n"
    assert run1(src, SandboxConfig(timeout_s=2.0, seccomp=False)).error.endswith("Network is unreachable")


def test_seccomp_denies_tracing_and_new_namespaces():
    src = (
        "import ctypes, os\ndef f():\n    libc = ctypes.CDLL(None, use_errno=True)\n    out = []\n"
        "    for call in (lambda: libc.ptrace(0, 0, 0, 0), lambda: libc.unshare(0x10000000)):\n"
        "        out.append([call(), ctypes.get_errno()])\n    return out\n"
    )  # PTRACE_TRACEME, unshare(CLONE_NEWUSER)
    assert run1(src) == CallResult("ok", [[-1, errno.EPERM], [-1, errno.EPERM]])
    assert run1(src, SandboxConfig(timeout_s=1.0, seccomp=False)).value[0] == [0, 0]  # allowed without the filter


def test_killing_the_parent_leaves_the_caller_alive():
    src = (
        "import os, signal\ndef f():\n    out = []\n    for target in (os.getppid(), 1, -1):\n        try:\n"
        "            os.kill(target, signal.SIGKILL)\n            out.append('sent')\n"
        "        except OSError as e:\n            out.append(e.errno)\n    return out\n"
    )
    # bubblewrap's init (the parent, pid 1 of the namespace) runs as root: EPERM; kill(-1) finds no one: ESRCH
    assert run1(src) == CallResult("ok", [errno.EPERM, errno.EPERM, errno.ESRCH])
    pg = run_calls("import os, signal\ndef f(x):\n    os.killpg(0, signal.SIGKILL)\n", "f", [[1], [2]], FAST)
    assert [r.status for r in pg] == ["killed", "killed"]
    assert os.getpid() > 0 and run1("def f():\n    return 1\n").value == 1  # we are still here


def test_the_program_cannot_rewrite_the_tests_or_the_runner():
    test_file, before = Path(__file__), Path(__file__).read_bytes()
    runner_before = RUNNER.read_bytes()
    src = (
        "def f(paths):\n    out = []\n    for p in paths:\n        try:\n            open(p, 'a').write('pass')\n"
        "            out.append('written')\n        except OSError as e:\n            out.append(type(e).__name__)\n"
        "    return out\n"
    )
    result = run1(src, args=[[str(test_file), "/sandbox/runner.py", "/opt/python/lib/python3.11/os.py"]])
    assert result.value[0] == "FileNotFoundError"  # the project is not mounted
    assert result.value[1:] == ["PermissionError", "PermissionError"]  # read-only, owned by root
    assert test_file.read_bytes() == before and RUNNER.read_bytes() == runner_before


def test_an_object_equal_to_everything_cannot_cross():
    src = "class Any:\n    def __eq__(self, other):\n        return True\ndef f():\n    return Any()\n"
    assert run1(src).status == "bad_output"
    sub = "class I(int):\n    def __eq__(self, other):\n        return True\n    __repr__ = lambda self: '8'\n"
    value = run1(sub + "def f():\n    return I(7)\n").value
    assert type(value) is int and value == 7 and value != 8  # only the plain int crosses, by int's own repr
    dsub = "class D(dict):\n    def items(self):\n        return [('forged', 1)]\ndef f():\n    return D(real=2)\n"
    assert run1(dsub).value == {"real": 2}


def test_patching_json_or_the_runner_does_not_forge_verdicts():
    src = (
        'import json, sys\njson.dumps = lambda *a, **k: \'{"status": "ok", "value": "forged"}\'\n'
        'json.JSONEncoder.encode = lambda self, o: \'{"status": "ok", "value": "forged"}\'\n'
        "def f(x):\n    return x + 1\n"
    )
    assert [r.status for r in run_calls(src, "f", [[1], [2]], FAST)] == ["ok", "ok"]
    fd = FIND_RESULT_FD
    garbage = run_calls(fd + "def f(x):\n    os.write(FD, b'not json\\n')\n    return x\n", "f", [[1], [2]], FAST)
    assert [r.status for r in garbage] == ["bad_output", "bad_output"]
    forged = fd + 'def f(x):\n    os.write(FD, b\'{"status": "ok", "value": "forged"}\\n\')\n    return x\n'
    # a forged line can only claim a value, as `return "forged"` would; the caller compares it outside
    assert run_calls(forged, "f", [[1], [2]], FAST) == [CallResult("ok", "forged"), CallResult("ok", 1)]


def test_sleeping_past_the_timeout_is_killed_on_time():
    start = time.monotonic()
    results = run_calls("import time\ndef f(x):\n    time.sleep(x)\n    return x\n", "f", [[0], [100], [0]], FAST)
    assert [r.status for r in results] == ["ok", "timeout", "timeout"]
    assert time.monotonic() - start < 3 * FAST.timeout_s


def test_an_infinite_loop_is_killed():
    start = time.monotonic()
    assert run1("def f():\n    while True:\n        pass\n").status == "timeout"
    assert time.monotonic() - start < 3 * FAST.timeout_s
    cpu = run1("def f():\n    while True:\n        pass\n", SandboxConfig(timeout_s=30.0, cpu_s=1))
    assert cpu.status == "killed" and "SIGKILL" in cpu.error  # RLIMIT_CPU, before the wall clock


def test_output_floods_are_bounded():
    start = time.monotonic()
    flood = run1("def f():\n    print('x' * (100 << 20))\n", SandboxConfig(timeout_s=5.0, memory_mb=512))
    assert flood.status == "killed" and "output flood" in flood.error
    big = run1("def f():\n    return 'x' * (50 << 20)\n", SandboxConfig(timeout_s=5.0, memory_mb=512))
    assert big.status == "bad_output"
    channel = FIND_RESULT_FD + "def f():\n    os.write(FD, b'x' * (8 << 20))\n"
    assert run1(channel, SandboxConfig(timeout_s=5.0)).status == "bad_output"
    assert time.monotonic() - start < 10


def test_ignoring_sigterm_does_not_help():
    src = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ndef f():\n    time.sleep(100)\n"
    start = time.monotonic()
    assert run1(src).status == "timeout" and time.monotonic() - start < 3 * FAST.timeout_s


def test_a_daemonized_grandchild_dies_with_the_sandbox():
    src = (
        "import os, time\ndef f():\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
        "            while True:\n                time.sleep(0.1)\n        os._exit(0)\n"
        "    os.wait()\n    return 'left'\n"
    )
    assert run1(src, LONER) == CallResult("ok", "left")
    assert _sandbox_processes() == []


def test_no_cgroup_is_left_behind():
    run_programs([("def f(x):\n    return x\n", "f", [[1]])] * 4, FAST, workers=2)
    for controller in ("memory", "pids"):
        parent = cgroup.ROOT / controller / cgroup.PARENT
        assert not parent.exists() or not [g for g in parent.iterdir() if g.name.startswith(f"{os.getpid()}-")]


def test_without_a_sandbox_nothing_runs(monkeypatch):
    monkeypatch.setattr(launch.platform, "system", lambda: "Darwin")
    assert launch.bwrap_binary.__wrapped__()[0] is None and "Linux" in launch.bwrap_binary.__wrapped__()[1]
    monkeypatch.setattr(run_module, "sandbox_available", lambda: (False, "no bwrap"))
    with pytest.raises(RuntimeError, match="no sandbox here: no bwrap"):
        run_calls("def f():\n    return 1\n", "f", [[]])


def test_odd_messages_and_wide_values_keep_their_place():
    src = (
        "def f(k):\n    if k == 0:\n        raise ValueError('\\ud800')\n    return 'é' * (600_000 if k == 1 else 3)\n"
    )
    results = run_calls(src, "f", [[0], [1], [2]], FAST)  # 600000 'é' is 1.2 MB as UTF-8, over the 1 MB cap
    assert [r.status for r in results] == ["error", "bad_output", "ok"] and results[2].value == "ééé"


def test_the_command_line_binds_only_what_the_interpreter_needs(monkeypatch):
    cmd = launch.bwrap_command(FAST, uid=FAST.uid, result_fd=9, seccomp_fd=None, cpu_s=5)
    binds = [cmd[i + 2] for i, word in enumerate(cmd) if word in ("--bind", "--ro-bind")]
    assert "--bind" not in cmd and binds[-2:] == [launch.PREFIX_INSIDE, launch.RUNNER_INSIDE]
    assert all(b.startswith(("/usr/lib", "/lib")) for b in binds[:-2])  # shared libraries only
    assert {"--unshare-net", "--unshare-pid", "--clearenv", "--new-session", "--die-with-parent"} <= set(cmd)
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL" and "--unshare-user" not in cmd
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000)  # a non-root caller: a user namespace, no drop
    cmd = launch.bwrap_command(FAST, uid=FAST.uid, result_fd=9, seccomp_fd=None, cpu_s=5)
    assert "--unshare-user" in cmd and "--cap-add" not in cmd and cmd[-1].endswith(",uid=0")


NON_ROOT = """
from rl4lrm.sandbox import run_calls
uid = run_calls("import os\\ndef f():\\n    return [os.getuid(), os.geteuid()]\\n", "f", [[]])[0]
net = run_calls("import socket\\ndef f():\\n    socket.socket()\\n", "f", [[]])[0]
print(uid.value, net.error)
"""


def test_a_non_root_caller_runs_in_a_user_namespace(tmp_path):
    # a private mount namespace where /root (mode 0700) shows only the interpreter, then an unprivileged uid
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        pytest.skip("needs root to become a non-root caller")  # never on the course machine
    import sys

    pyenv = Path(sys.base_prefix).parents[1]  # /root/.pyenv
    script = (
        f"mount --bind {pyenv} {tmp_path} && mount -t tmpfs -o mode=755 none /root && mkdir -p {pyenv} && "
        f"mount --bind {tmp_path} {pyenv} && exec setpriv --reuid 60100 --regid 60100 --clear-groups "
        f"{sys.executable} -B -c '{NON_ROOT}'"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    # the caller's uid, kept inside its user namespace; seccomp still refuses sockets
    assert done.stdout.strip() == "[60100, 60100] PermissionError: [Errno 1] Operation not permitted", done.stderr[
        -2000:
    ]
