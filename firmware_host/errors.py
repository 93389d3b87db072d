"""What a board link raises (``firmware_host.board`` re-exports them): an ERROR answer
(``BoardError`` and its kinds), a board of another protocol version, a port that does not answer."""
from __future__ import annotations

from . import frames as fr


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


class SessionLost(BoardError):
    """Another client authenticated to the board after this one (the board keeps one session)."""


class NoKey(BoardError):
    """This host has no key for the board, or the board has none."""
