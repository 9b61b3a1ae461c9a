"""Sweeps of training runs (methods × seeds × settings), one after another or fanned out as Ray tasks.

The unit of work is one ``Run``: a label, a seed and a ``TrainConfig``, which trains to its metrics history.
``run_sweep`` runs a list of them and returns one long DataFrame (the histories with ``method`` and ``seed``
columns, in the order given), whichever backend ran them:

- ``"sequential"``: in this process, one after another (the default; nothing to install);
- ``"ray"``: each run a Ray task (``@ray.remote``, ``num_cpus=1`` each by default). ``ray.init()`` is called only
  when Ray is not running yet, which starts a local cluster on this machine's cores; ``ray_address="auto"`` or
  ``"ray://head:10001"`` joins a real cluster instead, and the same code fans out over its nodes (each node needs
  rl4lrm installed, or pass ``ray.init(runtime_env=...)`` yourself before the sweep). Ray is an optional extra:
  ``pip install rl4lrm[ray]``.

Runs are seeded (``Trainer``), so the same seeds give the same histories on either backend on the CPU, apart from
the wall-time columns ``time/*``; ``tests/test_sweep.py`` checks it. ``benchmarks/sweep.py`` measures the speed-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm

from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import ray_session, set_torch_threads

BACKENDS = ("sequential", "ray")


@dataclass(frozen=True)
class Run:
    """One training run of a sweep."""

    label: str
    """The method's name in the results (the ``method`` column)."""
    seed: int
    """The run's seed (the ``seed`` column); ``config.seed`` is what the trainer uses, normally the same."""
    config: TrainConfig
    """Everything the trainer needs; validated when it was built, before any run starts."""


def train_run(run: Run, threads: int | None = None) -> pd.DataFrame:
    """Trains one run without a progress bar and returns its history with ``method`` and ``seed`` columns.

    Args:
        run: what to train.
        threads: torch CPU threads for the run (``set_torch_threads``); None leaves this process's setting.
            Ray workers pass 1: the lab's tiny models run fastest on one thread, and two runs on two cores must
            not spin-wait on each other's threads (two threads per run was several times slower here).
    """
    if threads is not None:
        set_torch_threads(threads)
    return Trainer(run.config, progress=False).train().assign(method=run.label, seed=run.seed)


def run_sweep(
    runs: Sequence[Run],
    backend: str = "sequential",
    *,
    ray_address: str | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    threads: int = 1,
    on_run_end: Callable[[pd.DataFrame], None] | None = None,
    progress: bool = True,
    desc: str = "runs",
) -> pd.DataFrame:
    """Trains every run on ``backend`` and returns their histories concatenated in the order of ``runs``.

    Args:
        runs: the runs (``Run(label, seed, config)``).
        backend: ``"sequential"`` (this process) or ``"ray"`` (one Ray task per run).
        ray_address: Ray only: the cluster to join when Ray is not initialised yet (``ray.init(address=...)``);
            None starts a local cluster. A Ray session already running (``ray.init`` called by you) is used as is.
        num_cpus: Ray only: CPUs reserved per run, so at most (cluster CPUs / ``num_cpus``) runs at once.
        num_gpus: Ray only: GPUs reserved per run (fractions share one); a run's ``device="auto"`` then finds it.
        threads: Ray only: torch threads in each worker (1: see ``train_run``). The sequential backend keeps this
            process's setting (``import rl4lrm`` sets 1), so both give the same numbers.
        on_run_end: called after each run with the histories finished so far (in the order of ``runs``), e.g. to
            redraw a live plot; with Ray, runs finish in any order.
        progress: a bar that advances as runs finish.
        desc: the bar's label.

    Returns:
        One row per (run, step): the trainer's history columns plus ``method`` and ``seed``.

    Raises:
        ValueError: an unknown backend, or no runs.
        ImportError: ``backend="ray"`` without Ray installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if not runs:
        raise ValueError("run_sweep needs at least one run")
    done: dict[int, pd.DataFrame] = {}

    def finished(i: int, history: pd.DataFrame) -> None:
        done[i] = history
        if on_run_end is not None:
            on_run_end(pd.concat([done[j] for j in sorted(done)], ignore_index=True))

    with tqdm(total=len(runs), desc=desc, disable=not progress) as bar:
        if backend == "sequential":
            for i, run in enumerate(runs):
                finished(i, train_run(run))
                bar.update(1)
        else:
            _run_on_ray(runs, ray_address, num_cpus, num_gpus, threads, finished, bar)
    return pd.concat([done[i] for i in range(len(runs))], ignore_index=True)


def _run_on_ray(runs, address, num_cpus, num_gpus, threads, finished, bar) -> None:
    """Submits one task per run and hands each result to ``finished`` as it arrives (``ray.wait``)."""
    ray = ray_session(address, "backend='ray'")
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(train_run)
    index = {task.remote(run, threads): i for i, run in enumerate(runs)}
    pending = list(index)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            finished(index[ready[0]], ray.get(ready[0]))
            bar.update(1)
    finally:  # a failed run or an interrupt: stop the others instead of leaving them to the cluster
        for ref in pending:
            ray.cancel(ref, force=True)
