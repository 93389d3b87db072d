"""The emulated boards: one description each, from which everything else is derived (the build
in ``qemu.build_firmware`` and ``qemu.protocol_firmware``, the QEMU command line and the
launchers in ``qemu``, the board kinds of ``boards.KINDS``, the CLI's and the demo's choices).

Adding a board is one entry of ``BOARDS`` plus its directory under targets/boards/ and its
catalogue entry (targets/catalogue.json, keyed by ``machine``: memory sizes with their source,
and the toolchain: ``cc`` and ``flags``). A board on another QEMU binary or cross compiler names
them (``qemu`` here, ``toolchain.cc`` in the catalogue; ``PACKAGES`` says which Debian package
brings each, for the error when one is missing); its linker script gets
``-DBOARD_FLASH_BYTES`` and ``-DBOARD_SRAM_BYTES`` from the catalogue.

    machine      QEMU ``-M``, the catalogue key and the name the firmware gives in HELLO
    directory    the board support, under targets/boards/ (test firmwares are looked up there)
    sources      the board support every firmware links, relative to targets/boards/
    linker_script  in ``directory``, run through the C preprocessor
    qemu         the QEMU binary
    storage      how the launcher gives the firmware its storage (docs/protocol.md §7):
                 "memory-backend": a file backs the machine's RAM (``-machine memory-backend=``,
                 QEMU_PSRAM_BYTES), the storage at ``storage_addr`` in it, durable as written;
                 "semihosting": the firmware mirrors a file of ``storage_bytes`` in RAM and
                 writes it through by semihosting (named by ``-semihosting-config arg=storage=PATH``)
    storage_addr where the firmware finds its storage ("memory-backend")
    storage_bytes  the storage the firmware has; None: all its checkpoints need
                 (storage.storage_bytes of its model area)
    job_addr     where ``QemuBoard`` preloads the runtime firmware's job (None: no room for one)
    sizes        the protocol firmware's defaults where the board's RAM needs smaller ones
                 (model_bytes per model area, arena_bytes, seqlog entries, stack_bytes)
    uarts        what each ``-serial`` is, in QEMU's order: "link" (the protocol) and "trust"
                 (board_link_trusted's byte, for link_broker.py)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .storage import CKPT_AT

PACKAGES = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
            "qemu-system-arm": "qemu-system-arm",
            "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
            "qemu-system-riscv32": "qemu-system-misc"}

CORTEX_M = ("cortex-m/reset.c", "cortex-m/semihosting.c", "common/libc.c", "common/memory_storage.c")


@dataclass(frozen=True)
class EmulatedBoard:
    machine: str
    directory: str
    sources: tuple[str, ...]
    linker_script: str
    qemu: str
    storage: str
    storage_addr: int | None = None
    storage_bytes: int | None = None
    job_addr: int | None = None
    sizes: dict = field(default_factory=dict)
    uarts: tuple[str, ...] = ("link", "trust")


def _mps2(machine: str, psram: int) -> EmulatedBoard:
    return EmulatedBoard(machine, "mps2", ("mps2/startup.c", "mps2/board.c", *CORTEX_M), "mps2.ld.S",
                         "qemu-system-arm", "memory-backend", storage_addr=psram, job_addr=psram)


BOARDS = {b.machine: b for b in (
    _mps2("mps2-an386", 0x21000000),      # PSRAM: QEMU 7.2 maps the AN386's at 0x21000000,
    _mps2("mps2-an500", 0x60000000),      # the AN500's at 0x60000000
    # STM32F405: QEMU 7.2 maps its 128 KiB SRAM but not its 64 KiB CCM (stm32f405.ld.S), so the
    # SRAM holds it all: two model areas of 39 KiB (digits-stop's blob is 39,208 bytes), the arena
    # (digits-stop needs 16,496), 1,024 seqlog entries, the storage mirror (the key and boot
    # records only: CKPT_AT, 12 KiB), an 8 KiB stack, the firmware's buffers; 1.4 KiB are left.
    EmulatedBoard("netduinoplus2", "stm32f405", ("stm32f405/startup.c", "stm32f405/board.c", *CORTEX_M),
                  "stm32f405.ld.S", "qemu-system-arm", "semihosting", storage_bytes=CKPT_AT,
                  sizes={"model_bytes": 39 * 1024, "arena_bytes": 20 * 1024, "seqlog": 1024, "stack_bytes": 8 * 1024}),
)}
