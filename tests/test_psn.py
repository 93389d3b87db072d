"""The multiplication-free channel-wise parallel spiking neuron (docs/psn.md): the float twin's online
rule equals the complex-step gradient of the loss (the layers above a learning one detached in time,
as STOP's spatial errors are), for the weights and the taps of every layer; the tap projection; the
fixed-point reference is deterministic, tracks the twin, and keeps memory independent of T; the worked
values of docs/numerics.md §5e."""
import numpy as np
import pytest

from edgelearn.numerics import ONE, new_rng
from edgelearn.ops.layers import psn
from edgelearn.ops.neurons import threshold
from edgelearn import plan
from edgelearn.psnnet import FloatPSN, make_net, phi, runtime, to_model, trained

H = 1e-30


def loss_complex(fl: FloatPSN, sample, label, W, c, detach_above: int):
    """sum_t 1/2 |U_L[t] - y|^2 in complex arithmetic: a spike is H(Re) + i phi(Re) Im; the filters
    of the layers above ``detach_above`` read their lags > 0 with the real part only (the temporal
    paths that per-step errors do not follow)."""
    X = fl.inputs(sample)
    T, nl = fl.T, len(W)
    hist = [np.zeros((T, w.shape[0]), dtype=complex) for w in W]
    y = np.zeros(W[-1].shape[0])
    y[label] = 1.0
    E = 0j
    for t in range(T):
        inp = X[t].astype(complex)
        for l in range(nl):
            hist[l][t] = W[l] @ inp
            h = np.zeros(W[l].shape[0], dtype=complex)
            for k in range(c[l].shape[1]):
                tt = t - k * fl.dilation[l]
                if tt < 0:
                    continue
                v = hist[l][tt] if (k == 0 or l <= detach_above) else hist[l][tt].real.astype(complex)
                h = h + c[l][:, k] * v
            if l == nl - 1:
                U = h
            else:
                inp = (h.real >= fl.th[l]).astype(float) + 1j * phi(h.real - fl.th[l], fl.k) * h.imag
        E = E + 0.5 * np.sum((U - y) ** 2)
    return E


def complex_grads(fl, sample, label, l):
    """d loss / d W_l and d loss / d c_l by complex steps, one parameter at a time."""
    base_W = [w.astype(complex) for w in fl.W]
    base_c = [cl.astype(complex) for cl in fl.c]
    gW = np.zeros(fl.W[l].shape)
    gc = np.zeros(fl.c[l].shape)
    for idx in np.ndindex(*gW.shape):
        W = [w.copy() for w in base_W]
        W[l][idx] += 1j * H
        gW[idx] = loss_complex(fl, sample, label, W, base_c, l).imag / H
    for idx in np.ndindex(*gc.shape):
        c = [cl.copy() for cl in base_c]
        c[l][idx] += 1j * H
        gc[idx] = loss_complex(fl, sample, label, base_W, c, l).imag / H
    return gW, gc


def active_twin(sizes, taps, dilations, T, seed):
    """A twin whose hidden neurons sit near their thresholds (the surrogate is non-zero often)."""
    net = make_net(sizes, taps=taps, dilations=dilations, seed=seed, T=T, weight_scale=2.0, threshold=0.25)
    fl = FloatPSN.of(net, project_taps=False)
    rng = np.random.default_rng(seed)
    for l in range(len(fl.c) - 1):              # mixed signs and sizes, powers of two
        fl.c[l] = psn.tap_values(rng.choice([-3, -2, -1, 1, 2, 3], size=fl.c[l].shape))
    return fl, rng.integers(0, 256, (T, sizes[0])).astype(np.uint8)


@pytest.mark.parametrize("sizes,taps,dilations", [([5, 6, 3], 3, [2]), ([4, 6, 5, 3], 3, [1, 3])])
def test_the_online_rule_is_the_complex_step_gradient(sizes, taps, dilations):
    fl, sample = active_twin(sizes, taps, dilations, T=14, seed=4)
    label = 1
    _, _, gW, gc = fl.run_sample(sample, label, learn=True, apply=False)
    for l in range(len(fl.W)):
        want_W, want_c = complex_grads(fl, sample, label, l)
        assert np.abs(want_W).max() > 1e-3, "the check is vacuous: no gradient reaches this layer"
        np.testing.assert_allclose(gW[l], want_W, rtol=1e-9, atol=1e-12 * np.abs(want_W).max())
        if l < len(fl.W) - 1:
            np.testing.assert_allclose(gc[l], want_c, rtol=1e-9, atol=1e-12 * np.abs(want_c).max())


def test_the_rule_agrees_with_finite_differences_where_no_spike_flips():
    """A second, independent check on the readout and the taps of the layer below it: central
    differences of the real loss (spikes fixed by a small step) match the online sums."""
    fl, sample = active_twin([4, 5, 3], 2, [3], T=10, seed=9)
    _, _, gW, _ = fl.run_sample(sample, 2, learn=True, apply=False)
    eps = 1e-6

    def loss(W, c):
        return loss_complex(fl, sample, 2, W, c, len(W)).real

    for idx in [(0, 0), (1, 3), (2, 4)]:
        Wp = [w.copy() for w in fl.W]
        Wm = [w.copy() for w in fl.W]
        Wp[1][idx] += eps
        Wm[1][idx] -= eps
        assert abs((loss(Wp, fl.c) - loss(Wm, fl.c)) / (2 * eps) - gW[1][idx]) < 1e-6


def test_the_projection_is_the_nearest_power_of_two_in_log2():
    v = np.array([1.0, 0.75, 0.7, 0.5, -0.25, -0.3, 2.0 ** -14, 2.0 ** -15, 0.0, 3.0, -2.0 ** -20])
    assert psn.tap_codes(v).tolist() == [1, 1, 2, 2, -3, -3, 15, 0, 0, 1, 0]      # 2^-15: below 2^-14.5
    assert psn.project(v).tolist() == [1.0, 1.0, 0.5, 0.5, -0.25, -0.25, 2.0 ** -14, 0.0, 0.0, 1.0, 0.0]
    q = np.arange(-15, 16)
    assert np.array_equal(psn.tap_codes(psn.tap_values(q)), q)          # codes round-trip


def test_sawtooth_dilations_cycle():
    assert psn.sawtooth(5, 4) == [1, 4, 16, 1, 4]
    assert psn.sawtooth(4, 3, period=2) == [1, 3, 1, 3]
    assert psn.ring_length(4, 16) == 49


def test_worked_values_of_the_contract():
    """docs/numerics.md §5e, one channel, K = 3, D = 2 (L = 5), taps +1, -1/2, +1/4."""
    taps = np.array([[1, -2, 3]], dtype=np.int8)
    ring = np.zeros((1, 5), dtype=np.int32)
    V, U, s = np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.uint8)
    th = np.array([ONE], dtype=np.int32)
    got = []
    for t, cur in enumerate([65536, 3, 40000, -7, 70001, 0]):
        h = np.array([cur], np.int32)
        psn.psn_filter(h, taps, 2, t % 5, ring)                      # the layer's filter, then its neuron
        threshold.step_fixed(h, ONE, th, 0, V, s, U)
        got.append((int(U[0]), int(s[0])))
    # t=2: 40000 - rs(65536, 1) = 7232; t=3: -7 - rs(3, 1) = -9; t=4: 70001 - 20000 + 16384 = 66385
    # (a spike); t=5: 0 - rs(-7, 1) + rs(3, 2) = 0 + 3 + 1 = 4
    assert got == [(65536, 1), (3, 0), (7232, 0), (-9, 0), (66385, 1), (4, 0)]
    assert psn.apply_tap(-2, 3) == -2 and psn.apply_tap(-2, -3) == 1 and psn.apply_tap(0, 99) == 0
    # the eligibility: inputs 128 (Q8) at t=0 and t=2, tap codes as above: at t=2, e = rs(128<<8, 0)
    # + (-rs(32768, 1)) = 16384
    xr = np.zeros((1, 5), np.int32)
    psn.psn_input_ring(np.array([128], np.int32), 8, 0, xr)
    psn.psn_input_ring(np.array([128], np.int32), 8, 2, xr)
    assert psn.psn_eligibility(taps, 0, 2, 2, xr, 0) == 16384
    W, rng = np.array([[100]], np.int16), new_rng(1 ^ 0xA5A5A5A5)
    psn.psn_update_weights(W, np.array([32768], np.int32), taps, 2, 2, xr, 26, rng)
    # p = 32768 * 16384 = 2^29; (2^29 + (859080876 >> 6)) >> 26 = 8
    assert int(W[0, 0]) == 92 and int(rng[0]) == 859080876


def stream(n, T, n_in, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, T, n_in)).astype(np.uint8), rng.integers(0, 3, n)


def online(device, xs, ys) -> np.ndarray:
    """Learn a stream one sample at a time (the device's online rule); the scores of each."""
    return np.concatenate([device.run(xs[i:i + 1], ys[i:i + 1], True) for i in range(len(xs))])


def test_the_fixed_reference_is_deterministic_and_learns():
    net = make_net([6, 10, 3], taps=4, dilations=[2], seed=2, T=20, weight_scale=2.0, threshold=0.25)
    xs, ys = stream(8, 20, 6, 1)
    a, b = runtime(net), runtime(net)
    assert np.array_equal(online(a, xs, ys), online(b, xs, ys))
    assert all(np.array_equal(a.buffers()[k], b.buffers()[k]) for k in a.buffers())
    assert not np.array_equal(a.weights, runtime(net).weights)
    assert a.run(xs[:2], None, False).any()                       # the readout hears the hidden spikes


def test_the_fixed_reference_tracks_the_float_twin():
    net = make_net([6, 12, 3], taps=3, dilations=[3], seed=5, T=24, weight_scale=2.0, threshold=0.25)
    xs, ys = stream(12, 24, 6, 2)
    fx, fl = runtime(net), FloatPSN.of(net, learn_taps=False)
    a = online(fx, xs, ys) / ONE
    b = fl.run(xs, ys, True)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    W = trained(fx).layers[0].weights / 2.0 ** 12
    assert np.abs(W - fl.W[0]).max() < 0.05 and np.abs(W - net.layers[0].weights / 4096).max() > 0.01


def test_training_memory_is_independent_of_T():
    """The arrays a learner allocates at T = 28, 112 and 448 (issue 12): the same bytes."""
    sizes, plans = [], []
    for T in (28, 112, 448):
        net = make_net([28, 64, 10], taps=4, dilations=[4], T=T)
        fx = runtime(net)
        xs, ys = stream(1, T, 28, 3)
        fx.run(xs, ys, True)
        sizes.append(sum(v.nbytes for v in fx.buffers().values()))
        plans.append(plan.arena_plan(to_model(net)))
    assert len(set(sizes)) == 1 and plans[0] == plans[1] == plans[2]
    rows = plans[0]
    assert rows["current_ring"] == 4 * (64 * psn.ring_length(4, 4) + 10 * 1)      # the readout: K = 1
    assert rows["input_trace"] == 4 * (28 * 13 + 64 * 1)                         # the input rings
