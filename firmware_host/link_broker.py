"""The link broker of an emulated board: the native board's rule for holding the link, in front of
QEMU's UART, so that an idle or unauthenticated connection cannot hold an emulated board either
(docs/security.md).

The native board serves its own socket (targets/firmware/board_native.c): while another client
waits, the current connection keeps the link only as long as requests that pass authentication
keep coming (``board_link_trusted``); once it has gone the grace period without one
(``$EDGELEARN_BOARD_GRACE_MS``, default 2000 ms) it is closed and the waiting client served. On
QEMU the UART is a chardev that the firmware cannot close, so the launcher
(``qemu.QemuLinkBoard``) runs this broker as the board's process instead of QEMU itself:

    python -I link_broker.py --uart FD --trust FD [--port N] [--pass-fds FD,FD] -- qemu-system-arm ...

It listens on 127.0.0.1:N (0: an ephemeral port), starts QEMU as its child with the other ends
of the two sockets (``--pass-fds``: QEMU's UART0 and UART1 chardevs, connected sockets), prints
``PORT <n>`` on stdout once the firmware has booted (its first byte on UART1, from
``board_init``), and then forwards bytes between the current client and UART0 (``--uart``).
The firmware on mps2 writes one byte to UART1 (``--trust``) for every request that passed
authentication (targets/boards/mps2/board.c, ``board_link_trusted``); each is what
``board_link_trusted`` is on the native board, and the rule is the same one (``Broker.step``
follows board_native.c's ``board_read_byte``). As there, a new connection starts its grace
period when it is taken, the old one's unread input is dropped at a handover, and a
disconnected client's place goes to the next one with the board's state intact. The broker exits when QEMU does, with its exit status (a
firmware's ``board_exit`` code); QEMU dies with the broker (``PR_SET_PDEATHSIG``).

Bytes for a client that does not read them are dropped beyond ``CLIENT_BUFFER`` (as a UART with
nobody listening loses them; the host retransmits), so no client can stall the board's output,
and so the rule, by not reading its input. Standard library only: it runs by its path, without
the package (a detached board outlives the launcher's Python).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import select
import signal
import socket
import subprocess
import sys
import time

GRACE_ENV = "EDGELEARN_BOARD_GRACE_MS"   # the native board's variable (board_native.c)
GRACE_MS = 2000                          # and its default
CLIENT_BUFFER = 64 * 1024                # bytes kept for a client that does not read
BOARD_BUFFER = 4096                      # a client's bytes kept for a UART that does not read
CHUNK = 65536
BOOTED, TRUSTED = b"B", b"T"             # UART1: the firmware is up; a request passed authentication


def grace_ms(env=None) -> int:
    """The grace period in ms, as the native board reads it: ``$EDGELEARN_BOARD_GRACE_MS``, else 2000."""
    value = (os.environ if env is None else env).get(GRACE_ENV)
    if not value:
        return GRACE_MS
    if not value.isdigit():
        raise ValueError(f"{GRACE_ENV}={value!r}: the grace period is a whole number of milliseconds")
    return int(value)


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class Broker:
    """One board's link: ``listener`` (a listening TCP socket, the port clients connect to),
    ``uart`` (a connected socket to the board's UART) and ``trust`` (one byte from the board per
    authenticated request). ``run()`` serves until the UART closes (the board is gone)."""

    def __init__(self, listener: socket.socket, uart: socket.socket, trust: socket.socket, grace: int = GRACE_MS):
        self.listener, self.uart, self.trust, self.grace_ms = listener, uart, trust, grace
        for s in (listener, uart, trust):
            s.setblocking(False)
        self.conn: socket.socket | None = None
        self.trusted_at = 0.0
        self.client_waiting = False
        self.spoken = False            # the connection's bytes reached the UART: trust is its own
        self.foreign = 0               # bytes of to_board that a departed client sent
        self.to_board = bytearray()    # from the client, not yet taken by the UART
        self.to_client = bytearray()   # from the UART, not yet taken by the client

    # -- the native board's rule (board_native.c: take, board_read_byte, board_link_trusted) --

    def take(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        self.client_waiting = False
        self.trusted_at = _now_ms()
        self.spoken = False
        self.foreign = len(self.to_board)
        self.to_client.clear()

    def link_trusted(self) -> None:
        if self.conn is not None and self.spoken:
            self.trusted_at = _now_ms()

    def _drop(self, conn: socket.socket, *, handover: bool) -> None:
        """Close a connection; at a handover its unread input goes with it (the board's inbuf)."""
        if handover:
            self.to_board.clear()
            try:                                   # read what it sent, so it sees an orderly close
                for _ in range(16):
                    if not conn.recv(CHUNK):
                        break
            except OSError:
                pass
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
        if self.conn is conn:
            self.conn = None
            self.to_client.clear()

    def _flush(self) -> None:
        if self.conn is not None and self.to_client:
            try:
                self.conn.settimeout(1.0)
                self.conn.sendall(self.to_client)
            except OSError:
                pass
        self.to_client.clear()

    def _accept(self) -> socket.socket | None:
        try:
            conn, _ = self.listener.accept()
            return conn
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None

    def step(self, timeout: float | None = None) -> bool:
        """Wait for something to do (at most ``timeout`` s) and do it; False once the UART closed."""
        conn = self.conn
        rl = [self.uart] + ([self.trust] if self.trust is not None else [])
        wl = []
        wait_s = timeout
        if conn is None:
            rl.append(self.listener)
        else:
            if len(self.to_board) < BOARD_BUFFER:
                rl.append(conn)
            if self.to_client:
                wl.append(conn)
            if not self.client_waiting:
                rl.append(self.listener)
            else:
                left = max(0.0, (self.grace_ms - (_now_ms() - self.trusted_at)) / 1000.0)
                wait_s = left if wait_s is None else min(wait_s, left)
        if self.to_board:
            wl.append(self.uart)
        try:
            r, w, _ = select.select(rl, wl, [], wait_s)
        except InterruptedError:
            return True

        if self.trust is not None and self.trust in r:
            try:
                got = self.trust.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                got = None
            except OSError:
                got = b""
            if got == b"":                      # no more signals (the board is going)
                self.trust.close()
                self.trust = None
            elif got and TRUSTED in got:
                self.link_trusted()
        if self.uart in r:
            try:
                got = self.uart.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                got = None
            except OSError:
                got = b""
            if got == b"":                      # the board is gone: its last answer still goes out
                self._flush()
                return False
            if got and self.conn is not None:   # nobody connected: lost, as on a disconnected socket
                self.to_client += got[:max(0, CLIENT_BUFFER - len(self.to_client))]
        if self.listener in r:
            if self.conn is None:
                new = self._accept()
                if new is not None:
                    self.take(new)
                return True
            self.client_waiting = True
        if self.conn is not None and self.client_waiting and _now_ms() - self.trusted_at >= self.grace_ms:
            new = self._accept()                # idle: the waiting client's turn
            if new is not None:
                self._drop(self.conn, handover=True)
                self.take(new)
            else:
                self.client_waiting = False
            return True
        conn = self.conn
        if conn is not None and conn in r:
            try:
                got = conn.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                got = None
            except OSError:
                got = b""
            if got == b"":                      # the client went away: wait for the next one
                self._drop(conn, handover=False)
                conn = None
            elif got:
                self.to_board += got
        if self.to_board and self.uart in w:
            try:
                n = self.uart.send(self.to_board)
                del self.to_board[:n]
                if n > self.foreign and self.conn is not None:
                    self.spoken = True
                self.foreign = max(0, self.foreign - n)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                return False
        if conn is not None and conn is self.conn and self.to_client and conn in w:
            try:
                n = conn.send(self.to_client)
                del self.to_client[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:                     # lost: the host retransmits, or is gone
                self._drop(conn, handover=False)
        return True

    def run(self) -> None:
        while self.step():
            pass


def _die_with_parent() -> None:
    """In QEMU, before exec: SIGKILL when the broker dies (Linux; elsewhere nothing)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _booted(trust: socket.socket, proc: subprocess.Popen) -> bool:
    """Wait for the firmware's first byte on UART1 (board_init); False when QEMU exited first."""
    while proc.poll() is None:
        r, _, _ = select.select([trust], [], [], 0.05)
        if r:
            return trust.recv(1) != b""         # BOOTED (EOF: QEMU is going)
    return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uart", type=int, required=True, help="fd: a connected socket to the board's UART0")
    ap.add_argument("--trust", type=int, required=True, help="fd: a connected socket to the board's UART1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--pass-fds", default="", help="fds the board process inherits, comma-separated")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the board process (QEMU)")
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no board command after --")
    uart = socket.socket(fileno=args.uart)
    trust = socket.socket(fileno=args.trust)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(1)
    grace = grace_ms()

    board_fds = tuple(int(f) for f in args.pass_fds.split(",") if f)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, pass_fds=board_fds,
                            preexec_fn=_die_with_parent)  # noqa: PLW1509  (one thread)
    for fd in board_fds:
        os.close(fd)
    try:
        if _booted(trust, proc):               # the port is announced once the firmware runs
            print(f"PORT {listener.getsockname()[1]}", flush=True)
            Broker(listener, uart, trust, grace).run()
    finally:
        listener.close()
        uart.close()
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:         # the UART closed, QEMU did not exit: end it
        proc.kill()
        code = proc.wait()
    if code < 0:                               # killed by a signal: the broker ends the same way
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main())
