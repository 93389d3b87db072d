"""Convolution and pooling bit for bit: the C runtime built for the host (NativeSTOP) holds the
same state as the Python reference (FixedSTOP) after every sample, every buffer and parameter,
for window models of every encoding and both update modes; and the C runtime on an emulated
Cortex-M7 (QEMU mps2-an500, the board with the memory) learns a stream of samples into the same
parameters, bit for bit. Needs qemu-system-arm and arm-none-eabi-gcc, and fails without them
(.ci/run installs both)."""
import numpy as np
import pytest
from agree import assert_same_state
from test_conv import conv_avgpool_conv, conv_maxpool

from edgelearn import native
from edgelearn.executors.c import NativeSTOP
from edgelearn.modelblob import to_blob
from edgelearn.rules.stop.fixed import FixedSTOP
from firmware_host import qemu


def stream(model, n, seed=1):
    rng = np.random.default_rng(seed)
    shape = (n, model.learning.T - 1, model.input.size) if model.input.encoding == "events" else (n, model.input.size)
    hi = 2 if model.input.encoding == "events" else 256
    return rng.integers(0, hi, shape).astype(np.uint8), rng.integers(0, model.readout.size, n)


@pytest.mark.parametrize("make", [conv_maxpool, conv_avgpool_conv])
@pytest.mark.parametrize("encoding,update", [("direct", "step"), ("rate", "sample"), ("events", "step")])
def test_c_runtime_learns_window_models_as_the_reference(make, encoding, update):
    model = make(encoding=encoding, update=update, readout="lif")
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 12)
    for x, y in zip(xs, ys):
        assert np.array_equal(ref.run(x[None], y[None], True), c.run(x[None], y[None], True))
        assert_same_state(ref, c)
    assert not np.array_equal(ref.weights, FixedSTOP(model).weights)      # it learned
    assert np.array_equal(ref.run(xs[:4], None, False), c.run(xs[:4], None, False))
    assert to_blob(ref.to_model()) == to_blob(c.to_model())


def test_a_batch_of_four_through_conv_and_pooling_is_bit_exact():
    model = conv_maxpool(update="step")
    ref, c = FixedSTOP(model), NativeSTOP(model)
    xs, ys = stream(model, 8, seed=3)
    for b in (0, 4):
        assert np.array_equal(ref.run(xs[b:b + 4], ys[b:b + 4], True), c.run(xs[b:b + 4], ys[b:b + 4], True))
    assert_same_state(ref, c)


def test_a_conv_model_learns_a_stream_on_the_cortex_m7_bit_exactly():
    model = conv_avgpool_conv(encoding="rate", update="step", readout="lif")
    xs, ys = stream(model, 40, seed=7)
    learn = np.ones(40, dtype=bool)
    learn[32:] = False                               # the last 8: inference only
    out = qemu.run_runtime(to_blob(model), xs, ys, learn, board="mps2-an500")
    assert out["exit"] == 0 and not out["status"].any()
    assert out["arena_bytes"] == out["arena_required"] == native.arena_required(to_blob(model))
    ref = FixedSTOP(model)
    want = [int(np.argmax(ref.run(xs[i:i + 1], ys[i:i + 1], bool(learn[i]))[0])) for i in range(40)]
    assert out["prediction"].tolist() == want
    assert out["blob"] == to_blob(ref.to_model())          # every parameter, bit for bit
    assert out["blob"] != to_blob(model)                    # and it learned
