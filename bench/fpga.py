"""The FPGA core on the digits model (docs/fpga.md): resources, timing and throughput.

    .venv/bin/python bench/fpga.py [--samples 200] [--model models/digits-stop.json]

1. The flow (edgelearn.hdl.synth, cached): yosys, nextpnr-ice40 and icepack for the iCE40 UP5K
   (the core behind its UART), yosys synth_ecp5 for the ECP5-25F (the core alone).
2. Cycles: the generated core in verilator (the UP5K's memory placement) learns --samples
   training samples, checked bit for bit against FixedSTOP after every sample (scores) and at
   the end (weights, thresholds, leaks, the learning stream), then infers as many test samples.
   A sample's cycles run from its first pixel offered to its last score taken.
3. Samples per second = clock / mean cycles, at Fmax and at the board's clock; and the learning
   neurons the core holds per LUT beside published inference-only FPGA SNN designs.
Writes bench/results/fpga.{json,md}."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgelearn import datasets  # noqa: E402
from edgelearn.executors.hdl import HdlSTOP  # noqa: E402
from edgelearn.hdl import synth  # noqa: E402
from edgelearn.modelfile import load_model  # noqa: E402
from edgelearn.rules.stop.fixed import FixedSTOP  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# Published inference-only SNN designs on FPGAs (their own figures; none learns on chip)
PEERS = [
    {"design": "Flexi-NeurA (arXiv 2602.18140), 256-128-10 LIF, MNIST", "neurons": 394, "luts": 1623,
     "unit": "logic cells", "memory": "7 BRAM", "learns": False},
    {"design": "Fan & Levy (arXiv 2507.07284), tiled any-to-any SNN, Artix-7", "neurons": None, "luts": 6358,
     "unit": "LUTs", "memory": "40.5 BRAM", "learns": False},
]


def cycles_of(model, samples, labels, test_x) -> dict:
    hdl = HdlSTOP(model, simulator="verilator", target="ice40up5k")
    ref = FixedSTOP(model)
    start = time.perf_counter()
    for n in range(len(samples)):
        want = ref.run(samples[n:n + 1], labels[n:n + 1], True)
        got = hdl.run(samples[n:n + 1], labels[n:n + 1], True)
        if not np.array_equal(got, want):
            raise SystemExit(f"sample {n}: the core's scores {got.tolist()} differ from the reference's {want.tolist()}")
    learning = list(hdl.cycles)
    held, want = hdl.buffers(), ref.buffers()
    for name in ("weights", "thresholds", "leaks", "rng_learn"):
        if not np.array_equal(held[name], want[name]):
            raise SystemExit(f"after {len(samples)} samples the core's {name} differ from the reference's")
    if not np.array_equal(hdl.run(test_x, None, False), ref.run(test_x, None, False)):
        raise SystemExit("inference scores differ from the reference's")
    inference = hdl.cycles[len(samples):]
    seconds = time.perf_counter() - start
    hdl.close()
    return {"learning": learning, "inference": inference, "simulated_seconds": round(seconds, 1)}


def stats(cycles: list[int]) -> dict:
    return {"mean": round(float(np.mean(cycles))), "min": int(min(cycles)), "max": int(max(cycles)),
            "median": round(float(np.median(cycles)))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "models" / "digits-stop.json"))
    p.add_argument("--samples", type=int, default=200)
    args = p.parse_args(argv)
    model = load_model(args.model)
    data = datasets.load("digits")
    out: dict = {"model": model.name, "samples": args.samples, "load": os.getloadavg()}
    for target in ("ice40up5k", "ecp5-25f"):
        start = time.perf_counter()
        report, _ = synth.synthesize(model, target)
        out[target] = {"report": report, "fits": synth.fits(report),
                       "flow_seconds": round(time.perf_counter() - start, 1),
                       "text": synth.format_report(model, synth.memory_plan(model, target), report)}
    run = cycles_of(model, data.x_train[:args.samples], data.y_train[:args.samples], data.x_test[:args.samples])
    learn, infer = stats(run["learning"]), stats(run["inference"])
    pnr = out["ice40up5k"]["report"]["place_and_route"]
    clock = synth.fpga("ice40up5k")["clock_hz"]
    neurons = sum(layer.size for layer in model.layers)
    luts = out["ice40up5k"]["report"]["synthesis"]["luts"]
    out.update(cycles={"learning": learn, "inference": infer}, simulated_seconds=run["simulated_seconds"],
               throughput={"fmax_mhz": pnr["fmax_mhz"] if pnr and pnr["placed"] else None, "clock_mhz": clock / 1e6,
                           "learning_per_s_at_clock": round(clock / learn["mean"], 1),
                           "inference_per_s_at_clock": round(clock / infer["mean"], 1)},
               neurons=neurons, neurons_per_lut=round(neurons / luts, 4), peers=PEERS)
    if pnr and pnr["placed"]:
        out["throughput"]["learning_per_s_at_fmax"] = round(pnr["fmax_mhz"] * 1e6 / learn["mean"], 1)
        out["throughput"]["inference_per_s_at_fmax"] = round(pnr["fmax_mhz"] * 1e6 / infer["mean"], 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fpga.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "fpga.md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(r: dict) -> str:
    t, c = r["throughput"], r["cycles"]
    lines = [f"# The FPGA core: {r['model']} (`make bench-fpga`)", "",
             f"Load average during the run: {', '.join(f'{v:.1f}' for v in r['load'])} (a shared 2-core machine).", ""]
    for target in ("ice40up5k", "ecp5-25f"):
        lines += [f"## {target}", "", "```", r[target]["text"], "```",
                  f"flow: {r[target]['flow_seconds']} s (0 when cached)", ""]
    lines += ["## Cycles and throughput", "",
              f"{r['samples']} digits training samples learned in verilator, bit-exact with FixedSTOP after every "
              f"sample; then {r['samples']} test samples inferred ({r['simulated_seconds']} s of simulation).", "",
              "| | mean | median | min | max | per s at the board clock "
              f"({t['clock_mhz']:g} MHz) | per s at Fmax ({t['fmax_mhz']} MHz) |",
              "|---|---:|---:|---:|---:|---:|---:|",
              f"| cycles per training sample | {c['learning']['mean']:,} | {c['learning']['median']:,} | "
              f"{c['learning']['min']:,} | {c['learning']['max']:,} | {t['learning_per_s_at_clock']} | "
              f"{t.get('learning_per_s_at_fmax')} |",
              f"| cycles per inference | {c['inference']['mean']:,} | {c['inference']['median']:,} | "
              f"{c['inference']['min']:,} | {c['inference']['max']:,} | {t['inference_per_s_at_clock']} | "
              f"{t.get('inference_per_s_at_fmax')} |", "",
              "## Neurons per LUT beside inference-only designs", "",
              "| design | neurons | logic | neurons per LUT | memory | learns on chip |", "|---|---:|---:|---:|---|---|",
              f"| edgelearn STOP core ({r['model']}, iCE40 UP5K, with its UART bridge) | {r['neurons']} | "
              f"{r['ice40up5k']['report']['synthesis']['luts']:,} LUT4 | {r['neurons_per_lut']} | "
              f"{r['ice40up5k']['report']['synthesis']['block_ram']} EBR + {r['ice40up5k']['report']['synthesis']['spram']} "
              "SPRAM | yes (STOP: traces, errors, weights, thresholds, leaks) |"]
    for p in r["peers"]:
        per = f"{p['neurons'] / p['luts']:.3f}" if p["neurons"] else "-"
        lines.append(f"| {p['design']} | {p['neurons'] or '-'} | {p['luts']:,} {p['unit']} | {per} | {p['memory']} | no |")
    lines += ["", "A time-multiplexed core's logic does not grow with its neurons (they live in block RAM): "
              "neurons per LUT compares designs of one size only."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
