"""STOP: the float twin's updates are gradients, the fixed twin is deterministic and
tracks the float one, and training memory does not depend on T."""
import numpy as np
import pytest
from complex_step import complex_steps, layer_grads

from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.rules.stop.float import FloatSTOP
from edgelearn.model import Learning, Neuron, init_params, mlp



def small_model(sizes, readout="lif", T=6, seed=3, update="sample", rule="stop", encoding="direct"):
    model = mlp("grad", sizes, encoding=encoding, readout=Neuron(readout, leak=0.8),
                hidden=Neuron("lif", leak=0.75),
                learning=Learning(T=T, surrogate_shift=1, update=update, rule=rule, seed=seed))
    return init_params(model, weight_gain=2.5)


def stop_gradients(net: FloatSTOP, x: np.ndarray, label: int):
    """STOP's accumulated updates for one sample (not applied)."""
    st, g = net.init_state(1), net.zero_grads()
    y = np.zeros((1, net.W[-1].shape[0]))
    y[0, label] = 1.0
    for t in range(net.model.learning.T):
        net.forward_step(st, x[None] / 256.0, traces=True)
        net.error_step(st, y)
        net.accumulate(st, g)
    return g


def loss_complex(net: FloatSTOP, x, label, W, th, a, detach_above):
    """E = sum_t 1/2 |out[t] - y|^2 in complex arithmetic (complex_step.complex_steps: the
    reset path detached, the layers above ``detach_above`` without their temporal path)."""
    y = np.zeros(W[-1].shape[0])
    y[label] = 1.0
    return sum(0.5 * np.sum((step[-1][0] - y) ** 2) for step in complex_steps(net, x, W, th, a, detach_above))


def complex_step_grads(net, x, label, detach_layers: bool):
    """dE/dW, dE/dth, dE/da for every parameter, one forward pass each."""
    out = {"W": [], "th": [], "a": []}
    for l in range(len(net.W)):
        detach = l if detach_layers else len(net.W)
        grads = layer_grads(net, l, lambda W, th, a: loss_complex(net, x, label, W, th, a, detach))
        for key in out:
            out[key].append(grads[key])
    return out


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("sizes,readout,seed", [([7, 4], "lif", 3), ([7, 4], "li", 3), ([7, 6, 4], "lif", 3),
                                                ([6, 5, 4, 3], "li", 7)])
def test_float_stop_equals_complex_step_gradient(sizes, readout, seed):
    model = small_model(sizes, readout, seed=seed)
    net = FloatSTOP(model)
    x = np.random.default_rng(0).integers(0, 256, sizes[0]).astype(np.uint8)
    g = stop_gradients(net, x, label=1)
    ref = complex_step_grads(net, x, 1, detach_layers=True)
    for l in range(len(sizes) - 1):
        assert np.linalg.norm(ref["W"][l]) > 1e-3, "degenerate test: no gradient reaches layer %d" % l
        assert rel_err(g["W"][l], ref["W"][l]) < 1e-6
        if net.learn_th[l]:
            assert np.linalg.norm(ref["th"][l]) > 1e-3
            assert rel_err(g["th"][l], ref["th"][l]) < 1e-6
        assert abs(ref["a"][l]) > 1e-6
        assert rel_err(g["a"][l], ref["a"][l]) < 1e-6


def test_readout_layer_update_is_the_full_reset_detached_gradient():
    """For the top layer no path is dropped besides the reset: STOP is the exact gradient."""
    model = small_model([7, 6, 4])
    net = FloatSTOP(model)
    x = np.random.default_rng(1).integers(0, 256, 7).astype(np.uint8)
    g = stop_gradients(net, x, label=2)
    full = complex_step_grads(net, x, 2, detach_layers=False)
    assert rel_err(g["W"][-1], full["W"][-1]) < 1e-6
    assert rel_err(g["th"][-1], full["th"][-1]) < 1e-6
    assert rel_err(g["a"][-1], full["a"][-1]) < 1e-6



def test_hidden_updates_align_with_the_full_gradient():
    """Hidden layers follow the per-step spatial path only (documented in numerics.md):
    not the full gradient, but well aligned with it over a few samples."""
    net = FloatSTOP(small_model([7, 6, 4], seed=1))
    stop, full = 0.0, 0.0
    for k in range(6):
        x = np.random.default_rng(k).integers(0, 256, 7).astype(np.uint8)
        stop = stop + stop_gradients(net, x, k % 4)["W"][0]
        full = full + complex_step_grads(net, x, k % 4, detach_layers=False)["W"][0]
    cos = np.sum(stop * full) / (np.linalg.norm(stop) * np.linalg.norm(full))
    assert cos > 0.95


def train_stream(model, n, encoding_seed=0):
    net = FixedSTOP(model)
    rng = np.random.default_rng(encoding_seed)
    xs = rng.integers(0, 256, (n, model.input.size)).astype(np.uint8)
    ys = rng.integers(0, model.readout.size, n)
    for x, y in zip(xs, ys):
        net.run(x[None], np.array([y]), learn=True)
    return net


@pytest.mark.parametrize("encoding,update", [("direct", "step"), ("rate", "step"), ("direct", "sample")])
def test_fixed_runtime_is_deterministic(encoding, update):
    model = small_model([16, 12, 5], update=update, encoding=encoding, T=8)
    a, b = train_stream(model, 40), train_stream(model, 40)
    for name, buf in a.buffers().items():
        np.testing.assert_array_equal(buf, b.buffers()[name], err_msg=name)
    # and it did learn: parameters moved
    assert not np.array_equal(a.weights, FixedSTOP(model).weights)
    assert not np.array_equal(a.thresholds, FixedSTOP(model).thresholds)
    assert not np.array_equal(a.leaks, FixedSTOP(model).leaks)


def test_a_different_seed_gives_a_different_stream():
    model = small_model([16, 12, 5], encoding="rate", T=8)
    other = small_model([16, 12, 5], encoding="rate", T=8)
    other.learning = Learning(**{**model.learning.__dict__, "seed": model.learning.seed + 1})
    assert not np.array_equal(train_stream(model, 20).weights, train_stream(other, 20).weights)


def test_fixed_spike_trains_track_the_float_twin():
    from edgelearn.datasets import load_digits
    data = load_digits()
    model = init_params(mlp("track", [64, 128, 10], learning=Learning(T=16)), weight_gain=1.5)
    fixed, flt = FixedSTOP(model), FloatSTOP(model)
    agree = total = 0
    for x in data.x_test[:50]:
        a, b = fixed.spike_raster(x), flt.spike_raster(x)
        agree += int(np.sum(a == b))
        total += a.size
        assert a.sum() > 0
    assert agree / total > 0.97


def test_both_twins_count_the_samples_their_schedule_decays_on():
    from edgelearn.model import Schedule
    model = small_model([8, 6, 3])
    model.schedule = Schedule(every=2, steps=1)
    x = np.arange(8, dtype=np.uint8)[None] * 30
    for net in (FixedSTOP(model.copy()), FloatSTOP(model.copy())):
        for _ in range(3):
            net.run(x, np.array([1]), learn=True)
        net.run(x, None, learn=False)                      # inference does not count
        out = net.to_model()
        assert out.schedule == Schedule(2, 1, learned=3)
        assert out.learning == model.learning               # the base shifts never change


@pytest.mark.parametrize("update,rule", [("step", "stop"), ("sample", "stop"), ("step", "readout")])
def test_training_memory_is_independent_of_T(update, rule):
    def footprint(T):
        model = small_model([64, 32, 10], T=T, update=update, rule=rule)
        net = FixedSTOP(model)
        x = np.arange(64, dtype=np.uint8) * 3
        net.run(x[None], np.array([3]), learn=True)
        return {name: buf.nbytes for name, buf in net.buffers().items()}

    sizes = [footprint(T) for T in (4, 16, 64, 256)]
    assert all(s == sizes[0] for s in sizes)
    assert sum(sizes[0].values()) > 0


def test_float_training_state_is_independent_of_T():
    def footprint(T):
        net = FloatSTOP(small_model([64, 32, 10], T=T))
        st = net.init_state(1)
        return {k: [a.nbytes for a in v] for k, v in st.items()}
    assert footprint(4) == footprint(256)


def test_readout_rule_trains_only_the_last_layer():
    model = small_model([16, 12, 5], rule="readout", update="step")
    net = train_stream(model, 30)
    start = FixedSTOP(model)
    w0 = model.params["fc1"].weight.size
    np.testing.assert_array_equal(net.weights[:w0], start.weights[:w0])
    assert not np.array_equal(net.weights[w0:], start.weights[w0:])


def test_fixed_batch_must_be_a_power_of_two():
    net = FixedSTOP(small_model([8, 6, 3]))
    x = np.zeros((3, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="power of two"):
        net.run(x, np.zeros(3, dtype=int), learn=True)


def test_recorded_event_streams_train_on_both_twins():
    model = small_model([20, 12, 4], encoding="events", T=10, update="step")
    rng = np.random.default_rng(5)
    streams = (rng.random((30, 10, 20)) < 0.3).astype(np.uint8)   # [samples, T, inputs]
    labels = rng.integers(0, 4, 30)
    fixed, flt = FixedSTOP(model), FloatSTOP(model)
    # same weights, same recorded spikes: the twins see identical inputs and agree
    a, b = fixed.spike_raster(streams[0]), flt.spike_raster(streams[0])
    assert a.sum() > 0 and np.mean(a == b) > 0.95
    for x, y in zip(streams, labels):
        fixed.run(x[None], np.array([y]), learn=True)
        flt.run(x[None], np.array([y]), learn=True)
    assert not np.array_equal(fixed.weights, FixedSTOP(model).weights)
    assert not np.allclose(flt.W[0], FloatSTOP(model).W[0])


@pytest.mark.parametrize("executor", ["fixed", "float"])
def test_mini_batch_pretraining_learns_digits(executor):
    """Host pre-training: batches of 8 accumulate and apply once (mean over the batch)."""
    from dataclasses import replace

    from edgelearn.datasets import load_digits
    from edgelearn.train import make_learner, train
    model = init_params(mlp("batch", [64, 128, 10]))
    model.learning = replace(model.learning, lr_weight_shift=5, lr_threshold_shift=7)
    history = train(make_learner(model, executor), load_digits(), 3, batch=8, progress=False).history
    assert history[-1].test_accuracy > 0.9


def test_a_batch_lends_the_per_step_learner_a_gradient_buffer_only_for_that_batch():
    net = FixedSTOP(small_model([16, 12, 5], update="step"))
    before = {k: b.nbytes for k, b in net.buffers().items()}
    x = np.zeros((4, 16), dtype=np.uint8)
    net.run(x, np.zeros(4, dtype=int), learn=True)
    assert {k: b.nbytes for k, b in net.buffers().items()} == before
