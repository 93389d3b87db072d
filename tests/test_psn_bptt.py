"""Training a PSN stack through time on the host (edgelearn/psn_bptt.py, docs/psn.md §3): the batched
forward is the float twin's, the analytic gradient (weights, taps through the straight-through
projection, thresholds) equals the complex-step derivative of the loss with every temporal path, the
trainer lowers the loss, and the quantised network (FloatPSN.to_net, thresholds included) scores in
fixed point what the twin scores."""
import numpy as np

from edgelearn import psn_bptt as bp
from edgelearn.numerics import ONE
from edgelearn.ops.layers import psn
from edgelearn.psnnet import FloatPSN, make_net, phi, runtime

STEP = 1e-30


def loss_complex(fl: FloatPSN, X, labels, W, c, th, scale):
    """The batch's mean cross-entropy of softmax(scale sum_t U), step by step in complex arithmetic
    (independent of psn_bptt's batched passes): a spike is H(Re(h - th)) + i phi(Re(h - th)) Im(h - th);
    every lag of every filter carries its imaginary part (nothing detached in time)."""
    B, T, _ = X.shape
    E = 0j
    for b in range(B):
        hist = [np.zeros((T, w.shape[0]), dtype=complex) for w in W]
        score = np.zeros(W[-1].shape[0], dtype=complex)
        for t in range(T):
            inp = X[b, t].astype(complex)
            for l in range(len(W)):
                hist[l][t] = W[l] @ inp
                h = sum(c[l][:, k] * hist[l][t - k * fl.dilation[l]]
                        for k in range(c[l].shape[1]) if t - k * fl.dilation[l] >= 0)
                if l == len(W) - 1:
                    score = score + h
                else:
                    v = h - th[l]
                    inp = (v.real >= 0).astype(float) + 1j * phi(v.real, fl.k) * v.imag
        z = scale * score
        E = E + np.log(np.sum(np.exp(z))) - z[labels[b]]
    return E / B


def twin(project_taps: bool, seed: int = 4):
    """A 4-6-5-3 twin (dilations 1, 3) whose hidden neurons sit near their thresholds, mixed taps,
    thresholds spread around 0.25, and a batch of three sequences."""
    net = make_net([4, 6, 5, 3], taps=3, dilations=[1, 3], seed=seed, T=12, weight_scale=2.0, threshold=0.25)
    fl = FloatPSN.of(net, project_taps=project_taps)
    rng = np.random.default_rng(seed)
    for l in range(len(fl.c) - 1):
        fl.c[l] = psn.tap_values(rng.choice([-3, -2, -1, 1, 2, 3], size=fl.c[l].shape))
        fl.th[l] = fl.th[l] + rng.normal(0, 0.05, fl.th[l].shape)
    X = rng.integers(0, 256, (3, 12, 4)) / 256.0
    return fl, X, np.array([0, 2, 1])


def complex_step(fl, X, labels, scale, which, l, taps):
    """d loss / d (W, c or th)_l, one parameter at a time; ``taps`` are the filters' values."""
    W, c, th = [w.astype(complex) for w in fl.W], [t.astype(complex) for t in taps], \
        [np.asarray(t, complex) for t in fl.th]
    target = {"W": W, "c": c, "th": th}[which][l]
    out = np.zeros(target.shape)
    for idx in np.ndindex(*target.shape):
        target[idx] += 1j * STEP
        out[idx] = loss_complex(fl, X, labels, W, c, th, scale).imag / STEP
        target[idx] -= 1j * STEP
    return out


def test_the_gradient_through_time_is_the_complex_step_derivative():
    fl, X, labels = twin(project_taps=False)
    scale = 0.5
    loss, _, gW, gc, gth = bp.loss_and_grads(fl, X, labels, scale)
    assert abs(loss - loss_complex(fl, X, labels, fl.W, fl.c, fl.th, scale).real) < 1e-12
    for l in range(len(fl.W)):
        got = {"W": gW[l], "c": gc[l], "th": gth[l]}
        for which in ("W", "c", "th") if l < len(fl.W) - 1 else ("W", "c"):
            want = complex_step(fl, X, labels, scale, which, l, fl.c)
            assert np.abs(want).max() > 1e-2, f"vacuous: no gradient reaches {which} of layer {l}"
            np.testing.assert_allclose(got[which], want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_the_taps_learn_straight_through_the_projection():
    """With latent taps off the powers of two, the forward reads P(c~) and the gradient by c~ is the
    derivative by the projected taps."""
    fl, X, labels = twin(project_taps=True, seed=7)
    rng = np.random.default_rng(7)
    for l in range(len(fl.c) - 1):
        fl.c[l] = fl.c[l] * rng.uniform(0.8, 1.2, fl.c[l].shape)
    assert not np.array_equal(fl.taps()[0], fl.c[0])
    _, _, _, gc, _ = bp.loss_and_grads(fl, X, labels, 0.5)
    for l in range(len(fl.c) - 1):
        want = complex_step(fl, X, labels, 0.5, "c", l, fl.taps())
        np.testing.assert_allclose(gc[l], want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_the_batched_forward_is_the_twins_online_forward():
    fl, _, _ = twin(project_taps=True)
    samples = np.random.default_rng(3).integers(0, 256, (4, 12, 4)).astype(np.uint8)
    got = bp.forward(fl, bp.inputs(fl, samples))
    want = fl.run(samples, None, learn=False)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_training_lowers_the_loss_and_the_fixed_network_scores_as_the_twin():
    """Two classes told apart only by order (a pulse on channel 0 then, 4 steps later, on channel 1,
    or the other way round; at a random step: with make_net's equal taps the two orders give the same
    summed scores but where the sequence's end cuts them, so the taps must learn), 60 epochs on 64
    sequences; the device's network
    (to_net: tap codes, Q12 weights, Q16 thresholds) in the bit-exact reference gives the twin's
    scores to within the quantisation."""
    rng = np.random.default_rng(0)
    n, T = 64, 16
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 40, (n, T, 3)).astype(np.uint8)
    for i, t0 in enumerate(rng.integers(0, 8, n)):
        x[i, t0, y[i]] = 255
        x[i, t0 + 4, 1 - y[i]] = 255
    net = make_net([3, 16, 2], taps=4, dilations=[2], seed=1, T=T, weight_scale=2.0, threshold=0.5)
    fl = FloatPSN.of(net)
    X = bp.inputs(fl, x)
    losses = bp.train(fl, X, y, epochs=60, batch=16, lr=3e-2, seed=1)
    assert losses[-1] < 0.6 * losses[0]
    assert bp.accuracy(bp.evaluate(fl, X), y) > 0.9
    assert not np.allclose(fl.th[0], 0.5), "the thresholds did not learn"
    assert not np.all(fl.taps()[0] == 0.5), "the taps did not learn"
    dev = fl.to_net(net)
    np.testing.assert_array_equal(dev.layers[0].thresholds, np.floor(fl.th[0] * ONE + 0.5).astype(np.int32))
    np.testing.assert_array_equal(psn.tap_values(dev.layers[0].taps), fl.taps()[0])
    fixed = runtime(dev).run(x, None, learn=False) / ONE
    twin_scores = bp.evaluate(fl, X)
    assert np.mean(np.argmax(fixed, 1) == np.argmax(twin_scores, 1)) > 0.95
    assert np.corrcoef(fixed.ravel(), twin_scores.ravel())[0, 1] > 0.99
