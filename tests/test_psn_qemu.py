"""A PSN network learns a stream of samples on an emulated Cortex-M4F and an M7 (QEMU mps2-an386,
mps2-an500; targets/boards/mps2/psn_job.c with targets/c/el_psn.c and the C runtime's kernels, built
with the firmware's flags), bit for bit as the Python reference: every score of every sample, the
learned weights and both PRNG states. Needs qemu-system-arm and arm-none-eabi-gcc (.ci/run installs
both)."""
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgelearn.encoders import CODES, as_rows
from edgelearn.psnnet import FixedPSN, make_net
from edgelearn.resources import C_DIR
from firmware_host import qemu

ARENA = 64 * 1024


def pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def job(fx: FixedPSN, samples, labels, learn) -> bytes:
    net, a = fx.net, fx.arena
    rows = [np.ascontiguousarray(as_rows(x), dtype=np.uint8) for x in samples]
    wide = a["inp"].size
    head = [len(net.layers), fx.W.size, fx.taps.size, fx.th.size, a["ring"].size, a["xr"].size, wide, net.n_in,
            net.n_out, CODES[net.encoding], net.T, net.lr_weight_shift, net.surrogate_shift, int(fx.rng_in[0]),
            int(fx.rng_learn[0]), len(rows), rows[0].size, rows[0].shape[0]]
    out = b"ELPJ" + np.array(head, dtype="<i8").astype("<u4").tobytes()
    out += fx.tab.astype("<u4").tobytes()
    out += pad4(fx.W.astype("<i2").tobytes()) + pad4(fx.taps.astype("i1").tobytes()) + fx.th.astype("<i4").tobytes()
    out += pad4(b"".join(r.tobytes() for r in rows))
    out += b"".join(np.array([labels[i], int(learn[i])], dtype="<i4").tobytes() for i in range(len(rows)))
    return out


def run_on_board(fx: FixedPSN, samples, labels, learn, board: str) -> dict:
    elf = qemu.build_firmware([str(Path(qemu.BOARD_DIR) / "psn_job.c"), str(C_DIR / "el_psn.c")], board,
                              runtime=True, name="psn_job",
                              defines={"PSN_ARENA_BYTES": ARENA, "EDGELEARN_ARENA_BYTES": 8,
                                       "BOARD_JOB_ADDR": f"{qemu.JOB_ADDR[board]:#x}u"})
    n, n_out = len(samples), fx.net.n_out
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.bin"
        path.write_bytes(job(fx, samples, labels, learn))
        with qemu.QemuBoard(elf, board, preload=[(path, qemu.JOB_ADDR[board])], timeout=120) as b:
            assert b.read_exactly(4) == b"ELPR"
            assert int.from_bytes(b.read_exactly(4), "little") == 0, "the board refused the job"
            scores = np.frombuffer(b.read_exactly(8 * n * n_out), dtype="<i8").reshape(n, n_out)
            W = np.frombuffer(b.read_exactly(2 * fx.W.size), dtype="<i2")
            rng = np.frombuffer(b.read_exactly(8), dtype="<u4")
            assert b.read_exactly(4) == b"END!"
            assert b.wait() == 0
    return {"scores": scores, "W": W, "rng_in": int(rng[0]), "rng_learn": int(rng[1])}


@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500"])
def test_a_psn_network_learns_a_stream_on_the_core_bit_exactly(board):
    net = make_net([5, 12, 8, 3], taps=3, dilations=[1, 3], seed=2, T=20, weight_scale=2.0, threshold=0.25,
                   lr_weight_shift=4, encoding="rate" if board == "mps2-an500" else "sequence")
    rng = np.random.default_rng(5)
    for ly in net.layers[:-1]:
        ly.taps[:] = rng.choice([-3, -2, -1, 1, 2, 3, 15], size=ly.taps.shape)
    n = 16
    xs = rng.integers(0, 256, (n, 20, 5) if net.encoding == "sequence" else (n, 5)).astype(np.uint8)
    ys = rng.integers(0, 3, n)
    learn = np.ones(n, dtype=bool)
    learn[12:] = False                                     # the last four: inference only
    ref = FixedPSN(net)
    board_out = run_on_board(FixedPSN(net), xs, ys, learn, board)
    want = np.stack([ref.run(xs[i:i + 1], ys[i:i + 1], bool(learn[i]))[0] for i in range(n)])
    assert np.array_equal(board_out["scores"], want)
    assert np.array_equal(board_out["W"], ref.W)
    assert (board_out["rng_in"], board_out["rng_learn"]) == (int(ref.rng_in[0]), int(ref.rng_learn[0]))
    assert not np.array_equal(ref.W, FixedPSN(net).W) and want.any()      # it learned, and it was heard
