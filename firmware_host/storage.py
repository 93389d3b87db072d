"""The board's persistent storage (emulated flash) as a file: its layout (the mirror of
targets/firmware/checkpoint.h and main_loop.c, checked by tests/test_checkpoint.py), making one
with a key provisioned, and reading the checkpoints it holds.

    0        provisioning record (keys.Key.record(): device id and secret)
    4096     boot record slots A, B
    12288    checkpoint slots A, B, each ``slot_bytes(model_bytes)``

A record is ``magic u32, seq u32, size u32, crc32 u32`` then ``size`` payload bytes; the newest
valid one (magic, size and CRC check; the larger seq) is what the firmware reads at boot. A
checkpoint's payload is 12 u32 (format 1, model version, model size, the pushed CRC, stream id
low and high, next index, the PRNG states for input and learning, the checkpoint period, 0, 0)
and the sealed model blob.
"""
from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .keys import RECORD_BYTES, RECORD_MAGIC, Key, forget, remember
from .launch import run_dir

SECTOR = 4096
BOOT_AT = SECTOR
CKPT_AT = 3 * SECTOR
HEADER = 16
CKPT_META = 48
BOOT_MAGIC, CKPT_MAGIC = b"ELBT", b"ELCK"
QEMU_PSRAM_BYTES = 16 * 1024 * 1024      # QEMU's mps2 PSRAM, which holds the storage there


def slot_bytes(model_bytes: int) -> int:
    return -(-(HEADER + CKPT_META + model_bytes) // SECTOR) * SECTOR


def storage_bytes(model_bytes: int) -> int:
    """The storage a firmware with model areas of ``model_bytes`` needs for its checkpoints."""
    return CKPT_AT + 2 * slot_bytes(model_bytes)


def create(path, model_bytes: int, key: Key | None, size: int | None = None) -> Path:
    """A storage file of ``size`` bytes (default: what the firmware needs), erased (zero: never a
    valid record), with ``key`` provisioned (None: a board without a key)."""
    path = Path(path)
    size = storage_bytes(model_bytes) if size is None else size
    with open(path, "wb") as f:
        f.truncate(size)
        if key is not None:
            f.write(key.record())
    os.chmod(path, 0o600)                  # it holds the board's secret
    return path


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    slot: int
    model_version: int
    model_crc: int
    stream_id: int
    next_index: int
    rng_input: int
    rng_learn: int
    checkpoint_every: int
    blob: bytes


def _records(data: bytes, at: int, size: int, magic: bytes) -> list[tuple[int, int, bytes]]:
    """(seq, slot, payload) of the valid records of an A/B pair."""
    out = []
    for slot in (0, 1):
        base = at + slot * size
        head = data[base:base + HEADER]
        if len(head) < HEADER or head[:4] != magic:
            continue
        seq, n, crc = struct.unpack("<III", head[4:])
        payload = data[base + HEADER:base + HEADER + n]
        if n > size - HEADER or len(payload) != n or zlib.crc32(head[:12] + payload) != crc:
            continue
        out.append((seq, slot, payload))
    return out


def checkpoints(path, model_bytes: int) -> list[Checkpoint]:
    """The valid checkpoints in a storage file, newest first."""
    data = Path(path).read_bytes()
    found = []
    for seq, slot, p in _records(data, CKPT_AT, slot_bytes(model_bytes), CKPT_MAGIC):
        v = struct.unpack("<12I", p[:CKPT_META])
        found.append(Checkpoint(seq, slot, v[1], v[3], v[4] | v[5] << 32, v[6], v[7], v[8], v[9],
                                p[CKPT_META:CKPT_META + v[2]]))
    return sorted(found, key=lambda c: -c.seq)


def boot_count(path) -> int:
    """The newest boot record's number (0: the board never booted with a key)."""
    data = Path(path).read_bytes()
    return max((seq for seq, _, _ in _records(data, BOOT_AT, SECTOR, BOOT_MAGIC)), default=0)


def key_of(path) -> Key | None:
    """The key provisioned in a storage file (None: none, or no such file)."""
    try:
        with open(path, "rb") as f:
            rec = f.read(RECORD_BYTES)
    except OSError:
        return None
    if len(rec) < RECORD_BYTES or rec[:4] != RECORD_MAGIC or zlib.crc32(rec[:-4]) != struct.unpack("<I", rec[-4:])[0]:
        return None
    return Key(rec[8:16], rec[16:48])


def provision(path, model_bytes: int, key: Key | None | bool = None, size: int | None = None) -> Key | None:
    """The storage a launcher gives a board: an existing file as it is (its key is returned), else
    a new one with ``key`` provisioned (None: a fresh key; False: none, a board without a key).
    The key returned is remembered for this process (keys.remember)."""
    path = Path(path)
    if path.exists():
        found = key_of(path)
    else:
        found = Key.generate() if key is None else (key or None)
        create(path, model_bytes, found, size)
    if found is not None:
        remember(found)
    return found


def for_launcher(path, prefix: str, model_bytes: int, key: Key | None | bool = None, size: int | None = None):
    """A launcher's storage: (path, key, cleanup). ``path`` None: a temporary file in the run
    directory, which ``cleanup`` (for the launcher's on_stop) removes with the key's memory; a
    path given is the caller's to keep (cleanup None)."""
    if path is not None:
        return Path(path), provision(path, model_bytes, key, size), None
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".storage", dir=run_dir())
    os.close(fd)
    os.unlink(name)                        # provision() makes it
    path = Path(name)
    found = provision(path, model_bytes, key, size)

    def cleanup() -> None:
        if found is not None:
            forget(found)
        path.unlink(missing_ok=True)
    return path, found, cleanup


def write_key(path, key: Key, model_bytes: int) -> Path:
    """Provision ``key`` into a storage file (made, erased, when missing): the flashing step of
    ``edgelearn keys provision``. The board reads it at its next boot."""
    path = Path(path)
    if not path.exists():
        return create(path, model_bytes, key)
    with open(path, "r+b") as f:
        f.write(key.record())
    return path
