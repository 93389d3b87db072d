"""The link protocol's frame codec (firmware_host/frames.py), and the C codec of
targets/firmware/protocol.c against it through the real native board."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host import frames as fr


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_cobs_round_trips_and_never_contains_the_delimiter(data):
    enc = fr.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 2
    assert fr.cobs_decode(enc) == data


@settings(max_examples=300, deadline=None)
@given(type_=st.integers(0, 255), tag=st.integers(0, 0xFFFF), payload=st.binary(max_size=fr.MAX_PAYLOAD))
def test_frames_round_trip(type_, tag, payload):
    frame = fr.Frame(type_, tag, payload)
    wire = fr.encode(frame)
    assert wire.endswith(b"\0") and wire.count(0) == 1
    assert fr.decode(wire) == frame
    assert fr.Decoder().feed(wire) == [frame]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_raises_out_of_the_stream_decoder(junk):
    dec = fr.Decoder()
    good = fr.Frame(fr.HELLO, 7, b"abc")
    got = dec.feed(junk + b"\0" + fr.encode(good))
    assert got[-1] == good                     # the stream resynchronises on the next delimiter
    assert len(got) - 1 + dec.bad <= junk.count(0) + 1


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=300), at=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_a_corrupted_byte_is_always_detected(payload, at, flip):
    wire = bytearray(fr.encode(fr.Frame(fr.SAMPLE, 1, payload)))
    at %= len(wire) - 1
    wire[at] ^= flip
    dec = fr.Decoder()
    assert dec.feed(bytes(wire)) == [] and dec.bad >= 1


def test_decode_refuses_short_and_bad_frames():
    with pytest.raises(fr.FrameError):
        fr.decode(b"\0")
    with pytest.raises(fr.FrameError):
        fr.decode(fr.cobs_encode(b"\x01\x02") + b"\0")
    with pytest.raises(fr.FrameError):
        fr.decode(b"\x05\x01\0")               # block runs past the end


def test_known_cobs_vectors():
    assert fr.cobs_encode(b"") == b"\x01"
    assert fr.cobs_encode(b"\0") == b"\x01\x01"
    assert fr.cobs_encode(b"\x11\x22\0\x33") == b"\x03\x11\x22\x02\x33"
    assert fr.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255)) + b"\x01"


def test_the_c_codec_answers_every_frame_size(native_board):
    """Frames of every length class (COBS blocks of 254 bytes, zeros at the ends) reach the
    firmware intact: a PUSH_CHUNK without a PUSH_BEGIN is refused as NO_PUSH, never as a bad frame
    (its MAC trailer checks, so every byte arrived as sent)."""
    from firmware_host.board import Board, BoardError
    from firmware_host.keys import TRAILER_BYTES
    with Board(native_board.url) as b:
        for n in (0, 1, 233, 234, 235, 488, 489, 1000 - TRAILER_BYTES, fr.MAX_PAYLOAD - 4 - TRAILER_BYTES):
            for fill in (b"\0", b"\x01"):
                b.call(fr.RESET)
                with pytest.raises(BoardError) as e:
                    b.call(fr.PUSH_CHUNK, b"\0\0\0\0" + fill * n)
                assert e.value.name == "NO_PUSH"
        assert b.stats()["bad_frame"] == 0 and b.stats()["bad_crc"] == 0


@pytest.fixture(scope="module")
def native_board():
    from firmware_host.native_board import NativeBoard
    with NativeBoard() as nb:
        yield nb


def test_the_link_s_codes_are_the_firmware_s():
    """Message types, error codes, the frame layout and the STATS counters are written once in
    C (targets/firmware) and once in Python (firmware_host): checked here, name by name."""
    import re

    from edgelearn.resources import FIRMWARE_DIR
    from firmware_host import board
    from firmware_host.board import MODES, STAT_NAMES

    header = (FIRMWARE_DIR / "protocol.h").read_text()
    messages = {m: int(v, 0) for m, v in re.findall(r"EL_MSG_(\w+) = (0x[0-9A-Fa-f]+)", header)}
    assert messages and messages == {name: getattr(fr, name) for name in messages}
    assert set(messages) == {n for n in dir(fr) if n.isupper() and isinstance(getattr(fr, n), int)
                             and n not in ("VERSION", "MAX_PAYLOAD", "HEADER", "NO_TAG")}
    assert int(re.search(r"#define EL_PUBLIC_COUNTERS (\d+)u", (FIRMWARE_DIR / "main_loop.c").read_text()).group(1)) \
        == board.PUBLIC_STATS
    errors = {int(v): m for m, v in re.findall(r"EL_LINK_ERR_(\w+) = (\d+)", header)}
    assert errors == fr.ERRORS
    for name, value in (("VERSION", fr.VERSION), ("MAX_PAYLOAD", fr.MAX_PAYLOAD), ("HEADER", fr.HEADER)):
        assert re.search(rf"#define EL_LINK_{name} {value}u", header), name
    main_loop = (FIRMWARE_DIR / "main_loop.c").read_text()
    counters = re.search(r"enum \{\s*/\* STATS_R counters.*?\*/(.*?)S_COUNT", main_loop, re.S).group(1)
    assert [c.lower() for c in re.findall(r"S_(\w+)", counters)] == list(STAT_NAMES)
    assert {m.lower(): int(v) for m, v in re.findall(r"MODE_(\w+) = (\d+)", main_loop)} == MODES


def test_the_caps_and_result_flags_are_the_firmware_s():
    import re

    from edgelearn.resources import FIRMWARE_DIR
    from firmware_host import board

    main_loop = (FIRMWARE_DIR / "main_loop.c").read_text()
    caps = int(re.search(r"#define EL_FW_CAPS (0x[0-9A-Fa-f]+)u", main_loop).group(1), 16)
    assert caps == (board.CAP_STOP | board.CAP_SPIDE | board.CAP_SEQLOG | board.CAP_CUTOFF | board.CAP_SCHEDULE
                    | board.CAP_AUTH | board.CAP_CHECKPOINT | board.CAP_STREAM)
    ready_flags = {k: int(v) for k, v in re.findall(r"F_(\w+) = (\d+)u", main_loop)}
    assert ready_flags == {"PROVISIONED": board.READY_PROVISIONED, "AUTHENTICATED": board.READY_AUTHENTICATED,
                           "DURABLE": board.READY_DURABLE, "RESTORED": board.READY_RESTORED}
    flags = dict(re.findall(r"R_(\w+) = (\d+)u", main_loop))
    assert {k: int(v) for k, v in flags.items()} == {
        "LEARNED": board.RESULT_LEARNED, "DUPLICATE": board.RESULT_DUPLICATE, "CUTOFF": board.RESULT_CUTOFF}
