"""SPIDE in float64: the mathematics, stated plainly (the fixed-point twin follows it).

A network of spiking layers (IF or LIF) with an input edge, same-step edges from earlier
layers and feedback edges (delay 1) from any of them, read by a linear classifier
(an 'li' readout layer). Per spiking layer l and step t = 0 .. T-1, from a zero state:

    U_l[t] = a_l V_l[t-1] + sum_e W_le z_e[t]       z_e: the input x (a constant current),
                                                    s_k[t] (delay 0) or s_k[t-1] (delay 1)
    s_l[t] = U_l[t] >= th_l        V_l[t] = U_l[t] - V_d s_l[t]

with V_d = 2 th (the modified reset: counts round T I / V_d) or th (the ordinary reset:
they floor it). Counts c_l = sum_t s_l[t], rates a_l = c_l / T and the mask
m_l = (0 < c_l < T) approximate the equilibrium (exact for IF as T grows, when the loop
is contractive)

    a_l = clamp((sum_e W_le a_e) / V_d, 0, 1)        a_input = x.

The readout reads rates, o = sum_e W_Re a_e, with E = 1/2 |o - y|^2 and e = o - y.
Implicit differentiation at the equilibrium gives the adjoint beta = dE/da as the
solution of

    beta_l = g_l + sum_{k reads l} W_kl^T (m_k * beta_k) / V_d,k,      g_l = sum W_Rl^T e,

and the gradients  dE/dW_le = (m_l * beta_l / V_d,l) a_e^T,  dE/dW_Re = e a_e^T.

SPIDE solves the adjoint with a second spiking network of ternary neuron couples on the
transposed weights, gated by the mask, for Tb steps: per sample the output gradient is
scaled by 2^gs so that max|g| * 2^gs is in [1/2, 1) (docs/spide.md: the gradient-scale
rule), and per step, layers top-down,

    u_l += 2^gs g_l + sum_{k reads l} W_kl^T (m_k * sigma_k) / V_d,k
    sigma_l = +1 if u_l >= 1/2, -1 if u_l <= -1/2, else 0;   u_l -= sigma_l;   b_l += sigma_l

(sigma_k of this step for same-step readers, of the previous step for delay-1 readers),
so that beta_l ~ b_l / Tb * 2^-gs. A couple that fires on every step has clipped: the
sample is run again with gs - 1 (at most MAX_SCALE_RETRIES times). Weights descend by
2^-lr times the gradient; thresholds and leaks are not learned. Arrays are batch-first.
"""
from __future__ import annotations

import numpy as np

from ... import numerics as nx
from ...encoders import CODES, DIRECT, as_rows, encode_step
from ...errors import TrainingDiverged
from ...model import Model
from ...ops import LAYERS, NEURONS, Exactness
from ..schedule import LearningRates
from .spec import (
    DEAD_WINDOW,
    GUARD_GAIN,
    HEALTH_KEYS,
    MAX_GUARD_HALVINGS,
    MAX_SCALE_RETRIES,
    check,
    dead_equilibrium,
    edge_table,
    health_report,
    loop_gain_bound,
    not_contractive,
    reset_divisor,
)


class FloatSPIDE:
    """Float64 SPIDE over a model's (dequantised) parameters."""

    exactness = Exactness.MATH

    def __init__(self, model: Model):
        check(model)
        self.model = model
        self.L = len(model.layers) - 1                    # spiking layers; the readout is layers[L]
        self.edges = edge_table(model)
        self.W = [nx.from_fixed(model.params[l.name].weight, l.weight_frac) for l in model.layers]
        spiking = model.layers[:self.L]
        self.th = [float(nx.from_fixed(model.params[l.name].threshold[0], nx.STATE_FRAC)) for l in spiking]
        self.Vd = [th * reset_divisor(l.neuron) for th, l in zip(self.th, spiking)]
        self.a = [model.params[l.name].leak / nx.ONE for l in spiking]
        self.kinds = [NEURONS[l.neuron.kind] for l in spiking]
        self.currents = [LAYERS[l.kind].forward_float for l in spiking]
        self.params = [kind.Params(th, a, 1 if l.neuron.reset == "modified" else 0)
                       for kind, th, a, l in zip(self.kinds, self.th, self.a, spiking)]
        self.learning_rates = LearningRates(model)      # the model's schedule (docs/numerics.md §6c)
        self.rng_input = nx.new_rng(model.learning.seed)
        self.feedback = [(k, e) for k in range(self.L) for e in self.edges[k] if e.delay > 0]
        self.counters = dict.fromkeys(HEALTH_KEYS, 0)
        self.dead_run = 0
        gain = self.loop_gain()
        if gain >= 1.0:
            raise not_contractive(gain)

    # -- forward: the equilibrium -------------------------------------------------------------
    def input_steps(self, samples: np.ndarray):
        """The input of each step, [B, n], drawn sample after sample as the device does; a
        direct input is one constant current (yielded once, reused every step)."""
        code = CODES[self.model.input.encoding]
        if code == DIRECT:
            return np.stack([as_rows(x)[0] for x in samples]) / 256.0, None
        steps = np.zeros((len(samples), self.model.learning.T, self.model.input.size))
        for b, x in enumerate(samples):
            for t in range(self.model.learning.T):
                out = np.zeros(self.model.input.size, dtype=np.int32)
                frac = encode_step(code, as_rows(x), t, self.rng_input, out)
                steps[b, t] = out / float(1 << frac)
        return steps.mean(axis=1), steps

    def equilibrium(self, samples: np.ndarray):
        """Counts of every spiking layer after T steps, the mean input, and the first-half counts."""
        T, B = self.model.learning.T, len(samples)
        x_mean, steps = self.input_steps(samples)
        n = [w.shape[0] for w in self.W[:self.L]]
        V = [np.zeros((B, k)) for k in n]
        s = [np.zeros((B, k)) for k in n]
        count = [np.zeros((B, k)) for k in n]
        half = None
        for t in range(T):
            x = x_mean if steps is None else steps[:, t]
            prev = [v.copy() for v in s]
            for l in range(self.L):
                cur = np.zeros((B, n[l]))
                for e in self.edges[l]:
                    z = x if e.source < 0 else (s if e.delay == 0 else prev)[e.source]
                    cur += self.currents[l](self.W[l][:, e.cols], z)
                s[l], (V[l], _) = self.kinds[l].step_float(cur, self.kinds[l].State(V[l], None), self.params[l])
                count[l] += s[l]
            if t == T // 2 - 1:
                half = [c.copy() for c in count]
        return count, x_mean, half

    def rates(self, sample: np.ndarray) -> list[np.ndarray]:
        """Each spiking layer's rates count / T for one sample (inference)."""
        count, _, _ = self.equilibrium(sample[None])
        return [c[0] / self.model.learning.T for c in count]

    def scores(self, rates) -> np.ndarray:
        return sum(rates[e.source] @ self.W[self.L][:, e.cols].T for e in self.edges[self.L])

    # -- backward: the adjoint ---------------------------------------------------------------------
    def output_gradient(self, rates, e):
        """g_l = W_Rl^T e for every spiking layer (zero for those the readout does not read)."""
        g = [np.zeros_like(r) for r in rates]
        for edge in self.edges[self.L]:
            g[edge.source] += e @ self.W[self.L][:, edge.cols]
        return g

    def couples(self, drive, mask):
        """Signed counts of the ternary couples after Tb steps (drive already scaled)."""
        u = [np.zeros_like(d) for d in drive]
        sb = [np.zeros_like(d) for d in drive]
        b = [np.zeros_like(d) for d in drive]
        for _ in range(self.model.learning.Tb):
            prev = [v.copy() for v in sb]
            for l in range(self.L - 1, -1, -1):
                inp = drive[l].copy()
                for k in range(self.L):
                    for e in self.edges[k]:
                        if e.source == l:
                            up = (sb if e.delay == 0 else prev)[k]
                            inp += (mask[k] * up) @ self.W[k][:, e.cols] / self.Vd[k]
                u[l] += inp
                sb[l] = (u[l] >= 0.5).astype(np.float64) - (u[l] <= -0.5)
                u[l] -= sb[l]
                b[l] += sb[l]
        return b

    def adjoint(self, g, mask):
        """The spike-estimated beta for each sample, with the gradient-scale rule and its
        retries; returns (beta per layer, gs per sample, saturated counts per sample)."""
        Tb = self.model.learning.Tb
        top = np.max(np.concatenate([np.abs(x) for x in g], axis=1), axis=1)
        gs = np.where(top > 0, -np.frexp(top)[1], 0).astype(np.int64)
        todo = np.flatnonzero(top > 0)
        b = [np.zeros_like(x) for x in g]
        saturated = np.zeros(len(top), dtype=np.int64)
        for attempt in range(MAX_SCALE_RETRIES + 1):
            if todo.size == 0:
                break
            counts = self.couples([x[todo] * 2.0 ** gs[todo, None] for x in g], [m[todo] for m in mask])
            for l in range(self.L):
                b[l][todo] = counts[l]
            saturated[todo] = sum(np.sum(np.abs(c) == Tb, axis=1) for c in counts)
            if attempt == MAX_SCALE_RETRIES:
                break
            todo = todo[saturated[todo] > 0]
            gs[todo] -= 1
            self.counters["retries"] += todo.size
        beta = [x / Tb * 2.0 ** -gs[:, None] for x in b]
        return beta, gs, saturated

    def estimate_adjoint(self, sample: np.ndarray, label: int) -> dict:
        """Diagnostics for one sample, nothing learned: rates, mask, output gradient g and
        the spike-estimated beta (per spiking layer, real units), and the scale shift gs."""
        count, _, _ = self.equilibrium(sample[None])
        T = self.model.learning.T
        rates = [c / T for c in count]
        mask = [((c > 0) & (c < T)).astype(np.float64) for c in count]
        y = np.zeros((1, self.W[self.L].shape[0]))
        y[0, label] = 1.0
        g = self.output_gradient(rates, self.scores(rates) - y)
        beta, gs, _ = self.adjoint(g, mask)
        return {"rates": [r[0] for r in rates], "mask": [m[0] for m in mask], "g": [x[0] for x in g],
                "beta": [x[0] for x in beta], "gs": int(gs[0])}

    # -- samples ---------------------------------------------------------------------------------
    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present a batch; learn when asked (the mean gradient of the batch). Returns the
        readout scores o, [B, classes]."""
        T, B = self.model.learning.T, len(samples)
        count, x_mean, half = self.equilibrium(samples)
        rates = [c / T for c in count]
        o = self.scores(rates)
        if not np.all(np.isfinite(o)):
            raise TrainingDiverged("the readout's scores are not finite: the weights overflowed; "
                           "use a smaller learning rate (a larger lr_weight_shift)")
        if not learn:
            return o
        mask = [((c > 0) & (c < T)).astype(np.float64) for c in count]
        y = np.zeros_like(o)
        y[np.arange(B), labels] = 1.0
        e = o - y
        g = self.output_gradient(rates, e)
        beta, gs, saturated = self.adjoint(g, mask)
        self.note_health(count, half, mask, beta, saturated)
        inputs = [x_mean] + rates
        lr = self.learning_rates.rates()[0]
        self.learning_rates.count(B)
        for l in range(self.L):
            d = mask[l] * beta[l] / self.Vd[l]
            for edge in self.edges[l]:
                self.W[l][:, edge.cols] -= lr / B * d.T @ inputs[edge.source + 1]
        for edge in self.edges[self.L]:
            self.W[self.L][:, edge.cols] -= lr / B * e.T @ rates[edge.source]
        self.guard()
        return o

    def note_health(self, count, half, mask, beta, saturated) -> None:
        c = self.counters
        B = count[0].shape[0]
        c["samples"] += B
        c["neurons"] += sum(x.size for x in count)
        masked = [m.sum(axis=1) for m in mask]
        c["masked"] += int(sum(m.sum() for m in masked))
        c["oscillation"] += int(sum(np.abs(x - 2 * h).sum() for x, h in zip(count, half)))
        c["saturated"] += int(saturated.sum())
        c["silent"] += int(sum(np.sum((m > 0) & (b == 0)) for m, b in zip(mask, beta)))
        dead = sum(masked) == 0
        for is_dead in dead:
            self.dead_run = self.dead_run + 1 if is_dead else 0
        if self.dead_run >= DEAD_WINDOW:
            raise TrainingDiverged(dead_equilibrium(self.dead_run))

    # -- the guard on the feedback loop ---------------------------------------------------------
    def loop_gain(self) -> float:
        return loop_gain_bound(self.W, self.edges, self.Vd)

    def guard(self) -> None:
        """Halve the feedback weights while the loop gain is at or above GUARD_GAIN."""
        for _ in range(MAX_GUARD_HALVINGS):
            if self.loop_gain() < GUARD_GAIN:
                return
            for k, e in self.feedback:
                self.W[k][:, e.cols] *= 0.5
            self.counters["halvings"] += 1

    def health(self, reset: bool = False) -> dict:
        """The health signals since construction (or the last reset; docs/spide.md)."""
        report = health_report(self.counters, self.model.learning.T, self.loop_gain())
        if reset:
            self.counters = dict.fromkeys(HEALTH_KEYS, 0)
        return report

    def buffers(self) -> dict[str, np.ndarray]:
        """The float64 weights it learns, by layer."""
        return {f"{layer.name}.weight": W for layer, W in zip(self.model.layers, self.W)}

    def to_model(self) -> Model:
        """The current weights quantised back into a model (round to nearest)."""
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            out.params[layer.name].weight = nx.to_fixed(self.W[l], layer.weight_frac, nx.INT16_MIN, nx.INT16_MAX,
                                                        np.int16)
        out.schedule = self.learning_rates.state()
        return out.validate()
