"""Checkpoints under faults: a writer killed mid-save, flipped bits, hostile pickles, wrong files, bad --out."""

import hashlib
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from rl4lrm.checkpoint import MAGIC, CheckpointError, load_checkpoint, save_checkpoint
from rl4lrm.cli import main
from rl4lrm.trainer import TrainConfig, Trainer

FAST = dict(
    task="addition",
    prompts_per_step=4,
    group_size=4,
    max_new_tokens=6,
    eval_problems=8,
    eval_samples=2,
    eval_every=1,
    device="cpu",
    overrides={"replay": 1},
)
REPO = Path(__file__).resolve().parents[1]

# The child trains one step and saves (the good checkpoint), trains a second step, then saves again with a
# torch.save that writes half of its bytes and hangs: the parent kills it there, mid-write.
_KILLED_WRITER = textwrap.dedent("""
    import io, sys, time, torch
    from rl4lrm.trainer import TrainConfig, Trainer
    path, config = sys.argv[1], eval(sys.argv[2])
    trainer = Trainer(TrainConfig(steps=1, **config), progress=False)
    trainer.train()
    trainer.save(path)
    trainer.config.steps = 2
    trainer.train()
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
            f = open(f, "wb")
        f.write(data[: len(data) // 2])
        f.flush()
        print("HALF", flush=True)
        time.sleep(600)

    torch.save = half_save
    trainer.save(path)
""")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_writer_killed_mid_save_leaves_the_previous_checkpoint_to_resume_from(tmp_path):
    path = tmp_path / "ckpt.pt"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(path), repr(FAST)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout.readline().strip() == "HALF"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    resumed = Trainer(TrainConfig(steps=2, **FAST), progress=False)
    resumed.load(path)  # the step-1 checkpoint, whole
    assert resumed.step == 1 and len(resumed.buffer) == 1
    history = resumed.train()
    assert resumed.step == 2 and len(history) == 3
    straight = Trainer(TrainConfig(steps=2, **FAST), progress=False)
    straight.train()
    for p, q in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(p, q)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"x": torch.ones(3)}, path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"x": torch.zeros(3)}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(3))
    assert os.listdir(tmp_path) == ["ckpt.pt"]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    trainer = Trainer(TrainConfig(steps=1, **FAST), progress=False)
    trainer.train()
    path = tmp_path_factory.mktemp("run") / "ckpt.pt"
    trainer.save(path)
    return trainer, path


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_flipped_bytes_are_refused_naming_the_file(saved_run, tmp_path, where):
    data = bytearray(saved_run[1].read_bytes())
    data[int(len(data) * where)] ^= 0x10
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.pt.*corrupted"):
        Trainer(TrainConfig(steps=1, **FAST), progress=False).load(bad)


def test_a_truncated_file_is_refused(saved_run, tmp_path):
    bad = tmp_path / "short.pt"
    bad.write_bytes(saved_run[1].read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="short.pt.*corrupted"):
        load_checkpoint(bad)


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {_Boom.marker}",))


def _hostile_payload(tmp_path) -> bytes:
    _Boom.marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"config": {}, "model": _Boom()}, buffer)
    return buffer.getvalue()


def test_a_malicious_pickle_does_not_execute_even_with_a_valid_header(tmp_path):
    payload = _hostile_payload(tmp_path)
    forged = tmp_path / "forged.pt"  # a valid header and checksum around a payload that would run a command
    forged.write_bytes(struct.pack(">8sIQ32s", MAGIC, 1, len(payload), hashlib.sha256(payload).digest()) + payload)
    with pytest.raises(CheckpointError, match="forged.pt.*not plain data"):
        load_checkpoint(forged)
    plain = tmp_path / "plain.pt"  # the old format: a bare torch.save file
    plain.write_bytes(payload)
    with pytest.raises(CheckpointError, match="plain.pt is not an rl4lrm checkpoint"):
        Trainer(TrainConfig(steps=1, **FAST), progress=False).load(plain)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not (tmp_path / "pwned").exists()


def test_wrong_files_versions_and_keys_give_clear_errors(saved_run, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt is not an rl4lrm checkpoint"):
        load_checkpoint(text)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is not"):
        load_checkpoint(empty)
    data = bytearray(saved_run[1].read_bytes())
    data[8:12] = struct.pack(">I", 99)
    future = tmp_path / "future.pt"
    future.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="future.pt has checkpoint format version 99"):
        load_checkpoint(future)
    partial = tmp_path / "partial.pt"
    save_checkpoint({"config": {}, "step": 1}, partial)
    with pytest.raises(CheckpointError, match=r"partial.pt lacks the keys \['history', 'model'"):
        Trainer(TrainConfig(steps=1, **FAST), progress=False).load(partial)
    zipped = tmp_path / "zipped.pt"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("data.pkl", b"junk")
    with pytest.raises(CheckpointError, match="zipped.pt is not"):
        load_checkpoint(zipped)


def test_nan_weights_are_never_saved_over_a_good_checkpoint(saved_run, tmp_path):
    trainer, good = saved_run
    path = tmp_path / "ckpt.pt"
    path.write_bytes(good.read_bytes())
    before = path.read_bytes()
    param = next(trainer.model.parameters())
    saved = param.detach().clone()
    with torch.no_grad():
        param[0] = float("nan")
    try:
        with pytest.raises(FloatingPointError, match="NaN or inf"):
            trainer.save(path)
    finally:
        with torch.no_grad():
            param.copy_(saved)
    assert path.read_bytes() == before


def test_a_nan_loss_stops_the_run_before_the_update(tmp_path):
    from rl4lrm.rewards import REWARDS, register_reward

    if "nan_for_tests" not in REWARDS:

        @register_reward("nan_for_tests")
        def nan_for_tests(problems, completions, ctx):
            return torch.full((len(completions),), float("nan"))

    trainer = Trainer(TrainConfig(steps=2, rewards={"correct": 1.0, "nan_for_tests": 1.0}, **FAST), progress=False)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(FloatingPointError, match="step 1: the loss .* not finite"):
        trainer.train()
    assert all(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), before))
    trainer.save(tmp_path / "ckpt.pt")  # the weights are still the last good ones


@pytest.mark.parametrize(
    "make_out",
    [
        lambda tmp: tmp / "a_file" / "run",  # a folder under a regular file
        lambda tmp: tmp / "a_file",  # a regular file
    ],
)
def test_an_unwritable_out_fails_before_training(tmp_path, capsys, monkeypatch, make_out):
    (tmp_path / "a_file").write_text("x")
    started = []
    monkeypatch.setattr(Trainer, "__init__", lambda *a, **k: started.append(1))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--steps", "1", "--out", str(make_out(tmp_path))])
    assert exit_.value.code == 2
    assert "--out" in capsys.readouterr().err
    assert not started
