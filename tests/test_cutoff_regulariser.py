"""The float twin's anytime inference (docs/numerics.md §6b) and its RCS regulariser
(edgelearn/rules/stop/float.py, after Wu et al., arXiv 2301.09522): the regulariser's
errors are its gradient (complex-step), weight 0 changes nothing, on digits it raises the
early/late cosine similarity, and infer / score_trajectories agree with run."""
import copy

import numpy as np
import pytest
from complex_step import H, complex_steps, layer_grads

from edgelearn.contract import CUTOFF_NEVER
from edgelearn.errors import ModelError
from edgelearn.model import Cutoff, Learning, Neuron, init_params, mlp
from edgelearn.rules.stop.float import (FloatSTOP, cosine, late_steps, rcs, rcs_grad,
                                        top2_gaps)



def small_model(sizes, readout="lif", T=6, seed=3, update="sample", rule="stop", encoding="direct"):
    model = mlp("rcs", sizes, encoding=encoding, readout=Neuron(readout, leak=0.8),
                hidden=Neuron("lif", leak=0.75),
                learning=Learning(T=T, surrogate_shift=1, update=update, rule=rule, seed=seed))
    return init_params(model, weight_gain=2.5)


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


# -- (a) the regulariser's gradient --------------------------------------------------------
@pytest.mark.parametrize("T,n,seed", [(8, 5, 0), (6, 12, 1), (3, 1, 2)])
def test_rcs_grad_is_the_complex_step_derivative_of_the_reciprocal_cosine(T, n, seed):
    rng = np.random.default_rng(seed)
    B = 2
    r = rng.random((T, B, n)) * (rng.random((T, B, n)) < 0.7)       # non-negative, some zeros
    r[0, 0] = 0.0                                                   # a silent step too
    q = r[T - late_steps(T, 0.25):].mean(axis=0)                    # the detached target
    cs = np.mean(cosine(r, q), axis=0)
    assert np.allclose(1.0 / (cs + 1e-5), rcs(r, q))
    for t in range(T):
        g = rcs_grad(r[t], q, cs, T)
        ref = np.zeros_like(g)
        for b in range(B):
            for i in range(n):
                rc = r.astype(complex)
                rc[t, b, i] += 1j * H
                ref[b, i] = rcs(rc, q)[b].imag / H
        assert np.linalg.norm(ref) > 1e-6
        assert rel_err(g, ref) < 1e-9
    # and a central difference agrees too (a check on the check)
    t, b, i, h = T - 1, 1, 0, 1e-6
    up, dn = r.copy(), r.copy()
    up[t, b, i] += h
    dn[t, b, i] -= h
    assert abs((rcs(up, q)[b] - rcs(dn, q)[b]) / (2 * h) - rcs_grad(r[t], q, cs, T)[b, i]) < 1e-5


def complex_loss(net: FloatSTOP, x, label, W, th, a, detach_above, weight, q, mask):
    """weight * mask * mean_l rcs_l in complex arithmetic (complex_step.complex_steps, as
    test_stop.loss_complex), r = s + relu(V) keeping V where Re V > 0; q (per layer) and mask
    are the detached targets of the inference pass."""
    r = {l: [] for l in net.regularised}
    for step in complex_steps(net, x, W, th, a, detach_above):
        for l in r:
            out, V = step[l]
            r[l].append(out + np.where(V.real > 0, V, 0))
    total = sum(rcs(np.array(r[l])[:, None, :], q[l])[0] for l in r)
    return weight * mask * total / len(r)


def accumulated(net: FloatSTOP, x, label):
    """The gradient sums of one learning sample (update 'sample': captured, not applied)."""
    captured = []
    net.apply = lambda g, scale=1.0: captured.append(copy.deepcopy(g))
    net.run(x[None], np.array([label]), learn=True)
    return captured[0]


def labelled_correct(net, x):
    """A label the late window predicts (the regulariser's mask is on), or None."""
    for label in range(net.W[-1].shape[0]):
        inputs = list(FloatSTOP(net.model).batch_inputs(x[None]))
        if net.regulariser_targets(inputs, np.array([label]))["correct"][0]:
            return label
    return None


@pytest.mark.parametrize("sizes,readout,seed", [([7, 5, 4], "li", 3), ([7, 6, 4], "lif", 3),
                                                ([6, 5, 4, 3], "li", 7), ([6, 8, 3], "lif", 5),
                                                ([6, 5, 4, 3], "lif", 2)])
def test_regulariser_updates_are_its_complex_step_gradient(sizes, readout, seed):
    """With parameters constant during the sample, the update the regulariser adds to STOP's
    is the exact gradient of w * mask * mean_l 1/cs_l (reset detached, upper membranes
    detached in time as for STOP's own loss), thresholds and leaks included."""
    model = small_model(sizes, readout, seed=seed)
    weight = 0.7
    net = FloatSTOP(model, regulariser=weight)
    found = []          # inputs the late window predicts, by their lowest cs (the most gradient)
    for k in range(40):
        x = np.random.default_rng(k).integers(0, 256, sizes[0]).astype(np.uint8)
        label = labelled_correct(net, x)
        if label is not None:
            targets = net.regulariser_targets(list(net.batch_inputs(x[None])), np.array([label]))
            low = min(float(v[0]) for v in targets["cs"].values())
            if low > 0.1:                    # not a layer silent late (q = 0: no gradient at all)
                found.append((low, k, label))
    assert found, "degenerate test: no input the late window predicts"
    _, k, label = min(found)
    x = np.random.default_rng(k).integers(0, 256, sizes[0]).astype(np.uint8)
    targets = net.regulariser_targets(list(net.batch_inputs(x[None])), np.array([label]))
    q = {l: targets["q"][l] for l in net.regularised}
    diff = {key: [a - b for a, b in zip(accumulated(FloatSTOP(model, regulariser=weight), x, label)[key],
                                          accumulated(FloatSTOP(model), x, label)[key])]
            for key in ("W", "th", "a")}
    for l in range(len(sizes) - 1):
        ref = layer_grads(net, l, lambda W, th, a: complex_loss(net, x, label, W, th, a, l, weight, q, 1.0))
        refW, refth, refa = ref["W"], ref["th"], ref["a"]
        if l > max(net.regularised):         # the readout is not regularised
            assert not np.any(diff["W"][l]) and not np.any(refW) and diff["a"][l] == 0 and refa == 0
            continue
        assert np.linalg.norm(refW) > 1e-4, f"degenerate test: no regulariser gradient reaches layer {l}"
        assert rel_err(diff["W"][l], refW) < 1e-8
        if net.learn_th[l]:
            assert np.linalg.norm(refth) > 1e-4
            assert rel_err(diff["th"][l], refth) < 1e-8
        assert abs(refa) > 1e-6
        assert abs(diff["a"][l] - refa) <= 1e-8 * abs(refa)


def test_no_regulariser_gradient_when_the_late_prediction_is_wrong():
    model = small_model([7, 6, 4])
    x = np.random.default_rng(0).integers(0, 256, 7).astype(np.uint8)
    net = FloatSTOP(model, regulariser=1.0)
    good = labelled_correct(net, x)
    assert good is not None
    wrong = (good + 1) % 4
    a, b = accumulated(FloatSTOP(model, regulariser=1.0), x, wrong), accumulated(FloatSTOP(model), x, wrong)
    assert all(np.array_equal(u, v) for u, v in zip(a["W"], b["W"]))
    a, b = accumulated(FloatSTOP(model, regulariser=1.0), x, good), accumulated(FloatSTOP(model), x, good)
    assert not np.array_equal(a["W"][0], b["W"][0])


@pytest.mark.parametrize("kwargs,match", [({"regulariser": -0.1}, "regulariser"),
                                          ({"regulariser": float("nan")}, "regulariser"),
                                          ({"regulariser": float("inf")}, "regulariser"),
                                          ({"regulariser": "1"}, "regulariser"),
                                          ({"late_fraction": 0.0}, "late_fraction"),
                                          ({"late_fraction": 1.5}, "late_fraction"),
                                          ({"late_fraction": float("nan")}, "late_fraction"),
                                          ({"late_fraction": True}, "late_fraction")])
def test_bad_regulariser_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FloatSTOP(small_model([7, 4]), **kwargs)


@pytest.mark.parametrize("sizes,rule", [([7, 4], "stop"), ([7, 6, 4], "readout")])
def test_a_regulariser_without_a_trainable_spiking_hidden_layer_is_refused(sizes, rule):
    model = small_model(sizes, rule=rule)
    FloatSTOP(model)                                     # off: fine
    with pytest.raises(ValueError, match="hidden"):
        FloatSTOP(model, regulariser=0.1)


def test_regulariser_options_are_keyword_only():
    with pytest.raises(TypeError):
        FloatSTOP(small_model([7, 4]), 0.5)


# -- (b) weight 0 is the plain rule --------------------------------------------------------
@pytest.mark.parametrize("update,batch,encoding", [("step", 1, "direct"), ("sample", 1, "rate"),
                                                   ("sample", 4, "direct"), ("step", 1, "rate")])
def test_weight_zero_trains_bit_identically(update, batch, encoding):
    model = small_model([16, 12, 5], update=update, encoding=encoding, T=8)
    rng = np.random.default_rng(4)
    xs = rng.integers(0, 256, (16, 16)).astype(np.uint8)
    ys = np.argmax(FloatSTOP(model).run(xs, None, learn=False), axis=1)   # labels the regulariser takes
    plain, zero, on = FloatSTOP(model), FloatSTOP(model, regulariser=0.0, late_fraction=0.5), \
        FloatSTOP(model, regulariser=0.5)
    for i in range(0, 16, batch):
        outs = [net.run(xs[i:i + batch], ys[i:i + batch], learn=True) for net in (plain, zero, on)]
        assert np.array_equal(outs[0], outs[1])
    for key, value in plain.buffers().items():
        assert np.array_equal(value, zero.buffers()[key]), key
    assert np.array_equal(plain.rng_input, zero.rng_input)
    # the regulariser does act (the comparison above can fail)
    assert any(not np.array_equal(value, on.buffers()[key]) for key, value in plain.buffers().items())
    # and it draws the input stream once per sample, as the plain rule
    assert np.array_equal(plain.rng_input, on.rng_input)


# -- (c) on digits, it raises the early/late similarity ------------------------------------
def digits_similarity(weight, data, T=16, n_train=400, n_test=200):
    model = init_params(mlp("rcs-digits", [64, 64, 10], learning=Learning(T=T, seed=2)))
    net = FloatSTOP(model, regulariser=weight, late_fraction=0.25)
    for i in range(n_train):
        net.run(data.x_train[i:i + 1], data.y_train[i:i + 1], learn=True)
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    sim = net.similarity(x)
    early = net.similarity(x, early_fraction=0.25)
    traj = net.score_trajectories(x)
    acc = float(np.mean(np.argmax(traj[:, -1], axis=1) == y))
    gap = top2_gaps(traj[:, T // 4 - 1])           # the readout's confidence after a quarter of T
    return {"cs": {l: float(v.mean()) for l, v in sim.items()},
            "early": {l: float(v.mean()) for l, v in early.items()},
            "acc": acc, "gap": float(gap.mean())}


def test_regulariser_raises_early_late_similarity_on_digits():
    """The hidden layer's representation r[t] (what the readout reads) is closer to its late
    mean, over all steps and over the first quarter, on held-out digits. Measured (400
    training samples, 200 test, T = 16, weight 10): cs 0.980 -> 0.993, first-quarter cs
    0.951 -> 0.975, accuracy 0.85 -> 0.815. The readout's own cs (not regularised) falls
    slightly, 0.968 -> 0.956: the effect does not reach the readout here (docs/cutoff.md)."""
    from edgelearn.datasets import load_digits
    data = load_digits()
    off, on = digits_similarity(0.0, data), digits_similarity(10.0, data)
    print("\nwithout", off, "\nwith   ", on)
    assert on["cs"][0] > off["cs"][0] + 0.005
    assert on["early"][0] > off["early"][0] + 0.01
    assert on["acc"] > off["acc"] - 0.1      # it does not wreck the classifier


# -- (d) infer and score_trajectories ------------------------------------------------------
@pytest.mark.parametrize("readout,encoding", [("lif", "direct"), ("li", "direct"), ("lif", "rate"),
                                              ("li", "rate")])
def test_trajectory_ends_at_runs_scores_and_infer_without_cutoff_is_run(readout, encoding):
    model = small_model([16, 12, 5], readout=readout, encoding=encoding, T=8)
    xs = np.random.default_rng(2).integers(0, 256, (6, 16)).astype(np.uint8)
    scale = 1.0 if readout == "lif" else 65536.0
    ran = FloatSTOP(model).run(xs, None, learn=False)
    traj = FloatSTOP(model).score_trajectories(xs)
    assert traj.shape == (6, 8, 5)
    assert np.array_equal(traj[:, -1], ran * scale)
    scores, steps = FloatSTOP(model).infer(xs, cutoff=False)
    assert np.array_equal(scores, ran * scale) and np.array_equal(steps, np.full(6, 8))
    if readout == "lif":
        assert np.array_equal(traj, np.round(traj)) and np.all(np.diff(traj, axis=1) >= 0)   # spike counts


def test_infer_without_a_cutoff_in_the_model_raises():
    with pytest.raises(ModelError, match="cutoff"):
        FloatSTOP(small_model([7, 4])).infer(np.zeros((2, 7), dtype=np.uint8))


@pytest.mark.parametrize("readout,encoding", [("lif", "direct"), ("li", "direct"), ("lif", "rate"), ("li", "events")])
def test_infer_stops_where_the_trajectory_first_clears_its_margin(readout, encoding):
    T = 8
    model = small_model([16, 12, 5], readout=readout, encoding=encoding, T=T)
    rng = np.random.default_rng(3)
    shape = (12, T, 16) if encoding == "events" else (12, 16)
    xs = (rng.random(shape) < 0.5).astype(np.uint8) if encoding == "events" else \
        rng.integers(0, 256, shape).astype(np.uint8)
    gaps = top2_gaps(FloatSTOP(model).score_trajectories(xs))         # [B, T]
    assert gaps[:, :-1].max() > 0, "degenerate test: no leader ever"
    margins = [int(np.quantile(gaps[:, t], 0.7)) for t in range(T - 1)] + [0]   # about 30% stop each step
    margins[2] = CUTOFF_NEVER
    model.cutoff = Cutoff(tuple(margins), 0.01)
    model.validate()
    net = FloatSTOP(model)
    scores, steps = net.infer(xs)
    # the reference: each sample's full trajectory from the input stream's state where the
    # previous sample stopped, then the stream advanced by the steps run only (§6b)
    walk = FloatSTOP(model)
    for b in range(len(xs)):
        kept = walk.rng_input.copy()
        traj = walk.score_trajectories(xs[b:b + 1])[0]
        gap = top2_gaps(traj)
        clears = [t for t in range(T - 1) if gap[t] > margins[t]]
        expect = clears[0] + 1 if clears else T
        assert steps[b] == expect
        assert np.array_equal(scores[b], traj[expect - 1])
        walk.rng_input[:] = kept
        for t in range(expect):
            walk.encode(xs[b], t)
    assert np.array_equal(net.rng_input, walk.rng_input)
    assert 1 < len(set(steps.tolist())), "degenerate test: every sample stops at the same step"
    assert 3 not in steps and T in steps and steps.min() < T   # the never-margin after step 2
    if encoding == "rate":
        assert steps.sum() < len(xs) * T
        full = FloatSTOP(model)
        full.infer(xs, cutoff=False)
        assert not np.array_equal(net.rng_input, full.rng_input)    # fewer draws than T per sample


def test_infer_runs_on_a_batch_as_sample_by_sample():
    model = small_model([16, 12, 5], T=8)
    xs = np.random.default_rng(5).integers(0, 256, (9, 16)).astype(np.uint8)
    model.cutoff = Cutoff((1, 1, 1, 0, 0, 2, 1, 0), 0.05)
    batch = FloatSTOP(model).infer(xs)
    one = [FloatSTOP(model).infer(xs[b:b + 1]) for b in range(9)]
    assert np.array_equal(batch[0], np.concatenate([o[0] for o in one]))
    assert np.array_equal(batch[1], np.concatenate([o[1] for o in one]))


def test_trajectories_feed_the_calibration():
    """The float twin's spike-count trajectories are integer-valued and calibrate as the
    fixed twin's do (a smoke test of the units)."""
    from edgelearn import cutoff
    model = small_model([16, 12, 5], T=8)
    xs = np.random.default_rng(6).integers(0, 256, (40, 16)).astype(np.uint8)
    traj = FloatSTOP(model).score_trajectories(xs)
    labels = np.argmax(traj[:, -1], axis=1)
    margins = cutoff.calibrate(traj.astype(np.int64), labels, 0.1, min_support=5)
    assert len(margins) == 8 and margins[-1] == 0
