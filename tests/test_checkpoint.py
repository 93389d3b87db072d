"""Durable learned state (targets/firmware/checkpoint.c, docs/protocol.md §7): A/B checkpoint slots
with a sequence number and a CRC in the board's storage. Power-loss injection on the native board
(the process killed at hundreds of points inside its storage writes) always restarts with a valid
checkpoint equal to one the host reference produced, never older than the last acknowledged
sample, and learning goes on from it bit for bit; QEMU killed mid-stream restores the same way."""
import os
import random
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from edgelearn.datasets import load_digits
from edgelearn.executors.c import NativeSTOP
from edgelearn.model import init_params, mlp
from edgelearn.modelblob import to_blob
from edgelearn.resources import FIRMWARE_DIR
from firmware_host import storage
from firmware_host.board import Board, BoardError, LinkTimeout
from firmware_host.native_board import MODEL_BYTES, NativeBoard
from firmware_host.qemu import QemuLinkBoard

BASE = 3          # samples learned before the trials start (checkpoints 3..5 after the commit's and CONFIG's)
MORE = 3          # samples each trial learns, one checkpoint each
TRIALS = 300


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return ds.x_train[:BASE + MORE], ds.y_train[:BASE + MORE]


@pytest.fixture(scope="module")
def model():
    return init_params(mlp("ckpt", [64, 24, 10]))


@pytest.fixture(scope="module")
def reference(model, digits):
    """The sealed blob after each number of samples learned, 0 .. BASE + MORE (the C runtime on the host)."""
    x, y = digits
    net = NativeSTOP(model)
    states = [net.blob()]
    for i in range(len(x)):
        net.run(x[i:i + 1], y[i:i + 1], True)
        states.append(net.blob())
    return states


def test_the_storage_layout_is_the_firmware_s():
    header = (FIRMWARE_DIR / "checkpoint.h").read_text()
    main_loop = (FIRMWARE_DIR / "main_loop.c").read_text()
    session = (FIRMWARE_DIR / "session.h").read_text()

    def define(text, name):
        return re.search(rf"#define {name} (.+?)(?:\s*/\*|$)", text, re.M).group(1)
    assert define(header, "EL_ST_SECTOR") == f"{storage.SECTOR}u"
    assert define(header, "EL_ST_BOOT_AT") == "EL_ST_SECTOR" and storage.BOOT_AT == storage.SECTOR
    assert define(header, "EL_ST_CKPT_AT") == "(3u * EL_ST_SECTOR)" and storage.CKPT_AT == 3 * storage.SECTOR
    assert define(header, "EL_AB_HEADER") == f"{storage.HEADER}u"
    assert int(define(header, "EL_AB_BOOT_MAGIC")[:-1], 16).to_bytes(4, "little") == storage.BOOT_MAGIC
    assert int(define(header, "EL_AB_CKPT_MAGIC")[:-1], 16).to_bytes(4, "little") == storage.CKPT_MAGIC
    assert define(main_loop, "EL_CKPT_META") == f"{storage.CKPT_META}u"
    assert define(session, "EL_KEY_RECORD_BYTES") == f"{storage.RECORD_BYTES}u"
    assert int(define(session, "EL_KEY_MAGIC")[:-1], 16).to_bytes(4, "little") == storage.RECORD_MAGIC


def writes_of_a_checkpoint(blob_bytes: int) -> int:
    """Bytes a checkpoint erases and programs (checkpoint.c): the sectors it covers, the payload, the header."""
    payload = storage.CKPT_META + blob_bytes
    return -(-(storage.HEADER + payload) // storage.SECTOR) * storage.SECTOR + payload + storage.HEADER


def base_storage(path: Path, model, digits) -> None:
    """A board that committed the model and learned BASE samples, one checkpoint each."""
    x, y = digits
    with NativeBoard(storage=path) as nb, Board(nb.url) as b:
        b.push_model(to_blob(model))
        b.commit()
        b.configure(1)                                 # checkpointed at once
        b.set_mode("train")
        b.stream(x[:BASE], y[:BASE])
        assert b.hello().checkpoint_seq == 2 + BASE


def run_until_cut(path: Path, cut: int | None, digits) -> int:
    """Boot on the storage with a power cut after ``cut`` storage bytes; learn the next MORE
    samples. Returns how many samples were acknowledged (their RESULT arrived)."""
    x, y = digits
    acked = 0
    env = {} if cut is None else {"EDGELEARN_BOARD_POWER_CUT": str(cut)}
    with NativeBoard(storage=path, env=env) as nb:
        try:
            with Board(nb.url, timeout=0.2, retries=2) as b:
                b.set_mode("train")
                for i in range(BASE, BASE + MORE):
                    b.stream(x[i:i + 1], y[i:i + 1])
                    acked += 1
        except (LinkTimeout, BoardError, OSError):
            pass
        if cut is not None:
            assert nb.wait(5) == -signal.SIGKILL      # the power cut struck
    return acked


def test_a_power_loss_at_any_byte_of_a_checkpoint_leaves_a_valid_one(tmp_path, model, digits, reference):
    base = tmp_path / "base.storage"
    base_storage(base, model, digits)
    blob_bytes = len(reference[0])
    boot = storage.SECTOR + storage.HEADER                # the boot record: one sector erased, a header
    total = boot + MORE * writes_of_a_checkpoint(blob_bytes)
    edges = [boot]
    for k in range(MORE):                                  # each write's start and end, and its CRC's bytes
        at = boot + k * writes_of_a_checkpoint(blob_bytes)
        edges += [at, at + 1, at + writes_of_a_checkpoint(blob_bytes) - 5, at + writes_of_a_checkpoint(blob_bytes) - 1]
    rng = random.Random(17)
    cuts = set(edges)
    while len(cuts) < TRIALS:
        cuts.add(rng.randrange(total))
    cuts = sorted(cuts)
    trial = tmp_path / "trial.storage"

    shutil.copy(base, trial)                               # without a cut: every write completes
    assert run_until_cut(trial, None, digits) == MORE
    assert storage.checkpoints(trial, MODEL_BYTES)[0].seq == 2 + BASE + MORE
    assert storage.boot_count(trial) == storage.boot_count(base) + 1

    t0 = time.monotonic()
    seen = set()
    for cut in cuts:
        shutil.copy(base, trial)
        acked = run_until_cut(trial, cut, digits)
        newest = storage.checkpoints(trial, MODEL_BYTES)
        assert newest, f"cut at {cut}: no valid checkpoint"
        with NativeBoard(storage=trial) as nb, Board(nb.url) as b:
            ready = b.hello()
            learned = ready.next_seq
            assert ready.restored and ready.checkpoint_seq == newest[0].seq == 2 + learned, cut
            assert BASE + acked <= learned <= BASE + MORE, (cut, acked, learned)
            assert b.pull_params() == reference[learned], f"cut at {cut}: not the reference after {learned} samples"
            seen.add(learned)
            if cut % 7 == 0:                               # learning goes on from it, bit for bit
                x, y = digits
                b.set_mode("train")
                b.stream(x[learned:], y[learned:])
                assert b.pull_params() == reference[-1]
    seconds = time.monotonic() - t0
    assert seen == set(range(BASE, BASE + MORE)), seen      # cuts inside every write (after the last: none)
    print(f"{len(cuts)} power cuts in {seconds:.1f} s ({seconds / len(cuts) * 1000:.0f} ms each)")


def test_a_killed_emulated_board_restores_its_newest_checkpoint(tmp_path, model, digits, reference):
    x, y = digits
    path = tmp_path / "qemu.storage"
    rng = random.Random(5)
    with QemuLinkBoard(storage=path) as qb, Board(qb.url, timeout=1.0) as b:
        b.push_model(to_blob(model))
        b.commit()
        b.configure(1)
    learned_before = 0
    for trial in range(4):
        with QemuLinkBoard(storage=path) as qb:
            with Board(qb.url, timeout=1.0) as b:
                ready = b.hello()
                assert ready.restored and ready.next_seq == learned_before
                assert b.pull_params() == reference[learned_before]
                b.set_mode("train")
                results = []
                delay = rng.uniform(0.0, 0.05)

                def kill_later():
                    time.sleep(delay)
                    os.killpg(qb.pid, signal.SIGKILL)   # power off, wherever the core is
                import threading
                killer = threading.Thread(target=kill_later)
                killer.start()
                try:
                    results = b.stream(x[learned_before:], y[learned_before:])
                except (LinkTimeout, BoardError, OSError):
                    pass
                killer.join()
            qb.wait(10)
        newest = storage.checkpoints(path, MODEL_BYTES)[0]
        acked = learned_before + sum(r is not None for r in results)
        assert acked <= newest.next_index <= len(x)
        assert newest.blob == reference[newest.next_index]
        learned_before = newest.next_index
    with QemuLinkBoard(storage=path) as qb, Board(qb.url, timeout=1.0) as b:
        b.set_mode("train")
        b.stream(x[learned_before:], y[learned_before:])
        assert b.pull_params() == reference[-1]
