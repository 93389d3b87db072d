"""Synaptic operations and energy per inference, counted from the fixed-point reference's own
spikes (docs/one-step.md, "Energy").

    .venv/bin/python bench/energy.py MODEL.elm [MODEL.elm ...] [--samples 500] [--data mnist]

For each trained model: its test accuracy on the samples (the fixed-point reference), and per
inference (one sample, T steps) the operations of every layer with weights, read off the spike
rasters of FixedSTOP.spike_raster:

- an input that is a spike (0/1) adds one weight into each output it reaches: an accumulate
  (AC); an input with more bits (a direct-coded pixel, an average pool's count) multiplies it:
  a multiply-accumulate (MAC). A dense layer 0 on a direct input sums W x once per sample
  (docs/numerics.md §5b), the others every step; silent inputs cost nothing (event-driven).
- conv2d: each non-zero input reaches the outputs whose window holds it, in every output
  channel; scan2d: its two fields' likewise, plus each of its own spikes into its right and
  lower neighbours (ACs, every channel); a pool: one AC per non-zero input.
- every neuron's leak is a multiply per step (mul_state): counted apart as neuron MACs.

Energy uses the 45 nm figures of M. Horowitz, "Computing's energy problem (and what we can do
about it)", ISSCC 2014 (Fig. 1.1.9): 32-bit integer add 0.1 pJ, multiply 3.1 pJ; 32-bit float
add 0.9 pJ, multiply 3.7 pJ (the AC 0.9 pJ / MAC 4.6 pJ convention of the SNN literature). The
device's arithmetic is integer (int16 weights, int32/int64 sums), so the integer column is the
one that applies to it; the float one makes the figures comparable with published SNN tables.
Writes bench/results/energy.{json,md}: the totals per model, then the same per layer."""
import argparse
import json
from pathlib import Path

import numpy as np

from edgelearn import datasets
from edgelearn.adapt import encoded_inputs
from edgelearn.modelfile import load_model
from edgelearn.ops import LAYERS
from edgelearn.rules.stop.fixed import FixedSTOP

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PJ = {"int32": {"add": 0.1, "mult": 3.1}, "float32": {"add": 0.9, "mult": 3.7}}   # Horowitz 2014, 45 nm


def reach(size, kernel, stride, pad, out):
    """How many outputs' windows hold each input index along one axis."""
    counts = np.zeros(size, dtype=np.int64)
    for o in range(out):
        lo = o * stride - pad
        counts[max(lo, 0):min(lo + kernel, size)] += 1
    return counts


def fan_out(model, layer, g) -> np.ndarray:
    """Weights each input adds into, per input (flat, the source's order)."""
    kind = layer.kind
    if kind == "dense":
        return np.full(model.fan_in(layer), layer.size, dtype=np.int64)
    if kind in ("avgpool", "maxpool"):
        return np.ones(g.in_c * g.in_h * g.in_w, dtype=np.int64)
    if kind == "conv2d":
        ry = reach(g.in_h, g.kernel_h, g.stride_h, g.pad_h, g.out_h)
        rx = reach(g.in_w, g.kernel_w, g.stride_w, g.pad_w, g.out_w)
        per_position = np.outer(ry, rx).ravel() * g.out_c
        return np.tile(per_position, g.in_c)
    if kind == "scan2d":       # the column field reaches kh rows, the row field kw columns (inside)
        ry = reach(g.in_h, g.kernel_h, 1, g.pad_h, g.out_h)
        rx = reach(g.in_w, g.kernel_w, 1, g.pad_w, g.out_w)
        per_position = (np.add.outer(ry, rx)).ravel() * g.out_c
        return np.tile(per_position, g.in_c)
    raise ValueError(f"no operation count for layer kind {kind!r}")


def count(model, samples) -> dict:
    """Mean operations per inference: {"mac", "ac", "neuron_mac", "layers"} over the samples, "layers"
    the same three per layer (a scan2d's recurrence is its own ACs)."""
    net = FixedSTOP(model.copy())
    shapes = model.shapes()
    offsets = np.cumsum([0] + [layer.size for layer in model.layers])
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    T = model.learning.T
    fans = [fan_out(model, layer, model.geometry(layer, shapes)) for layer in model.layers]
    per_layer = {layer.name: {"mac": 0.0, "ac": 0.0, "neuron_mac": 0.0} for layer in model.layers}
    binary_input = model.input.encoding in ("rate", "events")
    for sample in samples:
        raster = net.spike_raster(sample).astype(np.int64)      # [T, outputs of every layer]
        encoded = encoded_inputs(model, sample[None])            # [T, inputs] (rate: a stream of its own)
        for l, layer in enumerate(model.layers):
            totals = per_layer[layer.name]
            source = layer.inputs[0].source
            if source == "input":
                values, binary = encoded, binary_input
            else:
                s = index[source]
                values, src = raster[:, offsets[s]:offsets[s + 1]], model.layers[s]
                binary = src.kind == "maxpool" or (src.neuron is not None and src.neuron.kind != "li")
            ops = float(np.sum((values != 0) @ fans[l]))
            if source == "input" and model.input.encoding == "direct" and LAYERS[layer.kind].keeps_sums:
                ops /= T                                        # summed once a sample (numerics.md §5b)
            totals["ac" if binary else "mac"] += ops / len(samples)
            if layer.kind == "scan2d":                          # its own spikes into two neighbours
                g = model.geometry(layer, shapes)
                s3 = raster[:, offsets[l]:offsets[l + 1]].reshape(T, g.out_c, g.out_h, g.out_w)
                totals["ac"] += float(s3[:, :, :, :-1].sum() + s3[:, :, :-1, :].sum()) * g.out_c / len(samples)
            if LAYERS[layer.kind].has_neurons:
                totals["neuron_mac"] += T * layer.size / len(samples)
    return {**{k: sum(t[k] for t in per_layer.values()) for k in ("mac", "ac", "neuron_mac")}, "layers": per_layer}


def energy(ops: dict, kind: str) -> float:
    """pJ per inference: MACs (synaptic and neuron) at add + mult, ACs at add."""
    e = PJ[kind]
    return (ops["mac"] + ops["neuron_mac"]) * (e["add"] + e["mult"]) + ops["ac"] * e["add"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--data", default="mnist")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--out", default="energy", help="the report's name in bench/results (.json, .md)")
    args = p.parse_args()
    data = datasets.load(args.data)
    x, y = data.x_test[:args.samples], data.y_test[:args.samples]
    rows = []
    for path in args.models:
        model = load_model(path)
        net = FixedSTOP(model.copy())
        accuracy = float(np.mean(np.argmax(net.run(x, None, False), axis=1) == y))
        ops = count(model, x)
        rows.append({"model": model.name, "file": str(path), "T": model.learning.T, "accuracy": accuracy,
                     **{k: round(ops[k]) for k in ("mac", "ac", "neuron_mac")},
                     "energy_nJ": {k: round(energy(ops, k) / 1000, 2) for k in PJ},
                     "layers": {name: {k: round(v) for k, v in t.items()} for name, t in ops["layers"].items()}})
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"samples": len(x), "data": args.data, "pJ_per_op": PJ,
              "source": "M. Horowitz, Computing's energy problem (and what we can do about it), ISSCC 2014, 45 nm",
              "models": rows}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [(f"Operations and energy per inference, mean over {len(x)} {args.data} test samples "
              "(bench/energy.py; the fixed-point reference's own spikes)"), "",
             "| model | T | accuracy | synaptic MACs | synaptic ACs | neuron MACs | energy, int32 | energy, float32 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} ({Path(r['file']).name}) | {r['T']} | {r['accuracy']:.2%} | {r['mac']:,} | {r['ac']:,} | {r['neuron_mac']:,} | "
              f"{r['energy_nJ']['int32']} nJ | {r['energy_nJ']['float32']} nJ |" for r in rows]
    for r in rows:
        lines += ["", f"{r['model']} ({Path(r['file']).name}), per layer:", "", "| layer | synaptic MACs | synaptic ACs | neuron MACs |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {name} | {t['mac']:,} | {t['ac']:,} | {t['neuron_mac']:,} |" for name, t in r["layers"].items()]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
