"""The one build cache of everything edgelearn compiles: the C runtime through cffi
(``edgelearn.native``), the native board with the host's gcc (``firmware_host.native_board``),
firmware for the emulated boards (``firmware_host.qemu``) and the runtime cross-compiled per
catalogue target (``edgelearn.profile.cross_compile``).

- ``root()``: ``$EDGELEARN_BUILD_DIR``, else ``$XDG_CACHE_HOME/edgelearn``, else
  ``~/.cache/edgelearn``; never the source tree or site-packages.
- ``key(files=, flags=, tools=, texts=)``: a content address, the hash of the input files (name
  and bytes), the flags, the tools (path and ``--version``) and any other text that shapes the
  output. A change to any of them is a new key, so a stale build is never used.
- ``cached(kind, key, build)``: the directory ``root()/kind/key``; the first caller builds it
  aside (a temporary directory beside it) and publishes it with one ``os.replace``, so a
  directory that exists is complete, and builds running in parallel never see half of one.
- ``RUNTIME_SOURCES`` / ``DEVICE_SOURCES``, ``runtime_sources()``, ``runtime_headers()``: the
  portable C runtime of targets/c, and what a device adds (el_static.c: the static arena).

    out = cached("firmware", key(files=srcs, flags=cmd, tools=[cc]), lambda d: compile_into(d))
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from . import resources

KERNELS = "el_kernels.c"        # the kernels every network calls: STOP's and SPIDE's
RUNTIME_SOURCES = (KERNELS, "el_kernels_spide.c", "el_conv2d.c", "el_pool.c", "el_scan2d.c", "el_psn.c", "el_blob.c",
                   "el_stop.c", "el_spide.c")
DEVICE_SOURCES = RUNTIME_SOURCES + ("el_static.c",)      # el_static.c: the device's static arena
KEY_LENGTH = 16                                          # hex digits of the sha256 in a key


def root() -> Path:
    """Where builds go: $EDGELEARN_BUILD_DIR, else $XDG_CACHE_HOME/edgelearn, else ~/.cache/edgelearn."""
    env = os.environ.get("EDGELEARN_BUILD_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):                       # the XDG spec: a relative path is ignored
        return Path(xdg) / "edgelearn"
    return Path.home() / ".cache" / "edgelearn"


def runtime_sources(device: bool = False) -> list[Path]:
    """The portable runtime's C sources (targets/c); with ``device``, el_static.c too."""
    return [resources.C_DIR / name for name in (DEVICE_SOURCES if device else RUNTIME_SOURCES)]


def runtime_headers() -> list[Path]:
    return sorted(resources.C_DIR.glob("*.h"))


def python_cc() -> str:
    """The C compiler cffi (through setuptools) builds extension modules with: $CC, else the
    one Python was built with."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()[0]


@functools.lru_cache(maxsize=None)
def _version(path: str, _real: str, _mtime_ns: int, _size: int) -> str:
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f"unusable: {err}"
    return r.stdout + r.stderr


def tool_identity(tool: str) -> str:
    """A tool as a build depends on it: where it is and what ``--version`` says (run once per
    binary and process; a reinstalled binary is asked again)."""
    path = shutil.which(tool)
    if path is None:
        return f"{tool}: not found"
    real = os.path.realpath(path)
    st = os.stat(real)
    return f"{tool} = {path} -> {real}\n" + _version(path, real, st.st_mtime_ns, st.st_size)


def key(*, files: Iterable[Path] = (), flags: Iterable[str] = (), tools: Iterable[str] = (),
        texts: Iterable[str] = ()) -> str:
    """The content address of a build: its input files (name and bytes, in order), its flags
    (the command line, in order), its tools and any other text that shapes the output."""
    h = hashlib.sha256()

    def part(tag: bytes, data: bytes) -> None:
        h.update(tag + len(data).to_bytes(8, "little") + data)

    seen = set()
    for path in map(Path, files):
        if path in seen:
            continue
        seen.add(path)
        part(b"F", path.name.encode())
        part(b"C", path.read_bytes())
    for flag in flags:
        part(b"A", str(flag).encode())
    for tool in tools:
        part(b"T", tool_identity(tool).encode())
    for text in texts:
        part(b"X", text.encode())
    return h.hexdigest()[:KEY_LENGTH]


def output_dir(kind: str, key: str) -> Path:
    """Where the build ``key`` of ``kind`` (``native``, ``firmware``, ``cross/<target>``...) lives."""
    return root() / kind / key


def cached(kind: str, key: str, build: Callable[[Path], object]) -> Path:
    """The directory of the build ``key``: built once by ``build(directory)``, which writes
    its outputs (and only those) into the empty directory it is given. That directory is
    beside the final one and is moved there with one ``os.replace`` when ``build`` returns,
    so a published directory is always complete; if another process published the same key
    first, its directory is used and this one discarded. An exception leaves nothing behind."""
    final = output_dir(kind, key)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        build(aside)
        try:
            os.replace(aside, final)
        except OSError:
            if not final.is_dir():      # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return final
