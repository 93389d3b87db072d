"""What ``edgelearn fleet`` shows and checks of a run (docs/fleet.md, "The report"): the
progress bars, the summary table, the host's replay of the federation (``check``), the
boards' shares learned alone (``baseline``), and the plot."""
from __future__ import annotations

import json
import sys
import zlib
from dataclasses import replace
from pathlib import Path

from edgelearn import datasets
from edgelearn.fleet.aggregate import Update, client_seed, fedavg
from edgelearn.fleet.partition import global_test, share
from edgelearn.fleet.reference import accuracy, local_only, simulate
from edgelearn.modelblob import check_blob, to_blob

from .runner import FleetConfig, initial_model


class Display:
    """One progress bar per round (the samples the boards learned), a line per round."""

    def __init__(self, cfg: FleetConfig):
        self.cfg, self.bar, self.done = cfg, None, {}

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        kind = event.get("event")
        if kind == "start":
            tqdm.write(f"{event['nodes']} of {self.cfg.boards} boards joined; the initial model scores "
                       f"{event['accuracy']:.2%} on the {event['test_samples']} test samples", file=sys.stderr)
        elif kind == "round-start":
            self.close()
            self.done = {}
            self.bar = tqdm(total=0, unit="sample", desc=f"round {event['round'] + 1}/{self.cfg.rounds}",
                            leave=False, dynamic_ncols=True, file=sys.stderr)
        elif kind == "round":
            self.close()
            skipped = f", {len(event['skipped'])} skipped" if event["skipped"] else ""
            moved = event["sent_bytes"] + event["received_bytes"]
            tqdm.write(f"round {event['round'] + 1}/{self.cfg.rounds}: global accuracy {event['accuracy']:.2%} "
                       f"({len(event['boards'])} boards averaged{skipped}; {moved / 1e3:.1f} kB of models moved)",
                       file=sys.stderr)
            for s in event["skipped"]:
                tqdm.write(f"  skipped node {s['node']}: {s['reason']}", file=sys.stderr)
        elif event.get("phase") == "learn" and self.bar is not None:
            self.done[event["board"]] = (event["done"], event["total"])
            self.bar.total = sum(t for _, t in self.done.values())
            self.bar.set_postfix_str(f"{len(self.done)} of {self.cfg.boards} boards learning", refresh=False)
            self.bar.update(sum(d for d, _ in self.done.values()) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _config(report: dict) -> FleetConfig:
    return FleetConfig(**report["config"])


def _round_blob(run_dir: Path, round_: int) -> bytes:
    return (run_dir / ("initial.elm" if round_ < 0 else f"round-{round_}/global.elm")).read_bytes()


def check(report: dict) -> dict:
    """Every round's aggregate against (1) ``fedavg`` of the pulled models the ServerApp
    averaged, recomputed here, and (2) the host's replay of the whole federation with the C
    runtime (the same boards each round); and that every board was pushed the round's global
    model (with its seed)."""
    cfg, run_dir = _config(report), Path(report["out_dir"])
    data = datasets.load(cfg.data)
    shares = [share(data, cfg.partition, cfg.boards, k, cfg.seed) for k in range(cfg.boards)]
    averaged = [[b["board"] for b in r["boards"]] for r in report["rounds"]]
    replay = simulate(initial_model(cfg), shares, len(report["rounds"]), cfg.epochs, participants=lambda r: averaged[r])
    rounds = []
    for r, (entry, host) in enumerate(zip(report["rounds"], replay)):
        before = check_blob(_round_blob(run_dir, r - 1))
        fleet_blob = _round_blob(run_dir, r)
        updates = [Update(check_blob((run_dir / f"round-{r}" / f"board-{b['board']}.elm").read_bytes()),
                          b["samples"], str(b["board"])) for b in entry["boards"]]
        recomputed = to_blob(fedavg(before, updates)) if updates else to_blob(before)
        pushed = []
        for b in entry["boards"]:
            expected = before.copy()
            expected.learning = replace(before.learning, seed=client_seed(before.learning.seed, r, b["board"]))
            pushed.append(b["pushed_crc"] == f"{zlib.crc32(to_blob(expected)):08x}")
        rounds.append({"round": r + 1, "boards": averaged[r], "aggregate_of_pulled": recomputed == fleet_blob,
                       "host_replay": to_blob(host) == fleet_blob, "pushed_global": all(pushed)})
    exact = all(x["aggregate_of_pulled"] and x["host_replay"] and x["pushed_global"] for x in rounds)
    return {"rounds": rounds, "bit_exact": exact}


def baseline(report: dict) -> dict:
    """Each board's share learned alone for rounds x epochs epochs (host C runtime, bit-exact
    with a board doing it), scored on the fleet's test set beside the federated model."""
    cfg = _config(report)
    data = datasets.load(cfg.data)
    x, y = global_test(data, cfg.partition, cfg.boards, cfg.seed)
    model = initial_model(cfg)
    alone = [accuracy(local_only(model, share(data, cfg.partition, cfg.boards, k, cfg.seed), k,
                                 len(report["rounds"]) * cfg.epochs), x, y) for k in range(cfg.boards)]
    return {"epochs": len(report["rounds"]) * cfg.epochs, "local_only": alone, "best_local": max(alone),
            "federated": report["final_accuracy"], "beats_every_local_model": report["final_accuracy"] > max(alone)}


def plot(report: dict, path: str) -> None:
    """Global accuracy per round (and the boards' local accuracy on their own test sets, the
    best board alone with --baseline); the bytes moved per round."""
    from matplotlib.ticker import MaxNLocator

    from edgelearn.plots import plt

    rounds = report["rounds"]
    xs = [0] + [r["round"] for r in rounds]
    fig, (acc, moved) = plt.subplots(1, 2, figsize=(11, 4))
    acc.plot(xs, [100 * report["initial_accuracy"]] + [100 * r["accuracy"] for r in rounds], marker="o",
             color="tab:blue", label="federated model, held-out test set")
    for r in rounds:
        local = [100 * b["local_accuracy"] for b in r["boards"] if b["local_accuracy"] is not None]
        acc.scatter([r["round"]] * len(local), local, s=12, color="tab:orange", alpha=0.6,
                    label="each board's round model, its local test set" if r is rounds[0] else None)
    if "baseline" in report:
        acc.axhline(100 * report["baseline"]["best_local"], color="tab:red", linestyle="--",
                    label=f"best board alone ({report['baseline']['epochs']} epochs)")
    acc.set_xlabel("round")
    acc.set_ylabel("accuracy (%)")
    acc.set_ylim(0, 100)
    acc.grid(True, alpha=0.3)
    acc.legend(fontsize=8)
    cfg = report["config"]
    acc.set_title(f"{cfg['boards']} {cfg['kind']} boards, {cfg['data']}, {cfg['partition']}")
    width = 0.4
    moved.bar([r["round"] - width / 2 for r in rounds], [r["federation_bytes"] / 1e3 for r in rounds], width,
              label="models over Flower (down + up)")
    moved.bar([r["round"] + width / 2 for r in rounds], [r["link_bytes"] / 1e3 for r in rounds], width,
              label="serial links (push, samples, pull, tests)")
    moved.set_xlabel("round")
    moved.set_ylabel("kB per round")
    moved.grid(True, axis="y", alpha=0.3)
    moved.legend(fontsize=8)
    for ax in (acc, moved):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary(report: dict) -> str:
    cfg = report["config"]
    lines = [f"{cfg['boards']} {cfg['kind']} boards, {cfg['data']} partitioned {cfg['partition']}, "
             f"{len(report['rounds'])} rounds of {cfg['epochs']} local epoch(s), model {report['model']}: "
             f"{report['seconds']:.1f} s",
             "  round  global acc  boards  skipped  local acc (min-max)  models kB  link kB  seconds",
             f"  {0:5d}  {report['initial_accuracy']:9.2%}"]
    for r in report["rounds"]:
        local = [b["local_accuracy"] for b in r["boards"] if b["local_accuracy"] is not None]
        span = f"{min(local):.1%}-{max(local):.1%}" if local else "-"
        lines.append(f"  {r['round']:5d}  {r['accuracy']:9.2%}  {len(r['boards']):6d}  {len(r['skipped']):7d}  "
                     f"{span:>19}  {r['federation_bytes'] / 1e3:9.1f}  {r['link_bytes'] / 1e3:7.1f}  {r['seconds']:7.1f}")
        for s in r["skipped"]:
            lines.append(f"         skipped node {s['node']}: {s['reason']}")
    if "baseline" in report:
        b = report["baseline"]
        lines.append(f"each board alone ({b['epochs']} epochs, host C runtime): "
                     + ", ".join(f"{a:.1%}" for a in b["local_only"])
                     + f"; the federated model {'beats every one' if b['beats_every_local_model'] else 'does NOT beat all'}")
    if "check" in report:
        c = report["check"]
        lines.append("check: every round's aggregate equals fedavg of the pulled models and the host's replay, bit "
                     "for bit" if c["bit_exact"] else "check FAILED: " + json.dumps(c["rounds"]))
    lines.append(f"run directory: {report['out_dir']}" + (f"; plot: {report['plot']}" if "plot" in report else ""))
    return "\n".join(lines)
