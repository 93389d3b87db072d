"""Starting a board process and reading the TCP port it announces: the one launcher behind
the native board (``native_board.NativeBoard``: "PORT n" on stdout), QEMU serving the link
(``qemu.QemuLinkBoard``: the same line from its link broker, ``link_broker.py``) and QEMU running
a firmware (``qemu.QemuBoard``: "waiting for connection on: disconnected:tcp:127.0.0.1:n" on
stderr).

The process's output goes to a log file, never a pipe (nobody has to drain it, and a detached
board never writes into a dead one); the port is read from there. A board that is not
detached is stopped on ``stop()``, on leaving a ``with`` block, on an exception while starting
and at interpreter exit: no orphans. A detached one (``edgelearn board start``) runs in a
session of its own and outlives this process.

    with BoardProcess(cmd, port_re=re.compile(r"^PORT (\\d+)$", re.M), what="the native board",
                      error=BoardStartError, stdin_pipe=True) as bp:
        bp.url                                   # socket://127.0.0.1:PORT
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from edgelearn import buildcache

_live: set["BoardProcess"] = set()


def run_dir() -> Path:
    """Where boards that were given no log file keep theirs (removed when they stop)."""
    d = buildcache.root() / "boards"
    d.mkdir(parents=True, exist_ok=True)
    return d


class BoardProcess:
    """A process that serves a board's link on a TCP port it announces in its output.

    ``port_re``: its group 1 is the port; ``what`` names the process in errors of type ``error``.
    ``log``: the file its stderr (and stdout with ``stdout=True``) goes to; None: a temporary
    one in ``run_dir()``, removed on ``stop()``. ``stdin_pipe``: its stdin is a pipe that
    ``stop()`` closes first (the native board's life line: it exits at end of file).
    ``detach``: not stopped at exit or on leaving a ``with`` block. ``new_session``: a process
    group of its own, killed as a whole (default: when detached). ``on_stop``: called once the
    process is gone (a launcher removes the temporary storage it made). ``pass_fds``: file
    descriptors the process inherits (QEMU's UART sockets, to the link broker)."""

    def __init__(self, cmd, *, port_re: re.Pattern, what: str, error: type[Exception] = RuntimeError,
                 log: Path | str | None = None, log_prefix: str = "board-", stdout: bool = True,
                 stdin_pipe: bool = False, detach: bool = False, new_session: bool | None = None,
                 env: dict | None = None, timeout: float = 10.0, on_stop=None, pass_fds=()):
        self.port_re, self.what, self.error, self.detach = port_re, what, error, detach
        self._on_stop = on_stop
        self.new_session = detach if new_session is None else new_session
        self._owns_log = log is None
        if log is None:
            fd, name = tempfile.mkstemp(prefix=log_prefix, suffix=".log", dir=run_dir())
            self.log = Path(name)
        else:
            self.log = Path(log)
            self.log.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._output: str | None = None       # the log's text once stopped (the file may be gone)
        try:
            self.proc = subprocess.Popen(
                [str(c) for c in cmd], stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=fd if stdout else subprocess.DEVNULL, stderr=fd, env=env,
                start_new_session=self.new_session, close_fds=True, pass_fds=tuple(pass_fds))
        except BaseException:
            self._drop_log()
            raise
        finally:
            os.close(fd)
        self.pid = self.proc.pid
        if not detach:
            _live.add(self)
        try:
            self.port = self._wait_for_port(timeout)
        except BaseException:
            self.stop(0)
            raise
        self.url = f"socket://127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            m = self.port_re.search(self.output)
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                m = self.port_re.search(self.output)     # it may have announced it, then exited
                if m:
                    return int(m.group(1))
                raise self.error(f"{self.what} exited ({self.proc.returncode}) before reporting its port:\n"
                                 f"{self.output}")
            if time.monotonic() > deadline:
                raise self.error(f"{self.what} did not report its port within {timeout:.0f} s:\n{self.output}")
            time.sleep(0.01)

    @property
    def output(self) -> str:
        """What the process wrote to its log so far (all of it, once stopped)."""
        if self._output is not None:
            return self._output
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """The exit status (a firmware's board_exit code, e.g. after Board.exit())."""
        return self.proc.wait(timeout=timeout)

    def stop(self, grace: float = 3.0) -> int | None:
        """Stop the board and return its exit status: close its stdin pipe and give it ``grace``
        seconds to exit, then kill it (its whole process group when it has its own)."""
        if self.proc.stdin is not None:          # its life line: at end of file it exits
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            try:
                if self.new_session:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:
                    self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _live.discard(self)
        if self._output is None:
            self._output = self.output
        if self._owns_log:
            self._drop_log()
        if self._on_stop is not None:
            self._on_stop()
            self._on_stop = None
        return self.proc.returncode

    def disown(self) -> None:
        """A detached board this process forgets: it will neither wait for it nor warn that
        it still runs (a registry keeps its pid)."""
        _live.discard(self)
        if self.proc.poll() is None:
            self.proc.returncode = 0

    def _drop_log(self) -> None:
        try:
            self.log.unlink()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if not self.detach:
            self.stop()


@atexit.register
def _stop_all() -> None:
    for board in list(_live):
        board.stop(1.0)
