"""SPIDE in fixed point: the bit-exact reference of docs/spide.md.

The network lives in the arena of ``edgelearn.plan`` (the C runtime's buffers and one
layer table for every rule) plus an edge table (a SPIDE layer may read the input, earlier
layers and, one step late, any layer) and the parameter arrays. ``run_sample`` is the
device's per-sample loop, the mirror of targets/c/el_spide.c: ``forward_pass`` (the
equilibrium, the readout, the mask), ``backward_pass`` (output gradient, gradient scale,
ternary couples), ``note_health``, ``apply_updates`` (bottom-up, readout last) and
``guard`` (the feedback loop's gain). The spiking layers step through their kinds' fixed
steps (``edgelearn.ops``)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from ... import numerics as nx
from ... import plan
from ...contract import LEARN_STREAM_XOR
from ...encoders import CODES, DIRECT, as_rows, encode_step
from ...errors import TrainingDiverged
from ...model import Model
from ...ops import Exactness, extension_dispatch
from ...ops.builtin_steps import CODES as BUILTIN, builtin_step
from ...ops.layers.dense import current_fixed as dense_current
from ...ops.layers.dense import update_weights
from ...plan import EdgeField as E
from ...plan import LayerField as F
from ..kernels import li_output_error
from ..params import Params, layer_thresholds, layer_weights
from ..schedule import LearningRates
from . import kernels as ks
from .spec import (DEAD_WINDOW, GUARD_GAIN_Q16, HEALTH_KEYS, MAX_GUARD_HALVINGS, MAX_SCALE_RETRIES, check,
                   dead_equilibrium, health_report, not_contractive)
from .spec import HealthSlot as H


class Config(NamedTuple):
    """A sample's constants: the encoder code, log2 T, log2 Tb, whether any edge is feedback."""
    code: int
    log2T: int
    log2Tb: int
    feedback: bool


@njit(cache=True)
def input_currents(table, edges, weights, a, x_frac):
    """input_current = sum of each spiking layer's input edges' currents (F x)."""
    x, nonzero, part, static = a.input, a.nonzero_index, a.edge_current, a.input_current
    for l in range(table.shape[0] - 1):
        n_out, n_off, wf = table[l, F.n_out], table[l, F.n_off], table[l, F.weight_frac]
        W = layer_weights(table, weights, l)
        static[n_off:n_off + n_out] = 0
        for e in range(table[l, F.e_start], table[l, F.e_start] + table[l, F.e_count]):
            if edges[e, E.src] < 0:
                col = edges[e, E.col]
                dense_current(W[:, col:col + edges[e, E.n_src]], x, x_frac, wf, nonzero, part[:n_out])
                ks.add_current(part[:n_out], static[n_off:n_off + n_out])


@njit(cache=True)
def forward_pass(table, edges, params, a, neuron_step, sample, code, log2T, rng_in):
    """T steps from a zero state, the readout o = W_R (count / T) into ``cur`` of the
    readout, and the mask. Returns the fractional bits of ``x_sum`` (the input's mean
    numerator: the constant direct input itself, or the sum of T coded inputs)."""
    weights, thresholds, leaks = params.weights, params.thresholds, params.leaks
    V, s, s_prev, count, half, cur = a.membrane, a.spikes, a.spikes_prev, a.count, a.half_count, a.current
    static, part, nonzero = a.input_current, a.edge_current, a.nonzero_index
    x, x_sum, mask = a.input, a.input_sum, a.mask
    R = table.shape[0] - 1
    T = 1 << log2T
    V[:] = 0
    s[:] = 0
    count[:] = 0
    x_sum[:] = 0
    x_frac = 0
    for t in range(T):
        if t == 0 or code != DIRECT:       # a direct input is one constant current: computed once
            x_frac = encode_step(code, sample, t, rng_in, x)
            input_currents(table, edges, weights, a, x_frac)
            for i in range(x.shape[0]):
                x_sum[i] += x[i]
        s_prev[:] = s                      # delay-1 edges read the spikes of step t-1
        for l in range(R):
            n_out, n_off, wf = table[l, F.n_out], table[l, F.n_off], table[l, F.weight_frac]
            W = layer_weights(table, weights, l)
            e_ = n_off + n_out
            cur[n_off:e_] = static[n_off:e_]
            for e in range(table[l, F.e_start], table[l, F.e_start] + table[l, F.e_count]):
                src = edges[e, E.src]
                if src < 0:
                    continue
                so, ns, col = edges[e, E.src_off], edges[e, E.n_src], edges[e, E.col]
                z = s[so:so + ns] if edges[e, E.delay] == 0 else s_prev[so:so + ns]
                dense_current(W[:, col:col + ns], z, 0, wf, nonzero, part[:n_out])
                ks.add_current(part[:n_out], cur[n_off:e_])
            # U is written over the current: SPIDE keeps no potential
            leak, th = leaks[table[l, F.leak_at]], layer_thresholds(table, thresholds, l)
            if not builtin_step(table[l, F.neuron], cur[n_off:e_], leak, th, table[l, F.reset_shift], V[n_off:e_],
                                s[n_off:e_], cur[n_off:e_]):
                if neuron_step is not None:    # a kind registered after the package was generated
                    neuron_step(table[l, F.neuron], cur[n_off:e_], leak, th, table[l, F.reset_shift], V[n_off:e_],
                                s[n_off:e_], cur[n_off:e_])
            ks.count_spikes(s[n_off:e_], count[n_off:e_])
        if t == T // 2 - 1:
            half[:] = count
    n_r, r_off, wf_r = table[R, F.n_out], table[R, F.n_off], table[R, F.weight_frac]
    W_r = layer_weights(table, weights, R)
    cur[r_off:r_off + n_r] = 0
    for e in range(table[R, F.e_start], table[R, F.e_start] + table[R, F.e_count]):
        so, ns, col = edges[e, E.src_off], edges[e, E.n_src], edges[e, E.col]
        dense_current(W_r[:, col:col + ns], count[so:so + ns], log2T, wf_r, nonzero, part[:n_r])
        ks.add_current(part[:n_r], cur[r_off:r_off + n_r])
    ks.equilibrium_mask(count[:r_off], T, mask[:r_off])
    return x_frac if code == DIRECT else log2T


@njit(cache=True)
def couples(table, edges, weights, a, log2Tb):
    """Tb steps of the ternary couples from a zero state; layers top-down; readers at
    delay 0 pass this step's spikes, readers at delay 1 the previous step's."""
    mask, drive, ub, sb, sb_prev = a.mask, a.drive, a.back_membrane, a.back_spikes, a.back_spikes_prev
    bcount, inp, acc = a.back_count, a.back_input, a.back_sum
    R = table.shape[0] - 1
    n = table[R, F.n_off]
    ub[:n] = 0
    sb[:n] = 0
    bcount[:n] = 0
    for t in range(1 << log2Tb):
        sb_prev[:n] = sb[:n]
        for l in range(R - 1, -1, -1):
            n_out, n_off = table[l, F.n_out], table[l, F.n_off]
            for j in range(n_out):
                inp[j] = drive[n_off + j]
            for k in range(R):
                ko, kn = table[k, F.n_off], table[k, F.n_out]
                shift = table[k, F.weight_frac] + table[k, F.vd] - nx.STATE_FRAC
                W = layer_weights(table, weights, k)
                for e in range(table[k, F.e_start], table[k, F.e_start] + table[k, F.e_count]):
                    if edges[e, E.src] == l:
                        up = sb[ko:ko + kn] if edges[e, E.delay] == 0 else sb_prev[ko:ko + kn]
                        col = edges[e, E.col]
                        ks.backward_input(W[:, col:col + n_out], mask[ko:ko + kn], up, shift, acc[:n_out],
                                          inp[:n_out])
            ks.couple_step(inp[:n_out], ub[n_off:n_off + n_out], sb[n_off:n_off + n_out],
                           bcount[n_off:n_off + n_out])


@njit(cache=True)
def backward_pass(table, edges, weights, a, label, log2Tb):
    """e = o - y; g = W_R^T e; the gradient-scale rule; the couples, run again with the
    scale halved while a count saturates (at most MAX_SCALE_RETRIES times). Returns
    (gs, retries, saturated counts of the last run)."""
    cur, err, g, drive, bcount, acc = a.current, a.error, a.output_gradient, a.drive, a.back_count, a.back_sum
    R = table.shape[0] - 1
    n = table[R, F.n_off]
    n_r, wf_r = table[R, F.n_out], table[R, F.weight_frac]
    li_output_error(cur[n:n + n_r], label, err)
    g[:n] = 0
    W_r = layer_weights(table, weights, R)
    for e in range(table[R, F.e_start], table[R, F.e_start] + table[R, F.e_count]):
        so, ns, col = edges[e, E.src_off], edges[e, E.n_src], edges[e, E.col]
        ks.readout_gradient(W_r[:, col:col + ns], err, wf_r, acc[:ns], g[so:so + ns])
    bcount[:n] = 0
    if not np.any(g[:n] != 0):
        return 0, 0, 0
    gs = ks.gradient_scale(g[:n])
    Tb = 1 << log2Tb
    retries = 0
    while True:
        ks.scale_drive(g[:n], gs, drive[:n])
        couples(table, edges, weights, a, log2Tb)
        saturated = 0
        for j in range(n):
            if abs(bcount[j]) == Tb:
                saturated += 1
        if saturated == 0 or retries == MAX_SCALE_RETRIES:
            return gs, retries, saturated
        gs -= 1
        retries += 1


@njit(cache=True)
def note_health(a, n, retries, saturated):
    """Counters of the health signals (docs/spide.md); before the counts are gated."""
    count, half, mask, bcount, health = a.count, a.half_count, a.mask, a.back_count, a.health
    masked = 0
    for j in range(n):
        health[H.oscillation] += abs(np.int64(count[j]) - 2 * np.int64(half[j]))
        if mask[j]:
            masked += 1
            if bcount[j] == 0:
                health[H.silent] += 1
    health[H.samples] += 1
    health[H.neurons] += n
    health[H.masked] += masked
    health[H.saturated] += saturated
    health[H.retries] += retries
    health[H.dead_run] = health[H.dead_run] + 1 if masked == 0 else 0


@njit(cache=True)
def apply_updates(table, edges, weights, a, in_frac, gs, lr_shift, log2T, log2Tb, rng_learn):
    """Spiking layers bottom-up, W_le -= SR((m b) z_e^T); then the readout, W_Re -= SR(e c^T).
    Edges in table order; update_weights draws per non-zero product, rows then columns."""
    count, x_sum, mask, bcount, err = a.count, a.input_sum, a.mask, a.back_count, a.error
    R = table.shape[0] - 1
    n = table[R, F.n_off]
    ks.gate_counts(mask[:n], bcount[:n])
    for l in range(R + 1):
        n_out, n_off, wf = table[l, F.n_out], table[l, F.n_off], table[l, F.weight_frac]
        W = layer_weights(table, weights, l)
        for e in range(table[l, F.e_start], table[l, F.e_start] + table[l, F.e_count]):
            src, col, ns, so = edges[e, E.src], edges[e, E.col], edges[e, E.n_src], edges[e, E.src_off]
            z = x_sum if src < 0 else count[so:so + ns]
            frac = in_frac if src < 0 else log2T
            if l < R:       # grad = (m beta / V_d) a^T, beta = b / Tb * 2^-gs, a = z * 2^-frac
                shift = lr_shift + log2Tb + gs + frac + table[l, F.vd] - wf
                update_weights(W[:, col:col + ns], bcount[n_off:n_off + n_out], z, shift, rng_learn,
                               a.nonzero_index)
            else:           # grad = e a^T, e in Q16
                update_weights(W[:, col:col + ns], err, z, nx.STATE_FRAC + frac - wf + lr_shift, rng_learn,
                               a.nonzero_index)


@njit(cache=True)
def loop_gain(table, edges, weights, sums, rows, gains):
    """The feedback loop's gain bound in Q16 (0 without feedback edges): G_l = max_j
    sum_e G_e |W_le[j, :]|_1 / V_d,l with G_e = ONE for a feedback edge, G_k for a
    same-step edge from layer k; the loop gain is the largest G of a feedback source."""
    R = table.shape[0] - 1
    rho = np.int64(0)
    for l in range(R):
        n_out, wf, vd = table[l, F.n_out], table[l, F.weight_frac], table[l, F.vd]
        W = layer_weights(table, weights, l)
        rows[:n_out] = 0
        for e in range(table[l, F.e_start], table[l, F.e_start] + table[l, F.e_count]):
            src = edges[e, E.src]
            if src < 0:
                continue
            G = np.int64(nx.ONE) if edges[e, E.delay] > 0 else gains[src]
            if G == 0:
                continue
            col = edges[e, E.col]
            ks.row_abs_sums(W[:, col:col + edges[e, E.n_src]], sums[:n_out])
            for j in range(n_out):
                rows[j] += nx.round_shift(G * sums[j], wf + vd)
        gains[l] = min(np.max(rows[:n_out]), nx.INT32_MAX)
    for l in range(R):
        for e in range(table[l, F.e_start], table[l, F.e_start] + table[l, F.e_count]):
            if edges[e, E.delay] > 0:
                rho = max(rho, gains[edges[e, E.src]])
    return rho


@njit(cache=True)
def guard(table, edges, weights, sums, rows, gains):
    """Halve every feedback weight while the loop gain is >= GUARD_GAIN; returns the halvings."""
    R = table.shape[0] - 1
    h = 0
    while h < MAX_GUARD_HALVINGS and loop_gain(table, edges, weights, sums, rows, gains) >= GUARD_GAIN_Q16:
        for l in range(R):
            W = layer_weights(table, weights, l)
            for e in range(table[l, F.e_start], table[l, F.e_start] + table[l, F.e_count]):
                if edges[e, E.delay] > 0:
                    col = edges[e, E.col]
                    ks.halve_weights(W[:, col:col + edges[e, E.n_src]])
        h += 1
    return h


@njit(cache=True)
def run_sample(table, edges, params, a, neuron_step, cfg, sample, label, learn, lr_shift, rng_in, rng_learn):
    """Present one sample: the equilibrium and the scores; when learning, the spiking
    adjoint, the health counters, the updates and the guard."""
    R = table.shape[0] - 1
    in_frac = forward_pass(table, edges, params, a, neuron_step, sample, cfg.code, cfg.log2T, rng_in)
    n = table[R, F.n_off]                       # spiking neurons; the readout's come after them
    a.scores[:] = a.current[n:n + table[R, F.n_out]]
    if not learn:
        return
    gs, retries, saturated = backward_pass(table, edges, params.weights, a, label, cfg.log2Tb)
    note_health(a, n, retries, saturated)
    apply_updates(table, edges, params.weights, a, in_frac, gs, lr_shift, cfg.log2T, cfg.log2Tb, rng_learn)
    if cfg.feedback:
        a.health[H.halvings] += guard(table, edges, params.weights, a.row_sums, a.row_gains, a.loop_gains)


def read_health(counters: np.ndarray, T: int, loop_gain: float, reset: bool) -> dict:
    """The health report from a runtime's counter array (Python's or the C arena's);
    ``reset`` clears the per-period counters, not the run of dead samples."""
    report = health_report({key: int(counters[i]) for i, key in enumerate(HEALTH_KEYS)}, T, loop_gain)
    if reset:
        counters[:H.dead_run] = 0
    return report


class FixedSPIDE:
    """The fixed-point SPIDE runtime over the arena of edgelearn.plan (what the device holds)."""

    exactness = Exactness.BIT

    def __init__(self, model: Model):
        check(model)
        self.model = model
        self.table, self.edges, self.dims = plan.tables(model)
        self.arena = plan.allocate(self.table, self.edges, self.dims, "spide")
        self.params = Params.of(model)
        cfg = model.learning
        self.rng_input = nx.new_rng(cfg.seed)
        self.rng_learn = nx.new_rng(cfg.seed ^ LEARN_STREAM_XOR)
        self.learning_rates = LearningRates(model)
        self.config = Config(CODES[model.input.encoding], cfg.T.bit_length() - 1, cfg.Tb.bit_length() - 1,
                             bool(np.any(self.edges[:, E.delay] > 0)))
        self.neuron_step = extension_dispatch(BUILTIN)
        gain = self.loop_gain()
        if gain >= 1.0:
            raise not_contractive(gain)

    weights = property(lambda self: self.params.weights)
    thresholds = property(lambda self: self.params.thresholds)
    leaks = property(lambda self: self.params.leaks)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every array the runtime holds while training, by name (the C runtime's names)."""
        return {"weights": self.weights, "thresholds": self.thresholds, "leaks": self.leaks,
                **self.arena._asdict(), "rng_input": self.rng_input, "rng_learn": self.rng_learn}

    def _run(self, sample, label: int, learn: bool) -> np.ndarray:
        run_sample(self.table, self.edges, self.params, self.arena, self.neuron_step, self.config, as_rows(sample),
                   label, learn, int(self.learning_rates.shifts()[0]), self.rng_input, self.rng_learn)
        if learn:
            self.learning_rates.count()
        dead = int(self.arena.health[H.dead_run])
        if learn and dead >= DEAD_WINDOW:
            raise TrainingDiverged(dead_equilibrium(dead))
        return self.arena.scores.copy()

    def run(self, samples: np.ndarray, labels: np.ndarray | None, learn: bool) -> np.ndarray:
        """Present samples one after the other; learn online when asked. Returns the readout
        scores o (Q16), [B, classes]."""
        if learn and len(samples) > 1:
            raise ValueError("fixed-point SPIDE learns online (batch 1): its gradient scale is chosen per sample")
        return np.stack([self._run(x, int(labels[b]) if learn else -1, learn) for b, x in enumerate(samples)])

    def _forward(self, sample) -> int:
        return forward_pass(self.table, self.edges, self.params, self.arena, self.neuron_step, as_rows(sample),
                            self.config.code, self.config.log2T, self.rng_input)

    def _per_layer(self, buf: np.ndarray) -> list[np.ndarray]:
        return [buf[o:o + n].copy() for n, o in self.table[:-1, [F.n_out, F.n_off]]]

    def rates(self, sample) -> list[np.ndarray]:
        """Each spiking layer's rates count / T for one sample (inference)."""
        self._forward(sample)
        return [c / self.model.learning.T for c in self._per_layer(self.arena.count)]

    def estimate_adjoint(self, sample, label: int) -> dict:
        """Diagnostics for one sample, nothing learned (as ``FloatSPIDE.estimate_adjoint``,
        in real units)."""
        a = self.arena
        self._forward(sample)
        gs, _, _ = backward_pass(self.table, self.edges, self.weights, a, label, self.config.log2Tb)
        T, Tb = self.model.learning.T, self.model.learning.Tb
        return {"rates": [c / T for c in self._per_layer(a.count)],
                "mask": [m.astype(np.float64) for m in self._per_layer(a.mask)],
                "g": [x / nx.ONE for x in self._per_layer(a.output_gradient)],
                "beta": [b / Tb * 2.0 ** -gs for b in self._per_layer(a.back_count)], "gs": int(gs)}

    def loop_gain(self) -> float:
        a = self.arena
        return loop_gain(self.table, self.edges, self.weights, a.row_sums, a.row_gains, a.loop_gains) / nx.ONE

    def health(self, reset: bool = False) -> dict:
        """The health signals since construction (or the last reset; docs/spide.md)."""
        return read_health(self.arena.health, self.model.learning.T, self.loop_gain(), reset)

    def to_model(self) -> Model:
        out = self.model.copy()
        for l, layer in enumerate(out.layers):
            n_in, n_out, w_at = self.table[l, :F.weights_at + 1]
            out.params[layer.name].weight = self.weights[w_at:w_at + n_in * n_out].reshape(n_out, n_in).copy()
        out.schedule = self.learning_rates.state()
        return out.validate()
