"""The one-time-step model of the zoo (models/onestep-mnist-stop.json, docs/one-step.md) and the
operation count of bench/energy.py over a scan2d layer, checked against a count by hand."""
import sys
from pathlib import Path

import numpy as np

from edgelearn.model import (
    Edge,
    InputSpec,
    Layer,
    Learning,
    Model,
    Neuron,
    Window,
    init_params,
)
from edgelearn.modelfile import load_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import energy


def test_the_onestep_model_is_one_step_and_scans_first():
    model = load_model(ROOT / "models" / "onestep-mnist-stop.json")
    model.validate_structure()
    assert model.learning.T == 1 and model.input.shape == (1, 28, 28) and model.input.encoding == "direct"
    assert model.layers[0].kind == "scan2d" and model.readout.neuron.kind == "li"


def test_energy_counts_the_fields_and_the_scan_recurrence():
    """One channel, only the recurrent weights and the column field's centre tap: the one pixel
    at (0, 0) makes its neuron fire and the scan carries the spike to all 30 positions
    (tests/test_onestep.py::test_the_scan_reads_only_neighbours_already_scanned)."""
    layers = (Layer("sc", "scan2d", (Edge("input"),), (1, 5, 6), Neuron("lif", leak=0.75),
                    window=Window((3, 5), padding=(1, 2))),
              Layer("out", "dense", (Edge("sc"),), (3,), Neuron("lif", leak=0.8)))
    model = init_params(Model("scan", InputSpec((2, 5, 6), "direct"), layers, Learning(T=1, seed=2)))
    W = model.params["sc"].weight
    W[:] = 0
    W[0, -2] = W[0, -1] = 1 << 13
    W[0, 1] = 1 << 13
    x = np.zeros((2, 5, 6), np.uint8)
    x[0, 0, 0] = 255
    ops = energy.count(model, x.reshape(1, -1))
    sc, out = ops["layers"]["sc"], ops["layers"]["out"]
    # the pixel reaches 2 rows of its column field (rows 0, 1) and 3 columns of its row field
    # (columns 0..2): 5 MACs; 30 spikes, 25 with a right neighbour and 24 with a lower one: 49 ACs
    assert (sc["mac"], sc["ac"], sc["neuron_mac"]) == (5, 49, 30)
    assert (out["mac"], out["ac"], out["neuron_mac"]) == (0, 90, 3)
    assert (ops["mac"], ops["ac"], ops["neuron_mac"]) == (5, 139, 33)
    assert energy.energy(ops, "int32") == (5 + 33) * (0.1 + 3.1) + 139 * 0.1
