"""A fleet run end to end (``edgelearn fleet``, docs/fleet.md): N emulated boards, Flower's
deployment processes on loopback, R rounds, and the report.

    report = run_fleet(FleetConfig(boards=3, rounds=2, partition="by-class"))
    report["rounds"][-1]["accuracy"]        # the federated model on the held-out test set

The boards are started through the board registry (``firmware_host.boards``) under the names
``fleet-0`` .. ``fleet-{N-1}``, in a registry of the run's own (``EDGELEARN_BOARDS_FILE`` in the
run directory, inherited by every Flower process), so a ClientApp finds its board by name and a
restarted board is found again. Everything the run makes stays in ``out_dir``: the events the
ServerApp writes, each round's global and pulled models, the Flower logs, the report and the
plot. ``on_event(fleet, event)`` sees every event as it comes (the ServerApp's, and the boards'
progress lines), with the running ``Fleet``: its boards can be stopped and restarted, its
SuperNodes' processes (``fleet.deployment.supernodes``) frozen; that is how the tests make a
board drop out mid-round and rejoin.
"""
from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from edgelearn import datasets, resources, rules
from edgelearn.fleet.partition import PARTITIONS, share
from edgelearn.modelblob import to_blob
from edgelearn.modelfile import load_model

from .. import boards
from ..qemu_boards import BOARDS as EMULATED
from . import records as keys
from .deploy import Deployment, flower_bin, write_app

# the kinds whose storage holds the checkpoints a board stopped and started again in a run restores
# (netduinoplus2's has room for its key and boot count only, qemu_boards.py)
BOARD_KINDS = tuple(k for k in boards.KINDS if k not in EMULATED or EMULATED[k].storage_bytes is None)


class FleetError(RuntimeError):
    """A fleet run that could not start or did not finish; the message says why."""


@dataclass
class FleetConfig:
    boards: int = 3
    rounds: int = 2
    data: str = "digits"
    partition: str = "iid"
    kind: str = "native"                 # the boards: native processes or QEMU machines (BOARD_KINDS)
    model: str | None = None             # a .json spec or .elm blob; default: the zoo's <data>-stop.json
    epochs: int = 1                      # local epochs over a board's share per round
    seed: int = 0                        # the partition's shuffles
    round_timeout: float = 300.0         # seconds the ServerApp waits for a round's replies
    join_timeout: float = 120.0          # seconds it waits for every SuperNode to join
    rejoin_wait: float = 10.0            # seconds each round waits for SuperNodes missing from the fleet
    out_dir: str | None = None           # default: out/fleet-<time>
    flower_bin: str | None = None        # where flower-superlink, flower-supernode, flwr live


@dataclass
class Fleet:
    """The running fleet, as ``on_event`` sees it."""
    config: FleetConfig
    deployment: Deployment
    run_dir: Path
    names: list[str] = field(default_factory=list)

    def stop_board(self, k: int) -> None:
        boards.stop(self.names[k])

    def start_board(self, k: int) -> dict:
        return boards.start(self.config.kind, self.names[k])

    def node_config(self, k: int) -> dict:
        return {keys.NODE_BOARD: self.names[k], keys.NODE_PARTITION: k, keys.NODE_PARTITIONS: self.config.boards,
                keys.NODE_PROGRESS: str(self.progress_file(k))}

    def progress_file(self, k: int) -> Path:
        return self.run_dir / "progress" / f"board-{k}.jsonl"

    def start_supernode(self, k: int) -> None:
        self.deployment.start_supernode(k, self.node_config(k))


def check_config(cfg: FleetConfig) -> None:
    if cfg.partition not in PARTITIONS:
        raise FleetError(f"unknown partition {cfg.partition!r}; partitions: {', '.join(PARTITIONS)}")
    if cfg.kind not in BOARD_KINDS:
        raise FleetError(f"unknown board kind {cfg.kind!r}; kinds: {', '.join(BOARD_KINDS)}")
    for name, value, lo in (("boards", cfg.boards, 1), ("rounds", cfg.rounds, 1), ("epochs", cfg.epochs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise FleetError(f"{name} must be an integer >= {lo}, got {value!r}")
    for name in ("round_timeout", "join_timeout", "rejoin_wait"):
        if not getattr(cfg, name) > 0:
            raise FleetError(f"{name} must be a positive number of seconds, got {getattr(cfg, name)!r}")


def initial_model(cfg: FleetConfig):
    """The model the fleet starts from: ``cfg.model`` (a spec's parameters freshly seeded), or
    the zoo's ``<data>-stop.json``; cutoff margins are dropped (they hold for other weights)."""
    path = cfg.model
    if path is None:
        path = resources.MODELS / f"{cfg.data}-stop.json"
        if not path.exists():
            raise FleetError(f"no default model for data {cfg.data!r} (no {path.name} in the zoo): name one with --model")
    model = rules.check(load_model(path))
    model.cutoff = None
    return model


def fresh_run_dir(given: str | None) -> Path:
    run_dir = Path(given) if given else Path("out") / time.strftime("fleet-%Y%m%d-%H%M%S")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FleetError(f"the output directory {run_dir} is not empty: choose another (--out) or remove it")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir.resolve()


class Follower:
    """New JSON lines of a file as they are appended."""

    def __init__(self, path: Path):
        self.path, self.offset, self.rest = path, 0, b""

    def new(self) -> list[dict]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        return [json.loads(line) for line in lines if line.strip()]


def run_fleet(cfg: FleetConfig, on_event: Callable[[Fleet, dict], None] | None = None,
              show: Callable[[dict], None] | None = None) -> dict:
    """Run the fleet; the report (also written to ``out_dir/report.json``). ``show(event)``
    displays progress (the command line's bars)."""
    check_config(cfg)
    bin_dir = flower_bin(cfg.flower_bin)
    data = datasets.load(cfg.data)
    shares = [share(data, cfg.partition, cfg.boards, k, cfg.seed) for k in range(cfg.boards)]
    model = initial_model(cfg)
    run_dir = fresh_run_dir(cfg.out_dir)
    (run_dir / "progress").mkdir()
    (run_dir / "initial.elm").write_bytes(to_blob(model))
    registry = {"EDGELEARN_BOARDS_FILE": str(run_dir / "boards.json")}
    saved_env = {k: os.environ.get(k) for k in registry}
    os.environ.update(registry)                # boards.start/stop read it; the Flower processes inherit it
    deployment = Deployment(bin_dir, run_dir, registry)
    fleet = Fleet(cfg, deployment, run_dir, [f"fleet-{k}" for k in range(cfg.boards)])
    t0 = time.monotonic()
    events: list[dict] = []
    try:
        for k in range(cfg.boards):
            fleet.start_board(k)
        deployment.start_superlink()
        for k in range(cfg.boards):
            fleet.start_supernode(k)
        app = write_app(run_dir / "app", {
            "model": str(run_dir / "initial.elm"), "out-dir": str(run_dir), "rounds": cfg.rounds,
            "epochs": cfg.epochs, "data": cfg.data, "partition": cfg.partition, "boards": cfg.boards,
            "seed": cfg.seed, "round-timeout": float(cfg.round_timeout), "join-timeout": float(cfg.join_timeout),
            "rejoin-wait": float(cfg.rejoin_wait)})
        run = deployment.run_app(app)
        followers = [Follower(run_dir / "events.jsonl")] + [Follower(fleet.progress_file(k)) for k in range(cfg.boards)]
        limit = cfg.join_timeout + cfg.rounds * (cfg.round_timeout + cfg.rejoin_wait + 120) + 120
        while True:
            exited = not run.alive           # sampled first: what it wrote before exiting is read below
            for event in (e for f in followers for e in f.new()):
                if "event" in event:
                    events.append(event)
                if show:
                    show(event)
                if on_event:
                    on_event(fleet, event)
            if events and events[-1]["event"] in ("done", "failed"):
                break
            if exited:
                raise FleetError(f"flwr run exited ({run.proc.returncode}) before the run finished:\n"
                                 f"{run.output()}\n--- SuperLink ---\n{deployment.superlink.output()}")
            if time.monotonic() - t0 > limit:
                raise FleetError(f"the run did not finish within {limit:.0f} s:\n{run.output()}")
            time.sleep(0.2)
        if events[-1]["event"] == "failed":
            raise FleetError(f"the ServerApp failed: {events[-1]['error']}\n{events[-1].get('traceback', '')}")
    finally:
        deployment.stop()
        for name in fleet.names:
            if boards.find(name) is not None:
                boards.stop(name)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    report = build_report(cfg, model, events, shares, time.monotonic() - t0, run_dir)
    save_report(report)
    return report


def save_report(report: dict) -> None:
    (Path(report["out_dir"]) / "report.json").write_text(json.dumps(report, indent=2) + "\n")


def build_report(cfg: FleetConfig, model, events: list[dict], shares, seconds: float, run_dir: Path) -> dict:
    start = next(e for e in events if e["event"] == "start")
    round_starts = {e["round"]: e for e in events if e["event"] == "round-start"}
    rounds = []
    for e in (e for e in events if e["event"] == "round"):
        began = round_starts[e["round"]]
        link = sum(b["link_sent"] + b["link_received"] for b in e["boards"])
        rounds.append({"round": e["round"] + 1, "accuracy": e["accuracy"], "global_crc": f"{e['global_crc']:08x}",
                       "seconds": round(e["time"] - began["time"], 2), "nodes": began["nodes"],
                       "federation_bytes": e["sent_bytes"] + e["received_bytes"], "sent_bytes": e["sent_bytes"],
                       "received_bytes": e["received_bytes"], "link_bytes": link,
                       "boards": [{**b, "pushed_crc": f"{b['pushed_crc']:08x}",
                                   "local_accuracy": b["local_correct"] / b["local_tested"] if b["local_tested"] else None}
                                  for b in e["boards"]],
                       "skipped": e["skipped"]})
    return {"config": asdict(cfg), "model": model.name, "data": cfg.data, "out_dir": str(run_dir),
            "initial_crc": f"{zlib.crc32(to_blob(model)):08x}", "initial_accuracy": start["accuracy"],
            "test_samples": start["test_samples"], "train_samples": [len(s.x_train) for s in shares],
            "rounds": rounds, "final_accuracy": rounds[-1]["accuracy"] if rounds else start["accuracy"],
            "seconds": round(seconds, 2)}
