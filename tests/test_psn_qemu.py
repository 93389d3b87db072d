"""A PSN network on the emulated cores, as a model of psn layers (edgelearn.psnnet.to_model): the
C runtime of every firmware runs it like any model. On QEMU mps2-an386 (M4F) and mps2-an500 (M7)
the runtime firmware (runtime.c) learns a stream bit for bit as the Python reference (every
prediction, every learned parameter); over the link protocol the protocol firmware takes the
model's blob by push, learns a stream of sequences, and the pulled parameters and the
predictions equal the reference's; a blob whose FILTER section is damaged is refused and the
board keeps the model it had. Needs qemu-system-arm and arm-none-eabi-gcc (.ci/run installs both);
FAILS without them."""
import zlib

import numpy as np
import pytest

from edgelearn.modelblob import SECTION_FILTER, blob_crc, from_blob, to_blob
from edgelearn.psnnet import make_net, to_model
from edgelearn.rules.stop.fixed import FixedSTOP
from firmware_host import qemu
from firmware_host.board import Board, BoardError
from firmware_host.qemu import QemuLinkBoard


def network(encoding: str, seed: int = 2):
    """Two hidden psn layers (a sawtooth of dilations 1, 3), taps of every sign and size."""
    net = make_net([5, 12, 8, 3], taps=3, dilations=[1, 3], seed=seed, T=20, weight_scale=2.0, threshold=0.25,
                   lr_weight_shift=4, encoding=encoding)
    rng = np.random.default_rng(5)
    for ly in net.layers[:-1]:
        ly.taps[:] = rng.choice([-3, -2, -1, 1, 2, 3, 15], size=ly.taps.shape)
    return net


def stream(net, n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    shape = (n, net.T, net.n_in) if net.encoding == "sequence" else (n, net.n_in)
    return rng.integers(0, 256, shape).astype(np.uint8), rng.integers(0, net.n_out, n)


def reference(model, xs, ys, learn):
    ref = FixedSTOP(model)
    predicted = [int(np.argmax(ref.run(xs[i:i + 1], ys[i:i + 1], bool(learn[i]))[0])) for i in range(len(xs))]
    return ref.to_model(), predicted


@pytest.mark.parametrize("board, encoding", [("mps2-an386", "sequence"), ("mps2-an500", "rate")])
def test_the_runtime_firmware_learns_a_psn_stream_bit_exactly(board, encoding):
    net = network(encoding)
    model = to_model(net)
    xs, ys = stream(net, 16)
    learn = np.ones(16, dtype=bool)
    learn[12:] = False                                     # the last four: inference only
    out = qemu.run_runtime(to_blob(model), xs, ys, learn, board=board)
    assert out["exit"] == 0 and not out["status"].any()
    learned, predicted = reference(model, xs, ys, learn)
    assert out["prediction"].tolist() == predicted
    assert out["blob"] == to_blob(learned)                 # every weight, bit for bit
    assert out["blob"] != to_blob(model)                   # and it learned


def damaged_filter(blob: bytes) -> bytes:
    """The blob with its first FILTER section's reserved byte set, the CRC made right again: only
    the loader's own checks can refuse it."""
    data = bytearray(blob)
    count, table = int.from_bytes(data[12:16], "little"), int.from_bytes(data[16:20], "little")
    for k in range(count):
        entry = table + 12 * k
        if int.from_bytes(data[entry:entry + 2], "little") == SECTION_FILTER:
            data[int.from_bytes(data[entry + 4:entry + 8], "little") + 1] = 1
            break
    data[20:24] = bytes(4)
    data[20:24] = blob_crc(bytes(data)).to_bytes(4, "little")
    return bytes(data)


def test_a_psn_model_is_pushed_learns_a_stream_and_is_pulled_over_the_link():
    net = network("sequence", seed=3)
    model = to_model(net)
    blob = to_blob(model)
    n = 40
    xs, ys = stream(net, n, seed=7)
    learned, predicted = reference(model, xs, ys, np.ones(n, dtype=bool))
    with QemuLinkBoard("mps2-an386") as qb, Board(qb.url, timeout=1.0) as b:
        b.push_model(blob)
        b.commit()
        b.set_mode("train")
        results = b.stream(xs, ys)
        assert [r.predicted for r in results] == predicted
        assert all(r.learned for r in results)
        pulled = b.pull_params()
        assert pulled == to_blob(learned)                  # every parameter, bit for bit
        assert from_blob(pulled).layers == model.layers    # the same psn layers, taps and dilations

        bad = damaged_filter(pulled)
        assert bad != pulled and zlib.crc32(bad) != zlib.crc32(pulled)
        b.push_model(bad)
        with pytest.raises(BoardError, match="MODEL_REFUSED"):
            b.commit()
        ready = b.hello()
        assert ready.has_model and ready.active_crc == zlib.crc32(blob)     # the board kept its model
        assert b.pull_params() == pulled                                    # and what it learned
        b.set_mode("infer")
        again = b.stream(xs[:5], ys[:5])
    ref = FixedSTOP(learned)
    assert [r.predicted for r in again] == [int(np.argmax(ref.run(xs[i:i + 1], None, False)[0])) for i in range(5)]
