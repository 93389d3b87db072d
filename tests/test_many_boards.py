"""One host drives 8 emulated boards at once (QEMU mps2-an386 and mps2-an500, each its own key and
storage), streaming a different order of the digits to each from its own thread: every board
learns each of its samples exactly once (its sequence log is 0..n-1, no duplicates, no gaps) and
ends with the parameters of its own host reference, bit for bit. These tests need qemu-system-arm
and arm-none-eabi-gcc and FAIL (never skip) without them."""
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgelearn.datasets import load_digits
from edgelearn.executors.c import NativeSTOP
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from firmware_host.board import Board
from firmware_host.qemu import QemuLinkBoard, protocol_firmware

ROOT = Path(__file__).resolve().parent.parent
BOARDS = 8
N = 120


def test_eight_emulated_boards_stream_at_once_and_each_equals_its_reference():
    model = load_model(ROOT / "models" / "digits-stop.json")
    ds = load_digits()
    orders = [np.random.default_rng(k).permutation(len(ds.x_train))[:N] for k in range(BOARDS)]
    kinds = ["mps2-an386", "mps2-an500"] * (BOARDS // 2)
    for kind in set(kinds):
        protocol_firmware(kind)                        # built once, before the boards start

    def reference(order) -> bytes:
        net = NativeSTOP(model)
        for i in order:
            net.run(ds.x_train[i:i + 1], ds.y_train[i:i + 1], True)
        return net.blob()

    def drive(k: int, url: str) -> dict:
        with Board(url, timeout=2.0, retries=20) as b:
            b.push_model(to_blob(model))
            b.commit()
            b.set_mode("train")
            order = orders[k]
            results = b.stream(ds.x_train[order], ds.y_train[order])
            return {"results": results, "pulled": b.pull_params(), "seqlog": b.seqlog(), "stats": b.stats(),
                    "device": b.hello().device_id}

    boards = [QemuLinkBoard(kind) for kind in kinds]
    try:
        with ThreadPoolExecutor(BOARDS) as pool:
            runs = list(pool.map(drive, range(BOARDS), [qb.url for qb in boards]))
    finally:
        for qb in boards:
            qb.stop()
    assert len({r["device"] for r in runs}) == BOARDS         # 8 boards, 8 keys
    for k, run in enumerate(runs):
        assert run["seqlog"] == list(range(N)), k               # each sample once, none skipped
        assert all(r is not None and r.learned and not r.duplicate for r in run["results"]), k
        assert run["stats"]["learned"] == N and run["stats"]["duplicates"] == 0, k
        assert run["pulled"] == reference(orders[k]), f"board {k} ({kinds[k]}) differs from its reference"
