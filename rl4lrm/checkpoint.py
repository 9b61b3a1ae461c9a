"""Checkpoint files that survive a crash and refuse to lie.

A checkpoint is plain data (dicts, lists, tuples, strings, numbers, ``None`` and tensors) in one file::

    MAGIC (8 bytes) | format version (uint32) | payload length (uint64) | SHA-256 of the payload (32 bytes)
    payload: the state, written by ``torch.save``

- **Atomic**: the file is written to a temporary file in the same folder, fsync-ed, then renamed over the
  old one (``os.replace`` is atomic on POSIX), and the folder is fsync-ed. A crash or a full disk during
  the write leaves the previous checkpoint untouched and at most a stray ``.tmp`` file.
- **Verified**: the payload's length and SHA-256 are checked before anything is unpickled, so a truncated
  or bit-flipped file is refused with its name instead of loading wrong weights.
- **No code runs on load**: the payload is read with ``torch.load(weights_only=True)``, whose unpickler only
  rebuilds tensors and plain containers (https://pytorch.org/docs/stable/notes/serialization.html); a
  file from an untrusted source cannot execute anything, whatever its header says.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
from pathlib import Path

import torch

MAGIC = b"RL4LRMCK"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sIQ32s")  # magic, version, payload length, sha256


class CheckpointError(ValueError):
    """A file is not a usable checkpoint: not one at all, another version, corrupted, or missing keys."""


class _HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through (``torch.save`` streams into it)."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        data = bytes(data)
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(state: dict, path) -> None:
    """Writes ``state`` (plain data and tensors) to ``path`` atomically, with a checksum.

    Raises:
        OSError: when the folder cannot be written; the previous file at ``path`` is then left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * _HEADER.size)  # filled in once the payload's hash is known
            writer = _HashingWriter(f)
            torch.save(state, writer)
            f.seek(0)
            f.write(_HEADER.pack(MAGIC, FORMAT_VERSION, writer.size, writer.sha.digest()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a failed write (full disk, KeyboardInterrupt) must not leave its temp file
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # makes the rename itself durable
    finally:
        os.close(dir_fd)


def load_checkpoint(path, map_location=None, required: tuple[str, ...] = ()) -> dict:
    """Reads a checkpoint written by ``save_checkpoint`` after checking its header, length and checksum.

    Args:
        path: the file.
        map_location: passed to ``torch.load`` (e.g. the trainer's device).
        required: top-level keys the state must have.

    Returns:
        The state dict.

    Raises:
        CheckpointError: naming the file and what is wrong (not a checkpoint, another format version,
            truncated, checksum mismatch, unreadable payload, missing keys).
    """
    path = Path(path)
    with open(path, "rb") as f:
        header = f.read(_HEADER.size)
        if len(header) < _HEADER.size or not header.startswith(MAGIC):
            raise CheckpointError(
                f"{path} is not an rl4lrm checkpoint (no {MAGIC.decode()} header; files written "
                f"by plain torch.save, as before checkpoint format {FORMAT_VERSION}, are not read)"
            )
        _, version, size, digest = _HEADER.unpack(header)
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format version {version}; this rl4lrm reads version {FORMAT_VERSION}"
            )
        payload = f.read(size + 1)
    if len(payload) != size:
        raise CheckpointError(f"{path} is corrupted: its payload has {len(payload)} bytes, the header says {size}")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(
            f"{path} is corrupted: the SHA-256 of its payload does not match the one stored in its header"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 (the unpickler refuses anything but plain data and tensors)
        raise CheckpointError(f"{path} holds data that is not plain data and tensors; refused: {err}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint dict")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks the keys {missing} (present: {sorted(state)})")
    return state


def check_writable(folder) -> Path:
    """Creates ``folder`` if needed and proves a file can be written there, before any long work.

    Raises:
        OSError: naming the folder when it cannot be created or written (a path under a regular file,
            a read-only folder).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OSError(f"output folder {folder} cannot be written: {err.strerror or err}") from None
    return folder
