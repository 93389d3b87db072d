"""Dense (fully connected) synapses: the current a layer receives from its inputs.

    I = W x,     W [n_out, n_in] int16 in Q(15-wf).wf,  x in Q(x_frac),  I in Q16

Fixed point (docs/numerics.md §5): an exact int64 sum over the non-zero inputs, then one
rounding shift by wf + x_frac - 16 and saturation to int32. Event-driven: zero inputs
(silent neurons) cost nothing. C twin: el_dense_current (targets/c/el_kernels.c), whose
scratch is el_dense_current_buffer_size(n_in). A layer whose input stays the same for a
whole sample (direct coding) keeps the exact sums instead (``dense_sums``) and rounds them
each step (``current_from_sums``): the same currents, bit for bit, for O(n_out) a step."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...numerics import STATE_FRAC, round_shift, sat32
from ..registry import LayerKind, register_layer


def current_float(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """I = x W^T for a batch x [B, n_in]."""
    return x @ W.T


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


def scratch(n_in: int, n_out: int) -> dict[str, int]:
    """Elements of the scratch buffers one call needs: its input widened to int32 and the
    non-zero indices (el_dense_current_buffer_size)."""
    return {"layer_input": n_in, "nonzero_index": n_in}


DENSE = register_layer(LayerKind(name="dense", code=0, current_float=current_float, current_fixed=current_fixed,
                                 c_symbol="el_dense_current", scratch=scratch))
