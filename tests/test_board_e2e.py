"""End to end on an emulated Cortex-M4F (QEMU mps2-an386) over a real TCP socket: the
protocol firmware (targets/firmware main loop + link protocol + the C runtime + the mps2
board support), driven by firmware_host.Board through pyserial. Push the digits model,
stream 1000 training samples with on-device learning, pull: every parameter equals the Python
reference (FixedSTOP / FixedSPIDE) fed the same stream; then infer on the 450 test samples:
the device predicts exactly what the host predicts. A second client reconnecting to the same
board finds the model and what it learned; a fault-injecting proxy changes nothing.
These tests need qemu-system-arm and arm-none-eabi-gcc and FAIL (never skip) without them."""
import os
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgelearn.datasets import load_digits
from edgelearn.rules.spide.fixed import FixedSPIDE
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.modelfile import load_model
from firmware_host import keys
from firmware_host.board import Board
from fault_proxy import FaultProxy
from firmware_host.qemu import QemuLinkBoard, protocol_firmware

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN = 1000
REFERENCE = {"stop": FixedSTOP, "spide": FixedSPIDE}
TIMEOUT = 1.0                  # the emulated UART carries ~25 KiB/s host -> device


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:       # a zombie not yet reaped counts as gone
        return f.read().split(")")[-1].split()[0] == "Z"


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def reference(rule, ds, n):
    """The Python reference fed the same stream: learned blob, training and test predictions."""
    model = load_model(ROOT / "models" / f"digits-{rule}.json")
    net = REFERENCE[rule](model)
    x, y = ds.x_train[:n], ds.y_train[:n]
    train = [int(np.argmax(net.run(x[i:i + 1], y[i:i + 1], True)[0])) for i in range(n)]
    learned = net.to_model()
    test = [int(np.argmax(net.run(ds.x_test[i:i + 1], None, False)[0])) for i in range(len(ds.x_test))]
    return model, learned, train, test


def assert_same_params(pulled: bytes, learned):
    got = from_blob(pulled)
    assert got.params.keys() == learned.params.keys()
    for name, p in learned.params.items():
        for field in ("weight", "threshold", "leak"):
            want = getattr(p, field, None)
            if want is not None:
                np.testing.assert_array_equal(getattr(got.params[name], field), want, err_msg=f"{name}.{field}")
    assert pulled == to_blob(learned)          # and the whole blob, learning rates and CRC included


@pytest.mark.parametrize("rule", ["stop", "spide"])
def test_on_device_learning_on_the_emulated_m4_equals_the_reference(rule, digits):
    model, learned, ref_train, ref_test = reference(rule, digits, N_TRAIN)
    blob = to_blob(model)
    x, y = digits.x_train[:N_TRAIN], digits.y_train[:N_TRAIN]
    with QemuLinkBoard("mps2-an386") as qb:
        pid = qb.pid
        with Board(qb.url, timeout=TIMEOUT) as b:
            ready = b.hello()
            assert ready.name == "mps2-an386" and not ready.has_model
            b.push_model(blob)
            b.commit()
            b.set_mode("train")
            results = b.stream(x, y)
        assert [r.predicted for r in results] == ref_train
        assert all(r.learned and not r.duplicate for r in results)

        with Board(qb.url, timeout=TIMEOUT) as b:   # a new client: the board kept model and learning
            ready = b.hello()
            assert (ready.has_model, ready.active_size, ready.active_crc) == (True, len(blob), zlib.crc32(blob))
            assert (ready.mode, ready.next_seq) == (1, N_TRAIN)
            pulled = b.pull_params()
            assert_same_params(pulled, learned)
            assert b.seqlog() == list(range(N_TRAIN))  # each sample learned once, none skipped
            stats = b.stats()
            assert stats["learned"] == N_TRAIN and stats["errors_sent"] == 0

            b.set_mode("infer")
            before = stats["correct"]
            tests = b.stream(digits.x_test, digits.y_test)
            stats = b.stats()
            assert b.pull_params() == pulled           # inference learns nothing
        preds = [r.predicted for r in tests]
        assert preds == ref_test                       # the same prediction for every test sample
        device_acc = (stats["correct"] - before) / len(digits.x_test)
        host_acc = float(np.mean(np.asarray(ref_test) == digits.y_test))
        assert stats["inferred"] == len(digits.x_test) and device_acc == host_acc
        assert device_acc > 0.5, device_acc
    assert _gone(pid)


def test_a_faulty_link_to_the_emulated_board_changes_nothing(digits):
    n = 300
    model, learned, ref_train, _ = reference("stop", digits, n)
    x, y = digits.x_train[:n], digits.y_train[:n]
    with QemuLinkBoard() as qb, FaultProxy(qb.port, rate=0.04, seed=5, delay=0.05) as px:
        with Board(px.url, timeout=0.3, retries=30) as b:
            b.push_model(to_blob(model))
            b.commit()
            b.set_mode("train")
            results = b.stream(x, y)
            pulled = b.pull_params()
            stats, log = b.stats(), b.seqlog()
        faults = dict(px.faults)
    assert sum(faults.values()) >= 0.02 * px.frames, (faults, px.frames)
    assert b.counters.retransmissions > 0
    assert log == list(range(n))               # none learned twice, none skipped
    assert stats["learned"] == n
    assert [r.predicted for r in results] == ref_train
    assert_same_params(pulled, learned)


def test_no_orphan_on_exceptions_and_a_detached_board_outlives_its_launcher():
    protocol_firmware()                        # built before timing anything
    with pytest.raises(RuntimeError, match="boom"):
        with QemuLinkBoard() as qb:
            pid = qb.pid
            assert qb.url == f"socket://127.0.0.1:{qb.port}" and qb.board == "mps2-an386"
            raise RuntimeError("boom")
    assert _gone(pid)

    script = textwrap.dedent("""
        from firmware_host.qemu import QemuLinkBoard
        qb = QemuLinkBoard(detach=True)
        print(qb.pid, qb.url, qb.log, qb.storage, qb.key.text(), flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pid, url, log, storage, *key = out.stdout.split()
    pid, key = int(pid), keys.parse(" ".join(key))
    try:
        assert not _gone(pid)                  # the launcher is gone, the board is not
        with Board(url, timeout=TIMEOUT, key=key) as b:
            assert b.hello().name == "mps2-an386"
        with Board(url, timeout=TIMEOUT, key=key) as b:
            b.exit(3)                          # semihosting exit ends QEMU
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid)
    finally:
        if not _gone(pid):
            os.killpg(pid, 9)
        Path(log).unlink(missing_ok=True)
        Path(storage).unlink(missing_ok=True)
