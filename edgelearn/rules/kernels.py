"""Learning kernels both rules use (mirrored one for one in targets/c/el_kernels.c): the
readout's error. The saturating gradient sum is a primitive of the contract
(``numerics.sat_sum``); each layer kind's weight updates live with its kind
(``edgelearn/ops/layers``). docs/numerics.md fixes every formula and its order of operations."""
import numpy as np
from numba import njit

from ..numerics import ONE, sat32


@njit(cache=True)
def li_output_error(U, label, d):
    """d = U - y for E = 1/2 |U - y|^2 with a one-hot target y."""
    for j in range(d.shape[0]):
        d[j] = sat32(np.int64(U[j]) - (ONE if j == label else 0))
