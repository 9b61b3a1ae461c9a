"""Asynchronous RL: a rollout producer runs beside the learner, at most ``staleness`` policy versions behind it.

In the synchronous loop (``Trainer.train``) the learner idles while the policy samples, and sampling idles
while the learner updates. AReaL (Fu et al., 2025, "AReaL: A Large-Scale Asynchronous Reinforcement Learning
System for Language Reasoning", arXiv:2505.24298) decouples the two: rollout workers keep generating with the
weights they hold while the trainer updates, and a controller bounds the staleness η: a batch trained at
policy version i was sampled by a version >= i - η (η = 0 is synchronous RL). The gap between the sampling
and the trained policy is corrected in the loss (AReaL's decoupled PPO objective); here the trainer's
truncated importance weights do it (``tis_cap``: min(π_θ / π_sampler, cap), ``Trainer._behaviour_correction``).

One producer thread holds its own copy of the policy. Before each batch it takes the newest weights the
learner has published, waiting while those are more than ``staleness`` versions behind the batch's step;
it samples and scores the batch (``Trainer.collect``, with the noise of that step: staleness 0 replays the
synchronous run exactly), tags it with its version and puts it in a bounded queue. The learner trains on
the batches in order (``Trainer.learn``; the experience's step is the sampling version) and publishes its
weights after each step. Logged per step: ``async/version`` and ``async/staleness`` (the lag of every
sample of the batch: the producer changes weights only between batches), ``async/wait`` (the learner idle,
waiting for data), ``async/blocked`` (the producer idle before the batch, held by the bound or the full
queue) and ``async/samples_per_s``; ``AsyncTrainer.timeline`` holds each step's produce and learn
intervals, to plot who waits on whom.

``RayProducer`` moves the sampling into a Ray actor (another process, or a node of a cluster): the learner's
weights travel to it by Ray's object store, and the batches come back the same way.

Threads share one process: the GIL serialises Python-level work (much of a tiny model's time), and each
side sets torch's intra-op threads for itself (``threads``; by default the lab's 1, one core per side on a
2-core CPU). Measured there (``benchmarks/async_rl.py --threads 2``, a busy machine): with two threads the
synchronous loop ran 5.8x slower (the pool spin-waits) and the async one no faster than with one. Overlap pays
at most 1 / max(share, 1 - share), share being the part of a step spent sampling (29% here: 1.42x), and only
with a core free for each side.

What the producer does not see: ReMax's greedy baseline and a critic's values come from the learner's current
weights (``Trainer._context``). A checkpoint saved after ``train()`` is consistent (the producer has drawn
exactly the trained steps), and ``load`` then ``train()`` continues the run (at staleness 0, identically); one
saved from a callback mid-run holds a sampler up to ``staleness`` steps ahead.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import pandas as pd
import torch

from rl4lrm.sampling import Sampled
from rl4lrm.trainer import TrainConfig, Trainer
from rl4lrm.utils import ray_session

_POLL_S = 0.05  # how often a waiting side looks for a failure or a stop on the other side


class RolloutProducer(Protocol):
    """What the learner needs of a rollout worker. ``LocalProducer`` is a thread's, ``RayProducer`` a Ray actor's
    (another process or node); anything else implements the same two methods, and ``AsyncTrainer(producer=...)``
    takes it. Both are called from the producer thread, one at a time."""

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        """Load the learner's weights after ``version`` steps (before the first batch, then whenever newer ones
        exist); ``weights`` is a snapshot the worker may keep."""

    def produce(self, step: int) -> Sampled:
        """The scored batch of ``step`` (its problems and noise), sampled with the weights last set."""


class LocalProducer:
    """A rollout worker in this process: a frozen copy of the trainer's policy, sampling through ``Trainer.collect``."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.model = copy.deepcopy(trainer.model).eval().requires_grad_(False)

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self.model.load_state_dict(weights, assign=True)  # the snapshot is its own: take it, do not copy it

    def produce(self, step: int) -> Sampled:
        return self.trainer.collect(self.model, step)


class RayProducer:
    """A rollout worker in a Ray actor: another process on this machine, or a node of a cluster.

    The actor builds its own ``Trainer`` from the same config (and model, tokenizer and task, shipped to it), loads
    the learner's weights when ``set_weights`` sends them, and samples with the step's own noise, so a run with
    staleness 0 gives the same batches as the synchronous loop. ``ray.init`` is called only when Ray is not running
    yet (a local cluster; call ``ray.init(address=...)`` first to use a real one). Ray is an optional extra.

    Args:
        config: the run's ``TrainConfig``.
        model, tokenizer, task: as for ``Trainer`` (None: the zoo entry ``config.task``).
        num_cpus, num_gpus: the actor's Ray resources.
        threads: torch intra-op threads in the actor.
    """

    def __init__(self, config: TrainConfig, model=None, tokenizer=None, task=None, num_cpus=1, num_gpus=0, threads=1):
        ray = ray_session(needed_for="RayProducer")
        self._ray = ray
        worker = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_RayWorker)
        self.actor = worker.remote(config, model, tokenizer, task, threads)

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self._ray.get(self.actor.set_weights.remote(weights))

    def produce(self, step: int) -> Sampled:
        return self._ray.get(self.actor.produce.remote(step))


class _RayWorker:
    """What runs inside ``RayProducer``'s actor: a trainer that only samples."""

    def __init__(self, config: TrainConfig, model, tokenizer, task, threads: int):
        torch.set_num_threads(threads)
        self.trainer = Trainer(config, model=model, tokenizer=tokenizer, task=task, progress=False)

    def set_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.trainer.model.load_state_dict(weights)

    def produce(self, step: int) -> Sampled:
        return self.trainer.collect(step=step)


@dataclass
class _Batch:
    """A produced batch on its way to the learner, with its version and times (s since the run started)."""

    step: int
    version: int
    sampled: Sampled
    start: float
    end: float
    blocked: float  # producer idle before it: waiting for fresh enough weights or for room in the queue


class _Weights:
    """The learner's newest published weights and their version; the producer waits on it."""

    def __init__(self, version: int):
        self.version, self.weights = version, None
        self.changed = threading.Condition()

    def publish(self, version: int, weights: dict) -> None:
        with self.changed:
            self.version, self.weights = version, weights
            self.changed.notify_all()

    def wait_for(self, step: int, staleness: int, stop: threading.Event) -> tuple[int, dict | None]:
        """Blocks until the published weights may sample ``step`` (``admits``) or ``stop`` is set."""
        with self.changed:
            while not admits(step, self.version, staleness) and not stop.is_set():
                self.changed.wait(_POLL_S)
            return self.version, self.weights


def admits(step: int, version: int, staleness: int) -> bool:
    """AReaL's bound: the batch of ``step`` (trained when the learner is at version ``step``) may be sampled by
    the policy of ``version`` when it lags by at most ``staleness`` versions, ``step - version <= staleness``."""
    return step - version <= staleness


def check_staleness(staleness) -> int:
    """``staleness`` if it is an int >= 0, else a ``ValueError`` naming it."""
    if isinstance(staleness, bool) or not isinstance(staleness, int) or staleness < 0:
        raise ValueError(f"staleness must be an int >= 0 (0 = synchronous), got {staleness!r}")
    return staleness


class AsyncTrainer(Trainer):
    """A ``Trainer`` whose rollouts come from a producer running beside the learner.

    Args:
        config: the run's ``TrainConfig`` (set ``tis_cap`` > 0 in its overrides to correct the lag).
        staleness: the most policy versions a trained batch's sampler may lag the learner; 0 = synchronous.
        threads: torch intra-op threads of each side (producer and learner); None keeps the lab's setting
            (``rl4lrm.utils.set_torch_threads``: 1 unless ``RL4LRM_THREADS`` says otherwise).
        producer: a ``RolloutProducer``; default a ``LocalProducer`` thread worker.
        **kwargs: ``Trainer``'s (model, tokenizer, task, callbacks, progress).
    """

    def __init__(
        self,
        config: TrainConfig,
        staleness: int = 1,
        threads: int | None = None,
        producer: RolloutProducer | None = None,
        **kwargs,
    ):
        self.staleness = check_staleness(staleness)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
        super().__init__(config, **kwargs)
        self.threads, self.producer = threads, producer
        self.timeline: list[dict] = []
        self._failure: BaseException | None = None

    def train(self) -> pd.DataFrame:
        """Runs the remaining steps with the producer ahead of the learner; returns the metrics history."""
        bar = self._start()
        weights, batches = _Weights(self.step), queue.Queue(maxsize=self.staleness + 1)
        weights.publish(self.step, self._weights())  # a producer set up elsewhere (a Ray actor) starts from them
        stop, self._failure = threading.Event(), None
        producer = self.producer or LocalProducer(self)
        t0 = time.perf_counter()
        worker = threading.Thread(
            target=self._produce, args=(producer, weights, batches, stop, t0), name="rl4lrm-producer", daemon=True
        )
        restore = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        worker.start()
        samples = 0
        try:
            while self.step < self.config.steps:
                started = time.perf_counter()
                item = self._take(batches, worker)
                arrived = time.perf_counter()
                samples += len(item.sampled.rewards)
                log = {
                    "time/rollout": item.end - item.start,
                    "async/version": item.version,
                    "async/staleness": self.step - item.version,
                    "async/wait": arrived - started,
                    "async/blocked": item.blocked,
                    "async/samples_per_s": samples / (arrived - t0),  # the rate batches reach the learner
                }
                metrics = self.learn(item.sampled, item.version, started, log)
                weights.publish(self.step, self._weights())
                self.timeline.append(
                    {
                        "step": item.step,
                        "version": item.version,
                        "produce_start": item.start,
                        "produce_end": item.end,
                        "wait_start": started - t0,
                        "learn_start": arrived - t0,
                        "learn_end": time.perf_counter() - t0,
                    }
                )
                self._tick(bar, metrics)
        finally:
            stop.set()
            worker.join()
            torch.set_num_threads(restore)
        return self._finish(bar)

    def timeline_frame(self) -> pd.DataFrame:
        """One row per step: the producer's and the learner's intervals, in s since the run started."""
        return pd.DataFrame(self.timeline)

    def _produce(self, producer, weights: _Weights, batches: queue.Queue, stop: threading.Event, t0: float):
        """The producer thread: sample every remaining step's batch, never more than ``staleness`` versions stale."""
        try:
            if self.threads is not None:
                torch.set_num_threads(self.threads)
            have, idle = -1, time.perf_counter()  # nothing loaded yet: the first batch loads the learner's weights
            for step in range(self.step, self.config.steps):
                version, new = weights.wait_for(step, self.staleness, stop)
                if stop.is_set():
                    return
                if version > have:
                    producer.set_weights(new, version)
                    have = version
                start = time.perf_counter()
                sampled = producer.produce(step)
                end = time.perf_counter()
                item = _Batch(step, have, sampled, start - t0, end - t0, start - idle)
                while not stop.is_set():
                    try:
                        batches.put(item, timeout=_POLL_S)
                        break
                    except queue.Full:
                        continue
                idle = end
        except BaseException as err:  # handed to the learner, which raises it in the caller's thread
            self._failure = err

    def _weights(self) -> dict[str, torch.Tensor]:
        """A snapshot of the policy's weights, which the learner's next updates leave untouched."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _take(self, batches: queue.Queue, worker: threading.Thread) -> _Batch:
        """The next batch; raises the producer's exception if it failed."""
        while True:
            try:
                return batches.get(timeout=_POLL_S)
            except queue.Empty:
                if self._failure is not None:
                    raise self._failure from None  # the producer's own traceback travels with it
                if not worker.is_alive():
                    raise RuntimeError("the rollout producer stopped before the run's last step") from None


def train_async(config: TrainConfig, staleness: int = 1, **kwargs) -> pd.DataFrame:
    """Trains ``config`` with rollouts at most ``staleness`` versions stale (``AsyncTrainer``); returns the history."""
    return AsyncTrainer(config, staleness, **kwargs).train()
