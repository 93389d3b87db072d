"""int8 weight storage, a per-layer option of the contract (docs/numerics.md §1, §5): the model
file's ``weight_bits``, conversions that clamp to int8, updates that saturate with sat8, one
byte a weight in the blob and the memory plan, and the executors that do not store int8
weights refusing such a model rather than computing something else."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgelearn import numerics as nx
from edgelearn import profile as pf
from edgelearn import rules
from edgelearn.errors import ModelError
from edgelearn.executors import make_learner
from edgelearn.model import init_params, mlp
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.modelfile import load_model, model_from_spec_dict, spec_to_dict
from edgelearn.ops.layers.dense import update_weights
from edgelearn.rules.stop.kernels import saturate_learned_rows

ROOT = Path(__file__).resolve().parents[1]


def narrow(model, fracs=None):
    """The model with every layer's weights int8 (Q(7-wf).wf, wf from ``fracs`` or 6), re-initialised."""
    layers = tuple(dataclasses.replace(layer, weight_bits=8, weight_frac=(fracs or {}).get(layer.name, 6))
                   for layer in model.layers)
    return init_params(dataclasses.replace(model, layers=layers))


def int8_mnist():
    """models/mnist-stop-int8.json: models/mnist-stop.json with int8 weights, Q0.7 in the hidden
    layer, Q1.6 in the readout (docs/numerics.md §10)."""
    return load_model(ROOT / "models" / "mnist-stop-int8.json")


def test_the_int8_mnist_file_is_mnist_stop_with_int8_weights():
    wide = load_model(ROOT / "models" / "mnist-stop.json")
    narrowed = narrow(dataclasses.replace(wide, name="mnist-stop-int8"), {"fc1": 7, "readout": 6})
    assert to_blob(int8_mnist()) == to_blob(narrowed)


def test_the_model_file_writes_weight_bits_only_when_narrow():
    wide = load_model(ROOT / "models" / "mnist-stop.json")
    assert "weight_bits" not in spec_to_dict(wide)["layers"][0] and spec_to_dict(wide)["version"] == 1
    spec = spec_to_dict(int8_mnist())
    assert spec["version"] == 5 and [l["weight_bits"] for l in spec["layers"]] == [8, 8]
    assert [l.weight_bits for l in model_from_spec_dict(spec).layers] == [8, 8]
    spec["version"] = 4
    with pytest.raises(ModelError, match=r"layers\[0\]: a 'weight_bits' needs spec version 5"):
        model_from_spec_dict(spec)


@pytest.mark.parametrize("change, needle", [
    (dict(weight_bits=4), "weight_bits 4; weights are stored in 16 or 8 bits"),
    (dict(weight_bits=8, weight_frac=8), r"weight_frac 8 outside 0\.\.7 \(int8 weights\)"),
])
def test_the_ir_refuses_widths_it_has_no_contract_for(change, needle):
    model = mlp("m", [16, 8, 4])
    bad = dataclasses.replace(model, layers=(dataclasses.replace(model.layers[0], **change),) + model.layers[1:])
    with pytest.raises(ModelError, match=needle):
        init_params(bad)


def test_int8_weights_outside_the_range_are_refused():
    model = narrow(mlp("m", [16, 8, 4]))
    model.params["fc1"].weight[0, 0] = 128
    with pytest.raises(ModelError, match="layer 'fc1': int8 weights must lie in -128..127"):
        model.validate()


def test_initialisation_clamps_to_int8():
    model = narrow(mlp("m", [4, 8, 4]), {"fc1": 7})
    lo, hi = min(int(model.params[l.name].weight.min()) for l in model.layers), \
        max(int(model.params[l.name].weight.max()) for l in model.layers)
    assert -128 <= lo and hi <= 127
    big = narrow(mlp("m", [4, 8, 4]))
    layers = tuple(dataclasses.replace(l, weight_frac=7) for l in big.layers)   # fan-in 4: bound 1.3 > 127/128
    big = init_params(dataclasses.replace(big, layers=layers), weight_gain=3.0)
    w = big.params["fc1"].weight
    assert w.max() == 127 and w.min() == -128


def test_the_int8_update_is_sat8_of_the_int16_update():
    """W = sat8(W - SR(d x^T, shift)), one draw per non-zero product, as the contract writes it."""
    rng = np.random.default_rng(3)
    W = rng.integers(-128, 128, size=(6, 9)).astype(np.int16)
    W[0, :3] = (127, -128, 120)
    d = rng.integers(-40000, 40000, size=6).astype(np.int32)
    d[2] = 0
    x = rng.integers(0, 3 * nx.ONE, size=9).astype(np.int32)
    x[4] = 0
    shift = 20
    expect, state = W.astype(np.int64), int(nx.seed_state(7))
    for j in range(6):
        for i in range(9):
            if d[j] != 0 and x[i] != 0:
                state = int(nx.xorshift32(state))
                p = int(nx.shift_with_draw(int(d[j]) * int(x[i]), shift, state))
                expect[j, i] = min(max(expect[j, i] - p, -128), 127)
    stream = nx.new_rng(7)
    update_weights(W, d, x, shift, stream, np.zeros(9, np.int32))
    saturate_learned_rows(W, d, nx.INT8_MIN, nx.INT8_MAX)
    assert np.array_equal(W, expect) and int(stream[0]) == state
    assert (W == 127).any() and (W == -128).any()          # the bounds were reached: sat8 acted


@pytest.mark.parametrize("update", ["step", "sample"])
def test_fixed_stop_learns_an_int8_model_inside_int8(update):
    model = narrow(mlp("m", [32, 16, 4]), {"fc1": 7, "readout": 7})
    model = dataclasses.replace(model, learning=dataclasses.replace(model.learning, lr_weight_shift=0, update=update))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, size=(64, 32), dtype=np.uint8), rng.integers(0, 4, 64)
    net = make_learner(model, "fixed")
    before = [model.params[l.name].weight.copy() for l in model.layers]
    for i in range(64):
        net.run(x[i:i + 1], y[i:i + 1], True)
    learned = net.to_model()
    after = [learned.params[l.name].weight for l in learned.layers]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert all(-128 <= a.min() and a.max() <= 127 for a in after)
    assert any((a == 127).any() or (a == -128).any() for a in after)   # lr 1: saturation is exercised
    learned.validate()


def test_the_blob_stores_one_byte_a_weight_and_reads_it_back():
    model = int8_mnist()
    wide = dataclasses.replace(load_model(ROOT / "models" / "mnist-stop.json"), name=model.name)
    synapses = 784 * 256 + 256 * 10
    assert len(to_blob(wide)) - len(to_blob(model)) == synapses
    back = from_blob(to_blob(model))
    assert [l.weight_bits for l in back.layers] == [8, 8]
    assert all(np.array_equal(back.params[l.name].weight, model.params[l.name].weight) for l in model.layers)


def test_the_hdl_executor_without_int8_refuses_the_model():
    with pytest.raises(ModelError, match="int8 weights .*the 'hdl' executor of rule 'stop' stores only int16 weights"):
        make_learner(narrow(mlp("m", [16, 8, 4])), "hdl")


def test_spide_refuses_int8_weights():
    model = load_model(ROOT / "models" / "digits-spide.json")
    layers = (dataclasses.replace(model.layers[0], weight_bits=8, weight_frac=6),) + model.layers[1:]
    narrowed = init_params(dataclasses.replace(model, layers=layers))
    with pytest.raises(ModelError, match="SPIDE stores int16 weights, this layer asks for int8"):
        rules.check(narrowed)                        # what profile and compile ask
    with pytest.raises(ModelError, match="the 'fixed' executor of rule 'spide' stores only int16 weights"):
        make_learner(narrowed, "fixed")


def test_int8_784_256_10_stop_fits_the_f746_where_int16_does_not():
    wide = pf.profile(load_model(ROOT / "models" / "mnist-stop.json"), "stm32f746", "stop", 8, measure_code=False)
    small = pf.profile(int8_mnist(), "stm32f746", "stop", 8, measure_code=False)
    assert not wide["fits"] and small["fits"]
    assert wide["ram"]["weights"] - small["ram"]["weights"] == 784 * 256 + 256 * 10


def test_below_the_int8_bounds_an_int8_layer_learns_as_its_int16_twin():
    """The width changes the saturation only: the same integer weights stored as int16 follow the
    same path, draw for draw, as long as no int8 weight reaches -128 or 127."""
    narrowed = narrow(mlp("m", [32, 16, 4]), {"fc1": 7, "readout": 7})
    wide = dataclasses.replace(narrowed, layers=tuple(dataclasses.replace(l, weight_bits=16) for l in narrowed.layers),
                               params={name: dataclasses.replace(p, weight=p.weight.copy())
                                       for name, p in narrowed.params.items()})
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, size=(32, 32), dtype=np.uint8), rng.integers(0, 4, 32)
    nets = [make_learner(m, "fixed") for m in (narrowed, wide)]
    for i in range(32):
        scores = [net.run(x[i:i + 1], y[i:i + 1], True) for net in nets]
        assert np.array_equal(*scores)
    w8, w16 = (net.to_model().params for net in nets)
    assert all(np.array_equal(w8[n].weight, w16[n].weight) and np.abs(w8[n].weight).max() < 127 for n in w8)
    assert any(not np.array_equal(w8[n].weight, narrowed.params[n].weight) for n in w8)   # it learned
