"""A client for a board running the edgelearn firmware, over any pyserial URL
(``socket://127.0.0.1:PORT``, ``loop://``, ``/dev/ttyACM0``): docs/protocol.md.

    with Board("socket://127.0.0.1:5555") as b:
        b.push_model(blob); b.commit(); b.set_mode("train")
        results = b.stream(samples, labels)
        learned = b.pull_params()
        predicted, steps = b.infer(tests, cutoff=True)    # anytime inference: steps per sample
"""
from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import serial

from . import frames as fr
from .frames import Frame

STAT_NAMES = ("frames_ok", "bad_crc", "bad_frame", "bad_version", "errors_sent", "duplicates", "gaps",
              "learned", "inferred", "correct", "commits", "push_bytes", "seqlog_dropped", "steps",
              "stopped_early")
MODES = {"infer": 0, "train": 1, "cutoff": 2}     # cutoff: inference with the model's Top-K cutoff
CAP_STOP, CAP_SPIDE, CAP_SEQLOG, CAP_CUTOFF, CAP_SCHEDULE = 1, 2, 4, 8, 16    # READY's caps bits
EL_ERR_VERSION = 5            # el_status_t (targets/c/edgelearn.h): a MODEL_REFUSED detail
RESULT_LEARNED, RESULT_DUPLICATE, RESULT_CUTOFF = 1, 2, 4  # RESULT's flags


class BoardError(RuntimeError):
    """The board answered a request with an ERROR frame."""

    def __init__(self, code: int, value: int = 0, detail: int = 0, request: int = 0, message: str | None = None):
        self.code, self.value, self.detail, self.request = code, value, detail, request
        self.name = fr.ERRORS.get(code, f"error {code}")
        super().__init__(message or f"board refused request 0x{request:02x}: {self.name} (value {value}, detail {detail})")


class VersionMismatch(BoardError):
    """The board speaks another version of the link protocol than this host."""

    def __init__(self, url: str, board_version: int, request: int = 0):
        newer = board_version > fr.VERSION
        super().__init__(
            fr.CODES["BAD_VERSION"], board_version, fr.VERSION, request,
            f"the board at {url} speaks link protocol version {board_version}, this host version {fr.VERSION}: "
            + ("update the host (firmware_host) to the firmware's version" if newer else
               "flash the board with this checkout's firmware (targets/firmware), or use a host of its version"))
        self.board_version = board_version


class LinkTimeout(TimeoutError):
    """The port does not answer (no board, wrong port, board hung)."""


@dataclass
class Ready:
    version: int
    caps: int
    max_payload: int
    model_bytes: int
    arena_bytes: int
    window: int
    mode: int
    has_model: bool
    active_size: int
    active_crc: int
    next_seq: int
    seqlog_capacity: int
    T: int                 # the active model's time steps (0: no model)
    model_cutoff: bool     # the active model carries cutoff margins (SET_MODE cutoff accepted)
    name: str

    @property
    def can_cutoff(self) -> bool:
        """The firmware knows the cutoff (caps bit 3)."""
        return bool(self.caps & CAP_CUTOFF)

    @property
    def can_schedule(self) -> bool:
        """The firmware reads blob version 3 and runs its learning-rate schedule (caps bit 4)."""
        return bool(self.caps & CAP_SCHEDULE)


@dataclass
class Result:
    seq: int
    predicted: int
    learned: bool
    duplicate: bool
    steps: int = 0         # the time steps the sample ran: T unless the cutoff stopped it early
    cutoff: bool = False   # it ran in mode cutoff

    @classmethod
    def of(cls, payload: bytes) -> "Result":
        seq, _, pred, flags, steps = struct.unpack("<IIHBxH", payload[:14])
        return cls(seq, pred, bool(flags & RESULT_LEARNED), bool(flags & RESULT_DUPLICATE), steps,
                   bool(flags & RESULT_CUTOFF))


@dataclass
class LinkCounters:
    retransmissions: int = 0
    timeouts: int = 0
    go_backs: int = 0
    bad_frames: int = 0
    duplicate_results: int = 0
    errors: dict = field(default_factory=dict)


class Board:
    def __init__(self, url: str, timeout: float = 0.3, retries: int = 10, window: int = 8,
                 baudrate: int = 115200, ser=None):
        self.url = url
        self.timeout, self.retries, self.window = timeout, retries, window
        try:
            self.ser = ser or serial.serial_for_url(url, baudrate=baudrate, timeout=0.01)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkTimeout(f"cannot open {url}: {e}") from e
        self.decoder = fr.Decoder()
        self.pending: list[Frame] = []
        self.counters = LinkCounters()
        self._tag = 0
        self.ser.write(b"\0")          # ends whatever partial frame the board may hold

    # -- plumbing --------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _next_tag(self) -> int:
        self._tag = self._tag % 0x7FFF + 1
        return self._tag

    def _send(self, frame: Frame) -> None:
        self.ser.write(fr.encode(frame))

    def _recv(self, deadline: float) -> Frame | None:
        while not self.pending:
            if time.monotonic() >= deadline:
                return None
            try:
                data = self.ser.read(max(1, self.ser.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise LinkTimeout(f"{self.url}: link lost: {e}") from e
            if data:
                self.pending += self.decoder.feed(data)
                self.counters.bad_frames = self.decoder.bad
        return self.pending.pop(0)

    def call(self, type_: int, payload: bytes = b"", expect: int = fr.ACK) -> bytes:
        """One request, stop-and-wait, retransmitted after a timeout; the answer's payload.
        Raises BoardError on an ERROR answer, LinkTimeout when the port never answers."""
        tag = self._next_tag()
        frame = Frame(type_, tag, payload)
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters.retransmissions += 1
                self.counters.timeouts += 1
            self._send(frame)
            deadline = time.monotonic() + self.timeout
            while (got := self._recv(deadline)) is not None:
                if got.tag != tag:
                    continue                   # a late answer to an older request
                if got.type == fr.ERROR:
                    code, req, value, detail = struct.unpack("<HBxIi", got.payload[:12])
                    if fr.ERRORS.get(code) == "BAD_VERSION" and value != fr.VERSION:
                        raise VersionMismatch(self.url, value, req)
                    raise BoardError(code, value, detail, req)
                if got.type == expect:
                    return got.payload
        raise LinkTimeout(f"no answer from {self.url} to request 0x{type_:02x} after {self.retries + 1} tries "
                          f"({self.timeout:.2f} s each): is a board running the edgelearn firmware there?")

    # -- requests --------------------------------------------------------------------
    def hello(self) -> Ready:
        """The board's READY; VersionMismatch when it speaks another protocol version."""
        p = self.call(fr.HELLO, expect=fr.READY)
        if not p or p[0] != fr.VERSION or len(p) < 36:
            raise VersionMismatch(self.url, p[0] if p else 0, fr.HELLO)
        f = struct.unpack("<BBHIIHBBIIIIHBx", p[:36])
        return Ready(f[0], f[1], f[2], f[3], f[4], f[5], f[6], bool(f[7]), f[8], f[9], f[10], f[11], f[12],
                     bool(f[13] & 1), p[36:].decode("ascii", "replace"))

    def push_model(self, blob: bytes, chunk: int = 1000, progress=None) -> None:
        """Send a model into the board's staging area (the active model keeps running)."""
        blob = bytes(blob)
        crc = zlib.crc32(blob)
        self.call(fr.PUSH_BEGIN, struct.pack("<II", len(blob), crc))
        off = 0
        while off < len(blob):
            got = struct.unpack("<I", self.call(fr.PUSH_CHUNK, struct.pack("<I", off) + blob[off:off + chunk]))[0]
            off = got
            if progress:
                progress(off, len(blob))
        self._pushed = (len(blob), crc)
        self._pushed_version = struct.unpack_from("<H", blob, 4)[0] if len(blob) >= 6 else 0

    def commit(self, size: int | None = None, crc: int | None = None) -> None:
        """Activate the pushed model once the board has verified it completely. A board whose
        loader does not read the blob's format version (an older firmware: a learning-rate
        schedule needs version 3) refuses it with MODEL_REFUSED, said so here."""
        if size is None:
            size, crc = self._pushed
        try:
            self.call(fr.COMMIT, struct.pack("<II", size, crc))
        except BoardError as e:
            if e.name != "MODEL_REFUSED" or e.detail != EL_ERR_VERSION or type(e) is not BoardError:
                raise
            version = getattr(self, "_pushed_version", 0)
            raise BoardError(e.code, e.value, e.detail, e.request,
                             f"the firmware on the board at {self.url} does not read model blob format version "
                             f"{version} (MODEL_REFUSED, EL_ERR_VERSION): flash the board with this checkout's "
                             "firmware (targets/firmware), or push a model it reads (a learning-rate schedule "
                             "needs version 3)") from None

    def set_mode(self, mode: str) -> None:
        """"infer", "train" or "cutoff" (inference with the model's cutoff: refused with a
        NO_CUTOFF BoardError when the active model carries no margins; the mode then stays)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        try:
            self.call(fr.SET_MODE, bytes([MODES[mode]]))
        except BoardError as e:
            if e.name == "NO_CUTOFF":
                raise BoardError(e.code, e.value, e.detail, e.request,
                                 f"the model on the board at {self.url} has no cutoff margins: calibrate it "
                                 "(edgelearn calibrate MODEL --data D --tolerance E) and push it again") from None
            if e.name == "NO_MODEL":
                raise BoardError(e.code, e.value, e.detail, e.request,
                                 f"the board at {self.url} has no model: push one before mode {mode}") from None
            raise

    def infer(self, samples, labels=None, *, cutoff: bool = False, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """Inference on the board (mode "cutoff" with ``cutoff``, else "infer"; the board stays in
        that mode): the predicted classes and the time steps each sample ran (T unless the
        cutoff stopped it), as int arrays; -1 for a sample whose result never came."""
        if cutoff:
            ready = self.hello()
            if not ready.can_cutoff:
                raise BoardError(fr.CODES["BAD_MODE"], MODES["cutoff"], ready.caps, fr.SET_MODE,
                                 f"the firmware on the board at {self.url} has no cutoff (caps {ready.caps:#x})")
        self.set_mode("cutoff" if cutoff else "infer")
        results = self.stream(samples, labels, progress=progress)
        predicted = np.array([r.predicted if r is not None else -1 for r in results], dtype=np.int64)
        steps = np.array([r.steps if r is not None else -1 for r in results], dtype=np.int64)
        return predicted, steps

    def reset(self) -> None:
        self.call(fr.RESET)

    def exit(self, code: int = 0) -> None:
        self.call(fr.EXIT, bytes([code]))

    def stats(self) -> dict:
        p = self.call(fr.STATS, expect=fr.STATS_R)
        mode, has_model, count, next_seq, size, crc = struct.unpack("<BBHIII", p[:16])
        values = struct.unpack(f"<{count}I", p[16:16 + 4 * count])
        out = dict(zip(STAT_NAMES, values))
        out.update(mode=mode, has_model=bool(has_model), next_seq=next_seq, active_size=size, active_crc=crc)
        return out

    def seqlog(self) -> list[int]:
        """The sequence numbers of every sample the board ran since the last commit/reset."""
        out: list[int] = []
        while True:
            p = self.call(fr.SEQLOG, struct.pack("<IH", len(out), 0xFFFF), expect=fr.SEQLOG_R)
            total, _ = struct.unpack("<II", p[:8])
            out += struct.unpack(f"<{(len(p) - 8) // 4}I", p[8:])
            if len(out) >= total or len(p) == 8:
                return out

    def pull_params(self) -> bytes:
        """The active model's blob with the parameters learned on the board (sealed: a valid
        model file, whose CRC is checked here)."""
        data = bytearray()
        total = crc = None
        while total is None or len(data) < total:
            p = self.call(fr.PULL, struct.pack("<IH", len(data), 0xFFFF), expect=fr.PULL_R)
            off, total, crc = struct.unpack("<III", p[:12])
            if off != len(data):
                raise BoardError(fr.CODES["PULL_RANGE"], off, len(data), fr.PULL)
            data += p[12:]
        if zlib.crc32(bytes(data)) != crc:
            raise BoardError(fr.CODES["MODEL_CRC"], crc, 0, fr.PULL)
        return bytes(data)

    def stream(self, samples, labels=None, progress=None) -> list[Result | None]:
        """Send samples (each uint8 [input] or [rows, input]) with labels (None: -1) through a
        window of self.window frames, go-back-N after a timeout or a gap; the board runs each
        exactly once, in order, in the board's current mode (``set_mode``). Returns one Result
        per sample (its prediction, flags and the steps it ran)."""
        start = self.hello().next_seq
        n = len(samples)
        payloads = []
        for i, x in enumerate(samples):
            rows = np.ascontiguousarray(np.asarray(x, dtype=np.uint8))
            nrows = 1 if rows.ndim == 1 else rows.shape[0]
            label = -1 if labels is None else int(labels[i])
            payloads.append(struct.pack("<IhH", start + i, label, nrows) + rows.tobytes())
        results: list[Result | None] = [None] * n
        base = sent = 0
        went_back_at = -1
        idle = 0
        deadline = time.monotonic() + self.timeout

        def go_back(count_timeout: bool) -> None:
            nonlocal sent, went_back_at, deadline
            self.counters.retransmissions += sent - base
            self.counters.go_backs += 1
            if count_timeout:
                self.counters.timeouts += 1
            sent, went_back_at = base, base
            deadline = time.monotonic() + self.timeout

        while base < n:
            while sent < n and sent < base + self.window:
                self._send(Frame(fr.SAMPLE, 0x8000 | ((start + sent) & 0x7FFF), payloads[sent]))
                sent += 1
            got = self._recv(deadline)
            if got is None:
                idle += 1
                if idle > self.retries:
                    raise LinkTimeout(f"no answer from {self.url} while streaming sample {start + base}")
                go_back(True)
                continue
            if got.type == fr.RESULT:
                res, nxt = Result.of(got.payload), struct.unpack("<I", got.payload[4:8])[0]
                if 0 <= res.seq - start < n:
                    results[res.seq - start] = res
                    self.counters.duplicate_results += res.duplicate
                advance = min(n, nxt - start)
            elif got.type == fr.ERROR:
                code, req, value, detail = struct.unpack("<HBxIi", got.payload[:12])
                name = fr.ERRORS.get(code, "")
                self.counters.errors[name] = self.counters.errors.get(name, 0) + 1
                if name in ("BAD_CRC", "BAD_FRAME"):
                    if went_back_at != base:
                        go_back(False)
                    continue
                if req != fr.SAMPLE:
                    continue
                if name in ("SEQ_GAP", "SEQ_STALE"):
                    advance = min(n, value - start)
                    if advance <= base and went_back_at != base:
                        go_back(False)
                elif name == "BAD_VERSION" and value != fr.VERSION:
                    raise VersionMismatch(self.url, value, req)
                else:
                    raise BoardError(code, value, detail, req)
            else:
                continue
            # slide only over samples whose result arrived: a lost result is fetched again
            # (the board re-acks it from its ring) before the window moves past it
            moved = base
            while moved < advance and results[moved] is not None:
                moved += 1
            if moved < advance and went_back_at != moved:
                base = moved
                go_back(False)
                continue
            advance = moved
            if advance > base:
                base, idle = advance, 0
                sent = max(sent, base)
                deadline = time.monotonic() + self.timeout
                if progress:
                    progress(base, n)
        for i in range(n):                     # answers lost on the way: the board re-acks them
            if results[i] is None:
                try:
                    p = self.call(fr.SAMPLE, payloads[i], expect=fr.RESULT)
                except BoardError:
                    continue
                results[i] = Result.of(p)
        return results
