"""A threshold unit without memory: the neuron of the parallel spiking neuron (psn layers,
docs/psn.md), whose temporal dynamics are its layer's filter, not a membrane recursion:

    U[t] = V[t] = I[t],   s[t] = U[t] >= th

No leak (the leak is not a parameter) and no reset: nothing carries over to t + 1, so STOP
learns neither its threshold nor its leak (``memoryless``). C twin: el_threshold_step."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ..registry import FIXED_STEP_SIGNATURE, NeuronKind, register_neuron


class Params(NamedTuple):
    """What the step reads: the threshold th in s[t] = I[t] >= th."""
    threshold: float


class State(NamedTuple):
    """What the step leaves, [B, n]: V[t] = U[t] = I[t] (read by the surrogate, never by t + 1)."""
    membrane: np.ndarray
    potential: np.ndarray


def step_float(current: np.ndarray, state: State, params: Params) -> tuple[np.ndarray, State]:
    """One step in float64: (spikes, new state)."""
    return (current >= params.threshold).astype(float), State(current, current)


@njit(FIXED_STEP_SIGNATURE, cache=True)
def step_fixed(cur, a, th, reset_shift, V, s, U):
    for j in range(V.shape[0]):
        V[j] = cur[j]
        U[j] = cur[j]
        s[j] = 1 if cur[j] >= th[j] else 0


THRESHOLD = register_neuron(NeuronKind(
    name="threshold", code=3, spiking=True, leak_fixed_at_one=True, readout_only=False, Params=Params, State=State,
    step_float=step_float, step_fixed=step_fixed, c_symbol="el_threshold_step",
    buffers=("membrane", "potential", "spikes"), memoryless=True))
