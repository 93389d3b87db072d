"""A client for a board running the edgelearn firmware, over any pyserial URL
(``socket://127.0.0.1:PORT``, ``loop://``, ``/dev/ttyACM0``): docs/protocol.md.

    with Board("socket://127.0.0.1:5555") as b:          # the board's key: keys.lookup, or key=
        b.push_model(blob); b.commit(); b.set_mode("train")
        b.open_stream(stream_id)                          # resumes where the board is
        results = b.stream(samples, labels)
        learned = b.pull_params()
        predicted, steps = b.infer(tests, cutoff=True)    # anytime inference: steps per sample

Every request but HELLO and STATS carries a MAC of the board's key over the session's nonce, a
counter and the payload, and every answer to one carries the board's MAC, checked here (answers
that fail it are dropped as forgeries); without the key, HELLO and STATS give the public part.
"""
from __future__ import annotations

import secrets
import select
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import serial

from . import frames as fr
from .errors import BoardError, LinkTimeout, NoKey, SessionLost, VersionMismatch  # noqa: F401  (the client's errors)
from .frames import Frame
from .keys import Key
from .session import Session

STAT_NAMES = ("frames_ok", "bad_crc", "bad_frame", "bad_version", "errors_sent", "duplicates", "gaps",
              "learned", "inferred", "correct", "commits", "push_bytes", "seqlog_dropped", "steps",
              "stopped_early", "auth_failed", "replays", "checkpoints")
PUBLIC_STATS = 5              # what STATS answers without authentication: the link's counters
MODES = {"infer": 0, "train": 1, "cutoff": 2}     # cutoff: inference with the model's Top-K cutoff
CAP_STOP, CAP_SPIDE, CAP_SEQLOG, CAP_CUTOFF, CAP_SCHEDULE = 1, 2, 4, 8, 16    # READY's caps bits
CAP_AUTH, CAP_CHECKPOINT, CAP_STREAM = 32, 64, 128
READY_PROVISIONED, READY_AUTHENTICATED, READY_DURABLE, READY_RESTORED = 1, 2, 4, 8   # READY's flags
EL_ERR_VERSION = 5            # el_status_t (targets/c/edgelearn.h): a MODEL_REFUSED detail
RESULT_LEARNED, RESULT_DUPLICATE, RESULT_CUTOFF = 1, 2, 4  # RESULT's flags
PUSH_FORCE, STREAM_RESTART = 1, 1


@dataclass
class Ready:
    version: int
    caps: int
    max_payload: int
    model_bytes: int
    arena_bytes: int
    window: int
    flags: int
    has_model: bool
    device_id: bytes
    challenge: bytes       # a fresh nonce: the first request MAC'd with it opens a session
    boot: int              # the board's boot count
    checkpoint_seq: int    # its newest checkpoint (0: none)
    model_version: int     # the active model's version: a push must exceed it (no rollback)
    # the private part: zero unless the HELLO was authenticated
    mode: int
    model_cutoff: bool     # the active model carries cutoff margins (SET_MODE cutoff accepted)
    T: int                 # the active model's time steps (0: no model)
    active_size: int
    active_crc: int
    stream_id: int         # the open stream (0: none)
    next_seq: int          # its next index
    seqlog_capacity: int
    checkpoint_every: int
    name: str

    @classmethod
    def of(cls, p: bytes) -> "Ready":
        pub = struct.unpack_from("<BBHIIHBB8s16sIII", p, 0)
        private = struct.unpack_from("<BBHIIQIII", p, 52)
        return cls(*pub[:7], bool(pub[7]), *pub[8:], private[0], bool(private[1] & 1), *private[2:],
                   p[84:].decode("ascii", "replace"))

    @property
    def provisioned(self) -> bool:
        return bool(self.flags & READY_PROVISIONED)

    @property
    def authenticated(self) -> bool:
        """The private fields are filled (the HELLO carried a valid MAC)."""
        return bool(self.flags & READY_AUTHENTICATED)

    @property
    def durable(self) -> bool:
        """The board's storage holds checkpoints."""
        return bool(self.flags & READY_DURABLE)

    @property
    def restored(self) -> bool:
        """The board restored its model from a checkpoint when it booted."""
        return bool(self.flags & READY_RESTORED)

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
                 baudrate: int = 115200, ser=None, key: Key | None = None):
        self.url = url
        self.timeout, self.retries, self.window = timeout, retries, window
        self.session = Session(url, key)   # key None: looked up by the board's device id (keys.lookup)
        self.ready: Ready | None = None
        try:
            self.ser = ser or serial.serial_for_url(url, baudrate=baudrate, timeout=0.01)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkTimeout(f"cannot open {url}: {e}") from e
        self.decoder = fr.Decoder()
        self.pending: list[Frame] = []
        self.counters = LinkCounters()
        self._tag = 0
        sock = getattr(self.ser, "_socket", None)      # socket://: each request is one small write,
        if sock is not None:                           # so Nagle would hold it for the board's ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._write(b"\0")            # ends whatever partial frame the board may hold

    # -- plumbing --------------------------------------------------------------------
    def close(self) -> None:
        sock = getattr(self.ser, "_socket", None)
        try:
            if sock is not None:       # pyserial's socket close sleeps 0.3 s for slow servers; boards accept at once
                sock.close()
                self.ser._socket, self.ser.is_open = None, False
            else:
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
        self._write(fr.encode(frame))

    def _write(self, data: bytes) -> None:
        """A write that fails (the board closed the link, a cable pulled) says so as a read does."""
        try:
            self.ser.write(data)
        except (serial.SerialException, OSError) as e:
            raise LinkTimeout(f"{self.url}: link lost: {e}") from e

    def _recv(self, deadline: float) -> Frame | None:
        while not self.pending:
            if time.monotonic() >= deadline:
                return None
            try:
                data = self._read(deadline)
            except (serial.SerialException, OSError) as e:
                raise LinkTimeout(f"{self.url}: link lost: {e}") from e
            if data:
                self.pending += self.decoder.feed(data)
                self.counters.bad_frames = self.decoder.bad
        return self.pending.pop(0)

    def _read(self, deadline: float) -> bytes:
        """What has arrived. A socket:// port is read from its socket directly: pyserial's
        in_waiting there says only whether a byte is waiting, so its reads take one byte at a time."""
        sock = getattr(self.ser, "_socket", None)
        if sock is None:
            return self.ser.read(max(1, self.ser.in_waiting))
        if not select.select([sock], [], [], max(0.0, min(0.01, deadline - time.monotonic())))[0]:
            return b""
        data = sock.recv(65536)
        if not data:
            raise OSError("the board closed the connection")
        return data

    def _ensure_session(self) -> None:
        """A challenge to open a session with, from an unauthenticated HELLO, and the board's key."""
        if not self.session.open:
            self.ready = Ready.of(self._hello_payload(self.call(fr.HELLO, expect=fr.READY, auth=False)))
            self.session.begin(self.ready)

    def call(self, type_: int, payload: bytes = b"", expect: int = fr.ACK, *, auth: bool = True) -> bytes:
        """One request, stop-and-wait, retransmitted after a timeout (with a new counter, so a
        retransmission is never a replay); the answer's payload (its MAC checked and removed).
        Raises BoardError on an ERROR answer, LinkTimeout when the port never answers. A board
        that rebooted since the session began is re-authenticated once."""
        if auth:
            self._ensure_session()
        tag = self._next_tag()
        counters: set[int] = set()
        reauthenticated = False
        attempt = 0
        while attempt <= self.retries:
            if attempt:
                self.counters.retransmissions += 1
                self.counters.timeouts += 1
            attempt += 1
            body = payload
            if auth:
                body, c = self.session.wrap(type_, payload)
                counters.add(c)
            self._send(Frame(type_, tag, body))
            deadline = time.monotonic() + self.timeout
            while (got := self._recv(deadline)) is not None:
                if got.tag != tag:
                    continue                   # a late answer to an older request
                verified = self.session.verified(got, counters) if auth else got.payload
                if got.type == fr.ERROR:
                    code, req, value, detail = struct.unpack("<HBxIi", (verified or got.payload)[:12])
                    name = fr.ERRORS.get(code, "")
                    if name == "BAD_VERSION" and value != fr.VERSION:
                        raise VersionMismatch(self.url, value, req)
                    if verified is None and name in fr.AUTH_REFUSALS:
                        # the board rebooted, or a newer HELLO's challenge displaced ours: once more
                        if name == "BAD_MAC" and self.session.worth_again(value) and not reauthenticated:
                            self.session.close()
                            reauthenticated = True
                            self._ensure_session()
                            attempt -= 1
                            break
                        raise self.session.refusal(name, value, req)
                    if verified is None:
                        continue               # an unsigned error for a signed request: not the board's
                    raise BoardError(code, value, detail, req)
                if verified is None:
                    continue                   # an answer without the board's MAC: dropped
                if auth:
                    self.session.established = True
                if got.type == expect:
                    return verified
        raise LinkTimeout(f"no answer from {self.url} to request 0x{type_:02x} after {self.retries + 1} tries "
                          f"({self.timeout:.2f} s each): is a board running the edgelearn firmware there?")

    def _hello_payload(self, p: bytes) -> bytes:
        if not p or p[0] != fr.VERSION or len(p) < 84:
            raise VersionMismatch(self.url, p[0] if p else 0, fr.HELLO)
        return p

    # -- requests --------------------------------------------------------------------
    def hello(self, public: bool = False) -> Ready:
        """The board's READY, authenticated (the private part filled) when this host has the
        board's key, else its public part; VersionMismatch when it speaks another protocol version."""
        if public:
            self.ready = Ready.of(self._hello_payload(self.call(fr.HELLO, expect=fr.READY, auth=False)))
            return self.ready
        try:
            self._ensure_session()
        except NoKey:
            return self.ready
        self.ready = Ready.of(self._hello_payload(self.call(fr.HELLO, expect=fr.READY)))
        return self.ready

    def push_model(self, blob: bytes, chunk: int = 1000, progress=None, *, version: int | None = None,
                   force: bool = False) -> None:
        """Send a model into the board's staging area (the active model keeps running).
        ``version``: the model version, which must exceed the board's (no rollback) unless
        ``force``; None: one above the board's."""
        blob = bytes(blob)
        crc = zlib.crc32(blob)
        if version is None:
            version = self.hello().model_version + 1
        self.call(fr.PUSH_BEGIN, struct.pack("<IIIB", len(blob), crc, version, PUSH_FORCE if force else 0))
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

    def open_stream(self, stream_id: int, restart: bool = False) -> int:
        """Make ``stream_id`` the board's stream: the board's next index of it (a stream the board
        has open goes on where it is, unless ``restart``; another one starts at 0)."""
        return struct.unpack("<I", self.call(fr.STREAM, struct.pack("<QB", stream_id, STREAM_RESTART * restart)))[0]

    def configure(self, checkpoint_every: int) -> int:
        """Checkpoint every that many learned samples (0: only at commits and on request)."""
        return struct.unpack("<I", self.call(fr.CONFIG, struct.pack("<I", checkpoint_every)))[0]

    def checkpoint(self) -> int:
        """Write a checkpoint now; its sequence number."""
        return struct.unpack("<I", self.call(fr.CHECKPOINT))[0]

    def exit(self, code: int = 0) -> None:
        self.call(fr.EXIT, bytes([code]))

    def stats(self, public: bool = False) -> dict:
        """The board's counters; without the key (or ``public``) only the link's."""
        auth = not public
        if auth:
            try:
                self._ensure_session()
            except NoKey:
                auth = False
        p = self.call(fr.STATS, expect=fr.STATS_R, auth=auth)
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
        ready = self.hello()
        if not ready.authenticated:
            raise NoKey(fr.CODES["NO_KEY"], 0, 0, fr.SAMPLE, f"streaming to the board at {self.url} needs its key")
        stream_id, start = ready.stream_id, ready.next_seq
        if stream_id == 0:                     # no stream open: a new one
            stream_id, start = secrets.randbits(63) + 1, 0
            self.open_stream(stream_id)
        n = len(samples)
        payloads = []
        for i, x in enumerate(samples):
            rows = np.ascontiguousarray(np.asarray(x, dtype=np.uint8))
            nrows = 1 if rows.ndim == 1 else rows.shape[0]
            label = -1 if labels is None else int(labels[i])
            payloads.append(struct.pack("<QIhH", stream_id, start + i, label, nrows) + rows.tobytes())
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
                self._send(Frame(fr.SAMPLE, 0x8000 | ((start + sent) & 0x7FFF), self.session.wrap(fr.SAMPLE, payloads[sent])[0]))
                sent += 1
            got = self._recv(deadline)
            if got is None:
                idle += 1
                if idle > self.retries:
                    raise LinkTimeout(f"no answer from {self.url} while streaming sample {start + base}")
                go_back(True)
                continue
            verified = self.session.verified(got, None)
            if got.type == fr.RESULT and verified is not None:
                res, nxt = Result.of(verified), struct.unpack("<I", verified[4:8])[0]
                if 0 <= res.seq - start < n:
                    results[res.seq - start] = res
                    self.counters.duplicate_results += res.duplicate
                advance = min(n, nxt - start)
            elif got.type == fr.ERROR:
                code, req, value, detail = struct.unpack("<HBxIi", (verified or got.payload)[:12])
                name = fr.ERRORS.get(code, "")
                self.counters.errors[name] = self.counters.errors.get(name, 0) + 1
                if name in ("BAD_CRC", "BAD_FRAME"):   # the board could not read a frame: never signed
                    if went_back_at != base:
                        go_back(False)
                    continue
                if req != fr.SAMPLE:
                    continue
                if verified is None and name in fr.AUTH_REFUSALS:
                    raise self.session.refusal(name, value, req)
                if verified is None:
                    continue                   # not the board's
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
