"""Batch training on one core and on two: edgelearn's fixed point at batch 32 with 1 and 2
threads (FixedSTOP's parallel batch, docs/numerics.md §6e, bit-exact with the sequential one),
beside snnTorch BPTT on 1 and 2 torch threads when the peers' environment is there, all in one
process, interleaved round after round with the order rotating; medians of per-round ratios,
wall clock and CPU time. 784-256-10 on MNIST, the task of bench/peers.py. Writes
bench/results/batch_threads.{json,md}.

    bench/.venv-peers/bin/python bench/batch_threads.py              # with snnTorch
    .venv/bin/python bench/batch_threads.py                          # edgelearn only
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")        # numpy's BLAS stays out of the way; torch's threads are set below

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers_edge as pe  # noqa: E402
from edgelearn.rules.stop.fixed import FixedSTOP  # noqa: E402

RESULTS = HERE / "results"
NET, BATCH = "784-256-10", 32


class Edge:
    def __init__(self, T: int, threads: int):
        self.name, self.threads = f"edgelearn fixed, {threads} thread{'s' * (threads > 1)}", threads
        self.net = FixedSTOP(pe.make_model(NET, T, batch=BATCH), threads=threads)
        self.parallel = self.batches = 0

    def train(self, x, y):
        self.net.run(x, y, learn=True)
        self.parallel += self.net.threads_used > 1      # 1 where the bound of §6e kept it sequential
        self.batches += 1


class Torch:
    def __init__(self, T: int, threads: int, torch, pt):
        self.name, self.threads, self.torch = f"snnTorch BPTT, {threads} thread{'s' * (threads > 1)}", threads, torch
        self.peer = pt.PEERS["snntorch-bptt"](NET, T)

    def train(self, x, y):
        self.torch.set_num_threads(self.threads)
        self.peer.train_batch(x, y)


def timed(contender, batches, start: int, k: int) -> tuple[float, float]:
    """Seconds (wall, CPU of the whole process) per sample over ``k`` batches from ``start``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(start, start + k):
        contender.train(*batches[i % len(batches)])
    n = k * BATCH
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def run_T(T: int, rounds: int, repeat_s: float, torch, pt) -> dict:
    data = pe.load_data(NET)
    batches = pe.batches_of(data.x_train, data.y_train, BATCH, 64)
    contenders = [Edge(T, 1), Edge(T, 2)]
    if torch is not None:
        contenders += [Torch(T, 1, torch, pt), Torch(T, 2, torch, pt)]
    ks = []
    for c in contenders:                            # warm (numba compiles or loads), then size a repeat
        timed(c, batches, 0, 2)
        one = timed(c, batches, 2, 1)[0] * BATCH
        ks.append(max(1, round(repeat_s / one)))
    for c in contenders:
        if isinstance(c, Edge):
            c.parallel = c.batches = 0              # count the timed batches only
    wall = {c.name: [] for c in contenders}
    cpu = {c.name: [] for c in contenders}
    at = [4] * len(contenders)
    for r in range(rounds):
        order = list(range(len(contenders)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            w, p = timed(contenders[i], batches, at[i], ks[i])
            at[i] += ks[i]
            wall[contenders[i].name].append(w)
            cpu[contenders[i].name].append(p)
    one, two = contenders[0].name, contenders[1].name

    def ratio(a, b, of=wall):
        per_round = [x / y for x, y in zip(of[a], of[b])]
        return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)}

    out = {"T": T, "batch": BATCH, "net": NET, "rounds": rounds, "batches_per_repeat": dict(zip(wall, ks)),
           "seconds_per_sample": {n: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                                  for n, v in wall.items()},
           "cpu_seconds_per_sample": {n: statistics.median(v) for n, v in cpu.items()},
           "parallel_batches": {c.name: f"{c.parallel}/{c.batches}" for c in contenders if isinstance(c, Edge)},
           "speedup_2_threads": ratio(one, two), "cpu_ratio_2_threads": ratio(two, one, cpu)}
    for c in contenders[2:]:
        out[f"{two} vs {c.name}"] = ratio(c.name, two)       # throughput ratio: the peer's time / edgelearn's
        out[f"{one} vs {c.name}"] = ratio(c.name, one)
    return out


def markdown(report: dict) -> str:
    lines = ["# Batch training on one core and on two (`batch_threads.py`)", "",
             f"Measured {report['when']} on {report['cpus']} CPU cores shared with other jobs; load average "
             f"{report['load_start']} at the start, {report['load_end']} at the end. "
             f"{report['rounds']} interleaved rounds per T, the order rotating; each repeat at least "
             f"{report['repeat_s']} s; medians (min-max) of per-round values. snnTorch: "
             f"{report['versions'].get('snntorch', 'not measured')}.", ""]
    for cell in report["cells"]:
        lines += [f"## 784-256-10, batch 32, T = {cell['T']}", "",
                  "| contender | time per sample | CPU time per sample | batches run in parallel |",
                  "|---|---:|---:|---:|"]
        for name, s in cell["seconds_per_sample"].items():
            lines.append(f"| {name} | {s['median'] * 1e6:.0f} µs ({s['min'] * 1e6:.0f}-{s['max'] * 1e6:.0f}) | "
                         f"{cell['cpu_seconds_per_sample'][name] * 1e6:.0f} µs | "
                         f"{cell['parallel_batches'].get(name, '')} |")
        s = cell["speedup_2_threads"]
        lines += ["", f"- edgelearn 2 threads / 1 thread: **{s['median']:.2f}x** faster ({s['min']:.2f}-{s['max']:.2f}); "
                  f"CPU time {cell['cpu_ratio_2_threads']['median']:.2f}x"]
        for key, r in cell.items():
            if " vs " in key:
                lines.append(f"- throughput, {key}: **{r['median']:.2f}x** ({r['min']:.2f}-{r['max']:.2f})")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat-s", type=float, default=0.3, help="seconds a repeat lasts at least")
    ap.add_argument("--no-peers", action="store_true", help="edgelearn only, even where torch is installed")
    ap.add_argument("--out", default=str(RESULTS / "batch_threads"))
    args = ap.parse_args()
    torch = pt = None
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    if not args.no_peers:
        try:
            import torch
            import peers_torch as pt
            from importlib.metadata import version
            versions.update(torch=torch.__version__, snntorch=version("snntorch"))
        except ImportError as e:
            print(f"note: no snnTorch here ({e}): edgelearn only (bench/README.md says how to set up the peers)",
                  file=sys.stderr)
            torch = pt = None
    report = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "load_start": [round(v, 2) for v in os.getloadavg()], "rounds": args.rounds,
              "repeat_s": args.repeat_s, "versions": versions, "command": " ".join(sys.argv),
              "cells": [run_T(T, args.rounds, args.repeat_s, torch, pt) for T in args.T]}
    report["load_end"] = [round(v, 2) for v in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=1) + "\n")
    Path(args.out + ".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
