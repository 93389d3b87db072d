"""Leaky integrate-and-fire, reset by subtraction; the leak acts after the reset.

    U[t] = a * V[t-1] + I[t]                 (potential, before reset)
    s[t] = U[t] >= th                        (spike)
    V[t] = U[t] - (th << reset_shift) s[t]   (membrane, after reset)

reset_shift 0 is the ordinary reset (subtract th); 1 is SPIDE's modified reset (subtract
V_d = 2 th, so spike counts round T I / V_d instead of flooring it).

Fixed point (docs/numerics.md §5): I, V, U, th in Q16 int32, a in Q16 in [0, ONE];
a * V is ``mul_state`` (rounded), every store saturates to int32. C twin: el_lif_step in
targets/c/el_kernels.c."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ...numerics import mul_state, sat32
from ..registry import FIXED_STEP_SIGNATURE, NeuronKind, register_neuron


class Params(NamedTuple):
    """What the step reads: threshold th [n] (> 0), leak a (one per layer, in [0, 1]) and
    reset_shift (0 or 1) in  U[t] = a V[t-1] + I[t],  s[t] = U[t] >= th,
    V[t] = U[t] - (th << reset_shift) s[t]. Fixed point: th and a in Q16."""
    threshold: np.ndarray
    leak: float
    reset_shift: int = 0


class State(NamedTuple):
    """What the step carries, [B, n]: membrane V[t] = U[t] - (th << reset_shift) s[t] (after
    reset) and potential U[t] = a V[t-1] + I[t] (before reset; the surrogate reads it)."""
    membrane: np.ndarray
    potential: np.ndarray


def step_float(current: np.ndarray, state: State, params: Params) -> tuple[np.ndarray, State]:
    """One step in float64: (spikes, new state)."""
    u = params.leak * state.membrane + current
    spikes = (u >= params.threshold).astype(np.float64)
    return spikes, State(u - params.threshold * 2.0 ** params.reset_shift * spikes, u)


@njit(FIXED_STEP_SIGNATURE, cache=True)
def step_fixed(cur, a, th, reset_shift, V, s, U):
    """One step in place, neurons in ascending order. ``U`` may be ``cur`` itself (SPIDE
    keeps no potential): each current is read before its potential is written."""
    for j in range(V.shape[0]):
        u = sat32(mul_state(a, V[j]) + np.int64(cur[j]))
        U[j] = u
        if u >= th[j]:
            s[j] = 1
            V[j] = sat32(u - (np.int64(th[j]) << reset_shift))
        else:
            s[j] = 0
            V[j] = u


LIF = register_neuron(NeuronKind(
    name="lif", code=0, spiking=True, leak_fixed_at_one=False, readout_only=False, Params=Params, State=State,
    step_float=step_float, step_fixed=step_fixed, c_symbol="el_lif_step",
    buffers=("membrane", "potential", "spikes")))
