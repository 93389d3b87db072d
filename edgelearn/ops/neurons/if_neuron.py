"""Integrate-and-fire: LIF whose leak is fixed at 1 (a = ONE in Q16), so

    U[t] = V[t-1] + I[t],   s[t] = U[t] >= th,   V[t] = U[t] - (th << reset_shift) s[t].

The leak is not a parameter (a model's leak must be ONE and is never learned); the steps
are LIF's with a = 1, which ``mul_state`` multiplies exactly. C twin: el_lif_step."""
from __future__ import annotations

from ..registry import NeuronKind, register_neuron
from .lif import Params, State, step_fixed, step_float

IF = register_neuron(NeuronKind(
    name="if", code=1, spiking=True, leak_fixed_at_one=True, readout_only=False, Params=Params, State=State,
    step_float=step_float, step_fixed=step_fixed, c_symbol="el_lif_step",
    buffers=("membrane", "potential", "spikes")))
