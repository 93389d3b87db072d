"""The flashable image of ``edgelearn compile --firmware``: the link-protocol firmware
(targets/firmware, docs/protocol.md) for a board, linked with a model as its initial blob.

``write_firmware`` builds the protocol firmware with the model's C array (model_blob.c, from
edgelearn.deploy) and ``EL_FW_INITIAL_MODEL``: the board boots with that model whenever no
checkpoint restores one (main_loop.c, load_initial_model), as model version 0, so a push
replaces it. It writes firmware.elf, firmware.bin (raw, from the board's first flash byte) and
firmware.hex (Intel HEX), the last two with the toolchain's objcopy.

edgelearn reaches this module through the ``edgelearn.firmware`` entry point (edgelearn.deploy,
``firmware()``): ``boards``, ``layout`` and ``write_firmware`` are what it calls.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from . import qemu

boards = qemu.BOARDS


@functools.lru_cache(maxsize=None)
def layout(board: str) -> dict | None:
    """The protocol firmware's RAM on ``board`` (qemu.protocol_sizes): each of its two model areas,
    its arena, and ``own``: the rest of its RAM, measured on the firmware built for the board
    (data and bss: the link buffers, the sequence log, the storage mirror, the stack, the
    runtime's context), which no model size changes; None for a board it does not run on."""
    if board not in boards:
        return None
    sizes = qemu.protocol_sizes(board)
    built = qemu.firmware_size(qemu.protocol_firmware(board), board)
    own = built["data"] + built["bss"] - 2 * sizes["model_bytes"] - sizes["arena_bytes"]
    return {"model_area": sizes["model_bytes"], "arena": sizes["arena_bytes"], "own": own}


def write_firmware(board: str, model_blob_c: Path, out_dir, *, model_area: int | None = None,
                   arena: int | None = None) -> dict:
    """firmware.elf, .bin and .hex in ``out_dir`` for ``board``, booting with the model of
    ``model_blob_c``, with model areas and an arena of the given sizes (None: the board's);
    returns their paths and the ELF's sizes (text, data, bss). FirmwareTooBig (the linker's
    numbers) when the image does not fit the board."""
    elf = qemu.protocol_firmware(board, model_bytes=model_area, arena_bytes=arena, sources=[Path(model_blob_c)],
                                 defines={"EL_FW_INITIAL_MODEL": 1}, name="firmware")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"elf": out / "firmware.elf", "bin": out / "firmware.bin", "hex": out / "firmware.hex"}
    shutil.copyfile(elf, paths["elf"])
    tool = qemu.cross_tool(board, "objcopy")
    for kind, fmt in (("bin", "binary"), ("hex", "ihex")):
        run = subprocess.run([tool, "-O", fmt, str(paths["elf"]), str(paths[kind])], capture_output=True, text=True)
        if run.returncode != 0:
            raise qemu.QemuError(f"{tool} could not write {paths[kind]}: {run.stderr.strip()}")
    return {**paths, **qemu.firmware_size(paths["elf"], board)}
