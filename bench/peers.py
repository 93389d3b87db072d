"""edgelearn beside its peers, measured side by side in one process: time per training
sample and training memory of the same networks (784-256-10 on MNIST, 64-128-10 on
digits), the same input coding, LIF and loss, batch 1 and 32, T = 8 ... 256; and the
test accuracy each reaches on digits in the same wall-clock budget.
Writes bench/results/peers.{json,md,png}.

    make bench-peers                                  # sets up bench/.venv-peers, full run
    bench/.venv-peers/bin/python bench/peers.py [--quick]

Peers: snnTorch BPTT; SpikingJelly BPTT, OTTT and SLTT. edgelearn: the fixed-point
runtime (numba; the device's arithmetic) and its float64 twin. See bench/README.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

THREADS_DEFAULT = 1
# Thread counts must be fixed before numpy/numba/torch start their pools.
if __name__ == "__main__":
    _t = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), None)
    if _t is None and "--threads" in sys.argv:
        _t = sys.argv[sys.argv.index("--threads") + 1]
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, _t or str(THREADS_DEFAULT))

import json  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers_edge as pe  # noqa: E402

RESULTS = HERE / "results"
EDGE_METHODS = ("edgelearn-fixed", "edgelearn-float")
REFERENCE = "snntorch-bptt"        # the targets are stated against snnTorch BPTT
LABELS = {"edgelearn-fixed": "edgelearn fixed (numba)", "edgelearn-float": "edgelearn float64 twin",
          "snntorch-bptt": "snnTorch BPTT", "spikingjelly-bptt": "SpikingJelly BPTT",
          "spikingjelly-ottt": "SpikingJelly OTTT", "spikingjelly-sltt": "SpikingJelly SLTT"}


def import_torch_peers():
    try:
        import torch
        import peers_torch
    except ImportError as e:
        sys.exit(f"bench/peers.py needs the peers' environment ({e}). Set it up with `make bench-peers` "
                 "or see bench/README.md (torch==2.13.0 first, then snntorch and spikingjelly).")
    return torch, peers_torch


def versions(torch) -> dict:
    import numba
    out = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
           "torch": torch.__version__}
    for mod in ("snntorch", "spikingjelly"):
        try:
            from importlib.metadata import version
            out[mod] = version(mod)
        except Exception as e:          # report, never hide, a peer that is not there
            out[mod] = f"unavailable: {e}"
    return out


# -- measuring -----------------------------------------------------------------------------
def measure_cell(method, net, T, batch, args, torch, pt) -> dict:
    timing = dict(budget_s=args.cell_seconds, min_repeats=args.min_repeats, max_repeats=args.max_repeats)
    if method in EDGE_METHODS:
        r = pe.edgelearn_cell(net, T, batch, executor=method.split("-")[1], **timing)
    else:
        data = pe.load_data(net)
        peer = pt.PEERS[method](net, T)
        batches = pe.batches_of(data.x_train, data.y_train, batch, 64)
        t = pe.time_training(lambda i: peer.train_batch(*batches[i]), len(batches), batch, **timing)
        mem = pt.torch_memory(peer, *batches[0])
        r = {"seconds_per_sample": t.seconds_per_sample, "repeats": t.repeats,
             "samples_per_repeat": t.samples_per_repeat, "spread": round(t.spread, 3), "memory": mem}
    return {"net": net, "batch": batch, "T": T, "method": method, **r}


def accuracy_run(method, budget, torch, pt) -> dict:
    net, T = "64-128-10", 8
    if method in EDGE_METHODS:
        r = pe.edgelearn_accuracy(budget, method.split("-")[1], net, T)
    else:
        data = pe.load_data(net)
        peer = pt.PEERS[method](net, T)

        def train_one(i):
            peer.train_batch(data.x_train[i:i + 1], data.y_train[i:i + 1])

        def evaluate():
            return float(np.mean(np.argmax(peer.predict(data.x_test), axis=1) == data.y_test))

        r = pe.train_for(budget, train_one, evaluate, len(data.x_train))
    return {"method": method, "net": net, "T": T, "batch": 1, "budget_s": budget, **r}


# -- reporting -----------------------------------------------------------------------------
def find(cells, **key):
    for c in cells:
        if all(c[k] == v for k, v in key.items()):
            return c
    return None


def ratios(cells, methods) -> list[dict]:
    """edgelearn-fixed / peer for time and memory, per configuration, same run."""
    out = []
    for c in cells:
        if c["method"] != "edgelearn-fixed":
            continue
        for m in methods:
            if m in EDGE_METHODS:
                continue
            p = find(cells, net=c["net"], batch=c["batch"], T=c["T"], method=m)
            if p:
                out.append({"net": c["net"], "batch": c["batch"], "T": c["T"], "peer": m,
                            "time_ratio": c["seconds_per_sample"] / p["seconds_per_sample"],
                            "memory_ratio": c["memory"]["total"] / p["memory"]["total"]})
    return out


def targets(cells) -> list[dict]:
    out = []
    for net in pe.NETWORKS:
        for batch in sorted({c["batch"] for c in cells}):
            edge = [c for c in cells if c["net"] == net and c["batch"] == batch and c["method"] == "edgelearn-fixed"]
            if not edge:
                continue
            mems = {c["T"]: c["memory"]["total"] for c in edge}
            out.append({"target": f"memory flat in T ({net}, batch {batch})", "goal": "max/min = 1",
                        "measured": max(mems.values()) / min(mems.values()),
                        "met": max(mems.values()) == min(mems.values())})
            Tmax = max(mems)
            ref = find(cells, net=net, batch=batch, T=Tmax, method=REFERENCE)
            if ref:
                f = ref["memory"]["total"] / mems[Tmax]
                out.append({"target": f"memory >= 20x below snnTorch BPTT at T={Tmax} ({net}, batch {batch})",
                            "goal": ">= 20", "measured": f, "met": f >= 20 and Tmax == 256})
    for net, goal in (("784-256-10", 3.0), ("64-128-10", 10.0)):
        e = find(cells, net=net, batch=1, T=32, method="edgelearn-fixed")
        r = find(cells, net=net, batch=1, T=32, method=REFERENCE)
        if e and r:
            f = r["seconds_per_sample"] / e["seconds_per_sample"]
            out.append({"target": f"speed >= {goal:g}x snnTorch BPTT, batch 1, T=32 ({net})",
                        "goal": f">= {goal:g}", "measured": f, "met": f >= goal})
    return out


def fmt_bytes(n: float) -> str:
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_time(s: float) -> str:
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def markdown(report) -> str:
    cells, methods = report["cells"], report["methods"]
    peers = [m for m in methods if m not in EDGE_METHODS]
    lines = [f"# edgelearn beside its peers ({'quick' if report['settings']['quick'] else 'full'} run)", "",
             f"Measured {report['date']} in one process on {report['machine']['cpus']} CPU cores; torch and "
             f"numba on {report['settings']['threads']} thread(s); load average {report['machine']['loadavg_start']} "
             f"at the start, {report['machine']['loadavg_end']} at the end (other jobs share this machine). "
             f"Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".", ""]
    head = "| net | B | T | " + " | ".join(LABELS[m] for m in methods)
    ratio_cols = [p for p in peers if p == REFERENCE] + [p for p in peers if p != REFERENCE]
    for title, key, fmt, note in (
            ("Time per training sample", "seconds_per_sample", fmt_time,
             "median of repeated warm runs; ratio = edgelearn fixed / peer (below 1: edgelearn is faster)"),
            ("Peak training memory", None, fmt_bytes,
             "edgelearn: every buffer it holds; float twin: its parameters, state and gradient sums; torch: "
             "parameters + grads + peak of tensors saved for backward; ratio = edgelearn fixed / peer")):
        lines += [f"## {title}", "", f"({note})", "",
                  head + " | " + " | ".join(f"÷ {LABELS[p]}" for p in ratio_cols) + " |",
                  "|---|---:|---:|" + "---:|" * (len(methods) + len(ratio_cols))]
        for net in report["settings"]["nets"]:
            for batch in report["settings"]["batches"]:
                for T in report["settings"]["T"]:
                    row = [net, str(batch), str(T)]
                    edge = find(cells, net=net, batch=batch, T=T, method="edgelearn-fixed")
                    for m in methods:
                        c = find(cells, net=net, batch=batch, T=T, method=m)
                        row.append(fmt(c[key] if key else c["memory"]["total"]) if c else "–")
                    for p in ratio_cols:
                        c = find(cells, net=net, batch=batch, T=T, method=p)
                        if c and edge:
                            v = edge[key] / c[key] if key else edge["memory"]["total"] / c["memory"]["total"]
                            row.append(f"{v:.3g}")
                        else:
                            row.append("–")
                    lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        if key:
            sil = [c["silent_fraction"] for c in cells if c["method"] == "edgelearn-fixed"]
            if sil:
                lines += [f"edgelearn's timed samples whose readout never fired: {min(sil):.0%} to {max(sil):.0%} per "
                          "configuration. A silent readout gives no output error, so nothing learns on those steps: "
                          "what is left is the forward pass, whose layer 0 sums a direct input once a sample "
                          "(docs/numerics.md §5b).", ""]
    lines += ["## Where the memory goes (T = 256 or the largest T measured)", "",
              "| net | B | method | parameters | grads / accumulators | saved for backward or state | total |",
              "|---|---:|---|---:|---:|---:|---:|"]
    Tmax = max(report["settings"]["T"])
    for net in report["settings"]["nets"]:
        for batch in report["settings"]["batches"]:
            for m in methods:
                c = find(cells, net=net, batch=batch, T=Tmax, method=m)
                if not c:
                    continue
                mem = c["memory"]
                if m == "edgelearn-fixed":
                    grads = mem["buffers"].get("weight_grad", 0)
                    state = mem["training_state"] - grads
                else:
                    grads = mem.get("grads", 0)
                    state = mem.get("saved_for_backward", mem["training_state"] - grads)
                lines.append(f"| {net} | {batch} | {LABELS[m]} | {fmt_bytes(mem['parameters'])} | "
                             f"{fmt_bytes(grads)} | {fmt_bytes(state)} | {fmt_bytes(mem['total'])} |")
    lines.append("")
    if report.get("accuracy"):
        acc = report["accuracy"]
        lines += [f"## Accuracy in the same wall-clock budget (digits, 64-128-10, T = 8, batch 1, "
                  f"{acc[0]['budget_s']:g} s of training each)", "",
                  "| method | test accuracy at the end | best on the way | first >= 95% after | samples trained | "
                  "epochs | time per sample |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for a in acc:
            reach = next((c["seconds"] for c in a["curve"] if c["test_accuracy"] >= 0.95), None)
            best = max(c["test_accuracy"] for c in a["curve"])
            lines.append(f"| {LABELS[a['method']]} | {a['test_accuracy']:.2%} | {best:.2%} | "
                         f"{f'{reach:g} s' if reach is not None else 'not reached'} | {a['samples']} | "
                         f"{a['epochs']} | {fmt_time(a['seconds'] / max(1, a['samples']))} |")
        lines += ["", "Same split (sklearn digits, 1,347 train / 450 test), same initial weights, same "
                  "sample order; the test set is evaluated after each epoch and at the end of the budget, with "
                  "the clock stopped (so \"first >= 95%\" has the resolution of one epoch).", ""]
    lines += device_markdown(report["device"])
    lines += ["## Targets", "", "| target | goal | measured | met |", "|---|---:|---:|:---:|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['goal']} | {t['measured']:.3g} | {'yes' if t['met'] else '**no**'} |")
    lines += ["", "## The peers, as configured", ""]
    lines += [f"- **{LABELS[m]}**: {report['notes'][m]}" for m in methods if m in report["notes"]]
    return "\n".join(lines) + "\n"


def plot(report, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cells, methods = report["cells"], report["methods"]
    nets = report["settings"]["nets"]
    fig, axes = plt.subplots(2, len(nets), figsize=(6 * len(nets), 9), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for col, net in enumerate(nets):
        for row, (key, ylabel) in enumerate((("memory", "peak training memory (bytes)"),
                                             ("seconds_per_sample", "time per training sample (s)"))):
            ax = axes[row][col]
            for m in methods:
                for batch, style in zip(report["settings"]["batches"], ("-", "--")):
                    pts = sorted((c["T"], c["memory"]["total"] if key == "memory" else c[key])
                                 for c in cells if c["net"] == net and c["method"] == m and c["batch"] == batch)
                    if pts:
                        ax.plot(*zip(*pts), style, marker="o", ms=3, color=colors[m],
                                label=f"{LABELS[m]}, B={batch}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("time steps T")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{net} ({pe.NETWORKS[net][0]})")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("edgelearn vs snnTorch / SpikingJelly: memory and time per sample (solid B=1, dashed B=32)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


DEVICE_TARGET = "mps2-an386"   # the emulated Cortex-M4F board (4 MiB SRAM: every model fits)


def device_memory(nets, Ts) -> list[dict]:
    """The device side, from the memory profiler: the C runtime's arena and the whole
    training RAM on a Cortex-M4 for edgelearn's STOP, beside BPTT for the same model and T
    (batch 1: a device learns online)."""
    from edgelearn.profile import profile
    rows = []
    for net in nets:
        for T in Ts:
            r = profile(pe.make_model(net, T), DEVICE_TARGET, "stop", T, measure_code=False)
            rows.append({"net": net, "T": T, "arena": r["arena"], "ram": r["total_ram"],
                         "ram_bptt": r["total_ram_bptt"]})
    return rows


def device_markdown(rows) -> list[str]:
    lines = [f"## On the device (memory profiler, {DEVICE_TARGET}, batch 1)", "",
             "`edgelearn profile` for the same models: the C runtime's arena (everything but the "
             "parameters and the code) and all the RAM training needs, beside BPTT at the same T "
             "(stored activations for T steps; formula in docs/c-runtime.md). Code size is left out "
             "here (it needs the cross compiler; `edgelearn profile` reports it).", "",
             "| net | T | edgelearn arena | edgelearn RAM | BPTT RAM | BPTT / edgelearn |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['net']} | {r['T']} | {fmt_bytes(r['arena'])} | {fmt_bytes(r['ram'])} | "
                     f"{fmt_bytes(r['ram_bptt'])} | {r['ram_bptt'] / r['ram']:.1f}x |")
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="T in {8, 32, 256}, short timings, 5 s accuracy budget")
    p.add_argument("--T", type=int, nargs="+", help=f"time steps (default {' '.join(map(str, pe.T_VALUES))})")
    p.add_argument("--batches", type=int, nargs="+", default=list(pe.BATCHES))
    p.add_argument("--nets", nargs="+", default=list(pe.NETWORKS), choices=list(pe.NETWORKS))
    p.add_argument("--methods", nargs="+", help="subset of the methods (default: all)")
    p.add_argument("--threads", type=int, default=THREADS_DEFAULT, help="torch and numba threads (default 1)")
    p.add_argument("--cell-seconds", type=float, help="timing budget per configuration and method")
    p.add_argument("--accuracy-seconds", type=float, help="training budget per method on digits (default 30)")
    p.add_argument("--no-accuracy", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "peers"), help="output path without extension")
    p.add_argument("--from-json", metavar="PATH", help="only re-render the .md and .png of a finished run")
    args = p.parse_args()
    if args.from_json:
        report, out = json.loads(Path(args.from_json).read_text()), Path(args.from_json).with_suffix("")
        report["device"] = device_memory(report["settings"]["nets"], report["settings"]["T"])
        out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
        out.with_suffix(".md").write_text(markdown(report))
        plot(report, out.with_suffix(".png"))
        print(f"wrote {out}.md, {out}.png")
        return
    args.T = args.T or ([8, 32, 256] if args.quick else list(pe.T_VALUES))
    args.cell_seconds = args.cell_seconds or (0.3 if args.quick else 1.0)
    args.min_repeats, args.max_repeats = (2, 10) if args.quick else (3, 25)
    acc_budget = args.accuracy_seconds or (5.0 if args.quick else 30.0)

    torch, pt = import_torch_peers()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    methods = args.methods or [*EDGE_METHODS, *pt.PEERS]
    unknown = set(methods) - set(LABELS)
    if unknown:
        sys.exit(f"unknown methods {sorted(unknown)}; known: {', '.join(LABELS)}")

    start, load0 = time.perf_counter(), os.getloadavg()
    pe.warm_up_numba()
    cells = []
    configs = [(net, b, T) for net in args.nets for b in args.batches for T in args.T]
    bar = tqdm(total=len(configs) * len(methods), desc="peers", unit="cell")
    for net, batch, T in configs:
        for m in methods:
            bar.set_postfix_str(f"{net} B={batch} T={T} {m}")
            cells.append(measure_cell(m, net, T, batch, args, torch, pt))
            bar.update()
    bar.close()
    accuracy = []
    if not args.no_accuracy:
        for m in tqdm(methods, desc=f"accuracy ({acc_budget:g} s each)", unit="method"):
            accuracy.append(accuracy_run(m, acc_budget, torch, pt))

    import numba
    report = {
        "benchmark": "peers", "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join([Path(sys.executable).name, "bench/peers.py", *sys.argv[1:]]),
        "settings": {"quick": args.quick, "T": args.T, "batches": args.batches, "nets": args.nets,
                     "threads": args.threads, "numba_threads": numba.config.NUMBA_NUM_THREADS,
                     "torch_threads": torch.get_num_threads(), "cell_seconds": args.cell_seconds,
                     "min_repeats": args.min_repeats, "max_repeats": args.max_repeats,
                     "accuracy_seconds": acc_budget, "data": {n: pe.NETWORKS[n][0] for n in args.nets},
                     "lr_weight_shift": {T: pe.lr_weight_shift(T) for T in args.T}},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine(),
                    "loadavg_start": [round(x, 2) for x in load0],
                    "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions(torch), "methods": methods,
        "notes": {**{m: f"{pt.PEERS[m].notes} SGD rates {pt.PEERS[m].lr_scale:g} x edgelearn's."
                     for m in methods if m in pt.PEERS},
                  "edgelearn-fixed": "FixedSTOP: int16 weights, Q16 state, STOP per-step updates at batch 1, "
                                     "int64 gradient accumulators for batches (power of two); numba, one thread "
                                     "(its kernels are not parallel).",
                  "edgelearn-float": "FloatSTOP: the float64 numpy twin of the same mathematics."},
        "cells": cells, "ratios": ratios(cells, methods), "accuracy": accuracy, "targets": targets(cells),
        "device": device_memory(args.nets, args.T),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    md = markdown(report)
    out.with_suffix(".md").write_text(md)
    plot(report, out.with_suffix(".png"))
    print(md)
    print(f"wrote {out}.json, {out}.md, {out}.png in {report['wall_seconds']} s")


if __name__ == "__main__":
    main()
