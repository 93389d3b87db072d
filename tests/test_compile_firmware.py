"""Deployable output of ``edgelearn compile`` (issue 16): the link-protocol firmware image that
boots in QEMU from the emitted file with the model compiled in, the library bundle that builds
from a scratch directory with the cross compiler, and the refusal of a model that does not fit."""
import json
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgelearn import deploy
from edgelearn.cli import main
from edgelearn.datasets import load_digits
from edgelearn.executors import make_learner
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from edgelearn.profile import target_info
from edgelearn.train import predictions
from firmware_host import deploy as fw_deploy
from firmware_host.board import Board
from firmware_host.qemu import QemuLinkBoard

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "models" / "digits-stop.json"
MNIST = ROOT / "models" / "mnist-stop.json"
INFERRED = 40                     # digits test samples the flashed model infers on the board


def compile_cli(capsys, *argv):
    rc = main(["compile", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_firmware_package_is_the_installed_entry_point():
    assert deploy.firmware() is fw_deploy
    assert "mps2-an386" in fw_deploy.boards


@pytest.mark.parametrize("board", fw_deploy.boards)
def test_firmware_image_boots_from_the_file_with_its_model_and_infers_as_the_host(capsys, tmp_path, board):
    rc, out, err = compile_cli(capsys, DIGITS, "--target", board, "--firmware", "-o", tmp_path)
    assert rc == 0, err
    blob = (tmp_path / "model.elm").read_bytes()
    assert blob == to_blob(load_model(DIGITS))
    elf, image, hex_text = tmp_path / "firmware.elf", (tmp_path / "firmware.bin").read_bytes(), \
        (tmp_path / "firmware.hex").read_text()
    assert elf.read_bytes()[:4] == b"\x7fELF" and "firmware.elf" in out
    entry = int.from_bytes(elf.read_bytes()[24:28], "little")     # e_entry of a 32-bit ELF
    if fw_deploy.qemu.spec(board).flash_image_bytes is None:
        # Cortex-M: the raw image starts with the vector table: the initial stack pointer in SRAM,
        # then the reset vector, the ELF's entry point
        sp, reset = int.from_bytes(image[:4], "little"), int.from_bytes(image[4:8], "little")
        assert 0x20000000 < sp <= 0x20000000 + fw_deploy.qemu.board_memory(board)["sram"]
        assert reset == entry
    else:   # riscv-virt: the code runs in place from pflash0's first byte, 0x20000000 (riscv-virt.ld.S)
        assert entry == 0x20000000
    assert blob in image                                    # the model, compiled in as a C array
    assert hex_text.startswith(":") and hex_text.rstrip().endswith(":00000001FF")
    profiled = main(["profile", str(DIGITS), "--target", board, "--json"])
    built = fw_deploy.qemu.firmware_size(elf, board)
    assert profiled == 0 and json.loads(capsys.readouterr().out)["total_ram"] == built["data"] + built["bss"]
    x = load_digits().x_test[:INFERRED]
    want = predictions(make_learner(load_model(DIGITS), "fixed"), x)
    for emitted in (elf, tmp_path / "firmware.bin"):        # QEMU loads a raw image at the first flash byte
        with QemuLinkBoard(board, elf=emitted) as qb, Board(qb.url) as b:
            ready = b.hello()
            assert (ready.has_model, ready.active_size, ready.active_crc, ready.model_version) == \
                (True, len(blob), zlib.crc32(blob), 0), emitted
            layout = fw_deploy.layout(board)
            assert (ready.model_bytes, ready.arena_bytes, ready.name) == (layout["model_area"], layout["arena"], board)
            b.set_mode("infer")
            pred, _ = b.infer(x)
        np.testing.assert_array_equal(pred, want)


def test_a_restored_checkpoint_wins_over_the_compiled_in_model(capsys, tmp_path):
    """The initial model is for a board with nothing learned: a pushed model, checkpointed at its
    commit, is what the board boots with next time."""
    assert compile_cli(capsys, DIGITS, "--target", "mps2-an386", "--firmware", "-o", tmp_path)[0] == 0
    other = to_blob(load_model(ROOT / "models" / "digits-spide.json"))
    assert other != (tmp_path / "model.elm").read_bytes()
    storage = tmp_path / "board.storage"
    with QemuLinkBoard(elf=tmp_path / "firmware.elf", storage=storage) as qb, Board(qb.url) as b:
        b.push_model(other, version=3)
        b.commit()
    with QemuLinkBoard(elf=tmp_path / "firmware.elf", storage=storage) as qb, Board(qb.url) as b:
        ready = b.hello()
        assert ready.restored and (ready.active_size, ready.active_crc, ready.model_version) == \
            (len(other), zlib.crc32(other), 3)


@pytest.mark.parametrize("target", ["mps2-an386", "esp32c3"])        # Cortex-M4F and RV32IMC
def test_the_bundle_builds_from_a_scratch_directory(capsys, tmp_path, target):
    rc, out, err = compile_cli(capsys, DIGITS, "--target", target, "-o", tmp_path / "out")
    assert rc == 0, err
    scratch = tmp_path / "scratch"
    shutil.copytree(tmp_path / "out" / "bundle", scratch)
    text = "".join(p.read_text() for p in scratch.rglob("*") if p.is_file())
    assert str(ROOT) not in text and str(tmp_path) not in text and "../" not in text   # nothing reaches back
    blob = (tmp_path / "out" / "model.elm").read_bytes()
    array = re.search(r"el_model_blob\[\d+\] = \{(.*?)\};", (scratch / "model_blob.c").read_text(), re.S).group(1)
    assert bytes(int(v, 16) for v in array.replace(",", " ").split()) == blob
    make = subprocess.run(["make"], cwd=scratch, capture_output=True, text=True)
    assert make.returncode == 0, make.stdout + make.stderr
    cc = target_info(target)["toolchain"]["cc"]
    symbols = subprocess.run([cc[:-3] + "nm", str(scratch / "example.elf")], capture_output=True, text=True,
                             check=True).stdout
    for name in ("main", "el_model_blob", "el_init_static", "el_run_sample", "el_predict"):
        assert re.search(rf" [TtRrDd] {name}$", symbols, re.M), name
    members = subprocess.run([cc[:-3] + "ar", "t", str(scratch / "libedgelearn.a")], capture_output=True,
                             text=True, check=True).stdout.split()
    assert sorted(members) == sorted(p.stem + ".o" for p in (scratch / "runtime").glob("*.c"))


@pytest.mark.parametrize("argv,needles", [
    # the case: a 407,848-byte blob, which the firmware's 128K model area would refuse
    (["MNIST", "--target", "mps2-an386"], ["407,848", "model area 131,072", "TOO_BIG"]),
    (["MNIST", "--target", "mps2-an386", "--firmware"], ["407,848", "TOO_BIG"]),
    (["MNIST", "--target", "stm32l476"], ["RAM:", "the board has 131,072"]),
    (["DIGITS", "--target", "mps2-an386", "--arena", "8K"], ["arena is 16,528 bytes, the firmware's 8,192",
                                                            "ARENA_TOO_SMALL"]),
    (["DIGITS", "--target", "mps2-an386", "--model-area", "4M", "--firmware"], ["RAM:", "4,194,304"]),
    (["DIGITS", "--target", "stm32l476", "--firmware"], ["runs on mps2-an386", "not on stm32l476"]),
    (["DIGITS", "--target", "ice40up5k", "--firmware"], ["is an FPGA"]),
    (["DIGITS", "--target", "mps2-an386", "--model-area", "12Q"], ["not a memory size: '12Q'"]),
    (["DIGITS", "--target", "mps2-an386", "--arena", "0"], ["above 0"]),
])
def test_compile_refuses_what_does_not_fit_with_the_numbers(capsys, tmp_path, argv, needles):
    out_dir = tmp_path / "out"
    subst = {"MNIST": MNIST, "DIGITS": DIGITS}
    try:
        status = main(["compile", *[str(subst.get(a, a)) for a in argv], "-o", str(out_dir)])
    except SystemExit as exit_:                                     # argparse: a bad size
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2 and all(n in err for n in needles), err
    assert "Traceback" not in err and not out_dir.exists()          # refused before anything is written


def test_the_largest_model_areas_that_fit_link_and_the_next_are_refused(capsys, tmp_path):
    """The profile counts the firmware's RAM to the byte (its own part measured on the firmware):
    the largest model areas it accepts link, 8 bytes more (one uint64_t) are refused before the
    build, with the numbers."""
    board, sram = "mps2-an386", target_info("mps2-an386")["sram"]
    layout = fw_deploy.layout(board)
    largest = (sram - layout["arena"] - layout["own"]) // 2 // 8 * 8
    rc, out, err = compile_cli(capsys, DIGITS, "--target", board, "--firmware", "--model-area", largest,
                               "-o", tmp_path / "fits")
    assert rc == 0, err
    built = fw_deploy.qemu.firmware_size(tmp_path / "fits" / "firmware.elf")
    assert built["data"] + built["bss"] == 2 * largest + layout["arena"] + layout["own"] > sram - 16
    rc, out, err = compile_cli(capsys, DIGITS, "--target", board, "--firmware", "--model-area", largest + 8,
                               "-o", tmp_path / "over")
    needed = 2 * (largest + 8) + layout["arena"] + layout["own"]          # above sram by 8 or 16 (the rounding)
    assert rc == 2 and needed > sram and f"RAM: {needed:,} bytes needed, the board has {sram:,}" in err, err
    assert "Traceback" not in err and not (tmp_path / "over").exists()


def test_a_larger_model_area_takes_the_model(capsys, tmp_path):
    rc, out, err = compile_cli(capsys, MNIST, "--target", "mps2-an386", "--model-area", "512K", "-o", tmp_path)
    assert rc == 0, err
    assert (tmp_path / "model.elm").stat().st_size == 407848

