"""Regenerate the golden vectors of the C runtime from the Python reference.

    .venv/bin/python tests/golden/make_golden.py

Writes tests/golden/stop.json: for a few tiny models (one per encoding, neuron mix and
update mode), the model blob, the samples and labels presented, and what the reference
(FixedSTOP) produced: the scores of every presentation, then the final weights,
thresholds, leaks and both PRNG states. Never edit the file by hand: a change to the
contract regenerates it (docs/numerics.md §11).
"""
import json
from pathlib import Path

import numpy as np

from edgelearn.learning.stop_fixed import FixedSTOP
from edgelearn.model import Learning, Neuron, init_params, mlp
from edgelearn.modelblob import to_blob

OUT = Path(__file__).with_name("stop.json")

CASES = [  # name, sizes, encoding, hidden, readout, learning, batches
    ("direct-lif-step", [12, 8, 4], "direct", Neuron("lif", leak=0.75), Neuron("lif", leak=0.875),
     Learning(T=6, seed=7, update="step"), [1, 1, 1, 1]),
    ("rate-if-li-sample", [10, 6, 3], "rate", Neuron("if"), Neuron("li", leak=0.5),
     Learning(T=5, seed=0, update="sample", lr_weight_shift=8), [1, 2, 4]),
    ("events-readout-3layer", [9, 7, 5, 3], "events", Neuron("lif", threshold=0.5), Neuron("lif"),
     Learning(T=4, seed=123456789, rule="readout", surrogate_shift=2), [1, 2, 1]),
]


def case(name, sizes, encoding, hidden, readout, learning, batches):
    model = init_params(mlp(name, sizes, encoding=encoding, hidden=hidden, readout=readout, learning=learning),
                        weight_gain=2.5)
    rng = np.random.default_rng(sum(map(ord, name)))
    n, T = sizes[0], learning.T
    net = FixedSTOP(model)
    blob = to_blob(model)
    steps = []
    for b in batches:
        shape = (b, T - 1, n) if encoding == "events" else (b, n)   # events: a recording shorter than T
        hi = 2 if encoding == "events" else 256
        samples = rng.integers(0, hi, size=shape, dtype=np.uint8)
        labels = rng.integers(0, sizes[-1], size=b)
        scores = net.run(samples, labels, True)
        steps.append({"samples": samples.tolist(), "labels": labels.tolist(), "scores": scores.tolist()})
    return {"name": name, "blob": blob.hex(), "batches": steps,
            "weights": net.weights.tolist(), "thresholds": net.thresholds.tolist(),
            "leaks": net.leaks.tolist(), "rng_input": int(net.rng_input[0]), "rng_learn": int(net.rng_learn[0])}


if __name__ == "__main__":
    OUT.write_text(json.dumps([case(*c) for c in CASES], separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
