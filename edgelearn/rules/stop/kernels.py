"""STOP's fixed-point kernels (docs/numerics.md §5-6), each mirrored one for one by
targets/c/el_kernels.c: forward traces, spatial errors, gradient sums and their
application. Formats: weights int16 Q(15-wf).wf; everything else Q16 in int32 (traces,
errors, the surrogate); products and sums in int64."""
import numpy as np
from numba import njit

from ...numerics import ONE, STATE_FRAC, mul_state, round_shift, sat16, sat32, sat_sum, saturate, stochastic_shift
from ...ops.layers.dense import dense_back

@njit(cache=True)
def input_trace_step(a, x, x_frac, x_tr):
    """x^[t] = a * x^[t-1] + x[t]: one presynaptic trace per input (the leak is per layer)."""
    lift = STATE_FRAC - x_frac
    for i in range(x.shape[0]):
        x_tr[i] = sat32(mul_state(a, x_tr[i]) + (np.int64(x[i]) << lift))


@njit(cache=True)
def neuron_trace_step(a, V, s, th_tr, a_tr):
    """th~[t] = a * (th~[t-1] - s[t-1]);  a~[t] = a * a~[t-1] + V[t-1]. Reads the state
    before this step's neuron update."""
    for j in range(V.shape[0]):
        th_tr[j] = sat32(mul_state(a, np.int64(th_tr[j]) - ONE * np.int64(s[j])))
        a_tr[j] = sat32(mul_state(a, a_tr[j]) + np.int64(V[j]))


@njit(cache=True)
def surrogate(x, k):
    """Triangle of height 1 and half-width 2^k: max(0, 1 - |x| / 2^k), in Q16."""
    phi = ONE - round_shift(abs(np.int64(x)), k)
    return phi if phi > 0 else np.int64(0)


@njit(cache=True)
def spiking_output_error(s, U, th, label, k, d):
    """d = (s - y) * phi(U - th) for E = 1/2 |s - y|^2 with a one-hot target y."""
    for j in range(d.shape[0]):
        e = np.int64(s[j]) - (1 if j == label else 0)
        d[j] = sat32(e * surrogate(np.int64(U[j]) - th[j], k))


@njit(cache=True)
def hidden_error(W_up, d_up, U, th, w_frac, k, back, d):
    """d = (W_up^T d_up) * phi(U - th): a hidden layer's error below a dense layer. Event-driven
    over non-zero upper errors; ``back`` is an int64 scratch of len(d). The dense kind's
    ``dense_back`` followed by ``surrogate_error``, in one call (the HDL's datapath replays it)."""
    surrogate_error(back, dense_back(W_up, d_up, back), U, th, w_frac, k, d)


@njit(cache=True)
def surrogate_error(back, active, U, th, frac, k, d):
    """d = back 2^-frac * phi(U - th): a hidden layer's error from the errors of the layer
    above carried onto its outputs (``back``, by that layer's kind: W^T d for dense; frac its
    weight_frac, or log2 kh kw above an average pool). ``active``: how many errors above were
    non-zero; with none, every d is round_shift(0) = 0 and no surrogate is computed."""
    if active == 0:
        d[:] = 0
        return
    for j in range(d.shape[0]):
        g = sat32(round_shift(back[j], frac))
        d[j] = sat32(round_shift(g * surrogate(np.int64(U[j]) - th[j], k), STATE_FRAC))


@njit(cache=True)
def pass_error(back, active, frac, d):
    """d = back 2^-frac: the error of a layer without neurons (a pool), dE/d(its output), which
    the layer below it carries on; no surrogate."""
    if active == 0:
        d[:] = 0
        return
    for j in range(d.shape[0]):
        d[j] = sat32(round_shift(back[j], frac))


@njit(cache=True)
def apply_weight_grads(W, gW, shift, rng):
    """W -= SR(gW, shift) and clear gW; a draw per non-zero entry, row-major order."""
    for j in range(W.shape[0]):
        for i in range(W.shape[1]):
            if gW[j, i] != 0:
                W[j, i] = sat16(W[j, i] - stochastic_shift(gW[j, i], shift, rng))
                gW[j, i] = 0


@njit(cache=True)
def saturate_learned_rows(W, d, lo, hi):
    """W[j] = clamp(W[j], lo, hi) for the rows whose error d_j is non-zero (the only ones a
    per-step update changed). After the update's sat16 this is the update's sat8 exactly, as
    clamp(clamp(x, -2^15, 2^15-1), lo, hi) = clamp(x, lo, hi) for lo..hi inside int16: an int8
    layer's weights move as W = sat8(W - SR(d x^T)) (docs/numerics.md §5)."""
    for j in range(W.shape[0]):
        if d[j] != 0:
            for i in range(W.shape[1]):
                W[j, i] = min(max(W[j, i], lo), hi)


@njit(cache=True)
def saturate_weights(W, lo, hi):
    """W = clamp(W, lo, hi) over the whole matrix: ``saturate_learned_rows`` after an update
    once per sample or batch (``apply_weight_grads``), which may change any row."""
    for j in range(W.shape[0]):
        for i in range(W.shape[1]):
            W[j, i] = min(max(W[j, i], lo), hi)


@njit(cache=True)
def threshold_grads(d, th_tr, g):
    """g += d * (th~ - 1)."""
    for j in range(d.shape[0]):
        if d[j] != 0:
            g[j] = sat_sum(g[j], np.int64(d[j]) * (np.int64(th_tr[j]) - ONE))


@njit(cache=True)
def apply_threshold_grads(th, g, shift, floor, rng):
    """th -= SR(g, shift), never below ``floor``; clears g; a draw per non-zero g."""
    for j in range(th.shape[0]):
        if g[j] != 0:
            th[j] = max(floor, sat32(th[j] - stochastic_shift(g[j], shift, rng)))
            g[j] = 0


@njit(cache=True)
def leak_grad(d, a_tr):
    """sum_j d_j * a~_j: the per-layer leak's gradient."""
    acc = np.int64(0)
    for j in range(d.shape[0]):
        if d[j] != 0:
            acc = sat_sum(acc, np.int64(d[j]) * a_tr[j])
    return acc


@njit(cache=True)
def apply_leak_grad(a, g, shift, rng):
    """a - SR(g, shift) clamped to [0, 1]; a draw only when g != 0."""
    if g == 0:
        return a
    return saturate(np.int64(a) - stochastic_shift(g, shift, rng), 0, ONE)


@njit(cache=True)
def top2_gap(scores):
    """The leader's score minus the runner-up's (0 on a tie): the cutoff's confidence
    (docs/numerics.md §6b). The leader is the first maximum, as the prediction's."""
    best = 0
    for j in range(1, scores.shape[0]):
        if scores[j] > scores[best]:
            best = j
    second = 1 if best == 0 else 0
    for j in range(scores.shape[0]):
        if j != best and scores[j] > scores[second]:
            second = j
    return scores[best] - scores[second]


@njit(cache=True)
def top2_gap_rows(scores):
    """top2_gap of every row of a [rows, classes] array (host-side: calibration, the float
    twin's batches), the same function per row as the device's."""
    out = np.empty(scores.shape[0], dtype=scores.dtype)
    for r in range(scores.shape[0]):
        out[r] = top2_gap(scores[r])
    return out
