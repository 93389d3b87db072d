"""Authenticated control of a board (docs/security.md) against the real native board over a TCP
socket: every state-changing or data-revealing request without a valid MAC is refused and changes
nothing; replays and reordered requests are refused; a rollback is refused unless forced, also
after a restart; unauthenticated HELLO and STATS reveal no weights; another session takes over,
and an idle or unauthenticated connection cannot hold the board, native or emulated (QEMU behind
the launcher's link broker)."""
import secrets
import socket
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgelearn.datasets import load_digits
from edgelearn.model import init_params, mlp
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from firmware_host import frames as fr
from firmware_host import keys
from firmware_host.board import Board, BoardError, NoKey, Ready, SessionLost
from firmware_host.frames import Frame
from firmware_host.native_board import NativeBoard

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def digits():
    ds = load_digits()
    return ds.x_train[:40], ds.y_train[:40]


@pytest.fixture(scope="module")
def blob():
    return to_blob(load_model(ROOT / "models" / "digits-stop.json"))


@pytest.fixture
def trained(blob, digits):
    """A board that has learned 40 samples, and its owner's Board."""
    x, y = digits
    with NativeBoard() as nb, Board(nb.url) as owner:
        owner.push_model(blob, version=5)
        owner.commit()
        owner.set_mode("train")
        owner.stream(x, y)
        yield nb, owner


def raw(b: Board, type_: int, payload: bytes, tag: int = 0x1234) -> Frame:
    """Send one frame as it is; the board's answer to it."""
    b.ser.write(fr.encode(Frame(type_, tag, payload)))
    deadline = time.monotonic() + 2
    while (got := b._recv(deadline)) is not None:
        if got.tag == tag:
            return got
    raise AssertionError(f"no answer to request 0x{type_:02x}")


def error_name(frame: Frame) -> str:
    assert frame.type == fr.ERROR, f"answered 0x{frame.type:02x}, not an ERROR"
    return fr.ERRORS[struct.unpack("<H", frame.payload[:2])[0]]


def state(owner: Board) -> dict:
    """Everything a request could change, read by the owner."""
    ready = owner.hello()
    stats = {k: v for k, v in owner.stats().items() if k not in (
        "frames_ok", "errors_sent", "auth_failed", "replays", "bad_crc", "bad_frame")}
    return {"ready": {k: getattr(ready, k) for k in ("has_model", "model_version", "checkpoint_seq", "mode",
                                                     "active_size", "active_crc", "stream_id", "next_seq",
                                                     "checkpoint_every")},
            "blob": owner.pull_params(), "stats": stats, "seqlog": owner.seqlog()}


def forged_requests(owner: Board, digits) -> list[tuple[int, bytes]]:
    """A well-formed request of every state-changing or data-revealing type."""
    x, _ = digits
    other = to_blob(init_params(mlp("other", [64, 16, 10])))
    ready = owner.hello()
    return [
        (fr.PUSH_BEGIN, struct.pack("<IIIB", len(other), zlib.crc32(other), 99, 1)),
        (fr.PUSH_CHUNK, struct.pack("<I", 0) + other[:600]),
        (fr.COMMIT, struct.pack("<II", len(other), zlib.crc32(other))),
        (fr.SET_MODE, b"\x00"),
        (fr.SAMPLE, struct.pack("<QIhH", ready.stream_id, ready.next_seq, 3, 1) + x[0].astype(np.uint8).tobytes()),
        (fr.STREAM, struct.pack("<QB", 77, 1)),
        (fr.CONFIG, struct.pack("<I", 1)),
        (fr.CHECKPOINT, b""),
        (fr.SEQLOG, struct.pack("<IH", 0, 100)),
        (fr.PULL, struct.pack("<IH", 0, 900)),
        (fr.RESET, b""),
        (fr.EXIT, b"\x07"),
    ]


def trailers(owner: Board, type_: int, body: bytes) -> dict[str, bytes]:
    """The ways to get a MAC wrong: none, random, another key over the board's own challenge, the
    right key over a nonce the board never issued."""
    challenge = owner.hello(public=True).challenge   # pending now: a forger's best chance
    stranger = keys.Key.generate()
    ctr = struct.pack("<I", 10**6)
    return {
        "none": body,
        "random": body + ctr + secrets.token_bytes(16),
        "another key": body + ctr + keys.mac(stranger.secret, b"Q", challenge, 10**6, fr.VERSION, type_, body),
        "unissued nonce": body + ctr + keys.mac(owner.session.key.secret, b"Q", bytes(16), 10**6, fr.VERSION, type_, body),
    }


def test_every_request_without_a_valid_mac_is_refused_and_changes_nothing(trained, digits):
    nb, owner = trained
    before = state(owner)
    refused = 0
    for type_, body in forged_requests(owner, digits):
        for how, payload in trailers(owner, type_, body).items():
            got = raw(owner, type_, payload)
            assert error_name(got) in ("AUTH_REQUIRED", "BAD_MAC"), (hex(type_), how)
            assert len(got.payload) == 12               # a bare refusal: no data, no MAC
            refused += 1
    assert nb.alive                                     # EXIT was refused too
    assert state(owner) == before
    assert owner.stats()["auth_failed"] == refused == 12 * 4


def test_a_replayed_request_is_refused_and_changes_nothing(trained, digits):
    nb, owner = trained
    sent = []
    send = owner._send
    owner._send = lambda frame: (sent.append(frame), send(frame))[1]
    owner.set_mode("infer")
    owner.configure(7)
    owner.reset()
    owner._send = send
    before = state(owner)
    for frame in sent:                                  # each exactly as the owner sent it
        assert error_name(raw(owner, frame.type, frame.payload, frame.tag)) == "REPLAY"
    assert state(owner) == before and owner.stats()["replays"] == 3

    # in a later session (a new connection authenticates anew) the same bytes fail the MAC
    owner.close()
    with Board(nb.url) as again:
        again.hello()
        assert error_name(raw(again, sent[-1].type, sent[-1].payload)) == "BAD_MAC"
        assert state(again) == before


def test_reordered_requests_are_refused(trained):
    _, owner = trained
    first = owner.session.wrap(fr.CONFIG, struct.pack("<I", 11))[0]
    second = owner.session.wrap(fr.CONFIG, struct.pack("<I", 22))[0]
    got = raw(owner, fr.CONFIG, second)                # the later one arrives first: accepted
    assert got.type == fr.ACK
    assert error_name(raw(owner, fr.CONFIG, first)) == "REPLAY"
    assert owner.hello().checkpoint_every == 22


def test_a_replayed_sample_is_never_run_again(trained, digits):
    _, owner = trained
    x, y = digits
    ready = owner.hello()
    body = struct.pack("<QIhH", ready.stream_id, ready.next_seq, int(y[0]), 1) + x[0].astype(np.uint8).tobytes()
    frame = owner.session.wrap(fr.SAMPLE, body)[0]
    assert raw(owner, fr.SAMPLE, frame).type == fr.RESULT
    before = state(owner)
    again = raw(owner, fr.SAMPLE, frame)                # replayed: the stored result, nothing run
    assert again.type == fr.RESULT and owner.session.verified(again, None)[10] & 2   # flag: duplicate
    after = state(owner)
    assert after["blob"] == before["blob"] and after["stats"]["learned"] == before["stats"]["learned"]
    assert after["seqlog"] == before["seqlog"]


def test_a_rollback_is_refused_unless_forced_also_after_a_restart(blob, tmp_path):
    older = to_blob(init_params(mlp("older", [64, 16, 10])))
    storage = tmp_path / "board.storage"
    with NativeBoard(storage=storage) as nb, Board(nb.url) as b:
        b.push_model(blob, version=3)
        b.commit()
        with pytest.raises(BoardError, match="runs model version 3") as e:
            b.push_model(older, version=2)
        assert e.value.name == "ROLLBACK"
        with pytest.raises(BoardError, match="ROLLBACK|runs model version 3"):
            b.push_model(older, version=3)              # not above: refused too
        assert (b.hello().model_version, b.hello().active_crc) == (3, zlib.crc32(blob))
    with NativeBoard(storage=storage) as nb, Board(nb.url) as b:   # restarted: the floor was checkpointed
        ready = b.hello()
        assert ready.restored and ready.model_version == 3
        with pytest.raises(BoardError, match="runs model version 3"):
            b.push_model(older, version=1)
        b.push_model(older, version=1, force=True)      # the owner rolls back on purpose
        b.commit()
        assert (b.hello().model_version, b.hello().active_crc) == (1, zlib.crc32(older))


def test_unauthenticated_hello_stats_and_pull_reveal_no_weights(trained):
    nb, owner = trained
    learned = owner.pull_params()
    weights = learned[-4000:-2000]                       # some learned parameter bytes
    with Board(nb.url, key=None) as stranger:
        keys.forget(nb.key)                              # this client has no key
        try:
            ready = stranger.hello()
            assert not ready.authenticated and ready.has_model
            assert (ready.mode, ready.active_size, ready.active_crc, ready.stream_id, ready.next_seq, ready.T) \
                == (0, 0, 0, 0, 0, 0)
            public = stranger.stats()
            assert set(public) == {"frames_ok", "bad_crc", "bad_frame", "bad_version", "errors_sent", "mode",
                                   "has_model", "next_seq", "active_size", "active_crc"}
            assert public["active_crc"] == public["next_seq"] == 0
            with pytest.raises(NoKey, match="no key for the board"):
                stranger.pull_params()
            answers = [raw(stranger, fr.PULL, struct.pack("<IH", off, 900)) for off in range(0, len(learned), 900)]
            answers.append(raw(stranger, fr.HELLO, b""))
            answers.append(raw(stranger, fr.STATS, b""))
        finally:
            keys.remember(nb.key)
    assert all(error_name(a) == "AUTH_REQUIRED" for a in answers[:-2])
    for a in answers:
        for i in range(0, len(weights) - 8, 8):
            assert weights[i:i + 8] not in a.payload
    assert Ready.of(answers[-2].payload).active_crc == 0


def test_a_wrong_key_is_refused(trained):
    nb, owner = trained
    before = state(owner)
    impostor = keys.Key(nb.key.device_id, secrets.token_bytes(32))
    with Board(nb.url, key=impostor) as b:
        with pytest.raises(SessionLost, match="refused this host's MAC"):
            b.set_mode("train")
    with Board(nb.url) as owner2:
        assert state(owner2) == before


def test_another_authenticated_client_takes_the_session_over(trained):
    nb, owner = trained
    owner.hello()
    owner.ser.close()                                    # its session stays open on the board
    with Board(nb.url) as newcomer:
        newcomer.set_mode("infer")                       # a new session: the owner's ends
        newcomer.ser.close()
    import serial
    owner.ser = serial.serial_for_url(nb.url, timeout=0.01)
    with pytest.raises(SessionLost):
        owner.set_mode("train")


def test_an_unprovisioned_board_refuses_control(blob):
    with NativeBoard(key=False) as nb, Board(nb.url) as b:
        ready = b.hello()
        assert not ready.provisioned and not ready.authenticated
        with pytest.raises(NoKey, match="has no key"):
            b.push_model(blob)
        assert error_name(raw(b, fr.RESET, bytes(20))) == "NO_KEY"
        assert b.stats()["frames_ok"] >= 2


def test_challenges_never_repeat_across_boots(tmp_path):
    from firmware_host import storage
    seen = set()
    path = tmp_path / "s"
    for boot in range(1, 4):
        with NativeBoard(storage=path) as nb, Board(nb.url) as b:
            for _ in range(3):
                r = b.hello(public=True)
                assert r.boot == boot
                seen.add(r.challenge)
        assert storage.boot_count(path) == boot
    assert len(seen) == 9


def grace_board(kind: str, grace_ms: int):
    """A board whose link is held by the rule of docs/security.md with this grace period: the
    native board's own socket, or QEMU behind the launcher's link broker (the firmware reports
    each authenticated request on UART1, firmware_host/link_broker.py)."""
    env = {"EDGELEARN_BOARD_GRACE_MS": str(grace_ms)}
    if kind == "native":
        return NativeBoard(env=env)
    from firmware_host.qemu import QemuLinkBoard
    return QemuLinkBoard(kind, env=env)


HOLDERS = ["native", "mps2-an500"]
TIMEOUT = {"native": 0.3, "mps2-an500": 1.0}            # Board's default; the emulated boards' tests'


@pytest.mark.parametrize("kind", HOLDERS)
@pytest.mark.parametrize("holder", ["idle", "unauthenticated"])
def test_an_idle_or_unauthenticated_connection_cannot_hold_the_board(holder, kind):
    grace = 0.4
    with grace_board(kind, int(grace * 1000)) as nb:
        squatter = socket.create_connection(("127.0.0.1", nb.port))
        t0 = time.monotonic()                              # the grace runs from here
        stop = t0 + 30
        try:
            if holder == "unauthenticated":               # talks, but never authenticates
                squatter.sendall(b"\0" + fr.encode(Frame(fr.HELLO, 1)))
            time.sleep(0.1)
            with Board(nb.url, timeout=0.3, retries=20) as owner:
                if holder == "unauthenticated":
                    squatter.sendall(fr.encode(Frame(fr.HELLO, 2)) * 3)
                ready = owner.hello()
                waited = time.monotonic() - t0
                assert ready.authenticated
            assert grace * 0.8 <= waited < grace + 3.0, waited
            squatter.settimeout(max(0.1, stop - time.monotonic()))
            while squatter.recv(4096):                     # the board closed the squatter's connection
                pass
        finally:
            squatter.close()


@pytest.mark.parametrize("kind", HOLDERS)
def test_an_active_owner_keeps_the_board_while_others_wait(blob, digits, kind):
    x, y = digits
    with grace_board(kind, 300) as nb, Board(nb.url, timeout=TIMEOUT[kind]) as owner:
        owner.push_model(blob)
        owner.commit()
        owner.set_mode("train")
        waiting = socket.create_connection(("127.0.0.1", nb.port))
        try:
            for _ in range(6):                             # 6 rounds of learning, longer than the grace
                owner.stream(x[:10], y[:10])
                time.sleep(0.1)
            assert owner.stats()["learned"] == 60
            waiting.settimeout(0.0)
            with pytest.raises(BlockingIOError):           # never served: not even a byte for it
                waiting.recv(1)
        finally:
            waiting.close()


def test_the_link_broker_keeps_the_native_boards_rule():
    """One rule: the broker's variable and default are the native board's (board_native.c)."""
    from firmware_host import link_broker
    src = (ROOT / "targets" / "firmware" / "board_native.c").read_text()
    assert f'getenv("{link_broker.GRACE_ENV}")' in src
    assert f"grace_ms = {link_broker.GRACE_MS}," in src
    assert link_broker.grace_ms({}) == 2000 and link_broker.grace_ms({"EDGELEARN_BOARD_GRACE_MS": "250"}) == 250


@pytest.mark.parametrize("value", ["soon", "-5", "2.5"])
def test_a_grace_period_that_is_no_whole_number_is_refused_by_both(value):
    from firmware_host import link_broker
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        link_broker.grace_ms({"EDGELEARN_BOARD_GRACE_MS": value})
    with pytest.raises(RuntimeError, match=rf"EDGELEARN_BOARD_GRACE_MS={value}: not a whole number"):
        NativeBoard(env={"EDGELEARN_BOARD_GRACE_MS": value})


def test_the_link_broker_hands_over_and_no_client_stalls_it():
    """The broker alone, in front of a stand-in board that echoes what it reads and reports a
    trusted request for every b"T" in it: the owner keeps the link while it sends them, then the
    waiting client gets it; a client that floods and never reads stalls neither board nor rule."""
    import threading
    from firmware_host.link_broker import Broker

    uart, uart_b = socket.socketpair()
    trust, trust_b = socket.socketpair()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def stand_in():
        while data := uart_b.recv(65536):
            if b"T" in data:
                trust_b.sendall(b"T")
            uart_b.sendall(data * 16)                   # more output than asked for
    board = threading.Thread(target=stand_in, daemon=True)
    grace = 0.5
    broker = threading.Thread(target=Broker(listener, uart, trust, grace=int(grace * 1000)).run, daemon=True)
    board.start()
    broker.start()
    try:
        owner = socket.create_connection(("127.0.0.1", port))
        owner.settimeout(2)
        owner.sendall(b"hello")
        assert owner.recv(5) == b"hello"
        waiting = socket.create_connection(("127.0.0.1", port))
        waiting.settimeout(0.05)
        for _ in range(10):                             # 1.5 s of trusted requests, 0.15 s apart
            owner.sendall(b"T")
            last = time.monotonic()
            time.sleep(0.1)
            with pytest.raises(TimeoutError):
                waiting.recv(1)                         # not served
        waiting.sendall(b"x" * 100000)                  # floods, and will not read what comes back
        owner.settimeout(3)
        while owner.recv(65536):                        # the owner went idle: its link is handed over
            pass
        assert grace * 0.8 <= time.monotonic() - last < grace + 2.0
        third = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.5)                                 # the flooder never sends a "T"
        third.settimeout(3)
        third.sendall(b"ok")
        got = b""
        while not got.endswith(b"ok"):
            got += third.recv(65536)                    # served: the flooder did not stall the broker
        waiting.settimeout(3)
        try:                                            # and the flooder's connection was closed
            while waiting.recv(65536):
                pass
        except ConnectionResetError:                    # (what it sent unread: a reset)
            pass
        third.close()
    finally:
        uart_b.shutdown(socket.SHUT_RDWR)               # the board is gone: the broker returns
        broker.join(5)
        board.join(5)
        for s in (uart, uart_b, trust, trust_b, listener):
            s.close()
    assert not broker.is_alive()


def test_the_emulated_board_refuses_forgeries_too(blob, digits):
    """The same firmware on QEMU mps2-an500 (Cortex-M7): its MACs computed on the core."""
    from firmware_host.qemu import QemuLinkBoard
    with QemuLinkBoard("mps2-an500") as qb, Board(qb.url, timeout=1.0) as owner:
        owner.push_model(blob)
        owner.commit()
        before = state(owner)
        for type_, body in forged_requests(owner, digits):
            for how, payload in trailers(owner, type_, body).items():
                assert error_name(raw(owner, type_, payload)) in ("AUTH_REQUIRED", "BAD_MAC"), (hex(type_), how)
        assert qb.alive and state(owner) == before
