"""SPIDE: the spike-estimated adjoint converges to the exact one, rates settle at the
equilibrium, the fixed runtime is deterministic with memory flat in T and Tb, bad
configurations are refused or reported, and digits trains online in fixed point."""
import struct
from dataclasses import replace

import numpy as np
import pytest

from edgelearn import numerics as nx
from edgelearn.datasets import load_digits
from edgelearn.rules.spide.fixed import FixedSPIDE
from edgelearn.rules.spide.float import FloatSPIDE
from edgelearn.rules.spide.spec import edge_table
from edgelearn.model import INPUT, Edge, InputSpec, Layer, LayerParams, Learning, Model, ModelError, Neuron, Schedule
from edgelearn.modelblob import FLAG_MODIFIED_RESET, SECTION_LAYER, SECTION_MODEL
from edgelearn.modelfile import from_blob, load_model, model_from_spec_dict, spec_to_dict, to_blob
from edgelearn.train import TrainingDiverged, evaluate, train

TWINS = [FloatSPIDE, FixedSPIDE]
WF = 12


def spide_model(weights, *, feedback=False, kind="if", reset="modified", threshold=1.0, T=64, Tb=64,
                encoding="direct", lr_shift=6, seed=1) -> Model:
    """input(n) -> h1 [-> h2, fed back into h1 one step late] -> li readout, with given
    float weights (quantised to Q3.12)."""
    hidden = Neuron(kind, threshold=threshold, leak=0.875, reset=reset)
    sizes = [w.shape[0] for w in weights]
    n_in = weights[0].shape[1] - (sizes[1] if feedback else 0)
    h1_inputs = (Edge(INPUT), Edge("h2", 1)) if feedback else (Edge(INPUT),)
    layers = [Layer("h1", "dense", h1_inputs, (sizes[0],), hidden)]
    if len(weights) == 3:
        layers.append(Layer("h2", "dense", (Edge("h1"),), (sizes[1],), hidden))
    layers.append(Layer("out", "dense", (Edge(layers[-1].name),), (sizes[-1],), Neuron("li")))
    model = Model("spide-test", InputSpec((n_in,), encoding), tuple(layers),
                  Learning(rule="spide", T=T, Tb=Tb, lr_weight_shift=lr_shift, update="sample", seed=seed))
    model.params = {layer.name: LayerParams(nx.to_fixed(w, WF, nx.INT16_MIN, nx.INT16_MAX, np.int16),
                                            nx.to_fixed(np.full(layer.size, threshold), nx.STATE_FRAC),
                                            int(nx.to_fixed(1.0 if layer.neuron.kind == "if" else 0.875, 16)))
                    for layer, w in zip(layers, weights)}
    return model.validate()


def random_net(seed, feedback=True, fb_spread=0.06, **kw) -> Model:
    """10 inputs -> 12 -> 8 -> 4 with rates mostly inside (0, 1) and, with feedback, a loop
    gain bound of about 0.7 to 0.87."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.25, 0.6, (12, 10))
    if feedback:
        w1 = np.concatenate([w1, rng.normal(0.0, fb_spread, (12, 8))], axis=1)
    return spide_model([w1, rng.normal(0.1, 0.45, (8, 12)), rng.normal(0.0, 0.8, (4, 8))], feedback=feedback, **kw)


def sample_for(seed, n=10):
    return np.random.default_rng(100 + seed).integers(0, 256, n).astype(np.uint8)


def exact_adjoint(model, est) -> np.ndarray:
    """Solve beta = g + J^T beta in float64, J = diag(m / V_d) W over the spiking layers,
    from the twin's own mask and output gradient g."""
    L = len(model.layers) - 1
    off = np.cumsum([0] + [layer.size for layer in model.layers[:L]])
    J = np.zeros((off[-1], off[-1]))
    for k, edges in enumerate(edge_table(model)[:L]):
        layer = model.layers[k]
        W = nx.from_fixed(model.params[layer.name].weight, layer.weight_frac)
        Vd = layer.neuron.threshold * (2 if layer.neuron.reset == "modified" else 1)
        for e in edges:
            if e.source >= 0:
                J[off[k]:off[k + 1], off[e.source]:off[e.source + 1]] += est["mask"][k][:, None] * W[:, e.cols] / Vd
    return np.linalg.solve(np.eye(off[-1]) - J.T, np.concatenate(est["g"]))


# -- the adjoint ----------------------------------------------------------------------------------
@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("feedback,kind", [(True, "if"), (False, "if"), (True, "lif")])
def test_spiking_adjoint_converges_to_the_linear_solve(twin, feedback, kind):
    for seed in range(3):
        x = sample_for(seed)
        errors = []
        for Tb in (16, 64, 256):
            model = random_net(seed, feedback, kind=kind, Tb=Tb)
            est = twin(model).estimate_adjoint(x, label=1)
            assert sum(m.sum() for m in est["mask"]) >= 8, "degenerate test: few unclamped neurons"
            exact, spiking = exact_adjoint(model, est), np.concatenate(est["beta"])
            errors.append(np.linalg.norm(spiking - exact) / np.linalg.norm(exact))
        cosine = spiking @ exact / (np.linalg.norm(spiking) * np.linalg.norm(exact))
        assert errors[0] > errors[1] > errors[2], errors
        assert errors[2] < 0.10 and cosine >= 0.99
        # the runtime's own scale rule: max|g| scaled into [1/2, 1), halved while a count
        # saturates, so the largest |beta| in couple units is unclipped and at least about 1/4
        assert 0.25 <= np.max(np.abs(exact)) * 2.0 ** est["gs"] < 1.0


def test_the_twins_estimate_the_same_adjoint():
    model, x = random_net(0, Tb=128), sample_for(0)
    a, b = FloatSPIDE(model).estimate_adjoint(x, 2), FixedSPIDE(model).estimate_adjoint(x, 2)
    assert a["gs"] == b["gs"]
    for u, v in zip(a["beta"], b["beta"]):
        np.testing.assert_allclose(u, v, atol=2 * 2.0 ** -a["gs"] / 128)


# -- the equilibrium ---------------------------------------------------------------------------------
def constant_current_layer(reset, threshold, T):
    """One IF layer of 40 neurons on 16 direct inputs, currents spread over about [-1, 3]."""
    rng = np.random.default_rng(7)
    w = rng.normal(0.15, 0.25, (40, 16))
    return spide_model([w, np.zeros((3, 40))], reset=reset, threshold=threshold, T=T)


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("T", [8, 32, 128])
def test_rates_under_constant_current_round_with_the_modified_reset(twin, T):
    x = np.random.default_rng(8).integers(0, 256, 16).astype(np.uint8)
    errors = {}
    for reset, threshold in (("modified", 1.0), ("subtract", 2.0)):      # both have V_d = 2
        net = twin(constant_current_layer(reset, threshold, T))
        rates = net.rates(x)[0]
        if twin is FixedSPIDE:
            current = net.buffers()["input_current"][:40] / nx.ONE              # the Q16 current it integrated
        else:
            current = net.W[0] @ (x / 256.0)
        target = np.clip(current / 2.0, 0.0, 1.0)
        assert 0 < np.mean((target > 0) & (target < 1)) < 1
        errors[reset] = np.abs(rates - target)
    assert np.all(errors["modified"] <= 1 / (2 * T) + 1e-12)
    assert np.all(errors["subtract"] <= 1 / T + 1e-12)
    assert np.any(errors["subtract"] > 1 / (2 * T))


def fixed_point(model, x) -> list[np.ndarray]:
    """a = clamp((W a + F x) / V_d, 0, 1) by float64 iteration over the model's weights."""
    L = len(model.layers) - 1
    edges = edge_table(model)
    W = [nx.from_fixed(model.params[layer.name].weight, WF) for layer in model.layers]
    a = [np.zeros(layer.size) for layer in model.layers[:L]]
    for _ in range(2000):
        for l in range(L):
            pre = sum((x / 256.0 if e.source < 0 else a[e.source]) @ W[l][:, e.cols].T for e in edges[l])
            a[l] = np.clip(pre / 2.0, 0.0, 1.0)
    return a


@pytest.mark.parametrize("twin", TWINS)
def test_contractive_feedback_rates_approach_the_fixed_point(twin):
    for seed in range(3):
        x = sample_for(seed)
        exact = np.concatenate(fixed_point(random_net(seed), x))
        errors = [np.mean(np.abs(np.concatenate(twin(random_net(seed, T=T)).rates(x)) - exact))
                  for T in (8, 32, 128)]
        assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02, errors


# -- the fixed-point runtime -------------------------------------------------------------------------
def train_stream(model, n, seed=0):
    net = FixedSPIDE(model)
    rng = np.random.default_rng(seed)
    for x, y in zip(rng.integers(0, 256, (n, model.input.size)).astype(np.uint8),
                    rng.integers(0, model.readout.size, n)):
        net.run(x[None], np.array([y]), learn=True)
    return net


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_fixed_runtime_is_deterministic_and_learns(encoding):
    model = random_net(1, encoding=encoding, T=32, Tb=32, lr_shift=4)
    a, b = train_stream(model, 30), train_stream(model, 30)
    for name, buf in a.buffers().items():
        np.testing.assert_array_equal(buf, b.buffers()[name], err_msg=name)
    start = FixedSPIDE(model).weights
    for layer in range(3):                   # every layer moved, the feedback block included
        w_off, n = a.table[layer, 2], a.table[layer, 0] * a.table[layer, 1]
        assert not np.array_equal(a.weights[w_off:w_off + n], start[w_off:w_off + n])


def test_training_memory_is_independent_of_T_and_Tb():
    def footprint(T, Tb):
        net = train_stream(random_net(2, T=T, Tb=Tb), 1)
        return {name: buf.nbytes for name, buf in net.buffers().items()}
    sizes = [footprint(T, Tb) for T, Tb in ((4, 16), (64, 256), (256, 4), (1024, 1024))]
    assert all(s == sizes[0] for s in sizes) and sum(sizes[0].values()) > 0


# -- bad configurations and health ------------------------------------------------------------------
@pytest.mark.parametrize("twin", TWINS)
def test_a_non_contractive_loop_is_refused(twin):
    with pytest.raises(ModelError, match="not contractive"):
        twin(random_net(0, fb_spread=0.5))


@pytest.mark.parametrize("twin", TWINS)
def test_the_guard_keeps_the_loop_contractive_while_learning(twin):
    model = random_net(1, fb_spread=0.063, lr_shift=2)
    net = twin(model)
    assert 0.875 <= net.loop_gain() < 1.0
    rng = np.random.default_rng(3)
    for _ in range(20):
        net.run(rng.integers(0, 256, (1, 10)).astype(np.uint8), rng.integers(0, 4, 1), learn=True)
    health = net.health()
    assert health["guard_halvings"] >= 1 and health["loop_gain"] < 0.875


@pytest.mark.parametrize("twin", TWINS)
def test_too_few_backward_steps_are_refused_or_reported(twin):
    with pytest.raises(ModelError, match="too few"):
        twin(random_net(0, Tb=2))
    data = load_digits()
    net = twin(digits_model(Tb=4))
    for x, y in zip(data.x_train[:40], data.y_train[:40]):
        net.run(x[None], np.array([y]), learn=True)
    health = net.health()
    assert health["backward_silent"] > 0.25
    assert any("Tb is too small" in p for p in health["problems"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the float twin's weights overflow on the way
@pytest.mark.parametrize("twin", TWINS)
def test_an_equilibrium_without_gradient_stops_training(twin):
    """A learning rate so large that every hidden neuron ends silent or always on (or, in
    float, the weights overflow): the run says so instead of printing chance accuracy."""
    data = load_digits()
    net = twin(digits_model(lr_shift=0))
    with pytest.raises(TrainingDiverged, match="smaller learning rate"):
        train(net, data, 1, progress=False)


# -- model files ---------------------------------------------------------------------------------
def test_spide_fields_round_trip_through_spec_and_blob():
    model = random_net(0, Tb=128, kind="lif")
    assert spec_to_dict(model)["learning"]["Tb"] == 128
    assert spec_to_dict(model)["layers"][0]["neuron"]["reset"] == "modified"
    again = from_blob(to_blob(model))
    assert again.learning == model.learning and again.layers == model.layers
    assert model_from_spec_dict(spec_to_dict(model)).learning == model.learning
    blob = to_blob(model)
    count, table = struct.unpack_from("<II", blob, 12)
    sections = {struct.unpack_from("<HH", blob, table + 12 * i): struct.unpack_from("<I", blob, table + 12 * i + 4)[0]
                for i in range(count)}
    assert struct.unpack_from("<H", blob, sections[SECTION_MODEL, 0] + 22)[0] == 128      # Tb
    assert blob[sections[SECTION_LAYER, 0] + 2] & FLAG_MODIFIED_RESET                       # h1's flags
    assert not blob[sections[SECTION_LAYER, 2] + 2] & FLAG_MODIFIED_RESET                   # the readout's


@pytest.mark.parametrize("change,message", [
    (dict(rule="stop"), "modified reset is run by the SPIDE runtime only"),
    (dict(Tb=0), "needs Tb >= 1"),
    (dict(Tb=65536), "Tb must be in 0..65535"),
])
def test_spide_fields_are_validated(change, message):
    model = random_net(0)
    model.learning = replace(model.learning, **change)
    with pytest.raises(ModelError, match=message):
        model.validate()


@pytest.mark.parametrize("change,message", [
    (dict(T=48), "T a power of two"), (dict(Tb=100), "Tb a power of two"),
])
def test_spide_runtime_needs_powers_of_two(change, message):
    model = random_net(0)
    model.learning = replace(model.learning, **change)
    with pytest.raises(ModelError, match=message):
        FixedSPIDE(model)


@pytest.mark.parametrize("name", ["digits-spide", "mnist-spide", "digits-spide-feedback"])
def test_zoo_models_run_on_both_twins(name):
    model = load_model(f"models/{name}.json")
    x = np.zeros((1, model.input.size), dtype=np.uint8)
    x[0, ::3] = 200
    np.testing.assert_allclose(FixedSPIDE(model).run(x, None, False) / nx.ONE,
                               FloatSPIDE(model).run(x, None, False), atol=0.05)
    # init_params started a feedback loop at the gain bound 1/2 (0 without feedback)
    assert FixedSPIDE(model).loop_gain() == pytest.approx(0.5 if "feedback" in name else 0.0, abs=0.01)


# -- digits ---------------------------------------------------------------------------------------
def digits_model(Tb=32, lr_shift=6):
    model = load_model("models/digits-spide.json")
    model.learning = replace(model.learning, Tb=Tb, lr_weight_shift=lr_shift)
    return model


@pytest.mark.slow
def test_digits_fixed_spide_reaches_94_percent():
    data = load_digits()
    model = load_model("models/digits-spide.json")
    model.schedule = Schedule(every=5 * len(data.x_train), steps=2)      # halve after epochs 5 and 10
    net = FixedSPIDE(model)
    train(net, data, 15, progress=False)
    assert evaluate(net, data.x_test, data.y_test) >= 0.94
    assert not net.health()["problems"]
