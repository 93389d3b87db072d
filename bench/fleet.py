"""Fleets (docs/fleet.md): federated on-device learning across emulated boards on Flower's
deployment processes, the figures of the README. Each run is ``edgelearn fleet``'s runner
(boards, SuperLink, SuperNodes, ServerApp, ClientApps on loopback), followed by the host's
check of every round's aggregate (fedavg of the pulled models, and the whole federation
replayed with the C runtime: bit for bit) and the baseline of every board trained alone for as
many epochs. Writes bench/results/fleet.{json,md,png} (the plot: the by-class run).

    make bench-fleet                                   # every run below, about 25 minutes here
    .venv/bin/python bench/fleet.py --only by-class-8 qemu-2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import time
from pathlib import Path

from firmware_host.fleet import report as fleet_report
from firmware_host.fleet.runner import FleetConfig, run_fleet

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "out" / "bench-fleet"
FLOWER_BIN = ROOT / ".venv-fleet" / "bin"

RUNS = {
    "by-class-8": dict(boards=8, rounds=20, partition="by-class"),
    "iid-8": dict(boards=8, rounds=10, partition="iid"),
    "shifted-8": dict(boards=8, rounds=10, partition="shifted"),
    "qemu-2": dict(boards=2, rounds=5, partition="by-class", kind="mps2-an386"),
    "faults-8": dict(boards=8, rounds=4, partition="by-class", round_timeout=90.0),
}
KILLED, FROZEN = 3, 5          # faults-8: board 3 killed mid-stream in round 2, SuperNode 5 frozen in round 3


class Faults:
    """faults-8's events: board KILLED is killed while it streams in round 2 (1-based) and
    restarted when the round ends; SuperNode FROZEN is frozen (SIGSTOP) when its ClientApp
    starts in round 3 and thawed when that round ends, past its timeout."""

    def __init__(self):
        self.done: dict = {}

    def __call__(self, fleet, event) -> None:
        if event.get("phase") == "learn" and (event["round"], event["board"]) == (1, KILLED) and "kill" not in self.done:
            self.done["kill"] = event["done"]
            fleet.stop_board(KILLED)
        elif event.get("phase") == "start" and (event["round"], event["board"]) == (2, FROZEN) \
                and "freeze" not in self.done:
            self.done["freeze"] = fleet.deployment.supernodes[FROZEN].proc.pid
            os.killpg(self.done["freeze"], signal.SIGSTOP)
        elif event.get("event") == "round" and event["round"] == 1:
            fleet.start_board(KILLED)
        elif event.get("event") == "round" and event["round"] == 2 and "freeze" in self.done:
            os.killpg(self.done["freeze"], signal.SIGCONT)


def run(name: str) -> dict:
    out = OUT / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = FleetConfig(**{"out_dir": str(out), "flower_bin": str(FLOWER_BIN), **RUNS[name]})
    faults = Faults() if name == "faults-8" else None
    load = os.getloadavg()
    display = fleet_report.Display(cfg)
    try:
        report = run_fleet(cfg, on_event=faults, show=display)
    finally:
        display.close()
    report["check"] = fleet_report.check(report)
    report["baseline"] = fleet_report.baseline(report)
    report["load_before"] = load
    report["load_after"] = os.getloadavg()
    if faults:
        report["faults"] = {"killed_board": KILLED, "killed_after_samples": faults.done.get("kill"),
                            "frozen_supernode": FROZEN, "averaged": [[b["board"] for b in r["boards"]]
                                                                     for r in report["rounds"]]}
    print(fleet_report.summary(report), flush=True)
    return report


def row(name: str, r: dict) -> str:
    cfg, rounds = r["config"], r["rounds"]
    per_round = sum(x["seconds"] for x in rounds) / len(rounds)
    models = sum(x["federation_bytes"] for x in rounds) / len(rounds) / 1e3
    links = sum(x["link_bytes"] for x in rounds) / len(rounds) / 1e3
    skipped = sum(len(x["skipped"]) for x in rounds)
    return (f"| {name} | {cfg['boards']} {cfg['kind']} | {cfg['partition']} | {len(rounds)} | "
            f"{r['initial_accuracy']:.2%} | **{r['final_accuracy']:.2%}** | {r['baseline']['best_local']:.2%} | "
            f"{'yes' if r['check']['bit_exact'] else 'NO'} | {skipped} | {r['seconds']:.0f} s | {per_round:.1f} s | "
            f"{models:.0f} | {links:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=tuple(RUNS),
                   help="these runs only; the other runs' results already in fleet.json are kept")
    args = p.parse_args()
    names = args.only or list(RUNS)
    results = json.loads((RESULTS / "fleet.json").read_text())["runs"] if args.only and (RESULTS / "fleet.json").exists() \
        else {}
    results.update({name: run(name) for name in names})
    results = {name: results[name] for name in RUNS if name in results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    (RESULTS / "fleet.json").write_text(json.dumps({"meta": meta, "runs": results}, indent=2) + "\n")
    lines = ["| run | boards | partition | rounds | initial | federated (held-out test) | best board alone | "
             "bit-exact with the host | skipped | time | per round | kB models / round | kB serial links / round |",
             "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    lines += [row(name, r) for name, r in results.items()]
    for name, r in results.items():
        lines.append(f"\n{name}: global accuracy per round " + ", ".join(f"{x['accuracy']:.1%}" for x in r["rounds"])
                     + "; each board alone: " + ", ".join(f"{a:.1%}" for a in r["baseline"]["local_only"]))
        if "faults" in r:
            f = r["faults"]
            lines.append(f"boards averaged per round: {f['averaged']} (board {f['killed_board']} killed after "
                         f"{f['killed_after_samples']} samples of round 2, SuperNode {f['frozen_supernode']} frozen "
                         "in round 3); skipped: " + "; ".join(s["reason"] for x in r["rounds"] for s in x["skipped"]))
    (RESULTS / "fleet.md").write_text("\n".join(lines) + "\n")
    if "by-class-8" in results:
        fleet_report.plot(results["by-class-8"], str(RESULTS / "fleet.png"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
