"""The model IR (edgelearn/model.py): structure and parameter validation with messages
that say what is wrong, mlp(), parameter counts, seeded initialisation, and STOP's
refusal of graphs it cannot run."""
from dataclasses import replace

import numpy as np
import pytest

from edgelearn import numerics as nx
from edgelearn.rules.stop.fixed import FixedSTOP
from edgelearn.rules.stop.float import FloatSTOP
from edgelearn.model import (Edge, InputSpec, Layer, LayerParams, Learning, Model, ModelError, Neuron,
                             init_params, mlp)


def dense(name, inputs, n, neuron="lif", **kw):
    edges = tuple(e if isinstance(e, Edge) else Edge(e) for e in inputs)
    neuron = neuron if isinstance(neuron, Neuron) else Neuron(neuron)
    return Layer(name, kw.pop("kind", "dense"), edges, (n,), neuron, **kw)


def model_of(*layers, input_shape=(6,), encoding="direct", learning=None):
    return Model("t", InputSpec(input_shape, encoding), tuple(layers), learning or Learning())


def chain():
    return model_of(dense("h", ["input"], 5), dense("out", ["h"], 3))


def structure_error(model) -> str:
    with pytest.raises(ModelError) as info:
        model.validate_structure()
    # init_params must refuse the same model, for the same reason
    with pytest.raises(ModelError) as again:
        init_params(model)
    assert str(again.value) == str(info.value)
    return str(info.value)


# -- structure ----------------------------------------------------------------------------------
def test_valid_chain_passes():
    m = chain()
    assert m.validate_structure() is m
    assert init_params(m) is m and m.validate() is m


def test_model_error_is_a_value_error():
    assert issubclass(ModelError, ValueError)


def test_no_layers():
    assert "no layers" in structure_error(model_of())


def test_unknown_layer_kind():
    msg = structure_error(model_of(dense("h", ["input"], 5, kind="flatten")))
    assert "unknown layer kind 'flatten'" in msg and "dense, conv2d" in msg and "'h'" in msg
    assert "a dense layer reads any source flattened" in msg


def test_unknown_neuron_kind():
    msg = structure_error(model_of(dense("h", ["input"], 5), dense("out", ["h"], 3, neuron="relu")))
    assert "unknown neuron kind 'relu'" in msg and "lif" in msg and "layer 1 ('out')" in msg


def test_li_only_as_readout():
    msg = structure_error(model_of(dense("h", ["input"], 5, neuron="li"), dense("out", ["h"], 3)))
    assert "'li'" in msg and "readout" in msg and "'h'" in msg
    # as the last layer it is fine
    init_params(model_of(dense("h", ["input"], 5), dense("out", ["h"], 3, neuron="li")))


def test_duplicate_names():
    msg = structure_error(model_of(dense("h", ["input"], 5), dense("h", ["h"], 3)))
    assert "duplicate name" in msg and "layer 1 ('h')" in msg


def test_layer_named_input_is_rejected():
    msg = structure_error(model_of(dense("input", ["input"], 5)))
    assert "'input'" in msg


def test_same_step_edge_from_a_later_layer():
    m = model_of(dense("a", ["input", "b"], 5), dense("b", ["a"], 3))
    msg = structure_error(m)
    assert "same-step edge from later layer 'b'" in msg and "delay >= 1" in msg and "'a'" in msg


def test_self_edge_without_delay():
    msg = structure_error(model_of(dense("a", ["input", "a"], 5)))
    assert "'a'" in msg and "delay >= 1" in msg


def test_missing_source():
    msg = structure_error(model_of(dense("h", ["input"], 5), dense("out", ["nope"], 3)))
    assert "'nope' does not exist" in msg and "'out'" in msg


def test_feedback_source_must_be_a_layer():
    msg = structure_error(model_of(dense("h", ["input", Edge("ghost", 1)], 5)))
    assert "feedback source 'ghost' is not a layer" in msg


def test_negative_delay():
    msg = structure_error(model_of(dense("h", ["input", Edge("h", -1)], 5)))
    assert "negative delay -1" in msg


def feedback_model():
    return model_of(dense("a", ["input", Edge("b", 1)], 5), dense("b", ["a"], 3))


def test_feedback_edge_is_accepted_structurally():
    m = feedback_model()
    assert m.validate_structure() is m
    init_params(m)
    assert m.fan_in(m.layers[0]) == 6 + 3
    assert m.params["a"].weight.shape == (5, 9)
    assert not m.is_feedforward_chain()
    # a recurrent self-edge too
    init_params(model_of(dense("a", ["input", Edge("a", 2)], 5)))


def test_no_inputs_bad_shape_bad_weight_frac():
    assert "no inputs" in structure_error(model_of(Layer("h", "dense", (), (5,), Neuron("lif"))))
    assert "shape (0,) must be positive" in structure_error(model_of(dense("h", ["input"], 0)))
    assert "shape () must be positive" in structure_error(
        model_of(Layer("h", "dense", (Edge("input"),), (), Neuron("lif"))))
    msg = structure_error(model_of(dense("h", ["input"], 5, weight_frac=16)))
    assert "weight_frac 16 outside 0..15" in msg


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan")])
def test_threshold_must_be_positive(threshold):
    msg = structure_error(model_of(dense("h", ["input"], 5, neuron=Neuron("lif", threshold=threshold))))
    assert "threshold must be > 0" in msg and "'h'" in msg


def test_li_readout_needs_no_positive_threshold():
    init_params(model_of(dense("h", ["input"], 5), dense("out", ["h"], 3, neuron=Neuron("li", threshold=0.0))))


@pytest.mark.parametrize("leak", [-0.1, 1.5, float("nan")])
def test_leak_outside_unit_interval(leak):
    msg = structure_error(model_of(dense("h", ["input"], 5, neuron=Neuron("lif", leak=leak))))
    assert "leak must be in [0, 1]" in msg


@pytest.mark.parametrize("shape", [(), (0,), (4, -1)])
def test_input_shape_must_be_positive(shape):
    msg = structure_error(model_of(dense("h", ["input"], 5), input_shape=shape))
    assert "input shape" in msg and "must be positive" in msg and str(shape) in msg


def test_unknown_encoding():
    msg = structure_error(model_of(dense("h", ["input"], 5), encoding="poisson"))
    assert "unknown input encoding 'poisson'" in msg and "rate" in msg


@pytest.mark.parametrize("change, expect", [
    ({"rule": "sgd"}, "unknown learning rule 'sgd'"),
    ({"update": "batch"}, "unknown update mode 'batch'"),
    ({"T": 0}, "T must be in 1..65535, got 0"),
    ({"T": 65536}, "T must be in 1..65535, got 65536"),
    ({"lr_weight_shift": -1}, "lr_weight_shift must be in 0..40, got -1"),
    ({"lr_threshold_shift": 41}, "lr_threshold_shift must be in 0..40, got 41"),
    ({"lr_leak_shift": 99}, "lr_leak_shift must be in 0..40, got 99"),
    ({"surrogate_shift": 9}, "surrogate_shift must be in -8..8, got 9"),
    ({"surrogate_shift": -9}, "surrogate_shift must be in -8..8, got -9"),
    ({"seed": -1}, "seed must be a 32-bit unsigned integer, got -1"),
    ({"seed": 2 ** 32}, f"seed must be a 32-bit unsigned integer, got {2 ** 32}"),
])
def test_bad_learning_values(change, expect):
    m = chain()
    m.learning = replace(Learning(), **change)
    assert expect in structure_error(m)


@pytest.mark.parametrize("change", [
    {"rule": "readout"}, {"rule": "none"}, {"update": "sample"}, {"T": 1}, {"T": 65535},
    {"lr_weight_shift": 0}, {"lr_leak_shift": 40}, {"surrogate_shift": -8}, {"seed": 0},
    {"seed": 2 ** 32 - 1},
])
def test_boundary_learning_values_are_accepted(change):
    m = chain()
    m.learning = replace(Learning(), **change)
    init_params(m)


# -- parameters ---------------------------------------------------------------------------------
def validate_error(model) -> str:
    with pytest.raises(ModelError) as info:
        model.validate()
    return str(info.value)


def test_validate_without_parameters():
    assert "layer 'h': no parameters" in validate_error(chain())


def test_weight_shape_mismatch():
    m = init_params(chain())
    m.params["out"].weight = np.zeros((3, 4), dtype=np.int16)
    msg = validate_error(m)
    assert "layer 'out'" in msg and "(3, 4)" in msg and "(3, 5)" in msg


def test_weight_dtype():
    m = init_params(chain())
    m.params["h"].weight = m.params["h"].weight.astype(np.int32)
    msg = validate_error(m)
    assert "must be int16" in msg and "int32" in msg


@pytest.mark.parametrize("threshold", [np.ones(5, dtype=np.float64), np.ones(4, dtype=np.int32),
                                       np.ones(5, dtype=np.int16)])
def test_threshold_array_shape_and_dtype(threshold):
    m = init_params(chain())
    m.params["h"].threshold = threshold
    msg = validate_error(m)
    assert "thresholds must be int32 of shape (5,)" in msg and str(threshold.dtype) in msg


def test_stored_thresholds_must_be_positive():
    m = init_params(chain())
    m.params["h"].threshold[2] = 0
    assert "thresholds must be > 0" in validate_error(m)


@pytest.mark.parametrize("leak", [-1, nx.ONE + 1])
def test_stored_leak_range(leak):
    m = init_params(chain())
    m.params["out"].leak = leak
    msg = validate_error(m)
    assert f"leak {leak} outside [0, {nx.ONE}]" in msg


# -- mlp, parameter counts, initialisation --------------------------------------------------------
def test_mlp_shapes():
    hidden, readout = Neuron("if"), Neuron("li")
    m = mlp("m", [64, 32, 16, 10], encoding="rate", hidden=hidden, readout=readout, weight_frac=10,
            learning=Learning(T=4, seed=9))
    assert [l.name for l in m.layers] == ["fc1", "fc2", "readout"]
    assert [l.shape for l in m.layers] == [(32,), (16,), (10,)]
    assert [l.inputs for l in m.layers] == [(Edge("input"),), (Edge("fc1"),), (Edge("fc2"),)]
    assert [l.neuron for l in m.layers] == [hidden, hidden, readout]
    assert all(l.weight_frac == 10 and l.kind == "dense" for l in m.layers)
    assert m.input == InputSpec((64,), "rate") and m.learning.T == 4
    assert m.readout.name == "readout" and m.sizes() == {"input": 64, "fc1": 32, "fc2": 16, "readout": 10}
    assert m.is_feedforward_chain()
    init_params(m)
    assert {k: p.weight.shape for k, p in m.params.items()} == {"fc1": (32, 64), "fc2": (16, 32),
                                                                 "readout": (10, 16)}
    assert all(p.weight.dtype == np.int16 and p.threshold.dtype == np.int32 for p in m.params.values())
    assert m.params["fc1"].leak == nx.ONE          # IF: leak forced to 1.0


def test_mlp_defaults_and_single_layer():
    m = init_params(mlp("m", [4, 3]))
    assert [l.name for l in m.layers] == ["readout"] and m.layers[0].inputs == (Edge("input"),)
    assert m.layers[0].neuron == Neuron("lif")
    np.testing.assert_array_equal(m.params["readout"].threshold, [nx.ONE] * 3)
    assert m.params["readout"].leak == int(0.875 * nx.ONE)
    assert "no layers" in structure_error(mlp("m", [4]))


def test_is_feedforward_chain():
    assert chain().is_feedforward_chain()
    assert not model_of(dense("h", ["input"], 5), dense("out", ["input"], 3)).is_feedforward_chain()
    assert not model_of(dense("h", ["input"], 5), dense("out", ["h", "input"], 3)).is_feedforward_chain()
    assert not model_of(dense("h", ["input", Edge("h", 1)], 5)).is_feedforward_chain()
    assert not model_of(dense("h", [Edge("input", 0), Edge("h", 1)], 5),
                        dense("out", ["h"], 3)).is_feedforward_chain()


def test_parameter_counts_and_bytes():
    m = init_params(mlp("m", [64, 32, 10]))
    # weights + one threshold per neuron + one leak per layer
    assert m.n_parameters() == {"fc1": 64 * 32 + 32 + 1, "readout": 32 * 10 + 10 + 1}
    # int16 weights, int32 thresholds, an int32 leak
    assert m.parameter_bytes() == {"fc1": 2 * 64 * 32 + 4 * 32 + 4, "readout": 2 * 32 * 10 + 4 * 10 + 4}
    fb = init_params(feedback_model())
    assert fb.n_parameters() == {"a": 5 * 9 + 5 + 1, "b": 3 * 5 + 3 + 1}


def test_init_params_deterministic_per_seed():
    def weights(seed):
        m = init_params(mlp("m", [20, 12, 4], learning=Learning(seed=seed)))
        return {k: (p.weight.copy(), p.threshold.copy(), p.leak) for k, p in m.params.items()}

    a, b, c = weights(5), weights(5), weights(6)
    for k in a:
        np.testing.assert_array_equal(a[k][0], b[k][0])
        np.testing.assert_array_equal(a[k][1], b[k][1])
        assert a[k][2] == b[k][2]
    assert any(not np.array_equal(a[k][0], c[k][0]) for k in a)


def test_init_params_weight_scale():
    m = init_params(mlp("m", [48, 400, 3]), weight_gain=1.5)
    w = nx.from_fixed(m.params["fc1"].weight, 12)
    bound = 1.5 * np.sqrt(3.0 / 48)
    assert np.abs(w).max() <= bound + 2.0 ** -13
    # uniform on [-b, b]: std b / sqrt(3); 19200 samples pin it to within a few percent
    assert abs(w.std() - bound / np.sqrt(3)) < 0.03 * bound
    assert abs(w.mean()) < 0.02 * bound


def test_copy_is_deep():
    m = init_params(chain())
    c = m.copy()
    c.params["h"].weight[0, 0] += 1
    c.params["h"].threshold[0] += 1
    assert c.params["h"].weight[0, 0] != m.params["h"].weight[0, 0]
    assert c.params["h"].threshold[0] != m.params["h"].threshold[0]


# -- STOP refuses graphs it cannot run ------------------------------------------------------------
@pytest.mark.parametrize("learner", [FixedSTOP, FloatSTOP])
@pytest.mark.parametrize("build", [
    feedback_model,
    lambda: model_of(dense("h", ["input", Edge("h", 1)], 5), dense("out", ["h"], 3)),
    lambda: model_of(dense("h", ["input"], 5), dense("out", ["h", "input"], 3)),
])
def test_stop_refuses_non_chains(learner, build):
    m = init_params(build())
    with pytest.raises(ModelError) as info:
        learner(m)
    msg = str(info.value)
    assert "feed-forward" in msg and ("feedback" in msg or "branches" in msg)


@pytest.mark.parametrize("learner", [FixedSTOP, FloatSTOP])
def test_stop_validates_parameters_first(learner):
    m = init_params(chain())
    m.params["h"].weight = m.params["h"].weight.astype(np.int32)
    with pytest.raises(ModelError, match="int16"):
        learner(m)


@pytest.mark.parametrize("learner", [FixedSTOP, FloatSTOP])
def test_stop_accepts_a_chain(learner):
    net = learner(init_params(chain()))
    scores = net.run(np.full((1, 6), 200, dtype=np.uint8), None, learn=False)
    assert scores.shape == (1, 3)


def test_layer_params_dataclass_holds_device_types():
    p = LayerParams(np.zeros((2, 3), np.int16), np.full(2, nx.ONE, np.int32), nx.ONE // 2)
    m = model_of(dense("h", [Edge("input")], 2), input_shape=(3,))
    m.params = {"h": p}
    assert m.validate() is m


# -- learning-rate shifts stay inside the numeric contract -----------------------------------------
@pytest.mark.parametrize("weight_frac, lr_shift, decays", [
    (8, 40, 0),     # a valid model whose weight update shifts by 32 - 8 + 40 = 64 at once
    (12, 36, 40),   # the default format; a schedule that decays past 40 stops there, 32 - 12 + 40 = 60
])
def test_tiny_learning_rate_never_wrecks_the_weights(weight_frac, lr_shift, decays):
    """docs/numerics.md §8: stochastic_shift is defined for s <= 62 only, and the weight
    update shifts by 32 - weight_frac + the effective lr_weight_shift (§6c). A learning
    rate of 2^-40 or less must then either be refused (ModelError) or move the weights
    by at most a few LSBs; it must never push them to saturation."""
    from edgelearn.model import Schedule
    model = mlp("lr", [64, 32, 10], weight_frac=weight_frac,
                learning=Learning(lr_weight_shift=lr_shift, lr_threshold_shift=40, lr_leak_shift=40))
    if decays:
        model.schedule = Schedule(every=1, steps=decays, learned=decays)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 64), dtype=np.uint8)
    y = rng.integers(0, 10, 20)
    try:
        net = FixedSTOP(init_params(model))
        w0 = net.weights.astype(np.int64)
        for i in range(len(x)):
            net.run(x[i:i + 1], y[i:i + 1], learn=True)
    except ModelError as e:
        assert "shift" in str(e)
        return
    moved = np.abs(net.weights.astype(np.int64) - w0).max()
    assert moved <= 16, f"a 2^-{lr_shift} learning rate moved a weight by {moved} LSBs"


def test_validation_refuses_what_the_contract_cannot_run():
    import pytest
    from edgelearn.model import Layer, ModelError, Neuron, init_params, mlp, Edge
    from edgelearn import numerics as nx
    # a layer may not take the input's name
    m = mlp("m", [4, 3])
    m.layers = (Layer("input", "dense", (Edge("input"),), (3,), Neuron("lif")),)
    with pytest.raises(ModelError, match="reserved name"):
        m.validate_structure()
    # wider than the hidden error's exact int64 sum allows
    with pytest.raises(ModelError, match="at most 65535"):
        mlp("wide", [4, 70000, 3]).validate_structure()
    # an IF neuron that leaks is a contradiction, wherever the parameters came from
    m = init_params(mlp("if", [4, 3], hidden=Neuron("if"), readout=Neuron("if")))
    m.params["readout"].leak = nx.ONE - 1
    with pytest.raises(ModelError, match="'if' neuron does not leak"):
        m.validate()
