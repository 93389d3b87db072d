"""Learning kernels both rules use (mirrored one for one in targets/c/el_kernels.c):
saturating gradient sums, the readout's error and the stochastically rounded weight
update. docs/numerics.md fixes every formula and its order of operations."""
import numpy as np
from numba import njit

from ..contract import SUM_LIMIT
from ..numerics import ONE, sat16, sat32, saturate, stochastic_shift

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
def update_weights(W, d, x_tr, shift, rng):
    """W -= SR(d x^T, shift), applied now. A PRNG draw per non-zero product, rows then
    columns in ascending order."""
    for j in range(W.shape[0]):
        if d[j] == 0:
            continue
        dj = np.int64(d[j])
        for i in range(W.shape[1]):
            if x_tr[i] != 0:
                W[j, i] = sat16(W[j, i] - stochastic_shift(dj * x_tr[i], shift, rng))
