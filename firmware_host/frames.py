"""The link protocol's frame codec (docs/protocol.md §2), the same as targets/firmware/protocol.c.

A frame on the wire is ``COBS(raw) + b"\\0"`` with
``raw = version:u8 | type:u8 | tag:u16 LE | payload | crc32:u32 LE`` (zlib's CRC-32 over
version .. payload).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3          # 3: authentication, checkpoints, streams (2: the cutoff)
MAX_PAYLOAD = 1024
HEADER = 4

# message types (docs/protocol.md §3)
HELLO, PUSH_BEGIN, PUSH_CHUNK, COMMIT = 0x01, 0x10, 0x11, 0x12
SET_MODE, SAMPLE, STREAM, CONFIG, CHECKPOINT = 0x20, 0x21, 0x22, 0x23, 0x24
STATS, SEQLOG, PULL, RESET, EXIT = 0x30, 0x31, 0x40, 0x50, 0x51
READY, ACK, RESULT, STATS_R, SEQLOG_R, PULL_R, ERROR = 0x81, 0x82, 0xA1, 0xB0, 0xB1, 0xC0, 0xFF
# type -> name, from the constants just above (tests/test_protocol.py checks them against protocol.h)
MESSAGE_NAMES = {code: name for name, code in list(globals().items())
                 if name.isupper() and isinstance(code, int) and name not in ("VERSION", "MAX_PAYLOAD", "HEADER")}

# error codes of an ERROR frame
ERRORS = {
    1: "BAD_CRC", 2: "BAD_FRAME", 3: "BAD_VERSION", 4: "BAD_TYPE", 5: "BAD_LENGTH", 6: "TOO_BIG",
    7: "NO_PUSH", 8: "PUSH_GAP", 9: "PUSH_INCOMPLETE", 10: "MODEL_CRC", 11: "MODEL_REFUSED",
    12: "ARENA_TOO_SMALL", 13: "NO_MODEL", 14: "SEQ_GAP", 15: "SEQ_STALE", 16: "RUN_FAILED",
    17: "BAD_MODE", 18: "PULL_RANGE", 19: "NO_CUTOFF", 20: "AUTH_REQUIRED", 21: "BAD_MAC", 22: "REPLAY",
    23: "NO_KEY", 24: "ROLLBACK", 25: "STREAM_MISMATCH", 26: "NO_STORAGE",
}
CODES = {name: code for code, name in ERRORS.items()}
AUTH_REFUSALS = ("AUTH_REQUIRED", "BAD_MAC", "REPLAY", "NO_KEY")   # never signed: refused before the MAC
NO_TAG = 0xFFFF     # the tag of an ERROR answering a frame that could not be decoded


class FrameError(ValueError):
    """A wire frame that cannot be decoded (COBS, length or CRC)."""


def cobs_encode(data: bytes) -> bytes:
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise FrameError("zero byte inside a COBS frame")
        if i + code > n:
            raise FrameError("COBS block runs past the end of the frame")
        block = data[i + 1:i + code]
        if 0 in block:
            raise FrameError("zero byte inside a COBS frame")
        out += block
        i += code
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    type: int
    tag: int
    payload: bytes = b""
    version: int = VERSION


def encode(frame: Frame) -> bytes:
    """The wire bytes of a frame, delimiter included."""
    raw = struct.pack("<BBH", frame.version, frame.type, frame.tag) + bytes(frame.payload)
    return cobs_encode(raw + struct.pack("<I", zlib.crc32(raw))) + b"\0"


def decode(wire: bytes) -> Frame:
    """One frame from its wire bytes (with or without the trailing delimiter)."""
    if wire.endswith(b"\0"):
        wire = wire[:-1]
    if not wire:
        raise FrameError("empty frame")
    raw = cobs_decode(wire)
    if len(raw) < HEADER + 4:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than a header and a CRC")
    if zlib.crc32(raw[:-4]) != struct.unpack("<I", raw[-4:])[0]:
        raise FrameError("CRC mismatch")
    version, type_, tag = struct.unpack("<BBH", raw[:HEADER])
    return Frame(type_, tag, raw[HEADER:-4], version)


class Decoder:
    """Splits a byte stream into frames at 0x00 delimiters; bad frames are counted, not raised."""

    def __init__(self, max_wire: int = 2 * (HEADER + MAX_PAYLOAD + 4) + 16):
        self.buf = bytearray()
        self.max_wire = max_wire
        self.bad = 0

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        for chunk in _split_keep(bytes(data)):
            if chunk == b"\0":
                if self.buf:
                    try:
                        frames.append(decode(bytes(self.buf)))
                    except FrameError:
                        self.bad += 1
                self.buf.clear()
            else:
                self.buf += chunk
                if len(self.buf) > self.max_wire:
                    self.buf.clear()
                    self.bad += 1
        return frames


def _split_keep(data: bytes):
    start = 0
    while True:
        i = data.find(b"\0", start)
        if i < 0:
            if start < len(data):
                yield data[start:]
            return
        if i > start:
            yield data[start:i]
        yield b"\0"
        start = i + 1
