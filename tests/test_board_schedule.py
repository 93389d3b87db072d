"""The learning-rate schedule on the boards (docs/numerics.md §6c, docs/protocol.md): a model
with a SCHEDULE section pushed to the firmware on the native board and on the emulated
Cortex-M4F / M7 learns a stream whose decay changes within it, and the pulled blob equals the
host reference's (FixedSTOP, FixedSPIDE) run on the same samples bit for bit: every weight,
threshold, leak, and the count of samples learned in the SCHEDULE section. Inference and
retransmitted samples never count; a pulled model pushed again goes on where it stopped; a
board whose loader reads only blob versions up to 2 refuses the model with its version error
and keeps the old one. The emulated boards need qemu-system-arm and arm-none-eabi-gcc and
FAIL (never skip) without them."""
import dataclasses
import struct

import numpy as np
import pytest
from blob_bytes import SCHEDULE, section

from edgelearn.datasets import load_digits
from edgelearn.executors import make_learner
from edgelearn.model import Learning, Schedule, init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.rules.spide.spec import spide_mlp
from firmware_host.board import EL_ERR_VERSION, Board, BoardError
from firmware_host.native_board import NativeBoard
from firmware_host.qemu import BOARDS, QemuLinkBoard

N = 90
EVERY, STEPS = 30, 2                   # the rates halve after 30 and after 60 learned samples


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return ds.x_train[:2 * N], ds.y_train[:2 * N]


def stop_model(update: str = "step", encoding: str = "direct", learned: int = 0):
    learning = Learning(rule="stop", T=8, update=update, seed=3, lr_weight_shift=4)
    model = init_params(mlp(f"digits-schedule-{update}-{encoding}", [64, 48, 10], encoding=encoding,
                            learning=learning))
    model.schedule = Schedule(EVERY, STEPS, learned)
    return model.validate()


def spide_model():
    model = spide_mlp("digits-spide-schedule", [64, 32, 10], T=16, Tb=16, lr_weight_shift=3)
    model.schedule = Schedule(EVERY, STEPS)
    return model.validate()


def reference(model, x, y, learn=True):
    """The host reference (the fixed executor) on the same stream, sample by sample."""
    ref = make_learner(model, "fixed")
    preds = [int(np.argmax(ref.run(x[i:i + 1], y[i:i + 1] if learn else None, learn)[0])) for i in range(len(x))]
    return ref, preds


def learned_in(blob: bytes) -> int:
    every, steps, learned, reserved = struct.unpack_from("<IIII", blob, section(blob, SCHEDULE)[1])
    assert (every, steps, reserved) == (EVERY, STEPS, 0)
    return learned


def learn_on(b: Board, model, x, y):
    b.push_model(to_blob(model))
    b.commit()
    b.set_mode("train")
    return b.stream(x, y)


def check_learning(url, model, x, y):
    """Push, learn the stream, pull: the blob and the predictions of the reference."""
    ref, want = reference(model, x, y)
    with Board(url) as b:
        assert b.hello().can_schedule
        results = learn_on(b, model, x, y)
        pulled = b.pull_params()
        stats = b.stats()
    assert [r.predicted for r in results] == want
    assert all(r.learned for r in results) and stats["learned"] == len(x)
    assert learned_in(pulled) == len(x) and from_blob(pulled).schedule == Schedule(EVERY, STEPS, len(x))
    assert pulled == to_blob(ref.to_model())              # every parameter and the count, bit for bit
    return pulled


@pytest.mark.parametrize("update", ["step", "sample"])
def test_the_native_board_runs_the_schedule_as_the_host_reference(digits, update):
    x, y = digits
    with NativeBoard() as nb:
        pulled = check_learning(nb.url, stop_model(update), x[:N], y[:N])
    # the schedule changed what was learned: the same stream without it ends elsewhere
    plain = dataclasses.replace(stop_model(update), schedule=None)
    ref, _ = reference(plain, x[:N], y[:N])
    assert from_blob(pulled).params["fc1"].weight.tobytes() != ref.to_model().params["fc1"].weight.tobytes()


def test_the_native_board_runs_spide_with_a_schedule_as_the_host_reference(digits):
    x, y = digits
    with NativeBoard() as nb:
        check_learning(nb.url, spide_model(), x[:N], y[:N])


@pytest.mark.parametrize("board", BOARDS)
def test_the_emulated_cores_run_the_schedule_as_the_host_reference(board, digits):
    x, y = digits
    with QemuLinkBoard(board) as qb:
        check_learning(qb.url, stop_model("step", encoding="rate"), x[:N], y[:N])


def test_inference_does_not_count_and_a_pushed_model_goes_on_where_it_stopped(digits):
    x, y = digits
    model = stop_model()
    half = N // 2 + 5                      # past the first decay point, short of the second
    with NativeBoard() as nb, Board(nb.url) as b:
        learn_on(b, model, x[:half], y[:half])
        b.set_mode("infer")
        b.stream(x[half:half + 20])        # inference: counts nothing, changes nothing
        first = b.pull_params()
        assert learned_in(first) == half
        ref, _ = reference(model, x[:half], y[:half])
        assert first == to_blob(ref.to_model())
        # pushed again (a new session: the PRNG streams start again from the seed, the count does not)
        resumed = from_blob(first)
        assert resumed.schedule == Schedule(EVERY, STEPS, half)
        results = learn_on(b, resumed, x[half:N], y[half:N])
        second = b.pull_params()
    ref, want = reference(resumed, x[half:N], y[half:N])
    assert [r.predicted for r in results] == want
    assert learned_in(second) == N and second == to_blob(ref.to_model())


def test_a_faulty_link_never_counts_a_sample_twice(digits):
    from fault_proxy import FaultProxy

    x, y = digits
    model = stop_model("sample")
    with NativeBoard() as nb, FaultProxy(nb.port, rate=0.05, seed=11, delay=0.02) as px:
        with Board(px.url, timeout=0.15, retries=30) as b:
            learn_on(b, model, x[:N], y[:N])
            pulled = b.pull_params()
            retransmissions = b.counters.retransmissions
    ref, _ = reference(model, x[:N], y[:N])
    assert retransmissions > 0
    assert learned_in(pulled) == N and pulled == to_blob(ref.to_model())


def test_a_board_that_reads_only_version_2_refuses_a_schedule_and_keeps_its_model(digits):
    x, y = digits
    model = stop_model()
    plain = dataclasses.replace(model, schedule=None)
    with NativeBoard(defines={"EL_LOADER_VERSION": "2u"}) as old, Board(old.url) as b:
        assert not b.hello().can_schedule and b.hello().can_cutoff
        results = learn_on(b, plain, x[:20], y[:20])           # a version-1 blob: it learns as ever
        assert all(r.learned for r in results)
        before = b.hello()
        b.push_model(to_blob(model))
        with pytest.raises(BoardError, match="does not read model blob format version 3") as e:
            b.commit()
        assert (e.value.name, e.value.detail) == ("MODEL_REFUSED", EL_ERR_VERSION)
        after = b.hello()
        assert (after.active_size, after.active_crc, after.mode, after.next_seq) == \
            (before.active_size, before.active_crc, before.mode, before.next_seq)
        pulled = b.pull_params()
    ref, _ = reference(plain, x[:20], y[:20])
    assert pulled == to_blob(ref.to_model())


def test_the_runtime_on_the_core_counts_and_decays_as_the_host_reference(digits):
    """runtime.c on the emulated Cortex-M4F (no link): an accumulating model, learning and
    inference interleaved; the sealed blob it sends back carries the count."""
    from firmware_host import qemu

    x, y = digits
    model = stop_model("sample")
    learn = np.ones(N, dtype=bool)
    learn[10:20] = False                   # inference in between: not counted
    out = qemu.run_runtime(to_blob(model), x[:N], y[:N], learn)
    assert out["exit"] == 0 and not out["status"].any()
    ref = make_learner(model, "fixed")
    want = [int(np.argmax(ref.run(x[i:i + 1], y[i:i + 1] if learn[i] else None, bool(learn[i]))[0]))
            for i in range(N)]
    assert out["prediction"].tolist() == want
    assert learned_in(out["blob"]) == int(learn.sum()) and out["blob"] == to_blob(ref.to_model())
