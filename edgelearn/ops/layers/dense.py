"""Dense (fully connected) synapses: the current a layer receives from its inputs, and their
learning.

    I = W x,     W [n_out, n_in] int16 in Q(15-wf).wf,  x in Q(x_frac),  I in Q16

A dense layer reads its sources flattened, in row-major order whatever their shape: a
[C, H, W] convolution or pooling output is read as C*H*W inputs, which is all a Flatten
does (docs/conv.md), so no layer kind of its own is needed for it.

Fixed point (docs/numerics.md §5): an exact int64 sum over the non-zero inputs, then one
rounding shift by wf + x_frac - 16 and saturation to int32. Event-driven: zero inputs
(silent neurons) cost nothing. C twin: el_dense_current (targets/c/el_kernels.c), whose
scratch is el_dense_current_buffer_size(n_in). A layer whose input stays the same for a
whole sample (direct coding) keeps the exact sums instead (``dense_sums``) and rounds them
each step (``current_from_sums``): the same currents, bit for bit, for O(n_out) a step.
Learning: the errors of its outputs go back through W^T (``dense_back``), its weights move
by d x^T, one stochastic rounding per non-zero product (``update_weights``), or sum it
exactly for a later update (``accumulate_weight_grads``)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...numerics import STATE_FRAC, round_shift, sat16, sat32, sat_sum, shift_with_draw, xorshift32
from ..registry import LayerKind, register_layer


def current_float(W: np.ndarray, x: np.ndarray, geometry=None) -> np.ndarray:
    """I = x W^T for a batch x [B, n_in]."""
    return x @ W.T


def back_float(W: np.ndarray, d: np.ndarray, geometry=None, x=None) -> np.ndarray:
    """dE/dx = d W for the errors d [B, n_out] of its neurons."""
    return d @ W


def grad_float(d: np.ndarray, x_tr: np.ndarray, geometry=None):
    """dE/dW = d^T x^ over the batch, for the rows whose neurons have an error."""
    rows = np.flatnonzero(np.any(d != 0, axis=0))
    return rows, d[:, rows].T @ x_tr


@njit(cache=True)
def nonzero_index(x, nonzero):
    """The indices of x's non-zero entries, ascending, into ``nonzero``; their count."""
    n = 0
    for i in range(x.shape[0]):
        if x[i] != 0:
            nonzero[n] = i
            n += 1
    return n


@njit(cache=True)
def row_sum(W, j, x, nonzero, n):
    """Row j of W x, exact in int64, over the first n indices of ``nonzero``."""
    acc = np.int64(0)
    for k in range(n):
        i = nonzero[k]
        acc += np.int64(W[j, i]) * np.int64(x[i])
    return acc


@njit(cache=True)
def current_fixed(W, x, x_frac, w_frac, nonzero, cur):
    """cur = W x in Q16; ``nonzero`` is an int32 scratch of len(x) (the indices visited)."""
    n = nonzero_index(x, nonzero)
    shift = w_frac + x_frac - STATE_FRAC
    for j in range(W.shape[0]):
        cur[j] = sat32(round_shift(row_sum(W, j, x, nonzero, n), shift))


@njit(cache=True)
def dense_sums(W, x, nonzero, n, sums):
    """sums = W x, exact and unrounded, over the n non-zero inputs listed in ``nonzero``: what
    ``current_from_sums`` turns into the current at every step while x and W stay the same
    (a direct-coded sample; docs/numerics.md §5b)."""
    for j in range(W.shape[0]):
        sums[j] = row_sum(W, j, x, nonzero, n)


@njit(cache=True)
def current_from_sums(sums, x_frac, w_frac, cur):
    """cur = W x in Q16 from the exact sums: the rounding and saturation of current_fixed."""
    shift = w_frac + x_frac - STATE_FRAC
    for j in range(sums.shape[0]):
        cur[j] = sat32(round_shift(sums[j], shift))


@njit(cache=True)
def dense_back(W_up, d_up, back):
    """back = W_up^T d_up, exact and unsaturated (docs/numerics.md §8), event-driven over the
    non-zero errors d_up of the layer above; returns how many there were."""
    back[:] = 0
    active = 0
    for m in range(d_up.shape[0]):
        if d_up[m] != 0:
            active += 1
            dm = np.int64(d_up[m])
            for j in range(back.shape[0]):
                back[j] += np.int64(W_up[m, j]) * dm
    return active


@njit(cache=True)
def update_weights(W, d, x_tr, shift, rng, nonzero):
    """W -= SR(d x^T, shift), applied now. A PRNG draw per non-zero product, rows then
    columns in ascending order. Event-driven: ``nonzero`` (int32 scratch of len(x_tr))
    lists the non-zero traces once, so each learning row visits only those."""
    n = nonzero_index(x_tr, nonzero)
    state = np.int64(rng[0])             # the stream in a local: one draw per product, in order
    for j in range(W.shape[0]):
        if d[j] == 0:
            continue
        dj = np.int64(d[j])
        for k in range(n):
            i = nonzero[k]
            p = dj * x_tr[i]
            if shift > 0:
                state = xorshift32(state)
                p = shift_with_draw(p, shift, state)
            else:
                p <<= -shift                 # SR draws nothing for shifts <= 0
            W[j, i] = sat16(W[j, i] - p)
    rng[0] = np.uint32(state)


@njit(cache=True)
def accumulate_weight_grads(gW, d, x_tr):
    """gW += d x^T (exact, saturating sums): for updates once per sample or batch."""
    for j in range(gW.shape[0]):
        if d[j] == 0:
            continue
        dj = np.int64(d[j])
        for i in range(gW.shape[1]):
            if x_tr[i] != 0:
                gW[j, i] = sat_sum(gW[j, i], dj * x_tr[i])


# -- the layer ops (registry.LAYER_OPS), as the drivers call every kind ----------------------

@njit(cache=True)
def forward(W, x, s, x_frac, w_frac, g, nonzero, plane, cur, out):
    current_fixed(W, x, x_frac, w_frac, nonzero, cur)


@njit(cache=True)
def sums(W, x, g, nonzero, n, out):
    dense_sums(W, x, nonzero, n, out)


@njit(cache=True)
def refresh(W, x, g, d, nonzero, out):
    """The sums of the rows that learned (d != 0), after their per-step update."""
    n = nonzero_index(x, nonzero)
    for j in range(d.shape[0]):
        if d[j] != 0:
            out[j] = row_sum(W, j, x, nonzero, n)


@njit(cache=True)
def back(W, d, g, s, out):
    return dense_back(W, d, out)


@njit(cache=True)
def update(W, d, x_tr, g, shift, rng, nonzero, plane):
    update_weights(W, d, x_tr, shift, rng, nonzero)


@njit(cache=True)
def grads(gW, d, x_tr, g, nonzero):
    accumulate_weight_grads(gW, d, x_tr)


def weight_shape(n_out: int, fan_in: int, geometry=None) -> tuple[int, int]:
    return n_out, fan_in


def check(where: str, binary_source: bool, geometry=None) -> None:
    """Dense reads any source (its shape flattened)."""


def out_frac(geometry=None) -> int:
    return 0


def scratch(n_in: int, geometry=None) -> dict[str, int]:
    """Elements of the scratch buffers one call needs: its input widened to int32 and the
    non-zero indices (el_dense_current_buffer_size)."""
    return {"layer_input": n_in, "nonzero_index": n_in, "plane_sums": 0}


DENSE = register_layer(LayerKind(
    name="dense", code=0, has_neurons=True, windowed=False, weight_shape=weight_shape, check=check,
    out_frac=out_frac, forward_float=current_float, back_float=back_float, grad_float=grad_float,
    fixed={"forward": forward, "sums": sums, "refresh": refresh, "back": back, "update": update, "grads": grads},
    c_ops={op: f"el_layer_{op}_dense" for op in ("forward", "sums", "refresh", "back", "update", "grads")},
    scratch=scratch, c_scratch="el_dense_scratch", keeps_sums=True))
