"""The program that runs inside the sandbox: limits, drop to an unprivileged uid, then the untrusted calls.

Bound read-only into the sandbox and started as ``python -I -S -B /sandbox/runner.py SETTINGS`` (isolated
mode: no site-packages, no ``PYTHON*`` variables, no script directory on ``sys.path``; SETTINGS is
``name=int,...``), so it uses the standard library only and never imports ``rl4lrm``. In order, before any
untrusted byte is compiled:

1. read the whole request ``{"source", "entry", "inputs"}`` from stdin (``marshal``: it comes from the
   caller, which checked that the inputs are plain JSON data; no ``json`` import, see ``_json``), then
   point stdin at ``/dev/null``;
2. set hard resource limits (address space, CPU seconds, file size, open files, processes, no core dumps);
3. drop every group and become ``uid``/``gid`` (when started as root; root ignores ``RLIMIT_NPROC`` and
   may undo the limits), and check that the drop stuck.

Then it runs the source once, calls ``entry(*args)`` for each input and writes one JSON line per call on
the result pipe (its file descriptor is in SETTINGS): first ``{"loaded": true}`` or ``{"load_error": msg}``,
then ``{"status": "ok", "value": v}``, ``{"status": "error", "error": msg}`` or
``{"status": "bad_output", "error": msg}``. The untrusted code shares this process, so it could write
lines of its own; that gains it nothing a plain ``return`` would not, because the lines only carry values
and the caller, outside, parses them as plain JSON and compares them with the expected values it keeps.
"""

import builtins
import marshal
import os
import resource
import sys

_write = os.write  # bound before the untrusted code can patch ``os``
_MAX_ERROR = 2000
_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", **{c: f"\\u{c:04x}" for c in range(0x20)}}


def _json(value) -> str:
    """``value`` as strict JSON text, built from the base types' own methods.

    No ``json`` import (it costs about 15 ms of the sandbox's start, for ``re`` and ``enum``), and no
    method of the value's class is called: an ``int`` subclass with its own ``__eq__`` or ``__repr__``
    crosses as the plain int it holds, a ``dict`` subclass with its own ``items`` as its real items.
    Anything else, NaN and infinities included, raises ``TypeError`` or ``ValueError``.
    """
    if value is None or value is True or value is False:
        return "null" if value is None else "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)  # ValueError past 4300 digits
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{float.__repr__(value)} is not JSON")
        return float.__repr__(value)
    if isinstance(value, str):
        return '"' + str.translate(value, _ESCAPES) + '"'
    if isinstance(value, (list, tuple)):
        items = list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value)
        return "[" + ",".join(_json(v) for v in items) + "]"
    if isinstance(value, dict):
        parts = []
        for k, v in dict.items(value):
            if not isinstance(k, str):
                raise TypeError(f"dict keys must be str, got {type(k).__name__}")
            parts.append(_json(k) + ":" + _json(v))
        return "{" + ",".join(parts) + "}"
    raise TypeError(f"{type(value).__name__} is not plain JSON data")


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, short; never raises (the message is the program's own code)."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # noqa: BLE001 - a hostile __str__
        text = f"{type(exc).__name__}: <unprintable message>"
    return text[:_MAX_ERROR]


def _send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view) :]


def _emit(fd: int, record: dict) -> None:
    _send(fd, (_json(record) + "\n").encode("utf-8", "backslashreplace"))  # messages may hold lone surrogates


def _limit(settings: dict) -> None:
    mib = 1 << 20
    for name, value in [
        ("RLIMIT_AS", settings["memory_mb"] * mib),
        ("RLIMIT_CPU", settings["cpu_s"]),
        ("RLIMIT_FSIZE", settings["file_size_mb"] * mib),
        ("RLIMIT_NOFILE", settings["max_open_files"]),
        ("RLIMIT_NPROC", settings["max_processes"]),
        ("RLIMIT_CORE", 0),
    ]:
        resource.setrlimit(getattr(resource, name), (value, value))


def _drop_privileges(uid: int) -> None:
    if os.getuid() != 0:
        return  # already unprivileged (a user namespace or a non-root caller): nothing to drop
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0 or os.getgid() == 0 or os.getgroups():
        raise SystemExit("sandbox runner: could not drop root privileges")


def _call(fn, args, fd: int, max_bytes: int) -> None:
    try:
        value = fn(*args)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the program's too
        _emit(fd, {"status": "error", "error": _describe(exc)})
        return
    try:
        line = '{"status":"ok","value":' + _json(value) + "}"
        data = (line + "\n").encode()  # UnicodeEncodeError for lone surrogates
    except BaseException as exc:  # noqa: BLE001 - not JSON data, too deep, a hostile items()
        _emit(fd, {"status": "bad_output", "error": f"value is not plain JSON data: {_describe(exc)}"})
        return
    if len(data) > max_bytes:
        _emit(fd, {"status": "bad_output", "error": f"value takes more than {max_bytes} bytes as JSON"})
        return
    _send(fd, data)


def main(argv: list[str]) -> None:
    settings = {k: int(v) for k, v in (item.split("=") for item in argv[1].split(","))}
    fd, max_bytes = settings["result_fd"], settings["max_output_bytes"]
    request = marshal.loads(sys.stdin.buffer.read())  # from the caller, trusted: plain data it checked
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _limit(settings)
    _drop_privileges(settings["uid"])
    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(compile(request["source"], "<program>", "exec"), namespace)
        fn = namespace.get(request["entry"])
        if not callable(fn):
            raise NameError(f"the program defines no function {request['entry']!r}")
    except BaseException as exc:  # noqa: BLE001
        _emit(fd, {"load_error": _describe(exc)})
        return
    _emit(fd, {"loaded": True})
    for args in request["inputs"]:
        _call(fn, args, fd, max_bytes)


if __name__ == "__main__":
    main(sys.argv)
