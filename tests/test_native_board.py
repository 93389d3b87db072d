"""The firmware's main loop (targets/firmware) as a native board process, driven over a real
TCP socket through pyserial by firmware_host.Board: on-device learning bit for bit with the
C runtime on the host, a fault-injecting link, bad frames and models, a host killed mid-push."""
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgelearn.datasets import load_digits
from edgelearn.model import Learning, init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.modelfile import load_model
from edgelearn.executors.c import NativeSTOP
from firmware_host import frames as fr
from firmware_host.board import Board, BoardError, LinkTimeout
from firmware_host.native_board import NativeBoard
from fault_proxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
N = 240


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return ds.x_train[:N], ds.y_train[:N]


@pytest.fixture(scope="module")
def model():
    return load_model(ROOT / "models" / "digits-stop.json")


@pytest.fixture(scope="module")
def reference(model, digits):
    """The sealed blob after NativeSTOP learned the same stream online, and its predictions."""
    x, y = digits
    net = NativeSTOP(model)
    preds = [int(np.argmax(net.run(x[i:i + 1], y[i:i + 1], True)[0])) for i in range(len(x))]
    return net.blob(), preds


@pytest.fixture
def board():
    with NativeBoard() as nb:
        yield nb
    assert not nb.alive


def train_on(url, model, digits, **kw):
    x, y = digits
    with Board(url, **kw) as b:
        b.push_model(to_blob(model))
        b.commit()
        b.set_mode("train")
        results = b.stream(x, y)
        return b, results, b.pull_params(), b.stats(), b.seqlog()


def test_on_device_learning_equals_the_host_runtime_bit_for_bit(board, model, digits, reference):
    b, results, pulled, stats, log = train_on(board.url, model, digits)
    assert pulled == reference[0]              # every weight, threshold, leak, rate, the CRC
    assert from_blob(pulled).params.keys() == model.params.keys()
    assert [r.predicted for r in results] == reference[1]
    assert all(r.learned and r.steps == model.learning.T and not r.cutoff for r in results)
    assert stats["learned"] == N and stats["next_seq"] == N and log == list(range(N))
    assert stats["steps"] == N * model.learning.T and stats["stopped_early"] == 0
    assert b.counters.retransmissions == 0


def test_a_faulty_link_changes_nothing(board, model, digits, reference):
    with FaultProxy(board.port, rate=0.04, seed=3, delay=0.02) as px:
        b, results, pulled, stats, log = train_on(px.url, model, digits, timeout=0.15, retries=30)
        faults = dict(px.faults)
    assert sum(faults.values()) >= 0.02 * px.frames and all(faults.values()), faults
    assert pulled == reference[0]
    assert log == list(range(N))               # none learned twice, none skipped
    assert [r.predicted for r in results] == reference[1]
    assert b.counters.retransmissions > 0
    assert stats["learned"] == N
    assert stats["duplicates"] + stats["gaps"] + stats["bad_crc"] + stats["bad_frame"] > 0


def raw_frame(b, wire):
    """Send raw wire bytes; the next frame that comes back."""
    import time
    b.ser.write(wire)
    return b._recv(time.monotonic() + 2)


def test_bad_frames_and_models_are_refused_and_the_old_model_stays(board, model):
    blob = to_blob(model)
    with Board(board.url) as b:
        b.push_model(blob)
        b.commit()
        before = b.hello()
        assert before.has_model and before.active_size == len(blob)
        # wrong CRC
        wire = bytearray(fr.encode(fr.Frame(fr.HELLO, 5)))
        wire[2] ^= 0x40
        got = raw_frame(b, bytes(wire))
        assert got.type == fr.ERROR and fr.ERRORS[got.payload[0]] == "BAD_CRC" and got.tag == fr.NO_TAG
        # wrong version
        got = raw_frame(b, fr.encode(fr.Frame(fr.HELLO, 6, version=9)))
        assert got.type == fr.ERROR and fr.ERRORS[got.payload[0]] == "BAD_VERSION" and got.tag == 6
        # unknown type
        with pytest.raises(BoardError, match="BAD_TYPE"):
            b.call(0x77)
        # truncated push, then commit
        b.call(fr.PUSH_BEGIN, struct.pack("<IIIB", len(blob), zlib.crc32(blob), 2, 0))
        b.call(fr.PUSH_CHUNK, struct.pack("<I", 0) + blob[:500])
        with pytest.raises(BoardError, match="PUSH_GAP"):
            b.call(fr.PUSH_CHUNK, struct.pack("<I", 1000) + blob[1000:1500])
        with pytest.raises(BoardError, match="PUSH_INCOMPLETE"):
            b.commit(len(blob), zlib.crc32(blob))
        # complete push whose bytes do not match the whole-model CRC
        bad = bytearray(blob)
        bad[-1] ^= 1
        b.call(fr.PUSH_BEGIN, struct.pack("<IIIB", len(bad), zlib.crc32(blob), 2, 0))
        b.call(fr.PUSH_CHUNK, struct.pack("<I", 0) + bytes(bad[:1000]))
        b.push_model(bytes(bad))               # a push of a model the loader refuses (its own CRC)
        with pytest.raises(BoardError, match="MODEL_REFUSED") as e:
            b.commit()
        assert e.value.detail == 8             # EL_ERR_CRC
        # a model larger than the model area
        with pytest.raises(BoardError, match="TOO_BIG"):
            b.push_model(bytes(before.model_bytes + 8))
        # a model whose arena does not fit: per-sample updates keep an int64 per synapse
        wide = init_params(mlp("wide", [64, 128, 10]))
        wide.learning = Learning(rule="stop", T=4, update="sample")
        big = to_blob(wide)
        assert NativeSTOP(wide).arena_bytes() > before.arena_bytes
        b.push_model(big)
        with pytest.raises(BoardError, match="ARENA_TOO_SMALL"):
            b.commit()
        after = b.hello()
        assert (after.has_model, after.active_size, after.active_crc) == (True, len(blob), before.active_crc)
        assert b.pull_params() == blob         # nothing learned: the very bytes pushed
        assert b.stats()["errors_sent"] >= 8


def test_a_host_killed_mid_push_leaves_the_old_model_active(board, model, digits):
    old = to_blob(model)
    x, y = digits
    with Board(board.url) as b:
        b.push_model(old)
        b.commit()
    other = init_params(mlp("other", [64, 32, 10]))
    new = to_blob(other)
    script = textwrap.dedent(f"""
        import sys, time
        from firmware_host import keys
        from firmware_host.board import Board
        b = Board({board.url!r}, key=keys.parse({board.key.text()!r}))
        blob = bytes.fromhex({new.hex()!r})
        b.push_model(blob, chunk=200, progress=lambda o, n: (print(o, flush=True), time.sleep(0.02)))
        print("done", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if int(line) >= 2000:              # well inside the push
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with Board(board.url) as b:                # reconnect: the board answers, the old model runs
        ready = b.hello()
        assert (ready.has_model, ready.active_size, ready.active_crc) == (True, len(old), zlib.crc32(old))
        with pytest.raises(BoardError, match="PUSH_INCOMPLETE"):
            b.commit(len(new), zlib.crc32(new))
        b.set_mode("infer")
        assert all(r is not None for r in b.stream(x[:8], y[:8]))
        assert b.pull_params()[:len(old)] != b"" and len(b.pull_params()) == len(old)
        b.push_model(new)                      # a clean restart of the push then succeeds
        b.commit()
        assert b.hello().active_crc == zlib.crc32(new)
        assert b.pull_params() == new


def test_a_silent_port_raises_a_clear_error():
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        with Board(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=0.05, retries=2) as b:
            with pytest.raises(LinkTimeout, match="no answer"):
                b.hello()
    finally:
        srv.close()
    with pytest.raises(LinkTimeout, match="cannot open"):
        Board("socket://127.0.0.1:1", timeout=0.05)


def test_a_link_closed_under_a_write_is_a_link_error_not_a_serial_traceback():
    import socket
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        with Board(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=0.05, retries=3) as b:
            conn, _ = srv.accept()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()                           # a reset: the next writes fail
            with pytest.raises(LinkTimeout, match="link lost"):
                for _ in range(20):
                    b.hello()
    finally:
        srv.close()


def test_loop_url_works_with_the_codec():
    with Board("loop://", timeout=0.05, retries=0) as b:
        with pytest.raises(LinkTimeout):       # loop:// echoes our own request, which is no answer
            b.hello()
