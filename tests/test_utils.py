"""Tests for rl4lrm.utils (device choice, seeding, eval mode) and rl4lrm.registry."""

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rl4lrm.registry import Registry
from rl4lrm.utils import DEVICES, eval_mode, resolve_device, seed_everything, set_torch_threads

HAS_CUDA = torch.cuda.is_available()


# --- resolve_device ---------------------------------------------------------------------------


def test_auto_picks_cuda_only_when_available():
    device = resolve_device("auto")
    assert isinstance(device, torch.device)
    assert device.type == ("cuda" if HAS_CUDA else "cpu")


def test_cpu_is_returned_as_given():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad", ["tpu", "CPU", "", "gpu", "mps"])
def test_unknown_device_lists_the_choices(bad):
    with pytest.raises(ValueError) as err:
        resolve_device(bad)
    message = str(err.value)
    assert repr(bad) in message
    assert all(d in message for d in DEVICES)


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_an_error(device):
    with pytest.raises(ValueError, match=rf"'{device}'.*CUDA is not available"):
        resolve_device(device)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_with_cuda():
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")


# --- seed_everything --------------------------------------------------------------------------


def draw():
    return torch.rand(5), random.random(), np.random.rand(3)


def test_seed_everything_makes_all_rngs_reproducible():
    seed_everything(1234)
    t1, r1, n1 = draw()
    seed_everything(1234)
    t2, r2, n2 = draw()
    assert torch.equal(t1, t2) and r1 == r2 and np.array_equal(n1, n2)
    seed_everything(1235)
    t3, r3, n3 = draw()
    assert not torch.equal(t1, t3) and r1 != r3 and not np.array_equal(n1, n3)


# --- Registry ---------------------------------------------------------------------------------


@pytest.fixture
def reg():
    r = Registry("widget")

    @r.register("beta")
    def beta():
        return "b"

    @r.register("alpha")
    def alpha():
        return "a"

    return r


def test_register_returns_the_object_and_get_finds_it(reg):
    def gamma():
        return "g"

    assert reg.register("gamma")(gamma) is gamma
    assert reg.get("gamma") is gamma
    assert reg.get("alpha")() == "a" and reg.get("beta")() == "b"


def test_duplicate_names_are_rejected(reg):
    with pytest.raises(ValueError, match=r"widget 'alpha' is already registered"):
        reg.register("alpha")(lambda: "other")
    assert reg.get("alpha")() == "a"  # the original survives


def test_unknown_name_lists_the_known_ones(reg):
    with pytest.raises(ValueError, match=r"unknown widget 'gamma'; known: alpha, beta"):
        reg.get("gamma")


def test_contains_iteration_and_names(reg):
    assert "alpha" in reg and "beta" in reg
    assert "gamma" not in reg and 3 not in reg and None not in reg
    assert list(reg) == ["alpha", "beta"] == reg.names()  # sorted, not insertion order
    assert Registry("empty").names() == [] and list(Registry("empty")) == []


def test_registries_are_independent(reg):
    other = Registry("widget")
    assert "alpha" not in other
    other.register("alpha")(lambda: "x")  # no clash with `reg`
    assert reg.get("alpha")() == "a"


def test_eval_mode_restores_the_previous_mode_even_after_an_error():
    model = torch.nn.Dropout(0.5)
    with eval_mode(model):
        assert not model.training
    assert model.training
    try:
        with eval_mode(model):
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training


def test_importing_the_library_sets_one_thread():
    # in a fresh interpreter: torch starts with 2 threads (OMP_NUM_THREADS=2), rl4lrm's import brings it to 1
    code = "import torch; before = torch.get_num_threads(); import rl4lrm; print(before, torch.get_num_threads())"
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("RL4LRM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2", "1"]


def test_set_torch_threads_reads_the_environment(monkeypatch):
    n = torch.get_num_threads()
    try:
        monkeypatch.setenv("RL4LRM_THREADS", "2")
        assert set_torch_threads() == 2
        monkeypatch.setenv("RL4LRM_THREADS", "0")
        assert set_torch_threads() == 2  # 0 leaves torch's setting alone
        monkeypatch.setenv("RL4LRM_THREADS", "two")
        with pytest.raises(ValueError, match="RL4LRM_THREADS='two'"):
            set_torch_threads()
        with pytest.raises(ValueError, match="got -1"):
            set_torch_threads(-1)
    finally:
        torch.set_num_threads(n)
