"""The emulated boards: one description each, from which everything else is derived (the build
in ``qemu.build_firmware`` and ``qemu.protocol_firmware``, the QEMU command line and the
launchers in ``qemu``, the board kinds of ``boards.KINDS``, the CLI's and the demo's choices).

Adding a board is one entry of ``BOARDS`` plus its directory under targets/boards/ and its
catalogue entry (targets/catalogue.json, keyed by ``machine``: memory sizes with their source,
and the toolchain: ``cc`` and ``flags``). A board on another QEMU binary or cross compiler names
them (``qemu`` here, ``toolchain.cc`` in the catalogue; ``PACKAGES`` says which Debian package
brings each, for the error when one is missing); its linker script gets
``-DBOARD_FLASH_BYTES`` and ``-DBOARD_SRAM_BYTES`` from the catalogue, the stack's size, and the
storage's (``-DBOARD_STORAGE_BYTES``, for a part whose storage shares the flash with the code).

    machine      QEMU ``-M`` (unless ``qemu_machine``), the catalogue key and the name the
                 firmware gives in HELLO
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
    trust        how the trust byte leaves the board: "uart" (one of ``uarts``) or "semihosting"
                 (a semihosting console byte, SYS_WRITEC, on ``-semihosting-config chardev=``)
    flash_image_bytes  None: QEMU loads the ELF (``-kernel``); else the firmware boots from
                 pflash0, the ELF's raw image (objcopy -O binary, made with the ELF) padded to this
    qemu_args    more QEMU options the machine needs
    qemu_machine QEMU's ``-M`` when it is not ``machine`` (a QEMU name that does not say the core)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .storage import CKPT_AT

PACKAGES = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
            "qemu-system-arm": "qemu-system-arm",
            "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
            "qemu-system-riscv32": "qemu-system-misc"}

COMMON = ("common/crt.c", "common/libc.c", "common/memory_storage.c")
CORTEX_M = ("cortex-m/reset.c", "cortex-m/semihosting.c", *COMMON)


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
    trust: str = "uart"
    flash_image_bytes: int | None = None
    qemu_args: tuple[str, ...] = ()
    qemu_machine: str | None = None


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
    # riscv32 virt (targets/boards/riscv-virt): code in place on pflash0 (32 MiB in QEMU 7.2), the
    # storage at the start of the file-backed RAM; -bios none, or QEMU writes OpenSBI over it. Its
    # one UART is the link, the trust byte a semihosting console byte.
    EmulatedBoard("riscv-virt", "riscv-virt", ("riscv-virt/startup.c", "riscv-virt/board.c", *COMMON),
                  "riscv-virt.ld.S", "qemu-system-riscv32", "memory-backend", storage_addr=0x80000000,
                  uarts=("link",), trust="semihosting", flash_image_bytes=32 * 1024 * 1024,
                  qemu_args=("-bios", "none"), qemu_machine="virt"),
)}
