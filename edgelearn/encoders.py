"""Input encoders: what a layer-0 neuron receives at step t, as integers.

Every encoder writes an int32 vector and returns its fractional bits, so the float
twins and the fixed-point runtime read the very same input (value = int * 2^-frac):

- direct: the uint8 sample as a constant current, Q0.8, every step;
- rate:   Bernoulli spikes, spike_i = (draw >> 24) < x_i, one draw of the input PRNG
          stream per input per step, inputs in ascending order (so p = x/256);
- events: a pre-recorded stream, uint8 [T, n] (0/1), step t reads row t.
- sequence: a pre-recorded sequence of graded currents, uint8 [T, n], step t reads row t as
            Q0.8 currents (a time series, sequential MNIST's image rows).

``sample`` is always two-dimensional: [1, n] for direct and rate, [rows, n] for events and
sequence (steps past the recording are silent).
"""
import numpy as np
from numba import njit

from .contract import ENCODINGS
from .numerics import INPUT_FRAC, rng_next

CODES = {name: code for code, name in enumerate(ENCODINGS)}     # the blob's encoding codes
DIRECT, RATE, EVENTS, SEQUENCE = (CODES[name] for name in ("direct", "rate", "events", "sequence"))
RECORDED = ("events", "sequence")      # encodings whose sample is a recording, one row per step
DRAWING = ("rate",)                    # encodings that draw from the input PRNG stream


@njit(cache=True)
def encode_step(code, sample, t, rng, out):
    """Fill ``out`` with the input at step ``t``; return its fractional bits."""
    if code == DIRECT:
        for i in range(out.shape[0]):
            out[i] = sample[0, i]
        return INPUT_FRAC
    if code == RATE:
        for i in range(out.shape[0]):
            out[i] = 1 if (rng_next(rng) >> 24) < sample[0, i] else 0
        return 0
    # EVENTS, SEQUENCE: sample is [rows, n]; steps past the recording are silent
    if t < sample.shape[0]:
        for i in range(out.shape[0]):
            out[i] = sample[t, i] if code == SEQUENCE else (1 if sample[t, i] != 0 else 0)
    else:
        out[:] = 0
    return INPUT_FRAC if code == SEQUENCE else 0


def input_draws(code: int, n: int, steps: int) -> int:
    """The input stream's draws for ``steps`` steps of an ``n``-input layer 0: n a step for
    rate, none for the other encodings (docs/numerics.md §4)."""
    return n * steps if code == RATE else 0


def events_from_list(events, T, n):
    """Dense uint8 [T, n] from (t, index) pairs, e.g. a DVS recording binned in time."""
    dense = np.zeros((T, n), dtype=np.uint8)
    for t, i in events:
        if not (0 <= t < T and 0 <= i < n):
            raise ValueError(f"event ({t}, {i}) outside the stream's {T} steps x {n} inputs")
        dense[t, i] = 1
    return dense


def as_rows(sample: np.ndarray) -> np.ndarray:
    """The two-dimensional view ``encode_step`` reads: a flat sample becomes [1, n]."""
    return sample.reshape(1, -1) if sample.ndim == 1 else sample
