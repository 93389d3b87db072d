"""SPIDE's fixed-point kernels: one small function per operation, mirrored one for one by
targets/c/el_kernels_spide.c. docs/spide.md fixes every formula and the order in which
``rules/spide/fixed.py`` calls them; the neurons are the op registry's (LIF/IF with
``reset_shift``), the currents and the weight update (``update_weights``) dense's
(``edgelearn.ops.layers.dense``), and ``li_output_error`` is shared with STOP
(``edgelearn.rules.kernels``).

Formats as in STOP: weights int16 Q(15-wf).wf; membranes, currents, errors and drives Q16
in int32; spike counts are plain integers (Q0) in int32; sums in int64.
"""
import numpy as np
from numba import njit

from ...numerics import ONE, STATE_FRAC, round_shift, sat32

HALF = ONE >> 1      # the backward couples' threshold: a spike is worth ONE, so beta = count / Tb


@njit(cache=True)
def count_spikes(s, count):
    """count += s: the spike counts whose rates are the equilibrium."""
    for j in range(count.shape[0]):
        count[j] += s[j]


@njit(cache=True)
def add_current(part, cur):
    """cur += part: the currents of a layer's edges, each computed by ``dense_current``."""
    for j in range(cur.shape[0]):
        cur[j] = sat32(np.int64(cur[j]) + part[j])


@njit(cache=True)
def equilibrium_mask(count, T, mask):
    """mask = 0 < count < T: the neurons whose rate is not clamped, the only ones through
    which the equilibrium depends on its inputs."""
    for j in range(count.shape[0]):
        mask[j] = 1 if 0 < count[j] < T else 0


@njit(cache=True)
def readout_gradient(W, e, w_frac, acc, g):
    """g += W^T e (Q16): dE/da of the rates the readout reads. Event-driven over non-zero
    errors; ``acc`` is an int64 scratch of len(g)."""
    acc[:] = 0
    for m in range(e.shape[0]):
        if e[m] != 0:
            em = np.int64(e[m])
            for j in range(g.shape[0]):
                acc[j] += np.int64(W[m, j]) * em
    for j in range(g.shape[0]):
        g[j] = sat32(np.int64(g[j]) + round_shift(acc[j], w_frac))


@njit(cache=True)
def gradient_scale(g):
    """The shift gs that puts max|g| * 2^gs in [ONE/2, ONE): the strongest couple then fires
    on half to all of the backward steps (bit length, i.e. a count-leading-zeros on the
    device). 0 when g is all zero."""
    top = np.int64(0)
    for j in range(g.shape[0]):
        top = max(top, abs(np.int64(g[j])))
    if top == 0:
        return 0
    bits = 0
    while top > 0:
        top >>= 1
        bits += 1
    return STATE_FRAC - bits


@njit(cache=True)
def scale_drive(g, gs, drive):
    """drive = g * 2^gs (exact for gs >= 0, rounded to nearest for gs < 0)."""
    for j in range(g.shape[0]):
        drive[j] = sat32(round_shift(g[j], -gs))


@njit(cache=True)
def backward_input(W, mask, sb, shift, acc, inp):
    """inp += (W^T (mask * sb)) * 2^-shift: the transposed weights carry the upper layer's
    signed spikes down. Additions of weights only (a spike is +1 or -1), then one shift
    per neuron; ``acc`` is an int64 scratch of len(inp)."""
    acc[:] = 0
    for m in range(sb.shape[0]):
        if mask[m] != 0 and sb[m] != 0:
            if sb[m] > 0:
                for j in range(inp.shape[0]):
                    acc[j] += W[m, j]
            else:
                for j in range(inp.shape[0]):
                    acc[j] -= W[m, j]
    for j in range(inp.shape[0]):
        inp[j] += round_shift(acc[j], shift)


@njit(cache=True)
def couple_step(inp, u, sb, count):
    """Ternary neuron couple: u += in; fire +1 at u >= ONE/2, -1 at u <= -ONE/2; the signed
    spike resets by ONE; count += spike."""
    for j in range(u.shape[0]):
        v = sat32(np.int64(u[j]) + inp[j])
        if v >= HALF:
            sb[j] = 1
            v -= ONE
        elif v <= -HALF:
            sb[j] = -1
            v += ONE
        else:
            sb[j] = 0
        u[j] = v
        count[j] += sb[j]


@njit(cache=True)
def gate_counts(mask, count):
    """count = mask * count in place: only unclamped neurons pass a gradient to their weights."""
    for j in range(count.shape[0]):
        if mask[j] == 0:
            count[j] = 0


@njit(cache=True)
def row_abs_sums(W, sums):
    """sums[j] = sum_i |W[j, i]| (int64, in the weights' format)."""
    for j in range(W.shape[0]):
        acc = np.int64(0)
        for i in range(W.shape[1]):
            acc += abs(np.int64(W[j, i]))
        sums[j] = acc


@njit(cache=True)
def halve_weights(W):
    """W = W / 2 rounded to nearest: the guard's projection of feedback weights."""
    for j in range(W.shape[0]):
        for i in range(W.shape[1]):
            W[j, i] = round_shift(W[j, i], 1)
