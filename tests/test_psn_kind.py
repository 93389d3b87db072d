"""The psn layer kind and the threshold neuron kind in the registry (docs/psn.md §1): a PSN network is
a model of registered kinds. The STOP reference runs it as the standalone PSN driver did, bit for bit
(that driver's golden stream, tests/golden/psn/run_sample.json); the model's spec (version 6) and
blob (version 5, FILTER sections) carry it and refuse what is wrong with it, naming the field."""
import dataclasses
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from edgelearn import plan
from edgelearn.errors import ModelError
from edgelearn.model import Edge, Filter, InputSpec, Layer, Learning, Model, Neuron, init_params
from edgelearn.modelblob import (FILTER_FIXED, SECTION_FILTER, blob_crc, check_blob, from_blob, to_blob)
from edgelearn.modelfile import model_from_spec_dict, spec_to_dict
from edgelearn.ops import LAYERS, NEURONS
from edgelearn.ops.layers import psn
from edgelearn.ops.registry import FILTER_OPS
from edgelearn.psnnet import Layer as NetLayer, PSNNet, from_model, make_net, to_model
from edgelearn.rules.stop.fixed import FixedSTOP

GOLDEN = Path(__file__).parent / "golden" / "psn" / "run_sample.json"


def test_the_kinds_are_registered_with_their_codes_and_ops():
    kind = LAYERS["psn"]
    assert kind.code == 5 and kind.history and kind.has_neurons and set(kind.fixed) == set(FILTER_OPS)
    assert "float" not in kind.exactness                 # its float twin is psnnet.FloatPSN, not FloatSTOP's
    neuron = NEURONS["threshold"]
    assert neuron.code == 3 and neuron.spiking and neuron.memoryless and neuron.leak_fixed_at_one


@pytest.mark.parametrize("case", json.loads(GOLDEN.read_text())["cases"], ids=lambda c: c["name"])
def test_the_stop_reference_replays_the_standalone_drivers_golden_stream(case):
    """The streams the standalone PSN driver recorded before the kind joined the registry (every
    score of every sample, the learned weights, both PRNG states), now from FixedSTOP on to_model."""
    a, want = case["inputs"], case["outputs"]
    net = PSNNet([NetLayer(ly["n_in"], ly["n_out"], np.array(ly["taps"], np.int8), ly["dilation"],
                           np.array(ly["weights"], np.int16), np.array(ly["thresholds"], np.int32), ly["w_frac"])
                  for ly in a["layers"]], encoding=a["encoding"], T=a["T"], lr_weight_shift=a["lr_weight_shift"],
                 surrogate_shift=a["surrogate_shift"], seed=a["seed"])
    fx = FixedSTOP(to_model(net))
    scores = [fx.run(np.array(x, np.uint8)[None], np.array([y]), bool(on))[0].tolist()
              for x, y, on in zip(a["samples"], a["labels"], a["learn"])]
    assert scores == want["scores"]
    assert fx.weights.tolist() == want["weights"]
    assert [int(fx.rng_input[0]), int(fx.rng_learn[0])] == [want["rng_input"], want["rng_learn"]]


def model():
    return to_model(make_net([5, 7, 6, 3], taps=3, dilations=[1, 3], seed=4, T=12, encoding="sequence"), "net")


def test_spec_and_blob_round_trip_a_psn_model():
    m = model()
    spec = spec_to_dict(m)
    assert spec["version"] == 6 and spec["layers"][0]["filter"] == {"taps": 3, "dilation": 1, "init": 0.5}
    again = model_from_spec_dict(json.loads(json.dumps(spec)))
    assert again.layers == m.layers
    blob = to_blob(m)
    assert struct.unpack_from("<H", blob, 4)[0] == 5                  # FILTER sections: version 5
    back = check_blob(blob)
    assert back.layers == m.layers and to_blob(back) == blob
    for name, p in m.params.items():
        assert np.array_equal(back.params[name].taps, p.taps)
    net = from_model(back)
    assert [ly.dilation for ly in net.layers] == [1, 3, 1] and net.layers[0].K == 3


def test_the_plan_keeps_the_rings_and_no_threshold_traces():
    m = model()
    table, _, dims = plan.tables(m)
    F = plan.LayerField
    L = [ly.ring for ly in m.layers]
    assert L == [3, 7, 1] and list(table[:, F.ring_len]) == L
    assert dims.ring_currents == 7 * 3 + 6 * 7 + 3 * 1
    assert dims.learn_inputs == 5 * 3 + 7 * 7 + 6 * 1              # the input rings are the traces
    assert dims.learn_neurons == 0 and dims.max_lag0 == 6           # no threshold or leak traces
    assert list(table[:, F.taps_at]) == [0, 21, 21 + 18]


def psn_layer(**change):
    base = dict(name="p", kind="psn", inputs=(Edge("input"),), shape=(4,),
                neuron=Neuron("threshold", learn_threshold=False, learn_leak=False), filter=Filter(2, 3))
    return Layer(**{**base, **change})


@pytest.mark.parametrize("change, needle", [
    (dict(filter=None), "needs a 'filter'"),
    (dict(filter=Filter(0)), "taps 0 outside 1..16"),
    (dict(filter=Filter(17)), "taps 17"),
    (dict(filter=Filter(2, 0)), "dilation 0"),
    (dict(filter=Filter(2, 1025)), "dilation 1025"),
    (dict(filter=Filter(2, 1, 0.3)), "init 0.3"),
    (dict(neuron=Neuron("threshold")), "learn_threshold and learn_leak false"),
    (dict(neuron=Neuron("lif", learn_threshold=False)), "learn_threshold and learn_leak false"),
])
def test_a_bad_psn_layer_is_refused_by_name(change, needle):
    readout = Layer("r", "dense", (Edge("p"),), (2,), Neuron("li"))
    with pytest.raises(ModelError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        init_params(Model("m", InputSpec((3,), "sequence"), (psn_layer(**change), readout), Learning(T=4)))


def test_a_filter_on_another_kind_and_bad_tap_codes_are_refused():
    with pytest.raises(ModelError, match="a 'dense' layer has no 'filter'"):
        init_params(Model("m", InputSpec((3,)), (Layer("d", "dense", (Edge("input"),), (2,), Neuron("li"),
                                                      filter=Filter(2)),), Learning(T=4)))
    m = model()
    m.params["psn1"].taps[0, 0] = 16
    with pytest.raises(ModelError, match=r"tap codes within \+-15"):
        m.validate()
    m.params["psn1"].taps = np.zeros((7, 2), np.int8)
    with pytest.raises(ModelError, match=r"shape \(7, 3\)"):
        m.validate()


def filter_section(blob: bytes, layer: int = 0) -> tuple[int, int]:
    count, table = struct.unpack_from("<II", blob, 12)
    for k in range(count):
        kind, index, offset, size = struct.unpack_from("<HHII", blob, table + 12 * k)
        if kind == SECTION_FILTER and index == layer:
            return offset, size
    raise AssertionError("no FILTER section")


def resealed(data: bytearray) -> bytes:
    data[20:24] = bytes(4)
    data[20:24] = blob_crc(bytes(data)).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("poke, needle", [
    (lambda d, o: d.__setitem__(o + 1, 1), "reserved byte is 1"),
    (lambda d, o: d.__setitem__(o, 2), "FILTER section 0 is"),                # K 2: the size no longer fits
    (lambda d, o: d.__setitem__(o, 0), "FILTER section 0 is"),
    (lambda d, o: struct.pack_into("<H", d, o + 2, 0), "dilation 0"),
    (lambda d, o: d.__setitem__(o + FILTER_FIXED.size, 0x70), r"tap codes within \+-15"),
])
def test_a_damaged_filter_section_is_refused(poke, needle):
    blob = bytearray(to_blob(model()))
    offset, _ = filter_section(blob)
    poke(blob, offset)
    with pytest.raises(ModelError, match=needle):
        from_blob(resealed(blob))


def test_a_version_4_blob_with_a_filter_is_refused_by_its_version():
    blob = bytearray(to_blob(model()))
    struct.pack_into("<H", blob, 4, 4)
    with pytest.raises(ModelError, match="FILTER section needs format version 5"):
        from_blob(resealed(blob))


def test_per_sample_updates_sum_the_eligibility_exactly():
    """update 'sample': a psn layer's gradient sums are d e over the steps, exact (ring_grads), so a
    sample learned per sample moves the weights as the sums say (the draw of SR aside)."""
    m = model()
    m.learning = dataclasses.replace(m.learning, update="sample")
    fx = FixedSTOP(m)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, (4, 12, 5)).astype(np.uint8), rng.integers(0, 3, 4)
    before = fx.weights.copy()
    fx.run(x, y, True)                                  # a batch of 4: sums, then one application
    assert not np.array_equal(before, fx.weights)
    taps = np.array([[1, -2]], np.int8)
    xr = np.array([[0, 65536, 0, 32768]], np.int32)     # one input, L = 4, D = 3: lags 0 and 3
    gW = np.zeros((1, 1), np.int64)
    psn.psn_weight_grads(gW, np.array([5], np.int32), taps, 3, 1, xr)
    # e = tap(+1, xr[1]) + tap(-1/2, xr[(1 - 3) mod 4 = 2]) = 65536 - 0
    assert gW[0, 0] == 5 * 65536
