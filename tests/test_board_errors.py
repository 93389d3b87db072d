"""A board's ERROR answers come out as sentences saying what happened and what to change, the
code's name kept (firmware_host.errors.explain): every code has one, and real errors provoked on
native boards read as they should."""
import re
import struct
import zlib

import numpy as np
import pytest

from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from edgelearn.resources import FIRMWARE_DIR, MODELS
from firmware_host import errors
from firmware_host import frames as fr
from firmware_host.board import Board, BoardError
from firmware_host.native_board import NativeBoard

DIGITS_BLOB = to_blob(load_model(MODELS / "digits-stop.json"))


def test_every_firmware_error_code_has_a_sentence():
    header = (FIRMWARE_DIR / "protocol.h").read_text()
    codes = {int(v): name for name, v in re.findall(r"EL_LINK_ERR_(\w+) = (\d+)", header)}
    assert codes and set(errors.EXPLAIN) == set(codes.values())
    for code, name in codes.items():
        text = errors.explain(code, 7, 3, fr.PUSH_BEGIN)
        assert text.startswith(f"board refused PUSH_BEGIN: {name}: ") and "value 7" not in text


def test_an_unknown_code_keeps_its_numbers():
    text = str(BoardError(999, 5, 6, 0x77))
    assert "error 999 (value 5, detail 6)" in text and "0x77" in text


@pytest.fixture(scope="module")
def board():
    with NativeBoard() as nb, Board(nb.url) as b:
        yield b


def refusal(call) -> BoardError:
    with pytest.raises(BoardError) as e:
        call()
    return e.value


def test_a_model_beyond_the_model_area_says_both_sizes(board):
    area = board.hello().model_bytes
    e = refusal(lambda: board.push_model(b"\x01" * (area + 100)))
    assert e.name == "TOO_BIG"
    assert str(e) == (f"board refused PUSH_BEGIN: TOO_BIG: the model is {area + 100:,} bytes; this board's model "
                      f"area holds {area:,}: shrink the model or build the firmware with a larger EL_FW_MODEL_BYTES")


def test_a_sample_of_another_size_says_the_data_does_not_fit(board):
    board.push_model(DIGITS_BLOB)
    board.commit()
    board.set_mode("infer")
    mnist_sized = np.zeros((1, 784), dtype=np.uint8)
    e = refusal(lambda: board.stream(mnist_sized))
    assert e.name == "BAD_LENGTH" and (e.value, e.detail) == (792, 1)
    assert "BAD_LENGTH: a sample of 1 row(s) carried 784 bytes of input" in str(e)
    assert "the data does not fit the model on the board" in str(e)
    assert board.hello().version == fr.VERSION          # and the board still answers


def test_a_commit_before_the_whole_push_says_how_much_arrived(board):
    blob = DIGITS_BLOB
    board.call(fr.PUSH_BEGIN, struct.pack("<IIIB", len(blob), zlib.crc32(blob), board.hello().model_version + 1, 0))
    board.call(fr.PUSH_CHUNK, struct.pack("<I", 0) + blob[:1000])   # the first 1000 bytes only
    e = refusal(lambda: board.commit(len(blob), zlib.crc32(blob)))
    assert e.name == "PUSH_INCOMPLETE"
    assert f"commit after 1,000 of the model's {len(blob):,} bytes: send the rest" in str(e)


def test_a_pull_without_a_model_says_push_one():
    with NativeBoard() as nb, Board(nb.url) as b:
        e = refusal(b.pull_params)
    assert str(e) == "board refused PULL: NO_MODEL: the board has no model: push one (edgelearn push) first"


def test_a_model_beyond_the_arena_says_what_it_needs():
    with NativeBoard(arena_bytes=4096) as nb, Board(nb.url) as b:
        b.push_model(DIGITS_BLOB)
        e = refusal(b.commit)
    assert e.name == "ARENA_TOO_SMALL" and e.value == 4096 and e.detail > 4096
    assert (f"ARENA_TOO_SMALL: the model needs {e.detail:,} bytes of working memory; this board's arena holds 4,096: "
            "shrink the model") in str(e)
    assert "EDGELEARN_ARENA_BYTES" in str(e)
