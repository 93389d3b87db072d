"""Regenerate the golden vectors of the C runtime from the Python reference.

    .venv/bin/python tests/golden/make_golden.py

Writes tests/golden/stop.json: for a few tiny models (one per encoding, neuron mix and
update mode, int8 weights, and chains of conv2d and pooling layers), the model blob, the
samples and labels presented, and what the reference (FixedSTOP) produced: the scores of every presentation, then the final weights,
thresholds, leaks and both PRNG states. Also tests/golden/spide.json: tiny SPIDE models
(feed-forward and feedback, IF/LIF, both resets, every encoding) through FixedSPIDE, one
sample per presentation: scores, then the final weights, PRNG states and health
counters. Never edit the file by hand: a change to the
contract regenerates it (docs/numerics.md §11).
"""
import dataclasses
import json
from pathlib import Path

import numpy as np

from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.model import Learning, Neuron, Schedule, init_params, mlp
from edgelearn.modelblob import to_blob

OUT = Path(__file__).with_name("stop.json")

CASES = [  # name, sizes, encoding, hidden, readout, learning, batches[, schedule (docs/numerics.md §6c)]
    ("direct-lif-step", [12, 8, 4], "direct", Neuron("lif", leak=0.75), Neuron("lif", leak=0.875),
     Learning(T=6, seed=7, update="step"), [1, 1, 1, 1]),
    ("rate-if-li-sample", [10, 6, 3], "rate", Neuron("if"), Neuron("li", leak=0.5),
     Learning(T=5, seed=0, update="sample", lr_weight_shift=8), [1, 2, 4]),
    ("direct-li-sample-3layer", [11, 9, 6, 3], "direct", Neuron("lif", leak=0.8), Neuron("li", leak=0.6),
     Learning(T=5, seed=99, update="sample"), [1, 2, 1, 4]),
    ("direct-readout", [10, 7, 4], "direct", Neuron("if"), Neuron("lif"),
     Learning(T=6, seed=3, rule="readout"), [1, 1, 2]),
    ("events-readout-3layer", [9, 7, 5, 3], "events", Neuron("lif", threshold=0.5), Neuron("lif"),
     Learning(T=4, seed=123456789, rule="readout", surrogate_shift=2), [1, 2, 1]),
    ("direct-lif-step-schedule", [12, 8, 4], "direct", Neuron("lif", leak=0.75), Neuron("lif", leak=0.875),
     Learning(T=6, seed=8, update="step", lr_weight_shift=3, lr_threshold_shift=5), [1] * 7, Schedule(2, 2)),
    ("rate-lif-sample-batches-schedule", [10, 6, 3], "rate", Neuron("lif"), Neuron("lif"),
     Learning(T=5, seed=1, update="sample", lr_weight_shift=4), [1, 2, 1, 4, 2], Schedule(3, 3, learned=1)),
    ("sequence-lif-step", [9, 7, 4], "sequence", Neuron("lif", leak=0.75), Neuron("lif"),
     Learning(T=6, seed=21, update="step", lr_weight_shift=4), [1, 1, 1, 1]),
    ("sequence-li-batches", [8, 6, 3], "sequence", Neuron("lif", leak=0.875), Neuron("li", leak=0.5),
     Learning(T=5, seed=22, update="sample"), [1, 2, 4]),
]


def case(name, sizes, encoding, hidden, readout, learning, batches, schedule=None):
    model = init_params(mlp(name, sizes, encoding=encoding, hidden=hidden, readout=readout, learning=learning),
                        weight_gain=2.5)
    model.schedule = schedule
    return replay_case(name, model, batches)


# int8 weights (docs/numerics.md §1), learning at lr 0 so that sat8 acts: the arguments of case,
# then each layer's weight_frac
INT8_CASES = [
    ("direct-int8-step", [12, 8, 4], "direct", Neuron("lif", leak=0.75), Neuron("lif", leak=0.875),
     Learning(T=6, seed=41, update="step", lr_weight_shift=0), [1, 1, 1, 1], (7, 6)),
    ("rate-int8-li-sample", [10, 6, 3], "rate", Neuron("lif"), Neuron("li", leak=0.5),
     Learning(T=5, seed=42, update="sample", lr_weight_shift=0), [1, 2, 4], (7, 6)),
]


def int8_case(name, sizes, encoding, hidden, readout, learning, batches, fracs):
    model = mlp(name, sizes, encoding=encoding, hidden=hidden, readout=readout, learning=learning)
    layers = tuple(dataclasses.replace(layer, weight_bits=8, weight_frac=f) for layer, f in zip(model.layers, fracs))
    return replay_case(name, init_params(dataclasses.replace(model, layers=layers), weight_gain=2.5), batches)


# Window layers (docs/numerics.md §5c): conv2d, avgpool and maxpool chains, every encoding a pool
# can read, both update modes; name, input [C, H, W], encoding, layers, learning, batches
CONV_CASES = [
    ("direct-conv-maxpool-dense-step", (1, 6, 6), "direct",
     [("conv2d", 3, (3, 3), (1, 1), (1, 1)), ("maxpool", None, (2, 2), (2, 2), (0, 0)), ("dense", 4)],
     Learning(T=5, seed=31, update="step", lr_weight_shift=5), [1, 1, 1, 1]),
    ("rate-conv-avgpool-conv-li-sample", (2, 5, 5), "rate",
     [("conv2d", 2, (2, 2), (1, 1), (0, 0)), ("avgpool", None, (2, 2), (1, 1), (0, 0)),
      ("conv2d", 3, (2, 2), (2, 2), (1, 1)), ("dense", 3, "li")],
     Learning(T=4, seed=32, update="sample"), [1, 2, 1]),
    ("events-conv-stride-avgpool-conv-dense-step", (1, 7, 7), "events",
     [("conv2d", 2, (3, 3), (2, 2), (1, 1)), ("avgpool", None, (2, 2), (2, 2), (0, 0)),
      ("conv2d", 3, (2, 2), (1, 1), (0, 0)), ("dense", 3)],
     Learning(T=5, seed=33, update="step", lr_weight_shift=4), [1, 1, 1]),
]


def conv_case(name, shape, encoding, layers, learning, batches):
    from edgelearn.model import INPUT, Edge, InputSpec, Layer, Model, Window
    from edgelearn.ops.layers.window import output_size
    built, source, (c, h, w) = [], INPUT, shape
    for i, (kind, channels, *rest) in enumerate(layers):
        lname = f"l{i}"
        if kind == "dense":
            neuron = Neuron(rest[0] if rest else "lif", leak=0.8)
            built.append(Layer(lname, "dense", (Edge(source),), (channels,), neuron))
        else:
            kernel, stride, pad = rest
            c = channels or c
            h, w = output_size(h, kernel[0], stride[0], pad[0]), output_size(w, kernel[1], stride[1], pad[1])
            built.append(Layer(lname, kind, (Edge(source),), (c, h, w),
                               Neuron("lif", leak=0.75) if kind == "conv2d" else None, window=Window(kernel, stride, pad)))
        source = lname
    model = init_params(Model(name, InputSpec(shape, encoding), tuple(built), learning), weight_gain=2.5)
    return replay_case(name, model, batches)


def replay_case(name, model, batches):
    rng = np.random.default_rng(sum(map(ord, name)))
    encoding, n, T = model.input.encoding, model.input.size, model.learning.T
    net = FixedSTOP(model)
    blob = to_blob(model)
    steps = []
    for b in batches:
        recorded = encoding in ("events", "sequence")
        shape = (b, T - 1, n) if recorded else (b, n)   # a recording shorter than T: the last step is silent
        hi = 2 if encoding == "events" else 256
        samples = rng.integers(0, hi, size=shape, dtype=np.uint8)
        labels = rng.integers(0, model.readout.size, size=b)
        scores = net.run(samples, labels, True)
        steps.append({"samples": samples.tolist(), "labels": labels.tolist(), "scores": scores.tolist()})
    return {"name": name, "blob": blob.hex(), "batches": steps,
            "weights": net.weights.tolist(), "thresholds": net.thresholds.tolist(),
            "leaks": net.leaks.tolist(), "rng_input": int(net.rng_input[0]), "rng_learn": int(net.rng_learn[0]),
            "learned": learned(net)}


def learned(net) -> int | None:
    """The schedule's count after the run (None: the model has no schedule)."""
    schedule = net.to_model().schedule
    return None if schedule is None else schedule.learned


# SPIDE (docs/spide.md): tests/golden/spide.json, from FixedSPIDE, one sample per presentation
SPIDE_OUT = OUT.with_name("spide.json")


def spide_model(name, n_in, hidden, classes, *, kind, reset, encoding, T, Tb, lr, seed, feedback, th=1.0,
                schedule=None):
    from edgelearn.model import INPUT, Edge, InputSpec, Layer, LayerParams, Model
    from edgelearn import numerics as nx
    rng = np.random.default_rng(sum(map(ord, name)))
    neuron = Neuron(kind, threshold=th, leak=1.0 if kind == "if" else 0.875, reset=reset)
    layers, sizes = [], []
    for i, h in enumerate(hidden):
        inputs = (Edge(INPUT),) if i == 0 else (Edge(f"h{i - 1}"),)
        if i == 0 and feedback:
            inputs += (Edge(f"h{len(hidden) - 1}", 1),)
        layers.append(Layer(f"h{i}", "dense", inputs, (h,), neuron))
    layers.append(Layer("out", "dense", (Edge(f"h{len(hidden) - 1}"),), (classes,), Neuron("li")))
    model = Model(name, InputSpec((n_in,), encoding), tuple(layers),
                  Learning(rule="spide", T=T, Tb=Tb, lr_weight_shift=lr, update="sample", seed=seed))
    sizes = {INPUT: n_in, **{layer.name: layer.size for layer in layers}}
    params = {}
    for layer in layers:
        blocks = []
        for e in layer.inputs:
            scale = 0.04 if e.delay else (0.5 if layer.name != "out" else 0.8)
            blocks.append(rng.normal(0.15 if e.source == INPUT else 0.0, scale, (layer.size, sizes[e.source])))
        w = np.concatenate(blocks, axis=1)
        params[layer.name] = LayerParams(nx.to_fixed(w, 12, nx.INT16_MIN, nx.INT16_MAX, np.int16),
                                         nx.to_fixed(np.full(layer.size, th), nx.STATE_FRAC),
                                         int(nx.to_fixed(layer.neuron.leak, 16)))
    model.params = params
    model.schedule = schedule
    return model.validate()


SPIDE_CASES = [  # name, n_in, hidden, classes, options, samples
    ("direct-if-modified", 10, [8], 4, dict(kind="if", reset="modified", encoding="direct", T=8, Tb=16, lr=3,
                                            seed=5, feedback=False), 6),
    ("rate-lif-feedback", 9, [7, 5], 3, dict(kind="lif", reset="modified", encoding="rate", T=16, Tb=8, lr=2,
                                             seed=0, feedback=True), 6),
    ("events-if-subtract-feedback", 8, [6], 3, dict(kind="if", reset="subtract", encoding="events", T=4, Tb=4,
                                                    lr=1, seed=99, feedback=True, th=0.5), 6),
    ("direct-if-modified-schedule", 10, [8], 4, dict(kind="if", reset="modified", encoding="direct", T=8, Tb=16, lr=2,
                                                     seed=6, feedback=False, schedule=Schedule(2, 2)), 7),
]


def spide_case(name, n_in, hidden, classes, options, count):
    from edgelearn.rules.spide.fixed import FixedSPIDE
    model = spide_model(name, n_in, hidden, classes, **options)
    rng = np.random.default_rng(sum(map(ord, name)) + 1)
    net = FixedSPIDE(model)
    blob = to_blob(model)
    T, steps = model.learning.T, []
    for k in range(count):
        events = model.input.encoding == "events"
        sample = rng.integers(0, 2 if events else 256, size=(1, T - 1, n_in) if events else (1, n_in), dtype=np.uint8)
        label = rng.integers(0, classes, size=1)
        learn = k != count - 1                     # the last presentation infers
        scores = net.run(sample, label, learn)
        steps.append({"samples": sample.tolist(), "labels": label.tolist(), "learn": learn, "scores": scores.tolist()})
    return {"name": name, "blob": blob.hex(), "steps": steps, "weights": net.weights.tolist(),
            "rng_input": int(net.rng_input[0]), "rng_learn": int(net.rng_learn[0]),
            "health": net.buffers()["health"].tolist(), "learned": learned(net)}


if __name__ == "__main__":
    OUT.write_text(json.dumps([case(*c) for c in CASES] + [int8_case(*c) for c in INT8_CASES]
                              + [conv_case(*c) for c in CONV_CASES], separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    SPIDE_OUT.write_text(json.dumps([spide_case(*c) for c in SPIDE_CASES], separators=(",", ":")) + "\n")
    print(f"wrote {SPIDE_OUT} ({SPIDE_OUT.stat().st_size} bytes)")
