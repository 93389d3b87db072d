"""A TCP fault-injection proxy between a host and a board (for tests of the link protocol).

It splits each direction's byte stream into frames at the 0x00 delimiters and, on a given
fraction of frames (seeded), drops it, corrupts one byte, duplicates it or delays it:

    with FaultProxy(board_port, rate=0.03, seed=1) as px:
        Board(px.url) ...
        px.faults   # {"drop": .., "corrupt": .., "duplicate": .., "delay": ..}
"""
from __future__ import annotations

import random
import socket
import threading
import time

KINDS = ("drop", "corrupt", "duplicate", "delay")


class FaultProxy:
    def __init__(self, target_port: int, rate: float = 0.02, seed: int = 0, kinds=KINDS,
                 delay: float = 0.05, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.rate, self.kinds, self.delay = rate, tuple(kinds), delay
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.faults = {k: 0 for k in KINDS}
        self.frames = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.url = f"socket://{host}:{self.port}"
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept_loop(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            upstream = socket.create_connection(self.target)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._socks.append(s)
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self._threads.append(t)

    def _fault(self) -> str | None:
        with self.lock:
            self.frames += 1
            if self.rng.random() >= self.rate:
                return None
            kind = self.rng.choice(self.kinds)
            self.faults[kind] += 1
            return kind

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        buf = bytearray()
        try:
            while not self._stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                while (i := buf.find(b"\0")) >= 0:
                    frame, buf = bytes(buf[:i + 1]), buf[i + 1:]
                    kind = self._fault() if len(frame) > 1 else None
                    if kind == "drop":
                        continue
                    if kind == "corrupt":
                        with self.lock:
                            at = self.rng.randrange(len(frame) - 1)
                            flip = self.rng.randrange(1, 256)
                        frame = frame[:at] + bytes([frame[at] ^ flip]) + frame[at + 1:]
                    elif kind == "duplicate":
                        frame = frame + frame
                    elif kind == "delay":
                        time.sleep(self.delay)
                    dst.sendall(frame)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for s in self._socks + [self.listener]:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
