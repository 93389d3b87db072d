"""A new neuron kind is one op module plus a registry entry: a kind defined and registered
by this test alone runs, and learns, in the float and fixed executors."""
from dataclasses import replace

import numpy as np
import pytest
from numba import njit

from edgelearn import numerics as nx
from edgelearn.errors import ModelError
from edgelearn.executors import EXECUTORS, Exactness, bit_exact, make_learner
from edgelearn.model import Learning, Neuron, init_params, mlp
from edgelearn.modelblob import to_blob
from edgelearn import native
from edgelearn.native import init_status
from edgelearn.ops import NEURONS, NeuronKind, registered_neuron
from edgelearn.ops.neurons.lif import Params, State
from edgelearn.ops.registry import FIXED_STEP_SIGNATURE


# -- the toy op module: integrate-and-fire with a hard reset to zero --------------------------
def hard_reset_float(current, state, params):
    """U = a V + I; s = U >= th; V = 0 where s, else U."""
    u = params.leak * state.membrane + current
    spikes = (u >= params.threshold).astype(np.float64)
    return spikes, State(u * (1.0 - spikes), u)


@njit(FIXED_STEP_SIGNATURE, cache=True)
def hard_reset_fixed(cur, a, th, reset_shift, V, s, U):
    for j in range(V.shape[0]):
        u = nx.sat32(nx.mul_state(a, V[j]) + np.int64(cur[j]))
        U[j] = u
        s[j] = 1 if u >= th[j] else 0
        V[j] = 0 if u >= th[j] else u


def toy_kind() -> NeuronKind:
    return NeuronKind(name="hard_reset", code=len(NEURONS), spiking=True, leak_fixed_at_one=False,
                      readout_only=False, Params=Params, State=State, step_float=hard_reset_float,
                      step_fixed=hard_reset_fixed, c_symbol="", buffers=("membrane", "potential", "spikes"),
                      exactness={"float": Exactness.MATH, "fixed": Exactness.BIT})


def toy_model():
    return init_params(mlp("toy", [64, 32, 10], hidden=Neuron("hard_reset", threshold=0.5, leak=0.75),
                           learning=Learning(T=8, seed=3)))


def reference_raster(model, sample) -> np.ndarray:
    """The hidden layer's spikes, stepped here by hand in the contract's integers."""
    p = model.params["fc1"]
    x = sample.astype(np.int64)                                     # direct input, Q0.8
    cur = np.array([nx.sat32(nx.round_shift(int(v), 12 + 8 - 16)) for v in p.weight.astype(np.int64) @ x])
    V, rows = np.zeros(32, dtype=np.int64), []
    for _ in range(model.learning.T):
        U = np.array([nx.sat32(nx.mul_state(p.leak, v) + c) for v, c in zip(V, cur)])
        s = U >= p.threshold
        V = np.where(s, 0, U)
        rows.append(s.astype(np.uint8))
    return np.array(rows)


def test_a_registered_kind_runs_and_learns_in_float_and_fixed():
    from edgelearn.datasets import load_digits
    data = load_digits()
    with registered_neuron(toy_kind()):
        model = toy_model()
        fixed, float_ = make_learner(model.copy(), "fixed"), make_learner(model.copy(), "float")
        # it is the toy's dynamics that ran: a hard reset, not LIF's subtraction
        sample = data.x_train[0]
        np.testing.assert_array_equal(fixed.spike_raster(sample)[:, :32], reference_raster(model, sample))
        lif = make_learner(init_params(mlp("lif", [64, 32, 10], hidden=Neuron("lif", threshold=0.5, leak=0.75),
                                           learning=Learning(T=8, seed=3))), "fixed")
        assert not np.array_equal(lif.spike_raster(sample)[:, :32], reference_raster(model, sample))
        assert np.array_equal(float_.spike_raster(sample)[:, :32], reference_raster(model, sample))
        for net in (fixed, float_):
            before = net.to_model().params["fc1"].weight.copy()
            for i in range(100):
                net.run(data.x_train[i:i + 1], data.y_train[i:i + 1], learn=True)
            assert not np.array_equal(net.to_model().params["fc1"].weight, before)
            correct = np.mean(np.argmax(net.run(data.x_test[:200], None, learn=False), axis=1) == data.y_test[:200])
            assert correct > 0.3          # 100 online samples lift it well above chance (0.1)
        # the C runtime has no twin of it: the executor is refused, and so is the blob by the C loader
        with pytest.raises(ModelError, match="neuron kind 'hard_reset' has no 'c' executor"):
            make_learner(model, "c")
        assert init_status(to_blob(model)) == native.load_native().lib.EL_ERR_UNKNOWN_CODE
    with pytest.raises(ModelError, match="unknown neuron kind 'hard_reset'"):
        toy_model()


def test_codes_only_append():
    kind = toy_kind()
    with pytest.raises(ValueError, match="next free code"):
        with registered_neuron(replace(kind, code=0)):
            pass
    with pytest.raises(ValueError, match="registered already"):
        with registered_neuron(replace(kind, name="lif")):
            pass
    assert "hard_reset" not in NEURONS


def test_executors_declare_their_exactness():
    assert set(EXECUTORS) >= {"float", "fixed", "c"}
    assert bit_exact() == ("fixed", "c")
    for name, runtimes in EXECUTORS.items():
        for cls in runtimes.values():
            for method in ("run", "health", "buffers", "to_model"):
                assert callable(getattr(cls, method)), (name, cls, method)
