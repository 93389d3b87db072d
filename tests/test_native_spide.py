"""SPIDE in the C runtime (targets/c) against FixedSPIDE, bit for bit: golden vectors,
random small models (hypothesis: feed-forward and feedback, IF/LIF, both resets, every
encoding, seeds, T and Tb), 500 digits samples, the loader's SPIDE checks, and an arena
that equals the profiler's and does not depend on T or Tb."""
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from agree import assert_same_state
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgelearn import native
from edgelearn.executors.c import NativeSPIDE
from edgelearn import numerics as nx
from edgelearn import profile as pf
from edgelearn.rules.spide.fixed import FixedSPIDE
from edgelearn.rules.spide.spec import edge_table, loop_gain_bound, spide_mlp
from edgelearn.model import INPUT, Edge, InputSpec, Layer, LayerParams, Learning, Model, ModelError, Neuron, Schedule
from edgelearn.modelblob import from_blob, to_blob

sys.path.insert(0, str(Path(__file__).parent / "golden"))

GOLDEN = Path(__file__).parent / "golden" / "spide.json"
lib = native.load_native().lib


# -- golden vectors ---------------------------------------------------------------------

def golden_cases():
    return json.loads(GOLDEN.read_text())


def replay(net, case):
    return [net.run(np.array(s["samples"], dtype=np.uint8), np.array(s["labels"]), s["learn"]).tolist()
            for s in case["steps"]]


@pytest.mark.parametrize("twin", [NativeSPIDE, FixedSPIDE], ids=["c", "python"])
@pytest.mark.parametrize("case", golden_cases(), ids=lambda c: c["name"])
def test_spide_golden_vectors(case, twin):
    net = twin(from_blob(bytes.fromhex(case["blob"])))
    assert replay(net, case) == [s["scores"] for s in case["steps"]]
    assert net.weights.tolist() == case["weights"]
    assert (int(net.rng_input[0]), int(net.rng_learn[0])) == (case["rng_input"], case["rng_learn"])
    assert net.buffers()["health"].tolist() == case["health"]
    schedule = net.to_model().schedule
    assert (None if schedule is None else schedule.learned) == case["learned"]


def test_golden_cases_cover_the_retries_and_the_guard():
    health = np.array([c["health"] for c in golden_cases()])
    assert health[:, 6].sum() > 0 and health[:, 7].sum() > 0     # scale retries, guard halvings


# -- random models ----------------------------------------------------------------------

@st.composite
def random_spide_models(draw):
    n_in = draw(st.integers(1, 10))
    depth = draw(st.integers(1, 2))
    hidden = [draw(st.integers(1, 8)) for _ in range(depth)]
    classes = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["if", "lif"]))
    neuron = Neuron(kind, threshold=draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])),
                    leak=1.0 if kind == "if" else draw(st.sampled_from([0.5, 0.875])),
                    reset=draw(st.sampled_from(["modified", "subtract"])))
    feedback = draw(st.sampled_from(["none", "none", "self", "top"]))
    wf = draw(st.integers(8, 13))
    layers = []
    for i, h in enumerate(hidden):
        inputs = (Edge(INPUT),) if i == 0 else (Edge(f"h{i - 1}"),)
        if i > 0 and draw(st.booleans()):
            inputs += (Edge(INPUT),)                               # a second input edge
        if i == 0 and feedback != "none":
            inputs += (Edge("h0" if feedback == "self" else f"h{depth - 1}", 1),)
        layers.append(Layer(f"h{i}", "dense", inputs, (h,), neuron, weight_frac=wf))
    reads = (Edge(f"h{depth - 1}"),) + ((Edge("h0"),) if depth > 1 and draw(st.booleans()) else ())
    layers.append(Layer("out", "dense", reads, (classes,), Neuron("li"), weight_frac=wf))
    learning = Learning(rule="spide", T=draw(st.sampled_from([2, 4, 8, 16])), Tb=draw(st.sampled_from([4, 8, 16])),
                        lr_weight_shift=draw(st.integers(0, 8)), update="sample", seed=draw(st.integers(0, 2**32 - 1)))
    model = Model("r", InputSpec((n_in,), draw(st.sampled_from(["direct", "rate", "events"]))), tuple(layers),
                  learning)
    gain = draw(st.sampled_from([0.3, 0.7, 1.5]))
    target = draw(st.sampled_from([0.3, 0.8, 0.95, 1.2]))   # the loop gain bound the feedback is scaled to
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    sizes = {INPUT: n_in, **{layer.name: layer.size for layer in layers}}
    weights = [np.concatenate([rng.normal(0.1 if e.source == INPUT else 0.0, gain, (layer.size, sizes[e.source]))
                               for e in layer.inputs], axis=1) for layer in layers]
    if feedback != "none":
        edges = edge_table(model)
        vd = [neuron.threshold * (2 if neuron.reset == "modified" else 1)] * depth
        bound = loop_gain_bound(weights, edges, vd)
        fb = edges[0][-1].cols
        weights[0][:, fb] *= target / bound if bound > 0 else 1.0
    params = {}
    for layer, w in zip(layers, weights):
        params[layer.name] = LayerParams(nx.to_fixed(w, wf, nx.INT16_MIN, nx.INT16_MAX, np.int16),
                                         nx.to_fixed(np.full(layer.size, layer.neuron.threshold), nx.STATE_FRAC),
                                         int(nx.to_fixed(layer.neuron.leak, 16)))
    model.params = params
    model.schedule = draw(st.none() | st.builds(Schedule, every=st.integers(1, 3), steps=st.integers(1, 40),
                                                learned=st.integers(0, 4) | st.just(0xFFFFFFFE)))
    return model.validate()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=random_spide_models(), data=st.data())
def test_random_spide_models_train_bit_exactly(model, data):
    try:
        ref = FixedSPIDE(model)
    except ModelError as err:                    # a loop that does not contract: refused by both
        with pytest.raises(ModelError, match=str(err)[:30]):
            NativeSPIDE(model)
        event("refused: not contractive")
        return
    c = NativeSPIDE(model)
    assert_same_state(ref, c)
    n, T, classes = model.input.size, model.learning.T, model.layers[-1].size
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    for step in range(data.draw(st.integers(1, 6))):
        if model.input.encoding == "events":
            x = rng.integers(0, 2, size=(1, data.draw(st.integers(1, T + 1)), n), dtype=np.uint8)
        else:
            x = rng.integers(0, 256, size=(1, n), dtype=np.uint8)
        y = rng.integers(0, classes, size=1)
        learn = data.draw(st.booleans()) or step == 0
        np.testing.assert_array_equal(ref.run(x, y, learn), c.run(x, y, learn))
        assert_same_state(ref, c)
    health = ref.health()
    assert health == c.health()
    event(f"feedback {ref.config.feedback}, retries {health['scale_retries'] > 0}, halvings {health['guard_halvings'] > 0}")
    assert to_blob(c.to_model()) == to_blob(ref.to_model())


@pytest.mark.parametrize("which", ["feed-forward", "feedback zoo model"])
def test_500_digits_samples_with_spide_give_bit_identical_parameters(which):
    from edgelearn.datasets import load_digits
    from edgelearn.modelfile import load_model
    ds = load_digits()
    if which == "feed-forward":
        model = spide_mlp("digits-spide", [64, 64, 10], T=16, Tb=16)
    else:
        model = load_model(Path(__file__).parent.parent / "models" / "digits-spide-feedback.json")
    ref, c = FixedSPIDE(model), NativeSPIDE(model)
    for i in range(500):
        x, y = ds.x_train[i:i + 1], ds.y_train[i:i + 1]
        np.testing.assert_array_equal(ref.run(x, y, True), c.run(x, y, True))
    assert_same_state(ref, c)
    assert to_blob(ref.to_model()) == to_blob(c.to_model())
    first = model.layers[0].name
    assert not np.array_equal(c.weights[:model.params[first].weight.size], model.params[first].weight.ravel())


# -- loader and arena ---------------------------------------------------------------------

def test_spide_arena_equals_the_profiler_and_is_independent_of_T_and_Tb():
    for case in golden_cases():
        model = from_blob(bytes.fromhex(case["blob"]))
        totals = set()
        for T, Tb in [(2, 4), (8, 16), (256, 1024)]:
            m = replace(model, learning=replace(model.learning, T=T, Tb=Tb))
            m.params = model.params
            blob = to_blob(m)
            assert pf.arena_plan(m) == native.plan(blob)
            assert native.init_status(blob) == lib.EL_OK
            totals.add(native.arena_required(blob))
        assert len(totals) == 1
        assert NativeSPIDE(model).arena_bytes() == totals.pop()


def test_spide_profile_runs_beside_bptt():
    model = spide_mlp("m", [784, 256, 10], T=8)
    runs = {T: pf.profile(model, "mps2-an386", "spide", T, measure_code=False) for T in (8, 256)}
    assert runs[8]["arena"] == runs[256]["arena"] == native.arena_required(to_blob(model))
    assert runs[8]["total_ram"] == runs[256]["total_ram"]
    assert runs[256]["total_ram_bptt"] - runs[8]["total_ram_bptt"] == 248 * (5 * (256 + 10) + 784)
    assert runs[8]["ram"]["backward couples"] > 0 and runs[8]["ram_bptt"]["backward couples"] == 0


def _blob_with(model, **learning):
    m = replace(model, learning=replace(model.learning, **learning))
    m.params = model.params
    return m


def test_loader_checks_spide_restrictions():
    import struct
    from test_native import MODEL, THRESHOLD, poke, section
    blob = to_blob(spide_mlp("s", [6, 5, 3], T=8, Tb=16))
    assert native.init_status(blob) == lib.EL_OK
    model_at = section(blob, MODEL)[1]
    th_at = section(blob, THRESHOLD, 0)[1]
    refusals = {
        "T not a power of two": (poke(blob, model_at + 8, "<H", 6), "EL_ERR_VALUE"),
        "T of 1": (poke(blob, model_at + 8, "<H", 1), "EL_ERR_VALUE"),
        "Tb not a power of two": (poke(blob, model_at + 22, "<H", 12), "EL_ERR_VALUE"),
        "Tb below 4": (poke(blob, model_at + 22, "<H", 2), "EL_ERR_VALUE"),
        "threshold not a power of two": (poke(blob, th_at, "<i", 3 << 14), "EL_ERR_VALUE"),
        "thresholds differ": (poke(blob, th_at + 4, "<i", 1 << 15), "EL_ERR_VALUE"),
    }
    for what, (bad, code) in refusals.items():
        assert native.STATUS_NAMES[native.init_status(bad, 1 << 16)] == code, what
    assert struct.unpack_from("<H", blob, model_at + 22)[0] == 16


def test_loader_refuses_spide_topologies_it_does_not_run():
    hidden = Neuron("if", reset="modified")

    def model(layers):
        m = Model("t", InputSpec((4,), "direct"), tuple(layers),
                  Learning(rule="spide", T=8, Tb=8, update="sample"))
        from edgelearn.model import init_params
        return init_params(m)

    readout_reads_input = model([Layer("h", "dense", (Edge(INPUT),), (3,), hidden),
                                 Layer("out", "dense", (Edge("h"), Edge(INPUT)), (2,), Neuron("li"))])
    delay_two = model([Layer("h", "dense", (Edge(INPUT), Edge("h", 2)), (3,), hidden),
                       Layer("out", "dense", (Edge("h"),), (2,), Neuron("li"))])
    lif_readout = model([Layer("h", "dense", (Edge(INPUT),), (3,), hidden),
                         Layer("out", "dense", (Edge("h"),), (2,), Neuron("lif"))])
    for m in (readout_reads_input, delay_two, lif_readout):
        assert native.STATUS_NAMES[native.init_status(to_blob(m), 1 << 16)] == "EL_ERR_UNSUPPORTED"
        with pytest.raises(ModelError):
            FixedSPIDE(m)
