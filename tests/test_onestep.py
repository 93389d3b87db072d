"""The one-time-step layer (edgelearn/ops/layers/scan2d.py, docs/one-step.md): its float twin's
STOP updates are the gradient with the scan's recurrence detached (complex step), the fixed
point tracks the float twin, the C runtime (host and the emulated Cortex-M7) is bit-exact with
the reference, the scan order is what the docs say, and the model checks name what does not fit."""
import numpy as np
import pytest
from agree import assert_same_state
from complex_step import complex_steps, layer_grads

from edgelearn.executors.c import NativeSTOP
from edgelearn.model import Edge, InputSpec, Layer, Learning, Model, ModelError, Neuron, Window, init_params
from edgelearn.modelblob import from_blob, to_blob
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.rules.stop.float import FloatSTOP
from firmware_host import qemu


def scan_model(T=3, update="sample", encoding="direct", channels=3, readout="lif", seed=2):
    """input [2, 5, 6] -> scan2d (a 3x1 column and a 1x5 row field, 3 channels) -> dense 3."""
    layers = (Layer("sc", "scan2d", (Edge("input"),), (channels, 5, 6), Neuron("lif", leak=0.75),
                    window=Window((3, 5), padding=(1, 2))),
              Layer("out", "dense", (Edge("sc"),), (3,), Neuron(readout, leak=0.8)))
    return init_params(Model("scan", InputSpec((2, 5, 6), encoding), layers,
                             Learning(T=T, update=update, seed=seed, surrogate_shift=1)), weight_gain=2.5)


def test_float_stop_through_the_scan_equals_complex_step_gradient():
    model = scan_model()
    net = FloatSTOP(model)
    x = np.random.default_rng(3).integers(0, 256, 60).astype(np.uint8)
    st, g = net.init_state(1), net.zero_grads()
    y = np.zeros((1, 3))
    y[0, 1] = 1.0
    for _ in range(model.learning.T):
        net.forward_step(st, x[None] / 256.0, traces=True)
        net.error_step(st, y)
        net.accumulate(st, g)
    for l in range(2):
        def loss(W, th, a):
            return sum(0.5 * np.sum((step[-1][0] - y[0]) ** 2) for step in complex_steps(net, x, W, th, a, l))
        ref = layer_grads(net, l, loss)
        assert np.linalg.norm(ref["W"]) > 1e-3 and np.linalg.norm(ref["th"]) > 1e-3 and abs(ref["a"]) > 1e-6
        for key in ("W", "th"):
            assert np.linalg.norm(g[key][l] - ref[key]) < 1e-6 * np.linalg.norm(ref[key]), (l, key)
        assert abs(g["a"][l] - ref["a"]) < 1e-6 * abs(ref["a"])
    # the recurrent weights learn: their columns have a gradient of their own
    assert np.linalg.norm(g["W"][0][:, -6:]) > 1e-3


def test_errors_pass_down_through_the_scan_to_a_learning_layer_below():
    """A scan2d above a conv2d: the conv's STOP updates (errors through the scan's two fields)
    equal complex-step derivatives too."""
    layers = (Layer("cv", "conv2d", (Edge("input"),), (2, 5, 6), Neuron("lif", leak=0.8),
                    window=Window((3, 3), padding=(1, 1))),
              Layer("sc", "scan2d", (Edge("cv"),), (3, 5, 6), Neuron("lif", leak=0.75),
                    window=Window((3, 5), padding=(1, 2))),
              Layer("out", "dense", (Edge("sc"),), (3,), Neuron("lif", leak=0.8)))
    model = init_params(Model("below", InputSpec((2, 5, 6), "direct"), layers,
                              Learning(T=3, seed=4, surrogate_shift=1)), weight_gain=2.5)
    net = FloatSTOP(model)
    x = np.random.default_rng(6).integers(0, 256, 60).astype(np.uint8)
    st, g = net.init_state(1), net.zero_grads()
    y = np.zeros((1, 3))
    y[0, 2] = 1.0
    for _ in range(model.learning.T):
        net.forward_step(st, x[None] / 256.0, traces=True)
        net.error_step(st, y)
        net.accumulate(st, g)

    def loss(W, th, a):
        return sum(0.5 * np.sum((step[-1][0] - y[0]) ** 2) for step in complex_steps(net, x, W, th, a, 0))
    ref = layer_grads(net, 0, loss)
    assert np.linalg.norm(ref["W"]) > 1e-3, "no error reached the conv below the scan"
    assert np.linalg.norm(g["W"][0] - ref["W"]) < 1e-6 * np.linalg.norm(ref["W"])


def test_the_scan_reads_only_neighbours_already_scanned():
    """A neuron's current counts the left and upper neighbours' spikes of this step, and the
    scan is row by row: with only the recurrent weights, a spike at the first position makes
    its right and lower neighbours fire, and so on along the scan."""
    model = scan_model(T=1, channels=1)
    W = model.params["sc"].weight
    W[:] = 0
    W[0, -2] = W[0, -1] = 1 << 13                     # left and up: 2 thresholds each (wf 12)
    W[0, 1] = 1 << 13                                 # the column field's centre tap (ky 1), input channel 0
    x = np.zeros((2, 5, 6), np.uint8)
    x[0, 0, 0] = 255                                  # only the first position has input
    raster = FixedSTOP(model).spike_raster(x.ravel())
    assert raster[0, :30].reshape(5, 6).all()         # the scan carried the spike to every position
    x[0, 0, 0], x[0, 0, 5] = 0, 255                   # input at the end of the first row only
    raster = FixedSTOP(model).spike_raster(x.ravel())
    fired = raster[0, :30].reshape(5, 6)
    assert fired[:, 5].all() and fired[:, :5].sum() == 0   # down its column; nothing runs back along a row


@pytest.mark.parametrize("encoding,update,T", [("direct", "step", 1), ("rate", "sample", 3), ("events", "step", 2)])
def test_c_runtime_runs_the_scan_as_the_reference(encoding, update, T):
    model = scan_model(T=T, update=update, encoding=encoding)
    ref, c = FixedSTOP(model), NativeSTOP(model)
    rng = np.random.default_rng(5)
    for _ in range(8):
        shape = (1, T - 1 or 1, 60) if encoding == "events" else (1, 60)
        x = rng.integers(0, 2 if encoding == "events" else 256, shape).astype(np.uint8)
        y = rng.integers(0, 3, 1)
        assert np.array_equal(ref.run(x, y, True), c.run(x, y, True))
        assert_same_state(ref, c)
    assert not np.array_equal(ref.weights, FixedSTOP(model).weights)
    assert to_blob(from_blob(to_blob(model))) == to_blob(model)


def test_the_scan_learns_on_the_cortex_m7_bit_exactly():
    model = scan_model(T=1, update="step")
    rng = np.random.default_rng(9)
    xs, ys = rng.integers(0, 256, (30, 60)).astype(np.uint8), rng.integers(0, 3, 30)
    out = qemu.run_runtime(to_blob(model), xs, ys, True, board="mps2-an500")
    assert out["exit"] == 0 and not out["status"].any()
    ref = FixedSTOP(model)
    want = [int(np.argmax(ref.run(xs[i:i + 1], ys[i:i + 1], True)[0])) for i in range(30)]
    assert out["prediction"].tolist() == want and out["blob"] == to_blob(ref.to_model())


@pytest.mark.parametrize("window,fragment", [
    (Window((3, 4), padding=(1, 2)), "odd kernels"),
    (Window((3, 5), padding=(0, 2)), r"padding \(1, 2\)"),
    (Window((3, 5), (1, 2), (1, 2)), "stride"),
])
def test_a_scan_window_is_centred(window, fragment):
    layers = (Layer("sc", "scan2d", (Edge("input"),), (2, 5, 6), Neuron("lif"), window=window),
              Layer("out", "dense", (Edge("sc"),), (3,), Neuron("lif")))
    with pytest.raises(ModelError, match=fragment):
        Model("bad", InputSpec((2, 5, 6)), layers, Learning()).validate_structure()
