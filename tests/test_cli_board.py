"""The board verbs of the command line (edgelearn board start|stop|list, push, stream, pull,
stats) against a real native board started detached, bad inputs, and the demo end to end
on the native board (firmware_host/demo.py)."""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgelearn.cli import main
from edgelearn.datasets import load_digits
from edgelearn.modelblob import from_blob
from edgelearn.modelfile import load_model
from edgelearn.executors.c import NativeSTOP
from firmware_host import boards, demo

ROOT = Path(__file__).resolve().parent.parent
MODEL = str(ROOT / "models" / "digits-stop.json")
N = 300


@pytest.fixture
def registry(tmp_path, monkeypatch):
    path = tmp_path / "boards.json"
    monkeypatch.setenv("EDGELEARN_BOARDS_FILE", str(path))
    yield path
    for entry in boards.running():             # never leave a board behind, even on failure
        boards.stop(entry["name"])


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_board_start_push_stream_stats_pull_stop(registry, capsys, tmp_path):
    # started by another process that then exits: the board is detached and survives it
    started = subprocess.run([sys.executable, "-m", "edgelearn.cli", "board", "start", "--kind", "native",
                              "--name", "nb"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "EDGELEARN_BOARDS_FILE": str(registry)})
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("socket://127.0.0.1:")
    [entry] = json.loads(registry.read_text())
    assert (entry["name"], entry["kind"], entry["url"]) == ("nb", "native", url) and boards.alive(entry["pid"])

    code, out, _ = cli(capsys, "board", "list")
    assert code == 0 and "nb" in out and url in out

    code, out, err = cli(capsys, "push", MODEL, "--port", "nb")   # a registry name for --port
    assert code == 0 and "committed and active" in out, err
    code, out, err = cli(capsys, "stream", "digits", "--port", url, "--train", "--limit", str(N), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["samples"] == N and report["learned"] == N and report["mode"] == "train"
    code, out, _ = cli(capsys, "stream", "digits", "--port", "nb", "--infer", "--limit", "50")
    assert code == 0 and "on-device accuracy" in out

    code, out, _ = cli(capsys, "stats", "--port", "nb", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["learned"] == N and stats["inferred"] == 50 and stats["mode"] == "infer"

    pulled = tmp_path / "learned.elm"
    code, out, _ = cli(capsys, "pull", "--port", "nb", "-o", str(pulled))
    assert code == 0 and str(pulled) in out
    # the host reference fed the same stream: bit for bit
    ds = load_digits()
    net = NativeSTOP(load_model(MODEL))
    for i in range(N):
        net.run(ds.x_train[i:i + 1], ds.y_train[i:i + 1], True)
    for i in range(50):
        net.run(ds.x_test[i:i + 1], None, False)
    assert pulled.read_bytes() == net.blob()
    assert from_blob(pulled.read_bytes()).name == "digits-stop"

    code, out, _ = cli(capsys, "board", "stop", "nb")
    assert code == 0 and "stopped nb" in out
    assert not boards.alive(entry["pid"])
    code, out, _ = cli(capsys, "board", "list")
    assert "no boards running" in out
    code, _, err = cli(capsys, "stats", "--port", "nb")
    assert code == 2 and "unknown board 'nb'" in err


def test_list_drops_dead_boards_and_stop_all(registry, capsys):
    a, b = boards.start("native"), boards.start("native")
    assert (a["name"], b["name"]) == ("native-1", "native-2")
    os.kill(a["pid"], signal.SIGKILL)
    os.waitpid(a["pid"], 0)
    code, out, _ = cli(capsys, "board", "list", "--json")
    assert [e["name"] for e in json.loads(out)] == ["native-2"]
    code, out, err = cli(capsys, "board", "start", "--kind", "native", "--name", "native-2")
    assert code == 2 and "already running" in err
    code, out, _ = cli(capsys, "board", "stop", "--all")
    assert code == 0 and "stopped native-2" in out and not boards.alive(b["pid"])
    assert json.loads(registry.read_text()) == []


def test_bad_inputs_give_clear_errors(registry, capsys, tmp_path):
    code, _, err = cli(capsys, "push", MODEL, "--port", "nosuchboard")
    assert code == 2 and "unknown board 'nosuchboard'" in err and "Traceback" not in err
    code, _, err = cli(capsys, "board", "stop", "nosuchboard")
    assert code == 2 and "no board named 'nosuchboard'" in err
    code, _, err = cli(capsys, "board", "stop")
    assert code == 2 and "--all" in err

    silent = socket.socket()                    # listens, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        port = f"socket://127.0.0.1:{silent.getsockname()[1]}"
        code, _, err = cli(capsys, "stats", "--port", port, "--timeout", "0.05", "--retries", "1")
        assert code == 2 and "does not answer" in err and "Traceback" not in err
    finally:
        silent.close()
    code, _, err = cli(capsys, "stats", "--port", "socket://127.0.0.1:1")
    assert code == 2 and "cannot open socket://127.0.0.1:1" in err

    garbage = tmp_path / "garbage.elm"
    garbage.write_bytes(b"\x01\x02 not a model")
    code, _, err = cli(capsys, "push", str(garbage), "--port", "socket://127.0.0.1:1")
    assert code == 2 and "garbage.elm" in err and "Traceback" not in err

    with pytest.raises(SystemExit) as e:       # argparse: one of --train/--infer
        main(["stream", "digits", "--port", "socket://127.0.0.1:1"])
    assert e.value.code == 2 and "one of the arguments --train --infer is required" in capsys.readouterr().err
    code, _, err = cli(capsys, "pull", "--port", "socket://127.0.0.1:1", "-o", str(tmp_path / "x.txt"))
    assert code == 2 and "suffix" in err


def test_stream_and_pull_refuse_a_board_without_a_model(registry, capsys, tmp_path):
    entry = boards.start("native", "empty")
    code, _, err = cli(capsys, "stream", "digits", "--port", "empty", "--infer", "--limit", "5")
    assert code == 2 and "has no model" in err
    code, _, err = cli(capsys, "pull", "--port", entry["url"], "-o", str(tmp_path / "x.elm"))
    assert code == 2 and "has no model" in err


def demo_figure(out: str, row: str) -> float:
    """A percentage of the demo's summary, e.g. the row "new writer after"."""
    [line] = [ln for ln in out.splitlines() if ln.startswith(row + " ")]
    return float(line[len(row):].split("%")[0])


def test_demo_fine_tunes_on_the_native_board_bit_exact(capsys, tmp_path):
    png = tmp_path / "curve" / "fine-tuning.png"
    code = demo.main(["--board", "native", "--limit-finetune", "120", "--limit-test", "120", "--every", "50",
                      "--plot", str(png), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "weights bit-exact            yes" in out and "predictions equal            yes" in out
    assert "fine-tuning samples          120 (the new writer's; 120 learned on the device)" in out
    assert "BIT-EXACT" in out and "falling back" not in out
    # the new writer's style really defeats the pre-trained model, and learning it on the device helps
    before, after = demo_figure(out, "new writer before"), demo_figure(out, "new writer after")
    assert before < demo_figure(out, "original test before") - 20 and after > before + 15, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_writer_style_moves_every_pixel_one_column_right():
    x = np.arange(2 * 64, dtype=np.uint8).reshape(2, 64)
    shifted = demo.writer_style(x).reshape(2, 8, 8)
    assert (shifted[:, :, 0] == 0).all() and (shifted[:, :, 1:] == x.reshape(2, 8, 8)[:, :, :-1]).all()


def test_demo_falls_back_to_the_native_board_only_without_the_tools(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "missing_tools", lambda: ["qemu-system-arm"])
    code = demo.main(["--limit-finetune", "30", "--limit-test", "30", "--every", "30",
                      "--plot", str(tmp_path / "c.png"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "qemu-system-arm not found: falling back to the native board" in out
    assert "board                        native board" in out and "weights bit-exact            yes" in out


def test_stream_infer_with_the_cutoff_reports_the_steps(registry, capsys, tmp_path):
    from edgelearn.executors import make_learner
    from edgelearn.modelblob import to_blob
    from test_board_cutoff import trained

    ds = load_digits()
    model = trained(ds, "direct", 8)
    path = tmp_path / "cut.elm"
    path.write_bytes(to_blob(model))
    boards.start("native", "cut")
    code, out, err = cli(capsys, "push", str(path), "--port", "cut")
    assert code == 0, err
    code, _, err = cli(capsys, "stream", "digits", "--port", "cut", "--train", "--cutoff", "--limit", "5")
    assert code == 2 and "--cutoff is for --infer only" in err
    code, _, err = cli(capsys, "stream", "digits", "--port", "cut", "--infer", "--plot", str(tmp_path / "s.png"))
    assert code == 2 and "add --cutoff" in err
    code, _, err = cli(capsys, "stream", "digits", "--port", "cut", "--infer", "--cutoff", "--plot", str(tmp_path / "s.txt"))
    assert code == 2 and "suffix" in err

    png = tmp_path / "steps.png"
    code, out, err = cli(capsys, "stream", "digits", "--port", "cut", "--infer", "--cutoff", "--limit", "100",
                         "--json", "--plot", str(png))
    assert code == 0, err
    report = json.loads(out)
    scores, steps = make_learner(model, "fixed").infer(ds.x_test[:100], cutoff=True)
    assert report["cutoff"] and report["T"] == 8 and report["samples"] == 100
    assert report["accuracy"] == float((scores.argmax(1) == ds.y_test[:100]).mean())
    assert report["mean_steps"] == round(float(steps.mean()), 4) and report["device_steps"] == int(steps.sum())
    assert report["steps_saved"] == round(1 - steps.mean() / 8, 4) > 0.2
    assert report["steps_histogram"] == {str(t): int(np.sum(steps == t)) for t in range(1, 9)}
    assert report["stopped_early"] == int(np.sum(steps < 8))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, err = cli(capsys, "stream", "digits", "--port", "cut", "--infer", "--cutoff", "--limit", "50")
    assert code == 0, err
    assert "on-device accuracy" in out and "steps used: mean" in out and "of the steps saved" in out
    assert "  steps  samples" in out
    code, out, _ = cli(capsys, "stats", "--port", "cut", "--json")
    assert json.loads(out)["mode"] == "cutoff"

    code, out, err = cli(capsys, "push", MODEL, "--port", "cut")     # the same version again: a rollback
    assert code == 2 and "runs model version 1" in err and "--model-version" in err
    code, out, err = cli(capsys, "push", MODEL, "--port", "cut", "--model-version", "2")   # a model without margins
    assert code == 0, err
    code, _, err = cli(capsys, "stream", "digits", "--port", "cut", "--infer", "--cutoff", "--limit", "5")
    assert code == 2 and "has no cutoff margins" in err and "edgelearn calibrate" in err
