"""What a board link raises (``firmware_host.board`` re-exports them): an ERROR answer
(``BoardError`` and its kinds), a board of another protocol version, a port that does not answer.

A BoardError's message says what happened and what to change (``explain``), from the code, the
request and the ``value``/``detail`` the firmware fills in (targets/firmware/main_loop.c,
docs/protocol.md §4); the code's name stays in it, to search for."""
from __future__ import annotations

import functools
import re

from . import frames as fr


@functools.cache
def status_names() -> dict[int, str]:
    """el_status_t code -> name, read from the C runtime's header (targets/c/edgelearn.h)."""
    from edgelearn.resources import C_DIR

    enum = re.search(r"typedef enum \{(.*?)\} el_status_t;", (C_DIR / "edgelearn.h").read_text(), re.S)
    return {int(v): name for name, v in re.findall(r"(EL_\w+) = (\d+)", enum.group(1) if enum else "")}


def _status(code: int) -> str:
    return f"{status_names().get(code, 'status')} ({code})"


def _bytes(n: int) -> str:
    return f"{n:,} bytes"


def _too_big(value: int, detail: int, request: int) -> str:
    if request == fr.PUSH_CHUNK:
        return (f"a chunk at offset {detail:,} runs past the end of the {_bytes(value)} announced by PUSH_BEGIN: "
                "push the model again from the start")
    if detail == 0:
        return "the model is empty (0 bytes): push a model blob (.elm, or a .json spec)"
    return (f"the model is {_bytes(detail)}; this board's model area holds {value:,}: shrink the model or build the "
            "firmware with a larger EL_FW_MODEL_BYTES")


def _bad_length(value: int, detail: int, request: int) -> str:
    if request == fr.SAMPLE and detail:
        return (f"a sample of {detail} row(s) carried {_bytes(value - 8)} of input, not {detail} row(s) of the "
                "model's input size: the data does not fit the model on the board (check --data against the "
                "model's input shape)")
    return (f"request {fr.MESSAGE_NAMES.get(request, request)} carried a payload of {_bytes(value)}, not the length "
            "the firmware expects for it: the host and the firmware disagree on the protocol (use this checkout's "
            "firmware, targets/firmware)")


# code name -> (value, detail, request) -> the sentence; each reads value/detail as main_loop.c fills them
EXPLAIN = {
    "BAD_CRC": lambda v, d, r: "a frame reached the board with a wrong CRC-32: bytes were corrupted on the link "
                               "(the host resends; if it persists, check the port and that nothing else uses it)",
    "BAD_FRAME": lambda v, d, r: "the board received bytes it could not decode as a frame (COBS, too short or too "
                                 "long): something other than an edgelearn host writes to the port, or bytes were lost",
    "BAD_VERSION": lambda v, d, r: f"the board speaks link protocol version {v}, the request was version {d}: use "
                                   "a host and a firmware of the same version",
    "BAD_TYPE": lambda v, d, r: f"the firmware does not know message type 0x{v:02x}: flash the board with this "
                                "checkout's firmware (targets/firmware)",
    "BAD_LENGTH": lambda v, d, r: _bad_length(v, d, r),
    "TOO_BIG": lambda v, d, r: _too_big(v, d, r),
    "NO_PUSH": lambda v, d, r: "no push is open on the board (it restarted, or PUSH_BEGIN was refused): push the "
                               "model again from the start",
    "PUSH_GAP": lambda v, d, r: f"a chunk at offset {d:,} skips past the {_bytes(v)} the board has received: send "
                                f"the model from offset {v:,} (or push it again)",
    "PUSH_INCOMPLETE": lambda v, d, r: f"commit after {v:,} of the model's {_bytes(d)}: send the rest of the push "
                                       "before committing",
    "MODEL_CRC": lambda v, d, r: f"the model's CRC-32 does not match (the board computed {v:08x}): bytes were "
                                 "corrupted or the commit names another push: push it again",
    "MODEL_REFUSED": lambda v, d, r: (f"the board's loader refused the model: {_status(d)}: check it with edgelearn "
                                      "info, or push a model this firmware reads" if v == 0 else
                                      f"the board could not set the model up: {_status(d)}: it holds no model now; "
                                      "push one it can run"),
    "ARENA_TOO_SMALL": lambda v, d, r: f"the model needs {_bytes(d)} of working memory; this board's arena holds "
                                       f"{v:,}: shrink the model (fewer neurons or layers) or build the firmware "
                                       "with a larger EDGELEARN_ARENA_BYTES",
    "NO_MODEL": lambda v, d, r: "the board has no model: push one (edgelearn push) first",
    "SEQ_GAP": lambda v, d, r: f"sample {d} arrived before sample {v}: the board runs samples in order, none "
                               f"skipped; resend from {v}",
    "SEQ_STALE": lambda v, d, r: f"sample {d} is too old to be acknowledged again (the board is at sample {v} and "
                                 "keeps only the latest results): open a new stream",
    "RUN_FAILED": lambda v, d, r: f"the runtime failed on sample {v}: {_status(d)}: the sample does not fit the "
                                  "model (check the data against it)",
    "BAD_MODE": lambda v, d, r: f"mode {v} is not one this firmware runs: use a host of the firmware's version",
    "PULL_RANGE": lambda v, d, r: f"a pull from offset {d:,} lies past the end of the {_bytes(v)} model",
    "NO_CUTOFF": lambda v, d, r: "the model on the board has no cutoff margins: calibrate it (edgelearn calibrate "
                                 "MODEL --data D --tolerance E) and push it again",
    "AUTH_REQUIRED": lambda v, d, r: "the board takes this request only with its key's MAC: give this host the "
                                     "board's key (edgelearn keys)",
    "BAD_MAC": lambda v, d, r: "the request's MAC does not verify under the board's key: another client opened a "
                               "session after this one, or the key is not the board's",
    "REPLAY": lambda v, d, r: "the request reuses a counter the board has already seen (a replay): refused; "
                              "open a new session (HELLO)",
    "NO_KEY": lambda v, d, r: "the board has no key: provision it (edgelearn keys provision, or start it with "
                              "edgelearn board start)",
    "ROLLBACK": lambda v, d, r: f"the board runs model version {v}; a push must carry a higher version than that "
                                f"(this one: {d}: edgelearn push --model-version N) or be forced (--force)",
    "STREAM_MISMATCH": lambda v, d, r: "the sample belongs to another stream than the one open on the board "
                                       "(another host opened one, or the board restarted): open a stream again",
    "NO_STORAGE": lambda v, d, r: f"the board's storage holds {_bytes(v)}; a checkpoint needs {d:,}: give the "
                                  "board a storage of at least that size (on mps2: BOARD_STORAGE_BYTES)",
}


def explain(code: int, value: int = 0, detail: int = 0, request: int = 0) -> str:
    """One line: the request refused, the code's name, what happened and what to change."""
    name = fr.ERRORS.get(code)
    what = fr.MESSAGE_NAMES.get(request, f"0x{request:02x}")
    if name is None:
        return (f"board refused request {what}: error {code} (value {value}, detail {detail}), a code this host "
                "does not know: use a host of the firmware's version")
    return f"board refused {what}: {name}: {EXPLAIN[name](value, detail, request)}"


class BoardError(RuntimeError):
    """The board answered a request with an ERROR frame."""

    def __init__(self, code: int, value: int = 0, detail: int = 0, request: int = 0, message: str | None = None):
        self.code, self.value, self.detail, self.request = code, value, detail, request
        self.name = fr.ERRORS.get(code, f"error {code}")
        super().__init__(message or explain(code, value, detail, request))


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
