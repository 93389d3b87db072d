"""Non-spiking leaky integrator, the readout only:

    U[t] = V[t] = a * V[t-1] + I[t]

Fixed point: as LIF without threshold and reset (docs/numerics.md §5); ``th``,
``reset_shift`` and ``s`` of the shared step signature are not touched. C twin: el_li_step."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ...numerics import mul_state, sat32
from ..registry import FIXED_STEP_SIGNATURE, NeuronKind, register_neuron


class Params(NamedTuple):
    """What the step reads: leak a (one per layer, in [0, 1]; Q16 in fixed point) in
    U[t] = a U[t-1] + I[t]."""
    leak: float


class State(NamedTuple):
    """What the step carries, [B, n]: membrane V[t] = potential U[t] = a U[t-1] + I[t]."""
    membrane: np.ndarray
    potential: np.ndarray


def step_float(current: np.ndarray, state: State, params: Params) -> tuple[np.ndarray, State]:
    """One step in float64: (U, new state)."""
    u = params.leak * state.membrane + current
    return u, State(u, u)


@njit(FIXED_STEP_SIGNATURE, cache=True)
def step_fixed(cur, a, th, reset_shift, V, s, U):
    for j in range(V.shape[0]):
        V[j] = sat32(mul_state(a, V[j]) + np.int64(cur[j]))
        U[j] = V[j]


LI = register_neuron(NeuronKind(
    name="li", code=2, spiking=False, leak_fixed_at_one=False, readout_only=True, Params=Params, State=State,
    step_float=step_float, step_fixed=step_fixed, c_symbol="el_li_step",
    buffers=("membrane", "potential", "spikes")))
