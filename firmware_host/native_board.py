"""The native board: targets/firmware's main loop built with the host's gcc into an
executable that serves the link protocol on a TCP socket (board_native.c).

    with NativeBoard() as nb:           # builds once into the cache, starts, parses PORT
        with Board(nb.url) as b: ...

The executable lives in the build cache (``edgelearn.buildcache``: ``$EDGELEARN_BUILD_DIR``,
``$XDG_CACHE_HOME/edgelearn`` or ``~/.cache/edgelearn``), ``firmware/<hash>``, the hash covering
the sources, the flags and the compiler. The process reads its stdin: when the launcher closes
it (or dies), the board exits, so no process is orphaned. ``detach=True`` (``edgelearn board
start``): it ignores its stdin (``EDGELEARN_BOARD_DETACHED=1``), runs in a session of its own
and outlives its launcher.

Its storage (emulated flash, ``firmware_host.storage``) is a file: ``storage=PATH`` keeps it (an
existing file is used as it is, so a board restarted on it restores its checkpoint), else a
temporary one is made and removed when the board stops. A new storage file is provisioned with
``key`` (None: a fresh one; False: no key), which this process remembers (``keys.remember``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from edgelearn import buildcache, resources

from . import keys, storage as st
from .launch import BoardProcess

C_DIR = resources.C_DIR
FW_DIR = resources.FIRMWARE_DIR
FIRMWARE_SOURCES = ("main_loop.c", "protocol.c", "session.c", "checkpoint.c", "hmac_sha256.c")
SOURCES = [FW_DIR / n for n in (*FIRMWARE_SOURCES, "board_native.c")] + buildcache.runtime_sources(device=True)
HEADERS = sorted(FW_DIR.glob("*.h")) + buildcache.runtime_headers()
FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
EXE = "el_board_native"
MODEL_BYTES = 128 * 1024       # each of the two model areas (EL_FW_MODEL_BYTES)
PORT_LINE = re.compile(r"^PORT (\d+)$", re.M)


class BoardStartError(RuntimeError):
    pass


def build(model_bytes: int = MODEL_BYTES, arena_bytes: int = 64 * 1024, seqlog: int = 4096,
          defines: dict | None = None) -> Path:
    """Compile the native board (once per sources/flags/compiler) and return the executable's path.
    ``defines``: more -D macros (e.g. {"EL_LINK_VERSION": "1u"}: a board of another protocol version)."""
    defines = (f"-DEL_FW_MODEL_BYTES={model_bytes}u", f"-DEDGELEARN_ARENA_BYTES={arena_bytes}",
               f"-DEL_FW_SEQLOG={seqlog}u", '-DEL_FW_BOARD_NAME="native"',
               *(f"-D{k}={v}" for k, v in sorted((defines or {}).items())))
    cc = shutil.which(os.environ.get("CC", "gcc"))
    if cc is None:
        raise BoardStartError("the native board needs a C compiler (gcc): apt-get install gcc")

    def compile_into(out: Path) -> None:
        r = subprocess.run([cc, *FLAGS, *defines, "-o", str(out / EXE), *map(str, SOURCES)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BoardStartError(f"building the native board failed:\n{r.stderr}")

    key = buildcache.key(files=SOURCES + HEADERS, flags=[*FLAGS, *defines], tools=[cc])
    return buildcache.cached("firmware", key, compile_into) / EXE


class NativeBoard(BoardProcess):
    """A running native board process; a context manager that always stops it (unless detached).
    ``log``: where its output goes (default: a temporary file, removed when it stops)."""

    def __init__(self, start_timeout: float = 10.0, *, detach: bool = False, log=None, storage=None,
                 key: keys.Key | None | bool = None, env: dict | None = None, **build_args):
        self.exe = build(**build_args)
        self.storage, self.key, cleanup = st.for_launcher(storage, "native-", build_args.get("model_bytes", MODEL_BYTES), key)

        env = {**os.environ, "EDGELEARN_BOARD_PORT": "0", "EDGELEARN_BOARD_STORAGE": str(self.storage),
               **({"EDGELEARN_BOARD_DETACHED": "1"} if detach else {}), **(env or {})}
        super().__init__([self.exe], port_re=PORT_LINE, what="the native board", error=BoardStartError,
                         log=log, log_prefix="native-", stdin_pipe=not detach, detach=detach, env=env,
                         timeout=start_timeout, on_stop=cleanup)

    def stop(self, timeout: float = 3.0) -> int | None:
        """Close its stdin (it exits), wait; kill it if it does not. Returns the exit status."""
        return super().stop(grace=timeout)
