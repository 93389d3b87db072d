"""Ctrl-C on a running `edgelearn stream --train` against a real native board: exit 130, a
summary of what was learned and where a re-run resumes, no traceback, and the board left
answering (and resuming exactly there)."""
import os
import time
from pathlib import Path

import ctrl_c
import pytest

from edgelearn.cli import main
from firmware_host import boards
from firmware_host.board import Board

ROOT = Path(__file__).resolve().parent.parent
MODEL = str(ROOT / "models" / "digits-stop.json")


@pytest.fixture
def board(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELEARN_BOARDS_FILE", str(tmp_path / "boards.json"))
    rec = boards.start("native", "interrupted")
    yield rec
    for entry in boards.running():             # never leave a board behind, even on failure
        boards.stop(entry["name"])


def read_until(proc, marker: str, timeout: float = 120) -> str:
    """The child's stderr (tqdm redraws with \\r, not lines) until ``marker`` shows."""
    seen, deadline = b"", time.monotonic() + timeout
    while marker.encode() not in seen:
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk and time.monotonic() < deadline, f"the stream ended before {marker!r}:\n{seen.decode()}"
        seen += chunk
    return seen.decode()


def test_ctrl_c_ends_a_stream_with_where_to_resume(board, capsys):
    assert main(["push", MODEL, "--port", board["url"]]) == 0
    capsys.readouterr()
    proc = ctrl_c.start(["edgelearn.cli", "stream", "digits", "--port", board["url"], "--train", "--epochs", "200"],
                        cwd=ROOT)
    seen = read_until(proc, "epoch 2/200")
    time.sleep(0.5)                                         # well inside the stream
    stdout, stderr = ctrl_c.interrupt(proc, 60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in seen + stderr + stdout
    [summary] = [line for line in stdout.splitlines() if line.startswith("interrupted (Ctrl-C): ")]
    assert ", checkpointed. Run the same command again to resume at sample " in summary, summary

    with Board(board["url"]) as b:                          # the board still answers, its model intact
        ready = b.hello()
        at = b.stats()["next_seq"]
    assert ready.has_model and ready.stream_id != 0 and ready.next_seq == at
    assert 1347 < at < 200 * 1347 and f"learned; the stream is at sample {at} of {200 * 1347}" in summary
    assert f"samples run on native at {board['url']} in this run, {at} learned" in summary

    # checkpointed: the board restarted on its storage is still at that sample of that stream
    boards.stop(board["name"])
    url = boards.start("native", board["name"])["url"]
    with Board(url) as b:
        restarted = b.hello()
    assert restarted.restored and (restarted.stream_id, restarted.next_seq) == (ready.stream_id, at)
