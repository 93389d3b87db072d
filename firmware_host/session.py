"""The host's side of a board session (docs/protocol.md §2a; the board's side is
targets/firmware/session.c): the board's key, the session's nonce (a challenge of the board's
until the board accepts a request MAC'd with it), the counter, the MACs of requests and answers.

    s = Session(url, key)           # key None: keys.lookup by the device id the board announces
    s.begin(ready)                  # from an unauthenticated READY: its challenge, the key
    body, counter = s.wrap(type_, payload)
    payload = s.verified(answer, {counter})      # None: not the board's
"""
from __future__ import annotations

import hmac
import struct

from . import frames as fr
from . import keys
from .errors import BoardError, NoKey, SessionLost


class Session:
    def __init__(self, url: str, key: keys.Key | None = None):
        self.url, self.key = url, key
        self.nonce: bytes | None = None
        self.boot = -1                 # the board's boot count when the session began
        self.established = False       # the board accepted the nonce (it MAC'd an answer with it)
        self.counter = 0

    @property
    def open(self) -> bool:
        return self.nonce is not None

    def close(self) -> None:
        self.nonce = None

    def begin(self, ready) -> None:
        """Take the challenge of an unauthenticated READY and the board's key (NoKey without one)."""
        if not ready.provisioned:
            raise NoKey(fr.CODES["NO_KEY"], 0, 0, fr.HELLO, f"the board at {self.url} ({ready.name}) has no key: "
                        "provision it (edgelearn keys provision, or start it with edgelearn board start)")
        key = self.key or keys.lookup(ready.device_id)
        if key is None:
            raise NoKey(fr.CODES["NO_KEY"], 0, 0, fr.HELLO,
                        f"this host has no key for the board {ready.device_id.hex()} at {self.url}: "
                        f"give its key file (--key FILE) or put it in the keystore {keys.keystore()}")
        if key.device_id != ready.device_id:
            raise NoKey(fr.CODES["NO_KEY"], 0, 0, fr.HELLO, f"the key given is for board {key.id_hex}, "
                        f"the board at {self.url} is {ready.device_id.hex()}")
        self.key = key
        self.nonce, self.boot, self.established = ready.challenge, ready.boot, False

    def wrap(self, type_: int, body: bytes) -> tuple[bytes, int]:
        """The body with its trailer: the next counter and the MAC of the session."""
        self.counter += 1
        c = self.counter
        return body + struct.pack("<I", c) + keys.mac(self.key.secret, b"Q", self.nonce, c, fr.VERSION, type_, body), c

    def verified(self, got: fr.Frame, counters) -> bytes | None:
        """The answer's body when the board's MAC over it checks for one of ``counters`` (None:
        any counter of this session), else None."""
        p = got.payload
        if self.nonce is None or len(p) < keys.TRAILER_BYTES:
            return None
        body, c, tag = p[:-keys.TRAILER_BYTES], struct.unpack("<I", p[-20:-16])[0], p[-16:]
        if counters is not None and c not in counters:
            return None
        if not hmac.compare_digest(tag, keys.mac(self.key.secret, b"A", self.nonce, c, got.version, got.type, body)):
            return None
        return body

    def worth_again(self, boot: int) -> bool:
        """A BAD_MAC (``boot``: the board's count) that one more authentication may cure: the board
        rebooted, or this session never opened (a newer HELLO's challenge displaced ours)."""
        return boot != self.boot or not self.established

    def refusal(self, name: str, value: int, req: int) -> BoardError:
        """An authentication refusal, said plainly (value: the board's boot count)."""
        if name == "NO_KEY":
            return NoKey(fr.CODES[name], value, 0, req, f"the board at {self.url} has no key: provision it "
                         "(edgelearn keys provision, or start it with edgelearn board start)")
        if name == "BAD_MAC":
            return SessionLost(fr.CODES[name], value, 0, req,
                               f"the board at {self.url} refused this host's MAC: another client opened a session "
                               "after this one, or the key is not the board's")
        return BoardError(fr.CODES[name], value, 0, req)
