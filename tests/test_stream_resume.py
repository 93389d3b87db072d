"""Exactly once across restarts: `edgelearn stream --train` names its stream by its data, the board
keeps the stream's next index (in its checkpoints), and a re-run resumes there. The real command in
a subprocess against the native board: the client killed mid-stream, or the board itself killed
(power loss) and restarted on its storage; the re-run ends with the parameters of the reference
trained on each sample exactly once."""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgelearn.datasets import load_digits
from edgelearn.executors.c import NativeSTOP
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model
from firmware_host import keys
from firmware_host.board import Board
from firmware_host.native_board import NativeBoard

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 3


@pytest.fixture(scope="module")
def model():
    return load_model(ROOT / "models" / "digits-stop.json")


@pytest.fixture(scope="module")
def reference(model):
    """The sealed blob after learning the training split EPOCHS times, each sample once."""
    ds = load_digits()
    net = NativeSTOP(model)
    for _ in range(EPOCHS):
        for i in range(len(ds.x_train)):
            net.run(ds.x_train[i:i + 1], ds.y_train[i:i + 1], True)
    return net.blob(), EPOCHS * len(ds.x_train)


def stream_command(url: str, key_file: Path) -> list[str]:
    return [sys.executable, "-m", "edgelearn.cli", "stream", "digits", "--port", url, "--key", str(key_file),
            "--train", "--epochs", str(EPOCHS)]


def start_stream(url: str, key_file: Path) -> subprocess.Popen:
    """The command with a progress line per sample (tqdm's TQDM_* overrides): on a fast machine an
    epoch takes less than tqdm's default refresh interval, and the bar would skip it. Since stderr is
    a pipe this test reads, the command also cannot run ahead of it by more than the pipe's buffer."""
    env = dict(os.environ, TQDM_MININTERVAL="0", TQDM_MINITERS="1")
    return subprocess.Popen(stream_command(url, key_file), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def wait_for_progress(proc: subprocess.Popen, samples: int, timeout: float = 60) -> None:
    """Until the command's progress bar shows at least ``samples`` of the second epoch learned."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.stderr], [], [], 0.05)[0]:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen = seen[-200:] + chunk                    # a line split across two reads still matches
            counts = re.findall(rb"epoch 2/3: *\d+%\|[^|]*\| *(\d+)/1347", seen)
            if counts and int(counts[-1]) >= samples:
                return
    raise AssertionError(f"the stream made no progress: {seen[-500:]!r}")


def finish_stream(url: str, key_file: Path) -> dict:
    out = subprocess.run(stream_command(url, key_file) + ["--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def pushed_board(tmp_path, model):
    board = NativeBoard(storage=tmp_path / "board.storage")
    key_file = keys.save(board.key, tmp_path / "board.key")
    with Board(board.url) as b:
        b.push_model(to_blob(model))
        b.commit()
    return board, key_file


def test_a_client_killed_mid_stream_and_re_run_learns_every_sample_once(tmp_path, model, reference):
    board, key_file = pushed_board(tmp_path, model)
    with board:
        proc = start_stream(board.url, key_file)
        try:
            wait_for_progress(proc, 200)
        finally:
            proc.kill()                                   # the client dies mid-stream
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        report = finish_stream(board.url, key_file)
        assert 1347 < report["resumed_at"] < reference[1]  # it resumed in the second epoch
        assert report["samples"] == reference[1] - report["resumed_at"] == report["learned"]
        with Board(board.url) as b:
            assert b.pull_params() == reference[0]        # each sample learned exactly once
            assert b.seqlog() == list(range(reference[1]))
            assert b.stats()["learned"] == reference[1]
        again = finish_stream(board.url, key_file)        # all done: nothing is learned twice
        assert again["resumed_at"] == reference[1] and again["samples"] == again["learned"] == 0


def test_a_board_killed_mid_stream_resumes_from_its_checkpoint(tmp_path, model, reference):
    board, key_file = pushed_board(tmp_path, model)
    with board:
        proc = start_stream(board.url, key_file)
        try:
            wait_for_progress(proc, 300)
            os.kill(board.pid, signal.SIGKILL)            # power loss on the board
            assert proc.wait(60) != 0                     # the client fails: the link is gone
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    with NativeBoard(storage=board.storage) as restarted:  # the same storage: its checkpoints
        with Board(restarted.url) as b:
            ready = b.hello()
            assert ready.restored and ready.next_seq % ready.checkpoint_every == 0 and ready.next_seq > 1347
            checkpointed = ready.next_seq
        report = finish_stream(restarted.url, key_file)
        assert report["resumed_at"] == checkpointed
        with Board(restarted.url) as b:
            assert b.pull_params() == reference[0]
            assert b.seqlog() == list(range(checkpointed, reference[1]))
