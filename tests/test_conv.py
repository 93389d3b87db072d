"""Convolution and pooling (edgelearn/ops/layers: conv2d, avgpool, maxpool) in the STOP
runtimes: the float twin's updates through them are the gradient (STOP's complex-step proof
generalised), the fixed-point reference tracks the float twin, training memory stays flat in
T, a dense layer reads a [C, H, W] source as its flattening, and the model checks name what
does not fit. Bit-exactness with the C runtime: tests/test_conv_native.py."""
import numpy as np
import pytest
from complex_step import complex_steps, layer_grads

from edgelearn.model import Edge, InputSpec, Layer, Learning, Model, ModelError, Neuron, Window, init_params
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.rules.stop.float import FloatSTOP


def conv_maxpool(T=6, seed=3, update="sample", encoding="direct", readout="lif"):
    """input [1, 6, 6] -> conv 3x3 pad 1 [3, 6, 6] -> maxpool 2x2 [3, 3, 3] -> dense 4."""
    layers = (Layer("c1", "conv2d", (Edge("input"),), (3, 6, 6), Neuron("lif", leak=0.75), window=Window((3, 3), padding=(1, 1))),
              Layer("p1", "maxpool", (Edge("c1"),), (3, 3, 3), window=Window((2, 2), (2, 2))),
              Layer("out", "dense", (Edge("p1"),), (4,), Neuron(readout, leak=0.8)))
    model = Model("conv-maxpool", InputSpec((1, 6, 6), encoding), layers,
                  Learning(T=T, seed=seed, update=update, surrogate_shift=1))
    return init_params(model, weight_gain=2.5)


def conv_avgpool_conv(T=6, seed=5, update="sample", encoding="direct", readout="li"):
    """input [1, 7, 7] -> conv 3x3 stride 2 pad 1 [2, 4, 4] -> avgpool 2x2 [2, 2, 2] ->
    conv 2x2 [3, 1, 1] -> dense 3: strides, padding, an average read by a convolution."""
    layers = (Layer("c1", "conv2d", (Edge("input"),), (2, 4, 4), Neuron("lif", leak=0.75),
                    window=Window((3, 3), (2, 2), (1, 1))),
              Layer("p1", "avgpool", (Edge("c1"),), (2, 2, 2), window=Window((2, 2), (2, 2))),
              Layer("c2", "conv2d", (Edge("p1"),), (3, 1, 1), Neuron("lif", leak=0.9), window=Window((2, 2))),
              Layer("out", "dense", (Edge("c2"),), (3,), Neuron(readout, leak=0.8)))
    model = Model("conv-avgpool-conv", InputSpec((1, 7, 7), encoding), layers,
                  Learning(T=T, seed=seed, update=update, surrogate_shift=1))
    return init_params(model, weight_gain=2.5)


def stop_gradients(net: FloatSTOP, x: np.ndarray, label: int):
    st, g = net.init_state(1), net.zero_grads()
    y = np.zeros((1, net.model.readout.size))
    y[0, label] = 1.0
    for _ in range(net.model.learning.T):
        net.forward_step(st, x[None] / 256.0, traces=True)
        net.error_step(st, y)
        net.accumulate(st, g)
    return g


def complex_step_grads(net, x, label, l):
    """dE/d(layer l's parameters) with the paths STOP follows (docs/numerics.md §9)."""
    y = np.zeros(net.model.readout.size)
    y[label] = 1.0

    def loss(W, th, a):
        return sum(0.5 * np.sum((step[-1][0] - y) ** 2) for step in complex_steps(net, x, W, th, a, l))
    return layer_grads(net, l, loss)


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("make,size,label", [(conv_maxpool, 36, 1), (conv_avgpool_conv, 49, 2)])
def test_float_stop_through_conv_and_pooling_equals_complex_step_gradient(make, size, label):
    model = make()
    net = FloatSTOP(model)
    x = np.random.default_rng(0).integers(0, 256, size).astype(np.uint8)
    g = stop_gradients(net, x, label)
    for l, layer in enumerate(model.layers):
        if layer.kind not in ("conv2d", "dense"):
            continue
        ref = complex_step_grads(net, x, label, l)
        assert np.linalg.norm(ref["W"]) > 1e-3, f"degenerate test: no gradient reaches layer {layer.name}"
        assert rel_err(g["W"][l], ref["W"]) < 1e-6, layer.name
        assert np.linalg.norm(ref["th"]) > 1e-3 or not net.learn_th[l]
        if net.learn_th[l]:
            assert rel_err(g["th"][l], ref["th"]) < 1e-6, layer.name
        assert abs(ref["a"]) > 1e-6
        assert rel_err(g["a"][l], ref["a"]) < 1e-6, layer.name


def test_fixed_spike_trains_through_conv_and_pooling_track_the_float_twin():
    model = conv_maxpool(T=8)
    fixed, flt = FixedSTOP(model), FloatSTOP(model)
    rng = np.random.default_rng(4)
    agree = total = 0
    for _ in range(20):
        x = rng.integers(0, 256, 36).astype(np.uint8)
        a, b = fixed.spike_raster(x), flt.spike_raster(x)
        agree, total = agree + int(np.sum(a == b)), total + a.size
        assert a.sum() > 0
    assert agree / total > 0.97


@pytest.mark.parametrize("update", ["step", "sample"])
def test_conv_training_memory_is_independent_of_T(update):
    def footprint(T):
        net = FixedSTOP(conv_avgpool_conv(T=T, update=update))
        net.run(np.arange(49, dtype=np.uint8)[None] * 5, np.array([1]), learn=True)
        return {name: buf.nbytes for name, buf in net.buffers().items()}
    sizes = [footprint(T) for T in (2, 8, 64)]
    assert sizes[0] == sizes[1] == sizes[2]
    # the input trace: one per input position and channel of each layer with weights
    assert sizes[0]["input_trace"] == 4 * (49 + 2 * 2 * 2 + 3)


def test_a_dense_layer_reads_a_window_layer_flattened():
    """No flatten layer: a dense layer's input is its source's [C, H, W] outputs in row-major
    order, which is what Flatten gives (docs/conv.md)."""
    model = conv_maxpool()
    net = FloatSTOP(model)
    st = net.init_state(1)
    net.forward_step(st, np.random.default_rng(2).random((1, 36)), traces=False)
    pooled = st["s"][1]
    assert pooled.shape == (1, 3 * 3 * 3)
    W = net.W[2]
    direct = W @ pooled.reshape(3, 3, 3).reshape(-1)        # a Flatten, then the dense weights
    assert np.allclose(net.layer_kinds[2].forward_float(W, pooled, None)[0], direct)


@pytest.mark.parametrize("layers,fragment", [
    ((Layer("c", "conv2d", (Edge("input"),), (2, 5, 5), Neuron("lif"), window=Window((3, 3))),),
     r"shape \(2, 5, 5\); a \(3, 3\) window .* gives \(2, 4, 4\)"),
    ((Layer("c", "conv2d", (Edge("input"),), (2, 4, 4), Neuron("lif")),), "needs a 'window'"),
    ((Layer("c", "conv2d", (Edge("input"),), (2, 4, 4), None, window=Window((3, 3))),), "needs a 'neuron'"),
    ((Layer("c", "conv2d", (Edge("input"),), (2, 4, 4), Neuron("lif"), window=Window((3, 3))),
      Layer("p", "maxpool", (Edge("c"),), (2, 2, 2), Neuron("lif"), window=Window((2, 2), (2, 2)))),
     "has no neurons"),
    ((Layer("c", "conv2d", (Edge("input"),), (2, 4, 4), Neuron("lif"), window=Window((3, 3))),
      Layer("p", "avgpool", (Edge("c"),), (2, 2, 2), window=Window((2, 2), (2, 2)))),
     "the readout .* has no neurons"),
    ((Layer("c", "conv2d", (Edge("input"),), (2, 6, 6), Neuron("lif"), window=Window((3, 3), padding=(3, 3))),),
     "padding .* smaller than the kernel"),
    ((Layer("d", "dense", (Edge("input"),), (4,), Neuron("lif"), window=Window((3, 3))),), "has no 'window'"),
])
def test_model_checks_name_what_does_not_fit(layers, fragment):
    model = Model("bad", InputSpec((1, 6, 6)), layers, Learning())
    with pytest.raises(ModelError, match=fragment):
        model.validate_structure()
