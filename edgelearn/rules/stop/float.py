"""STOP in float64: the mathematics, stated plainly (the fixed-point twin follows it).

LIF with reset by subtraction, leak applied after reset (per layer l, per step t):

    U[t] = a * (U[t-1] - th * s[t-1]) + W x[t]          s[t] = U[t] >= th
    V[t] = U[t] - th * s[t]                             (post-reset membrane)

Forward traces, each the derivative of U[t] with the reset path detached:

    x^[t] = a * x^[t-1] + x[t]                          dU/dW  = x^      (one per input)
    th~[t] = a * (th~[t-1] - s[t-1])                    dU/dth = th~
    a~[t] = a * a~[t-1] + V[t-1]                        dU/da  = a~

Spatial errors within the same step, with a triangle surrogate phi:

    d_L = dE[t]/ds_L * phi(U_L - th_L),   E[t] = 1/2 |s_L[t] - y|^2
    d_l = (W_{l+1}^T d_{l+1}) * phi(U_l - th_l)

Gradients: dW = d x^T, dth = d * (th~ - 1), da = sum(d * a~). A non-spiking leaky
integrator readout ('li') has U[t] = a*U[t-1] + W x[t] and d_L = U_L[t] - y.
Arrays are batch-first ([B, n]); online learning is B = 1. Each layer's neuron step and
current are its kinds' float steps (edgelearn.ops), so a registered kind runs here as is.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ... import numerics as nx
from ...contract import LEARN_LEAK, LEARN_THRESHOLD, MAX_LR_SHIFT, TRAINABLE
from ...encoders import CODES, as_rows, encode_step
from ...model import Model
from ...ops import LAYERS, NEURONS, Exactness
from ...plan import layer_flags
from .spec import THRESHOLD_FLOOR, check


class FloatSTOP:
    """Float64 STOP over a model's (dequantised) parameters."""

    exactness = Exactness.MATH

    def __init__(self, model: Model):
        check(model)
        self.model = model
        self.kinds = [NEURONS[l.neuron.kind] for l in model.layers]
        self.currents = [LAYERS[l.kind].current_float for l in model.layers]
        self.W = [nx.from_fixed(model.params[l.name].weight, l.weight_frac) for l in model.layers]
        self.th = [nx.from_fixed(model.params[l.name].threshold, nx.STATE_FRAC) for l in model.layers]
        self.a = [model.params[l.name].leak / nx.ONE for l in model.layers]
        self.spiking = [kind.spiking for kind in self.kinds]
        flags = layer_flags(model)                    # which layers learn what: as the device decides
        self.trainable = [l for l, f in enumerate(flags) if f & TRAINABLE]
        self.learn_th = [bool(f & LEARN_THRESHOLD) for f in flags]
        self.learn_a = [bool(f & LEARN_LEAK) for f in flags]
        cfg = model.learning
        self.lr_w = 2.0 ** -cfg.lr_weight_shift
        self.lr_th = 2.0 ** -cfg.lr_threshold_shift
        self.lr_a = 2.0 ** -cfg.lr_leak_shift
        self.halfwidth = 2.0 ** cfg.surrogate_shift
        self.rng_input = nx.new_rng(cfg.seed)      # the same input stream as the device
        self.grads = self.zero_grads()

    # -- state ----------------------------------------------------------------------
    def init_state(self, batch: int) -> dict:
        z = lambda n: [np.zeros((batch, n)) for n in n]
        outs = [w.shape[0] for w in self.W]
        ins = [w.shape[1] for w in self.W]
        return {"V": z(outs), "s": z(outs), "U": z(outs), "th_tr": z(outs), "a_tr": z(outs),
                "x_tr": z(ins), "d": z(outs)}

    def zero_grads(self) -> dict:
        """Gradient sums; ``rows`` marks the weight rows touched since the last apply
        (few neurons have a non-zero surrogate, so most rows are never visited)."""
        return {"W": [np.zeros_like(w) for w in self.W], "th": [np.zeros_like(t) for t in self.th],
                "a": [0.0 for _ in self.a], "rows": [np.zeros(w.shape[0], dtype=bool) for w in self.W]}

    def phi(self, x):
        return np.maximum(0.0, 1.0 - np.abs(x) / self.halfwidth)

    # -- one time step ------------------------------------------------------------------
    def forward_step(self, st: dict, x: np.ndarray, traces: bool) -> np.ndarray:
        inp = x
        for l, W in enumerate(self.W):
            a = self.a[l]
            if traces:      # traces read V[t-1], s[t-1]: update them before the neuron
                st["th_tr"][l] = a * (st["th_tr"][l] - st["s"][l])
                st["a_tr"][l] = a * st["a_tr"][l] + st["V"][l]
                st["x_tr"][l] = a * st["x_tr"][l] + inp
            kind = self.kinds[l]
            values = {"threshold": self.th[l], "leak": a, "reset_shift": 0}
            params = kind.Params(**{name: values[name] for name in kind.Params._fields})
            out, (st["V"][l], st["U"][l]) = kind.step_float(self.currents[l](W, inp), kind.State(st["V"][l], st["U"][l]),
                                                            params)
            if self.spiking[l]:
                st["s"][l] = out
            inp = out
        return inp

    def error_step(self, st: dict, y: np.ndarray) -> None:
        """Spatial errors of this step, top-down; y is the one-hot target [B, classes]."""
        L = len(self.W) - 1
        lowest = min(self.trainable)
        if self.spiking[L]:
            st["d"][L] = (st["s"][L] - y) * self.phi(st["U"][L] - self.th[L])
        else:
            st["d"][L] = st["U"][L] - y
        for l in range(L - 1, lowest - 1, -1):
            st["d"][l] = (st["d"][l + 1] @ self.W[l + 1]) * self.phi(st["U"][l] - self.th[l])

    def accumulate(self, st: dict, g: dict) -> None:
        for l in self.trainable:
            d = st["d"][l]
            rows = np.flatnonzero(np.any(d != 0, axis=0))
            g["W"][l][rows] += d[:, rows].T @ st["x_tr"][l]
            g["rows"][l][rows] = True
            if self.learn_th[l]:
                g["th"][l] += np.sum(d * (st["th_tr"][l] - 1.0), axis=0)
            if self.learn_a[l]:
                g["a"][l] += float(np.sum(d * st["a_tr"][l]))

    def apply(self, g: dict, scale: float = 1.0) -> None:
        """Descend by the sums in ``g`` and clear them."""
        for l in self.trainable:
            rows = g["rows"][l]
            self.W[l][rows] -= self.lr_w * scale * g["W"][l][rows]
            g["W"][l][rows] = 0.0
            rows[:] = False
            if self.learn_th[l]:     # the floor binds where a threshold moves, as on the device
                moved = g["th"][l] != 0
                self.th[l][moved] = np.maximum(THRESHOLD_FLOOR, self.th[l][moved] - self.lr_th * scale * g["th"][l][moved])
                g["th"][l][:] = 0.0
            if self.learn_a[l]:
                self.a[l] = float(np.clip(self.a[l] - self.lr_a * scale * g["a"][l], 0.0, 1.0))
                g["a"][l] = 0.0

    # -- samples --------------------------------------------------------------------------
    def slow_down(self) -> None:
        """Halve every learning rate (one more shift on the device, up to MAX_LR_SHIFT)."""
        floor = 2.0 ** -MAX_LR_SHIFT
        self.lr_w, self.lr_th, self.lr_a = (max(r / 2, floor) for r in (self.lr_w, self.lr_th, self.lr_a))

    def spike_raster(self, sample: np.ndarray) -> np.ndarray:
        """Inference on one sample, recording every neuron's spikes: [T, neurons]."""
        st = self.init_state(1)
        rows = []
        for x in self.batch_inputs(sample[None]):
            self.forward_step(st, x, traces=False)
            rows.append(np.concatenate([s[0] for s in st["s"]]))
        return np.array(rows, dtype=np.uint8)

    def encode(self, sample: np.ndarray, t: int) -> np.ndarray:
        """One sample's input at step t, from the device's input stream."""
        out = np.zeros(self.model.input.size, dtype=np.int32)
        frac = encode_step(CODES[self.model.input.encoding], as_rows(sample), t, self.rng_input, out)
        return out / float(1 << frac)

    def batch_inputs(self, samples: np.ndarray):
        """The inputs of a batch, [T][B, n]: one sample is encoded step by step (memory
        flat in T); a batch is encoded sample after sample, the order in which the device
        draws its input stream."""
        T = self.model.learning.T
        if len(samples) == 1:
            return (self.encode(samples[0], t)[None] for t in range(T))
        per_sample = [[self.encode(x, t) for t in range(T)] for x in samples]
        return (np.stack([steps[t] for steps in per_sample]) for t in range(T))

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch for T steps; learn when asked. Returns the readout scores
        (spike counts, or summed membrane for an 'li' readout), [B, classes]."""
        update = self.model.learning.update
        learn = learn and bool(self.trainable)
        st = self.init_state(len(samples))
        scores = np.zeros((len(samples), self.W[-1].shape[0]))
        y = None
        if learn:
            y = np.zeros_like(scores)
            y[np.arange(len(samples)), labels] = 1.0
            g = self.grads      # cleared by every apply
        for x in self.batch_inputs(samples):
            scores += self.forward_step(st, x, traces=learn)
            if learn:
                self.error_step(st, y)
                self.accumulate(st, g)
                if update == "step" and len(samples) == 1:
                    self.apply(g)
        if learn and (update == "sample" or len(samples) > 1):
            self.apply(g, 1.0 / len(samples))
        return scores

    def health(self, reset: bool = False) -> dict:
        """STOP keeps no health counters (SPIDE does)."""
        return {}

    def buffers(self) -> dict[str, np.ndarray]:
        """The float64 parameters it learns, by layer."""
        out = {}
        for layer, W, th, a in zip(self.model.layers, self.W, self.th, self.a):
            out.update({f"{layer.name}.weight": W, f"{layer.name}.threshold": th, f"{layer.name}.leak": np.array([a])})
        return out

    def to_model(self) -> Model:
        """The current parameters quantised back into a model (round to nearest)."""
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            p = out.params[layer.name]
            p.weight = nx.to_fixed(self.W[l], layer.weight_frac, nx.INT16_MIN, nx.INT16_MAX, np.int16)
            p.threshold = nx.to_fixed(self.th[l], nx.STATE_FRAC)
            p.leak = int(nx.to_fixed(self.a[l], nx.STATE_FRAC))
        out.learning = replace(out.learning, **{
            name: int(round(-np.log2(rate))) for name, rate in
            (("lr_weight_shift", self.lr_w), ("lr_threshold_shift", self.lr_th), ("lr_leak_shift", self.lr_a))})
        return out.validate()
