"""The learned parameters as the fixed-point drivers hold them, and a layer's views of them
(both rules; the layer table's ``*_at`` fields index them)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..model import Model
from ..plan import LayerField as F


class Params(NamedTuple):
    """weights int16 (every layer's, row-major, in layer order), thresholds int32 Q16 (every
    neuron's), leaks int64 Q16 (one per layer), tap codes int8 (the psn layers', row-major);
    the layer table's ``*_at`` fields index them."""
    weights: np.ndarray
    thresholds: np.ndarray
    leaks: np.ndarray
    taps: np.ndarray

    @classmethod
    def of(cls, model: Model) -> "Params":
        return cls(np.concatenate([model.params[l.name].weight.ravel() for l in model.layers]),
                   np.concatenate([model.params[l.name].threshold for l in model.layers]),
                   np.array([model.params[l.name].leak for l in model.layers], dtype=np.int64),
                   np.concatenate([model.params[l.name].taps.ravel() for l in model.layers]))


@njit(cache=True)
def layer_weights(table, weights, l):
    """Layer l's weight matrix, [w_rows, w_cols] (dense: [n_out, n_in]), a view of the weight array."""
    rows, cols, at = table[l, F.w_rows], table[l, F.w_cols], table[l, F.weights_at]
    return weights[at:at + rows * cols].reshape((rows, cols))


@njit(cache=True)
def layer_thresholds(table, thresholds, l):
    """Layer l's thresholds, [n_out], a view."""
    at = table[l, F.thresholds_at]
    return thresholds[at:at + table[l, F.n_out]]


@njit(cache=True)
def layer_taps(table, taps, l):
    """Layer l's tap codes, [n_out, taps] (a psn layer's), a view of the tap array."""
    at, n, K = table[l, F.taps_at], table[l, F.n_out], table[l, F.taps]
    return taps[at:at + n * K].reshape((n, K))
