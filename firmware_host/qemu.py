"""Emulated boards: build firmware for QEMU mps2-an386 / mps2-an500 and run it.

``build_firmware`` compiles board support (``targets/boards/mps2``), the application sources
and optionally the C runtime (``targets/c``) with ``arm-none-eabi-gcc`` into the build cache
(``edgelearn.buildcache``, then ``firmware/<board>/<hash>``; the hash covers every source,
flag, define, the catalogue entry and the compiler, so a change always rebuilds).
The linker script gets the real board's flash and SRAM from ``targets/catalogue.json``: a
firmware that does not fit raises ``FirmwareTooBig``.

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
port is the link broker's (``firmware_host/link_broker.py``), which owns QEMU's UART0 and applies
the native board's rule: a waiting client gets the link once the current one has gone the grace
period without an authenticated request (the firmware reports each on UART1).
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

BOARD_DIR = resources.BOARDS_DIR / "mps2"
C_DIR = resources.C_DIR
FW_DIR = resources.FIRMWARE_DIR
CATALOGUE = resources.CATALOGUE

BOARDS = ("mps2-an386", "mps2-an500")
BOARD_SOURCES = ("startup.c", "board.c")
CFLAGS = ("-std=c99", "-ffreestanding", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
          "-ffunction-sections", "-fdata-sections")
LDFLAGS = ("-nostdlib", "-Wl,--gc-sections")   # -lgcc goes after the objects
JOB_ADDR = {"mps2-an386": 0x21000000,           # PSRAM: where preloaded jobs go (QEMU 7.2
            "mps2-an500": 0x60000000}           # maps the AN500's at 0x60000000)
SYSTICK_HZ = 25_000_000                         # the mps2 core clock


class QemuError(RuntimeError):
    """A tool is missing, a build failed, or QEMU misbehaved."""


class FirmwareTooBig(QemuError):
    """The firmware does not fit the real board's memory (the linker refused it)."""


def board_memory(board: str) -> dict:
    """The catalogue's entry for ``board`` (flash, sram, toolchain flags)."""
    if board not in BOARDS:
        raise QemuError(f"unknown board {board!r}; emulated boards: {', '.join(BOARDS)}")
    return json.loads(CATALOGUE.read_text())["targets"][board]


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise QemuError(f"{name} not found: install it with apt-get install -y {package}")
    return path


def cross_compiler() -> str:
    return _tool("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")


def qemu_binary() -> str:
    return _tool("qemu-system-arm", "qemu-system-arm")


def build_firmware(sources, board: str = "mps2-an386", *, runtime: bool = False,
                   defines: dict | None = None, stack_bytes: int = 16384, name: str = "firmware") -> Path:
    """Compile and link ``sources`` (paths; names are looked up in targets/boards/mps2) with
    the board support, and the C runtime when ``runtime``. Returns the ELF (cached)."""
    entry = board_memory(board)
    cc = cross_compiler()
    srcs = [Path(s) if os.sep in str(s) else BOARD_DIR / s for s in sources]
    srcs = [BOARD_DIR / s for s in BOARD_SOURCES] + srcs
    if runtime:
        srcs += buildcache.runtime_sources(device=True)
    defines = dict(defines or {})
    flags = list(entry["toolchain"]["flags"]) + list(CFLAGS) + [f"-I{BOARD_DIR}", f"-I{C_DIR}"]
    flags += [f"-D{k}={v}" for k, v in sorted(defines.items())]
    ld_defs = [f"-DBOARD_FLASH_BYTES={entry['flash']}", f"-DBOARD_SRAM_BYTES={entry['sram']}",
               f"-DBOARD_STACK_BYTES={stack_bytes}"]

    headers = {h for d in {s.parent for s in srcs} | {C_DIR} for h in d.glob("*.h")}
    files = [*srcs, BOARD_DIR / "mps2.ld.S", BOARD_DIR / "board.h", *sorted(headers)]

    def link(out: Path) -> None:
        with tempfile.TemporaryDirectory(dir=out) as tmp:     # the linker script and map: not kept
            ld = Path(tmp) / "mps2.ld"
            _run([cc, "-E", "-P", "-x", "c", *ld_defs, str(BOARD_DIR / "mps2.ld.S"), "-o", str(ld)],
                 "preprocess the linker script")
            cmd = [cc, *flags, *LDFLAGS, "-T", str(ld), f"-Wl,-Map={tmp}/{name}.map",
                   *map(str, srcs), "-lgcc", "-o", str(out / f"{name}.elf")]
            try:
                _run(cmd, f"build {name} for {board}")
            except QemuError as e:
                m = re.search(r"region `(\w+)' overflowed by (\d+) bytes", str(e))
                if m:
                    region = m.group(1)
                    size = entry["sram"] if region == "SRAM" else entry["flash"]
                    raise FirmwareTooBig(
                        f"{name} does not fit {board}: {region} overflowed by {m.group(2)} bytes "
                        f"(the board has {size} bytes of {region.lower()}, targets/catalogue.json)") from None
                raise

    key = buildcache.key(files=files, flags=[cc, board, name, *flags, *ld_defs, *LDFLAGS], tools=[cc])
    return buildcache.cached(f"firmware/{board}", key, link) / f"{name}.elf"


def _run(cmd, what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise QemuError(f"could not {what}:\n$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")


def firmware_size(elf: Path) -> dict:
    """text, data, bss of a firmware (arm-none-eabi-size)."""
    size = shutil.which("arm-none-eabi-size") or "arm-none-eabi-size"
    out = subprocess.run([size, str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = out.splitlines()[1].split()[:3]
    return {"text": int(text), "data": int(data), "bss": int(bss)}


# -- running ---------------------------------------------------------------------------------

_PORT = re.compile(r"waiting for connection on: disconnected:tcp:[\d.]+:(\d+)")


def qemu_command(elf, board: str, *, icount: int | None = None, preload=(), storage=None,
                 uart_fds=None) -> list[str]:
    """QEMU for one board: UART0 as a TCP server on a free port that waits for the host
    (nothing sent before the host connects is lost), semihosting for the exit code.
    ``storage``: a file of QEMU_PSRAM_BYTES that backs the board's PSRAM (mapped shared: what the
    guest writes there is in the file at once, and stays when QEMU is killed).
    ``uart_fds``: instead, UART0, UART1, ... are these connected sockets (file descriptors QEMU
    inherits: the link broker's, ``QemuLinkBoard``)."""
    if uart_fds is None:
        serial = ["-serial", "tcp:127.0.0.1:0,server=on,wait=on,nodelay=on"]
    else:
        serial = [a for i, fd in enumerate(uart_fds)
                  for a in ("-chardev", f"socket,id=uart{i},fd={fd}", "-serial", f"chardev:uart{i}")]
    cmd = [qemu_binary(), "-M", board, "-nographic", "-monitor", "none", "-nodefaults",
           "-semihosting-config", "enable=on,target=native", *serial, "-kernel", str(elf)]
    if storage is not None:
        cmd += ["-object", f"memory-backend-file,id=storage,size={st.QEMU_PSRAM_BYTES},mem-path={storage},share=on",
                "-machine", "memory-backend=storage"]
    if icount is not None:
        cmd += ["-icount", f"shift={icount}"]
    for path, addr in preload:
        cmd += ["-device", f"loader,file={path},addr={addr:#x}"]
    return cmd


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


def runtime_firmware(blob_bytes: int, arena_bytes: int, board: str = "mps2-an386") -> Path:
    """runtime.c with the C runtime, a static blob buffer and arena of the given sizes."""
    return build_firmware(["runtime.c"], board, runtime=True, name="runtime",
                          defines={"EDGELEARN_BLOB_BYTES": blob_bytes, "EDGELEARN_ARENA_BYTES": arena_bytes,
                                   "BOARD_JOB_ADDR": f"{JOB_ADDR[board]:#x}u"})


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
        with QemuBoard(elf, board, preload=[(job_file, JOB_ADDR[board])], icount=icount, timeout=timeout) as b:
            def u32() -> int:
                return int.from_bytes(b.read_exactly(4), "little")

            banner = b.read_exactly(4)
            if banner != b"ELRS":
                raise QemuError(f"no banner from the runtime firmware (read {banner!r})")
            out = {"init_status": u32()}
            if out["init_status"] == 0xFFFFFFFF:
                raise QemuError(f"the runtime firmware found no job at {JOB_ADDR[board]:#x}")
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

PROTOCOL_MODEL_BYTES = 128 * 1024


def protocol_firmware(board: str = "mps2-an386", *, model_bytes: int = PROTOCOL_MODEL_BYTES,
                      arena_bytes: int = 64 * 1024, seqlog: int = 4096) -> Path:
    """The firmware of docs/protocol.md for an emulated board: targets/firmware's main loop, link
    protocol, authentication and checkpoints, the C runtime, and the mps2 board support behind
    board.h (UART0 with the RX interrupt and WFI, semihosting exit, the storage at the start of
    the PSRAM). Same sizes as the native board by default."""
    from .native_board import FIRMWARE_SOURCES

    return build_firmware([FW_DIR / n for n in FIRMWARE_SOURCES], board, runtime=True, name="protocol",
                          defines={"EL_FW_MODEL_BYTES": f"{model_bytes}u", "EDGELEARN_ARENA_BYTES": arena_bytes,
                                   "EL_FW_SEQLOG": f"{seqlog}u", "EL_FW_BOARD_NAME": f'"{board}"',
                                   "BOARD_STORAGE_ADDR": f"{JOB_ADDR[board]:#x}u",
                                   "BOARD_STORAGE_BYTES": f"{st.storage_bytes(model_bytes)}u"})


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
    on UART1), at most the grace period apart (``$EDGELEARN_BOARD_GRACE_MS``, default 2000 ms;
    ``env=`` as for ``NativeBoard``). ``.wait()`` is QEMU's exit status (the firmware's exit code).
    ``detach=True``: QEMU runs in a session of its own and outlives this Python process
    (``edgelearn board start``); stop it with ``.stop()`` or by killing ``.pid``'s process group.
    Otherwise it is killed on ``stop()``, on leaving the ``with`` block, on exceptions and at
    interpreter exit. QEMU's stderr and the broker's output go to ``.log`` (a file, so a detached
    QEMU never writes into a dead pipe): the file given, else a temporary one that ``stop()`` removes.
    Its storage is the file that backs its PSRAM (``storage=PATH``, kept; else a temporary one,
    removed on ``stop()``), provisioned like the native board's (``NativeBoard``): a killed QEMU
    started again on the same file restores its checkpoint."""

    def __init__(self, board: str = "mps2-an386", detach: bool = False, *, elf=None, start_timeout: float = 30.0,
                 log=None, storage=None, key: keys.Key | None | bool = None, env: dict | None = None):
        board_memory(board)
        self.board = board
        self.elf = Path(elf) if elf is not None else protocol_firmware(board)
        self.storage, self.key, cleanup = st.for_launcher(storage, f"qemu-{board}-", PROTOCOL_MODEL_BYTES, key, size=st.QEMU_PSRAM_BYTES)

        # UART0 (the link) and UART1 (the trust signal): QEMU holds one end of each, the broker the other
        pairs = [socket.socketpair() for _ in range(2)]
        (uart, uart_q), (trust, trust_q) = pairs
        qemu = qemu_command(self.elf, board, storage=self.storage, uart_fds=(uart_q.fileno(), trust_q.fileno()))
        broker = [sys.executable, "-I", Path(__file__).with_name("link_broker.py"), "--uart", uart.fileno(),
                  "--trust", trust.fileno(), "--pass-fds", f"{uart_q.fileno()},{trust_q.fileno()}", "--", *qemu]
        try:
            # the broker announces its port once the firmware has booted (its first byte on UART1)
            super().__init__(broker, port_re=PORT_LINE, what="QEMU", error=QemuError, stdout=True,
                             new_session=True, detach=detach, log=log, log_prefix=f"qemu-{board}-",
                             env={**os.environ, **(env or {})}, timeout=start_timeout, on_stop=cleanup,
                             pass_fds=[s.fileno() for pair in pairs for s in pair])
        finally:
            for pair in pairs:
                for s in pair:
                    s.close()

    @property
    def stderr(self) -> str:
        return self.output

    def stop(self, grace: float = 0.0) -> int | None:
        """Kill QEMU (its whole process group) and remove its own log. Returns its exit status."""
        return super().stop(grace)
