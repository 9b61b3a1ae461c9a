"""Throughput and cost split of the code sandbox (``rl4lrm.sandbox``, chapter 11's verifier).

Throughput: ``--programs`` trivial one-line functions (``def f(x): return x * k + 1``), ``--inputs`` calls
each, through ``run_programs`` with 1 and 2 workers, ``--repeats`` times; programs/s and calls/s. Cost
split, the median of ``--samples`` runs each: starting the bare interpreter (``python -I -S -B -c pass``, no
isolation), bubblewrap plus that interpreter (the namespaces and mounts), a full one-call sandbox (plus the
runner, rlimits, uid drop, seccomp, cgroups, the request and the JSON answers, the kill), the same
without the cgroups or without seccomp, and the cost of one more call (a 10001-call program minus a
1-call one, over 10000).

    python benchmarks/sandbox.py [--programs 64] [--inputs 8] [--repeats 3]   (about 30 s on 2 cores)

Writes ``--out``: one row per measure (``measure, workers, repeat, value, unit``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from rl4lrm.sandbox import SandboxConfig, run_calls, run_programs, sandbox_available
from rl4lrm.sandbox.cgroup import cgroup_available
from rl4lrm.sandbox.launch import bwrap_command, interpreter
from rl4lrm.sandbox.seccomp import seccomp_program


def _median_ms(fn, samples: int) -> float:
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def cost_split(config: SandboxConfig, samples: int) -> dict[str, float]:
    """Milliseconds per stage (medians), see the module docstring."""
    binary, _ = interpreter()
    bare = [binary, "-I", "-S", "-B", "-c", "pass"]
    cmd = bwrap_command(config, uid=config.uid, result_fd=2, seccomp_fd=None, cpu_s=10)
    wrapped = cmd[: cmd.index("--") + 2] + bare[1:]  # bwrap ... -- /opt/python/bin/python3.x -I -S -B -c pass
    one, many = "def f(x):\n    return x + 1\n", [[k] for k in range(10_001)]
    split = {
        "interpreter start, no isolation (ms)": _median_ms(lambda: subprocess.run(bare, check=True), samples),
        "bwrap + interpreter start (ms)": _median_ms(lambda: subprocess.run(wrapped, check=True), samples),
    }
    for label, variant in [
        ("full sandbox, 1 call (ms)", config),
        ("full sandbox without the cgroups (ms)", dataclasses.replace(config, cgroup=False)),
        ("full sandbox without seccomp (ms)", dataclasses.replace(config, seccomp=False)),
    ]:
        split[label] = _median_ms(lambda v=variant: run_calls(one, "f", [[1]], v), samples)
    many_ms = _median_ms(lambda: run_calls(one, "f", many, config), max(3, samples // 8))
    split["one more call (ms)"] = (many_ms - split["full sandbox, 1 call (ms)"]) / (len(many) - 1)
    return split


def throughput(config: SandboxConfig, programs: int, inputs: int, workers: int) -> tuple[float, float]:
    """Programs/s and calls/s of ``run_programs`` on ``programs`` trivial programs of ``inputs`` calls."""
    batch = [(f"def f(x):\n    return x * {k} + 1\n", "f", [[i] for i in range(inputs)]) for k in range(programs)]
    t0 = time.perf_counter()
    results = run_programs(batch, config, workers=workers)
    wall = time.perf_counter() - t0
    assert all(r.status == "ok" and r.value == i * k + 1 for k, rs in enumerate(results) for i, r in enumerate(rs))
    return programs / wall, programs * inputs / wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=64)
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sandbox.csv"))
    args = parser.parse_args(argv)
    ok, reason = sandbox_available()
    if not ok:
        sys.exit(f"no sandbox here: {reason}")
    t0, config, rows = time.perf_counter(), SandboxConfig(), []
    for measure, value in cost_split(config, args.samples).items():
        rows.append({"measure": measure, "workers": 1, "repeat": 0, "value": value, "unit": "ms"})
    for repeat in range(args.repeats):
        for workers in args.workers:
            programs_s, calls_s = throughput(config, args.programs, args.inputs, workers)
            rows.append({"measure": "programs/s", "workers": workers, "repeat": repeat, "value": programs_s})
            rows.append({"measure": "calls/s", "workers": workers, "repeat": repeat, "value": calls_s})
            print(f"repeat {repeat} workers {workers}: {programs_s:.1f} programs/s, {calls_s:.0f} calls/s", flush=True)
    table = pd.DataFrame(rows).fillna({"unit": "per s"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    rates = table[table["unit"] == "per s"].groupby(["measure", "workers"])["value"]
    show = (rates.mean().round(1).astype(str) + " ± " + rates.std(ddof=1).fillna(0).round(1).astype(str)).unstack()
    print(f"\n{args.programs} programs x {args.inputs} calls, {args.repeats} repeats (mean ± std):")
    print(show.to_string())
    mean = rates.mean()
    print(f"2 workers / 1 worker: {mean['programs/s', 2] / mean['programs/s', 1]:.2f}x")
    print("\ncost split (median of", args.samples, "runs):")
    for row in rows[:6]:
        print(f"  {row['measure']:<42} {row['value']:8.3f}")
    print(
        f"\ndevice: cpu, {os.cpu_count()} cores ({platform.processor() or platform.machine()}); "
        f"python {platform.python_version()}; seccomp {'on' if seccomp_program()[0] else 'off'}; "
        f"cgroups {'on' if cgroup_available()[0] else 'off'}; wall {time.perf_counter() - t0:.0f} s; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
