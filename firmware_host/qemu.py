"""Emulated boards: build firmware for the QEMU boards of ``qemu_boards.py`` (mps2-an386,
mps2-an500, netduinoplus2, riscv-virt) and run it.

``build_firmware`` compiles a board's support (its description's ``sources`` under
``targets/boards``), the application sources and optionally the C runtime (``targets/c``) with the
catalogue's cross compiler and flags into the build cache (``edgelearn.buildcache``, then
``firmware/<board>/<hash>``; the hash covers every source, flag, define, the catalogue entry
and the compiler, so a change always rebuilds). The board's linker script gets the real
board's flash and SRAM from ``targets/catalogue.json``: a firmware that does not fit raises
``FirmwareTooBig``.

``QemuBoard`` is a context manager around one QEMU process: UART0 on
``-serial tcp:127.0.0.1:0,server=on,wait=on,nodelay=on`` (QEMU picks the port and prints it
on stderr; the guest waits for us), semihosting on (the firmware's exit code is QEMU's exit
status), optional ``-icount shift=N`` and files preloaded into guest memory. ``.serial`` is a
pyserial port on ``socket://127.0.0.1:PORT``. QEMU runs in its own process group, which is
killed on exit from the ``with`` block, on exceptions and at interpreter exit: no orphans
(``QemuBoard`` and ``QemuLinkBoard`` both start it through ``firmware_host.launch.BoardProcess``).

``protocol_firmware`` builds the link-protocol firmware (targets/firmware: main loop, protocol,
the C runtime, this board support behind board.h) and ``QemuLinkBoard`` serves it on a TCP port
for ``firmware_host.board.Board`` (``.url``); it never connects itself, accepts one client after
another with the firmware's state intact, and with ``detach=True`` outlives its launcher. Its
port is the link broker's (``firmware_host/link_broker.py``), which owns the board's link UART and
applies the native board's rule: a waiting client gets the link once the current one has gone the
grace period without an authenticated request (the firmware reports each on its trust signal).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgelearn import buildcache, resources

from . import keys, storage as st
from .launch import BoardProcess, run_dir  # noqa: F401  (run_dir: where QEMU's logs go)
from .native_board import PORT_LINE
from .qemu_boards import BOARDS as SPECS, PACKAGES, EmulatedBoard

C_DIR = resources.C_DIR
FW_DIR = resources.FIRMWARE_DIR
CATALOGUE = resources.CATALOGUE

BOARDS = tuple(SPECS)                           # the emulated boards (qemu_boards.py describes each)
BOARD_DIR = resources.BOARDS_DIR / SPECS["mps2-an386"].directory   # the mps2 test firmwares (runtime.c)
JOB_ADDR = {name: b.job_addr for name, b in SPECS.items() if b.job_addr is not None}
CFLAGS = ("-std=c99", "-ffreestanding", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
          "-ffunction-sections", "-fdata-sections")
LDFLAGS = ("-nostdlib", "-Wl,--gc-sections")   # -lgcc goes after the objects
SYSTICK_HZ = 25_000_000                         # the mps2 core clock
SEMIHOSTING_LINE = 512                          # the command line a firmware reads (stm32f405/board.c: line[512])
PROTOCOL_SIZES = {"model_bytes": 128 * 1024, "arena_bytes": 64 * 1024, "seqlog": 4096,   # unless the board says
                  "stack_bytes": 16384}
PROTOCOL_MODEL_BYTES = PROTOCOL_SIZES["model_bytes"]


class QemuError(RuntimeError):
    """A tool is missing, a build failed, or QEMU misbehaved."""


class FirmwareTooBig(QemuError):
    """The firmware does not fit the real board's memory (the linker refused it)."""


def spec(board: str) -> EmulatedBoard:
    """The description of an emulated board (qemu_boards.py)."""
    if board not in SPECS:
        raise QemuError(f"unknown board {board!r}; emulated boards: {', '.join(BOARDS)}")
    return SPECS[board]


def board_memory(board: str) -> dict:
    """The catalogue's entry for ``board`` (flash, sram, toolchain flags)."""
    spec(board)
    return json.loads(CATALOGUE.read_text())["targets"][board]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise QemuError(f"{name} not found: install it with apt-get install -y {PACKAGES.get(name, name)}")
    return path


def cross_compiler(board: str = "mps2-an386") -> str:
    return _tool(board_memory(board)["toolchain"]["cc"])


def cross_tool(board: str, name: str) -> str:
    """A binutils tool of the board's cross compiler (arm-none-eabi-gcc -> arm-none-eabi-objcopy)."""
    cc = board_memory(board)["toolchain"]["cc"]
    tool = cc.removesuffix("gcc") + name
    if shutil.which(tool) is None:
        raise QemuError(f"{tool} not found: it comes with {cc} (apt-get install -y {PACKAGES.get(cc, cc)})")
    return tool


def qemu_binary(board: str = "mps2-an386") -> str:
    return _tool(spec(board).qemu)


def build_firmware(sources, board: str = "mps2-an386", *, runtime: bool = False,
                   defines: dict | None = None, stack_bytes: int = 16384, name: str = "firmware") -> Path:
    """Compile and link ``sources`` (paths; a bare name is looked up in the board's directory, then
    in those of its board support, e.g. common/echo.c) with the board support, and the C runtime
    when ``runtime``. Returns the ELF (cached)."""
    board_spec, entry = spec(board), board_memory(board)
    cc = cross_compiler(board)
    board_dir = resources.BOARDS_DIR / board_spec.directory
    script = board_dir / board_spec.linker_script
    search = dict.fromkeys([board_dir, *((resources.BOARDS_DIR / s).parent for s in board_spec.sources)])

    def find(name: str) -> Path:
        found = [d / name for d in search if (d / name).exists()]
        if not found:
            raise QemuError(f"no {name} for {board} in {', '.join(str(d) for d in search)}")
        return found[0]

    srcs = [Path(s) if os.sep in str(s) else find(str(s)) for s in sources]
    srcs = [resources.BOARDS_DIR / s for s in board_spec.sources] + srcs
    if runtime:
        srcs += buildcache.runtime_sources(device=True)
    defines = dict(defines or {})
    flags = list(entry["toolchain"]["flags"]) + list(CFLAGS) + [f"-I{board_dir}", f"-I{C_DIR}"]
    flags += [f"-D{k}={v}" for k, v in sorted(defines.items())]
    ld_defs = [f"-DBOARD_FLASH_BYTES={entry['flash']}", f"-DBOARD_SRAM_BYTES={entry['sram']}",
               f"-DBOARD_STACK_BYTES={stack_bytes}"]
    if "BOARD_STORAGE_BYTES" in defines:      # a linker script may hold the storage to the flash too
        ld_defs.append(f"-DBOARD_STORAGE_BYTES={str(defines['BOARD_STORAGE_BYTES']).rstrip('uU')}")

    headers = {h for d in {s.parent for s in srcs} | {C_DIR} for h in [*d.glob("*.h"), *d.glob("*.ld.S")]}   # what #includes reach
    files = [*srcs, script, *sorted(headers)]

    def link(out: Path) -> None:
        with tempfile.TemporaryDirectory(dir=out) as tmp:     # the linker script and map: not kept
            ld = Path(tmp) / script.stem
            _run([cc, "-E", "-P", "-x", "c", *ld_defs, str(script), "-o", str(ld)],
                 "preprocess the linker script")
            cmd = [cc, *flags, *LDFLAGS, "-T", str(ld), f"-Wl,-Map={tmp}/{name}.map",
                   *map(str, srcs), "-lgcc", "-o", str(out / f"{name}.elf")]
            try:
                _run(cmd, f"build {name} for {board}")
            except QemuError as e:
                m = re.search(r"region `(\w+)' overflowed by (\d+) bytes", str(e))
                if m:
                    region = m.group(1)
                    raise FirmwareTooBig(
                        f"{name} does not fit {board}: {region} overflowed by {m.group(2)} bytes "
                        f"(the board has {entry[region.lower()]} bytes of {region.lower()}, "
                        f"targets/catalogue.json)") from None
                raise
        if board_spec.flash_image_bytes is not None:
            write_flash_image(out / f"{name}.elf", board)

    key = buildcache.key(files=files, flags=[cc, board, name, *flags, *ld_defs, *LDFLAGS], tools=[cc])
    return buildcache.cached(f"firmware/{board}", key, link) / f"{name}.elf"


def _run(cmd, what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise QemuError(f"could not {what}:\n$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")


def flash_image(firmware: Path) -> Path:
    """The pflash image of ``firmware`` (an ELF or its raw image; a board with ``flash_image_bytes``)."""
    return Path(firmware).with_suffix(".flash")


def write_flash_image(firmware: Path, board: str) -> Path:
    """The firmware's raw image from its first flash byte (objcopy of an ELF, or the raw image
    given, e.g. compile --firmware's firmware.bin), padded to the board's pflash (QEMU maps a
    drive of exactly that size; truncate leaves the padding sparse)."""
    firmware, image = Path(firmware), flash_image(firmware)
    with open(firmware, "rb") as f:
        is_elf = f.read(4) == b"\x7fELF"
    if is_elf:
        _run([cross_tool(board, "objcopy"), "-O", "binary", str(firmware), str(image)],
             f"make the flash image of {firmware}")
    else:
        shutil.copyfile(firmware, image)
    if image.stat().st_size > spec(board).flash_image_bytes:
        raise FirmwareTooBig(f"{firmware} does not fit {board}'s pflash ({spec(board).flash_image_bytes} bytes)")
    with open(image, "r+b") as f:
        f.truncate(spec(board).flash_image_bytes)
    return image


def boot_image(firmware: Path, board: str) -> Path:
    """The file QEMU boots ``firmware`` from on ``board``: the firmware itself (-kernel), or its
    pflash image, made now unless it is newer than the firmware (the build makes it with the ELF)."""
    if spec(board).flash_image_bytes is None:
        return Path(firmware)
    image = flash_image(firmware)
    if image.exists() and image.stat().st_mtime_ns >= Path(firmware).stat().st_mtime_ns:
        return image
    return write_flash_image(firmware, board)


def firmware_size(elf: Path, board: str = "mps2-an386") -> dict:
    """text, data, bss of a firmware (the size of the board's toolchain)."""
    out = subprocess.run([cross_tool(board, "size"), str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = out.splitlines()[1].split()[:3]
    return {"text": int(text), "data": int(data), "bss": int(bss)}


# -- running ---------------------------------------------------------------------------------

_PORT = re.compile(r"waiting for connection on: disconnected:tcp:[\d.]+:(\d+)")


def qemu_command(elf, board: str, *, icount: int | None = None, preload=(), storage=None,
                 uart_fds=None) -> list[str]:
    """QEMU for one board: its first UART as a TCP server on a free port that waits for the host
    (nothing sent before the host connects is lost), semihosting for the exit code.
    ``storage``: the board's storage file, given as its description says (qemu_boards.py):
    backing the machine's RAM (mapped shared: what the guest writes there is in the file at once,
    and stays when QEMU is killed), or named to the firmware, which writes it by semihosting.
    ``uart_fds``: instead, {"link": fd, "trust": fd}: the link and the trust signal (a UART each,
    or the trust signal on the semihosting console: the description's ``trust``) are these
    connected sockets (file descriptors QEMU inherits: the link broker's, ``QemuLinkBoard``)."""
    board_spec = spec(board)
    semihosting = "enable=on,target=native"
    if uart_fds is None:
        serial = ["-serial", "tcp:127.0.0.1:0,server=on,wait=on,nodelay=on"]
    else:
        serial = [a for role in board_spec.uarts
                  for a in ("-chardev", f"socket,id={role},fd={uart_fds[role]}", "-serial", f"chardev:{role}")]
        if board_spec.trust == "semihosting":
            serial += ["-chardev", f"socket,id=trust,fd={uart_fds['trust']}"]
            semihosting += ",chardev=trust"
    if storage is not None and board_spec.storage == "semihosting":
        arg = f"storage={storage}"
        if len(arg.encode()) >= SEMIHOSTING_LINE:
            raise QemuError(f"the storage path {storage} is too long for {board}'s firmware "
                            f"(at most {SEMIHOSTING_LINE - len('storage=') - 1} bytes): choose a shorter one")
        semihosting += ",arg=" + qemu_option(arg)
    if board_spec.flash_image_bytes is None:
        firmware = ["-kernel", str(elf)]
    else:
        firmware = ["-drive", f"if=pflash,unit=0,format=raw,readonly=on,file={qemu_option(str(flash_image(elf)))}"]
    cmd = [qemu_binary(board), "-M", board_spec.qemu_machine or board, "-nographic", "-monitor", "none",
           "-nodefaults", *board_spec.qemu_args, "-semihosting-config", semihosting, *serial, *firmware]
    if storage is not None and board_spec.storage == "memory-backend":
        cmd += ["-object", f"memory-backend-file,id=storage,size={st.QEMU_PSRAM_BYTES},mem-path={qemu_option(str(storage))},share=on",
                "-machine", "memory-backend=storage"]
    if icount is not None:
        cmd += ["-icount", f"shift={icount}"]
    for path, addr in preload:
        cmd += ["-device", f"loader,file={path},addr={addr:#x}"]
    return cmd


def qemu_option(value: str) -> str:
    """A value inside a QEMU option list (``a=b,c=d``): a comma in it is doubled."""
    return value.replace(",", ",,")


def storage_file_bytes(board: str, model_bytes: int) -> int:
    """The size of the storage file the launcher makes for ``board``: the RAM it backs, or the
    storage the firmware has."""
    board_spec = spec(board)
    if board_spec.storage == "memory-backend":
        return st.QEMU_PSRAM_BYTES
    return firmware_storage_bytes(board, model_bytes)


def firmware_storage_bytes(board: str, model_bytes: int) -> int:
    """The storage the firmware on ``board`` has (BOARD_STORAGE_BYTES)."""
    board_spec = spec(board)
    return st.storage_bytes(model_bytes) if board_spec.storage_bytes is None else board_spec.storage_bytes


class QemuBoard:
    """One emulated board. ``with QemuBoard(elf) as b: b.serial.write(...); code = b.wait()``.

    ``preload``: [(path, address)] files put into guest memory before reset;
    ``icount``: QEMU ``-icount shift=icount`` (deterministic virtual time: an instruction is
    2**icount ns, so SysTick at 25 MHz counts 2**icount / 40 ticks per instruction)."""

    def __init__(self, elf, board: str = "mps2-an386", *, preload=(), icount: int | None = None,
                 timeout: float = 60.0, serial_timeout: float = 10.0):
        board_memory(board)
        self.elf, self.board, self.preload, self.icount = Path(elf), board, list(preload), icount
        self.timeout, self.serial_timeout = timeout, serial_timeout
        self.proc: subprocess.Popen | None = None
        self.serial = None
        self.port: int | None = None
        self._process: BoardProcess | None = None
        self._deadline = 0.0

    def command(self) -> list[str]:
        boot_image(self.elf, self.board)
        return qemu_command(self.elf, self.board, icount=self.icount, preload=self.preload)

    def __enter__(self) -> "QemuBoard":
        from serial.urlhandler.protocol_socket import Serial as SocketSerial

        class KeepEarlyBytes(SocketSerial):
            """pyserial's socket:// port without the input flush its open() ends with: QEMU runs the
            guest once the host connects (wait=on), and what the firmware sends first (a banner)
            may arrive before open() returns; flushed, the host would read the middle of it."""
            def reset_input_buffer(self) -> None:
                pass

        self._deadline = time.monotonic() + self.timeout
        # QEMU blocks (wait=on) after printing the port, so the line always comes
        self._process = BoardProcess(self.command(), port_re=_PORT, what="QEMU", error=QemuError, stdout=False,
                                     new_session=True, log_prefix=f"qemu-{self.board}-", timeout=self.timeout)
        self.proc, self.port = self._process.proc, self._process.port
        try:
            self.serial = KeepEarlyBytes(f"socket://127.0.0.1:{self.port}", timeout=self.serial_timeout)
        except BaseException:
            self.close()
            raise
        return self

    @property
    def stderr(self) -> str:
        return self._process.output if self._process is not None else ""

    def read_exactly(self, n: int) -> bytes:
        """n bytes from the UART, or QemuError when the board stops sending or exits."""
        out = bytearray()
        while len(out) < n:
            chunk = self.serial.read(n - len(out))
            if not chunk:
                state = "exited with " + str(self.proc.returncode) if self.proc.poll() is not None else "silent"
                raise QemuError(f"board {state} after {len(out)} of {n} bytes:\n{self.stderr}")
            out += chunk
        return bytes(out)

    def wait(self, timeout: float | None = None) -> int:
        """QEMU's exit status: the firmware's board_exit code."""
        if timeout is None:
            timeout = max(0.1, self._deadline - time.monotonic())
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise QemuError(f"{self.board} did not exit within {timeout:.1f} s") from None

    def close(self) -> None:
        if self.serial is not None:
            try:
                self.serial.close()
            except Exception:
                pass
            self.serial = None
        if self._process is not None:
            self._process.stop(0)

    def __exit__(self, *exc) -> None:
        self.close()


# -- the C runtime on the core ----------------------------------------------------------------

def job_bytes(blob: bytes, samples, labels, learn, cutoff=False) -> tuple[bytes, int, int]:
    """The job runtime.c reads at JOB_ADDR; returns (job, sample_bytes, rows). ``learn`` and
    ``cutoff`` (infer with the model's cutoff) are one bool or one per sample."""
    import numpy as np

    from edgelearn.encoders import as_rows

    rows_list = [np.ascontiguousarray(as_rows(np.asarray(x)), dtype=np.uint8) for x in samples]
    rows = rows_list[0].shape[0] if rows_list else 1
    sample_bytes = rows_list[0].size if rows_list else 0
    if any(r.shape != rows_list[0].shape for r in rows_list):
        raise ValueError("every sample of a job must have the same shape")
    n = len(rows_list)
    learn = np.broadcast_to(np.asarray(learn, dtype=bool), (n,))
    cutoff = np.broadcast_to(np.asarray(cutoff, dtype=bool), (n,))
    if (learn & cutoff).any():
        raise ValueError("a learning sample always runs T steps: cutoff is for inference only")
    head = b"ELJB" + b"".join(int(v).to_bytes(4, "little") for v in (len(blob), n, sample_bytes, rows))
    pad = b"\0" * (-len(blob) % 4)
    tail = bytes(x for i in range(n) for x in (int(labels[i]) if learn[i] else 0,
                                                int(learn[i]) | int(cutoff[i]) << 1))
    return head + blob + pad + b"".join(r.tobytes() for r in rows_list) + tail, sample_bytes, rows


def job_addr(board: str) -> int:
    """Where QemuBoard preloads a job on ``board`` (runtime.c)."""
    if spec(board).job_addr is None:
        raise QemuError(f"{board} has no memory for a preloaded job (only {', '.join(JOB_ADDR)} have)")
    return spec(board).job_addr


def runtime_firmware(blob_bytes: int, arena_bytes: int, board: str = "mps2-an386") -> Path:
    """runtime.c with the C runtime, a static blob buffer and arena of the given sizes."""
    return build_firmware(["runtime.c"], board, runtime=True, name="runtime",
                          defines={"EDGELEARN_BLOB_BYTES": blob_bytes, "EDGELEARN_ARENA_BYTES": arena_bytes,
                                   "BOARD_JOB_ADDR": f"{job_addr(board):#x}u"})


def run_runtime(blob: bytes, samples, labels, learn, *, cutoff=False, board: str = "mps2-an386",
                icount: int | None = None, arena_bytes: int | None = None, timeout: float = 120.0) -> dict:
    """Run samples through the C runtime on the emulated core (runtime.c); ``cutoff`` (one bool
    or one per sample): infer with the model's cutoff. Returns {exit, init_status, arena_bytes,
    arena_required, tick_overhead, status, prediction, ticks, steps, blob}: the per-sample
    arrays and the sealed blob with the parameters learned on the core."""
    import numpy as np

    from edgelearn import native

    if arena_bytes is None:
        arena_bytes = native.arena_required(blob)
        if arena_bytes == 0:
            raise QemuError("the C loader refuses this blob")
    blob_cap = (len(blob) + 7) // 8 * 8
    elf = runtime_firmware(blob_cap, arena_bytes, board)
    job, _, _ = job_bytes(blob, samples, labels, learn, cutoff)
    with tempfile.TemporaryDirectory() as tmp:
        job_file = Path(tmp) / "job.bin"
        job_file.write_bytes(job)
        with QemuBoard(elf, board, preload=[(job_file, job_addr(board))], icount=icount, timeout=timeout) as b:
            def u32() -> int:
                return int.from_bytes(b.read_exactly(4), "little")

            banner = b.read_exactly(4)
            if banner != b"ELRS":
                raise QemuError(f"no banner from the runtime firmware (read {banner!r})")
            out = {"init_status": u32()}
            if out["init_status"] == 0xFFFFFFFF:
                raise QemuError(f"the runtime firmware found no job at {job_addr(board):#x}")
            out["arena_bytes"], out["arena_required"] = u32(), u32()
            if out["init_status"] != 0:
                b.wait()
                raise QemuError(f"el_init_static refused the blob on the board: status {out['init_status']}")
            n, out["tick_overhead"] = u32(), u32()
            rec = np.frombuffer(b.read_exactly(16 * n), dtype="<u4").reshape(n, 4)
            out["status"], out["prediction"], out["ticks"], out["steps"] = (rec[:, k].copy() for k in range(4))
            out["blob"] = b.read_exactly(u32())
            if b.read_exactly(4) != b"END!":
                raise QemuError("the runtime firmware's report did not end with END!")
            out["exit"] = b.wait()
    return out


def ticks_to_instructions(ticks, shift: int = 7):
    """SysTick ticks at 25 MHz under -icount shift=N to instructions (2**N ns each)."""
    return ticks * 1e9 / SYSTICK_HZ / 2 ** shift


# -- the link-protocol firmware (targets/firmware) on the emulated board ------------------------

def protocol_sizes(board: str) -> dict:
    """The protocol firmware's sizes on ``board`` (model_bytes per model area, arena_bytes,
    seqlog, stack_bytes): PROTOCOL_SIZES unless the board's description says otherwise."""
    return {**PROTOCOL_SIZES, **spec(board).sizes}


def protocol_firmware(board: str = "mps2-an386", *, model_bytes: int | None = None,
                      arena_bytes: int | None = None, seqlog: int | None = None, sources=(),
                      defines: dict | None = None, name: str = "protocol") -> Path:
    """The firmware of docs/protocol.md for an emulated board: targets/firmware's main loop, link
    protocol, authentication and checkpoints, the C runtime, and the board's support behind
    board.h (the UART with the RX interrupt and WFI, semihosting exit, the storage). Sizes not
    given are the board's (``protocol_sizes``); ``sources`` and ``defines``: more of each (a
    model compiled in, firmware_host/deploy.py)."""
    from .native_board import FIRMWARE_SOURCES

    given = {"model_bytes": model_bytes, "arena_bytes": arena_bytes, "seqlog": seqlog}
    sizes = {**protocol_sizes(board), **{k: v for k, v in given.items() if v is not None}}
    board_spec = spec(board)
    storage = {"BOARD_STORAGE_BYTES": f"{firmware_storage_bytes(board, sizes['model_bytes'])}u"}
    if board_spec.storage_addr is not None:
        storage["BOARD_STORAGE_ADDR"] = f"{board_spec.storage_addr:#x}u"
    return build_firmware([*(FW_DIR / n for n in FIRMWARE_SOURCES), *sources], board, runtime=True, name=name,
                          stack_bytes=sizes["stack_bytes"],
                          defines={"EL_FW_MODEL_BYTES": f"{sizes['model_bytes']}u",
                                   "EDGELEARN_ARENA_BYTES": sizes["arena_bytes"],
                                   "EL_FW_SEQLOG": f"{sizes['seqlog']}u", "EL_FW_BOARD_NAME": f'"{board}"',
                                   **storage, **(defines or {})})


class QemuLinkBoard(BoardProcess):
    """An emulated board running the protocol firmware, serving its UART on a TCP port:

        with QemuLinkBoard() as qb:             # builds (cached), starts QEMU, parses the port
            with Board(qb.url) as b: ...        # firmware_host.board.Board; connect as often as you like

    It does not connect itself. The port is the link broker's (``firmware_host/link_broker.py``,
    the process ``.pid``, QEMU its child in the same process group): it owns QEMU's UART0 (a
    socket pair, never a port of its own) and serves one client at a time, the next one after
    the previous disconnected, while the firmware (its model, what it learned) runs on in
    between; with the native board's rule for holding the link: while a client waits, the
    current one keeps it only as long as authenticated requests come (the firmware reports each
    on its trust signal, a second UART or the semihosting console), at most the grace period apart (``$EDGELEARN_BOARD_GRACE_MS``, default 2000 ms;
    ``env=`` as for ``NativeBoard``). ``.wait()`` is QEMU's exit status (the firmware's exit code).
    ``detach=True``: QEMU runs in a session of its own and outlives this Python process
    (``edgelearn board start``); stop it with ``.stop()`` or by killing ``.pid``'s process group.
    Otherwise it is killed on ``stop()``, on leaving the ``with`` block, on exceptions and at
    interpreter exit. QEMU's stderr and the broker's output go to ``.log`` (a file, so a detached
    QEMU never writes into a dead pipe): the file given, else a temporary one that ``stop()`` removes.
    Its storage is a file given as the board's description says (backing the mps2 PSRAM, or
    written through by semihosting on netduinoplus2; ``storage=PATH``, kept; else a temporary one,
    removed on ``stop()``), provisioned like the native board's (``NativeBoard``): a killed QEMU
    started again on the same file restores its checkpoint (netduinoplus2 has room for its key and
    boot count only, qemu_boards.py)."""

    def __init__(self, board: str = "mps2-an386", detach: bool = False, *, elf=None, start_timeout: float = 30.0,
                 log=None, storage=None, key: keys.Key | None | bool = None, env: dict | None = None):
        spec(board)                             # an unknown board fails before anything starts
        self.board = board
        self.elf = Path(elf) if elf is not None else protocol_firmware(board)
        boot_image(self.elf, board)
        model_bytes = protocol_sizes(board)["model_bytes"]
        self.storage, self.key, cleanup = st.for_launcher(storage, f"qemu-{board}-", model_bytes, key,
                                                          size=storage_file_bytes(board, model_bytes))

        # the link's UART and the trust signal's: QEMU holds one end of each socket pair, the broker the other
        pairs = {role: socket.socketpair() for role in ("link", "trust")}
        qemu_ends = {role: pair[1].fileno() for role, pair in pairs.items()}
        qemu = qemu_command(self.elf, board, storage=self.storage, uart_fds=qemu_ends)
        broker = [sys.executable, "-I", Path(__file__).with_name("link_broker.py"), "--uart", pairs["link"][0].fileno(),
                  "--trust", pairs["trust"][0].fileno(), "--pass-fds", ",".join(map(str, qemu_ends.values())),
                  "--", *qemu]
        try:
            # the broker announces its port once the firmware has booted (its first trust byte)
            super().__init__(broker, port_re=PORT_LINE, what="QEMU", error=QemuError, stdout=True,
                             new_session=True, detach=detach, log=log, log_prefix=f"qemu-{board}-",
                             env={**os.environ, **(env or {})}, timeout=start_timeout, on_stop=cleanup,
                             pass_fds=[s.fileno() for pair in pairs.values() for s in pair])
        finally:
            for pair in pairs.values():
                for s in pair:
                    s.close()

    @property
    def stderr(self) -> str:
        return self.output

    def stop(self, grace: float = 0.0) -> int | None:
        """Kill QEMU (its whole process group) and remove its own log. Returns its exit status."""
        return super().stop(grace)
