"""The multiplication-free channel-wise parallel spiking neuron (PSN; after Xue et al., NeurIPS 2025,
arXiv 2501.14490; docs/psn.md, docs/numerics.md §5e). No membrane recursion: per channel j a causal
dilated temporal filter of K signed power-of-two taps over the input currents, then a threshold:

    I[t] = W x[t]                                   (the synapses: a dense current, Q16)
    H_j[t] = sum_{k=0}^{K-1} c_jk I_j[t - k D]       (I[t'] = 0 for t' < 0: causal, zero-padded)
    s_j[t] = H_j[t] >= th_j                          (no reset: H is not carried to t + 1)

with c_jk in {0, +-2^-e : e = 0..MAX_TAP_SHIFT} and the dilation D of the layer (layers cycle their
dilations, the "sawtooth", docs/psn.md). The temporal receptive field is (K-1) D + 1 steps; the state
is a ring of the last L = (K-1) D + 1 currents per channel (memory K x D, not T).

A tap is stored as an int8 code q: 0 is the tap 0, q > 0 the tap +2^-(q-1), q < 0 the tap
-2^-(-q-1), so |q| <= MAX_TAP_SHIFT + 1 = 15. The filter is shifts and adds only (round_shift:
add half, arithmetic shift, then the sign).

Learning (online, per step, docs/psn.md §3): the derivative of H_j[t] by W_ji is the filtered
history of input i through channel j's taps, e_ji[t] = sum_k c_jk x_i[t - k D], read from a ring of
the layer's recent inputs (lifted to Q16): the eligibility needs no per-synapse state. The taps
learn on the host (the float twin, a power-of-two projection with a straight-through estimate) and
stay frozen on the device.

This module holds the kernels (float64 and the bit-exact fixed point; C twin targets/c/el_psn.c),
the kind's layer ops (registry.FILTER_OPS: the STOP drivers run a psn layer like any registered
kind; its taps and dilation are a FILTER section of the blob, its rings plan buffers, edgelearn/plan.py);
edgelearn/psnnet.py the networks (the float twin, host training's shapes)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...numerics import (
    STATE_FRAC,
    round_shift,
    sat16,
    sat32,
    sat_sum,
    shift_with_draw,
    xorshift32,
)
from ..registry import Exactness, LayerKind, register_layer
from .dense import back as dense_back_op
from .dense import back_float, check, current_fixed, current_float, out_frac, scratch, weight_shape

MAX_TAP_SHIFT = 14          # the smallest non-zero tap is 2^-14
MAX_TAPS = 16               # K: at most 16 taps per channel (the sum of K int32 terms fits int64)
MAX_DILATION = 1024


def ring_length(taps: int, dilation: int) -> int:
    """The ring's length: the currents of the last (K-1) D + 1 steps."""
    return (taps - 1) * dilation + 1


def sawtooth(layers: int, taps: int, period: int = 3, base: int | None = None) -> list[int]:
    """Dilations cycling across layers: 1, K, K^2, ..., K^(period-1), 1, K, ... (each layer's
    filter spans the gaps of the one below; docs/psn.md §1)."""
    base = taps if base is None else base
    return [base ** (l % period) for l in range(layers)]


# -- taps: codes, values, the power-of-two projection ---------------------------------------------

def tap_values(codes: np.ndarray) -> np.ndarray:
    """The real value of each tap code."""
    q = np.asarray(codes, dtype=np.int64)
    mag = np.where(q == 0, 0.0, 2.0 ** -(np.abs(q) - 1).astype(np.float64))
    return np.sign(q) * mag


def tap_codes(values: np.ndarray) -> np.ndarray:
    """The codes of the nearest power-of-two taps (in log2: exponents round to nearest, ties up;
    below 2^-(MAX_TAP_SHIFT + 1/2) the tap is 0): the projection the float twin learns through."""
    v = np.asarray(values, dtype=np.float64)
    a = np.abs(v)
    with np.errstate(divide="ignore"):
        e = np.floor(-np.log2(np.where(a > 0, a, 1.0)) + 0.5)    # 2^-e nearest in log2
    e = np.clip(e, 0, MAX_TAP_SHIFT)
    zero = a < 2.0 ** -(MAX_TAP_SHIFT + 0.5)
    return np.where(zero, 0, np.sign(v) * (e + 1)).astype(np.int8)


def tap_code(value: float) -> int:
    """The code of one tap value (a power of two, its negative, or 0)."""
    return int(tap_codes(np.array([value]))[0])


def project(values: np.ndarray) -> np.ndarray:
    """P(c): the power-of-two tap nearest each latent tap (the forward of the straight-through
    estimate: the gradient by the latent taps is the gradient by P(c))."""
    return tap_values(tap_codes(values))


# -- float64 ---------------------------------------------------------------------------------------

def filter_float(I: np.ndarray, c: np.ndarray, dilation: int) -> np.ndarray:
    """H[t, j] = sum_k c[j, k] I[t - k D, j] over a whole sequence I [T, n] (complex-step ready)."""
    T = I.shape[0]
    H = np.zeros(I.shape, dtype=np.result_type(I, c))
    for k in range(c.shape[1]):
        lag = k * dilation
        if lag < T:
            H[lag:] = H[lag:] + c[:, k] * I[:T - lag]
    return H


# -- fixed point (docs/numerics.md §5e; C twin targets/c/el_psn.c) ----------------------------------

@njit(cache=True)
def apply_tap(q, v):
    """The tap of code q applied to v (int64): shifts only, round to nearest then the sign."""
    if q == 0:
        return np.int64(0)
    if q > 0:
        return round_shift(np.int64(v), q - 1)
    return -round_shift(np.int64(v), -q - 1)


@njit(cache=True)
def psn_filter(cur, taps, dilation, pos, ring):
    """The filter of one step, in place: ring[j, pos] = cur[j] (the newest current), then
    cur[j] = H_j = sat32(sum_k tap(q_jk, ring[j, (pos - k D) mod L])), its neuron's input (the
    threshold unit, ops/neurons/threshold.py: s[j] = H_j >= th[j]). ``pos`` = t mod L
    (L = ring.shape[1] = (K-1) D + 1); ``ring`` is zeroed at a sample's start."""
    L = ring.shape[1]
    K = taps.shape[1]
    for j in range(cur.shape[0]):
        ring[j, pos] = cur[j]
        acc = np.int64(0)
        slot = pos
        for k in range(K):
            acc += apply_tap(taps[j, k], ring[j, slot])
            slot -= dilation
            if slot < 0:
                slot += L
        cur[j] = sat32(acc)


@njit(cache=True)
def psn_input_ring(x, x_frac, pos, xr):
    """xr[i, pos] = x[i] lifted to Q16 (x << (16 - x_frac)): the layer's recent inputs, the
    eligibility's history (only while learning)."""
    for i in range(x.shape[0]):
        xr[i, pos] = np.int64(x[i]) << (STATE_FRAC - x_frac)


@njit(cache=True)
def psn_eligibility(taps, j, dilation, pos, xr, i):
    """e_ji = sum_k tap(q_jk, xr[i, (pos - k D) mod L]): dH_j / dW_ji in Q16, exact (|e| < 2^21)."""
    L = xr.shape[1]
    acc = np.int64(0)
    slot = pos
    for k in range(taps.shape[1]):
        acc += apply_tap(taps[j, k], xr[i, slot])
        slot -= dilation
        if slot < 0:
            slot += L
    return acc


@njit(cache=True)
def psn_update_weights(W, d, taps, dilation, pos, xr, shift, rng):
    """W_ji -= SR(d_j e_ji, shift) now, for j ascending with d_j != 0, i ascending with e_ji != 0:
    one draw each (shift > 0), as dense's update_weights with the eligibility for the trace."""
    state = np.int64(rng[0])
    for j in range(W.shape[0]):
        if d[j] == 0:
            continue
        dj = np.int64(d[j])
        for i in range(W.shape[1]):
            e = psn_eligibility(taps, j, dilation, pos, xr, i)
            if e == 0:
                continue
            p = dj * e
            if shift > 0:
                state = xorshift32(state)
                p = shift_with_draw(p, shift, state)
            else:
                p <<= -shift
            W[j, i] = sat16(W[j, i] - p)
    rng[0] = np.uint32(state)


@njit(cache=True)
def psn_weight_grads(gW, d, taps, dilation, pos, xr):
    """gW_ji += d_j e_ji (exact, saturating sums) for the rows with d_j != 0: per-sample updates."""
    for j in range(gW.shape[0]):
        if d[j] == 0:
            continue
        dj = np.int64(d[j])
        for i in range(gW.shape[1]):
            e = psn_eligibility(taps, j, dilation, pos, xr, i)
            if e != 0:
                gW[j, i] = sat_sum(gW[j, i], dj * e)


@njit(cache=True)
def psn_lag0_error(taps, d, out):
    """out[j] = tap(q_j0, d[j]): the errors of a PSN layer as its inputs of this step see them
    (dH[t]/dI[t] is the lag-0 tap; the later lags are detached, docs/psn.md §3)."""
    for j in range(d.shape[0]):
        out[j] = sat32(apply_tap(taps[j, 0], d[j]))


# -- the layer ops (registry.FILTER_OPS), as the drivers call a kind with a history ---------------

@njit(cache=True)
def filter_step(W, x, x_frac, w_frac, taps, dilation, pos, ring, x_ring, nonzero, cur):
    if x_ring.shape[0]:                         # learning: the eligibility's history
        psn_input_ring(x, x_frac, pos, x_ring)
    current_fixed(W, x, x_frac, w_frac, nonzero, cur)
    psn_filter(cur, taps, dilation, pos, ring)


@njit(cache=True)
def lag0(taps, d, out):
    psn_lag0_error(taps, d, out)


@njit(cache=True)
def ring_update(W, d, taps, dilation, pos, x_ring, shift, rng):
    psn_update_weights(W, d, taps, dilation, pos, x_ring, shift, rng)


@njit(cache=True)
def ring_grads(gW, d, taps, dilation, pos, x_ring):
    psn_weight_grads(gW, d, taps, dilation, pos, x_ring)


def traces(n_in: int, n_out: int, ring: int) -> int:
    """Its input traces: the ring of its recent inputs, n_in x L."""
    return n_in * ring


# Its float twin is edgelearn.psnnet.FloatPSN (the filter over whole sequences, psn_bptt's training):
# FloatSTOP does not run it, so the kind declares no "float" executor.
PSN = register_layer(LayerKind(
    name="psn", code=5, has_neurons=True, windowed=False, weight_shape=weight_shape, check=check,
    out_frac=out_frac, forward_float=current_float, back_float=back_float, grad_float=None,
    fixed={"filter": filter_step, "lag0": lag0, "back": dense_back_op, "ring_update": ring_update,
           "ring_grads": ring_grads},
    c_ops={"filter": "el_layer_filter_psn", "lag0": "el_layer_lag0_psn", "back": "el_layer_back_dense",
           "ring_update": "el_layer_ring_update_psn", "ring_grads": "el_layer_ring_grads_psn"},
    scratch=scratch, c_scratch="el_dense_scratch",       # its scratch is its dense current's
    traces=traces, history=True,
    exactness={"fixed": Exactness.BIT, "c": Exactness.BIT}))
