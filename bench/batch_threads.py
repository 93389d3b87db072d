"""Batch training on one core and on two: edgelearn's fixed point at batch 32 with 1 and 2
threads (FixedSTOP's parallel batch, docs/numerics.md §6e, bit-exact with the sequential one),
beside snnTorch BPTT on 1 and 2 torch threads when the peers' environment is there, each in a
process of its own, timed one at a time, interleaved round after round with the order rotating;
medians of per-round ratios, wall clock and CPU time. 784-256-10 on MNIST, the task of bench/peers.py. Writes
bench/results/batch_threads.{json,md}.

    bench/.venv-peers/bin/python bench/batch_threads.py              # with snnTorch
    .venv/bin/python bench/batch_threads.py                          # edgelearn only
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")        # numpy's BLAS stays out of the way; torch's threads are set below

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers_edge as pe  # noqa: E402
from edgelearn.rules.stop.fixed import FixedSTOP  # noqa: E402

RESULTS = HERE / "results"
NET, BATCH = "784-256-10", 32


class Edge:
    def __init__(self, T: int, threads: int):
        self.net = FixedSTOP(pe.make_model(NET, T, batch=BATCH), threads=threads)
        self.parallel = 0

    def train(self, x, y):
        self.net.run(x, y, learn=True)
        self.parallel += self.net.threads_used > 1      # 1 where the bound of §6e kept it sequential


class Torch:
    def __init__(self, T: int, threads: int):
        import torch
        import peers_torch as pt
        torch.set_num_threads(threads)
        self.peer, self.parallel = pt.PEERS["snntorch-bptt"](NET, T), 0

    def train(self, x, y):
        self.peer.train_batch(x, y)


@njit(nogil=True, cache=True)
def _spin(n, seed):
    x = seed
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
    return x


class Control:
    """What the machine gives a second thread at the time: a fixed amount of pure arithmetic
    (xorshift steps, no memory traffic) split over the threads, timed like a batch."""
    STEPS = 20_000_000

    def __init__(self, T: int, threads: int):
        self.threads, self.parallel = threads, 0
        self.workers = ThreadPoolExecutor(max_workers=threads)

    def train(self, x, y):
        share = self.STEPS // self.threads
        for job in [self.workers.submit(_spin, share, seed + 1) for seed in range(self.threads)]:
            job.result()


CONTENDERS = {"edgelearn": Edge, "snntorch": Torch, "control": Control}
NAMES = {"edgelearn": "edgelearn fixed", "snntorch": "snnTorch BPTT", "control": "control (pure arithmetic)"}


def label(kind: str, threads: int) -> str:
    return f"{NAMES[kind]}, {threads} thread{'s' * (threads > 1)}"


def worker(kind: str, threads: int, T: int, conn) -> None:
    """One contender in a process of its own (torch's idle OpenMP threads spin, and would be
    counted in another contender's time): warm up, report a batch's seconds, then time ``k``
    batches each time it is asked, cycling over the first 64 batches of the training set."""
    data = pe.load_data(NET)
    batches = pe.batches_of(data.x_train, data.y_train, BATCH, 64)
    c = CONTENDERS[kind](T, threads)
    for i in range(2):
        c.train(*batches[i])
    t0 = time.perf_counter()
    c.train(*batches[2])
    conn.send(time.perf_counter() - t0)
    i = 3
    while (k := conn.recv()) is not None:
        c.parallel = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(k):
            c.train(*batches[i % len(batches)])
            i += 1
        conn.send(((time.perf_counter() - wall) / (k * BATCH), (time.process_time() - cpu) / (k * BATCH),
                   c.parallel))


def run_T(T: int, rounds: int, repeat_s: float, kinds: list[str]) -> dict:
    ctx = mp.get_context("spawn")
    names, conns, procs = [], [], []
    for kind in kinds:
        for threads in (1, 2):
            here, there = ctx.Pipe()
            p = ctx.Process(target=worker, args=(kind, threads, T, there), daemon=True)
            p.start()
            names.append(label(kind, threads))
            conns.append(here)
            procs.append(p)
    ks = [max(1, round(repeat_s / conn.recv())) for conn in conns]     # each repeat lasts about repeat_s
    wall, cpu = {n: [] for n in names}, {n: [] for n in names}
    parallel = {n: [0, 0] for n in names}
    for r in range(rounds):
        order = list(range(len(names)))
        for i in order[r % len(order):] + order[:r % len(order)]:   # one at a time, the order rotating
            conns[i].send(ks[i])
            w, p, par = conns[i].recv()
            wall[names[i]].append(w)
            cpu[names[i]].append(p)
            parallel[names[i]][0] += par
            parallel[names[i]][1] += ks[i]
    for conn, p in zip(conns, procs):
        conn.send(None)
        p.join()
    one, two = names[0], names[1]

    def ratio(a, b, of=wall):
        per_round = [x / y for x, y in zip(of[a], of[b])]
        return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)}

    out = {"T": T, "batch": BATCH, "net": NET, "rounds": rounds, "batches_per_repeat": dict(zip(names, ks)),
           "seconds_per_sample": {n: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                                  for n, v in wall.items()},
           "cpu_seconds_per_sample": {n: statistics.median(v) for n, v in cpu.items()},
           "parallel_batches": {n: f"{a}/{b}" for n, (a, b) in parallel.items() if n.startswith("edgelearn")},
           "speedup_2_threads": ratio(one, two), "cpu_ratio_2_threads": ratio(two, one, cpu)}
    for peer in names[2:]:
        if peer.startswith("control"):
            continue
        out[f"{two} vs {peer}"] = ratio(peer, two)       # throughput ratio: the peer's time / edgelearn's
        out[f"{one} vs {peer}"] = ratio(peer, one)
    control = [n for n in names if n.startswith("control")]
    if control:
        out["control_speedup_2_threads"] = ratio(*control)
    return out


def markdown(report: dict) -> str:
    lines = ["# Batch training on one core and on two (`batch_threads.py`)", "",
             f"Measured {report['when']} on {report['cpus']} CPU cores shared with other jobs; load average "
             f"{report['load_start']} at the start, {report['load_end']} at the end. "
             f"{report['rounds']} interleaved rounds per T (one process per contender, one timed at a time), the order "
             f"rotating; each repeat about "
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
        s, c = cell["speedup_2_threads"], cell["control_speedup_2_threads"]
        lines += ["", f"- edgelearn 2 threads / 1 thread: **{s['median']:.2f}x** faster ({s['min']:.2f}-{s['max']:.2f}); "
                  f"CPU time {cell['cpu_ratio_2_threads']['median']:.2f}x",
                  f"- the control in the same rounds (pure arithmetic, 2 threads / 1): {c['median']:.2f}x "
                  f"({c['min']:.2f}-{c['max']:.2f}): what the machine gave a second thread"]
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
    ap.add_argument("--no-peers", action="store_true", help="edgelearn only, even where snnTorch is installed")
    ap.add_argument("--out", default=str(RESULTS / "batch_threads"))
    args = ap.parse_args()
    kinds, versions = ["edgelearn", "control"], {"python": platform.python_version(), "numpy": np.__version__}
    if not args.no_peers:
        try:
            import torch
            import peers_torch  # noqa: F401
            from importlib.metadata import version
            versions.update(torch=torch.__version__, snntorch=version("snntorch"))
            kinds.append("snntorch")
        except ImportError as e:
            print(f"note: no snnTorch here ({e}): edgelearn only (bench/README.md says how to set up the peers)",
                  file=sys.stderr)
    report = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "load_start": [round(v, 2) for v in os.getloadavg()], "rounds": args.rounds,
              "repeat_s": args.repeat_s, "versions": versions, "command": " ".join(sys.argv),
              "cells": [run_T(T, args.rounds, args.repeat_s, kinds) for T in args.T]}
    report["load_end"] = [round(v, 2) for v in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=1) + "\n")
    Path(args.out + ".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
