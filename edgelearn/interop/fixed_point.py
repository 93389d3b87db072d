"""Float weights into the contract's int16 formats: the one choice every importer makes."""
from __future__ import annotations

import numpy as np

from .. import numerics as nx
from ..errors import ModelError

MAX_WEIGHT_FRAC = 15
HEADROOM = 2.0       # room left above the largest imported weight, so fine-tuning can grow it


def weight_frac_for(weight: np.ndarray, where: str) -> int:
    """The most fractional bits (0..15) whose int16 range holds ``HEADROOM`` times the
    largest |w|: the finest step the layer's weights can have and still learn upwards."""
    largest = float(np.max(np.abs(weight))) if weight.size else 0.0
    if not np.isfinite(largest):
        raise ModelError(f"{where}: the weights are not finite")
    if largest == 0.0:
        return MAX_WEIGHT_FRAC
    frac = int(np.floor(np.log2(nx.INT16_MAX / (HEADROOM * largest))))
    if frac < 0:
        raise ModelError(f"{where}: the largest weight, {largest:g}, does not fit int16 weights in any "
                         f"Q-format (at most {nx.INT16_MAX / HEADROOM:g} with weight_frac 0)")
    return min(frac, MAX_WEIGHT_FRAC)


def quantise_weights(weight: np.ndarray, frac: int) -> np.ndarray:
    """int16 in Q(15-frac).frac, rounded to nearest and saturated as the contract does."""
    return nx.to_fixed(weight, frac, nx.INT16_MIN, nx.INT16_MAX, np.int16)
