"""Neuron models as functions, in float64: ``step(current, state, params) -> (output,
new_state, ...)`` with explicit state and parameters (the float twin's neurons; the
fixed-point kernels ``kernels.lif_step`` / ``kernels.li_step`` mirror them).

State is the post-reset membrane V; the leak is applied after reset:
U[t] = a * V[t-1] + I[t]."""
import numpy as np


def lif_step(current: np.ndarray, v: np.ndarray, threshold: np.ndarray, leak: float):
    """Leaky integrate-and-fire, reset by subtraction (IF is leak = 1).
    Returns (spikes, new V, U before reset)."""
    u = leak * v + current
    spikes = (u >= threshold).astype(np.float64)
    return spikes, u - threshold * spikes, u


def li_step(current: np.ndarray, v: np.ndarray, leak: float):
    """Non-spiking leaky integrator (readout). Returns (U, new V)."""
    u = leak * v + current
    return u, u
