"""The STM32F405 board (QEMU 7.2 netduinoplus2, Cortex-M4F; targets/boards/stm32f405): the same
protocol firmware as on mps2, on the chip's own USART, RCC and NVIC registers, over a real TCP
socket through the link broker. It learns 500 digits samples exactly as the host's C runtime
fed the same stream, refuses a model too big for its model area and keeps the one it has, names
itself in HELLO, keeps its key and boot count in its storage file across restarts (semihosting
write-through), and its linker script holds the chip's real SRAM. These tests need
qemu-system-arm and arm-none-eabi-gcc and FAIL (never skip) without them."""
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgelearn.datasets import load_digits
from edgelearn.executors.c import NativeSTOP
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from firmware_host import boards, qemu, storage as st
from firmware_host.board import Board
from firmware_host.errors import BoardError

ROOT = Path(__file__).resolve().parent.parent
BOARD = "netduinoplus2"
N_TRAIN = 500


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_the_board_is_one_description_that_every_launcher_offers():
    assert BOARD in qemu.BOARDS and BOARD in boards.KINDS
    entry = qemu.board_memory(BOARD)
    assert (entry["flash"], entry["sram"]) == (1024 * 1024, 128 * 1024) and "DS8626" in entry["source"]
    assert qemu.qemu_command("fw.elf", BOARD)[:3] == [qemu.qemu_binary(BOARD), "-M", BOARD]


def test_it_learns_the_digits_as_the_host_runtime_refuses_a_model_too_big_and_keeps_its_own(digits):
    model = load_model(ROOT / "models" / "digits-stop.json")
    blob = to_blob(model)
    x, y = digits.x_train[:N_TRAIN], digits.y_train[:N_TRAIN]
    host = NativeSTOP(model)
    want = [int(np.argmax(host.run(x[i:i + 1], y[i:i + 1], True)[0])) for i in range(N_TRAIN)]
    too_big = to_blob(load_model(ROOT / "models" / "mnist-stop.json"))
    with boards.launch(BOARD) as qb, Board(qb.url, timeout=2.0) as b:
        ready = b.hello()
        assert ready.name == BOARD and not ready.has_model and ready.model_bytes == qemu.protocol_sizes(BOARD)["model_bytes"]
        b.push_model(blob)
        b.commit()
        b.set_mode("train")
        results = b.stream(x, y)
        assert [r.predicted for r in results] == want
        assert all(r.learned and not r.duplicate for r in results)
        pulled = b.pull_params()
        assert pulled == host.blob()                   # every parameter, bit for bit
        assert b.seqlog() == list(range(N_TRAIN))

        with pytest.raises(BoardError) as refused:
            b.push_model(too_big)
        assert refused.value.name == "TOO_BIG" and f"{len(too_big):,}" in str(refused.value)
        ready = b.hello()
        assert (ready.has_model, ready.active_size, ready.active_crc) == (True, len(blob), zlib.crc32(blob))
        assert b.pull_params() == pulled               # the model it had, with what it learned
        assert b.stats()["learned"] == N_TRAIN


def test_its_key_and_boot_count_live_in_the_storage_file_across_restarts(tmp_path):
    path = tmp_path / "a,board.storage"                # QEMU's option syntax escapes the comma
    with qemu.QemuLinkBoard(BOARD, storage=path) as qb, Board(qb.url) as b:
        first = b.hello()
        key = qb.key
    assert first.boot == 1 and first.device_id == key.device_id and not first.durable
    assert st.boot_count(path) == 1                    # written through by semihosting
    with qemu.QemuLinkBoard(BOARD, storage=path) as qb, Board(qb.url) as b:
        again = b.hello()
    assert again.boot == 2 and again.device_id == key.device_id and st.boot_count(path) == 2


def test_the_linker_holds_the_chips_sram():
    with pytest.raises(qemu.FirmwareTooBig, match=r"SRAM overflowed by \d+ bytes \(the board has 131072 bytes"):
        qemu.protocol_firmware(BOARD, model_bytes=48 * 1024)
