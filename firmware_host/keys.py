"""Device keys and the link's MAC (docs/security.md): a per-device secret, provisioned into the board's storage when
the board is flashed, and the host's copy that authenticates the requests of ``firmware_host.board``.

A key is a 32-byte secret and a public 8-byte device id; the board announces its id in READY, the
host looks the secret up by it:

- ``remember(key)``: this process's boards (the launchers provision a fresh key for every board
  they start and remember it here, so ``Board(url)`` finds it);
- the keystore, a directory of ``<device id>.key`` files (mode 0600 in a 0700 directory):
  ``$EDGELEARN_KEYS_DIR``, else ``keys/`` beside the board registry (``home.keystore()``),
  where ``edgelearn board start`` and ``edgelearn keys new`` put theirs.

A key file is one line, ``edgelearn-key <device id hex> <secret hex>``.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .home import keystore

RECORD_MAGIC = b"ELKY"
RECORD_BYTES = 52          # magic, format u16 = 1, 0 u16, device id [8], secret [32], crc32 (session.h)
_FILE_TAG = "edgelearn-key"
_known: dict[bytes, "Key"] = {}


class KeyFileError(ValueError):
    """A key file that cannot be read, or no key for a board."""


@dataclass(frozen=True)
class Key:
    device_id: bytes       # 8 bytes, public
    secret: bytes          # 32 bytes

    def __post_init__(self):
        if len(self.device_id) != 8 or len(self.secret) != 32:
            raise KeyFileError("a key is an 8-byte device id and a 32-byte secret")

    @classmethod
    def generate(cls) -> "Key":
        return cls(secrets.token_bytes(8), secrets.token_bytes(32))

    @property
    def id_hex(self) -> str:
        return self.device_id.hex()

    def record(self) -> bytes:
        """The provisioning record the firmware reads at storage offset 0 (targets/firmware/session.c)."""
        body = RECORD_MAGIC + struct.pack("<HH", 1, 0) + self.device_id + self.secret
        return body + struct.pack("<I", zlib.crc32(body))

    def text(self) -> str:
        return f"{_FILE_TAG} {self.device_id.hex()} {self.secret.hex()}\n"

    def __repr__(self) -> str:          # never print the secret
        return f"Key(device_id={self.device_id.hex()})"


def parse(text: str, where: str = "key") -> Key:
    parts = text.split()
    try:
        if len(parts) != 3 or parts[0] != _FILE_TAG:
            raise ValueError
        return Key(bytes.fromhex(parts[1]), bytes.fromhex(parts[2]))
    except (ValueError, KeyFileError):
        raise KeyFileError(f"{where}: not an edgelearn key file (expected '{_FILE_TAG} <16 hex> <64 hex>')") from None


def load(path) -> Key:
    try:
        return parse(Path(path).read_text(), str(path))
    except OSError as e:
        raise KeyFileError(f"cannot read the key file {path}: {e.strerror or e}") from None


def save(key: Key, path) -> Path:
    """Write a key file readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.text())
    return path


def store(key: Key) -> Path:
    """Keep the key in the keystore (and in this process)."""
    remember(key)
    return save(key, keystore() / f"{key.id_hex}.key")


def remember(key: Key) -> None:
    _known[key.device_id] = key


def forget(key: Key) -> None:
    _known.pop(key.device_id, None)


def lookup(device_id: bytes) -> Key | None:
    """The key of a board: this process's, else the keystore's."""
    if device_id in _known:
        return _known[device_id]
    path = keystore() / f"{device_id.hex()}.key"
    return load(path) if path.is_file() else None


def stored() -> list[Path]:
    return sorted(keystore().glob("*.key")) if keystore().is_dir() else []


MAC_BYTES = 16
TRAILER_BYTES = 4 + MAC_BYTES          # counter u32, mac


def mac(secret: bytes, direction: bytes, nonce: bytes, counter: int, version: int, type_: int, body: bytes) -> bytes:
    """The link's MAC (targets/firmware/session.h): HMAC-SHA256 over direction (b"Q" request,
    b"A" answer), the session nonce, the counter, the frame's version and type and the body,
    truncated to 16 bytes."""
    msg = direction + nonce + struct.pack("<IBB", counter, version, type_) + bytes(body)
    return hmac.new(secret, msg, hashlib.sha256).digest()[:MAC_BYTES]
