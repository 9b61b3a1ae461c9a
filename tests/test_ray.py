"""Ray, on one local 2-CPU cluster for the module: sweeps as Ray tasks (the same histories as in one process) and an
asynchronous run whose rollouts come from a Ray actor (the same history as the synchronous loop at staleness 0)."""

import pandas as pd
import pytest
from test_sweep import PRESETS, TINY, _runs, _without_timing

from rl4lrm.async_rl import AsyncTrainer, RayProducer
from rl4lrm.experiments.compare import compare_presets
from rl4lrm.sweep import run_sweep
from rl4lrm.trainer import TrainConfig, Trainer

pytestmark = pytest.mark.slow  # Ray's start takes 10-25 s on 2 cores


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_histories_as_sequential(ray):
    sequential = run_sweep(_runs(), progress=False)
    seen = []
    on_ray = compare_presets(
        PRESETS, seeds=(0, 1), backend="ray", progress=False, on_run_end=lambda df: seen.append(len(df)), **TINY
    )
    assert seen == [3, 6, 9, 12]  # every finished run reported, whatever order they finished in
    pd.testing.assert_frame_equal(_without_timing(on_ray), _without_timing(sequential))
    assert (on_ray["time/step"].dropna() > 0).all()


def test_a_ray_actor_producer_at_staleness_0_replays_the_synchronous_run(ray):
    config = TrainConfig.build(**{**TINY, "steps": 3, "tis_cap": 2.0})
    sync = Trainer(config, progress=False).train()
    trainer = AsyncTrainer(config, staleness=0, producer=RayProducer(config), progress=False)
    remote = trainer.train()
    cols = [c for c in sync.columns if not c.startswith("time/")]
    pd.testing.assert_frame_equal(remote[cols], sync[cols])
    assert len(trainer.timeline) == 3
