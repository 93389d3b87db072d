"""The native board: targets/firmware's main loop built with the host's gcc into an
executable that serves the link protocol on a TCP socket (board_native.c).

    with NativeBoard() as nb:           # builds once into the cache, starts, parses PORT
        with Board(nb.url) as b: ...

The executable lives in ``$EDGELEARN_BUILD_DIR`` (or ``~/.cache/edgelearn``)/firmware/<hash>,
the hash covering the sources and flags, as edgelearn/native.py does. The process reads its
stdin: when the launcher closes it (or dies), the board exits, so no process is orphaned.
"""
from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgelearn import resources

C_DIR = resources.C_DIR
FW_DIR = resources.FIRMWARE_DIR
SOURCES = [FW_DIR / n for n in ("main_loop.c", "protocol.c", "board_native.c")] + \
          [C_DIR / n for n in ("el_kernels.c", "el_kernels_spide.c", "el_blob.c", "el_stop.c", "el_spide.c", "el_static.c")]
HEADERS = [FW_DIR / "board.h", FW_DIR / "protocol.h"] + sorted(C_DIR.glob("*.h"))
FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")


class BoardStartError(RuntimeError):
    pass


def build(model_bytes: int = 128 * 1024, arena_bytes: int = 64 * 1024, seqlog: int = 4096) -> Path:
    """Compile the native board (once per sources/flags) and return the executable's path."""
    defines = (f"-DEL_FW_MODEL_BYTES={model_bytes}u", f"-DEDGELEARN_ARENA_BYTES={arena_bytes}",
               f"-DEL_FW_SEQLOG={seqlog}u", '-DEL_FW_BOARD_NAME="native"')
    h = hashlib.sha256()
    for p in SOURCES + HEADERS:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    h.update(repr((FLAGS, defines)).encode())
    cache = Path(os.environ.get("EDGELEARN_BUILD_DIR") or Path.home() / ".cache" / "edgelearn")
    out_dir = cache / "firmware" / h.hexdigest()[:16]
    exe = out_dir / "el_board_native"
    if exe.exists():
        return exe
    cc = shutil.which(os.environ.get("CC", "gcc"))
    if cc is None:
        raise BoardStartError("the native board needs a C compiler (gcc): apt-get install gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp_exe = Path(tmp) / exe.name
        r = subprocess.run([cc, *FLAGS, *defines, "-o", str(tmp_exe), *map(str, SOURCES)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BoardStartError(f"building the native board failed:\n{r.stderr}")
        os.replace(tmp_exe, exe)               # atomic: parallel builds never see half a file
    return exe


class NativeBoard:
    """A running native board process; a context manager that always stops it."""

    def __init__(self, start_timeout: float = 10.0, **build_args):
        self.exe = build(**build_args)
        self.proc = subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env={**os.environ, "EDGELEARN_BOARD_PORT": "0"})
        try:
            self.port = self._read_port(start_timeout)
        except BaseException:
            self.stop()
            raise
        self.url = f"socket://127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode(errors="replace") if ready else ""
        if not line.startswith("PORT "):
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
            raise BoardStartError(f"the native board did not report its port (got {line!r}) {err}")
        return int(line.split()[1])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 3.0) -> int:
        """Close its stdin (it exits), wait; kill it if it does not. Returns the exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
