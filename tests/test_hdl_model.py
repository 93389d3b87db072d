"""The generated FPGA core learns bit for bit with the Python reference (FixedSTOP): the digits
model for 200 samples in verilator, in the UP5K's memory configuration (weights single-ported
as in SPRAM), and random small models in iverilog (hypothesis). Scores after every sample,
then weights, thresholds, leaks, the learning stream and the schedule's count, all read back
through the core's parameter port. Also: the serial line of a board (UART and byte bridge),
the executor's protocol, and the models the core refuses, by name."""
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgelearn import datasets
from edgelearn.errors import ModelError
from edgelearn.executors import Exactness, make_learner
from edgelearn.executors.hdl import HdlSTOP
from edgelearn.hdl import generate, synth
from edgelearn.hdl.sim import RTL_DIR, SIM_DIR, iverilog_build, rtl_sources
from edgelearn.model import InputSpec, Learning, Neuron, Schedule, init_params, mlp
from edgelearn.modelfile import load_model
from edgelearn.resources import MODELS
from edgelearn.rules.stop.fixed import FixedSTOP


def assert_learns_like_the_reference(model, samples, labels, simulator, **options):
    hdl = HdlSTOP(model, simulator=simulator, **options)
    ref = FixedSTOP(model)
    try:
        for n in range(len(samples)):
            want = ref.run(samples[n:n + 1], labels[n:n + 1], True)
            got = hdl.run(samples[n:n + 1], labels[n:n + 1], True)
            assert np.array_equal(got, want), f"sample {n}: scores {got.tolist()} != {want.tolist()}"
        inference = samples[:3]
        assert np.array_equal(hdl.run(inference, None, False), ref.run(inference, None, False))
        held, want = hdl.buffers(), ref.buffers()
        for name in ("weights", "thresholds", "leaks", "rng_input", "rng_learn", "scores"):
            assert np.array_equal(held[name], want[name]), name
        learned = hdl.to_model()
        expected = ref.to_model()
        for layer in model.layers:
            a, b = learned.params[layer.name], expected.params[layer.name]
            assert np.array_equal(a.weight, b.weight) and np.array_equal(a.threshold, b.threshold)
            assert a.leak == b.leak
        assert learned.schedule == expected.schedule
    finally:
        hdl.close()
    return hdl


@pytest.mark.slow
def test_digits_model_learns_200_samples_bit_exact_in_verilator():
    model = load_model(MODELS / "digits-stop.json")
    data = datasets.load("digits")
    hdl = assert_learns_like_the_reference(model, data.x_train[:200], data.y_train[:200], "verilator",
                                           target="ice40up5k")
    assert hdl.single_port == {"weights"}            # the UP5K's SPRAM, single-ported
    assert 10_000 < np.mean(hdl.cycles[:200]) < 200_000


@st.composite
def small_models(draw):
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=2))
    sizes = [draw(st.integers(1, 7)), *hidden, draw(st.integers(2, 4))]
    kind = draw(st.sampled_from(["lif", "if"]))
    neuron = Neuron(kind, threshold=draw(st.sampled_from([0.5, 1.0, 1.5])),
                    learn_threshold=draw(st.booleans()), learn_leak=draw(st.booleans()))
    readout = Neuron(draw(st.sampled_from(["lif", "li"])), learn_threshold=draw(st.booleans()))
    learning = Learning(rule=draw(st.sampled_from(["stop", "stop", "readout"])), T=draw(st.integers(1, 4)),
                        lr_weight_shift=draw(st.integers(0, 8)), lr_threshold_shift=draw(st.integers(0, 10)),
                        lr_leak_shift=draw(st.integers(0, 12)), surrogate_shift=draw(st.integers(-2, 3)),
                        seed=draw(st.integers(0, 2**32 - 1)))
    model = init_params(mlp("random", sizes, hidden=neuron, readout=readout, learning=learning,
                            weight_frac=draw(st.integers(8, 14))), weight_gain=draw(st.sampled_from([1.0, 3.0])))
    if draw(st.booleans()):
        model.schedule = Schedule(every=draw(st.integers(1, 3)), steps=draw(st.integers(1, 3)),
                                  learned=draw(st.integers(0, 4)))
    return model


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=small_models(), seed=st.integers(0, 2**16))
def test_random_small_models_learn_bit_exact_in_iverilog(model, seed):
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, 256, size=(8, model.input.size), dtype=np.uint8)
    samples[rng.random(samples.shape) < 0.3] = 0
    labels = rng.integers(0, model.readout.size, size=8)
    assert_learns_like_the_reference(model, samples, labels, "iverilog")


def test_the_serial_line_carries_samples_scores_and_the_parameter_port(tmp_path):
    """el_serial.v (UART + el_byte_bridge + the core), as a board runs it, against FixedSTOP."""
    model = init_params(mlp("serial", [6, 5, 3], learning=Learning(T=4, seed=3)))
    generate.write(model, tmp_path)
    tb = iverilog_build("el_serial_tb", [tmp_path / "el_model.v", SIM_DIR / "el_serial_tb.v",
                                         synth.BOARDS_DIR / "el_serial.v", *rtl_sources()], [RTL_DIR])
    rng = np.random.default_rng(5)
    samples = rng.integers(0, 256, size=(3, 6), dtype=np.uint8)
    labels = [1, 0, 2]
    lines = []
    for x, y in zip(samples, labels):
        sent = [0x01, 1, y, 0, *x]
        lines.append(f"{len(sent):x} {1 + 3:x} " + " ".join(f"{b:x}" for b in sent))
    threshold_at = generate.address_map(model)["thresholds"]
    lines.append(f"4 5 3 {threshold_at & 0xFF:x} {threshold_at >> 8 & 0xFF:x} 0")      # a read
    lines.append("8 0 2 0 0 0 bc 9a 34 12")                                         # a write at 0 ...
    lines.append("4 5 3 0 0 0")                                                      # ... read back
    out = subprocess.run(["vvp", "-n", str(tb)], input="\n".join(lines) + "\n0 0\n", capture_output=True, text=True,
                         cwd=tmp_path, timeout=300).stdout.split("\n")
    replies = [[int(b, 16) for b in line.split()[1:]] for line in out if line.startswith("B")]
    ref = FixedSTOP(model)
    for n, (x, y) in enumerate(zip(samples, labels)):
        assert replies[n] == [0x81, *ref.run(x[None], np.array([y]), True)[0].tolist()]
    word = ref.thresholds[0].item() & 0xFFFFFFFF
    assert replies[3] == [0x83, *word.to_bytes(4, "little")]
    assert replies[4] == [] and replies[5] == [0x83, 0xBC, 0x9A, 0xFF, 0xFF]      # a weight: its 16 bits, sign-extended


def test_the_executor_is_bit_exact_and_reached_through_make_learner():
    model = init_params(mlp("m", [4, 3, 2], learning=Learning(T=2)))
    learner = make_learner(model, "hdl", simulator="iverilog")
    assert isinstance(learner, HdlSTOP) and learner.exactness is Exactness.BIT
    for method in ("run", "health", "buffers", "to_model"):
        assert callable(getattr(learner, method))
    with pytest.raises(ValueError, match="one sample at a time"):
        learner.run(np.zeros((2, 4), dtype=np.uint8), np.array([0, 1]), True)
    learner.close()


@pytest.mark.parametrize("change,needle", [
    (lambda m: replace(m, input=InputSpec(m.input.shape, "rate")), "direct input"),
    (lambda m: replace(m, learning=replace(m.learning, update="sample")), "per step"),
])
def test_the_core_refuses_what_it_does_not_run(change, needle):
    with pytest.raises(ModelError, match=needle):
        generate.check(change(init_params(mlp("m", [4, 3, 2]))))


def test_an_unsupported_layer_kind_is_named():
    model = init_params(mlp("m", [4, 3, 2]))
    layer = model.layers[0]
    odd = replace(model, layers=(replace(layer, kind="conv2d"), *model.layers[1:]))
    with pytest.raises(ModelError, match="'conv2d'"):
        generate.check(odd)


def test_spide_is_refused_by_the_hdl_executor():
    with pytest.raises(ModelError, match="'hdl' executor runs the stop runtime"):
        make_learner(load_model(MODELS / "digits-spide.json"), "hdl")


def test_a_model_too_big_for_the_up5k_says_so_with_numbers():
    plan = synth.memory_plan(load_model(MODELS / "mnist-stop.json"), "ice40up5k")
    assert not plan.fits
    message = synth.not_fitting(load_model(MODELS / "mnist-stop.json"), plan)
    assert "does not fit ice40up5k" in message and f"of {plan.block_ram_available}" in message
