"""The registry of running boards behind ``edgelearn board start|stop|list``.

``launch(kind)`` starts a board of any kind (QEMU or native) and returns it running; the demo
uses it, and so does ``start``. A started board is detached: it outlives the command that
started it (``QemuLinkBoard(detach=True)``, ``NativeBoard(detach=True)``, which then ignores its
stdin) and runs in its own process group, its output in ``boards/NAME.log`` beside the
registry, its storage (emulated flash: its key and checkpoints) in ``boards/NAME.storage``, kept
when it stops, so a board started again under the same name restores what it had learned; its
key goes into the keystore (``firmware_host.keys``). Each is recorded as {name, kind, pid, url, started, log} in a JSON file,
``~/.cache/edgelearn/boards.json`` (or ``$EDGELEARN_BOARDS_FILE``). ``running()`` drops entries
whose process is gone; ``stop`` kills the board's whole process group, so nothing is orphaned.

    rec = start("native")            # {"name": "native-1", "url": "socket://127.0.0.1:PORT", ...}
    resolve("native-1")              # the URL; a URL is returned as it is
    stop("native-1")
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

from . import keys
from .home import registry_path
from .qemu_boards import BOARDS as EMULATED

KINDS = (*EMULATED, "native")           # the emulated boards (qemu_boards.py) and the native one


class RegistryError(RuntimeError):
    """An unknown or duplicate board name, or a board that would not start."""


@contextlib.contextmanager
def _locked():
    """The registry's entries under an exclusive lock; what the block leaves is written back."""
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(path.read_text()) if path.exists() else []
            if not isinstance(entries, list):
                entries = []
        except (json.JSONDecodeError, OSError):
            entries = []                       # a damaged registry is rebuilt, not fatal
        box = [entries]
        yield box
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(box[0], indent=2) + "\n")
        os.replace(tmp, path)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running() -> list[dict]:
    """The boards of the registry whose process still runs (the dead ones are dropped)."""
    with _locked() as box:
        box[0] = [e for e in box[0] if isinstance(e, dict) and alive(int(e.get("pid", 0) or 0))]
        return list(box[0])


def find(name: str) -> dict | None:
    return next((e for e in running() if e["name"] == name), None)


def resolve(port: str) -> str:
    """A pyserial URL or device path as it is; a board name of the registry to its URL."""
    if "://" in port or port.startswith("/dev/") or port.upper().startswith("COM"):
        return port
    entry = find(port)
    if entry is None:
        names = ", ".join(e["name"] for e in running()) or "none running"
        raise RegistryError(f"unknown board {port!r} (boards: {names}); --port takes a URL such as "
                            f"socket://127.0.0.1:PORT or the name of a board from 'edgelearn board list'")
    return entry["url"]


def _log_dir() -> Path:
    d = registry_path().parent / "boards"
    d.mkdir(parents=True, exist_ok=True)
    return d


def launch(kind: str = "mps2-an386", *, detach: bool = False, log=None, storage=None):
    """A running board of ``kind``: QEMU serving the protocol firmware (``QemuLinkBoard``) or the
    native board (``NativeBoard``), both a ``launch.BoardProcess`` (``.url``, ``.port``, ``.pid``,
    ``.log``, ``.storage``, ``.key``, ``.stop()``, a context manager). Builds the firmware first
    when it is not cached. ``storage``: the board's storage file (None: a temporary one)."""
    if kind not in KINDS:
        raise RegistryError(f"unknown board kind {kind!r}; kinds: {', '.join(KINDS)}")
    if kind == "native":
        from .native_board import NativeBoard
        return NativeBoard(detach=detach, log=log, storage=storage)
    from .qemu import QemuLinkBoard
    return QemuLinkBoard(board=kind, detach=detach, log=log, storage=storage)


def start(kind: str = "mps2-an386", name: str | None = None) -> dict:
    """Start a detached board of ``kind`` and record it; returns its entry."""
    if kind not in KINDS:
        raise RegistryError(f"unknown board kind {kind!r}; kinds: {', '.join(KINDS)}")
    current = {e["name"] for e in running()}
    if name is None:
        n = 1
        while f"{kind}-{n}" in current:
            n += 1
        name = f"{kind}-{n}"
    elif not name or "/" in name or ":" in name:
        raise RegistryError(f"bad board name {name!r}: use letters, digits, '-', '_' or '.'")
    if name in current:
        raise RegistryError(f"a board named {name!r} is already running; stop it or choose another --name")
    board = launch(kind, detach=True, log=_log_dir() / f"{name}.log", storage=_log_dir() / f"{name}.storage")
    board.disown()                         # detached: this process will not wait for it
    if board.key is not None:
        keys.store(board.key)
    entry = {"name": name, "kind": kind, "pid": board.pid, "url": board.url,
             "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "log": str(board.log),
             "storage": str(board.storage), "device_id": board.key.id_hex if board.key else ""}
    with _locked() as box:
        box[0] = [e for e in box[0] if e.get("name") != name] + [entry]
    return entry


def _kill(pid: int, grace: float = 2.0) -> None:
    """SIGTERM to the board's process group (its own session), SIGKILL after ``grace``."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    send = (lambda s: os.killpg(pid, s)) if group == pid else (lambda s: os.kill(pid, s))
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            send(sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid):
                return
            time.sleep(0.02)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the board is our own child (started in this process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(name: str) -> dict:
    """Stop the board ``name`` (its process group) and drop it from the registry."""
    entry = find(name)
    if entry is None:
        names = ", ".join(e["name"] for e in running()) or "none running"
        raise RegistryError(f"no board named {name!r} is running (boards: {names})")
    _kill(int(entry["pid"]))
    if entry.get("log"):
        with contextlib.suppress(OSError):
            os.unlink(entry["log"])
    with _locked() as box:
        box[0] = [e for e in box[0] if e.get("name") != name]
    return entry


def stop_all() -> list[dict]:
    return [stop(e["name"]) for e in running()]
