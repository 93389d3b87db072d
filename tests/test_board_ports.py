"""The board ports beyond mps2, each one entry of firmware_host/qemu_boards.py: the STM32F405
(QEMU 7.2 netduinoplus2, Cortex-M4F; targets/boards/stm32f405: the chip's own USART, RCC and
NVIC registers, its storage written through by semihosting) and RISC-V (QEMU riscv32 virt,
RV32IMAC sized as an ESP32-C6; targets/boards/riscv-virt: the ns16550a UART with its PLIC
interrupt, booting in place from pflash0, its storage in the file-backed RAM, the trust byte on
the semihosting console). Each runs the same protocol firmware over a real TCP socket through
the link broker: it learns 500 digits samples exactly as the host's C runtime fed the same
stream, refuses a model too big for its model area and keeps the one it has, names itself in
HELLO, keeps its key and boot count in its storage file across restarts, and its linker script
holds the part's real SRAM. These tests need QEMU and the cross compilers that `make tools`
installs and FAIL (never skip) without them."""
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
N_TRAIN = 500
KiB = 1024

# board: (flash, sram, a word of the catalogue's source, QEMU -M, a model area too big to link)
PORTS = {"netduinoplus2": (1024 * KiB, 128 * KiB, "DS8626", "netduinoplus2", 48 * KiB),
         "riscv-virt": (4096 * KiB, 512 * KiB, "ESP32-C6", "virt", 256 * KiB)}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.mark.parametrize("board", PORTS)
def test_the_board_is_one_description_that_every_launcher_offers(board):
    flash, sram, source, machine, _ = PORTS[board]
    assert board in qemu.BOARDS and board in boards.KINDS
    entry = qemu.board_memory(board)
    assert (entry["flash"], entry["sram"]) == (flash, sram) and source in entry["source"]
    assert qemu.qemu_command("fw.elf", board)[:3] == [qemu.qemu_binary(board), "-M", machine]


@pytest.mark.parametrize("board", PORTS)
def test_it_learns_the_digits_as_the_host_runtime_refuses_a_model_too_big_and_keeps_its_own(board, digits):
    model = load_model(ROOT / "models" / "digits-stop.json")
    blob = to_blob(model)
    x, y = digits.x_train[:N_TRAIN], digits.y_train[:N_TRAIN]
    host = NativeSTOP(model)
    want = [int(np.argmax(host.run(x[i:i + 1], y[i:i + 1], True)[0])) for i in range(N_TRAIN)]
    too_big = to_blob(load_model(ROOT / "models" / "mnist-stop.json"))
    assert len(too_big) > qemu.protocol_sizes(board)["model_bytes"]
    with boards.launch(board) as qb, Board(qb.url, timeout=2.0) as b:
        ready = b.hello()
        assert ready.name == board and not ready.has_model and ready.model_bytes == qemu.protocol_sizes(board)["model_bytes"]
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


@pytest.mark.parametrize("board", PORTS)
def test_its_key_and_boot_count_live_in_the_storage_file_across_restarts(board, tmp_path):
    path = tmp_path / "a,board.storage"                # QEMU's option syntax escapes the comma
    blob = to_blob(load_model(ROOT / "models" / "digits-stop.json"))
    with qemu.QemuLinkBoard(board, storage=path) as qb, Board(qb.url) as b:
        first = b.hello()
        key = qb.key
        b.push_model(blob)
        b.commit()
    assert first.boot == 1 and first.device_id == key.device_id and st.boot_count(path) == 1
    with qemu.QemuLinkBoard(board, storage=path) as qb, Board(qb.url) as b:
        again = b.hello()
    assert (again.boot, again.device_id, st.boot_count(path)) == (2, key.device_id, 2)
    # a storage with room for checkpoints brings the committed model back; the STM32F405's
    # holds the key and boot records only (docs/porting.md)
    assert first.durable == (again.restored and again.active_crc == zlib.crc32(blob))


@pytest.mark.parametrize("board", PORTS)
def test_the_linker_holds_the_parts_sram(board):
    sram, too_big = PORTS[board][1], PORTS[board][4]
    with pytest.raises(qemu.FirmwareTooBig, match=rf"SRAM overflowed by \d+ bytes \(the board has {sram} bytes"):
        qemu.protocol_firmware(board, model_bytes=too_big)
