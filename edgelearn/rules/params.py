"""The learned parameters as the fixed-point drivers hold them (both rules)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..model import Model


class Params(NamedTuple):
    """weights int16 (every layer's, row-major, in layer order), thresholds int32 Q16 (every
    neuron's), leaks int64 Q16 (one per layer); the layer table's ``*_at`` fields index them."""
    weights: np.ndarray
    thresholds: np.ndarray
    leaks: np.ndarray

    @classmethod
    def of(cls, model: Model) -> "Params":
        return cls(np.concatenate([model.params[l.name].weight.ravel() for l in model.layers]),
                   np.concatenate([model.params[l.name].threshold for l in model.layers]),
                   np.array([model.params[l.name].leak for l in model.layers], dtype=np.int64))
