"""Asynchronous RL: staleness 0 replays the synchronous run, the lag stays within the bound and is logged, the
truncated importance weights see it, failures on either side surface, and the reward still rises."""

import threading
import time

import pytest
import torch
from test_trainer import FAST  # the trainer tests' tiny run

from rl4lrm.async_rl import AsyncTrainer, LocalProducer, train_async
from rl4lrm.trainer import Callback, TrainConfig, Trainer


def _comparable(history):
    return [{k: v for k, v in row.items() if not k.startswith(("time/", "async/"))} for row in history]


class SlowLearner(Callback):
    """Holds the learner back so that the producer runs as far ahead as the bound lets it."""

    def on_rollout_end(self, trainer, batch, rewards):
        time.sleep(0.1)


def _producer_threads():
    return [t for t in threading.enumerate() if t.name == "rl4lrm-producer"]


def test_staleness_zero_replays_the_synchronous_run():
    sync = Trainer(TrainConfig(steps=3, seed=3, **FAST), progress=False)
    sync.train()
    lagless = AsyncTrainer(TrainConfig(steps=3, seed=3, **FAST), staleness=0, progress=False)
    df = lagless.train()
    assert _comparable(lagless.history) == _comparable(sync.history)
    for p, q in zip(lagless.model.parameters(), sync.model.parameters()):
        assert torch.equal(p, q)
    assert (df["async/staleness"].dropna() == 0).all()
    assert df["async/version"].dropna().tolist() == [0, 1, 2]


def test_an_async_run_resumes_from_its_checkpoint(tmp_path):
    straight = AsyncTrainer(TrainConfig(steps=4, **FAST), staleness=0, progress=False)
    straight.train()
    first = AsyncTrainer(TrainConfig(steps=2, **FAST), staleness=0, progress=False)
    first.train()
    first.save(tmp_path / "ckpt.pt")
    resumed = AsyncTrainer(TrainConfig(steps=4, **FAST), staleness=0, progress=False)
    resumed.load(tmp_path / "ckpt.pt")
    resumed.train()
    assert _comparable(resumed.history) == _comparable(straight.history)
    assert resumed.history_frame()["async/version"].dropna().tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("staleness", [1, 2, 4])
def test_the_lag_reaches_the_bound_never_beyond_and_the_weights_correct_it(staleness):
    config = TrainConfig(steps=6, **FAST, overrides={"tis_cap": 2.0})
    trainer = AsyncTrainer(config, staleness=staleness, callbacks=[SlowLearner()], progress=False)
    df = trainer.train().iloc[1:]  # row 0: the evaluation before training
    lag = df["async/staleness"]
    assert lag.between(0, staleness).all() and lag.max() == staleness
    assert (df["async/version"] + lag == df["step"] - 1).all()  # the step trained on minus the sampler's version
    lagged = df[lag > 0]
    assert (lagged["offpolicy/staleness"] == lagged["async/staleness"]).all()  # the batch's Experience.step
    assert lagged["is/mean"].notna().all() and lagged["offpolicy/kl"].notna().all()
    assert (df["async/wait"] >= 0).all() and (df["async/blocked"] >= 0).all() and (df["async/samples_per_s"] > 0).all()
    timeline = trainer.timeline_frame()
    assert timeline["step"].tolist() == list(range(6))
    assert (timeline["produce_end"] <= timeline["learn_start"]).all()
    assert (timeline["learn_start"] <= timeline["learn_end"]).all()
    assert not _producer_threads()


class RecordingProducer(LocalProducer):
    def __init__(self, trainer):
        super().__init__(trainer)
        self.calls = []

    def set_weights(self, weights, version):
        self.calls.append(("set_weights", version))
        super().set_weights(weights, version)

    def produce(self, step):
        self.calls.append(("produce", step))
        return super().produce(step)


def test_a_producer_gets_the_learners_weights_before_its_first_batch():
    """The interface a Ray actor would implement: weights set first, then each step's batch, in order."""
    trainer = AsyncTrainer(TrainConfig(steps=3, **FAST), staleness=0, progress=False)
    trainer.producer = RecordingProducer(trainer)
    with torch.no_grad():
        for p in trainer.producer.model.parameters():
            p.zero_()  # a worker that starts with other weights
    trainer.train()
    expected = [("set_weights", 0), ("produce", 0), ("set_weights", 1), ("produce", 1), ("set_weights", 2)]
    assert trainer.producer.calls == [*expected, ("produce", 2)]
    assert trainer.history[1]["reward/mean"] > 0  # sampled by the learner's weights, not the zeroed ones


def test_a_local_producer_takes_the_snapshot_without_copying_it():
    trainer = AsyncTrainer(TrainConfig(steps=1, **FAST), staleness=0, progress=False)
    producer, snapshot = LocalProducer(trainer), trainer._weights()
    producer.set_weights(snapshot, 0)
    taken = producer.model.state_dict()
    assert all(taken[k].data_ptr() == v.data_ptr() for k, v in snapshot.items())
    assert not any(p.requires_grad for p in producer.model.parameters())
    with torch.no_grad():
        next(trainer.model.parameters()).add_(1.0)  # the learner's next update
    assert all(torch.equal(taken[k], v) for k, v in snapshot.items())  # leaves the producer's weights alone


class FailingProducer(LocalProducer):
    def produce(self, step):
        if step == 2:
            raise ValueError("rollout worker lost at step 2")
        return super().produce(step)


def test_a_producer_failure_surfaces_in_the_caller():
    trainer = AsyncTrainer(TrainConfig(steps=4, **FAST), staleness=1, progress=False)
    trainer.producer = FailingProducer(trainer)
    with pytest.raises(ValueError, match="rollout worker lost at step 2"):
        trainer.train()
    assert trainer.step == 2 and not _producer_threads()


def test_a_learner_failure_stops_the_producer():
    class Boom(Callback):
        def on_step_end(self, trainer, metrics):
            raise KeyError("learner side")

    trainer = AsyncTrainer(TrainConfig(steps=4, **FAST), staleness=2, callbacks=[Boom()], progress=False)
    with pytest.raises(KeyError, match="learner side"):
        trainer.train()
    assert not _producer_threads()


@pytest.mark.parametrize("staleness", [-1, 1.5, "2", True, None])
def test_a_bad_staleness_is_rejected_by_name(staleness):
    with pytest.raises(ValueError, match=f"staleness.*{staleness!r}"):
        AsyncTrainer(TrainConfig(steps=1, **FAST), staleness=staleness, progress=False)


def test_bad_threads_are_rejected():
    with pytest.raises(ValueError, match="threads.*0"):
        AsyncTrainer(TrainConfig(steps=1, **FAST), threads=0, progress=False)


def test_async_grpo_raises_training_reward():
    """The smoke run of test_trainer, two versions stale with truncated importance weights."""
    config = TrainConfig(
        task="addition",
        steps=25,
        prompts_per_step=8,
        group_size=8,
        eval_every=25,
        eval_problems=64,
        device="cpu",
        overrides={"tis_cap": 2.0},
    )
    df = train_async(config, staleness=2, progress=False)
    rewards = df["reward/mean"].dropna()
    assert rewards.iloc[-5:].mean() > rewards.iloc[:5].mean() + 0.1
    assert df["acc/pass@1"].iloc[-1] > df["acc/pass@1"].iloc[0]
    assert df["async/staleness"].max() <= 2


def test_admits_is_the_staleness_bound_by_hand():
    from rl4lrm.async_rl import admits

    assert admits(step=5, version=5, staleness=0) and not admits(step=5, version=4, staleness=0)
    assert admits(step=5, version=3, staleness=2) and not admits(step=5, version=2, staleness=2)
