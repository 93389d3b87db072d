"""The emulated boards (QEMU mps2-an386 Cortex-M4F, mps2-an500 Cortex-M7) through
firmware_host.qemu: board support of targets/boards/mps2, the UART over a real TCP socket
with pyserial, semihosting exit codes, no orphaned QEMU, the C runtime on the core bit for
bit with FixedSTOP, deterministic instruction counts, and the linker holding a firmware to
the real board's memory. These tests need qemu-system-arm and arm-none-eabi-gcc and FAIL
(never skip) without them: .ci/run installs both."""
import os
import time

import numpy as np
import pytest

from edgelearn import native
from edgelearn.datasets import load_digits
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.model import init_params, mlp
from edgelearn.modelblob import to_blob
from firmware_host import qemu


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_tools_are_installed():
    assert qemu.qemu_binary() and qemu.cross_compiler()   # raises with the apt line otherwise


def test_missing_tools_fail_with_the_install_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(qemu.QemuError, match="apt-get install -y qemu-system-arm"):
        qemu.qemu_binary()
    with pytest.raises(qemu.QemuError, match="apt-get install -y gcc-arm-none-eabi"):
        qemu.cross_compiler()


@pytest.mark.parametrize("board", qemu.BOARDS)
def test_echo_round_trip_and_exit_code(board):
    data = bytes(np.random.default_rng(5).integers(1, 256, size=700, dtype=np.uint8))   # > the 256-byte ring
    elf = qemu.build_firmware(["echo.c"], board, name="echo")
    with qemu.QemuBoard(elf, board, timeout=30) as b:
        pid = b.proc.pid
        assert b.read_exactly(4) == b"ECHO"
        b.serial.write(data)
        assert b.read_exactly(len(data)) == bytes((x + 1) % 256 for x in data)   # +1 through the FPU
        b.serial.write(bytes([0, 42]))
        assert b.read_exactly(3) == b"BYE"
        assert b.wait() == 42                     # semihosting SYS_EXIT_EXTENDED
    assert _gone(pid)


def run_echo(data: bytes, code: int, board: str = "mps2-an386") -> tuple[bytes, int]:
    """The echo firmware: send ``data`` (no zero bytes), then exit with ``code``. Returns
    what came back (after the banner) and QEMU's exit status."""
    elf = qemu.build_firmware(["echo.c"], board, name="echo")
    with qemu.QemuBoard(elf, board, timeout=30) as b:
        if b.read_exactly(4) != b"ECHO":
            raise qemu.QemuError("no banner from the echo firmware")
        b.serial.write(data)
        back = b.read_exactly(len(data))
        b.serial.write(bytes([0, code]))
        if b.read_exactly(3) != b"BYE":
            raise qemu.QemuError("the echo firmware did not say BYE")
        return back, b.wait()


def test_exit_codes_propagate():
    assert run_echo(b"\x01", 0) == (b"\x02", 0)
    assert run_echo(b"abc", 3)[1] == 3


def test_a_waiting_board_sleeps_and_leaves_no_orphan_on_exceptions():
    elf = qemu.build_firmware(["echo.c"], name="echo")
    with pytest.raises(RuntimeError, match="boom"):
        with qemu.QemuBoard(elf, timeout=30) as b:
            pid = b.proc.pid
            assert b.read_exactly(4) == b"ECHO"
            time.sleep(0.2)

            def cpu() -> float:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            before = cpu()
            time.sleep(1.0)
            busy = cpu() - before
            assert busy < 0.3, f"QEMU burnt {busy:.2f} s of CPU in 1 s waiting for input: no WFI?"
            b.serial.write(b"x")                  # and it wakes up on the RX interrupt
            assert b.read_exactly(1) == b"y"
            raise RuntimeError("boom")
    assert _gone(pid)


def test_linker_refuses_a_firmware_too_big_for_the_real_board():
    sram = qemu.board_memory("mps2-an386")["sram"]
    assert sram == 4 * 1024 * 1024
    with pytest.raises(qemu.FirmwareTooBig, match=rf"SRAM overflowed by \d+ bytes \(the board has {sram} bytes"):
        qemu.runtime_firmware(blob_bytes=1024, arena_bytes=sram)   # arena alone = the whole SRAM
    elf = qemu.runtime_firmware(blob_bytes=1024, arena_bytes=sram // 2)   # while half of it fits
    size = qemu.firmware_size(elf)
    assert sram // 2 < size["data"] + size["bss"] < sram


def test_c_runtime_on_the_core_is_bit_exact_with_fixed_stop():
    ds = load_digits()
    model = init_params(mlp("digits", [64, 128, 10]))
    x, y = ds.x_train[:100], ds.y_train[:100]
    learn = np.ones(100, dtype=bool)
    learn[90:] = False                            # the last 10: inference only
    out = qemu.run_runtime(to_blob(model), x, y, learn, icount=7)
    assert out["exit"] == 0 and not out["status"].any()
    assert out["arena_bytes"] == out["arena_required"] == native.arena_required(to_blob(model))

    ref = FixedSTOP(model)
    want = [int(np.argmax(ref.run(x[i:i + 1], y[i:i + 1], bool(learn[i]))[0])) for i in range(100)]
    assert out["prediction"].tolist() == want
    assert out["blob"] == to_blob(ref.to_model())          # every parameter, bit for bit
    assert out["blob"] != to_blob(model)                    # and it learned

    # -icount makes the counts deterministic: the same samples cost the same ticks again
    again = qemu.run_runtime(to_blob(model), x[:5], y[:5], True, icount=7)
    assert again["ticks"].tolist() == out["ticks"][:5].tolist()
    assert (out["ticks"][90:] < out["ticks"][:90].min()).all()   # inference is cheaper than learning


def test_c_runtime_on_the_cortex_m7_is_bit_exact_too():
    ds = load_digits()
    model = init_params(mlp("digits", [64, 32, 10]))
    x, y = ds.x_train[:20], ds.y_train[:20]
    out = qemu.run_runtime(to_blob(model), x, y, True, board="mps2-an500")   # job in its PSRAM at 0x60000000
    ref = FixedSTOP(model)
    for i in range(20):
        ref.run(x[i:i + 1], y[i:i + 1], True)
    assert out["exit"] == 0 and out["blob"] == to_blob(ref.to_model())


def test_int8_weights_on_the_core_are_bit_exact_with_fixed_stop():
    """An int8 model (docs/numerics.md §1) learning on the Cortex-M4F as the reference does, at a
    learning rate that saturates weights: the core's SSAT path of el_sub_sat8."""
    import dataclasses

    from edgelearn.model import Learning

    ds = load_digits()
    model = mlp("digits", [64, 64, 10], learning=Learning(T=8, lr_weight_shift=0))
    layers = tuple(dataclasses.replace(layer, weight_bits=8, weight_frac=frac)
                   for layer, frac in zip(model.layers, (7, 6)))
    model = init_params(dataclasses.replace(model, layers=layers))
    x, y = ds.x_train[:40], ds.y_train[:40]
    out = qemu.run_runtime(to_blob(model), x, y, True, icount=7)
    ref = FixedSTOP(model)
    for i in range(40):
        ref.run(x[i:i + 1], y[i:i + 1], True)
    assert out["exit"] == 0 and not out["status"].any()
    assert out["arena_bytes"] == out["arena_required"] == native.arena_required(to_blob(model))
    assert out["blob"] == to_blob(ref.to_model()) != to_blob(model)
    w = ref.weights
    assert (w == 127).any() and (w == -128).any()           # sat8 acted


def test_the_zoo_int8_mnist_model_learns_on_the_core_as_the_reference():
    """models/mnist-stop-int8.json (784-256-10, int8 Q0.7 and Q1.6 weights) learning on the
    Cortex-M4F: digits drawn 3x larger on a 28x28 canvas stand in for MNIST (no data set needed)."""
    from edgelearn.modelfile import load_model

    ds = load_digits()
    model = load_model(os.path.join(os.path.dirname(__file__), "..", "models", "mnist-stop-int8.json"))
    x = np.stack([np.pad(np.kron(img.reshape(8, 8), np.ones((3, 3), np.uint8)), 2).ravel() for img in ds.x_train[:6]])
    y = ds.y_train[:6]
    out = qemu.run_runtime(to_blob(model), x, y, True, icount=7)
    ref = FixedSTOP(model)
    for i in range(len(x)):
        ref.run(x[i:i + 1], y[i:i + 1], True)
    assert out["exit"] == 0 and not out["status"].any()
    assert out["blob"] == to_blob(ref.to_model()) != to_blob(model)


def test_the_runtime_firmware_cuts_off_inference_as_the_host_does():
    """runtime.c's cutoff flag (el_set_cutoff per sample, outside the timed call): the same
    predictions and steps as FixedSTOP in the same order, and a sample costs less the fewer
    steps it ran; a model without margins refuses the flag (EL_ERR_UNSUPPORTED)."""
    import dataclasses

    from edgelearn.executors import make_learner
    from edgelearn.model import Cutoff, Learning

    ds = load_digits()
    model = init_params(mlp("digits", [64, 64, 10], encoding="rate", learning=Learning(rule="stop", T=16)))
    learner = make_learner(model, "c")
    for i in range(300):
        learner.run(ds.x_train[i:i + 1], ds.y_train[i:i + 1], True)
    model = dataclasses.replace(learner.to_model(), cutoff=Cutoff((2,) * 15 + (0,), 0.05))
    x = ds.x_test[:60]
    cutoff = np.arange(60) % 3 != 2                # every third sample runs all T steps
    out = qemu.run_runtime(to_blob(model), x, np.zeros(60, dtype=int), False, cutoff=cutoff, icount=7)
    assert out["exit"] == 0 and not out["status"].any()
    ref = FixedSTOP(model)
    want = [ref.infer(x[i:i + 1], cutoff=bool(cutoff[i])) for i in range(60)]
    assert out["prediction"].tolist() == [int(np.argmax(s[0])) for s, _ in want]
    assert out["steps"].tolist() == [int(st[0]) for _, st in want]
    steps = out["steps"].astype(int)
    assert (steps[~cutoff] == 16).all() and (steps[cutoff] < 16).sum() > 20
    ticks = out["ticks"].astype(float) - out["tick_overhead"]
    slope, offset = np.polyfit(steps, ticks, 1)    # cost per step, and per sample
    assert np.max(np.abs(ticks - (slope * steps + offset)) / ticks) < 0.25 and offset < 0.2 * slope * 16

    plain = qemu.run_runtime(to_blob(dataclasses.replace(model, cutoff=None)), x[:2], [0, 0], False,
                             cutoff=[False, True])
    assert plain["exit"] == 1 and plain["status"].tolist() == [0, 22]
