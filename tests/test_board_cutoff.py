"""Anytime inference on the boards (docs/numerics.md §6b, docs/protocol.md): mode "cutoff" of
the firmware on the native board and on the emulated Cortex-M4F / M7, driven over real TCP
sockets by firmware_host.Board. The same model, margins and stream give the same predictions
AND steps on the board as the Python reference (FixedSTOP) and the host's C runtime
(NativeSTOP), for direct and rate encodings: a rate-coded sample draws inputs only for the
steps it ran, so a board stopping one step off would show in every later sample. A model
without margins refuses the mode and keeps working; a duplicate sample returns the steps it
used; the old model (and its mode) stays after a bad push; a board of another protocol
version is named as such. These need qemu-system-arm and arm-none-eabi-gcc and FAIL (never
skip) without them."""
import dataclasses
import struct
import time
import zlib

import numpy as np
import pytest

from edgelearn.datasets import load_digits
from edgelearn.executors import make_learner
from edgelearn.model import Cutoff, Learning, init_params, mlp
from edgelearn.modelblob import to_blob
from firmware_host import frames as fr
from firmware_host.board import Board, BoardError, Result, VersionMismatch
from firmware_host.native_board import NativeBoard
from firmware_host.qemu import BOARDS, QemuLinkBoard

TRAIN, CAL, TEST = 400, 300, 160


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def calibrate(model, x) -> tuple[int, ...]:
    """Margins that never stop a calibration sample on another class than its full-T one: at
    step t, the largest top-2 gap among the samples whose leader at t is not their final class
    (the tests' own rule; edgelearn.cutoff is the real calibration)."""
    traj = make_learner(model, "fixed").score_trajectories(x)
    top2 = np.sort(traj, axis=2)
    gap = top2[:, :, -1] - top2[:, :, -2]
    lead, final = traj.argmax(2), traj[:, -1].argmax(1)
    T = traj.shape[1]
    return tuple(int(gap[lead[:, t] != final, t].max(initial=0)) for t in range(T - 1)) + (0,)


def trained(digits, encoding: str, T: int):
    """A 64-64-10 STOP model learned online on the host (C runtime), with calibrated margins."""
    model = init_params(mlp(f"digits-{encoding}", [64, 64, 10], encoding=encoding,
                            learning=Learning(rule="stop", T=T)))
    learner = make_learner(model, "c")
    for i in range(TRAIN):
        learner.run(digits.x_train[i:i + 1], digits.y_train[i:i + 1], True)
    model = learner.to_model()
    margins = calibrate(model, digits.x_train[TRAIN:TRAIN + CAL])
    return dataclasses.replace(model, cutoff=Cutoff(margins, 0.05))


@pytest.fixture(scope="module")
def models(digits):
    return {"direct": trained(digits, "direct", 8), "rate": trained(digits, "rate", 16)}


class Reference:
    """Both host executors fed the board's stream from the same fresh state (a commit)."""

    def __init__(self, model):
        self.learners = {ex: make_learner(model, ex) for ex in ("fixed", "c")}

    def infer(self, x, cutoff: bool):
        got = {ex: lr.infer(x, cutoff=cutoff) for ex, lr in self.learners.items()}
        (s_f, st_f), (s_c, st_c) = got["fixed"], got["c"]
        assert np.array_equal(s_f, s_c) and np.array_equal(st_f, st_c), "the host executors disagree"
        return s_f.argmax(1), st_f


def check_stream(b: Board, model, x, ref: Reference, cutoff: bool):
    """Infer x on the board, with or without the cutoff, against the reference; the steps."""
    want_pred, want_steps = ref.infer(x, cutoff)
    before = b.stats()
    pred, steps = b.infer(x, cutoff=cutoff)
    after = b.stats()
    assert pred.tolist() == want_pred.tolist()
    assert steps.tolist() == want_steps.tolist()
    assert after["steps"] - before["steps"] == int(steps.sum())
    assert after["stopped_early"] - before["stopped_early"] == int(np.sum(steps < model.learning.T))
    assert after["mode"] == (2 if cutoff else 0)
    return steps


def run_both_encodings(url, models, digits):
    x = digits.x_test[:TEST]
    with Board(url) as b:
        for encoding, model in models.items():
            T = model.learning.T
            b.push_model(to_blob(model))
            b.commit()
            ready = b.hello()
            assert ready.can_cutoff and ready.model_cutoff and ready.T == T and ready.mode == 0
            ref = Reference(model)
            steps = check_stream(b, model, x, ref, cutoff=True)
            # a real cutoff: many samples stop early, some run all T steps
            assert 0.2 * len(x) < np.sum(steps < T) < len(x), (encoding, np.bincount(steps))
            assert len(set(steps.tolist())) >= 3
            # then full-T inference on the same session (the rate stream continues from where it was)
            assert check_stream(b, model, x[:40], ref, cutoff=False).tolist() == [T] * 40
            check_stream(b, model, x[40:80], ref, cutoff=True)


def test_the_native_board_stops_where_the_host_executors_do(models, digits):
    with NativeBoard() as nb:
        run_both_encodings(nb.url, models, digits)


@pytest.mark.parametrize("board", BOARDS)
def test_the_emulated_cores_stop_where_the_host_executors_do(board, models, digits):
    with QemuLinkBoard(board) as qb:
        run_both_encodings(qb.url, models, digits)


def sample_payload(stream_id: int, seq: int, x, label: int = -1) -> bytes:
    return struct.pack("<QIhH", stream_id, seq, label, 1) + np.asarray(x, dtype=np.uint8).tobytes()


def test_duplicates_return_the_steps_used_and_never_run_again(models, digits):
    model = models["rate"]
    x = digits.x_test[:TEST]
    with NativeBoard() as nb, Board(nb.url) as b:
        b.push_model(to_blob(model))
        b.commit()
        ref = Reference(model)
        b.set_mode("cutoff")
        first = b.stream(x[:50])
        want_pred, want_steps = ref.infer(x[:50], True)
        assert [r.steps for r in first] == want_steps.tolist() and all(r.cutoff for r in first)
        assert [r.predicted for r in first] == want_pred.tolist()
        for seq in (0, 13, 49, 30):             # retransmissions: re-acked from the ring
            again = Result.of(b.call(fr.SAMPLE, sample_payload(b.hello().stream_id, seq, x[seq]), expect=fr.RESULT))
            assert again.duplicate and again.cutoff and not again.learned
            assert (again.seq, again.predicted, again.steps) == (seq, first[seq].predicted, first[seq].steps)
        assert b.stats()["duplicates"] == 4
        # none of them ran again: the rate stream goes on exactly where the host's does
        check_stream(b, model, x[50:], ref, cutoff=True)
        assert b.seqlog() == list(range(TEST))


def test_a_model_without_margins_refuses_the_cutoff_and_keeps_working(models, digits):
    plain = dataclasses.replace(models["direct"], cutoff=None)
    x, y = digits.x_train[:60], digits.y_train[:60]
    with NativeBoard() as nb, Board(nb.url) as b:
        with pytest.raises(BoardError, match="has no model"):
            b.set_mode("cutoff")
        b.push_model(to_blob(plain))
        b.commit()
        ready = b.hello()
        assert not ready.model_cutoff and ready.can_cutoff
        b.set_mode("train")
        with pytest.raises(BoardError, match="has no cutoff margins: calibrate it") as e:
            b.set_mode("cutoff")
        assert e.value.name == "NO_CUTOFF"
        with pytest.raises(BoardError, match="NO_CUTOFF|no cutoff margins"):
            b.infer(x[:3], cutoff=True)
        assert b.hello().mode == 1               # refused: the board stays in the mode it was in
        ref = make_learner(plain, "c")
        results = b.stream(x, y)                 # still learning, every sample all T steps
        want = [int(np.argmax(ref.run(x[i:i + 1], y[i:i + 1], True)[0])) for i in range(len(x))]
        assert [r.predicted for r in results] == want
        assert all(r.learned and r.steps == plain.learning.T and not r.cutoff for r in results)
        assert b.pull_params() == ref.blob()
        with pytest.raises(BoardError, match="BAD_MODE"):
            b.call(fr.SET_MODE, bytes([3]))


def test_learning_is_never_cut_off(models, digits):
    """A model with margins learns in mode train as it would without them: all T steps, also
    right after mode cutoff (switching to train turns the runtime's cutoff off; the runtime's
    own guard, learning never cut off, is tested in tests/test_cutoff_exact.py)."""
    model = models["direct"]
    x, y = digits.x_train[TRAIN:TRAIN + 60], digits.y_train[TRAIN:TRAIN + 60]
    with NativeBoard() as nb, Board(nb.url) as b:
        b.push_model(to_blob(model))
        b.commit()
        b.set_mode("cutoff")
        b.set_mode("train")
        results = b.stream(x, y)
        ref = make_learner(model, "c")
        for i in range(len(x)):
            ref.run(x[i:i + 1], y[i:i + 1], True)
        assert all(r.learned and r.steps == model.learning.T for r in results)
        assert b.pull_params() == ref.blob()


def test_the_old_model_and_its_mode_stay_after_a_bad_push_and_a_commit_resets_the_mode(models, digits):
    model, other = models["rate"], dataclasses.replace(models["direct"], cutoff=None)
    x = digits.x_test[:TEST]
    blob = to_blob(model)
    with NativeBoard() as nb, Board(nb.url) as b:
        b.push_model(blob)
        b.commit()
        ref = Reference(model)
        check_stream(b, model, x[:40], ref, cutoff=True)
        bad = bytearray(to_blob(other))
        bad[-1] ^= 1                             # the loader refuses it (its own CRC)
        b.push_model(bytes(bad))
        with pytest.raises(BoardError, match="MODEL_REFUSED"):
            b.commit()
        ready = b.hello()
        assert (ready.active_size, ready.active_crc) == (len(blob), zlib.crc32(blob))
        assert (ready.model_cutoff, ready.mode, ready.T, ready.next_seq) == (True, 2, 16, 40)
        # still in mode cutoff, the same session: the stream goes on as the host's
        results = b.stream(x[40:80])
        want_pred, want_steps = ref.infer(x[40:80], True)
        assert [r.predicted for r in results] == want_pred.tolist()
        assert [r.steps for r in results] == want_steps.tolist()
        # a good commit starts a new session in mode infer: the new model has no margins
        b.push_model(to_blob(other))
        b.commit()
        ready = b.hello()
        assert (ready.mode, ready.model_cutoff, ready.T, ready.next_seq) == (0, False, 8, 0)
        results = b.stream(x[:20])
        assert all(r.steps == 8 and not r.cutoff for r in results)
        want_pred, _ = Reference(other).infer(x[:20], False)
        assert [r.predicted for r in results] == want_pred.tolist()


def test_another_protocol_version_is_named_not_misread():
    with NativeBoard() as nb, Board(nb.url) as b:
        b.ser.write(fr.encode(fr.Frame(fr.HELLO, 9, version=2)))      # an old host's request
        got = b._recv(time.monotonic() + 2)
        code, req, value, detail = struct.unpack("<HBxIi", got.payload[:12])
        assert (got.type, fr.ERRORS[code], value, detail) == (fr.ERROR, "BAD_VERSION", fr.VERSION, 2)
        assert b.hello().version == fr.VERSION == 3
    with NativeBoard(defines={"EL_LINK_VERSION": "2u"}) as old, Board(old.url) as b:  # a board of version 2
        with pytest.raises(VersionMismatch, match="speaks link protocol version 2, this host version 3: flash"):
            b.hello()
        with pytest.raises(VersionMismatch):
            b.stream(np.zeros((2, 64), dtype=np.uint8))


def test_a_faulty_link_changes_no_stop(models, digits):
    """Frames dropped, corrupted, duplicated, delayed: retransmitted samples are re-acked from the
    ring with the steps they used, and the rate stream never draws for a sample twice."""
    from fault_proxy import FaultProxy

    model = models["rate"]
    x = digits.x_test[:TEST]
    with NativeBoard() as nb, FaultProxy(nb.port, rate=0.05, seed=7, delay=0.02) as px:
        with Board(px.url, timeout=0.15, retries=30) as b:
            b.push_model(to_blob(model))
            b.commit()
            pred, steps = b.infer(x, cutoff=True)
            stats, log = b.stats(), b.seqlog()
            retransmissions = b.counters.retransmissions
        faults = sum(px.faults.values())
    want_pred, want_steps = Reference(model).infer(x, True)
    assert pred.tolist() == want_pred.tolist() and steps.tolist() == want_steps.tolist()
    assert log == list(range(TEST)) and stats["inferred"] == TEST and stats["steps"] == int(steps.sum())
    assert faults > 0 and retransmissions > 0
