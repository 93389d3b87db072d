"""Learning kernels both rules use (mirrored one for one in targets/c/el_kernels.c):
saturating gradient sums, the readout's error and the stochastically rounded weight
update. docs/numerics.md fixes every formula and its order of operations."""
import numpy as np
from numba import njit

from ..contract import SUM_LIMIT
from ..numerics import ONE, sat16, sat32, saturate, shift_with_draw, xorshift32
from ..ops.layers.dense import nonzero_index

_SUM_LIMIT = np.int64(SUM_LIMIT)


@njit(cache=True)
def sat_sum(acc, p):
    """acc + p, saturated at +-SUM_LIMIT so that adding one more int64 product never overflows."""
    return saturate(acc + p, -_SUM_LIMIT, _SUM_LIMIT)


@njit(cache=True)
def li_output_error(U, label, d):
    """d = U - y for E = 1/2 |U - y|^2 with a one-hot target y."""
    for j in range(d.shape[0]):
        d[j] = sat32(np.int64(U[j]) - (ONE if j == label else 0))


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
