"""Fleets end to end (docs/fleet.md): real boards (native processes, QEMU mps2-an386) over
real sockets, Flower's own SuperLink, SuperNodes, ServerApp and ClientApps on loopback, from
.venv-fleet (make fleet-setup; `make test` builds it). Every aggregate is checked against the
host: fedavg of the pulled blobs, and a replay of the whole federation with the C runtime.
These tests FAIL (never skip) without .venv-fleet or QEMU: `make test` installs both."""
import json
import os
import signal
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from edgelearn import rules
from edgelearn.datasets import load_digits
from edgelearn.fleet.aggregate import Update, client_seed, fedavg
from edgelearn.fleet.partition import global_test, share
from edgelearn.fleet.reference import accuracy, simulate
from edgelearn.modelblob import check_blob, to_blob
from edgelearn.modelfile import load_model
from firmware_host import boards
from firmware_host.fleet import report as fleet_report
from firmware_host.fleet.runner import FleetConfig, run_fleet

# a Flower deployment is a dozen processes polling on timers: one at a time, in one worker of
# pytest -n, so two never share the two cores and stretch each other's rounds past their timeouts
pytestmark = pytest.mark.xdist_group("flower")

ROOT = Path(__file__).resolve().parent.parent
FLEET_BIN = ROOT / ".venv-fleet" / "bin"
MODEL = ROOT / "models" / "digits-stop.json"


@pytest.fixture(scope="module")
def flower():
    assert (FLEET_BIN / "flower-superlink").exists(), \
        f"{FLEET_BIN} has no Flower: run `make fleet-setup` (make test does) to build .venv-fleet"
    return FLEET_BIN


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def replay(cfg: FleetConfig, digits, participants) -> list:
    """The federation on the host, with ``participants(round)`` averaged each round."""
    shares = [share(digits, cfg.partition, cfg.boards, k, cfg.seed) for k in range(cfg.boards)]
    return simulate(rules.check(load_model(MODEL)), shares, cfg.rounds, cfg.epochs, participants)


def global_blob(report: dict, round_: int) -> bytes:
    return (Path(report["out_dir"]) / f"round-{round_}" / "global.elm").read_bytes()


def test_native_boards_by_class_through_the_command(flower, digits, tmp_path):
    """`edgelearn fleet` itself: 3 native boards, digits by class, 2 rounds, with the host's
    check, the boards-alone baseline and the plot."""
    out, plot = tmp_path / "run", tmp_path / "fleet.png"
    r = subprocess.run([flower / "edgelearn", "fleet", "--boards", "3", "--rounds", "2", "--data", "digits",
                        "--partition", "by-class", "--out", out, "--plot", plot, "--baseline", "--check", "--json"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["check"]["bit_exact"], report["check"]
    rounds = report["rounds"]
    assert [len(x["boards"]) for x in rounds] == [3, 3] and all(not x["skipped"] for x in rounds)
    assert report["initial_accuracy"] < rounds[0]["accuracy"] < rounds[1]["accuracy"]
    # the federated model beats every board trained alone for as long, on the same test set
    base = report["baseline"]
    assert base["beats_every_local_model"] and report["final_accuracy"] > max(base["local_only"]) + 0.15
    # bytes: the global blob down to each board, each pulled blob up
    blob_bytes = len(to_blob(rules.check(load_model(MODEL))))
    for x in rounds:
        assert x["sent_bytes"] == 3 * blob_bytes and x["received_bytes"] == 3 * blob_bytes
        assert x["link_bytes"] > 2 * x["sent_bytes"]         # push, pull, and the samples over the serial links
        assert all(0 <= b["local_accuracy"] <= 1 and b["local_tested"] > 0 for b in x["boards"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "report.json").read_text())["check"] == report["check"]
    # and again here, in the main environment: the pulled models, averaged, are the global model
    before = check_blob((out / "initial.elm").read_bytes())
    for i, x in enumerate(rounds):
        updates = [Update(check_blob((out / f"round-{i}" / f"board-{b['board']}.elm").read_bytes()), b["samples"])
                   for b in x["boards"]]
        assert to_blob(fedavg(before, updates)) == global_blob(report, i)
        before = check_blob(global_blob(report, i))
    x_test, y_test = global_test(digits, "by-class", 3)
    assert accuracy(before, x_test, y_test) == report["final_accuracy"]


def test_a_board_killed_mid_round_on_qemu_is_skipped_and_rejoins(flower, digits, tmp_path):
    """Three QEMU Cortex-M4 boards: board 1 is killed while it streams in round 1, skipped;
    restarted under its name, it gets the current global model in round 2. The result equals
    the host's federation without board 1's update in round 1."""
    cfg = FleetConfig(boards=3, rounds=2, partition="by-class", kind="mps2-an386", out_dir=str(tmp_path / "run"),
                      flower_bin=str(flower), round_timeout=240)
    seen = {}

    def on_event(fleet, event):
        if event.get("phase") == "learn" and event["board"] == 1 and event["round"] == 0 and "killed" not in seen:
            seen["killed"] = event["done"]
            fleet.stop_board(1)
        if event.get("phase") in ("pull", "test", "done") and event["board"] == 1 and event["round"] == 0:
            seen["finished"] = True
        if event.get("event") == "round" and event["round"] == 0:
            fleet.start_board(1)

    report = run_fleet(cfg, on_event=on_event)
    n1 = len(share(digits, "by-class", 3, 1).y_train)
    assert 0 < seen["killed"] < n1 and "finished" not in seen           # mid-stream
    first, second = report["rounds"]
    assert [b["board"] for b in first["boards"]] == [0, 2] and len(first["skipped"]) == 1
    reason = first["skipped"][0]["reason"]
    assert reason.startswith("the ClientApp failed") and any(e in reason for e in ("LinkTimeout", "SerialException"))
    assert [b["board"] for b in second["boards"]] == [0, 1, 2] and not second["skipped"]
    rejoined = next(b for b in second["boards"] if b["board"] == 1)
    current = check_blob(global_blob(report, 0))
    current.learning = replace(current.learning, seed=client_seed(current.learning.seed, 1, 1))
    assert rejoined["pushed_crc"] == f"{zlib.crc32(to_blob(current)):08x}"
    expected = replay(cfg, digits, lambda r: [0, 2] if r == 0 else [0, 1, 2])
    assert [to_blob(m) for m in expected] == [global_blob(report, 0), global_blob(report, 1)]
    assert fleet_report.check(report)["bit_exact"]


def test_a_hung_board_and_a_silent_supernode_are_skipped(flower, digits, tmp_path):
    """Native boards. Round 1: board 2 stops answering (SIGSTOP): its ClientApp times out on
    the link and fails, the round goes on. Round 2: SuperNode 1 (and its ClientApp) freezes: no
    reply within the round's timeout (or Flower's heartbeat marks it offline first), skipped.
    Round 3: both are back. Bit for bit the host's
    federation with exactly those boards."""
    cfg = FleetConfig(boards=3, rounds=3, partition="iid", out_dir=str(tmp_path / "run"), flower_bin=str(flower),
                      round_timeout=90)
    frozen = {}

    def on_event(fleet, event):
        if event.get("phase") == "start" and (event["round"], event["board"]) in ((0, 2), (1, 1)) \
                and event["round"] not in frozen:
            pid = boards.find(fleet.names[2])["pid"] if event["round"] == 0 else \
                fleet.deployment.supernodes[1].proc.pid
            os.killpg(pid, signal.SIGSTOP)
            frozen[event["round"]] = pid
        if event.get("event") == "round" and event["round"] in frozen:
            os.killpg(frozen[event["round"]], signal.SIGCONT)

    report = run_fleet(cfg, on_event=on_event)
    assert sorted(frozen) == [0, 1]
    averaged = [[b["board"] for b in x["boards"]] for x in report["rounds"]]
    reasons = [[s["reason"] for s in x["skipped"]] for x in report["rounds"]]
    assert averaged == [[0, 1], [0, 2], [0, 1, 2]], reasons
    assert len(reasons[0]) == 1 and "LinkTimeout" in reasons[0][0] and "no answer" in reasons[0][0]
    # the round's timeout, or first Flower's heartbeat patience (2 x 30 s): the SuperLink answers for it
    assert len(reasons[1]) == 1 and reasons[2] == []
    assert reasons[1][0].startswith(("no reply within the round's 90 s", "its SuperNode went offline")), reasons
    expected = replay(cfg, digits, lambda r: averaged[r])
    assert [to_blob(m) for m in expected] == [global_blob(report, r) for r in range(3)]
