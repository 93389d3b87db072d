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

from dataclasses import dataclass, replace

import numpy as np

from .. import numerics as nx
from ..encoders import CODES, DIRECT, as_rows, encode_step
from ..model import INPUT, SPIKING_NEURONS, Learning, Model, ModelError, Neuron, init_params, mlp

MIN_TB = 4                 # the smallest power of two whose estimate errs < 100% (about 2.6 / Tb)
MAX_SCALE_RETRIES = 4      # halvings of the gradient scale when couples clip
GUARD_GAIN = 0.875         # the guard keeps the feedback loop gain below this
MAX_GUARD_HALVINGS = 16
DEAD_WINDOW = 64           # learning samples in a row without a gradient path: diverged


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def check_spide_model(model: Model) -> None:
    """Refuse, with a reason, what the SPIDE runtimes cannot run."""
    model.validate()
    lr = model.learning
    if lr.rule != "spide":
        raise ModelError(f"the SPIDE runtime runs models with learning.rule 'spide', not {lr.rule!r}")
    if not is_power_of_two(lr.T) or lr.T < 2:
        raise ModelError(f"SPIDE needs T a power of two >= 2 (rates are counts / T), got {lr.T}")
    if not is_power_of_two(lr.Tb):
        raise ModelError(f"SPIDE needs Tb a power of two (beta is a count / Tb), got {lr.Tb}")
    if lr.Tb < MIN_TB:
        raise ModelError(f"Tb = {lr.Tb} backward steps are too few for the couples to fire: a gradient below "
                         f"1/(2 Tb) of the largest never fires and the estimate errs by about 2.6/Tb; "
                         f"use Tb >= {MIN_TB} (64 or more for a few percent)")
    *spiking, readout = model.layers
    if len(model.layers) < 2 or readout.neuron.kind != "li":
        raise ModelError("SPIDE needs spiking layers read by a linear classifier: the last layer must be an "
                         "'li' readout")
    names = {layer.name for layer in spiking}
    for i, layer in enumerate(spiking):
        where = f"layer {i} ({layer.name!r})"
        if layer.neuron.kind not in SPIKING_NEURONS:
            raise ModelError(f"{where}: SPIDE's equilibrium layers must spike (if or lif)")
        for e in layer.inputs:
            if e.source not in names and e.source != INPUT:
                raise ModelError(f"{where}: reads the readout {e.source!r}, which is not part of the equilibrium")
            if e.delay > 1:
                raise ModelError(f"{where}: edge from {e.source!r} has delay {e.delay}; SPIDE supports 0 "
                                 "(same step) and 1 (feedback)")
        th = model.params[layer.name].threshold
        if np.any(th != th[0]) or not is_power_of_two(int(th[0])):
            raise ModelError(f"{where}: SPIDE needs one threshold per layer, a power of two (V_d is a shift)")
    for e in readout.inputs:
        if e.source not in names or e.delay != 0:
            raise ModelError(f"readout {readout.name!r}: reads rates of spiking layers at delay 0 only, "
                             f"not {e.source!r} at delay {e.delay}")


def spide_mlp(name: str, sizes: list[int], *, seed: int = 1, T: int = 32, Tb: int = 32,
              lr_weight_shift: int = 6) -> Model:
    """A feed-forward SPIDE chain sizes[0] -> ... -> sizes[-1]: IF layers with the modified
    reset read by a linear readout, with seeded parameters (models/digits-spide.json and
    mnist-spide.json are this with sizes 64-256-10 and 784-256-10)."""
    hidden = Neuron("if", threshold=1.0, leak=1.0, learn_threshold=False, learn_leak=False, reset="modified")
    readout = Neuron("li", leak=0.0, learn_threshold=False, learn_leak=False)
    learning = Learning(rule="spide", T=T, Tb=Tb, lr_weight_shift=lr_weight_shift, lr_threshold_shift=0,
                        lr_leak_shift=0, surrogate_shift=0, update="sample", seed=seed)
    return init_params(mlp(name, sizes, hidden=hidden, readout=readout, learning=learning))


def diverged(message: str) -> Exception:
    """TrainingDiverged, imported late: edgelearn.train imports the learners."""
    from ..train import TrainingDiverged
    return TrainingDiverged(message)


@dataclass(frozen=True)
class EdgeInfo:
    source: int          # layer index, -1 for the input
    delay: int
    cols: slice          # the reader's weight columns


def edge_table(model: Model) -> list[list[EdgeInfo]]:
    """Each layer's edges with their weight columns."""
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    sizes = model.sizes()
    table = []
    for layer in model.layers:
        col, edges = 0, []
        for e in layer.inputs:
            n = sizes[e.source]
            edges.append(EdgeInfo(-1 if e.source == INPUT else index[e.source], e.delay, slice(col, col + n)))
            col += n
        table.append(edges)
    return table


def loop_gain_bound(W: list[np.ndarray], edges: list[list[EdgeInfo]], Vd: list[float]) -> float:
    """An upper bound on the feedback loop's contraction factor, without square roots: the
    gain G_l = max_j sum_e G_e sum_i |W_le[j, i]| / V_d,l of each spiking layer, with G_e = 1
    for a feedback edge and G_k for a same-step edge from layer k; the loop gain is the
    largest G of a feedback source (0 for a feed-forward net). W, edges: every layer's,
    the readout last; Vd: the spiking layers'."""
    L = len(Vd)
    sources = [e.source for k in range(L) for e in edges[k] if e.delay > 0]
    if not sources:
        return 0.0
    gains = np.zeros(L)
    for l in range(L):
        rows = np.zeros(W[l].shape[0])
        for e in edges[l]:
            if e.source >= 0:
                rows += (1.0 if e.delay else gains[e.source]) * np.abs(W[l][:, e.cols]).sum(axis=1) / Vd[l]
        gains[l] = rows.max()
    return float(max(gains[k] for k in sources))


def reset_divisor(neuron) -> float:
    """V_d / th: what a spike subtracts, in thresholds."""
    return 2.0 if neuron.reset == "modified" else 1.0


def contract_feedback(model: Model, gain: float = 0.5) -> None:
    """Scale a freshly initialised model's feedback weights so that its loop gain bound is
    at most ``gain`` (init_params calls this for rule 'spide', as the official code bounds
    the norm of its feedback weights): the runtimes refuse a loop whose bound is >= 1. A
    model the runtimes refuse for another reason is left as it is (they will say why)."""
    try:
        check_spide_model(model)
    except ModelError:
        return
    edges = edge_table(model)
    W = [nx.from_fixed(model.params[l.name].weight, l.weight_frac) for l in model.layers]
    Vd = [float(nx.from_fixed(model.params[l.name].threshold[0], nx.STATE_FRAC)) * reset_divisor(l.neuron)
          for l in model.layers[:-1]]
    bound = loop_gain_bound(W, edges, Vd)
    if bound <= gain:
        return
    for k, layer in enumerate(model.layers):
        for e in edges[k]:
            if e.delay > 0:
                W[k][:, e.cols] *= gain / bound
        model.params[layer.name].weight = nx.to_fixed(W[k], layer.weight_frac, nx.INT16_MIN, nx.INT16_MAX, np.int16)


def dead_equilibrium(samples: int) -> str:
    return (f"for {samples} samples in a row every spiking neuron was silent or fired on every step (rate 0 "
            "or 1): the equilibrium passes no gradient. Use a smaller learning rate (a larger lr_weight_shift) "
            "or smaller initial weights")


def not_contractive(gain: float) -> ModelError:
    return ModelError(f"the feedback loop is not contractive: its gain bound (products of the largest "
                      f"absolute row sums of W / V_d around the loop) is {gain:.3f} >= 1, so the rates need "
                      "not settle; scale the feedback weights down")


def health_report(counts: dict, T: int, loop_gain: float) -> dict:
    """The health signals from raw counters (shared by both twins; docs/spide.md)."""
    samples = max(counts["samples"], 1)
    neurons = max(counts["neurons"], 1)
    masked = max(counts["masked"], 1)
    report = {
        "samples": counts["samples"],
        "mask_fraction": counts["masked"] / neurons,
        "forward_oscillation": counts["oscillation"] / (neurons * (T // 2)),
        "backward_saturated": counts["saturated"] / neurons,
        "backward_silent": counts["silent"] / masked,
        "scale_retries": counts["retries"] / samples,
        "loop_gain": loop_gain,
        "guard_halvings": counts["halvings"],
    }
    problems = []
    if counts["samples"] and report["backward_silent"] > 0.25:
        problems.append(f"{report['backward_silent']:.0%} of the unclamped backward couples never fired: "
                        "Tb is too small for the spread of the gradient")
    if report["backward_saturated"] > 0.01:
        problems.append(f"{report['backward_saturated']:.1%} of the backward counts saturated even after "
                        "halving the gradient scale: the adjoint is clipped")
    if report["forward_oscillation"] > 0.1:
        problems.append(f"forward rates differ by {report['forward_oscillation']:.2f} between the two halves "
                        "of the window: the equilibrium has not settled (raise T or shrink the loop)")
    if counts["samples"] and report["mask_fraction"] < 0.01:
        problems.append("almost every spiking neuron is silent or saturated: no gradient reaches the weights")
    report["problems"] = problems
    return report


HEALTH_KEYS = ("samples", "neurons", "masked", "oscillation", "saturated", "silent", "retries", "halvings")


class FloatSPIDE:
    """Float64 SPIDE over a model's (dequantised) parameters."""

    exactness = "float64: the mathematical reference; not bit-exact with the device"

    def __init__(self, model: Model):
        check_spide_model(model)
        self.model = model
        self.L = len(model.layers) - 1                    # spiking layers; the readout is layers[L]
        self.edges = edge_table(model)
        self.W = [nx.from_fixed(model.params[l.name].weight, l.weight_frac) for l in model.layers]
        spiking = model.layers[:self.L]
        self.th = [float(nx.from_fixed(model.params[l.name].threshold[0], nx.STATE_FRAC)) for l in spiking]
        self.Vd = [th * reset_divisor(l.neuron) for th, l in zip(self.th, spiking)]
        self.a = [model.params[l.name].leak / nx.ONE for l in spiking]
        self.lr = 2.0 ** -model.learning.lr_weight_shift
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
                    cur += z @ self.W[l][:, e.cols].T
                U = self.a[l] * V[l] + cur
                s[l] = (U >= self.th[l]).astype(np.float64)
                V[l] = U - self.Vd[l] * s[l]
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
            raise diverged("the readout's scores are not finite: the weights overflowed; "
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
        for l in range(self.L):
            d = mask[l] * beta[l] / self.Vd[l]
            for edge in self.edges[l]:
                self.W[l][:, edge.cols] -= self.lr / B * d.T @ inputs[edge.source + 1]
        for edge in self.edges[self.L]:
            self.W[self.L][:, edge.cols] -= self.lr / B * e.T @ rates[edge.source]
        self.guard()
        return o

    def note_health(self, count, half, mask, beta, saturated) -> None:
        c = self.counters
        T, B = self.model.learning.T, count[0].shape[0]
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
            raise diverged(dead_equilibrium(self.dead_run))

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

    def slow_down(self) -> None:
        """Halve the learning rate (one more shift on the device)."""
        self.lr /= 2

    def to_model(self) -> Model:
        """The current weights quantised back into a model (round to nearest)."""
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            out.params[layer.name].weight = nx.to_fixed(self.W[l], layer.weight_frac, nx.INT16_MIN, nx.INT16_MAX,
                                                        np.int16)
        out.learning = replace(out.learning, lr_weight_shift=int(round(-np.log2(self.lr))))
        return out.validate()
