"""Training a one-time-step STOP model on the host (edgelearn/host_train.py, docs/one-step.md): its
gradient is the complex-step derivative of the batch's cross-entropy with the scan's recurrence
detached (surrogate spikes, every layer kind of the chain), the trainer learns, the quantised model
(FloatSTOP.to_model) scores in fixed point what the twin scores, and what it cannot train is refused."""
import numpy as np
import pytest
from complex_step import complex_steps, layer_grads

from edgelearn import datasets
from edgelearn import host_train as ht
from edgelearn.adapt import fit_to_data
from edgelearn.model import Edge, InputSpec, Layer, Learning, Model, ModelError, Neuron, Window, init_params
from edgelearn.rules.stop.float import FloatSTOP
from edgelearn.train import evaluate, make_learner


def one_step_model(T=1, readout="li"):
    """input [2, 4, 6] -> scan2d 3 channels (3x1 and 1x5 fields) -> avgpool 2x2 -> dense 6 -> dense 3."""
    layers = (Layer("sc", "scan2d", (Edge("input"),), (3, 4, 6), Neuron("lif", leak=0.75),
                    window=Window((3, 5), padding=(1, 2))),
              Layer("pool", "avgpool", (Edge("sc"),), (3, 2, 3), window=Window((2, 2), stride=(2, 2))),
              Layer("fc", "dense", (Edge("pool"),), (6,), Neuron("lif", leak=0.8)),
              Layer("out", "dense", (Edge("fc"),), (3,), Neuron(readout, leak=0.8)))
    return init_params(Model("one-step", InputSpec((2, 4, 6), "direct"), layers,
                             Learning(T=T, update="sample", seed=3, surrogate_shift=1)), weight_gain=2.5)


def test_the_host_gradient_is_the_complex_step_derivative_with_the_recurrence_detached():
    net = FloatSTOP(one_step_model())
    net.W[2] *= 16                    # the pooled counts are small: bring fc's currents near its thresholds
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (3, 48)).astype(np.uint8)
    labels = np.array([0, 2, 1])
    scale = 0.7
    loss, _, grads = ht.loss_and_grads(net, ht.inputs(net, x), labels, scale)

    def cross_entropy(W, th, a):      # complex_steps: surrogate spikes, the scan's spikes real (detached)
        total = 0j
        for sample, label in zip(x, labels):
            (step,) = complex_steps(net, sample, W, th, a, len(W))
            z = scale * step[-1][0]
            total = total + np.log(np.sum(np.exp(z))) - z[label]
        return total / len(x)
    as_complex = [w.astype(complex) for w in net.W], [t.astype(complex) for t in net.th], [complex(a) for a in net.a]
    assert abs(loss - cross_entropy(*as_complex).real) < 1e-12
    for l in (0, 2, 3):
        ref = layer_grads(net, l, cross_entropy)
        assert np.linalg.norm(ref["W"]) > 1e-3, f"vacuous: no gradient reaches layer {l}'s weights"
        np.testing.assert_allclose(grads["W"][l], ref["W"], rtol=1e-7, atol=1e-9 * np.abs(ref["W"]).max())
        if l < 3:                     # the spiking layers' thresholds: ds/dth = -phi at T = 1
            assert np.linalg.norm(ref["th"]) > 1e-3, f"vacuous: no gradient reaches layer {l}'s thresholds"
            np.testing.assert_allclose(grads["th"][l], ref["th"], rtol=1e-7, atol=1e-9 * np.abs(ref["th"]).max())
    assert np.linalg.norm(grads["W"][0][:, -6:]) > 1e-3     # the recurrent weights learn from the spikes they read


def digits_model(ds):
    """8x8 digits -> scan2d 8 channels (3x1 and 1x3 fields) -> avgpool 2x2 -> li 10, from the bench's
    start (fit_to_data: the layers fire)."""
    layers = (Layer("sc", "scan2d", (Edge("input"),), (8, 8, 8), Neuron("lif"), window=Window((3, 3), padding=(1, 1))),
              Layer("pool", "avgpool", (Edge("sc"),), (8, 4, 4), window=Window((2, 2), stride=(2, 2))),
              Layer("out", "dense", (Edge("pool"),), (10,), Neuron("li")))
    model = init_params(Model("digits-one-step", InputSpec((1, 8, 8), "direct"), layers, Learning(T=1, seed=1)))
    return fit_to_data(model, ds.x_train)[0]


def test_the_trainer_learns_and_the_fixed_point_scores_what_the_twin_scores():
    """Digits (8x8) through a small scan2d model, a few epochs: the loss falls, the float twin
    classifies well, and its quantised model in fixed point within a point of it."""
    ds = datasets.load("digits")
    net = FloatSTOP(digits_model(ds))
    losses = ht.train(net, ds.x_train, ds.y_train, 8, batch=32, lr=2e-2, seed=2)
    assert losses[-1] < 0.25 * losses[0]
    float_acc = ht.accuracy(net, ds.x_test, ds.y_test)
    assert float_acc > 0.9
    for l, (lo, hi) in enumerate(ht.weight_limits(net)):      # clipped to what the device stores
        assert np.all((lo <= net.W[l]) & (net.W[l] <= hi))
    fixed_acc = evaluate(make_learner(net.to_model(), "fixed"), ds.x_test, ds.y_test, batch=100)
    assert abs(fixed_acc - float_acc) <= 0.01


@pytest.mark.parametrize("T,readout,fragment", [(2, "li", "T = 2"), (1, "lif", "'li' readout")])
def test_what_the_host_trainer_cannot_train_is_refused(T, readout, fragment):
    net = FloatSTOP(one_step_model(T=T, readout=readout))
    with pytest.raises(ModelError, match=fragment):
        ht.train(net, np.zeros((2, 48), np.uint8), np.zeros(2, np.int64), 1)


def test_weight_decay_shrinks_the_weights():
    """Decoupled decay: the same run with it ends with smaller weights; a negative decay is refused."""
    ds = datasets.load("digits")
    runs = []
    for decay in (0.0, 20.0):
        net = FloatSTOP(digits_model(ds))
        ht.train(net, ds.x_train[:256], ds.y_train[:256], 2, batch=64, lr=1e-2, weight_decay=decay, seed=2)
        runs.append(net)
    for l in (0, 2):
        assert np.linalg.norm(runs[1].W[l]) < 0.9 * np.linalg.norm(runs[0].W[l])
    with pytest.raises(ValueError, match="weight_decay"):
        ht.train(runs[0], ds.x_train[:4], ds.y_train[:4], 1, weight_decay=-1.0)
