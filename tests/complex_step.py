"""Complex-step derivatives of a float twin's loss for every parameter of one layer: an
imaginary perturbation of 1e-30 and the imaginary part of the loss, exact to rounding with no
subtraction error (docs/numerics.md §9)."""
import numpy as np

H = 1e-30


def layer_grads(net, l: int, loss) -> dict:
    """{"W": [n_out, n_in], "th": [n_out], "a": scalar}: d loss / d parameter of layer l, where
    ``loss(W, th, a)`` takes complex copies of the net's weights, thresholds and leaks."""
    def d(kind, index):
        W = [w.astype(complex) for w in net.W]
        th = [t.astype(complex) for t in net.th]
        a = [complex(v) for v in net.a]
        if kind == "a":
            a[l] += 1j * H
        else:
            (W if kind == "W" else th)[l][index] += 1j * H
        return loss(W, th, a).imag / H
    return {"W": np.array([[d("W", (j, i)) for i in range(net.W[l].shape[1])] for j in range(net.W[l].shape[0])]),
            "th": np.array([d("th", j) for j in range(net.th[l].size)]),
            "a": d("a", None)}


def complex_steps(net, x, W, th, a, detach_above: int):
    """The float twin's forward pass on direct input in complex arithmetic, one list of
    (output, membrane after reset) per layer at each step: a spike is H(Re) + i phi(Re) Im
    (the surrogate), the reset uses the real spike only (reset path detached), and the
    membranes of layers above ``detach_above`` lose their imaginary part between steps (the
    cross-layer temporal path that per-step spatial errors do not follow; len(W) keeps every
    path). Each layer's current (or, for a pool, its output) is its kind's float function."""
    V = [np.zeros(layer.size, dtype=complex) for layer in net.model.layers]
    for _ in range(net.model.learning.T):
        inp, step = x / 256.0, []
        for l in range(len(W)):
            kind, g = net.layer_kinds[l], net.geometry[l]
            if not net.has_neurons[l]:
                inp = kind.forward_float(W[l], inp[None], g)[0]
                step.append((inp, None))
                continue
            if l > detach_above:
                V[l] = V[l].real.astype(complex)
            if kind.scans:                    # it steps its neurons in its scan: the same spike, per neuron
                spiking = ComplexSpikes(net, l)
                out, state = kind.scan_float(W[l], inp[None], g, spiking, spiking.Params(th[l], a[l]),
                                             spiking.State(V[l][None], V[l][None]))
                inp, V[l] = out[0], state.membrane[0]
                step.append((inp, V[l]))
                continue
            U = a[l] * V[l] + kind.forward_float(W[l], inp[None], g)[0]
            if net.spiking[l]:
                fired = (U.real >= th[l].real).astype(float)
                inp = fired + 1j * net.phi(U.real - th[l].real) * (U.imag - th[l].imag)
                V[l] = U - th[l] * fired
            else:
                inp = U
                V[l] = U
            step.append((inp, V[l]))
        yield step


class ComplexSpikes:
    """A neuron kind for a scanning layer's float step (scan2d) in complex arithmetic: the
    complex-step spike of complex_steps, the reset with the real spike only."""
    from typing import NamedTuple

    class Params(NamedTuple):
        threshold: object
        leak: object

    class State(NamedTuple):
        membrane: object
        potential: object

    def __init__(self, net, l):
        self.phi = net.phi

    def step_float(self, current, state, params):
        u = params.leak * state.membrane + current
        fired = (u.real >= params.threshold.real).astype(float)
        spikes = fired + 1j * self.phi(u.real - params.threshold.real) * (u.imag - params.threshold.imag)
        return spikes, self.State(u - params.threshold * fired, u)
